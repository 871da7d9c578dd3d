package dispatcher

import (
	"github.com/prometheus/client_golang/prometheus"
)

type dispatcherMetrics struct {
	attempts     *prometheus.CounterVec
	sendSeconds  *prometheus.HistogramVec
	deadLettered *prometheus.CounterVec
	skipped      *prometheus.CounterVec
	unroutable   *prometheus.CounterVec
}

// newDispatcherMetrics registers the dispatcher's metrics with reg (none
// when reg is nil: the collectors then only count in memory).
func newDispatcherMetrics(reg prometheus.Registerer, s *scheduler) dispatcherMetrics {
	m := dispatcherMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_delivery_attempts_total", Help: "Delivery attempts by channel and outcome.",
		}, []string{"channel", "outcome"}),
		sendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "herald_delivery_send_seconds", Help: "Time the provider took to answer one attempt.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"channel"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_deliveries_dead_lettered_total", Help: "Deliveries given up after their last attempt.",
		}, []string{"channel"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_delivery_attempts_skipped_total", Help: "Queued deliveries found settled, cancelled or expired when their turn came.",
		}, []string{"channel"}),
		unroutable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_deliveries_unroutable_total", Help: "Deliveries on a channel this process has no sender for.",
		}, []string{"channel"}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.attempts, m.sendSeconds, m.deadLettered, m.skipped, m.unroutable)
	for i, name := range []string{"high", "normal", "low"} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "herald_dispatcher_ready", Help: "Deliveries due and waiting for a worker, per lane (all channels).",
			ConstLabels: prometheus.Labels{"lane": name},
		}, func() float64 {
			ready, _ := s.backlog()
			n := 0
			for _, r := range ready {
				n += r[i]
			}
			return float64(n)
		}))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "herald_dispatcher_delayed", Help: "Deliveries waiting for a retry or a lease to end.",
	}, func() float64 { _, n := s.backlog(); return float64(n) }))
	return m
}
