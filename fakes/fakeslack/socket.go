package fakeslack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// maxConnections is Slack's limit of concurrent Socket Mode connections per app.
	maxConnections = 10
	// ticketTTL bounds how long an unused apps.connections.open URL stays valid.
	ticketTTL = time.Minute
	// writeTimeout bounds every websocket write so a stuck client cannot block the server.
	writeTimeout = 5 * time.Second
	// maxAckSize mirrors Slack silently dropping Socket Mode responses of 20 KiB or more.
	maxAckSize = 20 * 1024
	// ackDeadline is Slack's 3-second rule for slash commands and interactions.
	ackDeadline = 3 * time.Second
	// disconnectGrace is how long Disconnect lets a client close by itself before closing.
	disconnectGrace = 100 * time.Millisecond
	// verificationToken is the deprecated per-app token Slack puts in payloads; not a secret.
	verificationToken = "fakeverificationtoken"
)

// AnyConnection makes SendRaw pick a connection like any other delivery (round-robin).
const AnyConnection = -1

// wsConn is one Socket Mode websocket. index is its position in s.conns, the number tests use.
type wsConn struct {
	index   int
	ws      *websocket.Conn
	writeMu sync.Mutex // gorilla allows one concurrent writer (WriteControl excepted)
	done    chan struct{}
	once    sync.Once

	// Guarded by Server.mu.
	live     bool
	hello    bool
	openedAt time.Time
	closedAt time.Time
	pings    int
	pongs    int
}

// write sends one text frame, bounded by ctx's deadline and writeTimeout.
func (c *wsConn) write(ctx context.Context, frame []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.writeLocked(ctx, frame)
}

// writeLocked is write with c.writeMu held.
func (c *wsConn) writeLocked(ctx context.Context, frame []byte) error {
	deadline := time.Now().Add(writeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.ws.SetWriteDeadline(deadline); err != nil {
		return err
	}
	return c.ws.WriteMessage(websocket.TextMessage, frame)
}

// Connection describes one Socket Mode websocket, for tests and the sandbox.
type Connection struct {
	Index    int // the number used by ToConnection, SendRaw and Ack.Conn; in order of connection
	Live     bool
	Hello    bool // hello was sent
	OpenedAt time.Time
	ClosedAt time.Time // zero while live
	Pings    int       // PINGs sent
	Pongs    int       // PONGs received
}

// envelope remembers what was sent, so an ack can be matched to it.
type envelope struct {
	id      string
	kind    string // "slash_commands", "interactive", or the type of a raw frame
	sentAt  time.Time
	conn    int
	acked   bool
	user    string // slash commands: who ran it, for the ack's response message
	channel string
}

// Ack is a Socket Mode acknowledgement received from the bot.
type Ack struct {
	EnvelopeID string
	SentAt     time.Time // when the envelope was sent; zero if the fake never sent that envelope_id
	AckedAt    time.Time
	Payload    json.RawMessage // the ack's "payload", nil when absent
	Conn       int             // the connection the ack arrived on
	// Late is true when the ack came more than 3 s after the envelope: real Slack would have
	// shown the user an error and ignored the payload.
	Late bool
	// Problem, when not empty, says why the ack (or its payload) had no effect: unknown or
	// duplicate envelope_id, payload for an envelope that does not accept one, invalid blocks…
	Problem string
}

// ---- apps.connections.open and the websocket ----

// openConnection handles apps.connections.open once the app token has been checked.
func (s *Server) openConnection(w http.ResponseWriter) {
	s.mu.Lock()
	now := time.Now()
	for t, at := range s.tickets {
		if now.Sub(at) > ticketTTL {
			delete(s.tickets, t)
		}
	}
	if s.liveCountLocked(false) >= maxConnections {
		s.mu.Unlock()
		writeError(w, "too_many_websockets", nil)
		return
	}
	ticket := randomHex(16)
	s.tickets[ticket] = now
	s.opened++
	u := "ws" + s.url[len("http"):] + "/link/?ticket=" + ticket
	s.mu.Unlock()
	writeOK(w, map[string]any{"url": u})
}

var upgrader = websocket.Upgrader{
	// slack-go sends Origin: https://api.slack.com; plain test dialers send none.
	CheckOrigin: func(r *http.Request) bool {
		o := r.Header.Get("Origin")
		return o == "" || o == "https://api.slack.com"
	},
}

// handleSocket upgrades a websocket that presents a fresh ticket, sends hello, and then reads
// acks until the connection ends.
func (s *Server) handleSocket(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	_, ok := s.tickets[ticket]
	delete(s.tickets, ticket) // single use
	s.mu.Unlock()
	if !ok {
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.logf("websocket upgrade: %v", err)
		return // Upgrade already answered
	}
	ws.SetReadLimit(1 << 20)
	c := &wsConn{ws: ws, done: make(chan struct{})}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	c.index = len(s.conns)
	c.live = true
	c.openedAt = time.Now()
	s.conns = append(s.conns, c)
	n := s.liveCountLocked(false)
	s.mu.Unlock()
	defer s.closeConn(c)

	ws.SetPongHandler(func(string) error {
		s.mu.Lock()
		c.pongs++
		s.notifyLocked(Change{Kind: ChangePong, Conn: c.index})
		s.mu.Unlock()
		return nil
	})
	hello, _ := json.Marshal(map[string]any{
		"type":            "hello",
		"num_connections": n,
		"debug_info": map[string]any{
			"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060,
		},
		"connection_info": map[string]any{"app_id": s.opts.AppID},
	})
	// The connection counts as live before hello is written, not after: the
	// bot may read hello (and a test may send the next envelope) before the
	// write returns here. The writer is held meanwhile, so an envelope sent
	// now waits behind hello on the wire.
	c.writeMu.Lock()
	s.mu.Lock()
	c.hello = true
	s.notifyLocked(Change{Kind: ChangeConnectionUp, Conn: c.index})
	s.mu.Unlock()
	err = c.writeLocked(context.Background(), hello)
	c.writeMu.Unlock()
	if err != nil {
		s.logf("conn %d: hello: %v", c.index, err)
		return
	}
	s.logf("conn %d: hello sent (%d live)", c.index, n)

	// Counted while this handler (itself counted by track) is running, so Add is safe.
	s.wg.Go(func() { s.pingLoop(c) })
	for {
		typ, data, err := ws.ReadMessage()
		if err != nil {
			s.logf("conn %d: read: %v", c.index, err)
			return
		}
		if typ == websocket.TextMessage {
			s.receiveAck(c, data)
		}
	}
}

// pingLoop sends a PING right away and then every PingInterval: slack-go reconnects when it
// hears no PING within its own interval.
func (s *Server) pingLoop(c *wsConn) {
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	for {
		// WriteControl may run concurrently with the frame writer.
		if err := c.ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(writeTimeout)); err != nil {
			s.closeConn(c)
			return
		}
		s.mu.Lock()
		c.pings++
		s.mu.Unlock()
		select {
		case <-t.C:
		case <-c.done:
			return
		case <-s.done:
			return
		}
	}
}

// closeConn closes the TCP connection (no close frame) once and marks it dead.
func (s *Server) closeConn(c *wsConn) {
	c.once.Do(func() {
		_ = c.ws.Close()
		close(c.done)
		s.mu.Lock()
		c.live = false
		c.closedAt = time.Now()
		s.notifyLocked(Change{Kind: ChangeConnectionDown, Conn: c.index})
		s.mu.Unlock()
		s.logf("conn %d: closed", c.index)
	})
}

// liveCountLocked counts live connections, only those sent hello if helloOnly.
func (s *Server) liveCountLocked(helloOnly bool) int {
	n := 0
	for _, c := range s.conns {
		if c.live && (c.hello || !helloOnly) {
			n++
		}
	}
	return n
}

// receiveAck records one frame from the bot: {"envelope_id":"…"} or with a "payload".
func (s *Server) receiveAck(c *wsConn, data []byte) {
	if len(data) >= maxAckSize {
		// Real Slack drops these silently; so does the fake (no Ack is recorded).
		s.logf("conn %d: dropped %d-byte response (Slack ignores ≥ %d bytes)", c.index, len(data), maxAckSize)
		return
	}
	var frame struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &frame); err != nil || frame.EnvelopeID == "" {
		s.logf("conn %d: ignored frame that is not an ack (%d bytes)", c.index, len(data))
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ack := Ack{EnvelopeID: frame.EnvelopeID, AckedAt: now, Conn: c.index}
	if len(frame.Payload) > 0 && !bytes.Equal(frame.Payload, []byte("null")) {
		ack.Payload = bytes.Clone(frame.Payload)
	}
	env := s.envelopes[frame.EnvelopeID]
	switch {
	case env == nil:
		ack.Problem = "unknown envelope_id"
	case env.acked:
		ack.SentAt = env.sentAt
		ack.Problem = "duplicate ack"
	default:
		env.acked = true
		ack.SentAt = env.sentAt
		ack.Late = now.Sub(env.sentAt) > ackDeadline
		if ack.Payload != nil {
			ack.Problem = s.applyAckPayloadLocked(env, ack.Payload, ack.Late)
		}
	}
	s.acks = append(s.acks, ack)
	if _, seen := s.firstAck[ack.EnvelopeID]; !seen {
		s.firstAck[ack.EnvelopeID] = len(s.acks) - 1
		if ch, ok := s.ackWaiters[ack.EnvelopeID]; ok {
			close(ch)
			delete(s.ackWaiters, ack.EnvelopeID)
		}
	}
	s.notifyLocked(Change{Kind: ChangeAck, EnvelopeID: ack.EnvelopeID, Conn: c.index})
}

// applyAckPayloadLocked shows a slash command's ack payload as Slack does: a message to the
// user (ephemeral unless response_type is in_channel). It returns why it did not, if it did not.
func (s *Server) applyAckPayloadLocked(env *envelope, payload json.RawMessage, late bool) string {
	if env.kind != "slash_commands" {
		return "payload on an envelope that does not accept a response payload"
	}
	if late {
		return "late ack: payload ignored"
	}
	var p struct {
		Text         string          `json:"text"`
		Blocks       json.RawMessage `json:"blocks"`
		ResponseType string          `json:"response_type"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return "payload is not a message object: " + err.Error()
	}
	blocks, problems := normalizeBlocks(p.Blocks, randomBlockID)
	if len(problems) > 0 {
		return "invalid_blocks: " + fmt.Sprint(problems)
	}
	if p.Text == "" && blocks == nil {
		return "" // an empty payload just acknowledges
	}
	m := &Message{Channel: env.channel, User: s.opts.BotUserID, Text: p.Text, Blocks: blocks, Via: ViaAck}
	if p.ResponseType != "in_channel" {
		m.Ephemeral, m.VisibleTo = true, env.user
	}
	s.storeLocked(m)
	return ""
}

// ---- delivering envelopes ----

// DeliveryOption changes how an envelope is delivered.
type DeliveryOption func(*delivery)

type delivery struct{ conn int }

// ToConnection delivers on connection i (see Connection.Index) instead of round-robin.
func ToConnection(i int) DeliveryOption { return func(d *delivery) { d.conn = i } }

func deliveryOf(opts []DeliveryOption) delivery {
	d := delivery{conn: AnyConnection}
	for _, o := range opts {
		o(&d)
	}
	return d
}

// deliver sends frame on the chosen (or next round-robin) live connection that has had hello.
// env, when not nil, is recorded before the write so that an ack cannot outrun it.
func (s *Server) deliver(ctx context.Context, frame []byte, env *envelope, target int) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	var c *wsConn
	if target >= 0 {
		if target < len(s.conns) && s.conns[target].live && s.conns[target].hello {
			c = s.conns[target]
		}
	} else {
		var live []*wsConn
		for _, x := range s.conns {
			if x.live && x.hello {
				live = append(live, x)
			}
		}
		if len(live) > 0 {
			c = live[s.rr%len(live)]
			s.rr++
		}
	}
	if c == nil {
		s.mu.Unlock()
		if target >= 0 {
			return fmt.Errorf("connection %d: %w", target, ErrNoConnection)
		}
		return ErrNoConnection
	}
	if env != nil {
		env.conn = c.index
		s.envelopes[env.id] = env
		s.notifyLocked(Change{Kind: ChangeEnvelope, EnvelopeID: env.id, Conn: c.index})
	}
	s.mu.Unlock()

	if err := s.writeEnvelope(ctx, c, frame, env); err != nil {
		s.closeConn(c)
		return fmt.Errorf("fakeslack: write to connection %d: %w", c.index, err)
	}
	return nil
}

// writeEnvelope writes frame on c and stamps env's sentAt as the write
// begins, not before the writer is free: the time other senders' frames
// spend queued in this fake is not the client's latency. Envelopes sent
// together are then measured as the wire delivers them.
func (s *Server) writeEnvelope(ctx context.Context, c *wsConn, frame []byte, env *envelope) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if env != nil {
		s.mu.Lock()
		env.sentAt = time.Now()
		s.mu.Unlock()
	}
	return c.writeLocked(ctx, frame)
}

func (s *Server) sendEnvelope(ctx context.Context, env *envelope, acceptsPayload bool, payload any, opts []DeliveryOption) (string, error) {
	frame, err := json.Marshal(map[string]any{
		"envelope_id":              env.id,
		"type":                     env.kind,
		"accepts_response_payload": acceptsPayload,
		"payload":                  payload,
	})
	if err != nil {
		return "", fmt.Errorf("fakeslack: marshal envelope: %w", err)
	}
	if err := s.deliver(ctx, frame, env, deliveryOf(opts).conn); err != nil {
		return "", err
	}
	return env.id, nil
}

// SlashCommand is what a user types: Command (default "/stopdeploy") and Text, in ChannelID.
type SlashCommand struct {
	UserID    string
	ChannelID string
	Text      string
	Command   string
}

// SendSlashCommand delivers a slash_commands envelope shaped like Slack's, with a fresh
// response_url bound to this user and channel, and returns its envelope_id. The channel must
// exist, and a private one must have the user as a member.
func (s *Server) SendSlashCommand(ctx context.Context, cmd SlashCommand, opts ...DeliveryOption) (string, error) {
	if cmd.Command == "" {
		cmd.Command = "/stopdeploy"
	}
	s.mu.Lock()
	ch, ok := s.channelLocked(cmd.ChannelID)
	if !ok {
		s.mu.Unlock()
		return "", fmt.Errorf("SendSlashCommand in %s: %w", cmd.ChannelID, ErrNoSuchChannel)
	}
	if ch.Private && !slices.Contains(ch.Members, cmd.UserID) {
		s.mu.Unlock()
		return "", fmt.Errorf("SendSlashCommand: %s in private %s: %w", cmd.UserID, cmd.ChannelID, ErrNotVisible)
	}
	respID, respURL := s.newResponseURLLocked(cmd.UserID, cmd.ChannelID, "")
	userName := s.userNameLocked(cmd.UserID)
	s.mu.Unlock()

	payload := map[string]any{
		"token":                 verificationToken,
		"team_id":               s.opts.TeamID,
		"team_domain":           TeamDomain,
		"channel_id":            ch.ID,
		"channel_name":          ch.Name,
		"user_id":               cmd.UserID,
		"user_name":             userName,
		"command":               cmd.Command,
		"text":                  cmd.Text,
		"api_app_id":            s.opts.AppID,
		"is_enterprise_install": "false",
		"response_url":          respURL,
		"trigger_id":            triggerID(),
	}
	env := &envelope{id: uuid(), kind: "slash_commands", user: cmd.UserID, channel: ch.ID}
	id, err := s.sendEnvelope(ctx, env, true, payload, opts)
	if err != nil {
		s.dropResponseURL(respID)
		return "", fmt.Errorf("SendSlashCommand: %w", err)
	}
	return id, nil
}

// Click is a user pressing a button in a stored message.
type Click struct {
	UserID    string
	ChannelID string
	MessageTS string
	ActionID  string
	// ForgedValue, if not nil, replaces the button's value in the payload, to simulate a forged
	// or garbled value (the button itself must still exist). Go 1.26: ForgedValue: new("x").
	ForgedValue *string
}

// ClickButton delivers a block_actions interactive envelope like Slack's, as if c.UserID
// pressed the button with c.ActionID in the message's current blocks (an actions block or a
// section accessory), and returns its envelope_id. Like a real user, the user can only press a
// button they can see: errors wrap ErrNoSuchMessage, ErrNotVisible or ErrNoSuchButton.
func (s *Server) ClickButton(ctx context.Context, c Click, opts ...DeliveryOption) (string, error) {
	s.mu.Lock()
	m, ok := s.byKey[key(c.ChannelID, c.MessageTS)]
	if !ok || m.Deleted {
		s.mu.Unlock()
		return "", fmt.Errorf("ClickButton %s %s: %w", c.ChannelID, c.MessageTS, ErrNoSuchMessage)
	}
	ch, _ := s.channelLocked(m.Channel)
	if (m.Ephemeral && m.VisibleTo != c.UserID) || (ch.Private && !slices.Contains(ch.Members, c.UserID)) {
		s.mu.Unlock()
		return "", fmt.Errorf("ClickButton %s %s by %s: %w", c.ChannelID, c.MessageTS, c.UserID, ErrNotVisible)
	}
	btn, ok := findButton(m.Blocks, c.ActionID)
	if !ok {
		s.mu.Unlock()
		return "", fmt.Errorf("ClickButton %s %s action %q: %w", c.ChannelID, c.MessageTS, c.ActionID, ErrNoSuchButton)
	}
	respID, respURL := s.newResponseURLLocked(c.UserID, m.Channel, m.TS)
	userName := s.userNameLocked(c.UserID)
	msg := m.clone()
	s.mu.Unlock()

	text := map[string]any{"type": "plain_text", "text": btn.Text, "emoji": true}
	if btn.emoji != nil {
		text["emoji"] = *btn.emoji
	}
	action := map[string]any{
		"action_id": btn.ActionID,
		"block_id":  btn.BlockID, // slack-go needs a string block_id to see a block action
		"text":      text,
		"type":      "button",
		"action_ts": actionTS(),
	}
	if btn.hasValue {
		action["value"] = btn.Value
	}
	if c.ForgedValue != nil {
		action["value"] = *c.ForgedValue
	}
	if btn.Style != "" {
		action["style"] = btn.Style
	}
	container := map[string]any{
		"type": "message", "message_ts": msg.TS, "channel_id": msg.Channel, "is_ephemeral": msg.Ephemeral,
	}
	if msg.ThreadTS != "" {
		container["thread_ts"] = msg.ThreadTS
	}
	payload := map[string]any{
		"type":                  "block_actions",
		"user":                  map[string]any{"id": c.UserID, "username": userName, "name": userName, "team_id": s.opts.TeamID},
		"api_app_id":            s.opts.AppID,
		"token":                 verificationToken,
		"container":             container,
		"trigger_id":            triggerID(),
		"team":                  map[string]any{"id": s.opts.TeamID, "domain": TeamDomain},
		"enterprise":            nil,
		"is_enterprise_install": false,
		"channel":               map[string]any{"id": msg.Channel, "name": ch.Name},
		"state":                 map[string]any{"values": map[string]any{}},
		"response_url":          respURL,
		"actions":               []any{action},
	}
	// Slack does not include the message of an ephemeral message (it is not stored).
	if !msg.Ephemeral {
		payload["message"] = s.messageJSON(msg)
	}
	env := &envelope{id: uuid(), kind: "interactive", user: c.UserID, channel: msg.Channel}
	id, err := s.sendEnvelope(ctx, env, false, payload, opts)
	if err != nil {
		s.dropResponseURL(respID)
		return "", fmt.Errorf("ClickButton: %w", err)
	}
	return id, nil
}

// messageJSON renders a stored message as Slack's message object.
func (s *Server) messageJSON(m Message) map[string]any {
	out := map[string]any{"type": "message", "user": m.User, "ts": m.TS, "text": m.Text, "team": s.opts.TeamID}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	if m.User == s.opts.BotUserID {
		out["bot_id"] = s.opts.BotID
		out["app_id"] = s.opts.AppID
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if m.Edits > 0 {
		out["edited"] = map[string]any{"user": m.User, "ts": m.TS}
	}
	return out
}

// SendRaw writes an arbitrary text frame (malformed JSON, an unknown type, …) on connection
// conn, or on the next connection round-robin with AnyConnection. If the frame is an object
// with an envelope_id, an ack for it is matched like any other.
func (s *Server) SendRaw(ctx context.Context, frame []byte, conn int) error {
	var env *envelope
	var head struct {
		EnvelopeID string `json:"envelope_id"`
		Type       string `json:"type"`
	}
	if json.Unmarshal(frame, &head) == nil && head.EnvelopeID != "" {
		env = &envelope{id: head.EnvelopeID, kind: head.Type}
	}
	if err := s.deliver(ctx, frame, env, conn); err != nil {
		return fmt.Errorf("SendRaw: %w", err)
	}
	return nil
}

// liveConns returns the live connections.
func (s *Server) liveConns() []*wsConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*wsConn
	for _, c := range s.conns {
		if c.live {
			out = append(out, c)
		}
	}
	return out
}

// Disconnect sends {"type":"disconnect","reason":reason,…} on every live connection, lets each
// client close within about 100 ms, then closes whatever is still open. Reasons Slack uses:
// "warning", "refresh_requested", "link_disabled". It returns ErrNoConnection if none was live.
func (s *Server) Disconnect(ctx context.Context, reason string) error {
	conns := s.liveConns()
	if len(conns) == 0 {
		return fmt.Errorf("Disconnect: %w", ErrNoConnection)
	}
	frame, _ := json.Marshal(map[string]any{
		"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": "applink-fake"},
	})
	for _, c := range conns {
		if err := c.write(ctx, frame); err != nil {
			s.closeConn(c)
		}
	}
	grace, cancel := context.WithTimeout(ctx, disconnectGrace)
	defer cancel()
	for _, c := range conns {
		select {
		case <-c.done:
		case <-grace.Done():
		case <-s.done:
		}
		s.closeConn(c)
	}
	return nil
}

// DropConnections closes every live socket abruptly: a TCP close with no close frame.
func (s *Server) DropConnections() {
	for _, c := range s.liveConns() {
		s.closeConn(c)
	}
}

// ConnectionsOpened counts successful apps.connections.open calls.
func (s *Server) ConnectionsOpened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// LiveConnections counts open websockets (including one not yet sent hello).
func (s *Server) LiveConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.liveCountLocked(false)
}

// Connections describes every websocket ever accepted, in Index order.
func (s *Server) Connections() []Connection {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Connection, len(s.conns))
	for i, c := range s.conns {
		out[i] = Connection{
			Index: c.index, Live: c.live, Hello: c.hello, OpenedAt: c.openedAt, ClosedAt: c.closedAt,
			Pings: c.pings, Pongs: c.pongs,
		}
	}
	return out
}

// WaitConnections waits until at least n live connections have been sent hello.
func (s *Server) WaitConnections(ctx context.Context, n int) error {
	err := s.WaitUntil(ctx, fmt.Sprintf("%d live connections", n), func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.liveCountLocked(true) >= n
	})
	if err != nil {
		return fmt.Errorf("%w (live: %d, opened: %d)", err, s.LiveConnections(), s.ConnectionsOpened())
	}
	return nil
}

// Acks returns every ack received, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.acks)
	for i := range out {
		out[i].Payload = bytes.Clone(out[i].Payload)
	}
	return out
}

// WaitAck returns the first ack for envelopeID, waiting for it if needed.
// Each waiter is woken by its own ack only, so that many senders waiting
// at once cost the fake nothing per envelope (a wait on every change made
// each ack wake every waiter to scan every ack).
func (s *Server) WaitAck(ctx context.Context, envelopeID string) (Ack, error) {
	s.mu.Lock()
	for {
		if i, ok := s.firstAck[envelopeID]; ok {
			found := s.acks[i]
			found.Payload = bytes.Clone(found.Payload)
			s.mu.Unlock()
			return found, nil
		}
		if s.closed {
			s.mu.Unlock()
			return Ack{}, fmt.Errorf("WaitUntil ack of %s: %w", envelopeID, ErrClosed)
		}
		ch, ok := s.ackWaiters[envelopeID]
		if !ok {
			ch = make(chan struct{})
			s.ackWaiters[envelopeID] = ch
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.done:
		case <-ctx.Done():
			return Ack{}, fmt.Errorf("WaitUntil ack of %s: %w", envelopeID, ctx.Err())
		}
		s.mu.Lock()
	}
}
