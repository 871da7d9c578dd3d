package dispatcher

import (
	"sync"
	"time"

	"herald/domain"
)

// limiter is a token bucket with a pause: the rate limit configured for a
// channel (or provider account), and the provider's own "slow down" (a 429
// or a Retry-After) which stops that channel, and only that channel, until
// the time the provider named.
type limiter struct {
	mu          sync.Mutex
	rate        float64 // tokens per second; 0: unlimited
	burst       float64
	tokens      float64
	last        time.Time
	pausedUntil time.Time
}

// newLimiter returns a limiter allowing rate sends per second with bursts
// of burst; rate 0 means no rate limit (pauses still apply).
func newLimiter(rate float64, burst int) *limiter {
	if burst < 1 {
		burst = 1
	}
	return &limiter{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// reserve takes a token and returns 0, or returns how long to wait before
// asking again. A nil limiter never waits.
func (l *limiter) reserve(now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.pausedUntil) {
		return l.pausedUntil.Sub(now)
	}
	if l.rate <= 0 {
		return 0
	}
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return 0
	}
	return time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
}

// refund gives back the token of a reserve whose attempt did not start.
func (l *limiter) refund() {
	if l == nil {
		return
	}
	l.mu.Lock()
	if l.rate > 0 {
		l.tokens = min(l.burst, l.tokens+1)
	}
	l.mu.Unlock()
}

// pause stops the channel until until (a later pause extends it, an
// earlier one does not shorten it).
func (l *limiter) pause(until time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	if until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
	l.mu.Unlock()
}

// addressScoped lists the channels on which every address is its own
// provider account: a webhook endpoint, a chat robot or incoming webhook
// (Slack, DingTalk and WeCom limit each one on its own), a browser's push
// subscription. A provider's "slow down" on one of them pauses that
// address only; on the other channels (one SMTP relay, one SMS account)
// it pauses the channel.
var addressScoped = map[domain.Channel]bool{
	domain.ChannelWebhook: true, domain.ChannelSlack: true, domain.ChannelDingTalk: true,
	domain.ChannelWeCom: true, domain.ChannelWebPush: true,
}

// addressPauses holds the pauses providers asked for on address-scoped
// channels: a limiter without a rate per address, let go once its pause
// has ended and the map is full.
type addressPauses struct {
	mu sync.Mutex
	by map[addressKey]*limiter
}

type addressKey struct {
	channel domain.Channel
	address string
}

// maxAddressPauses bounds the pauses held before the ended ones are let go.
const maxAddressPauses = 4096

func (p *addressPauses) pause(k addressKey, until, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.by == nil {
		p.by = map[addressKey]*limiter{}
	}
	if len(p.by) >= maxAddressPauses {
		for k, l := range p.by {
			if l.reserve(now) == 0 {
				delete(p.by, k)
			}
		}
	}
	l := p.by[k]
	if l == nil {
		l = newLimiter(0, 1)
		p.by[k] = l
	}
	l.pause(until)
}

// wait returns how long k stays paused after now (0: not paused).
func (p *addressPauses) wait(k addressKey, now time.Time) time.Duration {
	p.mu.Lock()
	l := p.by[k]
	p.mu.Unlock()
	return l.reserve(now) // a nil limiter never waits
}
