package socket

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

const (
	appToken = "xapp-1-A0FAKE-1-socketsecret"
	botToken = "xoxb-1-socketsecret"
	deploys  = "C0DEPLOYS"
	alice    = "U0ALICE"
)

func newFake(t *testing.T, opts ...func(*fakeslack.Options)) *fakeslack.Server {
	t.Helper()
	o := fakeslack.Options{AppToken: appToken, BotToken: botToken}
	for _, f := range opts {
		f(&o)
	}
	fake, err := fakeslack.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	fake.AddUser(fakeslack.User{ID: alice, Name: "alice"})
	fake.AddChannel(fakeslack.Channel{ID: deploys, Name: "deploys", Members: []string{alice}, BotIsMember: true})
	return fake
}

// running is a client connected to fake, its events, its Run's result, and
// a deadline.
type running struct {
	c      *Client
	ctx    context.Context
	events chan Event
	done   chan error
	// hold, if set, is called with each envelope before it is recorded.
	hold func(Event)
}

func start(t *testing.T, fake *fakeslack.Server, app string, tune func(*running)) *running {
	t.Helper()
	c := New(slack.New(botToken, slack.OptionAppLevelToken(app), slack.OptionAPIURL(fake.APIURL())))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	runCtx, stop := context.WithCancel(ctx)
	r := &running{c: c, ctx: ctx, events: make(chan Event, 1024), done: make(chan error, 1)}
	if tune != nil {
		tune(r)
	}
	go func() {
		r.done <- c.Run(runCtx, func(evt Event) {
			if r.hold != nil && evt.Kind == Envelope {
				r.hold(evt)
			}
			r.events <- evt
		})
	}()
	t.Cleanup(func() {
		stop()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
		cancel()
	})
	return r
}

// next returns the next event of one of the kinds, skipping the others.
func (r *running) next(t *testing.T, kinds ...Kind) Event {
	t.Helper()
	for {
		select {
		case evt := <-r.events:
			for _, k := range kinds {
				if evt.Kind == k {
					return evt
				}
			}
		case <-r.ctx.Done():
			t.Fatalf("no event of kinds %v before the deadline", kinds)
		}
	}
}

// The ack is written before the consumer sees the envelope: here the
// consumer does not return from any envelope until its ack has arrived.
func TestClient_AcksBeforeTheConsumerSeesTheEnvelope(t *testing.T) {
	fake := newFake(t)
	r := start(t, fake, appToken, func(r *running) {
		r.hold = func(evt Event) {
			if _, err := fake.WaitAck(r.ctx, evt.EnvelopeID); err != nil {
				t.Errorf("envelope %s handed over before its ack: %v", evt.EnvelopeID, err)
			}
		}
	})
	if hello := r.next(t, Hello); hello.NumConnections != 1 {
		t.Errorf("hello num_connections = %d, want 1", hello.NumConnections)
	}
	var ids []string
	for i := range 3 {
		id, err := fake.SendSlashCommand(r.ctx, fakeslack.SlashCommand{UserID: alice, ChannelID: deploys, Text: "d-" + strings.Repeat("A", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i, id := range ids {
		evt := r.next(t, Envelope)
		if evt.EnvelopeID != id || evt.Type != TypeSlashCommands || evt.AckErr != nil {
			t.Fatalf("event %d = %+v, want the acknowledged slash command %s", i, evt, id)
		}
		var cmd slack.SlashCommand
		if err := json.Unmarshal(evt.Payload, &cmd); err != nil || cmd.UserID != alice || cmd.ChannelID != deploys {
			t.Errorf("payload = %+v (%v), want alice's command in %s", cmd, err, deploys)
		}
		if evt.Received.IsZero() || evt.Acked <= 0 || evt.Acked > time.Second {
			t.Errorf("received %v, acked after %v: want the read time and a short ack", evt.Received, evt.Acked)
		}
	}
	for _, a := range fake.Acks() {
		if a.Problem != "" || a.Payload != nil {
			t.Errorf("ack %s: problem %q, payload %s; want a bare ack", a.EnvelopeID, a.Problem, a.Payload)
		}
	}
}

func TestClient_ReconnectsWhenAskedOrDropped(t *testing.T) {
	fake := newFake(t)
	r := start(t, fake, appToken, nil)
	r.next(t, Hello)

	if err := fake.Disconnect(r.ctx, "refresh_requested"); err != nil {
		t.Fatal(err)
	}
	if evt := r.next(t, Disconnect); evt.Reason != "refresh_requested" {
		t.Errorf("disconnect reason = %q, want refresh_requested", evt.Reason)
	}
	r.next(t, Hello)

	fake.DropConnections()
	if evt := r.next(t, Dropped); evt.Err == nil {
		t.Error("dropped connection reported without its error")
	}
	r.next(t, Hello)
	if n := fake.ConnectionsOpened(); n != 3 {
		t.Errorf("connections opened = %d, want 3", n)
	}
	id, err := fake.SendSlashCommand(r.ctx, fakeslack.SlashCommand{UserID: alice, ChannelID: deploys, Text: "d-AFTER"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fake.WaitAck(r.ctx, id); err != nil {
		t.Fatalf("not acknowledged on the new connection: %v", err)
	}
}

// Slack PINGs every connection; one without PINGs is dead. PINGs are
// answered, and keep the connection.
func TestClient_PingsKeepTheConnectionTheirAbsenceEndsIt(t *testing.T) {
	t.Run("pinged", func(t *testing.T) {
		fake := newFake(t, func(o *fakeslack.Options) { o.PingInterval = 10 * time.Millisecond })
		r := start(t, fake, appToken, func(r *running) { r.c.pingTimeout = 100 * time.Millisecond })
		r.next(t, Hello)
		// 30 PINGs answered: three times the timeout, and still one connection.
		if err := fake.WaitUntil(r.ctx, "30 PONGs", func() bool {
			conns := fake.Connections()
			return len(conns) > 0 && conns[0].Pongs >= 30
		}); err != nil {
			t.Fatal(err)
		}
		if n := fake.ConnectionsOpened(); n != 1 {
			t.Errorf("connections opened = %d, want 1: a pinged connection is alive", n)
		}
	})
	t.Run("silent", func(t *testing.T) {
		fake := newFake(t, func(o *fakeslack.Options) { o.PingInterval = time.Hour })
		r := start(t, fake, appToken, func(r *running) { r.c.pingTimeout = 100 * time.Millisecond })
		r.next(t, Hello)
		evt := r.next(t, Dropped)
		if evt.Err == nil || !strings.Contains(evt.Err.Error(), "no PING") {
			t.Errorf("dropped with %v, want the missing PING named", evt.Err)
		}
		r.next(t, Hello)
	})
}

// A frame that is not JSON is skipped; an unknown type is acknowledged and
// passed on for the consumer to skip. The connection stays.
func TestClient_BadFramesKeepTheConnection(t *testing.T) {
	fake := newFake(t)
	r := start(t, fake, appToken, nil)
	r.next(t, Hello)
	for _, frame := range []string{`{not json`, `{"type":"surprise","envelope_id":"env-unknown-1","payload":{}}`} {
		if err := fake.SendRaw(r.ctx, []byte(frame), fakeslack.AnyConnection); err != nil {
			t.Fatal(err)
		}
	}
	var syntax *json.SyntaxError
	if evt := r.next(t, Malformed, Envelope); evt.Kind != Malformed || !errors.As(evt.Err, &syntax) {
		t.Errorf("first event %+v, want Malformed with a syntax error", evt)
	}
	if evt := r.next(t, Envelope); evt.Type != "surprise" || evt.EnvelopeID != "env-unknown-1" {
		t.Errorf("event %+v, want the unknown envelope", evt)
	}
	if _, err := fake.WaitAck(r.ctx, "env-unknown-1"); err != nil {
		t.Errorf("unknown envelope not acknowledged: %v", err)
	}
	if n := fake.ConnectionsOpened(); n != 1 {
		t.Errorf("connections opened = %d, want the first one kept", n)
	}
}

func TestClient_ConnectFailures(t *testing.T) {
	t.Run("retried", func(t *testing.T) {
		fake := newFake(t)
		fake.FailNext("apps.connections.open", fakeslack.Failure{Status: 500, Times: 2})
		r := start(t, fake, appToken, nil)
		for attempt := 1; attempt <= 2; attempt++ {
			evt := r.next(t, ConnectFailed)
			if evt.Attempt != attempt || evt.Backoff < minBackoff<<(attempt-1) || evt.Err == nil {
				t.Errorf("failure %+v, want attempt %d with a growing backoff", evt, attempt)
			}
		}
		r.next(t, Hello)
	})
	t.Run("token refused", func(t *testing.T) {
		fake := newFake(t)
		r := start(t, fake, "xapp-1-A0FAKE-1-revokedsecret", nil)
		evt := r.next(t, Refused)
		select {
		case err := <-r.done:
			r.done <- err // for the cleanup
			if err == nil || !strings.Contains(err.Error(), "invalid_auth") {
				t.Errorf("Run returned %v, want invalid_auth", err)
			}
			if strings.Contains(err.Error(), "revokedsecret") || strings.Contains(evt.Err.Error(), "revokedsecret") {
				t.Error("the error shows the token")
			}
		case <-r.ctx.Done():
			t.Fatal("Run kept going after Slack refused the token")
		}
		if n := fake.CallCount("apps.connections.open"); n != 1 {
			t.Errorf("apps.connections.open called %d times, want 1: a refused token is not retried", n)
		}
	})
}
