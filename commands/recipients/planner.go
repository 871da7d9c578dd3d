package recipients

import (
	"context"
	"fmt"
	"sync"
	"time"

	"herald/domain"
)

// Planner is the send path's commands.Planner: it reads the recipient's
// profile (when the request names a recipient id) and applies
// domain.PlanForRecipient with the frequency counts of counter (nil: caps
// are not applied).
//
// Profiles are cached for a second: a send to a recipient reads its stream
// at most once a second instead of on every send (the read was a seventh
// of the API's CPU under load, and most recipients have no profile at
// all). A change made through this process's Service empties the cache at
// once; one made by another process is seen within the second.
type Planner struct {
	svc     *Service
	counter *SendCounter

	mu     sync.Mutex
	seen   int64 // svc.writes when the cache was last valid
	cached map[string]cachedProfile
}

type cachedProfile struct {
	p  domain.RecipientProfile
	at time.Time
}

// profileTTL bounds how stale a profile another process changed may be.
const profileTTL = time.Second

// maxCachedProfiles bounds the cache; past it, it starts over.
const maxCachedProfiles = 1 << 16

// NewPlanner returns a Planner over svc and counter.
func NewPlanner(svc *Service, counter *SendCounter) *Planner {
	return &Planner{svc: svc, counter: counter, cached: map[string]cachedProfile{}}
}

func (p *Planner) profile(ctx context.Context, id string, now time.Time) (domain.RecipientProfile, error) {
	p.mu.Lock()
	if w := p.svc.writes.Load(); w != p.seen || len(p.cached) >= maxCachedProfiles {
		p.seen = w
		clear(p.cached)
	}
	c, ok := p.cached[id]
	p.mu.Unlock()
	if ok && now.Sub(c.at) < profileTTL && now.Sub(c.at) >= 0 {
		return c.p, nil
	}
	before := p.svc.writes.Load()
	prof, _, err := p.svc.Profile(ctx, id)
	if err != nil {
		return domain.RecipientProfile{}, err
	}
	p.mu.Lock()
	if p.svc.writes.Load() == before {
		p.cached[id] = cachedProfile{p: prof, at: now}
	}
	p.mu.Unlock()
	return prof, nil
}

// Plan implements commands.Planner.
func (p *Planner) Plan(ctx context.Context, req domain.NotificationRequest, now time.Time) (domain.PlanDecision, error) {
	var profile domain.RecipientProfile
	var sent func(category string, since time.Time) int
	if id := req.Recipient.ID; id != "" {
		var err error
		if profile, err = p.profile(ctx, id, time.Now()); err != nil {
			return domain.PlanDecision{}, fmt.Errorf("recipient %s: %w", id, err)
		}
		if p.counter != nil {
			// A cap that applies counts every send committed so far, not
			// only those the counter has followed yet: catch up first
			// (only then: most recipients have no cap).
			if capped(profile, req.Category) {
				if err := p.counter.CatchUp(ctx); err != nil {
					return domain.PlanDecision{}, fmt.Errorf("frequency counts: %w", err)
				}
			}
			sent = p.counter.SentInWindow(id)
		}
	}
	return domain.PlanForRecipient(req, profile, now, sent), nil
}

// capped reports whether a frequency cap of profile applies to category.
func capped(profile domain.RecipientProfile, category string) bool {
	for _, c := range profile.Preferences().FrequencyCaps {
		if c.Category == "*" || c.Category == category {
			return true
		}
	}
	return false
}
