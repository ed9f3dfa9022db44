package sandbox

import (
	"encoding/json"
	"fmt"
	"html/template"
)

// The Block Kit JSON as Slack stores it (the subset fakeslack accepts).
type (
	wireText struct {
		Type  string `json:"type"`
		Text  string `json:"text"`
		Emoji *bool  `json:"emoji"`
	}
	wireConfirm struct {
		Title   wireText `json:"title"`
		Text    wireText `json:"text"`
		Confirm wireText `json:"confirm"`
		Deny    wireText `json:"deny"`
		Style   string   `json:"style"`
	}
	// wireElement is a button, an image, or a text element of a context
	// block, whose "text" is a string rather than an object.
	wireElement struct {
		Type     string          `json:"type"`
		Text     json.RawMessage `json:"text"`
		Emoji    *bool           `json:"emoji"`
		ActionID string          `json:"action_id"`
		URL      string          `json:"url"`
		Style    string          `json:"style"`
		Confirm  *wireConfirm    `json:"confirm"`
		AltText  string          `json:"alt_text"`
	}
	wireBlock struct {
		Type      string        `json:"type"`
		BlockID   string        `json:"block_id"`
		Text      *wireText     `json:"text"`
		Fields    []wireText    `json:"fields"`
		Accessory *wireElement  `json:"accessory"`
		Elements  []wireElement `json:"elements"`
	}
)

// The view of blocks the templates render; every HTML value was escaped by
// the renderer.
type (
	blockView struct {
		Type      string // section, context, divider, actions, header, or unknown
		BlockID   string
		Text      template.HTML
		Fields    []template.HTML
		Accessory *elementView
		Elements  []elementView
	}
	elementView struct {
		Kind   string // "text", "button", "image" or "unknown"
		HTML   template.HTML
		Button buttonView
	}
	buttonView struct {
		ActionID string
		BlockID  string
		Label    template.HTML
		Style    string // "", "primary" or "danger"
		URL      string // a link button; only http(s)
		Confirm  *confirmView
	}
	confirmView struct {
		Title   string
		Text    template.HTML
		Confirm string
		Deny    string
		Style   string
	}
)

// text renders a text object as mrkdwn or plain text.
func (d directory) text(t wireText) template.HTML {
	if t.Type == "mrkdwn" {
		return d.mrkdwn(t.Text)
	}
	return plainText(t.Text, t.Emoji == nil || *t.Emoji)
}

// blocks turns stored Block Kit JSON into views.
func (d directory) blocks(raw json.RawMessage) ([]blockView, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var wire []wireBlock
	if err := json.Unmarshal(raw, &wire); err != nil {
		return nil, fmt.Errorf("blocks: %w", err)
	}
	out := make([]blockView, 0, len(wire))
	for _, w := range wire {
		v := blockView{Type: w.Type, BlockID: w.BlockID}
		switch w.Type {
		case "section":
			if w.Text != nil {
				v.Text = d.text(*w.Text)
			}
			for _, f := range w.Fields {
				v.Fields = append(v.Fields, d.text(f))
			}
			if w.Accessory != nil {
				e := d.element(w.BlockID, *w.Accessory)
				v.Accessory = &e
			}
		case "header":
			if w.Text != nil {
				v.Text = plainText(w.Text.Text, w.Text.Emoji == nil || *w.Text.Emoji)
			}
		case "context", "actions":
			for _, e := range w.Elements {
				v.Elements = append(v.Elements, d.element(w.BlockID, e))
			}
		case "divider":
		default:
			v.Type = "unknown"
			v.Text = plainText("[unsupported block: "+w.Type+"]", false)
		}
		out = append(out, v)
	}
	return out, nil
}

func (d directory) element(blockID string, e wireElement) elementView {
	switch e.Type {
	case "mrkdwn", "plain_text":
		var s string
		_ = json.Unmarshal(e.Text, &s)
		return elementView{Kind: "text", HTML: d.text(wireText{Type: e.Type, Text: s, Emoji: e.Emoji})}
	case "image":
		// Never fetched: nothing leaves loopback.
		return elementView{Kind: "image", HTML: plainText("🖼 "+e.AltText, false)}
	case "button":
		var label wireText
		_ = json.Unmarshal(e.Text, &label)
		b := buttonView{ActionID: e.ActionID, BlockID: blockID, Label: d.text(label), Style: style(e.Style)}
		if safeURL(e.URL) {
			b.URL = e.URL
		}
		if c := e.Confirm; c != nil {
			b.Confirm = &confirmView{
				Title: c.Title.Text, Text: d.text(c.Text), Confirm: c.Confirm.Text, Deny: c.Deny.Text, Style: style(c.Style),
			}
		}
		return elementView{Kind: "button", Button: b}
	}
	return elementView{Kind: "unknown", HTML: plainText("[unsupported element: "+e.Type+"]", false)}
}

// style keeps only the button styles Slack has.
func style(s string) string {
	if s == "primary" || s == "danger" {
		return s
	}
	return ""
}
