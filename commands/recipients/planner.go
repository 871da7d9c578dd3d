package recipients

import (
	"context"
	"fmt"
	"sync"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
)

// Planner is the send path's commands.Planner: it reads the recipient's
// profile (when the request names a recipient id) and applies
// domain.PlanForRecipient with the frequency counts of counter (nil: caps
// are not applied).
//
// Profiles are cached, so that a send does not read its recipient's stream
// every time (the read was a seventh of the API's CPU under load, and most
// recipients have no profile at all). A change made through this process's
// Service empties the cache at once. A change made by another process is
// seen by the counter, which follows the log: it drops that recipient's
// entry as soon as it reads the change (within the subscription's delay,
// about the log's poll interval). An entry read while the counter was
// following (SendCounter.Following: it had caught up with the log) lives
// up to followedProfileTTL while it still follows; any other, profileTTL.
type Planner struct {
	svc     *Service
	counter *SendCounter
	now     func() time.Time

	mu     sync.Mutex
	seen   int64 // svc.writes when the cache was last valid
	cached map[string]cachedProfile
	// dropped counts the entries the counter dropped: a profile read
	// while one was dropped may predate the change, so it is not kept.
	dropped uint64
}

type cachedProfile struct {
	p        domain.RecipientProfile
	at       time.Time
	followed bool // read while the counter was following the log
}

// profileTTL bounds how stale a profile another process changed may be
// when no counter follows the log.
const profileTTL = time.Second

// followedProfileTTL bounds the life of an entry while the counter follows
// the log and drops the entries of recipients that change.
const followedProfileTTL = 5 * time.Minute

// maxCachedProfiles bounds the cache; past it, it starts over.
const maxCachedProfiles = 1 << 16

// NewPlanner returns a Planner over svc and counter.
func NewPlanner(svc *Service, counter *SendCounter) *Planner {
	p := &Planner{svc: svc, counter: counter, now: time.Now, cached: map[string]cachedProfile{}}
	if counter != nil {
		counter.watchRecipients(p.forget)
	}
	return p
}

// forget drops the cached profile of a recipient whose stream changed.
func (p *Planner) forget(id string) {
	p.mu.Lock()
	delete(p.cached, id)
	p.dropped++
	p.mu.Unlock()
}

// following reports whether the counter follows the log.
func (p *Planner) following() bool { return p.counter != nil && p.counter.Following() }

// fresh reports whether entry c may still be used at now.
func (p *Planner) fresh(c cachedProfile, now time.Time) bool {
	ttl := profileTTL
	if c.followed && p.following() {
		ttl = followedProfileTTL
	}
	age := now.Sub(c.at)
	return age >= 0 && age < ttl
}

func (p *Planner) profile(ctx context.Context, id string) (domain.RecipientProfile, error) {
	now := p.now()
	p.mu.Lock()
	p.freshenLocked(1)
	c, ok := p.cached[id]
	dropped := p.dropped
	p.mu.Unlock()
	if ok && p.fresh(c, now) {
		return c.p, nil
	}
	before, followed := p.svc.writes.Load(), p.following()
	prof, _, err := p.svc.Profile(ctx, id)
	if err != nil {
		return domain.RecipientProfile{}, err
	}
	p.mu.Lock()
	if p.svc.writes.Load() == before && p.dropped == dropped {
		p.cached[id] = cachedProfile{p: prof, at: now, followed: followed}
	}
	p.mu.Unlock()
	return prof, nil
}

// Prefetch implements commands.Prefetcher: it learns in one call to the
// log which of the recipients of reqs have no profile, and caches the
// empty profile for those, so that planning a batch (a fan-out chunk of a
// thousand members, most without a profile) reads only the streams that
// exist. Recipients it cannot look up are left to Plan.
func (p *Planner) Prefetch(ctx context.Context, reqs []domain.NotificationRequest, now time.Time) error {
	at := p.now()
	p.mu.Lock()
	p.freshenLocked(len(reqs))
	var streams []string
	ids := map[string]string{} // stream → recipient id
	for _, r := range reqs {
		id := r.Recipient.ID
		if id == "" || !domain.RecipientID(id).Valid() {
			continue
		}
		if c, ok := p.cached[id]; ok && p.fresh(c, at) {
			continue
		}
		stream := domain.RecipientStream(domain.RecipientID(id))
		if _, dup := ids[stream]; !dup {
			ids[stream] = id
			streams = append(streams, stream)
		}
	}
	dropped := p.dropped
	p.mu.Unlock()
	if len(streams) == 0 {
		return nil
	}
	before, followed := p.svc.writes.Load(), p.following()
	versions, err := eventstore.StreamVersions(ctx, p.svc.x.store, streams)
	if err != nil {
		return fmt.Errorf("prefetch recipient profiles: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.svc.writes.Load() != before || p.dropped != dropped {
		return nil // a profile changed meanwhile: Plan reads each
	}
	for stream, id := range ids {
		if _, exists := versions[stream]; !exists {
			p.cached[id] = cachedProfile{at: at, followed: followed}
		}
	}
	return nil
}

// freshenLocked empties the cache when this process changed a profile
// since it was filled, or when adding room more entries would overflow it.
// p.mu is held.
func (p *Planner) freshenLocked(room int) {
	if w := p.svc.writes.Load(); w != p.seen || len(p.cached)+room > maxCachedProfiles {
		p.seen = w
		clear(p.cached)
	}
}

// Plan implements commands.Planner.
func (p *Planner) Plan(ctx context.Context, req domain.NotificationRequest, now time.Time) (domain.PlanDecision, error) {
	var profile domain.RecipientProfile
	var sent func(category string, since time.Time) int
	if id := req.Recipient.ID; id != "" {
		var err error
		if profile, err = p.profile(ctx, id); err != nil {
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
