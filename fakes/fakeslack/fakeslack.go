// Package fakeslack is a loopback fake of Slack for a Socket Mode bot: the Web API methods such
// a bot calls (auth.test, chat.postMessage, chat.update, chat.postEphemeral,
// usergroups.users.list), apps.connections.open with its Socket Mode websocket, and
// response_url endpoints, all on one HTTP server bound to 127.0.0.1.
//
// It is shared by end-to-end tests that drive the real slack-go socketmode client against it,
// by benchmarks, and by the offline browser sandbox that renders a channel from its state, so
// it is a normal (non-test) package. Like Prow's fakegithub it enforces Slack's real rules
// (token types, channel membership, Block Kit limits, response_url use limits) so that a bot
// that passes against it has a good chance of passing against Slack, and it records every call
// as a readable string.
//
// All state is behind one mutex. Tests never need to sleep: WaitMessage, WaitAck,
// WaitConnections and WaitUntil re-check their condition after every state change.
//
// Choices where Slack's behaviour is unknown or simplified:
//   - apps.connections.open reads only the Authorization header: none → not_authed, anything
//     but Options.AppToken (the bot token too) → invalid_auth, which slack-go treats as fatal.
//     At most 10 live connections; an 11th open gets too_many_websockets.
//   - Other methods take the token from the header or the form's token field: none →
//     not_authed, the app token → not_allowed_token_type, another → invalid_auth. auth.test
//     accepts the app token too and then answers with app_id and no user.
//   - Posting needs Channel.BotIsMember (chat:write.public is not modelled); a private channel
//     without the bot is channel_not_found. chat.update needs no membership.
//   - Blocks: only section, context, divider, actions and header, with button and image
//     elements; unknown types and unknown properties are invalid_blocks. Missing block_id and
//     action_id are generated, as Slack does, and stored blocks include them.
//   - thread_ts must name a non-ephemeral message in the channel (else thread_not_found); a
//     reply to a deleted parent is posted unthreaded.
//   - A slash command's ack payload (text/blocks) is stored as an ephemeral message (Via "ack"),
//     or in_channel if it says so, unless the ack is late (> 3 s). Acks of 20 KiB or more are
//     dropped without a trace, as Slack drops them.
package fakeslack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults for the zero fields of Options.
const (
	DefaultBotUserID    = "UBOTSTOPD"
	DefaultBotID        = "B0STOPDEPLOY"
	DefaultTeamID       = "T0FAKE"
	DefaultAppID        = "A0STOPDEPLOY"
	DefaultPingInterval = 5 * time.Second
	// BotName is the bot user's name, as returned by auth.test and UserName(BotUserID).
	BotName = "stopdeploy"
	// TeamDomain is the workspace domain put in payloads (team_domain, team.domain).
	TeamDomain = "fake"
)

// DefaultScopes are the bot token scopes reported when Options.Scopes is empty.
var DefaultScopes = []string{"commands", "chat:write", "chat:write.public", "usergroups:read"}

// Options configures a Server. AppToken and BotToken are required.
type Options struct {
	// AppToken is the only app-level token (xapp-…) accepted, and only by apps.connections.open.
	AppToken string
	// BotToken is the only bot token (xoxb-…) accepted by the other methods.
	BotToken string
	// BotUserID is the bot's user ID, the author of its messages. Default DefaultBotUserID.
	BotUserID string
	// BotID is the bot's bot_id (B…). Default DefaultBotID.
	BotID string
	// TeamID is the workspace ID. Default DefaultTeamID.
	TeamID string
	// AppID is the app's ID (A…), sent in hello and payloads. Default DefaultAppID.
	AppID string
	// PingInterval is how often the server sends a WebSocket PING on each connection.
	// slack-go drops a connection that gets no PING within its own interval (30 s by default).
	// Default DefaultPingInterval.
	PingInterval time.Duration
	// Scopes are the bot token's scopes: returned in the x-oauth-scopes header and checked by
	// each method (missing_scope). Default DefaultScopes.
	Scopes []string
	// Logf, if set, receives debug lines. Tokens and response URLs are never logged.
	Logf func(format string, args ...any)
	// ChannelRate, if set, limits chat.postMessage per channel as Slack does
	// (see ratelimit.go); zero means no limit.
	ChannelRate ChannelRate
}

// Errors returned by the helpers that act as a Slack user or as Slack itself.
var (
	// ErrClosed is returned once Close has been called.
	ErrClosed = errors.New("fakeslack: server closed")
	// ErrNoConnection means no live Socket Mode connection (that has been sent hello) can take
	// the envelope, or the chosen connection is not live.
	ErrNoConnection = errors.New("fakeslack: no live socket mode connection")
	// ErrNoSuchChannel means the channel was never added with AddChannel.
	ErrNoSuchChannel = errors.New("fakeslack: no such channel")
	// ErrNoSuchMessage means no live (undeleted) message has that channel and ts.
	ErrNoSuchMessage = errors.New("fakeslack: no such message")
	// ErrNoSuchButton means the message's current blocks have no button with that action_id.
	ErrNoSuchButton = errors.New("fakeslack: no such button")
	// ErrNotVisible means the user cannot see the message or channel (an ephemeral message for
	// someone else, or a private channel the user is not a member of).
	ErrNotVisible = errors.New("fakeslack: not visible to this user")
)

// User is a workspace member.
type User struct {
	ID       string
	Name     string // handle, e.g. "alice"
	RealName string
}

// Channel is a conversation. Messages can only be posted where BotIsMember; a Private channel
// the bot is not in does not exist as far as the bot's token is concerned (channel_not_found).
type Channel struct {
	ID          string
	Name        string
	Members     []string // user IDs; used by chat.postEphemeral and for private-channel visibility
	BotIsMember bool
	Private     bool
}

// Ways a message can arrive; see Message.Via.
const (
	ViaPostMessage   = "chat.postMessage"
	ViaPostEphemeral = "chat.postEphemeral"
	ViaResponseURL   = "response_url"
	ViaAck           = "ack"  // the payload of a slash command's ack
	ViaSeed          = "seed" // PostAsUser
)

// Message is a stored message as the fake's state holds it.
type Message struct {
	Channel   string
	TS        string
	ThreadTS  string
	User      string          // author: the bot's user ID, or the user of PostAsUser
	Text      string          // current text
	Blocks    json.RawMessage // current blocks after Slack's normalisation (generated block_id/action_id); nil when none
	Ephemeral bool
	VisibleTo string // for ephemeral messages: the only user who sees it
	Via       string // one of the Via* constants
	Edits     int    // chat.update calls and response_url replace_original that changed it
	Deleted   bool   // deleted through a response_url delete_original
}

// call is one recorded request.
type call struct {
	method string
	desc   string
}

// Server is a running fake. Create it with New and stop it with Close.
type Server struct {
	opts   Options
	scopes string // comma list for x-oauth-scopes
	ln     net.Listener
	srv    *http.Server
	url    string
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	changed  chan struct{} // closed and replaced on every change (see notifyLocked)
	subs     map[int]*subscriber
	nextSub  int
	users    []User
	channels []Channel
	groups   map[string][]string

	messages []*Message
	byKey    map[string]*Message // channel+"/"+ts
	lastSec  int64
	seq      int

	calls    []call
	failures map[string][]*pendingFailure
	latency  map[string]time.Duration
	buckets  map[string]*bucket // channel → chat.postMessage allowance (Options.ChannelRate)
	limited  map[string]int     // channel → chat.postMessage calls answered 429

	tickets     map[string]time.Time
	opened      int
	conns       []*wsConn
	rr          int
	envelopes   map[string]*envelope
	acks        []Ack
	firstAck    map[string]int           // envelope_id → index in acks of its first ack
	ackWaiters  map[string]chan struct{} // envelope_id → closed by its first ack
	responses   map[string]*responseURL
	responseSeq int // numbers the response URLs handed out
}

// New starts a fake Slack listening on 127.0.0.1 on a free port.
func New(opts Options) (*Server, error) {
	if !strings.HasPrefix(opts.AppToken, "xapp-") {
		return nil, errors.New("fakeslack: Options.AppToken must be an xapp- token")
	}
	if !strings.HasPrefix(opts.BotToken, "xoxb-") {
		return nil, errors.New("fakeslack: Options.BotToken must be an xoxb- token")
	}
	if opts.BotUserID == "" {
		opts.BotUserID = DefaultBotUserID
	}
	if opts.BotID == "" {
		opts.BotID = DefaultBotID
	}
	if opts.TeamID == "" {
		opts.TeamID = DefaultTeamID
	}
	if opts.AppID == "" {
		opts.AppID = DefaultAppID
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if len(opts.Scopes) == 0 {
		opts.Scopes = DefaultScopes
	}
	opts.Scopes = slices.Clone(opts.Scopes)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakeslack: listen: %w", err)
	}
	s := &Server{
		opts:       opts,
		scopes:     strings.Join(opts.Scopes, ","),
		ln:         ln,
		url:        "http://" + ln.Addr().String(),
		done:       make(chan struct{}),
		changed:    make(chan struct{}),
		subs:       map[int]*subscriber{},
		groups:     map[string][]string{},
		byKey:      map[string]*Message{},
		failures:   map[string][]*pendingFailure{},
		latency:    map[string]time.Duration{},
		buckets:    map[string]*bucket{},
		limited:    map[string]int{},
		tickets:    map[string]time.Time{},
		envelopes:  map[string]*envelope{},
		firstAck:   map[string]int{},
		ackWaiters: map[string]chan struct{}{},
		responses:  map[string]*responseURL{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.handleAPI)
	mux.HandleFunc("/link/", s.handleSocket)
	mux.HandleFunc("/commands/{team}/{n}/{id}", s.handleResponseURL)
	mux.HandleFunc("/actions/{team}/{n}/{id}", s.handleResponseURL)
	s.srv = &http.Server{Handler: s.track(mux), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Go(func() {
		// Serve returns http.ErrServerClosed after Close; nothing else to report.
		_ = s.srv.Serve(ln)
	})
	return s, nil
}

// URL returns the server's base URL, "http://127.0.0.1:PORT".
func (s *Server) URL() string { return s.url }

// APIURL returns the Web API base URL for slack.OptionAPIURL, with the trailing slash slack-go
// needs (it concatenates method names).
func (s *Server) APIURL() string { return s.url + "/api/" }

// Close closes every websocket and the HTTP server, waits for the fake's goroutines, and
// closes the channels returned by Subscribe. It is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	conns := slices.Clone(s.conns)
	for id, sub := range s.subs {
		close(sub.ch)
		delete(s.subs, id)
	}
	s.notifyLocked(Change{Kind: ChangeClosed})
	s.mu.Unlock()

	// http.Server.Close does not touch hijacked (websocket) connections, so close those too.
	_ = s.srv.Close()
	for _, c := range conns {
		s.closeConn(c)
	}
	s.wg.Wait()
}

// track counts every request in s.wg so Close can wait for it. A request that arrives after
// Close started is refused, so wg.Add never races with wg.Wait.
func (s *Server) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			http.Error(w, "fakeslack: closed", http.StatusServiceUnavailable)
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()
		h.ServeHTTP(w, r)
	})
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf("fakeslack: "+format, args...)
	}
}

// ---- workspace state ----

// AddUser adds a user, or replaces the user with the same ID.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(s.users, func(x User) bool { return x.ID == u.ID }); i >= 0 {
		s.users[i] = u
	} else {
		s.users = append(s.users, u)
	}
	s.notifyLocked(Change{Kind: ChangeWorkspace})
}

// AddChannel adds a channel, or replaces the channel with the same ID (use it to change
// membership during a test).
func (s *Server) AddChannel(c Channel) {
	c.Members = slices.Clone(c.Members)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(s.channels, func(x Channel) bool { return x.ID == c.ID }); i >= 0 {
		s.channels[i] = c
	} else {
		s.channels = append(s.channels, c)
	}
	s.notifyLocked(Change{Kind: ChangeWorkspace})
}

// AddUserGroup creates (or replaces) a user group such as "S0ONCALL" with these members.
func (s *Server) AddUserGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = slices.Clone(members)
	s.notifyLocked(Change{Kind: ChangeWorkspace})
}

// SetUserGroupMembers replaces a user group's members, creating the group if needed.
func (s *Server) SetUserGroupMembers(id string, members ...string) {
	s.AddUserGroup(id, members...)
}

// Users returns the users in the order they were added.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.users)
}

// Channels returns the channels in the order they were added.
func (s *Server) Channels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.channels)
	for i := range out {
		out[i].Members = slices.Clone(out[i].Members)
	}
	return out
}

// UserName returns the handle of a user ID (BotName for the bot), or the ID itself when unknown.
func (s *Server) UserName(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userNameLocked(id)
}

func (s *Server) userNameLocked(id string) string {
	if id == s.opts.BotUserID {
		return BotName
	}
	for _, u := range s.users {
		if u.ID == id && u.Name != "" {
			return u.Name
		}
	}
	return id
}

func (s *Server) channelLocked(id string) (Channel, bool) {
	for _, c := range s.channels {
		if c.ID == id {
			return c, true
		}
	}
	return Channel{}, false
}

// PostAsUser stores a normal message written by a human user (for example to test that the
// bot cannot chat.update it, or to thread under it) and returns its ts.
func (s *Server) PostAsUser(channel, user, text string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.channelLocked(channel); !ok {
		return "", fmt.Errorf("PostAsUser %s: %w", channel, ErrNoSuchChannel)
	}
	m := &Message{Channel: channel, User: user, Text: text, Via: ViaSeed}
	s.storeLocked(m)
	return m.TS, nil
}

// ---- messages ----

func key(channel, ts string) string { return channel + "/" + ts }

// nextTSLocked returns a Slack-style timestamp: wall-clock seconds and a 6-digit sequence,
// strictly increasing for the life of the server.
func (s *Server) nextTSLocked() string {
	now := time.Now().Unix()
	if now > s.lastSec {
		s.lastSec, s.seq = now, 0
	}
	s.seq++
	if s.seq > 999999 {
		s.lastSec, s.seq = s.lastSec+1, 1
	}
	return fmt.Sprintf("%d.%06d", s.lastSec, s.seq)
}

// storeLocked assigns a ts, stores m, and announces it.
func (s *Server) storeLocked(m *Message) {
	m.TS = s.nextTSLocked()
	s.messages = append(s.messages, m)
	s.byKey[key(m.Channel, m.TS)] = m
	s.logf("stored %s message %s/%s", m.Via, m.Channel, m.TS)
	s.notifyLocked(Change{Kind: ChangeMessagePosted, Channel: m.Channel, TS: m.TS})
}

func (m *Message) clone() Message {
	c := *m
	c.Blocks = bytes.Clone(m.Blocks)
	return c
}

// Messages returns copies of all messages (including ephemeral and deleted ones) in post order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messagesLocked()
}

// CountMessages counts the stored messages that match, without copying
// them: match gets a shallow copy and must not keep or change its Blocks.
func (s *Server) CountMessages(match func(Message) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.messages {
		if match(*m) {
			n++
		}
	}
	return n
}

func (s *Server) messagesLocked() []Message {
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		out[i] = m.clone()
	}
	return out
}

// Message returns a copy of the message with this channel and ts.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byKey[key(channel, ts)]
	if !ok {
		return Message{}, false
	}
	return m.clone(), true
}

// WaitMessage returns the first message, in post order, that satisfies match, waiting for
// new messages and re-checking after every update. match runs without the server's lock held
// and must not modify the message's Blocks; the message returned is the caller's own copy.
// On timeout it returns ctx.Err() wrapped with a summary of the messages it saw.
func (s *Server) WaitMessage(ctx context.Context, match func(Message) bool) (Message, error) {
	for {
		s.mu.Lock()
		// Shallow copies: stored Blocks are replaced, never changed in place, so
		// reading them unlocked is safe, and a wait among thousands of messages
		// does not copy every message's blocks on every change.
		msgs := make([]Message, len(s.messages))
		for i, m := range s.messages {
			msgs[i] = *m
		}
		changed, closed := s.changed, s.closed
		s.mu.Unlock()
		for _, m := range msgs {
			if match(m) {
				return m.clone(), nil
			}
		}
		if closed {
			return Message{}, fmt.Errorf("WaitMessage: %w", ErrClosed)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("WaitMessage: no matching message among %d (%s): %w",
				len(msgs), summarize(msgs), ctx.Err())
		}
	}
}

// summarize describes the last few messages for a timeout error.
func summarize(msgs []Message) string {
	const keep = 8
	var b strings.Builder
	if len(msgs) > keep {
		fmt.Fprintf(&b, "… ")
		msgs = msgs[len(msgs)-keep:]
	}
	for i, m := range msgs {
		if i > 0 {
			b.WriteString("; ")
		}
		text := m.Text
		if len(text) > 60 {
			text = text[:60] + "…"
		}
		fmt.Fprintf(&b, "%s %s via %s", m.Channel, m.TS, m.Via)
		if m.Ephemeral {
			fmt.Fprintf(&b, " (ephemeral to %s)", m.VisibleTo)
		}
		if m.Deleted {
			b.WriteString(" (deleted)")
		}
		fmt.Fprintf(&b, " %q", text)
		if n := len(m.Buttons()); n > 0 {
			fmt.Fprintf(&b, " +%d buttons", n)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// WaitUntil blocks until cond returns true, re-evaluating it (without the lock held, so it may
// call the Server's methods) after every state change, including every recorded call.
// desc names the condition in the timeout error.
func (s *Server) WaitUntil(ctx context.Context, desc string, cond func() bool) error {
	for {
		s.mu.Lock()
		changed, closed := s.changed, s.closed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		if closed {
			return fmt.Errorf("WaitUntil %s: %w", desc, ErrClosed)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("WaitUntil %s: %w", desc, ctx.Err())
		}
	}
}

// ---- calls, failures, latency ----

// recordLocked notes a request; desc never contains tokens.
func (s *Server) recordLocked(method, desc string) {
	s.calls = append(s.calls, call{method: method, desc: desc})
	s.notifyLocked(Change{Kind: ChangeCall, Method: method})
}

// Calls returns every request received, in order, as readable strings such as
// "chat.postMessage C0DEPLOYS", "chat.update C0DEPLOYS 1764198000.000100",
// "chat.postEphemeral C0DEPLOYS U0ALICE", "usergroups.users.list S0ONCALL",
// "apps.connections.open", "auth.test", "response_url C0DEPLOYS U0ALICE".
// Requests are recorded whatever their outcome (auth failure, scripted failure, success).
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.calls))
	for i, c := range s.calls {
		out[i] = c.desc
	}
	return out
}

// CallCount returns how many requests for method (e.g. "chat.update", "response_url") were
// received, whatever their outcome.
func (s *Server) CallCount(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.method == method {
			n++
		}
	}
	return n
}

// Failure scripts the answer to upcoming calls of a method; see FailNext.
type Failure struct {
	// Status is the HTTP status to answer with (e.g. 429 or 500). 0 means 200.
	Status int
	// RetryAfter, if positive, sets the Retry-After header (seconds).
	RetryAfter int
	// Error is the error code of an {"ok":false,"error":…} body. With Status 0 it is sent with
	// HTTP 200, which is how Slack reports most failures.
	Error string
	// Times is how many consecutive calls fail. Default 1.
	Times int
}

type pendingFailure struct {
	f    Failure
	left int
}

// FailNext makes the next f.Times calls of method fail as f describes, before any other
// processing (so nothing is stored and a response_url use is not consumed). method is a Web API
// method name such as "chat.postMessage" or "apps.connections.open", or "response_url" for
// posts to any response URL. Several FailNext calls for one method queue up in order.
func (s *Server) FailNext(method string, f Failure) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = append(s.failures[method], &pendingFailure{f: f, left: f.Times})
}

func (s *Server) takeFailure(method string) (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.failures[method]
	if len(q) == 0 {
		return Failure{}, false
	}
	p := q[0]
	p.left--
	if p.left <= 0 {
		s.failures[method] = q[1:]
	}
	return p.f, true
}

// SetLatency delays every later call of method (or "response_url") by d before it is processed,
// for benchmarks. d <= 0 removes the delay.
func (s *Server) SetLatency(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.latency, method)
		return
	}
	s.latency[method] = d
}

// intercepted does what every request gets first: it is recorded, waits
// out the method's latency, and takes a scripted failure if one is queued
// (then it has answered and returns true).
func (s *Server) intercepted(w http.ResponseWriter, r *http.Request, method, desc string) bool {
	s.mu.Lock()
	s.recordLocked(method, desc)
	s.mu.Unlock()
	s.delay(r.Context(), method)
	if f, ok := s.takeFailure(method); ok {
		writeFailure(w, f)
		return true
	}
	return false
}

// delay waits for the method's latency, or until the request or the server ends.
func (s *Server) delay(ctx context.Context, method string) {
	s.mu.Lock()
	d := s.latency[method]
	s.mu.Unlock()
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.done:
	}
}
