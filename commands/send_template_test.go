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
	store, _, h, _ := otpTemplateEnv(t)
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
	// A channel the template has no content for is refused even when the
	// request does not give its address (the profile may).
	smsByID := req
	smsByID.Recipient = domain.Recipient{ID: "u2"}
	smsByID.Channels = []domain.Channel{domain.ChannelSMS}
	if _, err := h.Send.Handle(t.Context(), commands.Send{Request: smsByID}); !errors.As(err, &ve) || ve.Fields[0].Field != "channels" {
		t.Fatalf("sms by recipient id with an email-only template: %v, want a validation error naming channels", err)
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

	bare, _ := commands.NewHandlers(commands.Deps{Store: store, Clock: func() time.Time { return testNow }, NewID: commands.UUIDv7})
	if _, err := bare.Send.Handle(t.Context(), commands.Send{Request: req}); !errors.As(err, &ve) || ve.Fields[0].Field != "template" {
		t.Fatalf("no template service: %v, want a validation error on template", err)
	}
}

// A repeat is judged against the original as the client sent it, however
// the template changed since: a new version, then archived. A key first
// used by a refused batch item is free for the next item, which goes the
// whole way (template pinned and checked).
func TestRepeatsOutliveTheirTemplate(t *testing.T) {
	t.Parallel()
	store, svc, h, content := otpTemplateEnv(t)
	req := domain.NotificationRequest{
		Recipient: domain.Recipient{ID: "u1", Email: "ada@example.com"}, Channels: []domain.Channel{domain.ChannelEmail},
		Template: &domain.TemplateRef{ID: "otp", Vars: map[string]any{"code": "424242"}},
	}
	first, err := h.Send.Handle(t.Context(), commands.Send{Request: req, IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	batchFirst, err := h.SendBatch.Handle(t.Context(), commands.SendBatch{Items: []commands.BatchItem{{Request: req, IdempotencyKey: "b1"}}})
	if err != nil || batchFirst.Items[0].Err != nil {
		t.Fatalf("batch = %+v, %v", batchFirst.Items, err)
	}
	repeat := func(stage string) {
		t.Helper()
		if again, err := h.Send.Handle(t.Context(), commands.Send{Request: req, IdempotencyKey: "k1"}); err != nil || again.ID != first.ID || again.Created {
			t.Fatalf("%s: repeat = %+v, %v; want the original %s", stage, again, err, first.ID)
		}
		b, err := h.SendBatch.Handle(t.Context(), commands.SendBatch{Items: []commands.BatchItem{{Request: req, IdempotencyKey: "b1"}}})
		if err != nil || b.Items[0].Err != nil || b.Items[0].ID != batchFirst.Items[0].ID || b.Items[0].Created {
			t.Fatalf("%s: batch repeat = %+v, %v; want the original %s", stage, b.Items, err, batchFirst.Items[0].ID)
		}
	}
	content.Locales["en"].Email.Subject = "Your new code"
	if _, err := svc.Update.Handle(t.Context(), templates.Update{ID: "otp", Content: content}); err != nil {
		t.Fatal(err)
	}
	repeat("after version 2")
	if _, err := svc.Archive.Handle(t.Context(), templates.Archive{ID: "otp", Reason: "retired"}); err != nil {
		t.Fatal(err)
	}
	repeat("after archiving")
	// A different request under a used key is still a conflict.
	other := req
	other.Template = &domain.TemplateRef{ID: "otp", Vars: map[string]any{"code": "1"}}
	if _, err := h.Send.Handle(t.Context(), commands.Send{Request: other, IdempotencyKey: "k1"}); !errors.Is(err, domain.ErrIdempotencyConflict) {
		t.Fatalf("different request under k1: %v, want an idempotency conflict", err)
	}
	// An archived template refuses a new key, alone or in a batch.
	if _, err := h.Send.Handle(t.Context(), commands.Send{Request: req, IdempotencyKey: "k2"}); err == nil {
		t.Fatal("a new key for an archived template was accepted")
	}

	if _, err := svc.Create.Handle(t.Context(), templates.Create{ID: "t2", Content: content}); err != nil {
		t.Fatal(err)
	}
	refused := req
	refused.Template = &domain.TemplateRef{ID: "nope", Vars: map[string]any{"code": "1"}}
	noVars := req
	noVars.Template = &domain.TemplateRef{ID: "t2"}
	valid := req
	valid.Template = &domain.TemplateRef{ID: "t2", Vars: map[string]any{"code": "7"}}
	b, err := h.SendBatch.Handle(t.Context(), commands.SendBatch{Items: []commands.BatchItem{
		{Request: refused, IdempotencyKey: "d1"}, {Request: noVars, IdempotencyKey: "d1"},
		{Request: refused, IdempotencyKey: "d2"}, {Request: valid, IdempotencyKey: "d2"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var ve *domain.ValidationError
	if !errors.Is(b.Items[0].Err, domain.ErrTemplateNotFound) || !errors.As(b.Items[1].Err, &ve) || ve.Fields[0].Field != "template.vars.code" {
		t.Fatalf("d1 items = %+v; want template not found, then the missing variable named", b.Items[:2])
	}
	if !errors.Is(b.Items[2].Err, domain.ErrTemplateNotFound) || b.Items[3].Err != nil || !b.Items[3].Created {
		t.Fatalf("d2 items = %+v; want template not found, then created", b.Items[2:])
	}
	recs, err := store.ReadStream(t.Context(), domain.NotificationStream(b.Items[3].ID), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := domain.UnmarshalEvent(recs[0].Type, recs[0].Data)
	if got := e.(domain.NotificationRequested).Request.Template; got.ID != "t2" || got.Version != 1 {
		t.Fatalf("recorded template %+v, want t2 pinned at version 1", got)
	}
}

// otpTemplateEnv is a log with the template "otp" (an email with a
// required variable "code") at version 1, its service, and the command
// handlers using it, with the clock at testNow.
func otpTemplateEnv(t *testing.T) (*sqlite.Store, *templates.Service, commands.Handlers, domain.TemplateContent) {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
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
	return store, svc, h, content
}
