package domain

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits on a preference set.
const (
	MaxOptOuts            = 200
	MaxFrequencyCaps      = 50
	MaxCriticalCategories = 50
	MaxFrequencyCapCount  = 10000
	// MaxFrequencyWindow is the longest rolling window a frequency cap may
	// have; counters keep sends at least this long (a local day is
	// shorter).
	MaxFrequencyWindow = 31 * 24 * time.Hour
	minFrequencyWindow = time.Minute
)

// AnyCategory in a FrequencyCap counts every notification of the
// recipient, whatever its category.
const AnyCategory = "*"

// WindowDay is the FrequencyCap window meaning "the recipient's local
// calendar day", from midnight in its time zone.
const WindowDay = "day"

// Preferences is what a recipient chose about being notified. Its JSON
// names are part of the stable API (the body of PUT
// /v1/recipients/{id}/preferences). The zero value allows everything.
type Preferences struct {
	// OptOuts are the channels and categories the recipient does not want.
	OptOuts []OptOut `json:"opt_outs,omitempty"`
	// QuietHours, when set, is a daily period in which sends are held
	// until it ends.
	QuietHours *QuietHours `json:"quiet_hours,omitempty"`
	// FrequencyCaps bound how many notifications of a category the
	// recipient gets per window.
	FrequencyCaps []FrequencyCap `json:"frequency_caps,omitempty"`
	// CriticalCategories are categories whose high-priority sends go out
	// during quiet hours (a login code, a fraud alert).
	CriticalCategories []string `json:"critical_categories,omitempty"`
}

// OptOut refuses one channel for one category. An empty Channel means
// every channel (the category is unwanted); an empty Category every
// category (the channel is unwanted). They are never both empty.
type OptOut struct {
	Channel  Channel `json:"channel,omitempty"`
	Category string  `json:"category,omitempty"`
}

// QuietHours is a daily period, in the recipient's local clock time, in
// which notifications are held. Start and End are "HH:MM" (24-hour); when
// End is not after Start the period wraps midnight ("22:00" to "07:00").
// Days, when not empty, are the days ("mon" ... "sun") on which a period
// starts: the early hours of Saturday belong to Friday's period. Empty
// Days means every day.
type QuietHours struct {
	Start string   `json:"start"`
	End   string   `json:"end"`
	Days  []string `json:"days,omitempty"`
}

// FrequencyCap allows at most Max notifications of Category per Window:
// WindowDay (the recipient's local day) or a rolling Go duration like "1h"
// or "168h", from a minute to MaxFrequencyWindow. Category AnyCategory
// counts every notification.
type FrequencyCap struct {
	Category string `json:"category"`
	Max      int    `json:"max"`
	Window   string `json:"window"`
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

const categoryProblem = "must be 1 to 64 characters of a-z, 0-9, '_', '.', '-'"

// Validate returns nil or a *ValidationError naming every bad field by its
// JSON path ("opt_outs[1].channel", "quiet_hours.end",
// "frequency_caps[0].window"), in a fixed order.
func (p Preferences) Validate() error {
	var v validator
	if len(p.OptOuts) > MaxOptOuts {
		v.add("opt_outs", fmt.Sprintf("must have at most %d entries", MaxOptOuts))
	}
	seenOpt := map[OptOut]bool{}
	for i, o := range p.OptOuts {
		field := fmt.Sprintf("opt_outs[%d]", i)
		if o.Channel != "" && !o.Channel.Valid() {
			v.add(field+".channel", fmt.Sprintf("unknown channel %q", o.Channel))
		}
		if !validCategory(o.Category) {
			v.add(field+".category", categoryProblem)
		}
		switch {
		case o.Channel == "" && o.Category == "":
			v.add(field, "a channel or a category is required")
		case seenOpt[o]:
			v.add(field, "duplicate opt-out")
		}
		seenOpt[o] = true
	}

	if q := p.QuietHours; q != nil {
		start, okStart := parseClock(q.Start)
		end, okEnd := parseClock(q.End)
		if !okStart {
			v.add("quiet_hours.start", "must be a time of day HH:MM, 00:00 to 23:59")
		}
		switch {
		case !okEnd:
			v.add("quiet_hours.end", "must be a time of day HH:MM, 00:00 to 23:59")
		case okStart && start == end:
			v.add("quiet_hours.end", "must differ from start")
		}
		seenDay := map[string]bool{}
		for i, d := range q.Days {
			field := fmt.Sprintf("quiet_hours.days[%d]", i)
			switch _, ok := weekdays[d]; {
			case !ok:
				v.add(field, "must be one of mon, tue, wed, thu, fri, sat, sun")
			case seenDay[d]:
				v.add(field, fmt.Sprintf("duplicate day %q", d))
			}
			seenDay[d] = true
		}
	}

	if len(p.FrequencyCaps) > MaxFrequencyCaps {
		v.add("frequency_caps", fmt.Sprintf("must have at most %d entries", MaxFrequencyCaps))
	}
	type capKey struct{ category, window string }
	seenCap := map[capKey]bool{}
	for i, c := range p.FrequencyCaps {
		field := fmt.Sprintf("frequency_caps[%d]", i)
		if c.Category != AnyCategory && (c.Category == "" || !validCategory(c.Category)) {
			v.add(field+".category", categoryProblem+", or * for every category")
		}
		if c.Max < 1 || c.Max > MaxFrequencyCapCount {
			v.add(field+".max", fmt.Sprintf("must be 1 to %d (opt out to receive none)", MaxFrequencyCapCount))
		}
		if _, ok := parseWindow(c.Window); !ok {
			v.add(field+".window", fmt.Sprintf("must be %q or a duration from 1m to %s, like 1h or 168h", WindowDay, MaxFrequencyWindow))
		}
		if k := (capKey{c.Category, c.Window}); seenCap[k] {
			v.add(field, "duplicate cap for this category and window")
		} else {
			seenCap[k] = true
		}
	}

	if len(p.CriticalCategories) > MaxCriticalCategories {
		v.add("critical_categories", fmt.Sprintf("must have at most %d entries", MaxCriticalCategories))
	}
	seenCrit := map[string]bool{}
	for i, c := range p.CriticalCategories {
		field := fmt.Sprintf("critical_categories[%d]", i)
		switch {
		case c == "" || !validCategory(c):
			v.add(field, categoryProblem)
		case seenCrit[c]:
			v.add(field, fmt.Sprintf("duplicate category %q", c))
		}
		seenCrit[c] = true
	}
	return v.err()
}

// parseClock reads "HH:MM" as minutes after midnight.
func parseClock(s string) (int, bool) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) != 2 || len(m) != 2 {
		return 0, false
	}
	hh, errH := strconv.Atoi(h)
	mm, errM := strconv.Atoi(m)
	if errH != nil || errM != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, false
	}
	return hh*60 + mm, true
}

// parseWindow returns the rolling window, 0 for WindowDay.
func parseWindow(s string) (time.Duration, bool) {
	if s == WindowDay {
		return 0, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < minFrequencyWindow || d > MaxFrequencyWindow {
		return 0, false
	}
	return d, true
}

// normalized returns a deep copy of p with empty lists nil, so equal sets
// encode alike.
func (p Preferences) normalized() Preferences {
	n := Preferences{
		OptOuts:            slices.Clip(slices.Clone(p.OptOuts)),
		FrequencyCaps:      slices.Clip(slices.Clone(p.FrequencyCaps)),
		CriticalCategories: slices.Clip(slices.Clone(p.CriticalCategories)),
	}
	if p.QuietHours != nil {
		q := *p.QuietHours
		q.Days = slices.Clip(slices.Clone(q.Days))
		n.QuietHours = &q
	}
	return n
}

func samePreferences(a, b Preferences) bool {
	ja, errA := json.Marshal(a.normalized())
	jb, errB := json.Marshal(b.normalized())
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// optedOut returns the opt-out covering channel ch for category cat (an
// empty ch or cat asks about every channel or every category), if any.
func (p Preferences) optedOut(ch Channel, cat string) (OptOut, bool) {
	for _, o := range p.OptOuts {
		chOK := o.Channel == "" || o.Channel == ch
		catOK := o.Category == "" || (cat != "" && o.Category == cat)
		if chOK && catOK {
			return o, true
		}
	}
	return OptOut{}, false
}

// PlanDecision is what PlanForRecipient decided for one notification.
type PlanDecision struct {
	// Plans are the deliveries to create; Suppressions the channels not
	// used, with the reason. They are what the policy decides at now.
	Plans        []DeliveryPlan
	Suppressions []Suppression
	// HoldUntil, when not zero, means: plan nothing now; decide again at
	// HoldUntil (HoldReason says why). Plans shows what would go out if
	// the hold were ignored. A hold is returned even when it ends after
	// the request's expires_at: the notification then expires unsent,
	// which is what the recipient's quiet hours asked for.
	HoldUntil  time.Time
	HoldReason string
	// Applied records which profile and preference set decided, for the
	// audit trail.
	Applied PolicyRecord
}

// Where a planned address came from, in PolicyRecord.AddressFrom.
const (
	AddressFromRequest     = "request"
	AddressFromProfile     = "profile"
	AddressFromRecipientID = "recipient_id"
)

// PolicyRecord says what the planning policy used, so an audit trail can
// tell why a channel was used, suppressed or held.
type PolicyRecord struct {
	// RecipientID is the request's recipient ID ("" when it had none).
	RecipientID string `json:"recipient_id,omitempty"`
	// ProfileVersion is the recipient stream version that was read; 0
	// means no profile was used.
	ProfileVersion int `json:"profile_version,omitempty"`
	// PreferencesRevision is the preference set that applied; 0 means none.
	PreferencesRevision int `json:"preferences_revision,omitempty"`
	// TimeZone is the zone quiet hours and daily caps were read in.
	TimeZone string `json:"time_zone,omitempty"`
	// AddressFrom says, per planned channel, where its address came from.
	AddressFrom map[Channel]string `json:"address_from,omitempty"`
	// Rules lists, in the order applied, each preference that changed the
	// outcome, in words.
	Rules []string `json:"rules,omitempty"`
}

// PlanForRecipient decides where and when a notification goes, from the
// request, the recipient's profile (the zero RecipientProfile when it has
// none; a profile of another recipient ID than the request's is ignored)
// and the time now. sentInWindow(category, since) must return how many
// notifications of the category (AnyCategory: of any category) the
// recipient was sent at or after since; it is only called when a cap
// applies, and nil means "no counts available": caps are then not
// applied. It is pure given those inputs.
//
// The rules, in order:
//   - Addresses: the request's recipient fields win; the profile fills the
//     ones the request leaves empty. In-app is addressed by the recipient
//     ID; web push too, but only while the profile holds a subscription.
//   - Channels: the request's list; when empty, every channel the
//     recipient can be reached on (web push only when subscribed).
//   - Opt-outs: a channel opted out for the request's category (or for
//     every category, or the category on every channel) is suppressed
//     with "opted out of <channel>/<category>", "*" standing for the part
//     the opt-out covers wholesale. Opt-outs apply to every priority.
//   - A channel without an address is suppressed with "no address for
//     channel".
//   - Frequency caps on the request's category (and AnyCategory): when as
//     many were sent in the window as the cap allows, every remaining
//     channel is suppressed with "frequency cap: <category> at most N per
//     <window>". A rolling window w covers [now-w, now]; WindowDay covers
//     the recipient's local day so far.
//   - Quiet hours: when now is inside them in the recipient's zone and
//     some channel is still planned, HoldUntil is their end (local clock
//     time, so DST changes are honoured) and HoldReason "quiet hours",
//     unless the request is high priority and its category is critical.
//
// A recipient with no time zone is treated as UTC.
func PlanForRecipient(req NotificationRequest, profile RecipientProfile, now time.Time,
	sentInWindow func(category string, since time.Time) int) PlanDecision {
	rec := PolicyRecord{RecipientID: req.Recipient.ID, TimeZone: "UTC"}
	if !profile.exists || string(profile.id) != req.Recipient.ID {
		profile = RecipientProfile{}
	}
	prefs := profile.prefs
	loc, _ := profile.Location()
	if profile.exists {
		rec.ProfileVersion, rec.PreferencesRevision = profile.version, profile.revision
		rec.TimeZone = loc.String()
	}

	addressOf := func(ch Channel) (string, string) {
		switch ch {
		case ChannelInApp:
			if req.Recipient.ID != "" {
				return req.Recipient.ID, AddressFromRecipientID
			}
		case ChannelWebPush:
			if req.Recipient.ID != "" && len(profile.webPush) > 0 {
				return req.Recipient.ID, AddressFromRecipientID
			}
		default:
			if a := req.Recipient.Address(ch); a != "" {
				return a, AddressFromRequest
			}
			if a := profile.details.address(ch); a != "" {
				return a, AddressFromProfile
			}
		}
		return "", ""
	}

	channels := req.Channels
	if len(channels) == 0 {
		for _, ch := range AllChannels() {
			if a, _ := addressOf(ch); a != "" {
				channels = append(channels, ch)
			}
		}
	}

	var out PlanDecision
	for _, ch := range channels {
		if o, ok := prefs.optedOut(ch, req.Category); ok {
			reason := "opted out of " + orStar(string(o.Channel)) + "/" + orStar(o.Category)
			out.Suppressions = append(out.Suppressions, Suppression{Channel: ch, Reason: reason})
			rec.Rules = append(rec.Rules, fmt.Sprintf("%s: %s", ch, reason))
			continue
		}
		addr, from := addressOf(ch)
		if addr == "" {
			reason := "no address for channel"
			if ch == ChannelWebPush && req.Recipient.ID != "" {
				reason = "no web push subscription"
			}
			out.Suppressions = append(out.Suppressions, Suppression{Channel: ch, Reason: reason})
			continue
		}
		out.Plans = append(out.Plans, DeliveryPlan{Channel: ch, Address: addr})
		if rec.AddressFrom == nil {
			rec.AddressFrom = map[Channel]string{}
		}
		rec.AddressFrom[ch] = from
	}

	if len(out.Plans) > 0 && sentInWindow != nil {
		if reason, rule, capped := capExceeded(prefs, req.Category, now, loc, sentInWindow); capped {
			for _, p := range out.Plans {
				out.Suppressions = append(out.Suppressions, Suppression{Channel: p.Channel, Reason: reason})
			}
			out.Plans = nil
			rec.AddressFrom = nil
			rec.Rules = append(rec.Rules, rule)
		}
	}

	if q := prefs.QuietHours; q != nil && len(out.Plans) > 0 {
		if until, ok := quietUntil(*q, now, loc); ok {
			rule := fmt.Sprintf("quiet hours %s-%s in %s until %s", q.Start, q.End, loc, until.In(loc).Format(time.RFC3339))
			if req.Priority == PriorityHigh && slices.Contains(prefs.CriticalCategories, req.Category) {
				rec.Rules = append(rec.Rules, rule+": bypassed, high priority in critical category "+req.Category)
			} else {
				out.HoldUntil, out.HoldReason = until.UTC(), "quiet hours"
				rec.Rules = append(rec.Rules, rule+": held")
			}
		}
	}
	out.Applied = rec
	return out
}

func orStar(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// capExceeded checks the caps on category and on AnyCategory, in the
// order the recipient listed them; the first one reached decides.
func capExceeded(p Preferences, category string, now time.Time, loc *time.Location,
	sent func(string, time.Time) int) (reason, rule string, capped bool) {
	for _, c := range p.FrequencyCaps {
		if c.Category != AnyCategory && (category == "" || c.Category != category) {
			continue
		}
		window, ok := parseWindow(c.Window)
		if !ok {
			continue
		}
		since := now.Add(-window)
		if c.Window == WindowDay {
			l := now.In(loc)
			since = time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
		}
		if n := sent(c.Category, since); n >= c.Max {
			reason = fmt.Sprintf("frequency cap: %s at most %d per %s", c.Category, c.Max, c.Window)
			return reason, fmt.Sprintf("%s: %d sent since %s", reason, n, since.UTC().Format(time.RFC3339)), true
		}
	}
	return "", "", false
}

// quietUntil reports whether now falls in the quiet hours q read in loc,
// and when they end. Clock times are built with time.Date in loc, so an
// end of 07:00 is 07:00 on the wall clock even across a DST change.
func quietUntil(q QuietHours, now time.Time, loc *time.Location) (time.Time, bool) {
	start, okS := parseClock(q.Start)
	end, okE := parseClock(q.End)
	if !okS || !okE || start == end {
		return time.Time{}, false
	}
	l := now.In(loc)
	tod := l.Hour()*60 + l.Minute() // whole minutes: 06:59:30 is still quiet for an end of 07:00
	dayAllowed := func(offset int) bool {
		if len(q.Days) == 0 {
			return true
		}
		wd := time.Weekday((int(l.Weekday()) + 7 + offset) % 7)
		return slices.ContainsFunc(q.Days, func(d string) bool { return weekdays[d] == wd })
	}
	endOn := func(dayOffset int) time.Time {
		return time.Date(l.Year(), l.Month(), l.Day()+dayOffset, end/60, end%60, 0, 0, loc)
	}
	if start < end {
		if tod >= start && tod < end && dayAllowed(0) {
			return endOn(0), true
		}
		return time.Time{}, false
	}
	switch {
	case tod >= start && dayAllowed(0):
		return endOn(1), true
	case tod < end && dayAllowed(-1):
		return endOn(0), true
	}
	return time.Time{}, false
}
