// Package socket is the bot's Socket Mode connection to Slack: it opens
// the connection (apps.connections.open, then a WebSocket), answers Slack's
// PINGs, reconnects when Slack asks or the socket dies, and acknowledges
// every envelope in the goroutine that read it, before anything else is
// done with it, and then hands the envelope to the consumer.
//
// Why not slack-go's socketmode client: an envelope there passes through
// four goroutines before its ack is written (reader, request handler, the
// consumer's event loop calling Ack, response writer), and decodes the
// whole payload twice on the way. On a busy 2-core machine each hand-off
// can wait behind other work, and the acks of a burst queued behind one
// another: p99 several times the floor of a client that only echoes
// (README, Performance). Slack wants the ack within 3 seconds and this bot
// never answers in it (every ack is bare), so here the ack is the first
// thing done with a frame: the reader finds the envelope_id, the type and
// the payload by stepping over the frame (scan.go, a microsecond or two
// where encoding/json takes ten), writes the ack, and gives the consumer
// the payload undecoded. In a burst envelopes queue behind this serial
// work, and the bot's work and the fake's (or Slack's) share the cores
// with it: every microsecond of it is paid by every envelope behind.
// (Handing each envelope to another goroutine to decode cost more than it
// saved: a wake-up per envelope, and no fewer instructions in all.)
package socket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
)

// Opener calls apps.connections.open with the app-level token: *slack.Client.
type Opener interface {
	StartSocketModeContext(ctx context.Context) (*slack.SocketModeConnection, string, error)
}

var _ Opener = (*slack.Client)(nil)

// Kind says what an Event reports.
type Kind int

const (
	// Connecting: about to call apps.connections.open (Attempt).
	Connecting Kind = iota
	// ConnectFailed: opening or dialling failed; the next attempt is in
	// Backoff (Err, Attempt, Backoff).
	ConnectFailed
	// Connected: the WebSocket is open; Slack's hello comes next.
	Connected
	// Hello: Slack's hello (NumConnections).
	Hello
	// Envelope: a request from Slack (Type, EnvelopeID, Payload), already
	// acknowledged unless AckErr says otherwise.
	Envelope
	// Malformed: a frame that is not JSON; skipped, the connection kept.
	Malformed
	// Disconnect: Slack asked for a new connection (Reason); one is opened.
	Disconnect
	// Dropped: the connection ended (Err: a read error, no PING in time);
	// a new one is opened.
	Dropped
	// Refused: Slack refused the app token for good (Err); Run returns.
	Refused
)

// Event is something that happened on the connection.
type Event struct {
	Kind Kind
	// An envelope's fields, for Envelope (and Hello, Disconnect).
	Type           string
	EnvelopeID     string
	Payload        json.RawMessage
	NumConnections int
	Reason         string
	// Received is when the frame was read; Acked how long it took from
	// then until its ack was written, unless AckErr.
	Received time.Time
	Acked    time.Duration
	AckErr   error

	Err     error
	Attempt int
	Backoff time.Duration
}

// Envelope types, as Slack names them
// (https://api.slack.com/apis/connections/socket-implement).
const (
	TypeHello         = "hello"
	TypeDisconnect    = "disconnect"
	TypeSlashCommands = "slash_commands"
	TypeInteractive   = "interactive"
	TypeEventsAPI     = "events_api"
)

const (
	// pingTimeout: Slack PINGs every connection; one that has been silent
	// this long is dead (slack-go's default, 30s).
	pingTimeout = 30 * time.Second
	// writeTimeout bounds writing one ack or PONG.
	writeTimeout = 10 * time.Second
	// readLimit bounds one frame. Slack's largest envelopes (a button press
	// carrying a message of 50 blocks) are a few hundred KB.
	readLimit = 4 << 20
	// Reconnect backoff, doubling with jitter; apps.connections.open is a
	// Tier 1 method (1+ a minute), so a reconnect storm must slow down.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Minute
)

// Client is one Socket Mode connection, reconnected as needed.
type Client struct {
	api    Opener
	dialer *websocket.Dialer
	handle func(Event)
	// pingTimeout is pingTimeout but for tests.
	pingTimeout time.Duration
}

// New returns a client that opens connections with api's app-level token.
func New(api Opener) *Client {
	return &Client{
		api: api,
		dialer: &websocket.Dialer{
			Proxy:            http.ProxyFromEnvironment,
			HandshakeTimeout: 30 * time.Second,
		},
		pingTimeout: pingTimeout,
	}
}

// Run connects and reads until ctx ends (returning ctx's error) or Slack
// refuses the app token (returning why). It calls handle with every event,
// in order, from its own goroutine, the one that reads the socket: handle
// must be quick, for the next frame is read (and acknowledged) when it
// returns. Call Run once.
func (c *Client) Run(ctx context.Context, handle func(Event)) error {
	c.handle = handle
	return c.run(ctx)
}

func (c *Client) run(ctx context.Context) error {
	attempt := 0
	for {
		attempt++
		c.handle(Event{Kind: Connecting, Attempt: attempt})
		conn, err := c.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if refused(err) {
				c.handle(Event{Kind: Refused, Err: err})
				return err
			}
			wait := backoff(attempt)
			if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok {
				wait = max(wait, rl.RetryAfter)
			}
			c.handle(Event{Kind: ConnectFailed, Err: err, Attempt: attempt, Backoff: wait})
			select {
			case <-time.After(wait):
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		attempt = 0
		c.handle(Event{Kind: Connected})
		err = c.read(ctx, conn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var asked disconnectError
		if errors.As(err, &asked) {
			c.handle(Event{Kind: Disconnect, Type: TypeDisconnect, Reason: asked.reason})
		} else {
			c.handle(Event{Kind: Dropped, Err: err})
		}
	}
}

// refused reports whether Slack refused the app token: trying again cannot
// help. (slack-go's socketmode gives up on the same answers.)
func refused(err error) bool {
	if e, ok := errors.AsType[slack.SlackErrorResponse](err); ok {
		switch e.Err {
		case "invalid_auth", "account_inactive", "not_authed", "token_revoked", "token_expired":
			return true
		}
	}
	if e, ok := errors.AsType[slack.StatusCodeError](err); ok && e.Code == http.StatusNotFound {
		return true
	}
	return false
}

func backoff(attempt int) time.Duration {
	d := maxBackoff
	if attempt < 32 {
		d = min(maxBackoff, minBackoff<<(attempt-1))
	}
	return d + rand.N(d/4+1)
}

func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	_, wsURL, err := c.api.StartSocketModeContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("apps.connections.open: %w", err)
	}
	conn, resp, err := c.dialer.DialContext(ctx, wsURL, http.Header{"Origin": {"https://api.slack.com"}})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		// Not the URL a parse error names: it carries a ticket.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("opening the WebSocket: %w", err)
	}
	conn.SetReadLimit(readLimit)
	return conn, nil
}

type disconnectError struct{ reason string }

func (e disconnectError) Error() string { return "Slack asked to reconnect: " + e.reason }

// header is what the ack needs of a frame, and what routes it.
type header struct {
	Type           string          `json:"type"`
	EnvelopeID     string          `json:"envelope_id"`
	Payload        json.RawMessage `json:"payload"`
	NumConnections int             `json:"num_connections"`
	Reason         string          `json:"reason"`
}

type ack struct {
	EnvelopeID string `json:"envelope_id"`
}

// read serves one connection until it ends. It is the connection's only
// reader and only writer of data frames; Close may come from another
// goroutine (gorilla/websocket allows it).
func (c *Client) read(ctx context.Context, conn *websocket.Conn) error {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	defer conn.Close()

	alive := func() { _ = conn.SetReadDeadline(time.Now().Add(c.pingTimeout)) }
	alive()
	conn.SetPingHandler(func(data string) error {
		alive()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeTimeout))
		if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
			return err
		}
		return nil
	})
	for {
		_, frame, err := conn.ReadMessage()
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				return fmt.Errorf("no PING from Slack for %v", c.pingTimeout)
			}
			return err
		}
		received := time.Now()
		id, typ, payload, ok := topLevel(frame)
		if !ok || typ == TypeHello || typ == TypeDisconnect {
			// Not an object the scan can walk, or one of the two frames
			// whose other fields matter: decode it, the slow way.
			var h header
			if err := json.Unmarshal(frame, &h); err != nil {
				c.handle(Event{Kind: Malformed, Err: err, Received: received})
				continue
			}
			switch h.Type {
			case TypeHello:
				c.handle(Event{Kind: Hello, Type: h.Type, NumConnections: h.NumConnections, Received: received})
				continue
			case TypeDisconnect:
				// Slack sends new envelopes to the other connections, or
				// holds them until this one is replaced.
				return disconnectError{h.Reason}
			}
			id, typ, payload = h.EnvelopeID, h.Type, h.Payload
		}
		evt := Event{Kind: Envelope, Type: typ, EnvelopeID: id, Payload: payload, Received: received}
		if id != "" {
			evt.AckErr = c.ack(conn, id)
			evt.Acked = time.Since(received)
		}
		c.handle(evt)
	}
}

func (c *Client) ack(conn *websocket.Conn, envelopeID string) error {
	frame, err := json.Marshal(ack{envelopeID})
	if err != nil {
		return err
	}
	if err := conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	return conn.WriteMessage(websocket.TextMessage, frame)
}
