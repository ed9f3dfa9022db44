package socket

import (
	"bytes"
	"encoding/json"
)

// topLevel finds the string values of "envelope_id" and "type", and the
// raw "payload", among the keys of the JSON object frame, stepping over
// every other value without decoding it: what the ack and the routing of
// an envelope need, for a microsecond or two where decoding the frame
// with encoding/json takes ten. Keys inside nested values are never
// matched. ok is false when frame is not an object it can walk.
func topLevel(frame []byte) (envelopeID, typ string, payload []byte, ok bool) {
	ok = Fields(frame, func(key, value []byte) bool {
		switch {
		case bytes.EqualFold(key, keyID):
			envelopeID, ok = String(value)
		case bytes.EqualFold(key, keyType):
			typ, ok = String(value)
		case bytes.EqualFold(key, keyPayload):
			payload, ok = value, true
		default:
			ok = true
		}
		return ok
	})
	if !ok {
		return "", "", nil, false
	}
	return envelopeID, typ, payload, true
}

// Fields calls f with each key of the JSON object obj (unescaped) and its
// value as written, until f returns false; it reports whether obj was an
// object it could walk and f never returned false. Values are stepped
// over, not checked: decode one with encoding/json to know it is valid.
func Fields(obj []byte, f func(key, value []byte) bool) bool {
	s := scanner{b: obj}
	if !s.expect('{') {
		return false
	}
	if s.peek() == '}' {
		s.i++
		return s.peek() == 0
	}
	for {
		key, ok := s.key()
		if !ok || !s.expect(':') {
			return false
		}
		start := s.skipSpaceAt()
		if !s.skipValue() || !f(key, obj[start:s.i]) {
			return false
		}
		switch s.next() {
		case ',':
		case '}':
			return s.peek() == 0
		default:
			return false
		}
	}
}

// String is the JSON string value (as Fields gives it) unescaped; ok is
// false for anything else (null, a number, an object).
func String(value []byte) (string, bool) {
	if len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
		return "", false
	}
	if raw := value[1 : len(value)-1]; plain(raw) {
		return string(raw), true
	}
	// Escapes, or bytes that need UTF-8 checks: encoding/json's way.
	var v string
	if json.Unmarshal(value, &v) != nil {
		return "", false
	}
	return v, true
}

var keyID, keyType, keyPayload = []byte("envelope_id"), []byte("type"), []byte("payload")

type scanner struct {
	b []byte
	i int
}

func (s *scanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// skipSpaceAt skips white space and returns where the next value starts.
func (s *scanner) skipSpaceAt() int {
	s.skipSpace()
	return s.i
}

// peek is the next byte after white space, or 0 at the end.
func (s *scanner) peek() byte {
	s.skipSpace()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) next() byte {
	c := s.peek()
	if c != 0 {
		s.i++
	}
	return c
}

func (s *scanner) expect(c byte) bool { return s.next() == c }

// rawString reads a string and returns it as written, escapes and all.
func (s *scanner) rawString() ([]byte, bool) {
	if !s.expect('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
			continue
		case '"':
			raw := s.b[start:s.i]
			s.i++
			return raw, true
		}
		s.i++
	}
	return nil, false
}

// key reads an object's key, unescaped.
func (s *scanner) key() ([]byte, bool) {
	start := s.i
	raw, ok := s.rawString()
	if !ok || bytes.IndexByte(raw, '\\') < 0 {
		return raw, ok
	}
	var k string
	if json.Unmarshal(s.b[start:s.i], &k) != nil {
		return nil, false
	}
	return []byte(k), true
}

// plain reports whether raw is printable ASCII without escapes, as an
// envelope's ID and type are: then the string is raw itself.
func plain(raw []byte) bool {
	for _, c := range raw {
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return false
		}
	}
	return true
}

// skipValue steps over one value: strings are walked for their escapes,
// objects and arrays by depth.
func (s *scanner) skipValue() bool {
	switch s.peek() {
	case '"':
		_, ok := s.rawString()
		return ok
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, ok := s.rawString(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	case 0, ',', '}', ']', ':':
		return false
	default: // a number, true, false or null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return true
			}
			s.i++
		}
		return false
	}
}
