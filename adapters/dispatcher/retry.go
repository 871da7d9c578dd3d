package dispatcher

import (
	"errors"
	"math/rand/v2"
	"time"
)

// RetryPolicy says when a retryable failure is tried again: exponential
// backoff with jitter, at most MaxAttempts attempts in all, and never later
// than MaxAge after the notification was requested. Past either bound the
// delivery is dead-lettered with the last failure's reason.
type RetryPolicy struct {
	MaxAttempts int           // attempts in all, the first included; default 8
	Initial     time.Duration // delay after the first failure; default 1 s
	Max         time.Duration // cap on one delay; default 10 min
	Multiplier  float64       // default 2
	// Jitter is the fraction of each delay drawn at random (0..1): with
	// 0.2 a 10 s delay becomes 8–10 s, so a thousand deliveries failing
	// together do not come back together. Default 0.2.
	Jitter float64
	MaxAge time.Duration // default 24 h
}

func (p *RetryPolicy) setDefaults() {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = 8
	}
	if p.Initial == 0 {
		p.Initial = time.Second
	}
	if p.Max == 0 {
		p.Max = 10 * time.Minute
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

// next returns when to try again after attempt number attempt (from 1)
// failed at now, or zero when the policy gives up. notBefore, when later,
// is the provider's own Retry-After.
func (p RetryPolicy) next(attempt int, requestedAt, now, notBefore time.Time) time.Time {
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
	if !requestedAt.IsZero() && at.Sub(requestedAt) > p.MaxAge {
		return time.Time{}
	}
	return at
}
