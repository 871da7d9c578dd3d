package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors of the Template aggregate. Compare with errors.Is.
var (
	// ErrTemplateNotFound means no template has that ID.
	ErrTemplateNotFound = errors.New("template not found")
	// ErrTemplateExists means a template already lives under that ID with
	// other content.
	ErrTemplateExists = errors.New("template already exists")
	// ErrTemplateArchived means the template was archived: it takes no new
	// version and no new send.
	ErrTemplateArchived = errors.New("template archived")
	// ErrTemplateVersionNotFound means the template has no such version.
	ErrTemplateVersionNotFound = errors.New("template version not found")
	// ErrTemplateVersionMismatch means an update was based on a version
	// other than the latest: someone published in between.
	ErrTemplateVersionMismatch = errors.New("template changed since the version the update was based on")
	// ErrTemplateChannelMissing means the version has no content for the
	// channel in the locale asked for nor in its fallbacks.
	ErrTemplateChannelMissing = errors.New("template has no content for channel")
	// ErrTemplateRender means executing the template failed; nothing of the
	// output is returned.
	ErrTemplateRender = errors.New("template render failed")
)

// Limits on template content.
const (
	MaxTemplateIDLen       = 64
	MaxTemplateNameLen     = 200
	MaxTemplateDescLen     = 2000
	MaxTemplateLocales     = 50
	MaxTemplateVars        = 100
	MaxTemplateVarNameLen  = 64
	MaxTemplatePartLen     = 64 << 10
	MaxTemplateLocaleLen   = 35
	MaxTemplateArchiveNote = 1024
)

// TemplateID identifies a template and names its stream. Clients choose it
// ("otp", "order-shipped") and send with it, so it is part of their code.
type TemplateID string

// TemplateStream returns the event stream name of template id:
// "template-<id>".
func TemplateStream(id TemplateID) string { return "template-" + string(id) }

// Valid reports whether id can name a template: 1 to MaxTemplateIDLen
// characters of A-Z, a-z, 0-9, '_', '.', '-', starting with a letter or a
// digit. The rule keeps IDs safe in stream names and URL paths.
func (id TemplateID) Valid() bool {
	if len(id) == 0 || len(id) > MaxTemplateIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case isASCIIAlnum(c):
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func isASCIIAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// VarType is the declared type of a template variable.
type VarType string

// The variable types. A number is a JSON number; a date is a string holding
// an RFC 3339 timestamp or a YYYY-MM-DD date.
const (
	VarString  VarType = "string"
	VarNumber  VarType = "number"
	VarBoolean VarType = "boolean"
	VarDate    VarType = "date"
)

// Valid reports whether t is one of the declared variable types.
func (t VarType) Valid() bool {
	switch t {
	case VarString, VarNumber, VarBoolean, VarDate:
		return true
	}
	return false
}

// TemplateVar declares a variable the template's parts may use as
// {{.Name}}. A required variable must be given by every send whose channels
// use it; an optional one left out renders as "" (false for a boolean).
type TemplateVar struct {
	Name        string  `json:"name"`
	Type        VarType `json:"type"`
	Required    bool    `json:"required,omitempty"`
	Description string  `json:"description,omitempty"`
}

// EmailPart is the email content: Subject and at least one of Text and
// HTML. HTML is rendered with html/template, so variable values are escaped
// for where they appear.
type EmailPart struct {
	Subject string `json:"subject"`
	Text    string `json:"text,omitempty"`
	HTML    string `json:"html,omitempty"`
}

// SMSPart is the SMS content.
type SMSPart struct {
	Text string `json:"text"`
}

// ChatPart is the content of the chat channels (Slack, DingTalk, WeCom): a
// markdown message, rendered as plain text (values are not escaped).
type ChatPart struct {
	Markdown string `json:"markdown"`
}

// PushPart is the web push content. Body is required.
type PushPart struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body"`
}

// WebhookPart is the webhook payload: a text template whose output must be
// a JSON document. Insert values with the json function ({{json .name}}) so
// they are quoted and escaped.
type WebhookPart struct {
	JSON string `json:"json"`
}

// InAppPart is the in-app inbox content. Body is required.
type InAppPart struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body"`
}

// LocaleContent is one locale's parts, one per kind of channel; a nil part
// means the locale has nothing for those channels (the fallback locale may).
type LocaleContent struct {
	Email   *EmailPart   `json:"email,omitempty"`
	SMS     *SMSPart     `json:"sms,omitempty"`
	Chat    *ChatPart    `json:"chat,omitempty"`
	Push    *PushPart    `json:"push,omitempty"`
	Webhook *WebhookPart `json:"webhook,omitempty"`
	InApp   *InAppPart   `json:"inapp,omitempty"`
}

func (lc LocaleContent) empty() bool { return lc == LocaleContent{} }

// TemplateContent is what one version of a template holds. Its JSON names
// are part of the stable API (the body of POST and PUT /v1/templates).
// Locales maps a locale tag ("en", "pt-BR") to its parts; DefaultLocale
// must be one of them and is the fallback for every other.
type TemplateContent struct {
	Name          string                   `json:"name,omitempty"`
	Description   string                   `json:"description,omitempty"`
	DefaultLocale string                   `json:"default_locale"`
	Variables     []TemplateVar            `json:"variables,omitempty"`
	Locales       map[string]LocaleContent `json:"locales"`
}

// Validate checks c and returns nil or a *ValidationError listing every
// problem, in a fixed order, with fields named by their JSON path
// ("default_locale", "variables[2].type", "locales.en.email.html"). Every
// part must parse, must refer only to declared variables, and the webhook
// part must produce JSON for sample values.
func (c TemplateContent) Validate() error {
	var v validator
	if utf8.RuneCountInString(c.Name) > MaxTemplateNameLen {
		v.add("name", fmt.Sprintf("must be at most %d characters", MaxTemplateNameLen))
	}
	if utf8.RuneCountInString(c.Description) > MaxTemplateDescLen {
		v.add("description", fmt.Sprintf("must be at most %d characters", MaxTemplateDescLen))
	}

	declared := make(map[string]VarType, len(c.Variables))
	if len(c.Variables) > MaxTemplateVars {
		v.add("variables", fmt.Sprintf("must have at most %d entries", MaxTemplateVars))
	}
	for i, tv := range c.Variables {
		field := fmt.Sprintf("variables[%d]", i)
		switch {
		case !validVarName(tv.Name):
			v.add(field+".name", fmt.Sprintf("must be a letter or '_' followed by up to %d letters, digits or '_'", MaxTemplateVarNameLen-1))
		case declared[tv.Name] != "":
			v.add(field+".name", fmt.Sprintf("duplicate variable %q", tv.Name))
		}
		if !tv.Type.Valid() {
			v.add(field+".type", fmt.Sprintf("unknown type %q: use string, number, boolean or date", tv.Type))
		}
		if declared[tv.Name] == "" {
			declared[tv.Name] = tv.Type
		}
	}

	switch {
	case len(c.Locales) == 0:
		v.add("locales", "at least one locale is required")
	case len(c.Locales) > MaxTemplateLocales:
		v.add("locales", fmt.Sprintf("must have at most %d locales", MaxTemplateLocales))
	}
	switch _, ok := c.Locales[c.DefaultLocale]; {
	case c.DefaultLocale == "":
		v.add("default_locale", "is required")
	case !ok && len(c.Locales) > 0:
		v.add("default_locale", fmt.Sprintf("must be one of the locales, not %q", c.DefaultLocale))
	}
	for _, loc := range slices.Sorted(maps.Keys(c.Locales)) {
		prefix := "locales." + loc
		if !validLocale(loc) {
			v.add(prefix, "must be a locale tag like en or pt-BR")
			continue
		}
		lc := c.Locales[loc]
		if lc.empty() {
			v.add(prefix, "must have content for at least one channel")
			continue
		}
		for _, p := range lc.parts() {
			field := prefix + "." + p.field
			if p.src == "" {
				if p.required {
					v.add(field, "is required")
				}
				continue
			}
			if problem := checkPartSource(p, declared); problem != "" {
				v.add(field, problem)
			}
		}
		if e := lc.Email; e != nil && e.Text == "" && e.HTML == "" {
			v.add(prefix+".email.text", "text or html is required")
		}
	}
	for _, loc := range duplicateLocales(c.Locales) {
		v.add("locales."+loc, "differs from another locale only by case")
	}
	return v.err()
}

// duplicateLocales returns locale keys equal to an earlier one (in sorted
// order) but for case: lookups fold case, so they would be ambiguous.
func duplicateLocales(m map[string]LocaleContent) []string {
	var out []string
	seen := map[string]bool{}
	for _, loc := range slices.Sorted(maps.Keys(m)) {
		k := strings.ToLower(strings.ReplaceAll(loc, "_", "-"))
		if seen[k] {
			out = append(out, loc)
		}
		seen[k] = true
	}
	return out
}

func validVarName(s string) bool {
	if s == "" || len(s) > MaxTemplateVarNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}

// validLocale accepts BCP 47 shaped tags: a 2 to 8 letter language then
// subtags of 1 to 8 letters or digits, separated by '-' or '_'.
func validLocale(s string) bool {
	if s == "" || len(s) > MaxTemplateLocaleLen {
		return false
	}
	for i, sub := range strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' }) {
		if len(sub) > 8 || (i == 0 && len(sub) < 2) {
			return false
		}
		for j := 0; j < len(sub); j++ {
			if !isASCIIAlnum(sub[j]) || (i == 0 && sub[j] >= '0' && sub[j] <= '9') {
				return false
			}
		}
	}
	// FieldsFunc drops empty subtags; refuse them ("en--us", "-en", "en-").
	return !strings.Contains(s, "--") && !strings.Contains(s, "__") &&
		!strings.ContainsAny(s[:1]+s[len(s)-1:], "-_")
}

// normalized returns a deep copy of c, so a stored version shares nothing
// mutable with the command it came from.
func (c TemplateContent) normalized() TemplateContent {
	n := c
	n.Variables = slices.Clone(c.Variables)
	n.Locales = make(map[string]LocaleContent, len(c.Locales))
	for k, lc := range c.Locales {
		n.Locales[k] = lc.clone()
	}
	return n
}

func (lc LocaleContent) clone() LocaleContent {
	return LocaleContent{
		Email: clonePtr(lc.Email), SMS: clonePtr(lc.SMS), Chat: clonePtr(lc.Chat),
		Push: clonePtr(lc.Push), Webhook: clonePtr(lc.Webhook), InApp: clonePtr(lc.InApp),
	}
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// sameContent compares through the JSON encoding, which ignores
// nil-versus-empty collections.
func sameContent(a, b TemplateContent) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// Template is the state of one template, rebuilt from its stream. The zero
// value means "no such template". Like Notification it is a value changed
// only by EvolveTemplate.
type Template struct {
	id         TemplateID
	exists     bool
	createdAt  time.Time
	createdBy  string
	archived   bool
	archivedAt time.Time
	reason     string
	versions   []TemplateVersion // versions[i] is version i+1
	version    int
}

// ID returns the template's ID ("" when it does not exist).
func (t Template) ID() TemplateID { return t.id }

// Exists reports whether the template was created.
func (t Template) Exists() bool { return t.exists }

// CreatedAt returns when the template was created.
func (t Template) CreatedAt() time.Time { return t.createdAt }

// CreatedBy returns the actor that created the template.
func (t Template) CreatedBy() string { return t.createdBy }

// Archived reports whether the template was archived.
func (t Template) Archived() bool { return t.archived }

// ArchivedAt returns when the template was archived (zero when it is not).
func (t Template) ArchivedAt() time.Time { return t.archivedAt }

// ArchiveReason returns the reason given when archiving.
func (t Template) ArchiveReason() string { return t.reason }

// Version returns how many events have been applied: the stream version to
// expect when appending the next ones. It is not a template version number;
// see LatestVersion.
func (t Template) Version() int { return t.version }

// LatestVersion returns the most recently published version.
func (t Template) LatestVersion() (TemplateVersion, bool) {
	if len(t.versions) == 0 {
		return TemplateVersion{}, false
	}
	return t.versions[len(t.versions)-1], true
}

// VersionAt returns version n (from 1).
func (t Template) VersionAt(n int) (TemplateVersion, bool) {
	if n < 1 || n > len(t.versions) {
		return TemplateVersion{}, false
	}
	return t.versions[n-1], true
}

// Versions returns every version, oldest first. The slice is a copy.
func (t Template) Versions() []TemplateVersion { return slices.Clone(t.versions) }

// TemplateVersion is one published, immutable version of a template.
type TemplateVersion struct {
	templateID  TemplateID
	number      int
	content     TemplateContent
	publishedAt time.Time
	publishedBy string
}

// TemplateID returns the ID of the template the version belongs to.
func (v TemplateVersion) TemplateID() TemplateID { return v.templateID }

// Number returns the version number (from 1).
func (v TemplateVersion) Number() int { return v.number }

// Content returns a copy of the version's content.
func (v TemplateVersion) Content() TemplateContent { return v.content.normalized() }

// PublishedAt returns when the version was published.
func (v TemplateVersion) PublishedAt() time.Time { return v.publishedAt }

// PublishedBy returns the actor that published the version.
func (v TemplateVersion) PublishedBy() string { return v.publishedBy }

// TemplateCommand is a command DecideTemplate understands. The interface is
// sealed.
type TemplateCommand interface {
	templateCommand()
}

// CreateTemplate creates template ID with Content as version 1. Repeating it
// with the same content while version 1 is still the only one is a no-op,
// so a client may retry a create safely.
type CreateTemplate struct {
	ID      TemplateID
	Content TemplateContent
	Actor   string
	Now     time.Time
}

// PublishTemplateVersion publishes Content as the next version. Content
// equal to the latest version's is a no-op (a retried update publishes
// nothing twice). BasedOn, when positive, is the version the caller edited:
// if another version was published since, the command is refused with
// ErrTemplateVersionMismatch rather than silently overwriting it.
type PublishTemplateVersion struct {
	Content TemplateContent
	BasedOn int
	Actor   string
	Now     time.Time
}

// ArchiveTemplate archives the template. Archiving an archived template is
// a no-op.
type ArchiveTemplate struct {
	Reason string
	Actor  string
	Now    time.Time
}

func (CreateTemplate) templateCommand()         {}
func (PublishTemplateVersion) templateCommand() {}
func (ArchiveTemplate) templateCommand()        {}

// DecideTemplate returns the events cmd causes on state, or an error
// wrapping one of the template sentinels, ErrInvalidCommand, or a
// *ValidationError for invalid content. It is pure; (nil, nil) means the
// command was already applied. Event times are cmd.Now in UTC.
func DecideTemplate(state Template, cmd TemplateCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case CreateTemplate:
		return decideCreateTemplate(state, c)
	case PublishTemplateVersion:
		return decidePublishTemplate(state, c)
	case ArchiveTemplate:
		return decideArchiveTemplate(state, c)
	}
	return nil, fmt.Errorf("decide template: unsupported command %T: %w", cmd, ErrInvalidCommand)
}

func decideCreateTemplate(t Template, c CreateTemplate) ([]Event, error) {
	const op = "create template"
	if !c.ID.Valid() {
		return nil, &ValidationError{Fields: []FieldError{{Field: "id", Problem: fmt.Sprintf(
			"must be 1 to %d characters of A-Z, a-z, 0-9, '_', '.', '-', starting with a letter or digit", MaxTemplateIDLen)}}}
	}
	if t.exists {
		if latest, _ := t.LatestVersion(); len(t.versions) == 1 && sameContent(latest.content, c.Content) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s %s: %w", op, c.ID, ErrTemplateExists)
	}
	if err := c.Content.Validate(); err != nil {
		return nil, err
	}
	now := c.Now.UTC()
	return []Event{
		TemplateCreated{TemplateID: c.ID, Actor: c.Actor, CreatedAt: now},
		TemplateVersionPublished{TemplateID: c.ID, Version: 1, Content: c.Content.normalized(), Actor: c.Actor, PublishedAt: now},
	}, nil
}

func decidePublishTemplate(t Template, c PublishTemplateVersion) ([]Event, error) {
	const op = "publish template version"
	switch {
	case !t.exists:
		return nil, fmt.Errorf("%s: %w", op, ErrTemplateNotFound)
	case t.archived:
		return nil, fmt.Errorf("%s %s: %w", op, t.id, ErrTemplateArchived)
	case c.BasedOn < 0:
		return nil, fmt.Errorf("%s %s: negative base version %d: %w", op, t.id, c.BasedOn, ErrInvalidCommand)
	}
	latest, _ := t.LatestVersion()
	if sameContent(latest.content, c.Content) {
		return nil, nil
	}
	if c.BasedOn > 0 && c.BasedOn != latest.number {
		return nil, fmt.Errorf("%s %s: based on version %d, latest is %d: %w", op, t.id, c.BasedOn, latest.number, ErrTemplateVersionMismatch)
	}
	if err := c.Content.Validate(); err != nil {
		return nil, err
	}
	return []Event{TemplateVersionPublished{
		TemplateID: t.id, Version: latest.number + 1, Content: c.Content.normalized(),
		Actor: c.Actor, PublishedAt: c.Now.UTC(),
	}}, nil
}

func decideArchiveTemplate(t Template, c ArchiveTemplate) ([]Event, error) {
	const op = "archive template"
	switch {
	case !t.exists:
		return nil, fmt.Errorf("%s: %w", op, ErrTemplateNotFound)
	case t.archived:
		return nil, nil
	case utf8.RuneCountInString(c.Reason) > MaxTemplateArchiveNote:
		return nil, &ValidationError{Fields: []FieldError{{Field: "reason", Problem: fmt.Sprintf("must be at most %d characters", MaxTemplateArchiveNote)}}}
	}
	return []Event{TemplateArchived{TemplateID: t.id, Reason: c.Reason, Actor: c.Actor, ArchivedAt: c.Now.UTC()}}, nil
}

// EvolveTemplate returns state with e applied. Every event counts towards
// Version, including ones this aggregate does not know (they are otherwise
// ignored), so Version always equals the stream's version. A version
// published out of sequence is ignored rather than renumbered.
func EvolveTemplate(state Template, e Event) Template {
	e = templateValueEvent(e)
	if e == nil {
		return state
	}
	t := state
	t.version++
	switch ev := e.(type) {
	case TemplateCreated:
		if t.exists {
			return t
		}
		t.id, t.exists, t.createdAt, t.createdBy = ev.TemplateID, true, ev.CreatedAt, ev.Actor
	case TemplateVersionPublished:
		if !t.exists || ev.Version != len(t.versions)+1 {
			return t
		}
		// Copy-on-append: a state kept by a caller must not see versions
		// appended to a slice it shares.
		t.versions = append(slices.Clip(t.versions), TemplateVersion{
			templateID: t.id, number: ev.Version, content: ev.Content.normalized(),
			publishedAt: ev.PublishedAt, publishedBy: ev.Actor,
		})
	case TemplateArchived:
		if !t.exists {
			return t
		}
		t.archived, t.archivedAt, t.reason = true, ev.ArchivedAt, ev.Reason
	}
	return t
}
