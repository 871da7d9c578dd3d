package domain

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidCron is what every cron parse error wraps.
var ErrInvalidCron = errors.New("invalid cron expression")

// CronExpr is a parsed five-field cron expression: minute, hour, day of
// month, month, day of week. Each field is "*", a number, a range "a-b", a
// step "*/n" or "a-b/n" or "a/n" (a to the field's maximum), or a
// comma-separated list of those. Months may be named jan-dec and weekdays
// sun-sat; weekday 7 is Sunday like 0.
//
// Day of month and day of week combine as in Vixie cron: when both fields
// are restricted (neither starts with '*'), a day matches if either does;
// when one starts with '*' ("*" or "*/2"), a day must match both.
//
// CronExpr knows nothing of time zones; Next walks civil (wall-clock) time
// and a location maps it to instants.
type CronExpr struct {
	src     string
	minute  uint64 // bit i set: minute i matches
	hour    uint64
	dom     uint64 // bits 1..31
	month   uint64 // bits 1..12
	dow     uint64 // bits 0..6, Sunday = 0
	domStar bool
	dowStar bool
}

type cronField struct {
	name     string
	min, max int
	names    []string // names[i] spells min+i
}

var cronFields = [5]cronField{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	// 7 is accepted as Sunday and folded onto 0 after parsing.
	{name: "day of week", min: 0, max: 7, names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

// ParseCron parses a five-field cron expression. Errors wrap
// ErrInvalidCron and name the field at fault. An expression that can never
// match (day 30 of February only) is refused too.
func ParseCron(s string) (CronExpr, error) {
	parts := strings.Fields(s)
	if len(parts) != 5 {
		return CronExpr{}, fmt.Errorf("%w %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", ErrInvalidCron, s, len(parts))
	}
	var bits [5]uint64
	for i, p := range parts {
		b, err := parseCronField(p, cronFields[i])
		if err != nil {
			return CronExpr{}, fmt.Errorf("%w %q: %s: %v", ErrInvalidCron, s, cronFields[i].name, err)
		}
		bits[i] = b
	}
	if bits[4]&(1<<7) != 0 {
		bits[4] = bits[4]&^(1<<7) | 1
	}
	c := CronExpr{
		src: strings.Join(parts, " "), minute: bits[0], hour: bits[1], dom: bits[2], month: bits[3], dow: bits[4],
		domStar: strings.HasPrefix(parts[2], "*"), dowStar: strings.HasPrefix(parts[4], "*"),
	}
	if !c.canMatch() {
		return CronExpr{}, fmt.Errorf("%w %q: no month has any of those days", ErrInvalidCron, s)
	}
	return c, nil
}

// String returns the expression with its fields separated by single spaces.
func (c CronExpr) String() string { return c.src }

func parseCronField(s string, f cronField) (uint64, error) {
	var bits uint64
	for item := range strings.SplitSeq(s, ",") {
		if item == "" {
			return 0, errors.New("empty list item")
		}
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || n > f.max-f.min+1 {
				return 0, fmt.Errorf("step %q must be 1 to %d", stepText, f.max-f.min+1)
			}
			step = n
		}
		lo, hi := f.min, f.max
		switch a, b, isRange := strings.Cut(rng, "-"); {
		case rng == "*":
		case isRange:
			var err error
			if lo, err = cronValue(a, f); err != nil {
				return 0, err
			}
			if hi, err = cronValue(b, f); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			v, err := cronValue(rng, f)
			if err != nil {
				return 0, err
			}
			lo = v
			if !hasStep {
				hi = v // "5/15" runs from 5 to the maximum, "5" is only 5
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << v
		}
	}
	return bits, nil
}

func cronValue(s string, f cronField) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < f.min || v > f.max {
		return 0, fmt.Errorf("value %q must be %d to %d", s, f.min, f.max)
	}
	return v, nil
}

// daysIn is the most days month m can have (February counts 29).
func daysIn(m int) int {
	switch m {
	case 2:
		return 29
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func (c CronExpr) canMatch() bool {
	if !c.domStar && !c.dowStar && c.dow != 0 {
		return true // either field may match, and every weekday comes round
	}
	for m := 1; m <= 12; m++ {
		if c.month&(1<<m) == 0 {
			continue
		}
		for d := 1; d <= daysIn(m); d++ {
			if c.dom&(1<<d) != 0 {
				return true
			}
		}
	}
	return false
}

// dayMatches applies Vixie cron's rule: when either day field starts with
// '*', a day must match both (a bare "*" matches everything, so the other
// field decides); when both are restricted, matching either is enough.
func (c CronExpr) dayMatches(t time.Time) bool {
	domOK := c.dom&(1<<t.Day()) != 0
	dowOK := c.dow&(1<<int(t.Weekday())) != 0
	if c.domStar || c.dowStar {
		return domOK && dowOK
	}
	return domOK || dowOK
}

// cronSearchYears bounds the search for the next match; any expression that
// ParseCron accepts matches within five years (29 February included).
const cronSearchYears = 5

// nextCivil returns the first wall-clock minute strictly after civil that
// matches c. Both are wall-clock readings carried in UTC so that arithmetic
// knows no daylight saving. ok is false when nothing matches in
// cronSearchYears (which ParseCron rules out).
func (c CronExpr) nextCivil(civil time.Time) (time.Time, bool) {
	t := civil.Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(cronSearchYears, 0, 0)
	for t.Before(limit) {
		switch {
		case c.month&(1<<int(t.Month())) == 0:
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !c.dayMatches(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
		case c.hour&(1<<t.Hour()) == 0:
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, time.UTC)
		case c.minute&(1<<t.Minute()) == 0:
			t = t.Add(time.Minute)
		default:
			return t, true
		}
	}
	return time.Time{}, false
}

// Next returns the first firing strictly after after, reading the
// expression in loc's wall clock:
//
//   - a wall-clock time that does not exist in loc (skipped by a
//     spring-forward change) fires at the first instant after the gap,
//     once, however many of the skipped minutes match;
//   - a wall-clock time that happens twice (a fall-back change) fires once,
//     at its first occurrence.
//
// It returns the zero time if nothing matches within five years.
func (c CronExpr) Next(after time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	civil := wallClock(after.In(loc))
	for range 100_000 {
		next, ok := c.nextCivil(civil)
		if !ok {
			return time.Time{}
		}
		if at := instantOf(next, loc); at.After(after) {
			return at
		}
		// The wall-clock time happened already: its first occurrence was
		// at or before after (the repeated hour of a fall-back change).
		civil = next
	}
	return time.Time{}
}

// wallClock returns t's wall-clock reading as a UTC time.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// instantOf maps a wall-clock reading (carried in UTC) to an instant in
// loc: the earliest instant showing that reading, or, when no instant
// shows it (a daylight saving gap), the first instant after the gap.
func instantOf(civil time.Time, loc *time.Location) time.Time {
	var best time.Time
	// Offsets in effect within a day either side cover every zone
	// (offsets lie within ±14 h) and the transition around civil.
	for _, probe := range []time.Duration{-26 * time.Hour, -13 * time.Hour, 0, 13 * time.Hour, 26 * time.Hour} {
		_, off := civil.Add(probe).In(loc).Zone()
		at := civil.Add(-time.Duration(off) * time.Second)
		if wallClock(at.In(loc)).Equal(civil) && (best.IsZero() || at.Before(best)) {
			best = at
		}
	}
	if !best.IsZero() {
		return best.In(loc)
	}
	// A gap: find the first instant whose wall clock is past civil. Around
	// one transition the wall clock only moves forward, so bisect.
	lo, hi := civil.Add(-15*time.Hour), civil.Add(15*time.Hour)
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
		if wallClock(mid.In(loc)).After(civil) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi.In(loc)
}
