package domain_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"herald/domain"
)

func scheduleMessage() domain.NotificationRequest {
	return domain.NotificationRequest{Recipient: domain.Recipient{ID: "ops"}, Content: &domain.Content{Body: "Daily report"}}
}

func scheduleOf(t *testing.T, cmds ...domain.ScheduleCommand) domain.Schedule {
	t.Helper()
	var s domain.Schedule
	for _, c := range cmds {
		events, err := domain.DecideSchedule(s, c)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		for _, e := range events {
			s = domain.EvolveSchedule(s, e)
		}
	}
	return s
}

func TestDecideSchedule(t *testing.T) {
	t.Parallel()
	// Every 15 minutes from t0 (09:00 UTC).
	create := domain.CreateSchedule{ID: "daily", Spec: domain.ScheduleSpec{Cron: "*/15 * * * *", TimeZone: "UTC"}, Location: time.UTC, Request: scheduleMessage(), Actor: "ann", Now: t0}
	active := scheduleOf(t, create)
	fired := scheduleOf(t, create, domain.FireSchedule{FiringTime: at(15), Location: time.UTC, Now: at(15)})
	paused := scheduleOf(t, create, domain.PauseSchedule{Now: at(1)})
	resumed := scheduleOf(t, create, domain.PauseSchedule{Now: at(1)}, domain.ResumeSchedule{Now: at(50)})
	deleted := scheduleOf(t, create, domain.DeleteSchedule{Now: at(1)})
	bad := create
	bad.Spec = domain.ScheduleSpec{TimeZone: "Nowhere/Land"}
	bad.Location = nil
	bad.Request = domain.NotificationRequest{ScheduledAt: ptr(at(5)), Content: &domain.Content{Body: "x"}}
	ended := create
	end := t0.Add(-time.Hour)
	ended.Spec.StartAt, ended.Spec.EndAt = t0.Add(-2*time.Hour), &end
	later := create
	later.Now = at(5) // a repeat without start_at, five minutes on
	beyond := create
	never := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	beyond.Spec.StartAt, beyond.Spec.EndAt = never, &never

	cases := []struct {
		name   string
		state  domain.Schedule
		cmd    domain.ScheduleCommand
		err    error
		fields []string
		types  []string
	}{
		{"create", domain.Schedule{}, create, nil, nil, []string{domain.TypeScheduleCreated}},
		{"create again is a no-op", active, create, nil, nil, nil},
		{"create again later without start_at is a no-op", active, later, nil, nil, nil},
		{"create other spec under the id", active, domain.CreateSchedule{ID: "daily", Spec: domain.ScheduleSpec{EverySeconds: 3600, TimeZone: "UTC"}, Location: time.UTC, Request: scheduleMessage(), Now: t0}, domain.ErrScheduleExists, nil, nil},
		{"create invalid", domain.Schedule{}, bad, domain.ErrInvalidRequest, []string{"cron", "time_zone", "request.recipient", "request.scheduled_at"}, nil},
		{"create already ended", domain.Schedule{}, ended, domain.ErrInvalidRequest, []string{"end_at"}, nil},
		{"create past what the views hold", domain.Schedule{}, beyond, domain.ErrInvalidRequest, []string{"start_at", "end_at"}, nil},
		{"fire when due", active, domain.FireSchedule{FiringTime: at(15), Location: time.UTC, Now: at(15)}, nil, nil, []string{domain.TypeScheduleFired}},
		{"fire late", active, domain.FireSchedule{FiringTime: at(15), Location: time.UTC, Now: at(16)}, nil, nil, []string{domain.TypeScheduleFired}},
		{"fire again is a no-op", fired, domain.FireSchedule{FiringTime: at(15), Location: time.UTC, Now: at(15)}, nil, nil, nil},
		{"fire early", active, domain.FireSchedule{FiringTime: at(15), Location: time.UTC, Now: at(14)}, domain.ErrNotDue, nil, nil},
		{"fire off the recurrence", active, domain.FireSchedule{FiringTime: at(16), Location: time.UTC, Now: at(16)}, domain.ErrNotAFiring, nil, nil},
		{"fire paused", paused, domain.FireSchedule{FiringTime: at(15), Location: time.UTC, Now: at(15)}, domain.ErrSchedulePaused, nil, nil},
		{"fire a firing skipped while paused", resumed, domain.FireSchedule{FiringTime: at(45), Location: time.UTC, Now: at(55)}, domain.ErrNotAFiring, nil, nil},
		{"fire deleted", deleted, domain.FireSchedule{FiringTime: at(15), Location: time.UTC, Now: at(15)}, domain.ErrScheduleDeleted, nil, nil},
		{"pause", active, domain.PauseSchedule{Now: at(1)}, nil, nil, []string{domain.TypeSchedulePaused}},
		{"pause again is a no-op", paused, domain.PauseSchedule{Now: at(2)}, nil, nil, nil},
		{"resume active is a no-op", active, domain.ResumeSchedule{Now: at(2)}, nil, nil, nil},
		{"resume deleted", deleted, domain.ResumeSchedule{Now: at(2)}, domain.ErrScheduleDeleted, nil, nil},
		{"delete", paused, domain.DeleteSchedule{Now: at(2)}, nil, nil, []string{domain.TypeScheduleDeleted}},
		{"delete again is a no-op", deleted, domain.DeleteSchedule{Now: at(2)}, nil, nil, nil},
		{"pause missing", domain.Schedule{}, domain.PauseSchedule{}, domain.ErrScheduleNotFound, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, err := domain.DecideSchedule(tc.state, tc.cmd)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if got := specFields(err); !equalStrings(got, tc.fields) {
				t.Errorf("fields %v, want %v", got, tc.fields)
			}
			var types []string
			for _, e := range events {
				types = append(types, e.EventType())
			}
			if !equalStrings(types, tc.types) {
				t.Errorf("events %v, want %v", types, tc.types)
			}
		})
	}
}

func TestScheduleNextFiring(t *testing.T) {
	t.Parallel()
	create := domain.CreateSchedule{ID: "q", Spec: domain.ScheduleSpec{Cron: "*/15 * * * *", TimeZone: "UTC"}, Location: time.UTC, Request: scheduleMessage(), Now: at(1)}
	s := scheduleOf(t, create)
	r, err := domain.NewRecurrence(s.Spec(), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.NextFiring(r); !got.Equal(at(15)) {
		t.Errorf("first firing %s, want %s", got, at(15))
	}
	s = scheduleOf(t, create, domain.FireSchedule{FiringTime: at(15), Location: time.UTC, Now: at(15)})
	if got := s.NextFiring(r); !got.Equal(at(30)) || s.Firings() != 1 || !s.LastFiring().Equal(at(15)) {
		t.Errorf("after one firing: next %s, %d firings", got, s.Firings())
	}
	s = scheduleOf(t, create, domain.PauseSchedule{Now: at(20)})
	if !s.NextFiring(r).IsZero() || s.Status() != domain.ScheduleStatusPaused {
		t.Error("a paused schedule has a next firing")
	}
	// Resumed at 09:50: the 09:30 and 09:45 firings are skipped.
	s = scheduleOf(t, create, domain.PauseSchedule{Now: at(20)}, domain.ResumeSchedule{Now: at(50)})
	if got := s.NextFiring(r); !got.Equal(at(60)) {
		t.Errorf("after resume: %s, want %s", got, at(60))
	}
	if domain.ScheduleFiringKey("q", at(60)) != "schedule-q-1796119200" {
		t.Errorf("key %s", domain.ScheduleFiringKey("q", at(60)))
	}
}

// aggregateSamples holds one fixed event per type of the group, batch and
// schedule aggregates, by golden directory.
func aggregateSamples() map[string][]domain.Event {
	end := at(60 * 24 * 30)
	return map[string][]domain.Event{
		"groups": {
			domain.GroupCreated{GroupID: "staff", Name: "All staff", Protected: true, Actor: "ann", CreatedAt: t0},
			domain.GroupMembersAdded{GroupID: "staff", Members: []string{"user-1", "user-2"}, Actor: "ann", AddedAt: at(1)},
			domain.GroupMembersRemoved{GroupID: "staff", Members: []string{"user-2"}, Actor: "ann", RemovedAt: at(2)},
			domain.GroupArchived{GroupID: "staff", Reason: "reorganised", Actor: "ann", ArchivedAt: at(3)},
		},
		"batches": {
			domain.BatchRequested{BatchID: "b-1", Request: batchMessage().Normalized(), GroupID: "staff", GroupVersion: 7, Size: 120000, Actor: "ann", RequestedAt: t0},
			domain.BatchAwaitingApproval{BatchID: "b-1", Reason: "120000 recipients exceed the approval threshold of 10000", Since: t0},
			domain.BatchApproved{BatchID: "b-1", Actor: "root", Reason: "planned campaign", ApprovedAt: at(5)},
			domain.BatchRejected{BatchID: "b-1", Actor: "root", Reason: "wrong audience", RejectedAt: at(5)},
			domain.FanOutProgressed{BatchID: "b-1", Done: 3000, Failed: 2, ProgressedAt: at(6)},
			domain.BatchCompleted{BatchID: "b-1", Total: 120000, Failed: 2, CompletedAt: at(9)},
		},
		"schedules": {
			domain.ScheduleCreated{ScheduleID: "daily", Spec: domain.ScheduleSpec{Cron: "30 2 * * *", TimeZone: "Europe/Berlin", StartAt: t0, EndAt: &end},
				Request: scheduleMessage().Normalized(), Actor: "ann", CreatedAt: t0},
			domain.SchedulePaused{ScheduleID: "daily", Actor: "ann", PausedAt: at(1)},
			domain.ScheduleResumed{ScheduleID: "daily", Actor: "ann", ResumedAt: at(2)},
			domain.ScheduleDeleted{ScheduleID: "daily", Actor: "ann", DeletedAt: at(3)},
			domain.ScheduleFired{ScheduleID: "daily", FiringTime: at(30), FiredAt: at(30).Add(250 * time.Millisecond)},
		},
	}
}

func TestAggregateEventGoldenFiles(t *testing.T) {
	// Not parallel: with -update it writes the files it compares.
	typesOf := map[string][]string{
		"groups": domain.GroupEventTypes(), "batches": domain.BatchEventTypes(), "schedules": domain.ScheduleEventTypes(),
	}
	for dir, events := range aggregateSamples() {
		var types []string
		for _, e := range events {
			typ, data, err := domain.MarshalEvent(e)
			if err != nil {
				t.Fatalf("MarshalEvent(%T): %v", e, err)
			}
			types = append(types, typ)
			if typ != reflect.TypeOf(e).Name() {
				t.Errorf("type %q for struct %T", typ, e)
			}
			back, err := domain.UnmarshalEvent(typ, data)
			if err != nil || !reflect.DeepEqual(back, e) {
				t.Errorf("%s round trip: %v\n got %#v\nwant %#v", typ, err, back, e)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, data, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join("testdata", dir, typ+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
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
		if !equalStrings(types, typesOf[dir]) {
			t.Errorf("%s: sample types %v, want %v", dir, types, typesOf[dir])
		}
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != len(types) {
			t.Errorf("%s: golden files %v for types %v: remove stale files", dir, files, types)
		}
	}
}
