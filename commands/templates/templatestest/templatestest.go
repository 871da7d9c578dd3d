// Package templatestest gives tests of the services that check templates
// (sends, group sends, schedules) an event log with a templates service
// on it and a published template.
package templatestest

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"herald/commands/templates"
	"herald/domain"
	"herald/infra/eventstore/sqlite"
)

// Env is a SQLite event log in the test's temporary folder, closed when
// the test ends, and a templates service on it.
type Env struct {
	Store     *sqlite.Store
	Templates *templates.Service
	Clock     func() time.Time
	NewID     func() string
}

// New opens the log and the service, with a clock stopped at now.
func New(t *testing.T, now time.Time) Env {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	e := Env{Store: store, Clock: func() time.Time { return now }, NewID: func() string { return uuid.Must(uuid.NewV7()).String() }}
	e.Templates, err = templates.NewService(templates.Deps{Store: store, Clock: e.Clock, NewID: e.NewID})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// CreateEmailOnly publishes template id, version 1: email content only,
// using the required string variable v.
func (e Env) CreateEmailOnly(t *testing.T, id, v string) {
	t.Helper()
	if _, err := e.Templates.Create.Handle(t.Context(), templates.Create{ID: domain.TemplateID(id), Content: domain.TemplateContent{
		Name: id, DefaultLocale: "en",
		Variables: []domain.TemplateVar{{Name: v, Type: domain.VarString, Required: true}},
		Locales: map[string]domain.LocaleContent{"en": {
			Email: &domain.EmailPart{Subject: id, Text: "{{." + v + "}}"},
		}},
	}}); err != nil {
		t.Fatal(err)
	}
}

// Archive archives template id.
func (e Env) Archive(t *testing.T, id string) {
	t.Helper()
	if _, err := e.Templates.Archive.Handle(t.Context(), templates.Archive{ID: domain.TemplateID(id), Reason: "retired"}); err != nil {
		t.Fatal(err)
	}
}

// InvalidField returns the field the first problem of err names when err
// is a *domain.ValidationError, and "" otherwise.
func InvalidField(err error) string {
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) == 0 {
		return ""
	}
	return ve.Fields[0].Field
}
