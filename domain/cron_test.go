package domain_test

import (
	"errors"
	"testing"
	"time"

	"herald/domain"
)

func cronZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s not available here: %v", name, err)
	}
	return loc
}

func TestCronNext(t *testing.T) {
	t.Parallel()
	utc := time.UTC
	cases := []struct {
		name  string
		expr  string
		zone  string
		after time.Time // in UTC
		want  []time.Time
	}{
		{"every quarter hour", "*/15 * * * *", "UTC", time.Date(2026, 1, 1, 10, 7, 0, 0, utc),
			[]time.Time{time.Date(2026, 1, 1, 10, 15, 0, 0, utc), time.Date(2026, 1, 1, 10, 30, 0, 0, utc), time.Date(2026, 1, 1, 10, 45, 0, 0, utc), time.Date(2026, 1, 1, 11, 0, 0, 0, utc)}},
		{"exactly on a firing is after it", "*/15 * * * *", "UTC", time.Date(2026, 1, 1, 10, 15, 0, 0, utc),
			[]time.Time{time.Date(2026, 1, 1, 10, 30, 0, 0, utc)}},
		// Friday 9 January 2026, 10:00 in Berlin (09:00 UTC): next are Monday and Tuesday 09:00 CET.
		{"weekdays at nine in Berlin", "0 9 * * 1-5", "Europe/Berlin", time.Date(2026, 1, 9, 9, 0, 0, 0, utc),
			[]time.Time{time.Date(2026, 1, 12, 8, 0, 0, 0, utc), time.Date(2026, 1, 13, 8, 0, 0, 0, utc)}},
		{"first of the month", "0 0 1 * *", "UTC", time.Date(2026, 1, 15, 0, 0, 0, 0, utc),
			[]time.Time{time.Date(2026, 2, 1, 0, 0, 0, 0, utc), time.Date(2026, 3, 1, 0, 0, 0, 0, utc), time.Date(2026, 4, 1, 0, 0, 0, 0, utc)}},
		// 29 March 2026: Berlin jumps from 02:00 CET to 03:00 CEST; 02:30 does not
		// exist, so it fires at the first instant after the gap (01:00 UTC),
		// then at 02:30 CEST (00:30 UTC) the next day.
		{"spring forward skips to the next valid time", "30 2 * * *", "Europe/Berlin", time.Date(2026, 3, 28, 2, 0, 0, 0, utc),
			[]time.Time{time.Date(2026, 3, 29, 1, 0, 0, 0, utc), time.Date(2026, 3, 30, 0, 30, 0, 0, utc)}},
		{"spring forward: skipped quarter hours fire once", "*/15 * * * *", "Europe/Berlin", time.Date(2026, 3, 29, 0, 40, 0, 0, utc),
			[]time.Time{time.Date(2026, 3, 29, 0, 45, 0, 0, utc), time.Date(2026, 3, 29, 1, 0, 0, 0, utc), time.Date(2026, 3, 29, 1, 15, 0, 0, utc)}},
		// 1 November 2026: New York falls back from 02:00 EDT to 01:00 EST;
		// 01:00 happens twice and fires once, at 01:00 EDT (05:00 UTC).
		{"fall back fires once", "0 1 * * *", "America/New_York", time.Date(2026, 10, 31, 16, 0, 0, 0, utc),
			[]time.Time{time.Date(2026, 11, 1, 5, 0, 0, 0, utc), time.Date(2026, 11, 2, 6, 0, 0, 0, utc)}},
		{"fall back: after the first occurrence, not the second", "0 1 * * *", "America/New_York", time.Date(2026, 11, 1, 5, 30, 0, 0, utc),
			[]time.Time{time.Date(2026, 11, 2, 6, 0, 0, 0, utc)}},
		// Both day fields restricted: the 10th or a Friday (February 2026
		// starts on a Sunday).
		{"day of month or day of week", "0 0 10 * fri", "UTC", time.Date(2026, 2, 1, 0, 0, 0, 0, utc),
			[]time.Time{time.Date(2026, 2, 6, 0, 0, 0, 0, utc), time.Date(2026, 2, 10, 0, 0, 0, 0, utc), time.Date(2026, 2, 13, 0, 0, 0, 0, utc)}},
		// A day field starting with '*' makes both apply: days 1, 11, 21, 31
		// that are Fridays. 1 May 2026 is a Friday.
		{"starred day of month ANDs", "0 0 */10 * 5", "UTC", time.Date(2026, 4, 1, 0, 0, 0, 0, utc),
			[]time.Time{time.Date(2026, 5, 1, 0, 0, 0, 0, utc)}},
		{"lists, ranges, steps and names", "5,10-20/5 12 * jan,jul 7", "UTC", time.Date(2026, 1, 1, 0, 0, 0, 0, utc),
			[]time.Time{time.Date(2026, 1, 4, 12, 5, 0, 0, utc), time.Date(2026, 1, 4, 12, 10, 0, 0, utc), time.Date(2026, 1, 4, 12, 15, 0, 0, utc), time.Date(2026, 1, 4, 12, 20, 0, 0, utc), time.Date(2026, 1, 11, 12, 5, 0, 0, utc)}},
		{"a/n runs to the maximum", "50/5 23 31 12 *", "UTC", time.Date(2026, 12, 31, 23, 52, 0, 0, utc),
			[]time.Time{time.Date(2026, 12, 31, 23, 55, 0, 0, utc), time.Date(2027, 12, 31, 23, 50, 0, 0, utc)}},
		{"leap day", "0 0 29 2 *", "UTC", time.Date(2026, 3, 1, 0, 0, 0, 0, utc),
			[]time.Time{time.Date(2028, 2, 29, 0, 0, 0, 0, utc)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			loc := cronZone(t, tc.zone)
			c, err := domain.ParseCron(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			after := tc.after
			for i, want := range tc.want {
				got := c.Next(after, loc)
				if !got.Equal(want) {
					t.Fatalf("firing %d after %s: got %s (%s), want %s", i, after.UTC(), got.UTC(), got, want.In(loc))
				}
				after = got
			}
		})
	}
}

func TestParseCronRefuses(t *testing.T) {
	t.Parallel()
	for _, expr := range []string{
		"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
		"*/0 * * * *", "5-1 * * * *", "a b c d e", "1,,2 * * * *", "0 0 30 2 *", "0 0 31 4,6 *", "*/61 * * * *",
	} {
		if _, err := domain.ParseCron(expr); !errors.Is(err, domain.ErrInvalidCron) {
			t.Errorf("ParseCron(%q) = %v, want ErrInvalidCron", expr, err)
		}
	}
	c, err := domain.ParseCron("  0   9 * *   MON-fri ")
	if err != nil || c.String() != "0 9 * * MON-fri" {
		t.Errorf("spaces: %q, %v", c.String(), err)
	}
}

func TestRecurrenceInterval(t *testing.T) {
	t.Parallel()
	berlin := cronZone(t, "Europe/Berlin")
	start := time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)
	end := start.Add(5 * time.Hour)
	r, err := domain.NewRecurrence(domain.ScheduleSpec{EverySeconds: 90 * 60, TimeZone: "Europe/Berlin", StartAt: start, EndAt: &end}, berlin)
	if err != nil {
		t.Fatal(err)
	}
	// An interval is absolute time: the DST change that morning does not
	// move it. The start itself fires; nothing after the end does.
	var got []time.Time
	for at := r.NextFiring(start.Add(-time.Hour)); !at.IsZero(); at = r.NextFiring(at) {
		got = append(got, at.UTC())
	}
	want := []time.Time{start, start.Add(90 * time.Minute), start.Add(3 * time.Hour), start.Add(270 * time.Minute)}
	if len(got) != len(want) {
		t.Fatalf("firings %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Fatalf("firings %v, want %v", got, want)
		}
	}
	if !r.IsFiring(start.Add(3*time.Hour)) || r.IsFiring(start.Add(time.Hour)) {
		t.Error("IsFiring disagrees with NextFiring")
	}
}

func TestScheduleSpecValidate(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	before := start.Add(-time.Hour)
	cases := []struct {
		name string
		spec domain.ScheduleSpec
		loc  *time.Location
		want []string
	}{
		{"neither", domain.ScheduleSpec{TimeZone: "UTC", StartAt: start}, time.UTC, []string{"cron"}},
		{"both", domain.ScheduleSpec{Cron: "* * * * *", EverySeconds: 60, TimeZone: "UTC", StartAt: start}, time.UTC, []string{"every"}},
		{"bad cron", domain.ScheduleSpec{Cron: "* * *", TimeZone: "UTC", StartAt: start}, time.UTC, []string{"cron"}},
		{"too often", domain.ScheduleSpec{EverySeconds: 30, TimeZone: "UTC", StartAt: start}, time.UTC, []string{"every"}},
		{"unknown zone", domain.ScheduleSpec{Cron: "* * * * *", TimeZone: "Mars/Base", StartAt: start}, nil, []string{"time_zone"}},
		{"end before start", domain.ScheduleSpec{Cron: "* * * * *", TimeZone: "UTC", StartAt: start, EndAt: &before}, time.UTC, []string{"end_at"}},
		{"fine", domain.ScheduleSpec{Cron: "0 9 * * 1-5", TimeZone: "UTC", StartAt: start}, time.UTC, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := specFields(tc.spec.Validate(tc.loc)); !equalStrings(got, tc.want) {
				t.Errorf("fields %v, want %v", got, tc.want)
			}
		})
	}
}

func specFields(err error) []string {
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field)
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
