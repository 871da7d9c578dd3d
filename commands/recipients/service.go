package recipients

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"herald/domain"
)

// Service is the recipient side of Herald: the command handlers, the
// reads, the unsubscribe links, and the calls the send path and the
// adapters make. Safe for concurrent use.
type Service struct {
	// The command handlers.
	SetProfile     *SetProfileHandler
	SetPreferences *SetPreferencesHandler
	Unsubscribe    *UnsubscribeHandler
	AddWebPush     *AddWebPushHandler
	ExpireWebPush  *ExpireWebPushHandler

	x         executor
	clock     func() time.Time
	secret    []byte
	publicURL string
	ttl       time.Duration
	writes    atomic.Int64 // appends made through this Service
}

// NewService returns a Service over d; it refuses missing Deps and an
// UnsubscribeSecret shorter than MinUnsubscribeSecretLen.
func NewService(d Deps) (*Service, error) {
	if err := d.validate("new recipient service"); err != nil {
		return nil, err
	}
	sp, _ := NewSetProfileHandler(d)
	pr, _ := NewSetPreferencesHandler(d)
	un, _ := NewUnsubscribeHandler(d)
	aw, _ := NewAddWebPushHandler(d)
	ew, _ := NewExpireWebPushHandler(d)
	ttl := d.UnsubscribeTTL
	if ttl == 0 {
		ttl = DefaultUnsubscribeTTL
	}
	s := &Service{
		SetProfile: sp, SetPreferences: pr, Unsubscribe: un, AddWebPush: aw, ExpireWebPush: ew,
		x:         executor{store: d.Store, newID: d.NewID},
		clock:     d.Clock,
		secret:    slices.Clone(d.UnsubscribeSecret),
		publicURL: strings.TrimRight(d.PublicURL, "/"),
		ttl:       ttl,
	}
	for _, x := range []*executor{&s.x, &sp.x, &pr.x, &un.x, &aw.x, &ew.x} {
		x.writes = &s.writes
	}
	return s, nil
}

// Get returns the recipient. One with nothing recorded (or a malformed ID)
// gives an error wrapping domain.ErrRecipientNotFound.
func (s *Service) Get(ctx context.Context, id domain.RecipientID) (domain.RecipientProfile, error) {
	if !id.Valid() {
		return domain.RecipientProfile{}, fmt.Errorf("get recipient %q: %w", id, domain.ErrRecipientNotFound)
	}
	r, err := s.x.load(ctx, id)
	if err != nil {
		return domain.RecipientProfile{}, err
	}
	if !r.Exists() {
		return domain.RecipientProfile{}, fmt.Errorf("get recipient %q: %w", id, domain.ErrRecipientNotFound)
	}
	return r, nil
}

// Profile returns the recipient as planning needs it, for
// domain.PlanForRecipient, with its stream version. A recipient with no
// stream, or an ID that cannot name one (requests may carry any ID), gives
// the zero value, version 0 and no error: planning then uses the request
// alone. It reads the stream, so it sees every append committed before the
// call.
func (s *Service) Profile(ctx context.Context, id string) (domain.RecipientProfile, int, error) {
	rid := domain.RecipientID(id)
	if !rid.Valid() {
		return domain.RecipientProfile{}, 0, nil
	}
	r, err := s.x.load(ctx, rid)
	if err != nil {
		return domain.RecipientProfile{}, 0, fmt.Errorf("recipient profile %q: %w", id, err)
	}
	return r, r.Version(), nil
}

// WebPushSubscriptions returns the recipient's active push subscriptions,
// oldest first; none (and no error) for an unknown recipient.
func (s *Service) WebPushSubscriptions(ctx context.Context, id string) ([]domain.WebPushSubscription, error) {
	r, _, err := s.Profile(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.WebPushSubscriptions(), nil
}

// MarkSubscriptionExpired records that the push service no longer knows
// endpoint (it answered 404 or 410), so no further push goes to it. Marking
// an already expired subscription returns nil; an endpoint the recipient
// never had gives an error wrapping domain.ErrWebPushSubscriptionNotFound,
// an unknown recipient one wrapping domain.ErrRecipientNotFound.
func (s *Service) MarkSubscriptionExpired(ctx context.Context, recipientID, endpoint string) error {
	_, err := s.ExpireWebPush.Handle(ctx, ExpireWebPush{
		Origin: Origin{Actor: "webpush"}, ID: domain.RecipientID(recipientID), Endpoint: endpoint,
		Reason: "push service reported the subscription gone",
	})
	if err != nil {
		return fmt.Errorf("mark subscription expired: %w", err)
	}
	return nil
}

// UnsubscribeURL returns a link that, without an API key, opts recipient
// out of channel for category (either may be empty, meaning every; not
// both), valid for the service's UnsubscribeTTL from now. Adapters put it
// in messages (an email's List-Unsubscribe header and footer). It returns
// "" when links are not configured or the arguments could never be
// honoured (a malformed recipient ID, an unknown channel, a malformed
// category, or neither channel nor category).
func (s *Service) UnsubscribeURL(recipient, channel, category string) string {
	id, ch := domain.RecipientID(recipient), domain.Channel(channel)
	switch {
	case len(s.secret) == 0, !id.Valid(), ch != "" && !ch.Valid(), ch == "" && category == "", !validCategory(category):
		return ""
	}
	token := signToken(s.secret, UnsubscribeClaim{Recipient: id, Channel: ch, Category: category, ExpiresAt: s.clock().Add(s.ttl)})
	return s.publicURL + "/v1/unsubscribe?token=" + url.QueryEscape(token)
}

// VerifyUnsubscribeToken returns what token asks for, or an error wrapping
// ErrInvalidToken, ErrTokenExpired or ErrUnsubscribeDisabled.
func (s *Service) VerifyUnsubscribeToken(token string) (UnsubscribeClaim, error) {
	c, err := verifyToken(s.secret, token, s.clock())
	if err != nil {
		return UnsubscribeClaim{}, fmt.Errorf("verify unsubscribe token: %w", err)
	}
	return c, nil
}

// UnsubscribeWithToken verifies token and records the opt-out it carries,
// attributed to the recipient. A second use of the same link succeeds with
// Changed false.
func (s *Service) UnsubscribeWithToken(ctx context.Context, token string, o Origin) (UnsubscribeClaim, Result, error) {
	c, err := s.VerifyUnsubscribeToken(token)
	if err != nil {
		return UnsubscribeClaim{}, Result{}, err
	}
	if o.Actor == "" {
		o.Actor = "recipient:" + string(c.Recipient)
	}
	res, err := s.Unsubscribe.Handle(ctx, Unsubscribe{Origin: o, ID: c.Recipient, Channel: c.Channel, Category: c.Category, Via: "token"})
	return c, res, err
}

// validCategory mirrors the request rule for categories (the domain keeps
// its own unexported): at most domain.MaxCategoryLen of a-z, 0-9, '_',
// '.', '-'.
func validCategory(s string) bool {
	if len(s) > domain.MaxCategoryLen {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
		default:
			return false
		}
	}
	return true
}
