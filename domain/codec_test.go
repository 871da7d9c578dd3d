package domain_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/domain"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/events")

// sampleEvents holds one fixed event per type: the golden files are their
// encodings. Template vars are strings because numbers decode as
// json.Number, which a round-trip comparison would not see as equal to int.
func sampleEvents() []domain.Event {
	req := domain.NotificationRequest{
		Recipient: domain.Recipient{ID: "user-42", Email: "ada@example.com", Phone: "+15551234567",
			WebhookURL: "https://hooks.example.com/x"},
		Channels:    []domain.Channel{domain.ChannelWebhook, domain.ChannelEmail},
		Template:    &domain.TemplateRef{ID: "otp", Version: 3, Locale: "en", Vars: map[string]any{"code": "123456"}},
		Priority:    domain.PriorityHigh,
		Category:    "security",
		ScheduledAt: ptr(t0),
		ExpiresAt:   ptr(at(5)),
		Metadata:    map[string]string{"order": "A-17"},
		BatchID:     "batch-7",
	}
	return []domain.Event{
		domain.NotificationRequested{NotificationID: "n-1", Request: req, IdempotencyKey: "key-1", RequestedAt: at(-60)},
		domain.DeliveryPlanned{DeliveryID: "email-1", Channel: domain.ChannelEmail, Address: "ada@example.com", Priority: domain.PriorityHigh, PlannedAt: t0},
		domain.DeliverySuppressed{Channel: domain.ChannelSMS, Reason: "recipient opted out", SuppressedAt: t0},
		domain.DeliveryAttempted{DeliveryID: "email-1", Attempt: 1, AttemptedAt: at(1), LeaseUntil: at(2)},
		domain.DeliverySucceeded{DeliveryID: "email-1", Attempt: 2, ProviderMessageID: "<m-1@mail>", Confirmed: false, SucceededAt: at(2).Add(123456789),
			Rendered: &domain.Content{Subject: "Your code", Body: "Code 123456"}},
		domain.DeliveryFailed{DeliveryID: "webhook-1", Attempt: 1, Reason: "HTTP 429", Retryable: true, Throttled: true, FailedAt: at(1)},
		domain.DeliveryRetryScheduled{DeliveryID: "webhook-1", NextAttempt: 2, DueAt: at(3)},
		domain.DeliveryDeadLettered{DeliveryID: "webhook-1", Attempts: 5, Reason: "HTTP 410", DeadLetteredAt: at(30)},
		domain.DeliveryReceiptRecorded{DeliveryID: "email-1", Outcome: domain.ReceiptBounced, ProviderMessageID: "<m-1@mail>", Reason: "mailbox full", ReceivedAt: at(4)},
		domain.NotificationRead{DeliveryID: "inapp-1", Actor: "user-42", ReadAt: at(10)},
		domain.NotificationCancelled{Reason: "sent by mistake", Actor: "ops@example.com", CancelledAt: at(1)},
		domain.NotificationExpired{ExpiredAt: at(5)},
		domain.ResendRequested{Deliveries: []domain.ResendDelivery{
			{DeliveryID: "email-2", Repeats: "email-1", Channel: domain.ChannelEmail, Address: "ada@example.com"},
		}, Actor: "ops@example.com", Reason: "customer asked", Priority: domain.PriorityHigh, RequestedAt: at(60)},
		domain.NotificationHeld{Until: at(480), Reason: "quiet hours", HeldAt: t0},
		domain.PolicyApplied{Policy: domain.PolicyRecord{
			RecipientID: "user-42", ProfileVersion: 3, PreferencesRevision: 2, TimeZone: "Europe/Berlin",
			AddressFrom: map[domain.Channel]string{domain.ChannelEmail: "profile"},
			Rules:       []string{"opted out of sms/*"},
		}, AppliedAt: t0},
	}
}

func TestSampleEventsCoverEveryType(t *testing.T) {
	t.Parallel()
	var got []string
	for _, e := range sampleEvents() {
		got = append(got, e.EventType())
	}
	if want := domain.EventTypes(); !slices.Equal(got, want) {
		t.Errorf("sample types = %v, want %v", got, want)
	}
	consts := []string{
		domain.TypeNotificationRequested, domain.TypeDeliveryPlanned, domain.TypeDeliverySuppressed,
		domain.TypeDeliveryAttempted, domain.TypeDeliverySucceeded, domain.TypeDeliveryFailed,
		domain.TypeDeliveryRetryScheduled, domain.TypeDeliveryDeadLettered, domain.TypeDeliveryReceiptRecorded,
		domain.TypeNotificationRead, domain.TypeNotificationCancelled, domain.TypeNotificationExpired,
		domain.TypeResendRequested, domain.TypeNotificationHeld, domain.TypePolicyApplied,
	}
	for i, e := range sampleEvents() {
		// The type name is the struct name, so the stored type and the Go
		// type can never drift apart.
		name := reflect.TypeOf(e).Name()
		if e.EventType() != name || consts[i] != name {
			t.Errorf("EventType() = %q, constant %q, struct %q", e.EventType(), consts[i], name)
		}
	}
}

func TestEventGoldenFiles(t *testing.T) {
	// Not parallel: with -update it writes the files the next test reads.
	for _, e := range sampleEvents() {
		typ, data, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatalf("MarshalEvent(%T): %v", e, err)
		}
		if typ != e.EventType() {
			t.Errorf("MarshalEvent type = %q, want %q", typ, e.EventType())
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, data, "", "  "); err != nil {
			t.Fatalf("%s: output is not JSON: %v", typ, err)
		}
		pretty.WriteByte('\n')
		path := filepath.Join("testdata", "events", typ+".json")
		if *update {
			if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./domain -update to create it)", err)
		}
		if !bytes.Equal(pretty.Bytes(), want) {
			t.Errorf("%s: encoding differs from %s (a schema change needs a new schema version or an intentional -update)\ngot:\n%s\nwant:\n%s",
				typ, path, pretty.Bytes(), want)
		}
	}
}

func TestGoldenFilesMatchEventTypes(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "events", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, strings.TrimSuffix(filepath.Base(f), ".json"))
	}
	want := domain.EventTypes()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("golden files %v, event types %v: remove stale files or add missing ones", got, want)
	}
}

func TestMarshalEventSchemaVersion(t *testing.T) {
	t.Parallel()
	for _, e := range sampleEvents() {
		_, data, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(data, &top); err != nil {
			t.Fatal(err)
		}
		if string(top["schema_version"]) != "1" || domain.EventSchemaVersion != 1 {
			t.Errorf("%s: schema_version = %s, want 1", e.EventType(), top["schema_version"])
		}
		if len(top) < 2 {
			t.Errorf("%s: only %d top-level keys", e.EventType(), len(top))
		}
	}
}

func TestEventRoundTrip(t *testing.T) {
	t.Parallel()
	for _, e := range sampleEvents() {
		typ, data, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := domain.UnmarshalEvent(typ, data)
		if err != nil {
			t.Fatalf("UnmarshalEvent(%s): %v", typ, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("%s round trip:\n got %#v\nwant %#v", typ, got, e)
		}
		// A pointer to an event encodes exactly like the value.
		pv := reflect.New(reflect.TypeOf(e))
		pv.Elem().Set(reflect.ValueOf(e))
		ptyp, pdata, err := domain.MarshalEvent(pv.Interface().(domain.Event))
		if err != nil || ptyp != typ || !bytes.Equal(pdata, data) {
			t.Errorf("%s: pointer encodes as %q %s, %v", typ, ptyp, pdata, err)
		}
	}
}

func TestUnmarshalEventKeepsLargeNumbers(t *testing.T) {
	t.Parallel()
	e := domain.NotificationRequested{NotificationID: "n", Request: domain.NotificationRequest{
		Recipient: domain.Recipient{ID: "u"},
		Template:  &domain.TemplateRef{ID: "t", Vars: map[string]any{"order": 9007199254740993}},
	}, RequestedAt: t0}
	typ, data, err := domain.MarshalEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := domain.UnmarshalEvent(typ, data)
	if err != nil {
		t.Fatal(err)
	}
	v := got.(domain.NotificationRequested).Request.Template.Vars["order"]
	if n, ok := v.(json.Number); !ok || n.String() != "9007199254740993" {
		t.Errorf("vars.order = %#v, want json.Number 9007199254740993", v)
	}
}

type alienEvent struct{}

func (alienEvent) EventType() string { return "AlienEvent" }

func TestEventCodecErrors(t *testing.T) {
	t.Parallel()
	unmarshal := []struct {
		name string
		typ  string
		data string
		want error
	}{
		{"unknown type", "AlienEvent", `{"schema_version":1}`, domain.ErrUnknownEventType},
		{"empty type", "", `{"schema_version":1}`, domain.ErrUnknownEventType},
		{"future schema", domain.TypeNotificationExpired, `{"schema_version":2,"expired_at":"2026-12-01T09:00:00Z"}`, domain.ErrUnsupportedSchema},
		{"schema zero", domain.TypeNotificationExpired, `{"schema_version":0}`, domain.ErrUnsupportedSchema},
		{"missing schema", domain.TypeNotificationExpired, `{"expired_at":"2026-12-01T09:00:00Z"}`, domain.ErrUnsupportedSchema},
		{"not JSON", domain.TypeNotificationExpired, `nope`, nil},
		{"wrong field type", domain.TypeDeliveryAttempted, `{"schema_version":1,"attempt":"one"}`, nil},
		{"trailing data", domain.TypeNotificationExpired, `{"schema_version":1} {}`, nil},
	}
	for _, tt := range unmarshal {
		e, err := domain.UnmarshalEvent(tt.typ, []byte(tt.data))
		if err == nil || e != nil {
			t.Errorf("%s: UnmarshalEvent = %v, %v; want an error", tt.name, e, err)
			continue
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
		if tt.typ != "" && !strings.Contains(err.Error(), tt.typ) {
			t.Errorf("%s: error %q does not name the type", tt.name, err)
		}
	}

	var nilPlanned *domain.DeliveryPlanned
	for _, e := range []domain.Event{alienEvent{}, nil, nilPlanned} {
		if _, _, err := domain.MarshalEvent(e); !errors.Is(err, domain.ErrUnknownEventType) {
			t.Errorf("MarshalEvent(%#v) error = %v, want ErrUnknownEventType", e, err)
		}
	}
}

// TestRequestedPriority holds RequestedPriority to the priority
// UnmarshalEvent decodes, including requests whose metadata and template
// variables use the word "priority" themselves, and to UnmarshalEvent's
// refusals.
func TestRequestedPriority(t *testing.T) {
	t.Parallel()
	golden, err := os.ReadFile(filepath.Join("testdata", "events", domain.TypeNotificationRequested+".json"))
	if err != nil {
		t.Fatal(err)
	}
	datas := [][]byte{bytes.TrimSpace(golden)}
	for _, p := range []domain.Priority{"", domain.PriorityHigh, domain.PriorityNormal, domain.PriorityLow} {
		req := sampleEvents()[0].(domain.NotificationRequested)
		req.Request.Priority = p
		req.Request.Metadata = map[string]string{"priority": "high"}
		req.Request.Template.Vars = map[string]any{"request": map[string]any{"priority": "low"}, "priority": "high"}
		_, data, err := domain.MarshalEvent(req)
		if err != nil {
			t.Fatal(err)
		}
		datas = append(datas, data)
	}
	for _, data := range datas {
		e, err := domain.UnmarshalEvent(domain.TypeNotificationRequested, data)
		if err != nil {
			t.Fatal(err)
		}
		want := e.(domain.NotificationRequested).Request.Priority
		got, err := domain.RequestedPriority(data)
		if err != nil || got != want {
			t.Errorf("RequestedPriority(%s) = %q, %v; want %q", data, got, err, want)
		}
	}
	// The golden file's request is high priority: the comparison above is
	// not between two empty answers.
	if got, _ := domain.RequestedPriority(datas[0]); got != domain.PriorityHigh {
		t.Errorf("golden file priority %q, want high", got)
	}

	for _, tt := range []struct {
		name, data string
		want       error
	}{
		{"future schema", `{"schema_version":2,"request":{"priority":"high"}}`, domain.ErrUnsupportedSchema},
		{"missing schema", `{"request":{"priority":"high"}}`, domain.ErrUnsupportedSchema},
		{"not JSON", `nope`, nil},
		{"wrong field type", `{"schema_version":1,"request":{"priority":7}}`, nil},
		{"trailing data", `{"schema_version":1,"request":{"priority":"high"}} {}`, nil},
	} {
		p, err := domain.RequestedPriority([]byte(tt.data))
		if err == nil || p != "" {
			t.Errorf("%s: RequestedPriority = %q, %v; want an error", tt.name, p, err)
			continue
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
		if !strings.Contains(err.Error(), domain.TypeNotificationRequested) {
			t.Errorf("%s: error %q does not name the type", tt.name, err)
		}
	}
}

// benchRequested is a request shaped like the api benchmarks' (two
// channels, two metadata labels).
func benchRequested(p domain.Priority) domain.NotificationRequested {
	return domain.NotificationRequested{
		NotificationID: "ntf_bench",
		Request: domain.NotificationRequest{
			Recipient: domain.Recipient{ID: "user-1", Email: "user-1@example.com"},
			Channels:  []domain.Channel{domain.ChannelEmail, domain.ChannelInApp},
			Content:   &domain.Content{Subject: "Your order", Body: "Order A-17 has shipped."},
			Priority:  p,
			Category:  "orders",
			Metadata:  domain.Metadata{"order": "A-17", "tenant": "acme"},
		},
		IdempotencyKey: "key-1",
		RequestedAt:    time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC),
	}
}

// BenchmarkDecodeAndEvolveRequested is what a projection or a command does
// with every NotificationRequested it reads: decode it and evolve a state
// from it.
func BenchmarkDecodeAndEvolveRequested(b *testing.B) {
	typ, data, err := domain.MarshalEvent(benchRequested(domain.PriorityNormal))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		e, err := domain.UnmarshalEvent(typ, data)
		if err != nil {
			b.Fatal(err)
		}
		if n := domain.EvolveNotification(domain.Notification{}, e); n.Category() != "orders" {
			b.Fatalf("evolved %+v", n)
		}
	}
}

// BenchmarkRequestedPriority reads the priority of the request
// BenchmarkDecodeAndEvolveRequested decodes whole.
func BenchmarkRequestedPriority(b *testing.B) {
	_, data, err := domain.MarshalEvent(benchRequested(domain.PriorityHigh))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if p, err := domain.RequestedPriority(data); err != nil || p != domain.PriorityHigh {
			b.Fatalf("RequestedPriority = %q, %v", p, err)
		}
	}
}
