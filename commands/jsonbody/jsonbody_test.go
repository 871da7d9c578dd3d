package jsonbody

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"herald/domain"
)

// request is shaped like the command APIs' bodies: nested structs, an
// embedded struct, pointers, slices, maps of strings and of any values,
// times, numbers and named string types.
type request struct {
	domain.NotificationRequest
	IdempotencyKey string            `json:"idempotency_key,omitempty"`
	Count          int               `json:"count,omitempty"`
	Ratio          float64           `json:"ratio,omitempty"`
	Flag           *bool             `json:"flag,omitempty"`
	Extra          map[string]any    `json:"extra,omitempty"`
	Items          []json.RawMessage `json:"items,omitempty"`
}

var seeds = []string{
	`{"recipient":{"id":"user-1"},"channels":["email","in_app"],"content":{"subject":"Hi","body":"Hello <b>you</b>"},"priority":"high","category":"billing","metadata":{"order":"A-17"}}`,
	`{"recipient":{"email":"a@example.com"},"template":{"id":"otp","version":3,"vars":{"code":123456,"big":12345678901234567890,"f":1.5e3,"list":[1,"x",null,true],"o":{"k":"v"}}}}`,
	`{"recipient":{"id":"u"},"scheduled_at":"2026-12-01T09:00:00Z","expires_at":"2026-12-01T09:05:00.123+01:00"}`,
	`{"Recipient":{"ID":"case-insensitive"},"CATEGORY":"x"}`,
	`{"recipient":{"id":"dup"},"category":"a","category":"b"}`,
	`{"items":[{"a":1},[],"s",3,null],"count":7,"ratio":0.25,"flag":false,"extra":{"n":-0.0,"e":1E-7}}`,
	`  {"recipient":{"id":"spaces"}}  ` + "\n\t",
	`{"recipient":{"id":"esc \u00e9 \ud83d\ude42 \" \\ \/ \b\f\n\r\t"}}`,
	`{"recipient":{"id":"bad\xffutf8"},"metadata":{"k\xfe":"v"}}`,
	`{"recipient":{"id":"lone \ud800 surrogate"}}`,
	`null`,
	`{}`,
	// Refused: by both, for the same reason.
	`{"recipient":{"id":"u"},"unknown":1}`,
	`{"recipient":{"id":"u","nickname":"x"}}`,
	`{"recipient":{"id":"u"}} {"second":true}`,
	`{"recipient":{"id":"u"}}]`,
	`{"recipient":{"id":"u"},}`,
	`{"recipient":{"id":01}}`,
	`{"count":01}`,
	`{"count":1.5}`,
	`{"count":"7"}`,
	`{"count":99999999999999999999}`,
	`{"ratio":1e400}`,
	`{"ratio":NaN}`,
	`{"channels":"email"}`,
	`{"channels":[1]}`,
	`{"metadata":{"k":1}}`,
	`{"scheduled_at":"yesterday"}`,
	`{"scheduled_at":17}`,
	`{"flag":"true"}`,
	`{"recipient":{"id":"ctl ` + "\x01" + `"}}`,
	`{"recipient":{"id":"u"`,
	`{"recipient":`,
	`{`,
	`[`,
	`"just a string"`,
	`[1,2]`,
	`tru`,
	`{"a" 1}`,
	`{'a':1}`,
	``,
	` `,
}

// FuzzStrict holds Strict to encoding/json's verdict: the same error text
// for a body it refuses, the same value for a body it takes. Strict's fast
// decoder must never take a body encoding/json refuses, nor read one
// differently.
func FuzzStrict(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, useNumber bool) {
		var got, want request
		errGot := Strict(data, &got, useNumber)
		errWant := strictStd(data, &want, useNumber)
		switch {
		case errGot == nil && errWant == nil:
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q decoded as\n%#v\nencoding/json:\n%#v", data, got, want)
			}
		case errGot == nil || errWant == nil:
			t.Fatalf("%q: Strict says %v, encoding/json says %v", data, errGot, errWant)
		case errGot.Error() != errWant.Error():
			t.Fatalf("%q: Strict says %q, encoding/json says %q", data, errGot, errWant)
		}
	})
}

func TestStrictErrors(t *testing.T) {
	var r request
	var ve *domain.ValidationError
	if err := Strict([]byte(`{"count":"7"}`), &r, false); !errors.As(err, &ve) || ve.Fields[0].Field != "count" {
		t.Errorf("wrong type: %v, want a validation error naming count", err)
	}
	// Metadata decodes itself (domain.Metadata.UnmarshalJSON); a label
	// that is not a string still names the metadata field.
	if err := Strict([]byte(`{"metadata":{"k":1}}`), &r, false); !errors.As(err, &ve) || ve.Fields[0].Field != "NotificationRequest.metadata" {
		t.Errorf("metadata label of the wrong type: %v, want a validation error naming metadata", err)
	}
	var uf *UnknownFieldError
	if err := Strict([]byte(`{"recipient":{"id":"u","nickname":"x"}}`), &r, false); !errors.As(err, &uf) || uf.Field != "recipient.nickname" {
		t.Errorf("unknown field: %v, want UnknownFieldError recipient.nickname", err)
	}
	var me *MalformedError
	if err := Strict([]byte(`{"recipient":{"id":"u"}} {}`), &r, false); !errors.As(err, &me) {
		t.Errorf("two values: %v, want MalformedError", err)
	}
	if err := Strict([]byte(`{"recipient":`), &r, false); !errors.As(err, &me) {
		t.Errorf("cut short: %v, want MalformedError", err)
	}
	if err := Strict([]byte(`{}`), r, false); !errors.As(err, &me) {
		t.Errorf("not a pointer: %v, want MalformedError", err)
	}
	r = request{}
	if err := Strict([]byte(`{"recipient":{"id":"u"},"category":"c"}`), &r, false); err != nil || r.Recipient.ID != "u" || r.Category != "c" {
		t.Errorf("valid body: %v, %+v", err, r)
	}
}

// The fields encoding/json leaves unnamed are found in the body: a time
// that does not parse, and an unknown field with the objects it is in.
func TestStrictNamesTheField(t *testing.T) {
	type leg struct {
		At   *time.Time `json:"at"`
		Note string     `json:"note"`
	}
	type inner struct {
		Legs []leg `json:"legs"`
	}
	type body struct {
		inner
		Start time.Time         `json:"start"`
		Tags  map[string]string `json:"tags"`
	}
	var ve *domain.ValidationError
	var uf *UnknownFieldError
	for data, want := range map[string]string{
		`{"start":"tomorrow"}`: "start",
		`{"start":"2026-11-02T10:00:00Z","legs":[{"at":"2026-11-02T10:00:00Z"},{"at":"soon"}]}`: "legs[1].at",
	} {
		var b body
		if err := Strict([]byte(data), &b, false); !errors.As(err, &ve) || ve.Fields[0].Field != want {
			t.Errorf("%s: %v, want a validation error naming %s", data, err, want)
		}
	}
	for data, want := range map[string]string{
		`{"legs":[{"note":"a"},{"note":"b","fax":1}]}`: "legs[1].fax",
		`{"LEGS":[{"Fax":1}]}`:                         "LEGS[0].Fax",
		`{"tags":{"a":"b"},"extra":true}`:              "extra",
	} {
		var b body
		if err := Strict([]byte(data), &b, false); !errors.As(err, &uf) || uf.Field != want {
			t.Errorf("%s: %v, want an unknown field %s", data, err, want)
		}
	}
}
