package fakeslack

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	// maxTextLen is Slack's limit on a message's text.
	maxTextLen = 40000
	// maxBody bounds request bodies.
	maxBody = 1 << 20
)

// tokenKind says which token a method accepts.
type tokenKind int

const (
	botToken tokenKind = iota
	appToken
	eitherToken
)

// methodSpec describes one Web API method.
type methodSpec struct {
	token    tokenKind
	scope    string                  // required bot scope, "" for none
	describe func(url.Values) string // the readable Calls() entry, without the method name
	handle   func(*Server, http.ResponseWriter, url.Values)
}

var methods = map[string]methodSpec{
	"auth.test":             {token: eitherToken},
	"apps.connections.open": {token: appToken},
	"chat.postMessage": {
		scope: "chat:write", handle: (*Server).postMessage,
		describe: func(v url.Values) string { return v.Get("channel") },
	},
	"chat.update": {
		scope: "chat:write", handle: (*Server).update,
		describe: func(v url.Values) string { return v.Get("channel") + " " + v.Get("ts") },
	},
	"chat.postEphemeral": {
		scope: "chat:write", handle: (*Server).postEphemeral,
		describe: func(v url.Values) string { return v.Get("channel") + " " + v.Get("user") },
	},
	"usergroups.users.list": {
		scope: "usergroups:read", handle: (*Server).userGroupsUsersList,
		describe: func(v url.Values) string { return v.Get("usergroup") },
	},
}

// handleAPI serves POST (or GET) /api/<method>: record, delay, scripted failure, unknown
// method, token, scope, then the method itself.
func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	values, bearer, formErr := readParams(r)
	spec, known := methods[method]
	desc := method
	if known && spec.describe != nil && formErr == nil {
		desc = strings.TrimSpace(method + " " + spec.describe(values))
	}
	if s.intercepted(w, r, method, desc) {
		return
	}
	if !known {
		writeError(w, "unknown_method", nil)
		return
	}
	if formErr != nil {
		writeError(w, "invalid_form_data", nil)
		return
	}
	isApp, code := s.authenticate(spec.token, values, bearer)
	if code != "" {
		writeError(w, code, nil)
		return
	}
	if isApp {
		w.Header().Set("X-OAuth-Scopes", "connections:write")
	} else {
		w.Header().Set("X-OAuth-Scopes", s.scopes)
		w.Header().Set("X-Accepted-OAuth-Scopes", spec.scope)
		if spec.scope != "" && !slices.Contains(s.opts.Scopes, spec.scope) {
			writeError(w, "missing_scope", map[string]any{"needed": spec.scope, "provided": s.scopes})
			return
		}
	}
	switch method {
	case "apps.connections.open":
		s.openConnection(w)
	case "auth.test":
		s.authTest(w, isApp)
	default:
		spec.handle(s, w, values)
	}
}

// readParams returns the request's parameters and its bearer token. slack-go sends chat.* and
// usergroups.* as a form (token in the body) and apps.connections.open as JSON with a bearer
// header; a JSON object body is also accepted, its non-string values kept as JSON text (so
// "blocks" arrives as a string either way).
func readParams(r *http.Request) (url.Values, string, error) {
	bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			return nil, bearer, fmt.Errorf("parse form: %w", err)
		}
		return r.Form, bearer, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return nil, bearer, fmt.Errorf("read body: %w", err)
	}
	values := r.URL.Query()
	if strings.TrimSpace(string(body)) == "" {
		return values, bearer, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, bearer, fmt.Errorf("parse json body: %w", err)
	}
	for k, raw := range obj {
		if k == "token" {
			continue // Slack only takes the token from the header when the body is JSON
		}
		var str string
		if json.Unmarshal(raw, &str) == nil {
			values.Set(k, str)
		} else {
			values.Set(k, string(raw))
		}
	}
	return values, bearer, nil
}

// authenticate checks the token for a method and reports whether it was the app token, or
// the Slack error code.
func (s *Server) authenticate(kind tokenKind, values url.Values, bearer string) (isApp bool, code string) {
	tok := bearer
	if kind == appToken {
		// apps.connections.open only reads the Authorization header.
		switch tok {
		case "":
			return false, "not_authed"
		case s.opts.AppToken:
			return true, ""
		default:
			return false, "invalid_auth"
		}
	}
	if tok == "" {
		tok = values.Get("token")
	}
	switch tok {
	case "":
		return false, "not_authed"
	case s.opts.BotToken:
		return false, ""
	case s.opts.AppToken:
		if kind == eitherToken {
			return true, ""
		}
		return false, "not_allowed_token_type"
	default:
		return false, "invalid_auth"
	}
}

func (s *Server) authTest(w http.ResponseWriter, isApp bool) {
	resp := map[string]any{
		"url": "https://fake.slack.com/", "team": "Fake", "team_id": s.opts.TeamID,
		"is_enterprise_install": false,
	}
	if isApp {
		// An app-level token has no user; the fake reports the app instead.
		resp["app_id"] = s.opts.AppID
	} else {
		resp["user"] = BotName
		resp["user_id"] = s.opts.BotUserID
		resp["bot_id"] = s.opts.BotID
	}
	writeOK(w, resp)
}

// ---- chat.* ----

// resolveChannelLocked finds a channel by ID (or by name, with or without '#') as the bot
// sees it: a private channel the bot is not in does not exist for it.
func (s *Server) resolveChannelLocked(ref string) (Channel, string) {
	name := strings.TrimPrefix(ref, "#")
	for _, c := range s.channels {
		if c.ID == ref || (name != "" && c.Name == name) {
			if c.Private && !c.BotIsMember {
				return Channel{}, "channel_not_found"
			}
			return c, ""
		}
	}
	return Channel{}, "channel_not_found"
}

// content is a message body taken from form values.
type content struct {
	text      string
	hasText   bool
	blocks    json.RawMessage // normalised; nil when absent or empty
	hasBlocks bool            // "blocks" was sent (an empty array clears blocks on update)
}

// parseContent reads text and blocks, returning an error code and extra response fields.
func parseContent(v url.Values) (content, string, map[string]any) {
	c := content{text: v.Get("text"), hasText: v.Has("text")}
	if raw := v.Get("blocks"); raw != "" {
		c.hasBlocks = true
		blocks, problems := normalizeBlocks([]byte(raw), randomBlockID)
		if len(problems) > 0 {
			return c, "invalid_blocks", map[string]any{"response_metadata": map[string]any{"messages": problems}}
		}
		c.blocks = blocks
	}
	if utf8.RuneCountInString(c.text) > maxTextLen {
		return c, "msg_too_long", nil
	}
	return c, "", nil
}

// threadLocked checks thread_ts: it must name a message in the channel. As in Slack, a reply to
// a parent that has since been deleted is posted unthreaded.
func (s *Server) threadLocked(channel, threadTS string) (string, string) {
	if threadTS == "" {
		return "", ""
	}
	parent, ok := s.byKey[key(channel, threadTS)]
	if !ok || parent.Ephemeral {
		return "", "thread_not_found"
	}
	if parent.Deleted {
		return "", ""
	}
	return threadTS, ""
}

// draftLocked checks what chat.postMessage and chat.postEphemeral share: a
// channel the bot is in (and, for an ephemeral, the user too), some content
// and a valid thread. It answers the error itself and returns nil on failure.
func (s *Server) draftLocked(w http.ResponseWriter, v url.Values, ephemeralFor string) *Message {
	ch, code := s.resolveChannelLocked(v.Get("channel"))
	if code == "" && !ch.BotIsMember {
		code = "not_in_channel"
	}
	if code == "" && ephemeralFor != "" && !slices.Contains(ch.Members, ephemeralFor) {
		code = "user_not_in_channel"
	}
	if code != "" {
		writeError(w, code, nil)
		return nil
	}
	c, code, extra := parseContent(v)
	if code == "" && c.text == "" && c.blocks == nil {
		code = "no_text"
	}
	if code != "" {
		writeError(w, code, extra)
		return nil
	}
	thread, code := s.threadLocked(ch.ID, v.Get("thread_ts"))
	if code != "" {
		writeError(w, code, nil)
		return nil
	}
	return &Message{Channel: ch.ID, ThreadTS: thread, User: s.opts.BotUserID, Text: c.text, Blocks: c.blocks}
}

func (s *Server) postMessage(w http.ResponseWriter, v url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, _ := s.resolveChannelLocked(v.Get("channel")); ch.ID != "" && !s.allowPostLocked(ch.ID) {
		writeFailure(w, Failure{Status: http.StatusTooManyRequests, RetryAfter: 1, Error: "ratelimited"})
		return
	}
	m := s.draftLocked(w, v, "")
	if m == nil {
		return
	}
	m.Via = ViaPostMessage
	s.storeLocked(m)
	writeOK(w, map[string]any{"channel": m.Channel, "ts": m.TS, "message": s.messageJSON(m.clone())})
}

func (s *Server) update(w http.ResponseWriter, v url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, code := s.resolveChannelLocked(v.Get("channel"))
	if code != "" {
		writeError(w, code, nil)
		return
	}
	m, ok := s.byKey[key(ch.ID, v.Get("ts"))]
	if !ok || m.Deleted || m.Ephemeral {
		// Ephemeral messages are not stored by Slack, so they cannot be found to update.
		writeError(w, "message_not_found", nil)
		return
	}
	if m.User != s.opts.BotUserID {
		writeError(w, "cant_update_message", nil)
		return
	}
	c, code, extra := parseContent(v)
	if code != "" {
		writeError(w, code, extra)
		return
	}
	text, blocks := m.Text, m.Blocks
	if c.hasText {
		text = c.text
	}
	if c.hasBlocks {
		blocks = c.blocks // absent blocks keep the old ones; [] removes them
	}
	if (!c.hasText && !c.hasBlocks) || (text == "" && blocks == nil) {
		writeError(w, "no_text", nil)
		return
	}
	m.Text, m.Blocks = text, blocks
	m.Edits++
	s.notifyLocked(Change{Kind: ChangeMessageUpdated, Channel: m.Channel, TS: m.TS})
	writeOK(w, map[string]any{"channel": ch.ID, "ts": m.TS, "text": m.Text, "message": s.messageJSON(m.clone())})
}

func (s *Server) postEphemeral(w http.ResponseWriter, v url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	user := v.Get("user")
	if user == "" {
		writeError(w, "user_not_in_channel", nil)
		return
	}
	m := s.draftLocked(w, v, user)
	if m == nil {
		return
	}
	m.Ephemeral, m.VisibleTo, m.Via = true, user, ViaPostEphemeral
	s.storeLocked(m)
	writeOK(w, map[string]any{"message_ts": m.TS})
}

func (s *Server) userGroupsUsersList(w http.ResponseWriter, v url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	members, ok := s.groups[v.Get("usergroup")]
	if !ok {
		writeError(w, "no_such_subteam", nil)
		return
	}
	writeOK(w, map[string]any{"users": append([]string{}, members...)})
}

// ---- responses ----

func writeJSON(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeOK(w http.ResponseWriter, fields map[string]any) {
	body := map[string]any{"ok": true}
	for k, v := range fields {
		body[k] = v
	}
	writeJSON(w, http.StatusOK, body)
}

func writeError(w http.ResponseWriter, code string, extra map[string]any) {
	writeErrorStatus(w, http.StatusOK, code, extra)
}

func writeErrorStatus(w http.ResponseWriter, status int, code string, extra map[string]any) {
	body := map[string]any{"ok": false, "error": code}
	for k, v := range extra {
		body[k] = v
	}
	writeJSON(w, status, body)
}

// writeFailure answers with a scripted Failure.
func writeFailure(w http.ResponseWriter, f Failure) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	code := f.Error
	if code == "" {
		code = "fatal_error"
		if status == http.StatusTooManyRequests {
			code = "ratelimited"
		}
	}
	writeErrorStatus(w, status, code, nil)
}
