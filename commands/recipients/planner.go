package recipients

import (
	"context"
	"fmt"
	"time"

	"herald/domain"
)

// Planner is the send path's commands.Planner: it reads the recipient's
// profile (when the request names a recipient id) and applies
// domain.PlanForRecipient with the frequency counts of counter (nil: caps
// are not applied).
type Planner struct {
	svc     *Service
	counter *SendCounter
}

// NewPlanner returns a Planner over svc and counter.
func NewPlanner(svc *Service, counter *SendCounter) *Planner {
	return &Planner{svc: svc, counter: counter}
}

// Plan implements commands.Planner.
func (p *Planner) Plan(ctx context.Context, req domain.NotificationRequest, now time.Time) (domain.PlanDecision, error) {
	var profile domain.RecipientProfile
	var sent func(category string, since time.Time) int
	if id := req.Recipient.ID; id != "" {
		var err error
		if profile, _, err = p.svc.Profile(ctx, id); err != nil {
			return domain.PlanDecision{}, fmt.Errorf("recipient %s: %w", id, err)
		}
		if p.counter != nil {
			sent = p.counter.SentInWindow(id)
		}
	}
	return domain.PlanForRecipient(req, profile, now, sent), nil
}
