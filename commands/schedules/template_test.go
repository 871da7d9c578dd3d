package schedules_test

import (
	"errors"
	"testing"
	"time"

	"herald/commands/schedules"
	"herald/commands/templates/templatestest"
	"herald/domain"
)

// A schedule naming a template is checked when it is created, so that a
// bad reference is refused then rather than at every firing; the request
// is kept as sent (each firing pins the version of its time), and a repeat
// is still the original schedule after the template is archived.
func TestCreateChecksTheTemplate(t *testing.T) {
	t.Parallel()
	env := templatestest.New(t, t0)
	env.CreateEmailOnly(t, "digest", "count")
	svc, err := schedules.NewService(schedules.Deps{Store: env.Store, Clock: env.Clock, NewID: env.NewID, Templates: env.Templates})
	if err != nil {
		t.Fatal(err)
	}
	spec := domain.ScheduleSpec{EverySeconds: 3600, StartAt: t0.Add(time.Hour)}
	create := func(id domain.ScheduleID, ref domain.TemplateRef, channels []domain.Channel) (schedules.Result, error) {
		req := domain.NotificationRequest{Recipient: domain.Recipient{ID: "u1"}, Channels: channels, Template: &ref}
		return svc.Create(t.Context(), schedules.Origin{Actor: "ann"}, id, spec, req, "")
	}
	email := []domain.Channel{domain.ChannelEmail}
	for _, tc := range []struct {
		name     string
		ref      domain.TemplateRef
		channels []domain.Channel
		field    string
	}{
		{"unknown template", domain.TemplateRef{ID: "nope", Vars: map[string]any{"count": "3"}}, email, "template.id"},
		{"missing variable", domain.TemplateRef{ID: "digest"}, email, "template.vars.count"},
		{"channel without content", domain.TemplateRef{ID: "digest", Vars: map[string]any{"count": "3"}}, []domain.Channel{domain.ChannelSMS}, "channels"},
	} {
		_, err := create("bad", tc.ref, tc.channels)
		if templatestest.InvalidField(err) != tc.field {
			t.Errorf("%s: %v, want a validation error naming %s", tc.name, err, tc.field)
		}
	}
	if _, err := svc.Get(t.Context(), "bad"); !errors.Is(err, domain.ErrScheduleNotFound) {
		t.Errorf("refused creations left a schedule: %v", err)
	}

	ok := domain.TemplateRef{ID: "digest", Vars: map[string]any{"count": "3"}}
	first, err := create("daily", ok, email)
	if err != nil || !first.Changed {
		t.Fatalf("valid schedule: %+v, %v", first, err)
	}
	if got := first.Schedule.Request().Template; got == nil || got.Version != 0 {
		t.Errorf("schedule keeps template %+v, want it as sent (no version: the latest at each firing)", got)
	}
	env.Archive(t, "digest")
	if again, err := create("daily", ok, email); err != nil || again.Changed {
		t.Fatalf("repeat after archiving: %+v, %v; want the original, unchanged", again, err)
	}
}
