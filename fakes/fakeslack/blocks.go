package fakeslack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Block Kit limits enforced by the fake (Slack's Block Kit reference).
const (
	maxBlocks          = 50
	maxIDLen           = 255 // block_id, action_id
	maxSectionText     = 3000
	maxSectionFields   = 10
	maxFieldText       = 2000
	maxContextElements = 10
	maxActionElements  = 25
	maxHeaderText      = 150
	maxButtonText      = 75
	maxButtonValue     = 2000
	maxButtonURL       = 3000
	maxConfirmTitle    = 100
	maxConfirmText     = 300
	maxConfirmButton   = 30
	maxAltText         = 2000
)

// Allowed properties per object; anything else is "invalid additional property", as in Slack.
var (
	blockKeys = map[string][]string{
		"section": {"type", "block_id", "text", "fields", "accessory", "expand"},
		"context": {"type", "block_id", "elements"},
		"divider": {"type", "block_id"},
		"actions": {"type", "block_id", "elements"},
		"header":  {"type", "block_id", "text"},
	}
	textKeys    = []string{"type", "text", "emoji", "verbatim"}
	buttonKeys  = []string{"type", "text", "action_id", "url", "value", "style", "confirm", "accessibility_label"}
	confirmKeys = []string{"title", "text", "confirm", "deny", "style"}
	imageKeys   = []string{"type", "image_url", "alt_text", "slack_file"}
)

// normalizeBlocks validates a message's blocks as Slack does for the subset the fake supports
// (section, context, divider, actions, header; buttons and images as elements) and fills in the
// block_id and action_id that Slack generates when they are missing. It returns the blocks to
// store (nil for none: absent, null or []) or Slack-style problem messages.
func normalizeBlocks(raw []byte, newID func() string) (json.RawMessage, []string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var blocks []any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, []string{fmt.Sprintf("[ERROR] must be a JSON array of blocks (%v) [json-pointer:/blocks]", err)}
	}
	if len(blocks) == 0 {
		return nil, nil
	}
	v := &validator{blockIDs: map[string]bool{}, actionIDs: map[string]bool{}}
	if len(blocks) > maxBlocks {
		v.errf("/blocks", "no more than %d items allowed", maxBlocks)
	}
	for i, b := range blocks {
		v.block(fmt.Sprintf("/blocks/%d", i), b)
	}
	if len(v.problems) > 0 {
		return nil, v.problems
	}
	for _, b := range v.needBlockID {
		b["block_id"] = unique(v.blockIDs, newID)
	}
	for _, e := range v.needActionID {
		e["action_id"] = unique(v.actionIDs, newID)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <@U…> mentions readable
	if err := enc.Encode(blocks); err != nil {
		return nil, []string{fmt.Sprintf("[ERROR] cannot re-encode blocks: %v", err)}
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// unique draws IDs until one is not in used, and marks it used.
func unique(used map[string]bool, newID func() string) string {
	for {
		id := newID()
		if !used[id] {
			used[id] = true
			return id
		}
	}
}

type validator struct {
	problems     []string
	blockIDs     map[string]bool
	actionIDs    map[string]bool
	needBlockID  []map[string]any
	needActionID []map[string]any
}

func (v *validator) errf(ptr, format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", fmt.Sprintf(format, args...), ptr))
}

// object checks that x is an object with only the allowed keys.
func (v *validator) object(ptr string, x any, allowed []string) (map[string]any, bool) {
	obj, ok := x.(map[string]any)
	if !ok {
		v.errf(ptr, "must be an object")
		return nil, false
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			v.errf(ptr+"/"+k, "invalid additional property: %s", k)
		}
	}
	return obj, true
}

// str checks a string property: a non-empty string of at most max characters, and present
// if required.
func (v *validator) str(ptr string, obj map[string]any, name string, max int, required bool) (string, bool) {
	x, present := obj[name]
	if !present {
		if required {
			v.errf(ptr, "missing required field: %s", name)
		}
		return "", false
	}
	s, ok := x.(string)
	switch {
	case !ok:
		v.errf(ptr+"/"+name, "must be a string")
		return "", false
	case s == "":
		v.errf(ptr+"/"+name, "must be more than 0 characters")
		return "", false
	case utf8.RuneCountInString(s) > max:
		v.errf(ptr+"/"+name, "must be less than %d characters", max+1)
		return "", false
	}
	return s, true
}

func (v *validator) boolean(ptr string, obj map[string]any, name string) {
	if x, ok := obj[name]; ok {
		if _, ok := x.(bool); !ok {
			v.errf(ptr+"/"+name, "must be a boolean")
		}
	}
}

// array checks a required array property with between 1 and max items.
func (v *validator) array(ptr string, obj map[string]any, name string, max int) []any {
	x, present := obj[name]
	if !present {
		v.errf(ptr, "missing required field: %s", name)
		return nil
	}
	arr, ok := x.([]any)
	switch {
	case !ok:
		v.errf(ptr+"/"+name, "must be an array")
		return nil
	case len(arr) == 0:
		v.errf(ptr+"/"+name, "must provide at least 1 item")
	case len(arr) > max:
		v.errf(ptr+"/"+name, "no more than %d items allowed", max)
	}
	return arr
}

// id checks an optional block_id or action_id, records it for uniqueness, and remembers
// objects that need one generated.
func (v *validator) id(ptr string, obj map[string]any, name string, used map[string]bool, need *[]map[string]any) {
	if _, present := obj[name]; !present {
		*need = append(*need, obj)
		return
	}
	s, ok := v.str(ptr, obj, name, maxIDLen, true)
	if !ok {
		return
	}
	if used[s] {
		v.errf(ptr+"/"+name, "duplicate %s %q", name, s)
		return
	}
	used[s] = true
}

func (v *validator) block(ptr string, b any) {
	head, ok := b.(map[string]any)
	if !ok {
		v.errf(ptr, "must be an object")
		return
	}
	typ, _ := head["type"].(string)
	allowed, known := blockKeys[typ]
	if !known {
		v.errf(ptr+"/type", "unsupported block type %q (the fake knows section, context, divider, actions, header)", typ)
		return
	}
	obj, _ := v.object(ptr, b, allowed)
	v.id(ptr, obj, "block_id", v.blockIDs, &v.needBlockID)
	switch typ {
	case "section":
		_, hasText := obj["text"]
		_, hasFields := obj["fields"]
		if !hasText && !hasFields {
			v.errf(ptr, "must provide either text or fields")
		}
		if hasText {
			v.text(ptr+"/text", obj["text"], true, maxSectionText)
		}
		if hasFields {
			for i, f := range v.array(ptr, obj, "fields", maxSectionFields) {
				v.text(fmt.Sprintf("%s/fields/%d", ptr, i), f, true, maxFieldText)
			}
		}
		if acc, ok := obj["accessory"]; ok {
			v.element(ptr+"/accessory", acc, "button", "image")
		}
		v.boolean(ptr, obj, "expand")
	case "context":
		for i, e := range v.array(ptr, obj, "elements", maxContextElements) {
			v.element(fmt.Sprintf("%s/elements/%d", ptr, i), e, "image", "plain_text", "mrkdwn")
		}
	case "actions":
		for i, e := range v.array(ptr, obj, "elements", maxActionElements) {
			v.element(fmt.Sprintf("%s/elements/%d", ptr, i), e, "button")
		}
	case "header":
		if _, ok := obj["text"]; !ok {
			v.errf(ptr, "missing required field: text")
		} else {
			v.text(ptr+"/text", obj["text"], false, maxHeaderText)
		}
	}
}

// element checks a block element whose type must be one of types.
func (v *validator) element(ptr string, e any, types ...string) {
	head, ok := e.(map[string]any)
	if !ok {
		v.errf(ptr, "must be an object")
		return
	}
	typ, _ := head["type"].(string)
	if !slices.Contains(types, typ) {
		v.errf(ptr+"/type", "unsupported element type %q here (allowed: %s)", typ, strings.Join(types, ", "))
		return
	}
	switch typ {
	case "button":
		v.button(ptr, e)
	case "image":
		obj, ok := v.object(ptr, e, imageKeys)
		if !ok {
			return
		}
		if _, hasFile := obj["slack_file"]; !hasFile {
			v.str(ptr, obj, "image_url", maxButtonURL, true)
		}
		v.str(ptr, obj, "alt_text", maxAltText, true)
	default:
		v.text(ptr, e, true, maxSectionText)
	}
}

// text checks a text object; mrkdwn is allowed only where Slack allows it.
func (v *validator) text(ptr string, t any, allowMrkdwn bool, max int) {
	obj, ok := v.object(ptr, t, textKeys)
	if !ok {
		return
	}
	typ, _ := obj["type"].(string)
	switch {
	case typ == "plain_text":
		if _, ok := obj["verbatim"]; ok {
			v.errf(ptr+"/verbatim", "invalid additional property: verbatim (plain_text)")
		}
	case typ == "mrkdwn" && allowMrkdwn:
		if _, ok := obj["emoji"]; ok {
			v.errf(ptr+"/emoji", "invalid additional property: emoji (mrkdwn)")
		}
	case allowMrkdwn:
		v.errf(ptr+"/type", "must be plain_text or mrkdwn")
	default:
		v.errf(ptr+"/type", "must be plain_text")
	}
	v.str(ptr, obj, "text", max, true)
	v.boolean(ptr, obj, "emoji")
	v.boolean(ptr, obj, "verbatim")
}

func (v *validator) button(ptr string, e any) {
	obj, ok := v.object(ptr, e, buttonKeys)
	if !ok {
		return
	}
	if _, ok := obj["text"]; !ok {
		v.errf(ptr, "missing required field: text")
	} else {
		v.text(ptr+"/text", obj["text"], false, maxButtonText)
	}
	v.id(ptr, obj, "action_id", v.actionIDs, &v.needActionID)
	if x, ok := obj["value"]; ok {
		// An empty value is allowed; only its length is limited.
		if s, ok := x.(string); !ok {
			v.errf(ptr+"/value", "must be a string")
		} else if utf8.RuneCountInString(s) > maxButtonValue {
			v.errf(ptr+"/value", "must be less than %d characters", maxButtonValue+1)
		}
	}
	v.str(ptr, obj, "url", maxButtonURL, false)
	v.str(ptr, obj, "accessibility_label", maxButtonText, false)
	v.style(ptr, obj)
	if c, ok := obj["confirm"]; ok {
		v.confirm(ptr+"/confirm", c)
	}
}

func (v *validator) style(ptr string, obj map[string]any) {
	if x, ok := obj["style"]; ok {
		if s, _ := x.(string); s != "primary" && s != "danger" {
			v.errf(ptr+"/style", "must be one of primary, danger")
		}
	}
}

// confirm checks a confirmation dialog object: title, text, confirm and deny are all required.
func (v *validator) confirm(ptr string, c any) {
	obj, ok := v.object(ptr, c, confirmKeys)
	if !ok {
		return
	}
	for _, f := range []struct {
		name     string
		mrkdwnOK bool
		max      int
	}{
		{"title", false, maxConfirmTitle},
		{"text", true, maxConfirmText},
		{"confirm", false, maxConfirmButton},
		{"deny", false, maxConfirmButton},
	} {
		if x, ok := obj[f.name]; ok {
			v.text(ptr+"/"+f.name, x, f.mrkdwnOK, f.max)
		} else {
			v.errf(ptr, "missing required field: %s", f.name)
		}
	}
	v.style(ptr, obj)
}

// ---- reading buttons back ----

// Button is a button in a message's blocks (an actions block element or a section accessory).
type Button struct {
	BlockID  string
	ActionID string
	Text     string
	Style    string // "", "primary" or "danger"
	Value    string
	URL      string
	Confirm  bool // has a confirmation dialog
}

type foundButton struct {
	Button
	hasValue bool
	emoji    *bool
}

type wireButton struct {
	Type     string  `json:"type"`
	ActionID string  `json:"action_id"`
	Value    *string `json:"value"`
	Style    string  `json:"style"`
	URL      string  `json:"url"`
	Text     struct {
		Text  string `json:"text"`
		Emoji *bool  `json:"emoji"`
	} `json:"text"`
	Confirm json.RawMessage `json:"confirm"`
}

// allButtons lists the buttons in stored blocks, in order.
func allButtons(blocks json.RawMessage) []foundButton {
	var bs []struct {
		Type      string            `json:"type"`
		BlockID   string            `json:"block_id"`
		Elements  []json.RawMessage `json:"elements"`
		Accessory json.RawMessage   `json:"accessory"`
	}
	if len(blocks) == 0 || json.Unmarshal(blocks, &bs) != nil {
		return nil
	}
	var out []foundButton
	add := func(blockID string, raw json.RawMessage) {
		var w wireButton
		if json.Unmarshal(raw, &w) != nil || w.Type != "button" {
			return
		}
		b := foundButton{
			Button: Button{
				BlockID: blockID, ActionID: w.ActionID, Text: w.Text.Text, Style: w.Style, URL: w.URL,
				Confirm: len(w.Confirm) > 0 && string(w.Confirm) != "null",
			},
			hasValue: w.Value != nil,
			emoji:    w.Text.Emoji,
		}
		if w.Value != nil {
			b.Value = *w.Value
		}
		out = append(out, b)
	}
	for _, b := range bs {
		switch b.Type {
		case "actions":
			for _, e := range b.Elements {
				add(b.BlockID, e)
			}
		case "section":
			if len(b.Accessory) > 0 {
				add(b.BlockID, b.Accessory)
			}
		}
	}
	return out
}

func findButton(blocks json.RawMessage, actionID string) (foundButton, bool) {
	for _, b := range allButtons(blocks) {
		if b.ActionID == actionID {
			return b, true
		}
	}
	return foundButton{}, false
}

// Buttons returns the buttons in the message's current blocks, in order.
func (m Message) Buttons() []Button {
	var out []Button
	for _, b := range allButtons(m.Blocks) {
		out = append(out, b.Button)
	}
	return out
}
