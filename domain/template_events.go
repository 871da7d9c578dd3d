package domain

import "time"

// The stable event type names of the Template aggregate.
const (
	TypeTemplateCreated          = "TemplateCreated"
	TypeTemplateVersionPublished = "TemplateVersionPublished"
	TypeTemplateArchived         = "TemplateArchived"
)

// TemplateEventTypes returns every event type name of the Template
// aggregate, in a fixed order. They are not part of EventTypes, which lists
// the Notification aggregate's events. The slice is fresh on every call.
func TemplateEventTypes() []string {
	return []string{TypeTemplateCreated, TypeTemplateVersionPublished, TypeTemplateArchived}
}

// TemplateCreated starts a template stream. It is always followed, in the
// same append, by the TemplateVersionPublished of version 1: a template
// never exists without content.
type TemplateCreated struct {
	TemplateID TemplateID `json:"template_id"`
	Actor      string     `json:"actor"`
	CreatedAt  time.Time  `json:"created_at"`
}

// TemplateVersionPublished adds version Version (1, 2, ...) with Content,
// stored validated and normalized. Earlier versions stay readable and
// renderable: a notification pinned to version 2 renders version 2 even
// after version 3 is published.
type TemplateVersionPublished struct {
	TemplateID  TemplateID      `json:"template_id"`
	Version     int             `json:"version"`
	Content     TemplateContent `json:"content"`
	Actor       string          `json:"actor"`
	PublishedAt time.Time       `json:"published_at"`
}

// TemplateArchived retires the template: no new version can be published
// and new sends may not use it, but notifications already pinned to one of
// its versions still render.
type TemplateArchived struct {
	TemplateID TemplateID `json:"template_id"`
	Reason     string     `json:"reason"`
	Actor      string     `json:"actor"`
	ArchivedAt time.Time  `json:"archived_at"`
}

// EventType returns TypeTemplateCreated.
func (TemplateCreated) EventType() string { return TypeTemplateCreated }

// EventType returns TypeTemplateVersionPublished.
func (TemplateVersionPublished) EventType() string { return TypeTemplateVersionPublished }

// EventType returns TypeTemplateArchived.
func (TemplateArchived) EventType() string { return TypeTemplateArchived }

// templateValueEvent turns a pointer to a template event into the value,
// the way valueEvent does for the notification events. A nil pointer
// becomes nil.
func templateValueEvent(e Event) Event {
	switch p := e.(type) {
	case *TemplateCreated:
		return deref(p)
	case *TemplateVersionPublished:
		return deref(p)
	case *TemplateArchived:
		return deref(p)
	}
	return e
}
