package groups_test

import (
	"errors"
	"testing"

	"herald/commands/groups"
	"herald/commands/templates/templatestest"
	"herald/domain"
)

// A group send naming a template is checked and pinned when it is
// requested: a bad reference is refused at once (not once per member at
// fan-out), the batch records the version it was requested with, and a
// repeat is still the original batch after the template is archived.
func TestGroupSendChecksAndPinsItsTemplate(t *testing.T) {
	t.Parallel()
	env := templatestest.New(t, t0)
	env.CreateEmailOnly(t, "otp", "code")
	svc, err := groups.NewService(groups.Deps{Store: env.Store, Clock: env.Clock, NewID: env.NewID, Templates: env.Templates})
	if err != nil {
		t.Fatal(err)
	}
	o := groups.Origin{Actor: "ann"}
	if _, err := svc.CreateGroup(t.Context(), o, "team", "Team", false); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ChangeMembers(t.Context(), o, "team", []string{"a", "b"}, nil); err != nil {
		t.Fatal(err)
	}
	send := func(ref domain.TemplateRef, channels []domain.Channel, key string) (groups.BatchResult, error) {
		return svc.SendToGroup(t.Context(), o, "team", domain.NotificationRequest{Channels: channels, Template: &ref}, key)
	}
	email := []domain.Channel{domain.ChannelEmail}
	for _, tc := range []struct {
		name     string
		ref      domain.TemplateRef
		channels []domain.Channel
		field    string
	}{
		{"unknown template", domain.TemplateRef{ID: "nope", Vars: map[string]any{"code": "1"}}, email, "template.id"},
		{"missing variable", domain.TemplateRef{ID: "otp"}, email, "template.vars.code"},
		{"missing variable, channels from profiles", domain.TemplateRef{ID: "otp"}, nil, "template.vars.code"},
		{"channel without content", domain.TemplateRef{ID: "otp", Vars: map[string]any{"code": "1"}}, []domain.Channel{domain.ChannelSMS}, "channels"},
	} {
		_, err := send(tc.ref, tc.channels, "")
		if templatestest.InvalidField(err) != tc.field {
			t.Errorf("%s: %v, want a validation error naming %s", tc.name, err, tc.field)
		}
	}

	ok := domain.TemplateRef{ID: "otp", Vars: map[string]any{"code": "424242"}}
	first, err := send(ok, email, "k1")
	if err != nil || !first.Changed {
		t.Fatalf("valid send: %+v, %v", first, err)
	}
	recs, err := env.Store.ReadStream(t.Context(), domain.BatchStream(first.Batch.ID()), 0, 10)
	if err != nil || len(recs) == 0 {
		t.Fatalf("batch stream: %d events, %v", len(recs), err)
	}
	e, err := domain.UnmarshalEvent(recs[0].Type, recs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.(domain.BatchRequested).Request.Template; got == nil || got.Version != 1 {
		t.Fatalf("batch recorded template %+v, want version 1 pinned", got)
	}

	env.Archive(t, "otp")
	again, err := send(ok, email, "k1")
	if err != nil || again.Changed || again.Batch.ID() != first.Batch.ID() {
		t.Fatalf("repeat after archiving: %+v, %v; want the original batch %s", again, err, first.Batch.ID())
	}
	if _, err := send(ok, email, "k2"); !errors.Is(err, domain.ErrTemplateArchived) {
		t.Fatalf("new send of an archived template: %v, want ErrTemplateArchived", err)
	}
}
