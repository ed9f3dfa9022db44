package fakeslack

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"
)

const (
	// Slack: a response_url accepts up to 5 posts within 30 minutes.
	responseURLMaxUses = 5
	responseURLTTL     = 30 * time.Minute
)

// responseURL is one response_url handed out in a payload.
type responseURL struct {
	user     string
	channel  string
	original string // ts of the clicked message, for interactions; "" for slash commands
	created  time.Time
	uses     int
}

// newResponseURLLocked hands out a URL shaped like Slack's
// (https://hooks.slack.com/commands/T…/<n>/<secret>, /actions/ for
// interactions), so that redaction of real ones can be tested on it.
func (s *Server) newResponseURLLocked(user, channel, original string) (id, u string) {
	id = randomHex(16)
	s.responses[id] = &responseURL{user: user, channel: channel, original: original, created: time.Now()}
	kind := "commands"
	if original != "" {
		kind = "actions"
	}
	s.responseSeq++
	return id, fmt.Sprintf("%s/%s/%s/%d/%s", s.url, kind, s.opts.TeamID, s.responseSeq, id)
}

// dropResponseURL forgets a URL whose payload could not be delivered.
func (s *Server) dropResponseURL(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.responses, id)
}

// handleResponseURL serves POST /commands/<team>/<n>/<id> and /actions/… with a JSON message body (slack-go's Msg or
// WebhookMessage): text, blocks, thread_ts, response_type (ephemeral by default, or
// in_channel), replace_original, delete_original.
//
// replace_original and delete_original act on the clicked message of an interaction's URL. A
// slash command's URL has no original, so replace_original is ignored (a new message is
// posted) and delete_original fails. in_channel messages are posted as the bot even where it
// is not a member, as Slack allows.
func (s *Server) handleResponseURL(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	desc := "response_url unknown"
	if ru, ok := s.responses[id]; ok {
		desc = fmt.Sprintf("response_url %s %s", ru.channel, ru.user)
	}
	s.mu.Unlock()
	if s.intercepted(w, r, ViaResponseURL, desc) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeErrorStatus(w, http.StatusBadRequest, "invalid_payload", nil)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	ru, ok := s.responses[id]
	if !ok || time.Since(ru.created) > responseURLTTL || ru.uses >= responseURLMaxUses {
		writeErrorStatus(w, http.StatusNotFound, "expired_url", nil)
		return
	}
	ru.uses++

	var p struct {
		Text            string          `json:"text"`
		Blocks          json.RawMessage `json:"blocks"`
		ThreadTS        string          `json:"thread_ts"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
		DeleteOriginal  bool            `json:"delete_original"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		writeErrorStatus(w, http.StatusBadRequest, "invalid_payload", nil)
		return
	}

	var original *Message
	if ru.original != "" {
		if m, ok := s.byKey[key(ru.channel, ru.original)]; ok && !m.Deleted {
			original = m
		}
	}
	if p.DeleteOriginal {
		if original == nil {
			writeErrorStatus(w, http.StatusNotFound, "message_not_found", nil)
			return
		}
		original.Deleted = true
		s.notifyLocked(Change{Kind: ChangeMessageDeleted, Channel: original.Channel, TS: original.TS})
		writeOK(w, nil)
		return
	}

	blocks, problems := normalizeBlocks(p.Blocks, randomBlockID)
	switch {
	case len(problems) > 0:
		writeErrorStatus(w, http.StatusBadRequest, "invalid_blocks",
			map[string]any{"response_metadata": map[string]any{"messages": problems}})
		return
	case p.Text == "" && blocks == nil:
		writeErrorStatus(w, http.StatusBadRequest, "no_text", nil)
		return
	case utf8.RuneCountInString(p.Text) > maxTextLen:
		writeErrorStatus(w, http.StatusBadRequest, "msg_too_long", nil)
		return
	}

	if p.ReplaceOriginal && ru.original != "" {
		if original == nil {
			writeErrorStatus(w, http.StatusNotFound, "message_not_found", nil)
			return
		}
		// A replacement is a whole new body: blocks not sent are gone.
		original.Text, original.Blocks = p.Text, blocks
		original.Edits++
		s.notifyLocked(Change{Kind: ChangeMessageUpdated, Channel: original.Channel, TS: original.TS})
		writeOK(w, nil)
		return
	}

	m := &Message{
		Channel: ru.channel, ThreadTS: p.ThreadTS, User: s.opts.BotUserID,
		Text: p.Text, Blocks: blocks, Via: ViaResponseURL,
	}
	if p.ResponseType != "in_channel" {
		m.Ephemeral, m.VisibleTo = true, ru.user
	}
	s.storeLocked(m)
	writeOK(w, nil)
}
