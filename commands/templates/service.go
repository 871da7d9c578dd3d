package templates

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"herald/domain"
)

// Service is the template side of Herald: the command handlers, the reads,
// the list index, and the Resolve and Render calls of the notification
// flow. Safe for concurrent use.
type Service struct {
	// Create, Update and Archive are the command handlers.
	Create  *CreateHandler
	Update  *UpdateHandler
	Archive *ArchiveHandler

	x        executor
	index    *index
	versions *versionCache
}

// NewService returns a Service over d; it refuses missing Deps. The list
// index starts empty and fills on the first List or when Run follows the
// log.
func NewService(d Deps) (*Service, error) {
	if err := d.validate("new template service"); err != nil {
		return nil, err
	}
	c, _ := NewCreateHandler(d)
	u, _ := NewUpdateHandler(d)
	a, _ := NewArchiveHandler(d)
	return &Service{
		Create: c, Update: u, Archive: a,
		x:        executor{store: d.Store, newID: d.NewID},
		index:    newIndex(d.Store),
		versions: newVersionCache(versionCacheSize),
	}, nil
}

// Run follows the event log from the start, keeping the list index
// current, until ctx ends (then it returns nil) or reading the log fails.
// Run it once, in its own goroutine; List works without it, but then each
// list request reads what was appended since the previous one first.
func (s *Service) Run(ctx context.Context) error { return s.index.follow(ctx) }

// Get returns the template with its versions. A template that was never
// created gives an error wrapping domain.ErrTemplateNotFound.
func (s *Service) Get(ctx context.Context, id domain.TemplateID) (domain.Template, error) {
	if !id.Valid() {
		return domain.Template{}, fmt.Errorf("get template %q: %w", id, domain.ErrTemplateNotFound)
	}
	t, err := s.x.load(ctx, id)
	if err != nil {
		return domain.Template{}, err
	}
	if !t.Exists() {
		return domain.Template{}, fmt.Errorf("get template %q: %w", id, domain.ErrTemplateNotFound)
	}
	return t, nil
}

// Version returns version n of template id; archived templates' versions
// stay readable. Errors wrap domain.ErrTemplateNotFound or
// domain.ErrTemplateVersionNotFound.
func (s *Service) Version(ctx context.Context, id domain.TemplateID, n int) (domain.TemplateVersion, error) {
	if v, ok := s.versions.get(id, n); ok {
		return v, nil
	}
	t, err := s.Get(ctx, id)
	if err != nil {
		return domain.TemplateVersion{}, err
	}
	v, ok := t.VersionAt(n)
	if !ok {
		return domain.TemplateVersion{}, fmt.Errorf("template %q version %d: %w", id, n, domain.ErrTemplateVersionNotFound)
	}
	s.versions.put(v)
	return v, nil
}

// List returns a page of templates in ID order, from the index after it
// caught up with everything committed before the call (so a client sees
// its own creates). A malformed cursor, limit or status gives a
// *domain.ValidationError naming "cursor", "limit" or "status".
func (s *Service) List(ctx context.Context, q ListQuery) (ListPage, error) {
	var fields []domain.FieldError
	after, err := decodeCursor(q.Cursor)
	if err != nil {
		fields = append(fields, domain.FieldError{Field: "cursor", Problem: "is not a cursor this API returned"})
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultListLimit
	case q.Limit < 0 || q.Limit > MaxListLimit:
		fields = append(fields, domain.FieldError{Field: "limit", Problem: fmt.Sprintf("must be 1 to %d", MaxListLimit)})
	}
	switch q.Status {
	case "", "all", "active", "archived":
	default:
		fields = append(fields, domain.FieldError{Field: "status", Problem: "must be all, active or archived"})
	}
	if len(fields) > 0 {
		return ListPage{}, &domain.ValidationError{Fields: fields}
	}
	if err := s.index.catchUp(ctx); err != nil {
		return ListPage{}, err
	}
	return s.index.page(after, q.Limit, q.Status), nil
}

func encodeCursor(id domain.TemplateID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id))
}

func decodeCursor(c string) (domain.TemplateID, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if id := domain.TemplateID(b); err != nil || !id.Valid() {
		return "", errBadCursor
	}
	return domain.TemplateID(b), nil
}

// Resolve checks a notification's template reference at intake and pins
// it. It returns ref with Version set to the version that will be rendered
// (ref.Version, or the latest published one when it is 0) and Vars copied;
// Locale is kept as given, as the pinned version resolves it the same way
// at every attempt.
//
// Errors, each of which also holds a *domain.ValidationError so a send can
// answer 422 naming the field:
//   - ref.ID malformed: field "template.id";
//   - no such template: wraps domain.ErrTemplateNotFound, field "template.id";
//   - the template is archived: wraps domain.ErrTemplateArchived, field
//     "template.id" (a pinned version of an archived template is refused
//     too: archiving stops new sends);
//   - no such version, or a negative one: wraps
//     domain.ErrTemplateVersionNotFound when it does not exist, field
//     "template.version";
//   - the vars do not fit the version's declarations for channels, or a
//     channel has no content: the *domain.ValidationError of
//     domain.CheckTemplateVars, fields "template.vars.<name>" and
//     "channels".
//
// Other errors come from reading the event log.
func (s *Service) Resolve(ctx context.Context, ref domain.TemplateRef, channels []domain.Channel) (domain.TemplateRef, error) {
	const op = "resolve template"
	id := domain.TemplateID(ref.ID)
	switch {
	case !id.Valid():
		return domain.TemplateRef{}, fieldError("template.id", "is not a template id")
	case ref.Version < 0:
		return domain.TemplateRef{}, fieldError("template.version", "must not be negative")
	}
	t, err := s.x.load(ctx, id)
	if err != nil {
		return domain.TemplateRef{}, fmt.Errorf("%s %q: %w", op, id, err)
	}
	if !t.Exists() {
		return domain.TemplateRef{}, fmt.Errorf("%s %q: %w: %w", op, id, domain.ErrTemplateNotFound,
			fieldError("template.id", "no template has this id"))
	}
	if t.Archived() {
		return domain.TemplateRef{}, fmt.Errorf("%s %q: %w: %w", op, id, domain.ErrTemplateArchived,
			fieldError("template.id", "the template is archived"))
	}
	v, ok := t.LatestVersion()
	if ref.Version > 0 {
		v, ok = t.VersionAt(ref.Version)
	}
	if !ok {
		return domain.TemplateRef{}, fmt.Errorf("%s %q: %w: %w", op, id, domain.ErrTemplateVersionNotFound,
			fieldError("template.version", fmt.Sprintf("the template has no version %d", ref.Version)))
	}
	if err := domain.CheckTemplateVars(v, ref.Locale, channels, ref.Vars); err != nil {
		return domain.TemplateRef{}, err
	}
	s.versions.put(v)
	out := ref
	out.Version = v.Number()
	out.Vars = maps.Clone(ref.Vars)
	return out, nil
}

// Render renders the template version ref pins (Version 0 means the
// latest, which a pinned reference never has) for channel ch, for the
// dispatcher at attempt time. Versions of archived templates still render,
// so notifications accepted before the archive go out. Errors wrap
// domain.ErrTemplateNotFound, domain.ErrTemplateVersionNotFound,
// domain.ErrTemplateChannelMissing or domain.ErrTemplateRender, or are the
// *domain.ValidationError of bad vars: all permanent for this ref, so the
// delivery should fail rather than retry. Only event log errors are
// transient. On error the content is empty, never half rendered.
// Versions are immutable, so rendering a pinned version reads the log once
// per process and then only the cache.
func (s *Service) Render(ctx context.Context, ref domain.TemplateRef, ch domain.Channel) (domain.RenderedContent, error) {
	id := domain.TemplateID(ref.ID)
	var (
		v   domain.TemplateVersion
		err error
	)
	if ref.Version > 0 {
		v, err = s.Version(ctx, id, ref.Version)
	} else {
		v, err = s.latest(ctx, id)
	}
	if err != nil {
		return domain.RenderedContent{}, err
	}
	return domain.RenderTemplate(v, ref.Locale, ch, ref.Vars)
}

func (s *Service) latest(ctx context.Context, id domain.TemplateID) (domain.TemplateVersion, error) {
	t, err := s.Get(ctx, id)
	if err != nil {
		return domain.TemplateVersion{}, err
	}
	v, _ := t.LatestVersion() // a created template always has version 1
	return v, nil
}

// PreviewRequest asks for a render without sending.
type PreviewRequest struct {
	ID domain.TemplateID
	// Version 0 means the latest.
	Version int
	Locale  string
	// Channels empty means every channel the version has content for in
	// Locale (with fallbacks).
	Channels []domain.Channel
	Vars     map[string]any
}

// ChannelPreview is one channel's render.
type ChannelPreview struct {
	Channel domain.Channel
	// Locale is the locale whose content was used, after fallbacks.
	Locale  string
	Content domain.RenderedContent
	// SMS is set for the SMS channel: encoding and segment count of Body.
	SMS *domain.SMSInfo
}

// PreviewResult is every requested channel rendered.
type PreviewResult struct {
	ID       domain.TemplateID
	Version  int
	Channels []ChannelPreview
}

// Preview renders a version for the requested channels without sending.
// Archived templates can be previewed. Bad input gives a
// *domain.ValidationError naming "version", "channels[i]" or
// "vars.<name>"; a failing render an error wrapping
// domain.ErrTemplateRender; either way no channel is returned.
func (s *Service) Preview(ctx context.Context, req PreviewRequest) (PreviewResult, error) {
	t, err := s.Get(ctx, req.ID)
	if err != nil {
		return PreviewResult{}, err
	}
	v, ok := t.LatestVersion()
	if req.Version != 0 {
		v, ok = t.VersionAt(req.Version)
	}
	if !ok {
		return PreviewResult{}, fmt.Errorf("preview template %q: %w: %w", req.ID, domain.ErrTemplateVersionNotFound,
			fieldError("version", fmt.Sprintf("the template has no version %d", req.Version)))
	}
	channels := req.Channels
	if len(channels) == 0 {
		channels = v.Channels(req.Locale)
	}
	var fields []domain.FieldError
	for i, ch := range channels {
		field := fmt.Sprintf("channels[%d]", i)
		switch _, has := v.LocaleFor(req.Locale, ch); {
		case !ch.Valid():
			fields = append(fields, domain.FieldError{Field: field, Problem: fmt.Sprintf("unknown channel %q", ch)})
		case !has:
			fields = append(fields, domain.FieldError{Field: field, Problem: fmt.Sprintf("version %d has no %s content", v.Number(), ch)})
		}
	}
	if len(fields) == 0 {
		var ve *domain.ValidationError
		if err := domain.CheckTemplateVars(v, req.Locale, channels, req.Vars); errors.As(err, &ve) {
			for _, f := range ve.Fields {
				// The preview body carries vars at the top level.
				f.Field = strings.Replace(f.Field, "template.vars.", "vars.", 1)
				fields = append(fields, f)
			}
		}
	}
	if len(fields) > 0 {
		return PreviewResult{}, &domain.ValidationError{Fields: fields}
	}
	out := PreviewResult{ID: t.ID(), Version: v.Number()}
	for _, ch := range channels {
		content, err := domain.RenderTemplate(v, req.Locale, ch, req.Vars)
		if err != nil {
			return PreviewResult{}, err
		}
		loc, _ := v.LocaleFor(req.Locale, ch)
		p := ChannelPreview{Channel: ch, Locale: loc, Content: content}
		if ch == domain.ChannelSMS {
			info := domain.MeasureSMS(content.Body)
			p.SMS = &info
		}
		out.Channels = append(out.Channels, p)
	}
	return out, nil
}

func fieldError(field, problem string) *domain.ValidationError {
	return &domain.ValidationError{Fields: []domain.FieldError{{Field: field, Problem: problem}}}
}

// versionCacheSize bounds the versions Render keeps decoded.
const versionCacheSize = 1024

type versionKey struct {
	id domain.TemplateID
	n  int
}

// versionCache keeps published versions by (template, number). A version
// never changes once published, so an entry is never stale; the cache only
// saves the dispatcher a stream read per attempt. When full, an arbitrary
// entry makes room.
type versionCache struct {
	mu  sync.Mutex
	max int
	m   map[versionKey]domain.TemplateVersion
}

func newVersionCache(max int) *versionCache {
	return &versionCache{max: max, m: make(map[versionKey]domain.TemplateVersion)}
}

func (c *versionCache) get(id domain.TemplateID, n int) (domain.TemplateVersion, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[versionKey{id, n}]
	return v, ok
}

func (c *versionCache) put(v domain.TemplateVersion) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[versionKey{v.TemplateID(), v.Number()}] = v
}
