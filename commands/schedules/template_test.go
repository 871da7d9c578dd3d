package schedules_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"herald/commands/schedules"
	"herald/commands/templates"
	"herald/domain"
	"herald/infra/eventstore/sqlite"
)

// A schedule naming a template is checked when it is created, so that a
// bad reference is refused then rather than at every firing; the request
// is kept as sent (each firing pins the version of its time), and a repeat
// is still the original schedule after the template is archived.
func TestCreateChecksTheTemplate(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	clock := func() time.Time { return t0 }
	newID := func() string { return uuid.Must(uuid.NewV7()).String() }
	tmpl, err := templates.NewService(templates.Deps{Store: store, Clock: clock, NewID: newID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmpl.Create.Handle(t.Context(), templates.Create{ID: "digest", Content: domain.TemplateContent{
		Name: "Digest", DefaultLocale: "en",
		Variables: []domain.TemplateVar{{Name: "count", Type: domain.VarString, Required: true}},
		Locales: map[string]domain.LocaleContent{"en": {
			Email: &domain.EmailPart{Subject: "Digest", Text: "{{.count}} new"},
		}},
	}}); err != nil {
		t.Fatal(err)
	}
	svc, err := schedules.NewService(schedules.Deps{Store: store, Clock: clock, NewID: newID, Templates: tmpl})
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
		var ve *domain.ValidationError
		if !errors.As(err, &ve) || ve.Fields[0].Field != tc.field {
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
	if _, err := tmpl.Archive.Handle(t.Context(), templates.Archive{ID: "digest", Reason: "retired"}); err != nil {
		t.Fatal(err)
	}
	if again, err := create("daily", ok, email); err != nil || again.Changed {
		t.Fatalf("repeat after archiving: %+v, %v; want the original, unchanged", again, err)
	}
}
