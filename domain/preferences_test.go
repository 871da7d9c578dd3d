package domain_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/domain"
)

// planProfile is a recipient in zone with p, optionally push-subscribed.
func planProfile(zone string, p domain.Preferences, subscribed bool) domain.RecipientProfile {
	d := domain.RecipientDetails{
		Email: "profile@example.com", Phone: "+4915112345678", WebhookURL: "https://hooks.example.com/ada",
		SlackWebhookURL: "https://hooks.slack.com/services/T/B/X", TimeZone: zone,
	}
	events := []domain.Event{profileSet(d), prefsSet(1, p)}
	if subscribed {
		events = append(events, domain.WebPushSubscriptionAdded{RecipientID: rid, Subscription: pushSub("https://push.example.com/a"), AddedAt: t0})
	}
	return replayRecipient(events...)
}

func planReq(category string, prio domain.Priority, channels ...domain.Channel) domain.NotificationRequest {
	return domain.NotificationRequest{
		Recipient: domain.Recipient{ID: string(rid)},
		Channels:  channels,
		Content:   &domain.Content{Body: "hi"},
		Priority:  prio,
		Category:  category,
	}
}

// sends returns a sentInWindow counting the given send times at or after
// since, for every category, and records the since it was asked about.
func sends(asked *[]time.Time, times ...time.Time) func(string, time.Time) int {
	return func(_ string, since time.Time) int {
		if asked != nil {
			*asked = append(*asked, since)
		}
		n := 0
		for _, t := range times {
			if !t.Before(since) {
				n++
			}
		}
		return n
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone database: %v", err)
	}
	return loc
}

func channelsOf(plans []domain.DeliveryPlan) []domain.Channel {
	var out []domain.Channel
	for _, p := range plans {
		out = append(out, p.Channel)
	}
	return out
}

func TestPlanForRecipientChannelsAndAddresses(t *testing.T) {
	t.Parallel()
	noPrefs := domain.Preferences{}
	cases := []struct {
		name         string
		req          domain.NotificationRequest
		profile      domain.RecipientProfile
		wantPlans    []domain.DeliveryPlan
		wantSupp     []domain.Suppression
		wantFrom     map[domain.Channel]string
		wantNoRecord bool
	}{
		{
			name:      "no profile, id only: in-app",
			req:       planReq("", ""),
			wantPlans: []domain.DeliveryPlan{{Channel: inapp, Address: "user-42"}},
			wantFrom:  map[domain.Channel]string{inapp: domain.AddressFromRecipientID},
		},
		{
			name:    "empty channel list: every reachable channel from the profile, no push without subscription",
			req:     planReq("", ""),
			profile: planProfile("Europe/Berlin", noPrefs, false),
			wantPlans: []domain.DeliveryPlan{
				{Channel: webhook, Address: "https://hooks.example.com/ada"}, {Channel: email, Address: "profile@example.com"},
				{Channel: sms, Address: "+4915112345678"}, {Channel: slack, Address: "https://hooks.slack.com/services/T/B/X"},
				{Channel: inapp, Address: "user-42"},
			},
			wantFrom: map[domain.Channel]string{webhook: "profile", email: "profile", sms: "profile", slack: "profile", inapp: "recipient_id"},
		},
		{
			name:    "push is implicit once subscribed",
			req:     planReq("", ""),
			profile: planProfile("", noPrefs, true),
			wantPlans: []domain.DeliveryPlan{
				{Channel: webhook, Address: "https://hooks.example.com/ada"}, {Channel: email, Address: "profile@example.com"},
				{Channel: sms, Address: "+4915112345678"}, {Channel: slack, Address: "https://hooks.slack.com/services/T/B/X"},
				{Channel: domain.ChannelWebPush, Address: "user-42"}, {Channel: inapp, Address: "user-42"},
			},
			wantFrom: map[domain.Channel]string{webhook: "profile", email: "profile", sms: "profile", slack: "profile",
				domain.ChannelWebPush: "recipient_id", inapp: "recipient_id"},
		},
		{
			name:     "push asked for without a subscription is suppressed",
			req:      planReq("", "", domain.ChannelWebPush, domain.ChannelDingTalk),
			profile:  planProfile("", noPrefs, false),
			wantSupp: []domain.Suppression{{Channel: domain.ChannelWebPush, Reason: "no web push subscription"}, {Channel: domain.ChannelDingTalk, Reason: "no address for channel"}},
		},
		{
			name: "request address overrides the profile's, profile fills the rest",
			req: func() domain.NotificationRequest {
				r := planReq("", "", email, sms)
				r.Recipient.Email = "request@example.com"
				return r
			}(),
			profile:   planProfile("", noPrefs, false),
			wantPlans: []domain.DeliveryPlan{{Channel: email, Address: "request@example.com"}, {Channel: sms, Address: "+4915112345678"}},
			wantFrom:  map[domain.Channel]string{email: "request", sms: "profile"},
		},
		{
			name: "a profile of another recipient is ignored",
			req: func() domain.NotificationRequest {
				r := planReq("", "", email)
				r.Recipient.ID = "someone-else"
				return r
			}(),
			profile:      planProfile("", noPrefs, false),
			wantSupp:     []domain.Suppression{{Channel: email, Reason: "no address for channel"}},
			wantNoRecord: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := domain.PlanForRecipient(tc.req, tc.profile, t0, sends(nil))
			if !reflect.DeepEqual(got.Plans, tc.wantPlans) {
				t.Errorf("plans\n got %+v\nwant %+v", got.Plans, tc.wantPlans)
			}
			if !reflect.DeepEqual(got.Suppressions, tc.wantSupp) {
				t.Errorf("suppressions\n got %+v\nwant %+v", got.Suppressions, tc.wantSupp)
			}
			if !reflect.DeepEqual(got.Applied.AddressFrom, tc.wantFrom) {
				t.Errorf("address from %v, want %v", got.Applied.AddressFrom, tc.wantFrom)
			}
			if !got.HoldUntil.IsZero() {
				t.Errorf("held until %v", got.HoldUntil)
			}
			used := tc.profile.Exists() && !tc.wantNoRecord
			if (got.Applied.ProfileVersion != 0) != used || (got.Applied.PreferencesRevision != 0) != used {
				t.Errorf("applied %+v for profile used = %v", got.Applied, used)
			}
		})
	}
}

func TestPlanForRecipientOptOuts(t *testing.T) {
	t.Parallel()
	p := domain.Preferences{OptOuts: []domain.OptOut{{Channel: sms}, {Category: "marketing"}, {Channel: email, Category: "digest"}}}
	profile := planProfile("Europe/Berlin", p, false)
	cases := []struct {
		category  string
		wantPlans []domain.Channel
		wantSupp  []domain.Suppression
	}{
		{
			category:  "",
			wantPlans: []domain.Channel{email, slack},
			wantSupp:  []domain.Suppression{{Channel: sms, Reason: "opted out of sms/*"}},
		},
		{
			category: "marketing",
			wantSupp: []domain.Suppression{
				{Channel: email, Reason: "opted out of */marketing"}, {Channel: sms, Reason: "opted out of sms/*"},
				{Channel: slack, Reason: "opted out of */marketing"},
			},
		},
		{
			category:  "digest",
			wantPlans: []domain.Channel{slack},
			wantSupp:  []domain.Suppression{{Channel: email, Reason: "opted out of email/digest"}, {Channel: sms, Reason: "opted out of sms/*"}},
		},
		{
			category:  "news",
			wantPlans: []domain.Channel{email, slack},
			wantSupp:  []domain.Suppression{{Channel: sms, Reason: "opted out of sms/*"}},
		},
	}
	for _, tc := range cases {
		t.Run("category "+tc.category, func(t *testing.T) {
			t.Parallel()
			// High priority, and at 03:00 Berlin: opt-outs apply whatever
			// the priority; quiet hours are not set here.
			got := domain.PlanForRecipient(planReq(tc.category, domain.PriorityHigh, email, sms, slack), profile, t0, sends(nil))
			if !slices.Equal(channelsOf(got.Plans), tc.wantPlans) {
				t.Errorf("plans %v, want %v", channelsOf(got.Plans), tc.wantPlans)
			}
			if !reflect.DeepEqual(got.Suppressions, tc.wantSupp) {
				t.Errorf("suppressions\n got %+v\nwant %+v", got.Suppressions, tc.wantSupp)
			}
			if len(got.Applied.Rules) != len(tc.wantSupp) {
				t.Errorf("rules %q", got.Applied.Rules)
			}
		})
	}
}

func TestPlanForRecipientQuietHours(t *testing.T) {
	t.Parallel()
	berlin := mustZone(t, "Europe/Berlin")
	newYork := mustZone(t, "America/New_York")
	night := &domain.QuietHours{Start: "22:00", End: "07:00"}
	cases := []struct {
		name     string
		zone     string
		quiet    *domain.QuietHours
		critical []string
		category string
		priority domain.Priority
		now      time.Time
		want     time.Time // zero: not held
	}{
		{name: "before quiet hours", zone: "Europe/Berlin", quiet: night, now: time.Date(2026, 1, 14, 21, 59, 0, 0, berlin)},
		{name: "at the start", zone: "Europe/Berlin", quiet: night, now: time.Date(2026, 1, 14, 22, 0, 0, 0, berlin),
			want: time.Date(2026, 1, 15, 7, 0, 0, 0, berlin)},
		{name: "across midnight, evening side", zone: "Europe/Berlin", quiet: night, now: time.Date(2026, 1, 14, 23, 30, 0, 0, berlin),
			want: time.Date(2026, 1, 15, 6, 0, 0, 0, time.UTC)},
		{name: "across midnight, morning side", zone: "Europe/Berlin", quiet: night, now: time.Date(2026, 1, 15, 6, 59, 30, 0, berlin),
			want: time.Date(2026, 1, 15, 7, 0, 0, 0, berlin)},
		{name: "at the end", zone: "Europe/Berlin", quiet: night, now: time.Date(2026, 1, 15, 7, 0, 0, 0, berlin)},
		{name: "the zone decides: 23:30 UTC is 00:30 in Berlin", zone: "Europe/Berlin", quiet: &domain.QuietHours{Start: "00:00", End: "06:00"},
			now: time.Date(2026, 1, 14, 23, 30, 0, 0, time.UTC), want: time.Date(2026, 1, 15, 5, 0, 0, 0, time.UTC)},
		{name: "no zone means UTC", quiet: &domain.QuietHours{Start: "00:00", End: "06:00"},
			now: time.Date(2026, 1, 14, 23, 30, 0, 0, time.UTC)},
		{name: "DST starts overnight in Berlin: 07:00 CEST is 05:00 UTC", zone: "Europe/Berlin", quiet: night,
			now: time.Date(2026, 3, 28, 23, 0, 0, 0, berlin), want: time.Date(2026, 3, 29, 5, 0, 0, 0, time.UTC)},
		{name: "DST ends overnight in New York: 08:00 EST is 13:00 UTC", zone: "America/New_York", quiet: &domain.QuietHours{Start: "21:00", End: "08:00"},
			now: time.Date(2026, 10, 31, 22, 0, 0, 0, newYork), want: time.Date(2026, 11, 1, 13, 0, 0, 0, time.UTC)},
		{name: "daytime period on a listed day", zone: "Europe/Berlin", quiet: &domain.QuietHours{Start: "12:00", End: "14:00", Days: []string{"sat", "sun"}},
			now: time.Date(2026, 1, 17, 13, 0, 0, 0, berlin), want: time.Date(2026, 1, 17, 14, 0, 0, 0, berlin)},
		{name: "daytime period on an unlisted day", zone: "Europe/Berlin", quiet: &domain.QuietHours{Start: "12:00", End: "14:00", Days: []string{"sat", "sun"}},
			now: time.Date(2026, 1, 19, 13, 0, 0, 0, berlin)},
		{name: "early Saturday belongs to Friday's period", zone: "Europe/Berlin", quiet: &domain.QuietHours{Start: "22:00", End: "07:00", Days: []string{"fri"}},
			now: time.Date(2026, 1, 17, 3, 0, 0, 0, berlin), want: time.Date(2026, 1, 17, 7, 0, 0, 0, berlin)},
		{name: "early Sunday does not: Saturday is not listed", zone: "Europe/Berlin", quiet: &domain.QuietHours{Start: "22:00", End: "07:00", Days: []string{"fri"}},
			now: time.Date(2026, 1, 18, 3, 0, 0, 0, berlin)},
		{name: "high priority in a critical category bypasses", zone: "Europe/Berlin", quiet: night, critical: []string{"security"},
			category: "security", priority: domain.PriorityHigh, now: time.Date(2026, 1, 14, 23, 30, 0, 0, berlin)},
		{name: "normal priority in a critical category is held", zone: "Europe/Berlin", quiet: night, critical: []string{"security"},
			category: "security", priority: domain.PriorityNormal, now: time.Date(2026, 1, 14, 23, 30, 0, 0, berlin),
			want: time.Date(2026, 1, 15, 7, 0, 0, 0, berlin)},
		{name: "high priority in another category is held", zone: "Europe/Berlin", quiet: night, critical: []string{"security"},
			category: "billing", priority: domain.PriorityHigh, now: time.Date(2026, 1, 14, 23, 30, 0, 0, berlin),
			want: time.Date(2026, 1, 15, 7, 0, 0, 0, berlin)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			profile := planProfile(tc.zone, domain.Preferences{QuietHours: tc.quiet, CriticalCategories: tc.critical}, false)
			got := domain.PlanForRecipient(planReq(tc.category, tc.priority, email), profile, tc.now, sends(nil))
			if !got.HoldUntil.Equal(tc.want) {
				t.Fatalf("hold until %v, want %v (rules %q)", got.HoldUntil, tc.want, got.Applied.Rules)
			}
			if tc.want.IsZero() {
				if got.HoldReason != "" {
					t.Errorf("hold reason %q without a hold", got.HoldReason)
				}
			} else if got.HoldReason != "quiet hours" || got.HoldUntil.Location() != time.UTC {
				t.Errorf("hold reason %q, location %v", got.HoldReason, got.HoldUntil.Location())
			}
			// Either way the plan shows what goes out once released.
			if !slices.Equal(channelsOf(got.Plans), []domain.Channel{email}) {
				t.Errorf("plans %+v", got.Plans)
			}
			if strings.Contains(tc.name, "bypasses") && (len(got.Applied.Rules) != 1 || !strings.Contains(got.Applied.Rules[0], "bypassed")) {
				t.Errorf("rules %q do not record the bypass", got.Applied.Rules)
			}
		})
	}
}

func TestPlanForRecipientQuietHoursDoNotHoldWhatIsSuppressed(t *testing.T) {
	t.Parallel()
	profile := planProfile("UTC", domain.Preferences{
		OptOuts: []domain.OptOut{{Channel: email}}, QuietHours: &domain.QuietHours{Start: "00:00", End: "23:59"},
	}, false)
	got := domain.PlanForRecipient(planReq("", "", email), profile, time.Date(2026, 1, 14, 12, 0, 0, 0, time.UTC), sends(nil))
	if !got.HoldUntil.IsZero() || len(got.Plans) != 0 || len(got.Suppressions) != 1 {
		t.Errorf("decision %+v", got)
	}
}

func TestPlanForRecipientFrequencyCaps(t *testing.T) {
	t.Parallel()
	berlin := mustZone(t, "Europe/Berlin")
	now := time.Date(2026, 1, 14, 10, 0, 0, 0, berlin)
	midnight := time.Date(2026, 1, 14, 0, 0, 0, 0, berlin)
	daily := []domain.FrequencyCap{{Category: "promo", Max: 2, Window: "day"}}
	hourly := []domain.FrequencyCap{{Category: "promo", Max: 2, Window: "1h"}}
	cases := []struct {
		name      string
		caps      []domain.FrequencyCap
		category  string
		sent      []time.Time
		wantCap   string // "" means planned
		wantSince time.Time
	}{
		{name: "below a daily cap", caps: daily, category: "promo", sent: []time.Time{now.Add(-time.Hour)}, wantSince: midnight},
		{name: "at a daily cap", caps: daily, category: "promo", sent: []time.Time{midnight, now.Add(-time.Hour)},
			wantCap: "frequency cap: promo at most 2 per day", wantSince: midnight},
		{name: "yesterday does not count towards today", caps: daily, category: "promo", sent: []time.Time{midnight.Add(-time.Nanosecond), now.Add(-time.Hour)},
			wantSince: midnight},
		{name: "rolling window includes its start", caps: hourly, category: "promo", sent: []time.Time{now.Add(-time.Hour), now.Add(-time.Minute)},
			wantCap: "frequency cap: promo at most 2 per 1h", wantSince: now.Add(-time.Hour)},
		{name: "rolling window excludes what is older", caps: hourly, category: "promo", sent: []time.Time{now.Add(-time.Hour - time.Nanosecond), now.Add(-time.Minute)},
			wantSince: now.Add(-time.Hour)},
		{name: "a cap on another category does not apply", caps: daily, category: "news", sent: []time.Time{now, now, now}},
		{name: "a cap on every category applies to all", caps: []domain.FrequencyCap{{Category: "*", Max: 1, Window: "day"}}, category: "news",
			sent: []time.Time{now.Add(-time.Minute)}, wantCap: "frequency cap: * at most 1 per day", wantSince: midnight},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			profile := planProfile("Europe/Berlin", domain.Preferences{FrequencyCaps: tc.caps}, false)
			var asked []time.Time
			got := domain.PlanForRecipient(planReq(tc.category, domain.PriorityHigh, email, slack), profile, now, sends(&asked, tc.sent...))
			if tc.wantCap == "" {
				if len(got.Plans) != 2 || len(got.Suppressions) != 0 {
					t.Errorf("decision %+v", got)
				}
			} else {
				want := []domain.Suppression{{Channel: email, Reason: tc.wantCap}, {Channel: slack, Reason: tc.wantCap}}
				if len(got.Plans) != 0 || !reflect.DeepEqual(got.Suppressions, want) {
					t.Errorf("plans %+v suppressions %+v, want %+v", got.Plans, got.Suppressions, want)
				}
				if len(got.Applied.Rules) != 1 || !strings.HasPrefix(got.Applied.Rules[0], tc.wantCap) {
					t.Errorf("rules %q", got.Applied.Rules)
				}
			}
			if tc.wantSince.IsZero() {
				if len(asked) != 0 {
					t.Errorf("asked for counts since %v though no cap applies", asked)
				}
			} else if len(asked) != 1 || !asked[0].Equal(tc.wantSince) {
				t.Errorf("asked since %v, want %v", asked, tc.wantSince)
			}
		})
	}
}

func TestPlanForRecipientRecordsWhatApplied(t *testing.T) {
	t.Parallel()
	profile := planProfile("Europe/Berlin", domain.Preferences{OptOuts: []domain.OptOut{{Channel: sms}}}, true)
	got := domain.PlanForRecipient(planReq("", "", email, sms), profile, t0, sends(nil))
	want := domain.PolicyRecord{
		RecipientID: "user-42", ProfileVersion: 3, PreferencesRevision: 1, TimeZone: "Europe/Berlin",
		AddressFrom: map[domain.Channel]string{email: "profile"},
		Rules:       []string{"sms: opted out of sms/*"},
	}
	if !reflect.DeepEqual(got.Applied, want) {
		t.Errorf("applied\n got %+v\nwant %+v", got.Applied, want)
	}
	if none := domain.PlanForRecipient(planReq("", "", email), domain.RecipientProfile{}, t0, nil); none.Applied.TimeZone != "UTC" || none.Applied.ProfileVersion != 0 {
		t.Errorf("no profile: %+v", none.Applied)
	}
}
