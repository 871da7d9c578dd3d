package domain_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"herald/domain"
)

const rid = domain.RecipientID("user-42")

var (
	pushKey  = base64.RawURLEncoding.EncodeToString(append([]byte{4}, bytes.Repeat([]byte{7}, 64)...))
	pushAuth = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{9}, 16))
)

func pushSub(endpoint string) domain.WebPushSubscription {
	return domain.WebPushSubscription{Endpoint: endpoint, P256dh: pushKey, Auth: pushAuth}
}

func details() domain.RecipientDetails {
	return domain.RecipientDetails{
		Email: "ada@example.com", Phone: "+4915112345678", WebhookURL: "https://hooks.example.com/ada",
		SlackWebhookURL: "https://hooks.slack.com/services/T/B/X", Locale: "de-DE", TimeZone: "Europe/Berlin",
	}
}

func prefs() domain.Preferences {
	return domain.Preferences{
		OptOuts:            []domain.OptOut{{Channel: sms}, {Category: "marketing"}, {Channel: email, Category: "digest"}},
		QuietHours:         &domain.QuietHours{Start: "22:00", End: "07:00"},
		FrequencyCaps:      []domain.FrequencyCap{{Category: "promo", Max: 3, Window: "day"}, {Category: "*", Max: 20, Window: "1h"}},
		CriticalCategories: []string{"security"},
	}
}

func profileSet(d domain.RecipientDetails) domain.Event {
	return domain.RecipientProfileSet{RecipientID: rid, Profile: d, Actor: "crm", SetAt: t0}
}

func prefsSet(rev int, p domain.Preferences) domain.Event {
	return domain.RecipientPreferencesSet{RecipientID: rid, Revision: rev, Preferences: p, Actor: "user-42", SetAt: at(1)}
}

func replayRecipient(events ...domain.Event) domain.RecipientProfile {
	var r domain.RecipientProfile
	for _, e := range events {
		r = domain.EvolveRecipient(r, e)
	}
	return r
}

func TestDecideRecipient(t *testing.T) {
	t.Parallel()
	withSub := []domain.Event{domain.WebPushSubscriptionAdded{RecipientID: rid, Subscription: pushSub("https://push.example.com/a"), AddedAt: t0}}
	expired := append(slices.Clone(withSub), domain.WebPushSubscriptionExpired{RecipientID: rid, Endpoint: "https://push.example.com/a", ExpiredAt: at(1)})
	tooMany := []domain.Event{}
	for i := range domain.MaxWebPushSubscriptions {
		tooMany = append(tooMany, domain.WebPushSubscriptionAdded{RecipientID: rid, Subscription: pushSub("https://push.example.com/" + string(rune('a'+i))), AddedAt: t0})
	}
	unsubscribed := []domain.Event{domain.RecipientUnsubscribed{RecipientID: rid, Revision: 1, Category: "marketing", Via: "token", UnsubscribedAt: t0}}
	rekeyed := pushSub("https://push.example.com/a")
	rekeyed.Auth = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, 16))

	cases := []struct {
		name    string
		given   []domain.Event
		when    domain.RecipientCommand
		want    []domain.Event
		wantErr error
	}{
		{
			name: "first profile starts the stream, time in UTC",
			when: domain.SetRecipientProfile{ID: rid, Profile: details(), Actor: "crm", Now: t0.In(time.FixedZone("x", 3600))},
			want: []domain.Event{profileSet(details())},
		},
		{
			name:  "the same profile again is a no-op",
			given: []domain.Event{profileSet(details())},
			when:  domain.SetRecipientProfile{ID: rid, Profile: details(), Now: at(5)},
		},
		{
			name:    "a malformed id is a validation error",
			when:    domain.SetRecipientProfile{ID: "bad id/", Profile: details(), Now: t0},
			wantErr: domain.ErrInvalidRequest,
		},
		{
			name:    "a state of another recipient is refused",
			given:   []domain.Event{profileSet(details())},
			when:    domain.SetRecipientProfile{ID: "someone-else", Now: t0},
			wantErr: domain.ErrInvalidCommand,
		},
		{
			name: "preferences get revision 1",
			when: domain.SetRecipientPreferences{ID: rid, Preferences: prefs(), Actor: "user-42", Now: at(1)},
			want: []domain.Event{prefsSet(1, prefs())},
		},
		{
			name:  "equal preferences are a no-op",
			given: []domain.Event{prefsSet(1, prefs())},
			when:  domain.SetRecipientPreferences{ID: rid, Preferences: prefs(), Now: at(2)},
		},
		{
			name:    "an update based on an old revision is refused",
			given:   []domain.Event{prefsSet(1, prefs()), domain.RecipientUnsubscribed{RecipientID: rid, Revision: 2, Channel: email, Via: "token", UnsubscribedAt: at(2)}},
			when:    domain.SetRecipientPreferences{ID: rid, Preferences: domain.Preferences{}, CheckRevision: true, BasedOn: 1, Now: at(3)},
			wantErr: domain.ErrPreferencesChanged,
		},
		{
			name:  "an update based on the current revision goes through",
			given: []domain.Event{prefsSet(1, prefs())},
			when:  domain.SetRecipientPreferences{ID: rid, Preferences: domain.Preferences{}, CheckRevision: true, BasedOn: 1, Actor: "user-42", Now: at(1)},
			want:  []domain.Event{prefsSet(2, domain.Preferences{})},
		},
		{
			name: "unsubscribe adds an opt-out and a revision",
			when: domain.Unsubscribe{ID: rid, Category: "marketing", Via: "token", Now: t0},
			want: unsubscribed,
		},
		{
			name:  "unsubscribe covered by an existing opt-out is a no-op",
			given: unsubscribed,
			when:  domain.Unsubscribe{ID: rid, Channel: email, Category: "marketing", Via: "token", Now: at(1)},
		},
		{
			name:  "a channel opt-out does not cover a whole-category unsubscribe",
			given: []domain.Event{domain.RecipientUnsubscribed{RecipientID: rid, Revision: 1, Channel: email, Category: "news", Via: "token", UnsubscribedAt: t0}},
			when:  domain.Unsubscribe{ID: rid, Category: "news", Via: "token", Now: at(1)},
			want:  []domain.Event{domain.RecipientUnsubscribed{RecipientID: rid, Revision: 2, Category: "news", Via: "token", UnsubscribedAt: at(1)}},
		},
		{
			name:    "unsubscribe from nothing is refused",
			when:    domain.Unsubscribe{ID: rid, Via: "token", Now: t0},
			wantErr: domain.ErrInvalidRequest,
		},
		{
			name: "a push subscription is added",
			when: domain.AddWebPushSubscription{ID: rid, Subscription: pushSub("https://push.example.com/a"), Now: t0},
			want: withSub,
		},
		{
			name:  "the same subscription again is a no-op",
			given: withSub,
			when:  domain.AddWebPushSubscription{ID: rid, Subscription: pushSub("https://push.example.com/a"), Now: at(1)},
		},
		{
			name:  "new keys for an endpoint replace the old",
			given: withSub,
			when:  domain.AddWebPushSubscription{ID: rid, Subscription: rekeyed, Now: at(1)},
			want:  []domain.Event{domain.WebPushSubscriptionAdded{RecipientID: rid, Subscription: rekeyed, AddedAt: at(1)}},
		},
		{
			name:    "more than the limit of subscriptions is refused",
			given:   tooMany,
			when:    domain.AddWebPushSubscription{ID: rid, Subscription: pushSub("https://push.example.com/zz"), Now: at(1)},
			wantErr: domain.ErrInvalidRequest,
		},
		{
			name:  "an active subscription expires",
			given: withSub,
			when:  domain.ExpireWebPushSubscription{ID: rid, Endpoint: "https://push.example.com/a", Now: at(1)},
			want:  expired[1:],
		},
		{
			name:  "expiring twice is a no-op",
			given: expired,
			when:  domain.ExpireWebPushSubscription{ID: rid, Endpoint: "https://push.example.com/a", Now: at(2)},
		},
		{
			name:    "expiring an unknown endpoint is refused",
			given:   withSub,
			when:    domain.ExpireWebPushSubscription{ID: rid, Endpoint: "https://push.example.com/other", Now: at(2)},
			wantErr: domain.ErrWebPushSubscriptionNotFound,
		},
		{
			name:    "expiring on an unknown recipient is refused",
			when:    domain.ExpireWebPushSubscription{ID: rid, Endpoint: "https://push.example.com/a", Now: at(2)},
			wantErr: domain.ErrRecipientNotFound,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := domain.DecideRecipient(replayRecipient(tc.given...), tc.when)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events:\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestRecipientValidationNamesEveryField(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cmd  domain.RecipientCommand
		want []string
	}{
		{
			name: "profile",
			cmd: domain.SetRecipientProfile{ID: rid, Now: t0, Profile: domain.RecipientDetails{
				Email: "nope", Phone: "0151 1234", WebhookURL: "ftp://x", SlackWebhookURL: "/relative",
				DingTalkWebhookURL: "::", WeComWebhookURL: "http://", Locale: "e", TimeZone: "Mars/Olympus",
			}},
			want: []string{"email", "phone", "webhook_url", "slack_webhook_url", "dingtalk_webhook_url", "wecom_webhook_url", "locale", "time_zone"},
		},
		{
			name: "Local is not a time zone",
			cmd:  domain.SetRecipientProfile{ID: rid, Now: t0, Profile: domain.RecipientDetails{TimeZone: "Local"}},
			want: []string{"time_zone"},
		},
		{
			name: "preferences",
			cmd: domain.SetRecipientPreferences{ID: rid, Now: t0, Preferences: domain.Preferences{
				OptOuts:            []domain.OptOut{{Channel: "fax"}, {}, {Category: "Bad Cat"}, {Channel: email}, {Channel: email}},
				QuietHours:         &domain.QuietHours{Start: "24:00", End: "7:00", Days: []string{"mon", "funday", "mon"}},
				FrequencyCaps:      []domain.FrequencyCap{{Category: "", Max: 0, Window: "week"}, {Category: "promo", Max: 1, Window: "30s"}, {Category: "promo", Max: 2, Window: "day"}, {Category: "promo", Max: 3, Window: "day"}},
				CriticalCategories: []string{"security", "", "security"},
			}},
			want: []string{
				"opt_outs[0].channel", "opt_outs[1]", "opt_outs[2].category", "opt_outs[4]",
				"quiet_hours.start", "quiet_hours.end", "quiet_hours.days[1]", "quiet_hours.days[2]",
				"frequency_caps[0].category", "frequency_caps[0].max", "frequency_caps[0].window",
				"frequency_caps[1].window", "frequency_caps[3]",
				"critical_categories[1]", "critical_categories[2]",
			},
		},
		{
			name: "quiet hours that start and end alike",
			cmd:  domain.SetRecipientPreferences{ID: rid, Now: t0, Preferences: domain.Preferences{QuietHours: &domain.QuietHours{Start: "08:00", End: "08:00"}}},
			want: []string{"quiet_hours.end"},
		},
		{
			name: "push subscription",
			cmd: domain.AddWebPushSubscription{ID: rid, Now: t0, Subscription: domain.WebPushSubscription{
				Endpoint: "http://push.example.com/a", P256dh: base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{4}, 33)), Auth: "!!",
			}},
			want: []string{"endpoint", "keys.p256dh", "keys.auth"},
		},
		{
			name: "unsubscribe",
			cmd:  domain.Unsubscribe{ID: rid, Channel: "fax", Category: "Bad", Now: t0},
			want: []string{"channel", "category"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := domain.DecideRecipient(domain.RecipientProfile{}, tc.cmd)
			var ve *domain.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *ValidationError", err)
			}
			if got := fieldNames(ve); !slices.Equal(got, tc.want) {
				t.Errorf("fields = %v\n want %v", got, tc.want)
			}
		})
	}
}

func TestWebPushKeysAcceptPaddedBase64(t *testing.T) {
	t.Parallel()
	s := domain.WebPushSubscription{
		Endpoint: "https://push.example.com/a",
		P256dh:   base64.URLEncoding.EncodeToString(append([]byte{4}, bytes.Repeat([]byte{2}, 64)...)),
		Auth:     base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{3}, 16)),
	}
	if err := s.Validate(); err != nil {
		t.Errorf("padded keys: %v", err)
	}
}

func TestEvolveRecipient(t *testing.T) {
	t.Parallel()
	subA, subB := pushSub("https://push.example.com/a"), pushSub("https://push.example.com/b")
	events := []domain.Event{
		prefsSet(1, prefs()),
		profileSet(details()),
		domain.WebPushSubscriptionAdded{RecipientID: rid, Subscription: subA, AddedAt: at(2)},
		domain.WebPushSubscriptionAdded{RecipientID: rid, Subscription: subB, AddedAt: at(3)},
		domain.RecipientUnsubscribed{RecipientID: rid, Revision: 2, Channel: webhook, Via: "token", UnsubscribedAt: at(4)},
		&domain.WebPushSubscriptionExpired{RecipientID: rid, Endpoint: subA.Endpoint, Reason: "410 Gone", ExpiredAt: at(5)},
		domain.NotificationExpired{ExpiredAt: at(6)}, // not a recipient event: counted, ignored
	}
	var states []domain.RecipientProfile
	var r domain.RecipientProfile
	for _, e := range events {
		r = domain.EvolveRecipient(r, e)
		states = append(states, r)
	}
	if !r.Exists() || r.ID() != rid || r.Version() != len(events) {
		t.Fatalf("exists %v id %q version %d", r.Exists(), r.ID(), r.Version())
	}
	if !r.CreatedAt().Equal(at(1)) || !r.UpdatedAt().Equal(at(5)) {
		t.Errorf("created %v updated %v", r.CreatedAt(), r.UpdatedAt())
	}
	if r.Details() != details() || !r.HasDetails() {
		t.Errorf("details %+v", r.Details())
	}
	if loc, ok := r.Location(); !ok || loc.String() != "Europe/Berlin" {
		t.Errorf("location %v %v", loc, ok)
	}
	if got := r.WebPushSubscriptions(); !reflect.DeepEqual(got, []domain.WebPushSubscription{subB}) {
		t.Errorf("subscriptions %+v", got)
	}
	p := r.Preferences()
	if r.PreferencesRevision() != 2 || !r.PreferencesUpdatedAt().Equal(at(4)) || len(p.OptOuts) != 4 || p.OptOuts[3] != (domain.OptOut{Channel: webhook}) {
		t.Errorf("revision %d prefs %+v", r.PreferencesRevision(), p)
	}
	// Earlier states are values: later events did not leak into them.
	if got := states[3].WebPushSubscriptions(); len(got) != 2 {
		t.Errorf("state after two adds has %d subscriptions", len(got))
	}
	if got := states[0].Preferences(); len(got.OptOuts) != 3 {
		t.Errorf("state after first preferences has %d opt-outs", len(got.OptOuts))
	}
	p.OptOuts[0].Channel = "tampered"
	if r.Preferences().OptOuts[0].Channel == "tampered" {
		t.Error("Preferences shares its slice with the state")
	}
	if got := domain.EvolveRecipient(r, (*domain.RecipientProfileSet)(nil)); got.Version() != r.Version() {
		t.Error("a nil event was counted")
	}
	if loc, ok := (domain.RecipientProfile{}).Location(); ok || loc != time.UTC {
		t.Errorf("no profile: location %v %v", loc, ok)
	}
}

func TestRecipientIDValid(t *testing.T) {
	t.Parallel()
	for id, want := range map[domain.RecipientID]bool{
		"user-42": true, "42": true, "ada@example.com": true, "tenant:7:user_1": true,
		"": false, "-x": false, "a b": false, "a/b": false, "é": false,
		domain.RecipientID(bytes.Repeat([]byte("a"), domain.MaxRecipientIDLen+1)): false,
	} {
		if got := id.Valid(); got != want {
			t.Errorf("%q.Valid() = %v", id, got)
		}
	}
	if got := domain.RecipientStream(rid); got != "recipient-user-42" {
		t.Errorf("stream %q", got)
	}
}

// recipientSampleEvents holds one fixed event per recipient event type: the
// golden files in testdata/recipients are their encodings.
func recipientSampleEvents() []domain.Event {
	return []domain.Event{
		profileSet(details()),
		prefsSet(1, prefs()),
		domain.RecipientUnsubscribed{RecipientID: rid, Revision: 2, Channel: email, Category: "marketing", Via: "token", UnsubscribedAt: at(2)},
		domain.WebPushSubscriptionAdded{RecipientID: rid, Subscription: pushSub("https://push.example.com/a"), AddedAt: at(3)},
		domain.WebPushSubscriptionExpired{RecipientID: rid, Endpoint: "https://push.example.com/a", Reason: "410 Gone", ExpiredAt: at(4)},
	}
}

func TestRecipientEventGoldenFiles(t *testing.T) {
	// Not parallel: with -update it writes the files it compares.
	var types []string
	for _, e := range recipientSampleEvents() {
		typ, data, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatalf("MarshalEvent(%T): %v", e, err)
		}
		types = append(types, typ)
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, data, "", "  "); err != nil {
			t.Fatal(err)
		}
		pretty.WriteByte('\n')
		path := filepath.Join("testdata", "recipients", typ+".json")
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
			t.Errorf("%s: encoding differs from %s\ngot:\n%s\nwant:\n%s", typ, path, pretty.Bytes(), want)
		}
	}
	if want := domain.RecipientEventTypes(); !slices.Equal(types, want) {
		t.Errorf("sample types %v, want %v", types, want)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "recipients", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(types) {
		t.Errorf("golden files %v for types %v: remove stale files", files, types)
	}
}

func TestRecipientEventRoundTrip(t *testing.T) {
	t.Parallel()
	for _, e := range recipientSampleEvents() {
		typ, data, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if typ != reflect.TypeOf(e).Name() {
			t.Errorf("type %q for struct %T", typ, e)
		}
		got, err := domain.UnmarshalEvent(typ, data)
		if err != nil {
			t.Fatalf("UnmarshalEvent(%s): %v", typ, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("%s round trip:\n got %#v\nwant %#v", typ, got, e)
		}
		if slices.Contains(domain.EventTypes(), typ) {
			t.Errorf("%s listed in EventTypes", typ)
		}
	}
	if _, err := domain.UnmarshalEvent(domain.TypeRecipientUnsubscribed, []byte(`{"schema_version":2}`)); !errors.Is(err, domain.ErrUnsupportedSchema) {
		t.Errorf("future schema: %v", err)
	}
}
