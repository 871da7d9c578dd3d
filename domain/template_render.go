package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
	"time"
)

// RenderedContent is a template rendered for one channel: what an adapter
// sends. Subject is the email subject or the push / in-app title; Body is
// the email text, the SMS text, the chat markdown, the push / in-app body or
// the webhook JSON; HTML is the email HTML.
type RenderedContent struct {
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body,omitempty"`
	HTML    string `json:"html,omitempty"`
}

// partKind says how a part is parsed and checked.
type partKind uint8

const (
	partText partKind = iota // text/template
	partHTML                 // html/template: values escaped in context
	partJSON                 // text/template whose output must be JSON
)

// partTarget says which field of RenderedContent a part fills.
type partTarget uint8

const (
	targetSubject partTarget = iota
	targetBody
	targetHTML
)

// partSource is one template text of a locale, named by its JSON path below
// the locale ("email.subject").
type partSource struct {
	field    string
	src      string
	required bool
	kind     partKind
	target   partTarget
}

// channelParts returns the parts lc holds for channel ch, and whether lc
// has content for ch at all. The three chat channels share one part; so do
// web push and its "push" part.
func (lc LocaleContent) channelParts(ch Channel) ([]partSource, bool) {
	switch ch {
	case ChannelEmail:
		if e := lc.Email; e != nil {
			return []partSource{
				{field: "email.subject", src: e.Subject, required: true, kind: partText, target: targetSubject},
				{field: "email.text", src: e.Text, kind: partText, target: targetBody},
				{field: "email.html", src: e.HTML, kind: partHTML, target: targetHTML},
			}, true
		}
	case ChannelSMS:
		if p := lc.SMS; p != nil {
			return []partSource{{field: "sms.text", src: p.Text, required: true, kind: partText, target: targetBody}}, true
		}
	case ChannelSlack, ChannelDingTalk, ChannelWeCom:
		if p := lc.Chat; p != nil {
			return []partSource{{field: "chat.markdown", src: p.Markdown, required: true, kind: partText, target: targetBody}}, true
		}
	case ChannelWebPush:
		if p := lc.Push; p != nil {
			return []partSource{
				{field: "push.title", src: p.Title, kind: partText, target: targetSubject},
				{field: "push.body", src: p.Body, required: true, kind: partText, target: targetBody},
			}, true
		}
	case ChannelWebhook:
		if p := lc.Webhook; p != nil {
			return []partSource{{field: "webhook.json", src: p.JSON, required: true, kind: partJSON, target: targetBody}}, true
		}
	case ChannelInApp:
		if p := lc.InApp; p != nil {
			return []partSource{
				{field: "inapp.title", src: p.Title, kind: partText, target: targetSubject},
				{field: "inapp.body", src: p.Body, required: true, kind: partText, target: targetBody},
			}, true
		}
	}
	return nil, false
}

// partChannels holds one channel per kind of part, in the order parts are
// validated and listed.
var partChannels = []Channel{ChannelEmail, ChannelSMS, ChannelSlack, ChannelWebPush, ChannelWebhook, ChannelInApp}

// parts returns every part lc holds.
func (lc LocaleContent) parts() []partSource {
	var out []partSource
	for _, ch := range partChannels {
		ps, _ := lc.channelParts(ch)
		out = append(out, ps...)
	}
	return out
}

// templateFuncs are the functions every part may call besides the
// text/template builtins. They never fail on a declared variable of the
// right type, except formatDate given something that is not a date.
func templateFuncs() map[string]any {
	return map[string]any{
		"upper":      strings.ToUpper,
		"lower":      strings.ToLower,
		"trim":       strings.TrimSpace,
		"json":       jsonText,
		"formatDate": formatDate,
		"default":    defaultValue,
	}
}

// jsonText encodes v as JSON without HTML escaping, for webhook payloads:
// {"code": {{json .code}}}.
func jsonText(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// formatDate formats a date variable with a Go layout:
// {{.due | formatDate "2 Jan 2006"}}.
func formatDate(layout string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("formatDate: %v is not a date", v)
	}
	if s == "" {
		return "", nil // an optional date left out
	}
	t, ok := parseDate(s)
	if !ok {
		return "", fmt.Errorf("formatDate: %q is not an RFC 3339 timestamp or YYYY-MM-DD date", s)
	}
	return t.Format(layout), nil
}

// defaultValue returns v, or def when v is empty: {{default "there" .name}}.
func defaultValue(def, v any) any {
	switch x := v.(type) {
	case nil:
		return def
	case string:
		if x == "" {
			return def
		}
	case json.Number:
		if x == "" {
			return def
		}
	}
	return v
}

func parseDate(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// sampleValues are what a part is executed with when published: one value
// of each declared type, so a part that cannot render whatever the values
// is refused then rather than failing every send.
var sampleValues = map[VarType]any{
	VarString:  "sample",
	VarNumber:  json.Number("1"),
	VarBoolean: true,
	VarDate:    "2026-01-02T15:04:05Z",
}

// checkPartSource parses p and returns "" or what is wrong with it: a parse
// error, a construct Herald templates do not allow, a reference to an
// undeclared variable, or a failure to render sample values.
func checkPartSource(p partSource, declared map[string]VarType) string {
	if len(p.src) > MaxTemplatePartLen {
		return fmt.Sprintf("must be at most %d bytes", MaxTemplatePartLen)
	}
	refs, err := partRefs(p)
	if err != nil {
		return err.Error()
	}
	for _, name := range refs {
		if declared[name] == "" {
			return fmt.Sprintf("refers to undeclared variable %q: declare it in variables", name)
		}
	}
	data := make(map[string]any, len(declared))
	for name, typ := range declared {
		data[name] = sampleValues[typ]
	}
	out, err := executePart(p, data)
	if err != nil {
		return "does not render with sample values: " + err.Error()
	}
	if p.kind == partJSON && !json.Valid([]byte(out)) {
		return "does not render to a JSON document with sample values; insert values with {{json .name}}"
	}
	return ""
}

// errUnsupportedAction is returned for template actions Herald refuses:
// variables are scalars, so range has nothing to iterate (and range over an
// integer could run for ever), and parts are single templates, so define,
// block and template have nothing to share.
var errUnsupportedAction = errors.New("range, define, block and template actions are not supported")

// partRefs parses p and returns the sorted names of the variables it refers
// to ({{.name}}, {{$.name}}, and as function or pipeline arguments).
// Inside a with block the dot is a variable's value, not the variables, so
// only $.name references count there.
func partRefs(p partSource) ([]string, error) {
	t, err := texttemplate.New(p.field).Funcs(templateFuncs()).Parse(p.src)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "template: "))
	}
	if len(t.Templates()) > 1 {
		return nil, errUnsupportedAction
	}
	refs := map[string]bool{}
	if t.Tree != nil {
		if err := walkRefs(t.Tree.Root, true, refs); err != nil {
			return nil, err
		}
	}
	return slices.Sorted(maps.Keys(refs)), nil
}

func walkRefs(node parse.Node, rootDot bool, refs map[string]bool) error {
	switch n := node.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := walkRefs(c, rootDot, refs); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return walkRefs(n.Pipe, rootDot, refs)
	case *parse.IfNode:
		return walkBranch(&n.BranchNode, rootDot, rootDot, refs)
	case *parse.WithNode:
		return walkBranch(&n.BranchNode, rootDot, false, refs)
	case *parse.RangeNode, *parse.TemplateNode:
		return errUnsupportedAction
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Cmds {
			if err := walkRefs(c, rootDot, refs); err != nil {
				return err
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if err := walkRefs(a, rootDot, refs); err != nil {
				return err
			}
		}
	case *parse.ChainNode:
		return walkRefs(n.Node, rootDot, refs)
	case *parse.FieldNode:
		if rootDot {
			refs[n.Ident[0]] = true
		}
	case *parse.VariableNode:
		if n.Ident[0] == "$" && len(n.Ident) > 1 {
			refs[n.Ident[1]] = true
		}
	}
	return nil
}

// walkBranch walks an if or with: the pipeline and the else branch see the
// enclosing dot, the body sees bodyRoot.
func walkBranch(b *parse.BranchNode, rootDot, bodyRoot bool, refs map[string]bool) error {
	if err := walkRefs(b.Pipe, rootDot, refs); err != nil {
		return err
	}
	if err := walkRefs(b.List, bodyRoot, refs); err != nil {
		return err
	}
	return walkRefs(b.ElseList, rootDot, refs)
}

// executePart parses and runs p on data with missingkey=error; the output
// is returned only when execution finished.
func executePart(p partSource, data map[string]any) (string, error) {
	var buf bytes.Buffer
	switch p.kind {
	case partHTML:
		t, err := htmltemplate.New(p.field).Funcs(templateFuncs()).Option("missingkey=error").Parse(p.src)
		if err != nil {
			return "", err
		}
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
	default:
		t, err := texttemplate.New(p.field).Funcs(templateFuncs()).Option("missingkey=error").Parse(p.src)
		if err != nil {
			return "", err
		}
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
	}
	return buf.String(), nil
}

// LocaleFor returns the locale whose content v renders for channel ch when
// locale is asked for: locale itself, else its language ("pt" for
// "pt-BR"), else the default locale, the first of them with content for
// ch. Matching ignores case and treats '_' like '-'. An empty locale means
// the default one. It reports false when none of them has content for ch.
func (v TemplateVersion) LocaleFor(locale string, ch Channel) (string, bool) {
	for _, want := range localeChain(locale, v.content.DefaultLocale) {
		key, ok := findLocale(v.content.Locales, want)
		if !ok {
			continue
		}
		if _, has := v.content.Locales[key].channelParts(ch); has {
			return key, true
		}
	}
	return "", false
}

// Channels returns, in AllChannels order, every channel v has content for
// when locale is asked for (with fallbacks).
func (v TemplateVersion) Channels(locale string) []Channel {
	var out []Channel
	for _, ch := range AllChannels() {
		if _, ok := v.LocaleFor(locale, ch); ok {
			out = append(out, ch)
		}
	}
	return out
}

func localeChain(locale, fallback string) []string {
	var chain []string
	if locale != "" {
		chain = append(chain, locale)
		if i := strings.IndexAny(locale, "-_"); i > 0 {
			chain = append(chain, locale[:i])
		}
	}
	return append(chain, fallback)
}

func canonicalLocale(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "-")) }

func findLocale(m map[string]LocaleContent, want string) (string, bool) {
	if _, ok := m[want]; ok {
		return want, true
	}
	c := canonicalLocale(want)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if canonicalLocale(k) == c {
			return k, true
		}
	}
	return "", false
}

// CheckTemplateVars checks vars against the variables v declares, for a
// send over channels in locale, and returns nil or a *ValidationError. Each
// bad variable is reported as field "template.vars.<name>": a value of the
// wrong type (whatever the channels), or a required variable that is
// missing (or null) while a part of one of the channels uses it. With no
// channels (they are resolved later from the recipient), every required
// variable must be given. A channel v has no content for is reported as
// field "channels". Variables v does not declare are ignored: no part can
// use them.
func CheckTemplateVars(v TemplateVersion, locale string, channels []Channel, vars map[string]any) error {
	var val validator
	used := map[string]bool{}
	for _, ch := range channels {
		loc, ok := v.LocaleFor(locale, ch)
		if !ok {
			val.add("channels", fmt.Sprintf("template %s version %d has no %s content", v.templateID, v.number, ch))
			continue
		}
		ps, _ := v.content.Locales[loc].channelParts(ch)
		for _, p := range ps {
			refs, err := partRefs(p)
			if err != nil {
				// Stored versions were validated; a part that no longer
				// parses would need every variable.
				for _, tv := range v.content.Variables {
					used[tv.Name] = true
				}
				continue
			}
			for _, r := range refs {
				used[r] = true
			}
		}
	}
	for _, tv := range v.content.Variables {
		field := "template.vars." + tv.Name
		value, given := vars[tv.Name]
		if !given || value == nil {
			if tv.Required && (used[tv.Name] || len(channels) == 0) {
				val.add(field, fmt.Sprintf("is required (a %s)", tv.Type))
			}
			continue
		}
		if _, ok := varValue(tv.Type, value); !ok {
			val.add(field, typeProblem(tv.Type))
		}
	}
	return val.err()
}

func typeProblem(t VarType) string {
	switch t {
	case VarNumber:
		return "must be a number"
	case VarBoolean:
		return "must be true or false"
	case VarDate:
		return "must be a date: an RFC 3339 timestamp or YYYY-MM-DD"
	}
	return "must be a string"
}

// varValue returns value as the template sees a variable of type t, and
// whether value has that type. Numbers become json.Number, so they print
// as written ("1000000", not "1e+06") and keep the precision of large
// integers; dates stay the string given (format them with formatDate).
func varValue(t VarType, value any) (any, bool) {
	switch t {
	case VarString:
		s, ok := value.(string)
		return s, ok
	case VarBoolean:
		b, ok := value.(bool)
		return b, ok
	case VarDate:
		switch d := value.(type) {
		case string:
			_, ok := parseDate(d)
			return d, ok
		case time.Time:
			return d.Format(time.RFC3339Nano), true
		}
		return nil, false
	case VarNumber:
		return numberValue(value)
	}
	return nil, false
}

func numberValue(value any) (any, bool) {
	var f float64
	switch n := value.(type) {
	case json.Number:
		if _, err := strconv.ParseFloat(string(n), 64); err != nil {
			return nil, false
		}
		return n, true
	case float64:
		f = n
	case float32:
		f = float64(n)
	case int:
		return json.Number(strconv.FormatInt(int64(n), 10)), true
	case int8:
		return json.Number(strconv.FormatInt(int64(n), 10)), true
	case int16:
		return json.Number(strconv.FormatInt(int64(n), 10)), true
	case int32:
		return json.Number(strconv.FormatInt(int64(n), 10)), true
	case int64:
		return json.Number(strconv.FormatInt(n, 10)), true
	case uint:
		return json.Number(strconv.FormatUint(uint64(n), 10)), true
	case uint8:
		return json.Number(strconv.FormatUint(uint64(n), 10)), true
	case uint16:
		return json.Number(strconv.FormatUint(uint64(n), 10)), true
	case uint32:
		return json.Number(strconv.FormatUint(uint64(n), 10)), true
	case uint64:
		return json.Number(strconv.FormatUint(n, 10)), true
	default:
		return nil, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, false
	}
	return json.Number(strconv.FormatFloat(f, 'f', -1, 64)), true
}

// renderData is what the parts see as dot: every declared variable, with
// the value given or, for one left out, "" (false for a boolean), so
// {{if .x}} works on optional variables. Vars must have passed
// CheckTemplateVars.
func renderData(decls []TemplateVar, vars map[string]any) map[string]any {
	data := make(map[string]any, len(decls))
	for _, tv := range decls {
		if v, ok := varValue(tv.Type, vars[tv.Name]); ok && vars[tv.Name] != nil {
			data[tv.Name] = v
			continue
		}
		if tv.Type == VarBoolean {
			data[tv.Name] = false
		} else {
			data[tv.Name] = ""
		}
	}
	return data
}

// RenderTemplate renders version v for channel ch in locale (with the
// fallbacks of LocaleFor) with vars. It returns an error wrapping
// ErrTemplateChannelMissing when v has nothing for ch, the
// *ValidationError of CheckTemplateVars when vars are missing or of the
// wrong type, and an error wrapping ErrTemplateRender when a part fails to
// execute or a webhook part's output is not JSON. On any error the
// RenderedContent is empty: a send never goes out half rendered. The email
// HTML part is rendered with html/template, so values are escaped; every
// other part is plain text.
func RenderTemplate(v TemplateVersion, locale string, ch Channel, vars map[string]any) (RenderedContent, error) {
	op := fmt.Sprintf("render template %s version %d for %s", v.templateID, v.number, ch)
	loc, ok := v.LocaleFor(locale, ch)
	if !ok {
		return RenderedContent{}, fmt.Errorf("%s: %w", op, ErrTemplateChannelMissing)
	}
	if err := CheckTemplateVars(v, locale, []Channel{ch}, vars); err != nil {
		return RenderedContent{}, err
	}
	data := renderData(v.content.Variables, vars)
	ps, _ := v.content.Locales[loc].channelParts(ch)
	var out RenderedContent
	for _, p := range ps {
		if p.src == "" {
			continue
		}
		text, err := executePart(p, data)
		if err != nil {
			return RenderedContent{}, fmt.Errorf("%s in %s: %w: %w", op, loc, ErrTemplateRender, err)
		}
		if p.kind == partJSON && !json.Valid([]byte(text)) {
			return RenderedContent{}, fmt.Errorf("%s in %s: %w: %s output is not JSON", op, loc, ErrTemplateRender, p.field)
		}
		switch p.target {
		case targetSubject:
			out.Subject = text
		case targetBody:
			out.Body = text
		case targetHTML:
			out.HTML = text
		}
	}
	return out, nil
}
