package eventstore

import (
	"encoding/json"
	"strings"
	"testing"
)

var jsonCases = []string{
	``, ` `, `null`, `true`, `false`, `nul`, `truex`, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `1e5`, `1E+5`, `1e`, `-1.5e-3`,
	`""`, `"a"`, `"\u00e9"`, `"\u00g9"`, `"\x"`, `"\"`, `"` + "\x01" + `"`, "\"\xff\"", `"é✓📨"`,
	`{}`, `{ }`, `{"a":1}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":1}}`, `[]`, `[1,2]`, `[1,]`, `[,1]`, `[1 2]`,
	` {"a" : [1, {"b": null}] } `, `{"a":1} x`, `[[[[]]]]`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	`{"schema_version":1,"x":"y"}`, "\t[\n]\r",
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range jsonCases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%.40q) = %v, json.Valid says %v", c, got, want)
		}
	}
}

// TestValidJSONSpecialByteAtEveryOffset puts each kind of byte the string
// scanner looks for (and some it must let through) at every offset of
// strings longer than the eight bytes it reads at a time.
func TestValidJSONSpecialByteAtEveryOffset(t *testing.T) {
	for _, special := range []string{`"`, `\\`, `\"`, `\u00e9`, `\x`, "\x00", "\x1f", "\x20", "\x7f", "\x80", "\xff", "é"} {
		for n := 0; n < 40; n++ {
			for at := 0; at <= n; at++ {
				body := strings.Repeat("a", at) + special + strings.Repeat("b", n-at)
				for _, c := range []string{`"` + body + `"`, `{"` + body + `":1}`, `["x","` + body + `"]`, `"` + body} {
					if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
						t.Fatalf("validJSON(%q) = %v, json.Valid says %v", c, got, want)
					}
				}
			}
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, c := range jsonCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	data := []byte(`{"schema_version":1,"notification_id":"01a2088d-723f-7e7b-bba3-e4b14a2c859a","delivery_id":"webhook-1","channel":"webhook","address":"https://hooks.example.com/herald/0338d07a1d29bc3d","attempt":1,"attempted_at":"2026-11-23T13:16:57.279954184Z","priority":"normal","category":"billing","metadata":{"order":"A-17","tenant":"acme"},"provider":"default"}`)
	b.Run("validJSON", func(b *testing.B) {
		for b.Loop() {
			validJSON(data)
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		for b.Loop() {
			json.Valid(data)
		}
	})
}
