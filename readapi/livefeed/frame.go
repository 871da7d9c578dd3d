package livefeed

import (
	"encoding/json"
	"net/url"
	"strconv"
	"sync"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
)

// The event names of the stream. They are stable: clients dispatch on them.
const (
	// EventInbox carries a projections.InboxItem: an in-app delivery that
	// just succeeded.
	EventInbox = "inbox"
	// EventRead carries a ReadMark.
	EventRead = "read"
	// EventResync carries a Resync.
	EventResync = "resync"
)

// The reasons a Resync gives. They are stable.
const (
	// ResyncSlowClient: the client did not keep up, so the hub dropped it
	// and the stream ends after this event.
	ResyncSlowClient = "slow-client"
	// ResyncReplayTooLong: the position the client resumed from is further
	// back than the hub replays. The event's id is where the live feed
	// starts, and the stream goes on.
	ResyncReplayTooLong = "replay-too-long"
)

// ReadMark is the data of a read event: the recipient read an in-app
// delivery (on some device).
type ReadMark struct {
	NotificationID domain.NotificationID `json:"notification_id"`
	DeliveryID     domain.DeliveryID     `json:"delivery_id"`
	ReadAt         time.Time             `json:"read_at"`
}

// Resync is the data of a resync event: the client has missed items the
// stream will not send and should reload Inbox (the recipient's inbox
// URL path).
type Resync struct {
	Reason string `json:"reason"`
	Inbox  string `json:"inbox"`
}

// frame is one encoded message, shared by every client it goes to. The
// SSE form is built with the frame; the WebSocket form on first use.
type frame struct {
	pos   eventstore.Position
	hasID bool
	event string
	data  []byte
	sse   []byte

	wsOnce sync.Once
	ws     []byte
}

func newFrame(pos eventstore.Position, hasID bool, event string, data []byte) *frame {
	f := &frame{pos: pos, hasID: hasID, event: event, data: data}
	// data is compact JSON, so it holds no line break and fits one data line.
	b := make([]byte, 0, len(data)+len(event)+40)
	if hasID {
		b = append(b, "id: "...)
		b = strconv.AppendUint(b, uint64(pos), 10)
		b = append(b, '\n')
	}
	b = append(b, "event: "...)
	b = append(b, event...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	f.sse = append(b, "\n\n"...)
	return f
}

// wsMessage returns the frame as the JSON text of a WebSocket message:
// {"id":"<position>","event":"inbox","data":{...}}. The id is a string, as
// in SSE, so no position is rounded by a JavaScript number.
func (f *frame) wsMessage() []byte {
	f.wsOnce.Do(func() {
		b := make([]byte, 0, len(f.data)+len(f.event)+48)
		b = append(b, '{')
		if f.hasID {
			b = append(b, `"id":"`...)
			b = strconv.AppendUint(b, uint64(f.pos), 10)
			b = append(b, `",`...)
		}
		b = append(b, `"event":`...)
		b = strconv.AppendQuote(b, f.event)
		b = append(b, `,"data":`...)
		b = append(b, f.data...)
		f.ws = append(b, '}')
	})
	return f.ws
}

// render encodes an update. The types encoded cannot fail to marshal.
func render(u *update) *frame {
	var data []byte
	switch u.event {
	case EventInbox:
		data, _ = json.Marshal(u.item)
	default:
		data, _ = json.Marshal(u.read)
	}
	return newFrame(u.pos, true, u.event, data)
}

// resyncFrame tells the client of recipient to reload its inbox. A frame
// with an id moves the client's resume point to pos.
func resyncFrame(recipient, reason string, pos eventstore.Position, hasID bool) *frame {
	data, _ := json.Marshal(Resync{Reason: reason, Inbox: InboxPath(recipient)})
	return newFrame(pos, hasID, EventResync, data)
}

// InboxPath returns the path of recipient's inbox in the read API, where
// a client resynchronises.
func InboxPath(recipient string) string {
	return "/v1/recipients/" + url.PathEscape(recipient) + "/inbox"
}
