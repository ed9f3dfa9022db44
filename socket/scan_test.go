package socket

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestTopLevel(t *testing.T) {
	tests := []struct {
		frame        string
		id, typ, pay string
		ok           bool
		whatWhen     string
	}{
		{`{"envelope_id":"e1","type":"slash_commands","payload":{"text":"x"}}`, "e1", "slash_commands", `{"text":"x"}`, true, "the usual order"},
		{`{"accepts_response_payload":true,"envelope_id":"e2","payload":{"type":"block_actions","envelope_id":"nested"},"type":"interactive"}`, "e2", "interactive", `{"type":"block_actions","envelope_id":"nested"}`, true, "keys sorted, nested look-alikes"},
		{`{"payload":{"a":[1,{"envelope_id":"no"}],"s":"} \"envelope_id\":\"no\""},"envelope_id":"e3","type":"events_api"}`, "e3", "events_api", `{"a":[1,{"envelope_id":"no"}],"s":"} \"envelope_id\":\"no\""}`, true, "look-alikes in strings and arrays, payload first"},
		{` { "type" : "hello" , "num_connections" : 2 , "payload" : "oops" } `, "", "hello", `"oops"`, true, "white space, no envelope_id, a payload that is a string"},
		{`{"envelope_id":"e\u0034","Type":"slash_commands"}`, "e4", "slash_commands", "", true, "an escaped ID, a key in another case (as encoding/json matches them)"},
		{`{"envelope_id":"e5","type":"x","n":-1.5e3,"t":true,"f":false,"z":null}`, "e5", "x", "", true, "literals"},
		{`{}`, "", "", "", true, "empty"},
		{`{"envelope_id":null}`, "", "", "", false, "an ID that is not a string"},
		{`{not json`, "", "", "", false, "not JSON"},
		{`["envelope_id","e5"]`, "", "", "", false, "not an object"},
		{`{"envelope_id":"e6"`, "", "", "", false, "cut short"},
		{`{"envelope_id":"e7"} {}`, "", "", "", false, "something after the object"},
		{`{"payload":{"a":"unterminated}`, "", "", "", false, "an unterminated string"},
		{``, "", "", "", false, "nothing"},
	}
	for _, tt := range tests {
		id, typ, pay, ok := topLevel([]byte(tt.frame))
		if id != tt.id || typ != tt.typ || string(pay) != tt.pay || ok != tt.ok {
			t.Errorf("%s: topLevel(%s) = %q, %q, %s, %v; want %q, %q, %s, %v", tt.whatWhen, tt.frame, id, typ, pay, ok, tt.id, tt.typ, tt.pay, tt.ok)
		}
	}
}

// FuzzTopLevel: whenever the scan walks a frame that encoding/json also
// decodes, they agree on the envelope_id, the type and the payload.
func FuzzTopLevel(f *testing.F) {
	for _, s := range []string{
		`{"envelope_id":"e1","type":"slash_commands","payload":{"text":"x"}}`,
		`{"payload":{"a":[1,{"envelope_id":"no"}],"s":"}\"x"},"envelope_id":"e3","type":"events_api"}`,
		`{"type":"hello","num_connections":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		id, typ, pay, ok := topLevel(frame)
		var h struct {
			EnvelopeID string          `json:"envelope_id"`
			Type       string          `json:"type"`
			Payload    json.RawMessage `json:"payload"`
		}
		if !ok || json.Unmarshal(frame, &h) != nil {
			return
		}
		if id != h.EnvelopeID || typ != h.Type || !bytes.Equal(pay, h.Payload) {
			t.Errorf("topLevel(%q) = %q, %q, %q; encoding/json says %q, %q, %q", frame, id, typ, pay, h.EnvelopeID, h.Type, h.Payload)
		}
	})
}

func BenchmarkTopLevel(b *testing.B) {
	frame := []byte(`{"envelope_id":"0f4c6f5e-7b1a-4c1e-9d2a-3b9e8c1f2a7d","type":"slash_commands","accepts_response_payload":true,"payload":{"token":"t","team_id":"T0FAKE","team_domain":"fake","channel_id":"C0DEPLOYS","channel_name":"deploys","user_id":"U0ALICE","user_name":"alice","command":"/stopdeploy","text":"d-LGUMS25CC rollback","api_app_id":"A0FAKE","is_enterprise_install":"false","response_url":"http://127.0.0.1:40000/response/abcdef","trigger_id":"1234567890.123456789.abcdef"}}`)
	for b.Loop() {
		topLevel(frame)
	}
}
