package dispatcher

import (
	"errors"
	"math/rand/v2"
	"time"

	"herald/domain"
)

// RetryPolicy says when a retryable failure is tried again: exponential
// backoff with jitter, at most MaxAttempts attempts in all, and never later
// than MaxAge after the delivery was planned (or asked for again by a
// resend). Past either bound the delivery is dead-lettered with the last
// failure's reason. Attempts the provider refused for its rate (a 429, a
// Retry-After) do not count: they wait as long as the provider asks, and
// only MaxAge ends them.
//
// The defaults try a delivery for about a day, so that a provider that is
// down for hours still gets its backlog when it returns: the delays double
// from 1 s to 1 h (twelve retries, about an hour), then come hourly, and
// forty attempts reach past MaxAge, which is thus the bound that ends them.
type RetryPolicy struct {
	MaxAttempts int           // attempts in all, the first included; default 40
	Initial     time.Duration // delay after the first failure; default 1 s
	Max         time.Duration // cap on one delay; default 1 h
	Multiplier  float64       // default 2
	// Jitter is the fraction of each delay drawn at random (0..1): with
	// 0.2 a 10 s delay becomes 8–10 s, so a thousand deliveries failing
	// together do not come back together. Default 0.2.
	Jitter float64
	MaxAge time.Duration // default 24 h
}

func (p *RetryPolicy) setDefaults() {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultRetryAttempts
	}
	if p.Initial == 0 {
		p.Initial = time.Second
	}
	if p.Max == 0 {
		p.Max = DefaultRetryMax
	}
	if p.Multiplier == 0 {
		p.Multiplier = 2
	}
	if p.Jitter == 0 {
		p.Jitter = 0.2
	}
	if p.MaxAge == 0 {
		p.MaxAge = 24 * time.Hour
	}
}

// Validate reports every out-of-range field.
func (p RetryPolicy) Validate() error {
	var errs []error
	if p.MaxAttempts < 1 {
		errs = append(errs, errors.New("retry max attempts must be at least 1"))
	}
	if p.Initial <= 0 || p.Max < p.Initial {
		errs = append(errs, errors.New("retry delays must be positive with max >= initial"))
	}
	if p.Multiplier < 1 {
		errs = append(errs, errors.New("retry multiplier must be at least 1"))
	}
	if p.Jitter < 0 || p.Jitter > 1 {
		errs = append(errs, errors.New("retry jitter must be within 0..1"))
	}
	if p.MaxAge <= 0 {
		errs = append(errs, errors.New("retry max age must be positive"))
	}
	return errors.Join(errs...)
}

// The defaults of RetryPolicy's bounds (config.Delivery has the same).
const (
	DefaultRetryAttempts = 40
	DefaultRetryMax      = time.Hour
)

// retryCount is the number of the attempt that failed as the policy counts
// it: without those the provider refused for its rate, this one included
// when throttled.
func retryCount(d domain.Delivery, attempt int, throttled bool) int {
	n := attempt - d.Throttles()
	if throttled {
		n--
	}
	return max(n, 1)
}

// retryWindowStart is when MaxAge starts for d: when it was planned, or
// when the notification was requested for a state restored from a
// snapshot written before deliveries recorded it.
func retryWindowStart(n domain.Notification, d domain.Delivery) time.Time {
	if at := d.PlannedAt(); !at.IsZero() {
		return at
	}
	return n.RequestedAt()
}

// next returns when to try again after attempt number attempt (from 1, as
// retryCount counts) failed at now, or zero when the policy gives up.
// notBefore, when later, is the provider's own Retry-After; MaxAge runs
// from since.
func (p RetryPolicy) next(attempt int, since, now, notBefore time.Time) time.Time {
	if attempt >= p.MaxAttempts {
		return time.Time{}
	}
	d := float64(p.Initial)
	for i := 1; i < attempt && d < float64(p.Max); i++ {
		d *= p.Multiplier
	}
	d = min(d, float64(p.Max))
	d -= d * p.Jitter * rand.Float64()
	at := now.Add(time.Duration(d))
	if notBefore.After(at) {
		at = notBefore
	}
	if !since.IsZero() && at.Sub(since) > p.MaxAge {
		return time.Time{}
	}
	return at
}
