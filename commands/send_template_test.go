package commands_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"herald/commands"
	"herald/commands/templates"
	"herald/domain"
	"herald/infra/eventstore/sqlite"
)

func TestSendPinsTheTemplateVersionAndChecksVars(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	clock := func() time.Time { return testNow }
	svc, err := templates.NewService(templates.Deps{Store: store, Clock: clock, NewID: commands.UUIDv7})
	if err != nil {
		t.Fatal(err)
	}
	content := domain.TemplateContent{
		Name: "One-time code", DefaultLocale: "en",
		Variables: []domain.TemplateVar{{Name: "code", Type: domain.VarString, Required: true}},
		Locales: map[string]domain.LocaleContent{"en": {
			Email: &domain.EmailPart{Subject: "Your code", Text: "Code {{.code}}", HTML: "<p>Code {{.code}}</p>"},
		}},
	}
	if _, err := svc.Create.Handle(t.Context(), templates.Create{ID: "otp", Content: content}); err != nil {
		t.Fatal(err)
	}
	h, err := commands.NewHandlers(commands.Deps{Store: store, Clock: clock, NewID: commands.UUIDv7, Templates: svc})
	if err != nil {
		t.Fatal(err)
	}
	req := domain.NotificationRequest{
		Recipient: domain.Recipient{ID: "u1", Email: "ada@example.com"}, Channels: []domain.Channel{domain.ChannelEmail},
		Template: &domain.TemplateRef{ID: "otp", Vars: map[string]any{"code": "424242"}},
	}
	res, err := h.Send.Handle(t.Context(), commands.Send{Request: req, IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := store.ReadStream(t.Context(), domain.NotificationStream(res.ID), 0, 10)
	e, _ := domain.UnmarshalEvent(recs[0].Type, recs[0].Data)
	if got := e.(domain.NotificationRequested).Request.Template; got.Version != 1 {
		t.Fatalf("recorded template %+v, want version 1 pinned", got)
	}
	// A repeat asking for "the latest" is the same request.
	if again, err := h.Send.Handle(t.Context(), commands.Send{Request: req, IdempotencyKey: "k1"}); err != nil || again.ID != res.ID || again.Created {
		t.Fatalf("repeat = %+v, %v", again, err)
	}

	missing := req
	missing.Template = &domain.TemplateRef{ID: "otp"}
	_, err = h.Send.Handle(t.Context(), commands.Send{Request: missing})
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) == 0 || ve.Fields[0].Field != "template.vars.code" {
		t.Fatalf("missing variable: %v, want a validation error naming template.vars.code", err)
	}
	unknown := req
	unknown.Template = &domain.TemplateRef{ID: "nope", Vars: map[string]any{"code": "1"}}
	if _, err := h.Send.Handle(t.Context(), commands.Send{Request: unknown}); !errors.Is(err, domain.ErrTemplateNotFound) {
		t.Fatalf("unknown template: %v", err)
	}
	// The batch path checks each item the same way.
	batch, err := h.SendBatch.Handle(t.Context(), commands.SendBatch{Items: []commands.BatchItem{{Request: req}, {Request: missing}}})
	if err != nil || batch.Items[0].Err != nil || !errors.As(batch.Items[1].Err, &ve) {
		t.Fatalf("batch = %+v, %v", batch.Items, err)
	}

	bare, _ := commands.NewHandlers(commands.Deps{Store: store, Clock: clock, NewID: commands.UUIDv7})
	if _, err := bare.Send.Handle(t.Context(), commands.Send{Request: req}); !errors.As(err, &ve) || ve.Fields[0].Field != "template" {
		t.Fatalf("no template service: %v, want a validation error on template", err)
	}
}
