package fakeslack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

const (
	appTok    = "xapp-1-A0STOPDEPLOY-1-fake"
	botTok    = "xoxb-1-fake"
	deploys   = "C0DEPLOYS"
	nobot     = "C0NOBOT"
	secret    = "G0SECRET"
	secretBot = "G0SECRETBOT"
	alice     = "U0ALICE"
	bob       = "U0BOB"
	carol     = "U0CAROL"
)

// newFake starts a seeded fake that is closed when the test ends.
func newFake(t testing.TB, mods ...func(*Options)) *Server {
	t.Helper()
	opts := Options{AppToken: appTok, BotToken: botTok, Logf: t.Logf}
	for _, m := range mods {
		m(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	s.AddUser(User{ID: alice, Name: "alice", RealName: "Alice A"})
	s.AddUser(User{ID: bob, Name: "bob", RealName: "Bob B"})
	s.AddUser(User{ID: carol, Name: "carol", RealName: "Carol C"})
	s.AddChannel(Channel{ID: deploys, Name: "deploys", Members: []string{alice, bob}, BotIsMember: true})
	s.AddChannel(Channel{ID: nobot, Name: "random", Members: []string{alice}})
	s.AddChannel(Channel{ID: secret, Name: "secret", Members: []string{alice}, Private: true})
	s.AddChannel(Channel{ID: secretBot, Name: "secret-ops", Members: []string{alice}, Private: true, BotIsMember: true})
	s.AddUserGroup("S0ONCALL", alice)
	return s
}

func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func api(s *Server) *slack.Client {
	return slack.New(botTok, slack.OptionAPIURL(s.APIURL()), slack.OptionAppLevelToken(appTok))
}

// bot is a real slack-go socketmode client running against the fake.
type bot struct {
	api *slack.Client
	smc *socketmode.Client
	got chan socketmode.Event
}

// startBot runs a socketmode client until the test ends, forwarding slash commands and
// interactions to got (acking them first when autoAck).
func startBot(t *testing.T, s *Server, clientPing time.Duration, autoAck bool) *bot {
	t.Helper()
	var opts []socketmode.Option
	if clientPing > 0 {
		opts = append(opts, socketmode.OptionPingInterval(clientPing))
	}
	a := api(s)
	b := &bot{api: a, smc: socketmode.New(a, opts...), got: make(chan socketmode.Event, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = b.smc.RunContext(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-b.smc.Events:
				if evt.Type != socketmode.EventTypeSlashCommand && evt.Type != socketmode.EventTypeInteractive {
					continue
				}
				if autoAck {
					_ = b.smc.AckCtx(ctx, evt.Request.EnvelopeID, nil)
				}
				select {
				case b.got <- evt:
				default:
				}
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return b
}

func (b *bot) next(ctx context.Context, t *testing.T, typ socketmode.EventType) socketmode.Event {
	t.Helper()
	for {
		select {
		case e := <-b.got:
			if e.Type == typ {
				return e
			}
		case <-ctx.Done():
			t.Fatalf("waiting for a %s event: %v", typ, ctx.Err())
		}
	}
}

func stopBlocks() []slack.Block {
	confirm := slack.NewConfirmationBlockObject(
		slack.NewTextBlockObject(slack.PlainTextType, "Stop d-ABC?", false, false),
		slack.NewTextBlockObject(slack.MarkdownType, "This *stops* the deployment.", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "Stop", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false),
	)
	return []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "Stop *d-ABC* for <@U0ALICE>?", false, false), nil, nil),
		slack.NewActionBlock("confirm",
			slack.NewButtonBlockElement("stop", "v1", slack.NewTextBlockObject(slack.PlainTextType, "Stop", true, false)).
				WithStyle(slack.StyleDanger).WithConfirm(confirm),
			slack.NewButtonBlockElement("cancel", "", slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false)),
		),
	}
}

func slackErr(t *testing.T, err error) string {
	t.Helper()
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a slack.SlackErrorResponse", err, err)
	}
	return se.Err
}

func TestNewRequiresTokens(t *testing.T) {
	for _, o := range []Options{{}, {AppToken: appTok}, {BotToken: botTok}, {AppToken: botTok, BotToken: appTok}} {
		if s, err := New(o); err == nil {
			s.Close()
			t.Errorf("New(%+v) succeeded, want an error", o)
		}
	}
}

func TestSlashCommandAndClickThroughSocketMode(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	b := startBot(t, s, 0, false)
	ctx := timeout(t, 10*time.Second)
	if err := s.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}

	envID, err := s.SendSlashCommand(ctx, SlashCommand{UserID: alice, ChannelID: deploys, Text: "d-ABC rollback"})
	if err != nil {
		t.Fatalf("SendSlashCommand: %v", err)
	}
	evt := b.next(ctx, t, socketmode.EventTypeSlashCommand)
	cmd, ok := evt.Data.(slack.SlashCommand)
	if !ok {
		t.Fatalf("Data is %T", evt.Data)
	}
	want := slack.SlashCommand{
		Token: verificationToken, TeamID: DefaultTeamID, TeamDomain: TeamDomain, ChannelID: deploys,
		ChannelName: "deploys", UserID: alice, UserName: "alice", Command: "/stopdeploy", Text: "d-ABC rollback",
		APIAppID: DefaultAppID, ResponseURL: cmd.ResponseURL, TriggerID: cmd.TriggerID,
	}
	if cmd != want {
		t.Errorf("slash command\n got %+v\nwant %+v", cmd, want)
	}
	if !strings.HasPrefix(cmd.ResponseURL, s.URL()+"/commands/T0FAKE/") || cmd.TriggerID == "" {
		t.Errorf("response_url %q, trigger_id %q", cmd.ResponseURL, cmd.TriggerID)
	}
	if evt.Request.EnvelopeID != envID || !evt.Request.AcceptsResponsePayload {
		t.Errorf("request %+v, want envelope %s accepting a payload", evt.Request, envID)
	}

	// An ack payload is shown to the user, as Slack does.
	if err := b.smc.AckCtx(ctx, envID, map[string]any{"text": "Looking up d-ABC…"}); err != nil {
		t.Fatal(err)
	}
	ack, err := s.WaitAck(ctx, envID)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Conn != 0 || ack.SentAt.IsZero() || ack.AckedAt.Before(ack.SentAt) || ack.Late || ack.Problem != "" ||
		!strings.Contains(string(ack.Payload), "Looking up") {
		t.Errorf("ack %+v", ack)
	}
	if _, err := s.WaitMessage(ctx, func(m Message) bool {
		return m.Via == ViaAck && m.Ephemeral && m.VisibleTo == alice && m.Text == "Looking up d-ABC…"
	}); err != nil {
		t.Fatal(err)
	}

	_, ts, err := b.api.PostMessageContext(ctx, deploys, slack.MsgOptionText("Stop d-ABC?", false), slack.MsgOptionBlocks(stopBlocks()...))
	if err != nil {
		t.Fatalf("PostMessage: %v", err)
	}
	m, _ := s.Message(deploys, ts)
	wantButtons := []Button{
		{BlockID: "confirm", ActionID: "stop", Text: "Stop", Style: "danger", Value: "v1", Confirm: true},
		{BlockID: "confirm", ActionID: "cancel", Text: "Cancel"},
	}
	if got := m.Buttons(); len(got) != 2 || got[0] != wantButtons[0] || got[1] != wantButtons[1] {
		t.Errorf("Buttons() = %+v, want %+v", got, wantButtons)
	}

	for _, tc := range []struct {
		name      string
		forged    *string
		wantValue string
	}{
		{"real value", nil, "v1"},
		{"forged value", new("garbage"), "garbage"},
	} {
		envID, err := s.ClickButton(ctx, Click{UserID: bob, ChannelID: deploys, MessageTS: ts, ActionID: "stop", ForgedValue: tc.forged})
		if err != nil {
			t.Fatalf("%s: ClickButton: %v", tc.name, err)
		}
		evt := b.next(ctx, t, socketmode.EventTypeInteractive)
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok {
			t.Fatalf("Data is %T", evt.Data)
		}
		if cb.Type != slack.InteractionTypeBlockActions || len(cb.ActionCallback.BlockActions) != 1 {
			t.Fatalf("%s: callback %+v", tc.name, cb)
		}
		ba := cb.ActionCallback.BlockActions[0]
		if ba.ActionID != "stop" || ba.BlockID != "confirm" || ba.Value != tc.wantValue || ba.Type != "button" || ba.ActionTs == "" {
			t.Errorf("%s: block action %+v", tc.name, ba)
		}
		if cb.User.ID != bob || cb.User.Name != "bob" || cb.Channel.ID != deploys || cb.Container.MessageTs != ts ||
			cb.Container.ChannelID != deploys || cb.Container.IsEphemeral || cb.Message.Timestamp != ts ||
			cb.Message.BotID != DefaultBotID || len(cb.Message.Blocks.BlockSet) != 2 || cb.Team.ID != DefaultTeamID ||
			!strings.HasPrefix(cb.ResponseURL, s.URL()+"/actions/T0FAKE/") || cb.TriggerID == "" || cb.APIAppID != DefaultAppID {
			t.Errorf("%s: callback %+v", tc.name, cb)
		}
		if evt.Request.AcceptsResponsePayload {
			t.Errorf("%s: interactive envelope accepts a response payload", tc.name)
		}
		if err := b.smc.AckCtx(ctx, envID, nil); err != nil {
			t.Fatal(err)
		}
		if ack, err := s.WaitAck(ctx, envID); err != nil || ack.Payload != nil || ack.Problem != "" {
			t.Errorf("%s: WaitAck = %+v, %v", tc.name, ack, err)
		}
	}
}

func TestClickEphemeralAndVisibility(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	b := startBot(t, s, 0, true)
	ctx := timeout(t, 10*time.Second)
	if err := s.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	ts, err := b.api.PostEphemeralContext(ctx, deploys, alice, slack.MsgOptionText("confirm?", false), slack.MsgOptionBlocks(stopBlocks()...))
	if err != nil {
		t.Fatalf("PostEphemeral: %v", err)
	}
	if _, err := s.ClickButton(ctx, Click{UserID: bob, ChannelID: deploys, MessageTS: ts, ActionID: "stop"}); !errors.Is(err, ErrNotVisible) {
		t.Errorf("bob clicking alice's ephemeral message: %v, want ErrNotVisible", err)
	}
	if _, err := s.ClickButton(ctx, Click{UserID: alice, ChannelID: deploys, MessageTS: ts, ActionID: "nope"}); !errors.Is(err, ErrNoSuchButton) {
		t.Errorf("unknown action: %v, want ErrNoSuchButton", err)
	}
	if _, err := s.ClickButton(ctx, Click{UserID: alice, ChannelID: deploys, MessageTS: "1.000001", ActionID: "stop"}); !errors.Is(err, ErrNoSuchMessage) {
		t.Errorf("unknown message: %v, want ErrNoSuchMessage", err)
	}
	if _, err := s.ClickButton(ctx, Click{UserID: alice, ChannelID: deploys, MessageTS: ts, ActionID: "stop"}); err != nil {
		t.Fatal(err)
	}
	cb := b.next(ctx, t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback)
	// Slack sends no message for an ephemeral message: the bot must not rely on it.
	if !cb.Container.IsEphemeral || cb.Container.MessageTs != ts || cb.Message.Timestamp != "" {
		t.Errorf("ephemeral click: container %+v, message ts %q", cb.Container, cb.Message.Timestamp)
	}

	// A private channel's message can only be clicked by its members.
	_, ts, err = b.api.PostMessageContext(ctx, secretBot, slack.MsgOptionBlocks(stopBlocks()...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClickButton(ctx, Click{UserID: bob, ChannelID: secretBot, MessageTS: ts, ActionID: "stop"}); !errors.Is(err, ErrNotVisible) {
		t.Errorf("non-member click in private channel: %v, want ErrNotVisible", err)
	}
	if _, err := s.SendSlashCommand(ctx, SlashCommand{UserID: bob, ChannelID: secret}); !errors.Is(err, ErrNotVisible) {
		t.Errorf("slash command by non-member in private channel: %v, want ErrNotVisible", err)
	}
	if _, err := s.SendSlashCommand(ctx, SlashCommand{UserID: bob, ChannelID: "C0NOPE"}); !errors.Is(err, ErrNoSuchChannel) {
		t.Errorf("slash command in unknown channel: %v, want ErrNoSuchChannel", err)
	}
}

func TestNoConnection(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	ctx := timeout(t, 5*time.Second)
	if _, err := s.SendSlashCommand(ctx, SlashCommand{UserID: alice, ChannelID: deploys}); !errors.Is(err, ErrNoConnection) {
		t.Errorf("SendSlashCommand without a connection: %v, want ErrNoConnection", err)
	}
	if err := s.Disconnect(ctx, "warning"); !errors.Is(err, ErrNoConnection) {
		t.Errorf("Disconnect without a connection: %v, want ErrNoConnection", err)
	}
	short := timeout(t, 50*time.Millisecond)
	if _, err := s.WaitAck(short, "nope"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitAck: %v, want DeadlineExceeded", err)
	}
}

func TestReconnect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		breakIt func(context.Context, *Server) error
	}{
		{"disconnect refresh_requested", func(ctx context.Context, s *Server) error { return s.Disconnect(ctx, "refresh_requested") }},
		{"disconnect warning", func(ctx context.Context, s *Server) error { return s.Disconnect(ctx, "warning") }},
		{"drop", func(_ context.Context, s *Server) error { s.DropConnections(); return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newFake(t)
			b := startBot(t, s, 0, true)
			ctx := timeout(t, 10*time.Second)
			if err := s.WaitConnections(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if err := tc.breakIt(ctx, s); err != nil {
				t.Fatal(err)
			}
			if c := s.Connections()[0]; c.Live || c.ClosedAt.IsZero() {
				t.Errorf("first connection after %s: %+v", tc.name, c)
			}
			if err := s.WaitUntil(ctx, "a second connection", func() bool { return s.ConnectionsOpened() >= 2 }); err != nil {
				t.Fatal(err)
			}
			if err := s.WaitConnections(ctx, 1); err != nil {
				t.Fatal(err)
			}
			envID, err := s.SendSlashCommand(ctx, SlashCommand{UserID: alice, ChannelID: deploys, Text: "again"})
			if err != nil {
				t.Fatal(err)
			}
			if got := b.next(ctx, t, socketmode.EventTypeSlashCommand).Data.(slack.SlashCommand).Text; got != "again" {
				t.Errorf("text %q", got)
			}
			if ack, err := s.WaitAck(ctx, envID); err != nil || ack.Conn == 0 {
				t.Errorf("ack after reconnect: %+v, %v (want a connection other than 0)", ack, err)
			}
		})
	}
}

func TestPings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		serverPing    time.Duration
		wantReconnect bool
	}{
		{"pings keep the connection", 100 * time.Millisecond, false},
		{"no pings: slack-go reconnects", time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newFake(t, func(o *Options) { o.PingInterval = tc.serverPing })
			changes, cancel := s.Subscribe()
			defer cancel()
			startBot(t, s, 300*time.Millisecond, true)
			ctx := timeout(t, 10*time.Second)
			if err := s.WaitConnections(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if tc.wantReconnect {
				if err := s.WaitUntil(ctx, "a reconnect", func() bool { return s.ConnectionsOpened() >= 2 }); err != nil {
					t.Fatal(err)
				}
				return
			}
			// Nothing should happen for five client ping intervals.
			window := time.NewTimer(1500 * time.Millisecond)
			defer window.Stop()
			for watching := true; watching; {
				select {
				case c := <-changes:
					if c.Kind == ChangeConnectionDown {
						t.Fatalf("connection %d went down despite server PINGs", c.Conn)
					}
				case <-window.C:
					watching = false
				}
			}
			if n := s.ConnectionsOpened(); n != 1 {
				t.Errorf("ConnectionsOpened = %d, want 1", n)
			}
			if c := s.Connections()[0]; !c.Live || c.Pings < 10 || c.Pongs == 0 {
				t.Errorf("connection %+v: want live with ≥10 pings and some pongs", c)
			}
		})
	}
}

func TestSeveralConnections(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	startBot(t, s, 0, true)
	startBot(t, s, 0, true)
	ctx := timeout(t, 10*time.Second)
	if err := s.WaitConnections(ctx, 2); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for range 2 {
		id, err := s.SendSlashCommand(ctx, SlashCommand{UserID: alice, ChannelID: deploys})
		if err != nil {
			t.Fatal(err)
		}
		ack, err := s.WaitAck(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		seen[ack.Conn] = true
	}
	if !seen[0] || !seen[1] {
		t.Errorf("round-robin acks came on connections %v, want both 0 and 1", seen)
	}
	id, err := s.SendSlashCommand(ctx, SlashCommand{UserID: alice, ChannelID: deploys}, ToConnection(1))
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := s.WaitAck(ctx, id); err != nil || ack.Conn != 1 {
		t.Errorf("ToConnection(1): ack %+v, %v", ack, err)
	}
	if _, err := s.SendSlashCommand(ctx, SlashCommand{UserID: alice, ChannelID: deploys}, ToConnection(7)); !errors.Is(err, ErrNoConnection) {
		t.Errorf("ToConnection(7): %v, want ErrNoConnection", err)
	}
	if len(s.Acks()) != 3 {
		t.Errorf("Acks() = %+v", s.Acks())
	}
}

func TestSendRawKeepsConnection(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	b := startBot(t, s, 0, true)
	ctx := timeout(t, 10*time.Second)
	if err := s.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, frame := range []string{`{not json`, `{"type":"mystery","envelope_id":"e-1"}`, `{"type":"events_api"`} {
		if err := s.SendRaw(ctx, []byte(frame), AnyConnection); err != nil {
			t.Fatalf("SendRaw(%s): %v", frame, err)
		}
	}
	if _, err := s.SendSlashCommand(ctx, SlashCommand{UserID: alice, ChannelID: deploys, Text: "after"}); err != nil {
		t.Fatal(err)
	}
	if got := b.next(ctx, t, socketmode.EventTypeSlashCommand).Data.(slack.SlashCommand).Text; got != "after" {
		t.Errorf("text %q", got)
	}
	if n := s.ConnectionsOpened(); n != 1 {
		t.Errorf("ConnectionsOpened = %d after bad frames, want 1", n)
	}
	if err := s.SendRaw(ctx, []byte(`{}`), 3); !errors.Is(err, ErrNoConnection) {
		t.Errorf("SendRaw to connection 3: %v", err)
	}
}

// post sends a raw Web API request and decodes the JSON answer.
func post(t *testing.T, s *Server, method, bearer string, form url.Values) map[string]any {
	t.Helper()
	req, err := http.NewRequestWithContext(timeout(t, 5*time.Second), http.MethodPost, s.APIURL()+method, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s: status %d, content type %q", method, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTokens(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	msg := url.Values{"channel": {deploys}, "text": {"hi"}}
	with := func(v url.Values, token string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = vs
		}
		if token != "" {
			out.Set("token", token)
		}
		return out
	}
	for _, tc := range []struct {
		method, bearer string
		form           url.Values
		wantErr        string // "" for ok
	}{
		{"chat.postMessage", "", with(msg, botTok), ""},
		{"chat.postMessage", botTok, msg, ""},
		{"chat.postMessage", "", with(msg, appTok), "not_allowed_token_type"},
		{"chat.postMessage", "", with(msg, "xoxb-wrong"), "invalid_auth"},
		{"chat.postMessage", "", msg, "not_authed"},
		{"chat.update", "", with(url.Values{}, appTok), "not_allowed_token_type"},
		{"chat.postEphemeral", "", with(url.Values{}, "xoxb-wrong"), "invalid_auth"},
		{"usergroups.users.list", "", with(url.Values{"usergroup": {"S0ONCALL"}}, appTok), "not_allowed_token_type"},
		{"usergroups.users.list", "", url.Values{"usergroup": {"S0ONCALL"}}, "not_authed"},
		{"usergroups.users.list", "", with(url.Values{"usergroup": {"S0ONCALL"}}, botTok), ""},
		{"apps.connections.open", appTok, nil, ""},
		{"apps.connections.open", botTok, nil, "invalid_auth"},
		{"apps.connections.open", "xapp-wrong", nil, "invalid_auth"},
		{"apps.connections.open", "", nil, "not_authed"},
		{"apps.connections.open", "", with(url.Values{}, appTok), "not_authed"}, // header only
		{"auth.test", "", with(url.Values{}, botTok), ""},
		{"auth.test", appTok, nil, ""},
		{"auth.test", "", with(url.Values{}, "xoxb-nope"), "invalid_auth"},
		{"auth.test", "", nil, "not_authed"},
		{"conversations.list", "", with(url.Values{}, botTok), "unknown_method"},
	} {
		got := post(t, s, tc.method, tc.bearer, tc.form)
		if tc.wantErr == "" && got["ok"] != true || tc.wantErr != "" && (got["ok"] != false || got["error"] != tc.wantErr) {
			t.Errorf("%s bearer=%q form token=%q: got %v, want error %q", tc.method, short(tc.bearer), short(tc.form.Get("token")), got, tc.wantErr)
		}
	}
	for _, c := range s.Calls() {
		if strings.Contains(c, "xox") || strings.Contains(c, "xapp") {
			t.Errorf("call %q contains a token", c)
		}
	}

	ctx := timeout(t, 5*time.Second)
	at, err := api(s).AuthTestContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if at.UserID != DefaultBotUserID || at.BotID != DefaultBotID || at.TeamID != DefaultTeamID || at.User != BotName {
		t.Errorf("auth.test = %+v", at)
	}
	if got := at.Header.Get("X-OAuth-Scopes"); got != strings.Join(DefaultScopes, ",") {
		t.Errorf("x-oauth-scopes = %q", got)
	}
	// slack-go gives up at once on invalid_auth (a bot token where the app token belongs).
	wrong := slack.New(botTok, slack.OptionAPIURL(s.APIURL()), slack.OptionAppLevelToken(botTok))
	if _, _, err := wrong.StartSocketModeContext(ctx); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("apps.connections.open with the bot token: %v", err)
	}
}

func short(tok string) string {
	if len(tok) > 5 {
		return tok[:5] + "…"
	}
	return tok
}

func TestMissingScope(t *testing.T) {
	t.Parallel()
	s := newFake(t, func(o *Options) { o.Scopes = []string{"chat:write"} })
	_, err := api(s).GetUserGroupMembersContext(timeout(t, 5*time.Second), "S0ONCALL")
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "missing_scope" || se.Needed != "usergroups:read" {
		t.Errorf("GetUserGroupMembers without usergroups:read: %#v", err)
	}
}

func TestUserGroups(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	ctx := timeout(t, 5*time.Second)
	a := api(s)
	s.SetUserGroupMembers("S0ONCALL", alice, bob)
	got, err := a.GetUserGroupMembersContext(ctx, "S0ONCALL", slack.GetUserGroupMembersOptionIncludeDisabled(false))
	if err != nil || strings.Join(got, ",") != alice+","+bob {
		t.Errorf("members = %v, %v", got, err)
	}
	if _, err := a.GetUserGroupMembersContext(ctx, "S0NOPE"); slackErr(t, err) != "no_such_subteam" {
		t.Errorf("unknown group: %v", err)
	}
	if calls := s.Calls(); calls[len(calls)-1] != "usergroups.users.list S0NOPE" {
		t.Errorf("Calls() = %q", calls)
	}
}

func TestPostErrors(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	ctx := timeout(t, 10*time.Second)
	a := api(s)
	text := slack.MsgOptionText("hi", false)
	for _, tc := range []struct {
		name string
		do   func() error
		want string
	}{
		{"post: bot not in channel", func() error { _, _, err := a.PostMessageContext(ctx, nobot, text); return err }, "not_in_channel"},
		{"post: unknown channel", func() error { _, _, err := a.PostMessageContext(ctx, "C0NOPE", text); return err }, "channel_not_found"},
		{"post: private channel without bot", func() error { _, _, err := a.PostMessageContext(ctx, secret, text); return err }, "channel_not_found"},
		{"post: no text", func() error { _, _, err := a.PostMessageContext(ctx, deploys); return err }, "no_text"},
		{"post: empty blocks and no text", func() error { _, _, err := a.PostMessageContext(ctx, deploys, slack.MsgOptionBlocks()); return err }, "no_text"},
		{"post: unknown thread", func() error {
			_, _, err := a.PostMessageContext(ctx, deploys, text, slack.MsgOptionTS("1700000000.000001"))
			return err
		}, "thread_not_found"},
		{"post: too long", func() error {
			_, _, err := a.PostMessageContext(ctx, deploys, slack.MsgOptionText(strings.Repeat("x", 40001), false))
			return err
		}, "msg_too_long"},
		{"ephemeral: user not in channel", func() error { _, err := a.PostEphemeralContext(ctx, deploys, carol, text); return err }, "user_not_in_channel"},
		{"ephemeral: bot not in channel", func() error { _, err := a.PostEphemeralContext(ctx, nobot, alice, text); return err }, "not_in_channel"},
		{"ephemeral: unknown channel", func() error { _, err := a.PostEphemeralContext(ctx, "C0NOPE", alice, text); return err }, "channel_not_found"},
		{"ephemeral: no text", func() error { _, err := a.PostEphemeralContext(ctx, deploys, alice); return err }, "no_text"},
	} {
		if got := slackErr(t, tc.do()); got != tc.want {
			t.Errorf("%s: error %q, want %q", tc.name, got, tc.want)
		}
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages stored by failed calls", n)
	}

	// Successes: a threaded reply and an ephemeral message by channel name.
	_, parent, err := a.PostMessageContext(ctx, deploys, text)
	if err != nil {
		t.Fatal(err)
	}
	_, reply, err := a.PostMessageContext(ctx, "#deploys", slack.MsgOptionText("reply", false), slack.MsgOptionTS(parent))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Message(deploys, reply); m.ThreadTS != parent || m.Via != ViaPostMessage || m.User != DefaultBotUserID {
		t.Errorf("reply %+v", m)
	}
	ets, err := a.PostEphemeralContext(ctx, deploys, bob, text)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Message(deploys, ets); !m.Ephemeral || m.VisibleTo != bob || m.Via != ViaPostEphemeral {
		t.Errorf("ephemeral %+v", m)
	}
	if _, _, err := a.PostMessageContext(ctx, deploys, text, slack.MsgOptionTS(ets)); slackErr(t, err) != "thread_not_found" {
		t.Errorf("reply to an ephemeral message: %v, want thread_not_found", err)
	}
}

func TestChatUpdate(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	ctx := timeout(t, 10*time.Second)
	a := api(s)
	_, ts, err := a.PostMessageContext(ctx, deploys, slack.MsgOptionText("Stop?", false), slack.MsgOptionBlocks(stopBlocks()...))
	if err != nil {
		t.Fatal(err)
	}
	// Text only: Slack keeps the blocks.
	if _, _, text, err := a.UpdateMessageContext(ctx, deploys, ts, slack.MsgOptionText("Stopping…", false)); err != nil || text != "Stopping…" {
		t.Fatalf("update text: %q, %v", text, err)
	}
	m, _ := s.Message(deploys, ts)
	if m.Text != "Stopping…" || len(m.Buttons()) != 2 || m.Edits != 1 {
		t.Errorf("after text update: %+v", m)
	}
	// MsgOptionBlocks() sends blocks=[]: Slack removes them.
	if _, _, _, err := a.UpdateMessageContext(ctx, deploys, ts, slack.MsgOptionText("Stopped", false), slack.MsgOptionBlocks()); err != nil {
		t.Fatal(err)
	}
	m, _ = s.Message(deploys, ts)
	if m.Text != "Stopped" || m.Blocks != nil || m.Edits != 2 {
		t.Errorf("after clearing blocks: %+v", m)
	}
	if _, err := s.ClickButton(ctx, Click{UserID: alice, ChannelID: deploys, MessageTS: ts, ActionID: "stop"}); !errors.Is(err, ErrNoSuchButton) {
		t.Errorf("click after buttons were removed: %v, want ErrNoSuchButton", err)
	}

	human, err := s.PostAsUser(deploys, alice, "hello")
	if err != nil {
		t.Fatal(err)
	}
	ephemeral, err := a.PostEphemeralContext(ctx, deploys, alice, slack.MsgOptionText("psst", false))
	if err != nil {
		t.Fatal(err)
	}
	newText := slack.MsgOptionText("x", false)
	for _, tc := range []struct {
		name, channel, ts string
		opts              []slack.MsgOption
		want              string
	}{
		{"unknown ts", deploys, "1700000000.000001", []slack.MsgOption{newText}, "message_not_found"},
		{"someone else's message", deploys, human, []slack.MsgOption{newText}, "cant_update_message"},
		{"ephemeral", deploys, ephemeral, []slack.MsgOption{newText}, "message_not_found"},
		{"unknown channel", "C0NOPE", ts, []slack.MsgOption{newText}, "channel_not_found"},
		{"nothing to update", deploys, ts, nil, "no_text"},
		{"bad blocks", deploys, ts, []slack.MsgOption{slack.MsgOptionBlocks(&slack.DividerBlock{Type: slack.MBTDivider, BlockID: "a"}, &slack.DividerBlock{Type: slack.MBTDivider, BlockID: "a"})}, "invalid_blocks"},
	} {
		_, _, _, err := a.UpdateMessageContext(ctx, tc.channel, tc.ts, tc.opts...)
		if got := slackErr(t, err); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if m, _ = s.Message(deploys, ts); m.Edits != 2 {
		t.Errorf("failed updates changed the edit count: %d", m.Edits)
	}
	if got := s.CallCount("chat.update"); got != 8 {
		t.Errorf("CallCount(chat.update) = %d, want 8", got)
	}
}

func TestBlockValidation(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	long := func(n int) string { return strings.Repeat("a", n) }
	button := func(extra string) string {
		return `{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"Go"}` + extra + `}]}`
	}
	many := func(n int, item string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + "]"
	}
	section := `{"type":"section","text":{"type":"mrkdwn","text":"x"}}`
	field := `{"type":"mrkdwn","text":"f"}`
	confirm := func(title, text, ok, deny string) string {
		c := `,"confirm":{"title":{"type":"plain_text","text":"` + title + `"},"text":{"type":"mrkdwn","text":"` + text + `"},"confirm":{"type":"plain_text","text":"` + ok + `"}`
		if deny != "" {
			c += `,"deny":{"type":"plain_text","text":"` + deny + `"}`
		}
		return c + "}"
	}
	for _, tc := range []struct {
		name, blocks, want string // want: a substring of response_metadata.messages; "" = valid
	}{
		{"valid", `[` + section + `,{"type":"divider"},{"type":"header","text":{"type":"plain_text","text":"H","emoji":true}},` +
			`{"type":"context","elements":[{"type":"mrkdwn","text":"c"},{"type":"image","image_url":"https://x/y.png","alt_text":"i"}]},` +
			button(`,"value":"v","style":"primary","action_id":"go"`+confirm("T", "sure?", "Yes", "No")) + `]`, ""},
		{"not JSON", `[{`, "must be a JSON array"},
		{"object not array", section, "must be a JSON array"},
		{"unknown block type", `[{"type":"image","image_url":"https://x","alt_text":"a"}]`, "unsupported block type"},
		{"unknown property", `[{"type":"divider","color":"red"}]`, "invalid additional property: color"},
		{"51 blocks", many(51, `{"type":"divider"}`), "no more than 50 items"},
		{"section text 3001", `[{"type":"section","text":{"type":"mrkdwn","text":"` + long(3001) + `"}}]`, "less than 3001 characters"},
		{"section text empty", `[{"type":"section","text":{"type":"mrkdwn","text":""}}]`, "more than 0 characters"},
		{"section without text or fields", `[{"type":"section"}]`, "either text or fields"},
		{"11 fields", `[{"type":"section","fields":` + many(11, field) + `}]`, "no more than 10 items"},
		{"field 2001", `[{"type":"section","fields":[{"type":"mrkdwn","text":"` + long(2001) + `"}]}]`, "less than 2001"},
		{"bad text type", `[{"type":"section","text":{"type":"markdown","text":"x"}}]`, "plain_text or mrkdwn"},
		{"emoji on mrkdwn", `[{"type":"section","text":{"type":"mrkdwn","text":"x","emoji":true}}]`, "emoji"},
		{"duplicate block_id", `[{"type":"divider","block_id":"a"},{"type":"divider","block_id":"a"}]`, "duplicate block_id"},
		{"block_id 256", `[{"type":"divider","block_id":"` + long(256) + `"}]`, "less than 256"},
		{"header 151", `[{"type":"header","text":{"type":"plain_text","text":"` + long(151) + `"}}]`, "less than 151"},
		{"header mrkdwn", `[{"type":"header","text":{"type":"mrkdwn","text":"h"}}]`, "must be plain_text"},
		{"11 context elements", `[{"type":"context","elements":` + many(11, field) + `}]`, "no more than 10 items"},
		{"empty actions", `[{"type":"actions","elements":[]}]`, "at least 1 item"},
		{"select element", `[{"type":"actions","elements":[{"type":"static_select"}]}]`, "unsupported element type"},
		{"button text 76", `[{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"` + long(76) + `"}}]}]`, "less than 76"},
		{"button text mrkdwn", `[{"type":"actions","elements":[{"type":"button","text":{"type":"mrkdwn","text":"x"}}]}]`, "must be plain_text"},
		{"button without text", `[{"type":"actions","elements":[{"type":"button","action_id":"a"}]}]`, "missing required field: text"},
		{"button value 2001", `[` + button(`,"value":"`+long(2001)+`"`) + `]`, "less than 2001"},
		{"button style", `[` + button(`,"style":"blue"`) + `]`, "primary, danger"},
		{"action_id 256", `[` + button(`,"action_id":"`+long(256)+`"`) + `]`, "less than 256"},
		{"duplicate action_id", `[` + button(`,"action_id":"go"`) + `,` + button(`,"action_id":"go"`) + `]`, "duplicate action_id"},
		{"confirm title 101", `[` + button(confirm(long(101), "t", "y", "n")) + `]`, "less than 101"},
		{"confirm text 301", `[` + button(confirm("T", long(301), "y", "n")) + `]`, "less than 301"},
		{"confirm button 31", `[` + button(confirm("T", "t", long(31), "n")) + `]`, "less than 31"},
		{"confirm deny 31", `[` + button(confirm("T", "t", "y", long(31))) + `]`, "less than 31"},
		{"confirm without deny", `[` + button(confirm("T", "t", "y", "")) + `]`, "missing required field: deny"},
	} {
		got := post(t, s, "chat.postMessage", botTok, url.Values{"channel": {deploys}, "text": {"t"}, "blocks": {tc.blocks}})
		if tc.want == "" {
			if got["ok"] != true {
				t.Errorf("%s: %v", tc.name, got)
			}
			continue
		}
		msgs, _ := json.Marshal(got["response_metadata"])
		if got["error"] != "invalid_blocks" || !strings.Contains(string(msgs), tc.want) {
			t.Errorf("%s: got %v, want invalid_blocks mentioning %q", tc.name, got, tc.want)
		}
	}
	// The valid message got generated block_ids, as Slack adds them.
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages stored, want 1", len(msgs))
	}
	var blocks []struct {
		BlockID string `json:"block_id"`
	}
	if err := json.Unmarshal(msgs[0].Blocks, &blocks); err != nil || len(blocks) != 5 {
		t.Fatalf("stored blocks %s: %v", msgs[0].Blocks, err)
	}
	for i, b := range blocks {
		if b.BlockID == "" {
			t.Errorf("block %d has no block_id", i)
		}
	}

	// Through slack-go: the error carries Slack's explanation.
	bad := slack.NewButtonBlockElement("x", strings.Repeat("v", 2001), slack.NewTextBlockObject(slack.PlainTextType, "X", false, false))
	_, _, err := api(s).PostMessageContext(timeout(t, 5*time.Second), deploys, slack.MsgOptionBlocks(slack.NewActionBlock("", bad)))
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "invalid_blocks" || len(se.ResponseMetadata.Messages) == 0 {
		t.Errorf("slack-go: %#v", err)
	}
}

func TestScriptedFailures(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	ctx := timeout(t, 10*time.Second)
	a := api(s)
	text := slack.MsgOptionText("hi", false)
	postErr := func() error { _, _, err := a.PostMessageContext(ctx, deploys, text); return err }

	s.FailNext("chat.postMessage", Failure{Status: http.StatusTooManyRequests, RetryAfter: 3})
	var rl *slack.RateLimitedError
	if err := postErr(); !errors.As(err, &rl) || rl.RetryAfter != 3*time.Second {
		t.Errorf("429: %#v, want *slack.RateLimitedError{3s}", err)
	}
	s.FailNext("chat.postMessage", Failure{Error: "ratelimited", Times: 2})
	for range 2 {
		if got := slackErr(t, postErr()); got != "ratelimited" {
			t.Errorf("scripted error: %q", got)
		}
	}
	s.FailNext("chat.postMessage", Failure{Status: http.StatusInternalServerError})
	var sc slack.StatusCodeError
	if err := postErr(); !errors.As(err, &sc) || sc.Code != 500 {
		t.Errorf("500: %#v", err)
	}
	if err := postErr(); err != nil {
		t.Errorf("after the scripted failures: %v", err)
	}
	if n, m := s.CallCount("chat.postMessage"), len(s.Messages()); n != 5 || m != 1 {
		t.Errorf("calls %d, messages %d; want 5 and 1", n, m)
	}

	// apps.connections.open: slack-go waits Retry-After and tries again.
	s.FailNext("apps.connections.open", Failure{Status: http.StatusTooManyRequests, RetryAfter: 1})
	startBot(t, s, 0, true)
	if err := s.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if n, opened := s.CallCount("apps.connections.open"), s.ConnectionsOpened(); n != 2 || opened != 1 {
		t.Errorf("apps.connections.open calls %d, opened %d; want 2 and 1", n, opened)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	s.SetLatency("auth.test", 200*time.Millisecond)
	start := time.Now()
	if _, err := api(s).AuthTestContext(timeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("auth.test took %v despite 200ms latency", d)
	}
}

func TestResponseURL(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	b := startBot(t, s, 0, true)
	ctx := timeout(t, 10*time.Second)
	if err := s.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	slash := func(channel string) string {
		t.Helper()
		if _, err := s.SendSlashCommand(ctx, SlashCommand{UserID: alice, ChannelID: channel}); err != nil {
			t.Fatal(err)
		}
		return b.next(ctx, t, socketmode.EventTypeSlashCommand).Data.(slack.SlashCommand).ResponseURL
	}
	respond := func(u, responseType, text string) error {
		_, _, err := b.api.PostMessageContext(ctx, "ignored", slack.MsgOptionResponseURL(u, responseType), slack.MsgOptionText(text, false))
		return err
	}

	u := slash(deploys)
	if err := respond(u, slack.ResponseTypeEphemeral, "only you"); err != nil {
		t.Fatalf("ephemeral response: %v", err)
	}
	m, err := s.WaitMessage(ctx, func(m Message) bool { return m.Text == "only you" })
	if err != nil {
		t.Fatal(err)
	}
	if !m.Ephemeral || m.VisibleTo != alice || m.Via != ViaResponseURL || m.Channel != deploys || m.User != DefaultBotUserID {
		t.Errorf("ephemeral response stored as %+v", m)
	}
	// Up to five posts per URL, then it is gone.
	for i := 2; i <= 5; i++ {
		if err := respond(u, slack.ResponseTypeEphemeral, "again"); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	var sc slack.StatusCodeError
	if err := respond(u, slack.ResponseTypeEphemeral, "sixth"); !errors.As(err, &sc) || sc.Code != http.StatusNotFound {
		t.Errorf("sixth post: %#v, want 404", err)
	}

	// in_channel works where the bot is not a member; PostWebhook works too.
	u = slash(nobot)
	if err := slack.PostWebhookCustomHTTPContext(ctx, u, http.DefaultClient, &slack.WebhookMessage{Text: "for all", ResponseType: slack.ResponseTypeInChannel}); err != nil {
		t.Fatalf("webhook in_channel: %v", err)
	}
	if m, err := s.WaitMessage(ctx, func(m Message) bool { return m.Text == "for all" }); err != nil || m.Ephemeral || m.Channel != nobot {
		t.Errorf("in_channel response: %+v, %v", m, err)
	}

	// An interaction's URL replaces or deletes the clicked message.
	click := func(ts string) string {
		t.Helper()
		if _, err := s.ClickButton(ctx, Click{UserID: alice, ChannelID: deploys, MessageTS: ts, ActionID: "stop"}); err != nil {
			t.Fatal(err)
		}
		return b.next(ctx, t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback).ResponseURL
	}
	_, ts, err := b.api.PostMessageContext(ctx, deploys, slack.MsgOptionText("Stop?", false), slack.MsgOptionBlocks(stopBlocks()...))
	if err != nil {
		t.Fatal(err)
	}
	u = click(ts)
	if _, _, err := b.api.PostMessageContext(ctx, deploys, slack.MsgOptionReplaceOriginal(u), slack.MsgOptionText("Stopped by alice", false)); err != nil {
		t.Fatalf("replace_original: %v", err)
	}
	if m, _ := s.Message(deploys, ts); m.Text != "Stopped by alice" || m.Blocks != nil || m.Edits != 1 || m.Ephemeral {
		t.Errorf("replaced message %+v", m)
	}
	if _, err := s.ClickButton(ctx, Click{UserID: alice, ChannelID: deploys, MessageTS: ts, ActionID: "stop"}); !errors.Is(err, ErrNoSuchButton) {
		t.Errorf("click after replace: %v, want ErrNoSuchButton", err)
	}

	_, ts, err = b.api.PostMessageContext(ctx, deploys, slack.MsgOptionBlocks(stopBlocks()...))
	if err != nil {
		t.Fatal(err)
	}
	u = click(ts)
	if _, _, err := b.api.PostMessageContext(ctx, deploys, slack.MsgOptionDeleteOriginal(u)); err != nil {
		t.Fatalf("delete_original: %v", err)
	}
	if m, _ := s.Message(deploys, ts); !m.Deleted {
		t.Errorf("message not deleted: %+v", m)
	}
	if _, err := s.ClickButton(ctx, Click{UserID: alice, ChannelID: deploys, MessageTS: ts, ActionID: "stop"}); !errors.Is(err, ErrNoSuchMessage) {
		t.Errorf("click after delete: %v, want ErrNoSuchMessage", err)
	}

	// Unknown URLs, invalid blocks, scripted failures.
	if err := respond(s.URL()+"/commands/T0FAKE/1/nope", "", "x"); !errors.As(err, &sc) || sc.Code != http.StatusNotFound {
		t.Errorf("unknown URL: %#v", err)
	}
	u = slash(deploys)
	bad := slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, strings.Repeat("x", 3001), false, false), nil, nil)
	if _, _, err := b.api.PostMessageContext(ctx, deploys, slack.MsgOptionResponseURL(u, ""), slack.MsgOptionBlocks(bad)); !errors.As(err, &sc) || sc.Code != http.StatusBadRequest {
		t.Errorf("invalid blocks: %#v", err)
	}
	s.FailNext(ViaResponseURL, Failure{Status: http.StatusInternalServerError})
	if err := respond(u, "", "x"); !errors.As(err, &sc) || sc.Code != 500 {
		t.Errorf("scripted failure: %#v", err)
	}
	if err := respond(u, "", "works"); err != nil {
		t.Errorf("after scripted failure: %v", err)
	}
	if !strings.HasPrefix(s.Calls()[len(s.Calls())-1], "response_url "+deploys+" "+alice) {
		t.Errorf("last call %q", s.Calls()[len(s.Calls())-1])
	}
}

func TestTimestampsIncrease(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	ctx := timeout(t, 10*time.Second)
	a := api(s)
	shape := regexp.MustCompile(`^\d{10}\.\d{6}$`)
	prev := ""
	for i := range 20 {
		_, ts, err := a.PostMessageContext(ctx, deploys, slack.MsgOptionText("n", false))
		if err != nil {
			t.Fatal(err)
		}
		if !shape.MatchString(ts) || ts <= prev {
			t.Fatalf("message %d: ts %q after %q", i, ts, prev)
		}
		prev = ts
	}
}

func TestSubscribeAndWait(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	ctx := timeout(t, 10*time.Second)
	a := api(s)
	changes, cancel := s.Subscribe()

	got := make(chan Message, 1)
	go func() {
		m, err := s.WaitMessage(ctx, func(m Message) bool { return m.Text == "later" && m.Edits == 1 })
		if err == nil {
			got <- m
		}
		close(got)
	}()
	_, ts, err := a.PostMessageContext(ctx, deploys, slack.MsgOptionText("first", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := a.UpdateMessageContext(ctx, deploys, ts, slack.MsgOptionText("later", false)); err != nil {
		t.Fatal(err)
	}
	select {
	case m, ok := <-got:
		if !ok || m.TS != ts {
			t.Errorf("WaitMessage = %+v, %v", m, ok)
		}
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}

	var kinds []ChangeKind
	for len(kinds) < 4 {
		select {
		case c := <-changes:
			kinds = append(kinds, c.Kind)
		case <-ctx.Done():
			t.Fatalf("changes so far: %v", kinds)
		}
	}
	want := []ChangeKind{ChangeCall, ChangeMessagePosted, ChangeCall, ChangeMessageUpdated}
	for i := range want {
		if kinds[i] != want[i] {
			t.Errorf("changes %v, want %v", kinds, want)
			break
		}
	}
	cancel()
	cancel() // twice is fine
	if _, ok := <-changes; ok {
		t.Error("channel still open after cancel")
	}

	// A subscriber that never reads does not block the server, and learns it missed changes.
	slow, cancelSlow := s.Subscribe()
	defer cancelSlow()
	for range subscriberBuffer + 10 {
		s.AddUserGroup("S0X", alice)
	}
	missed := false
	for range subscriberBuffer {
		if c := <-slow; c.Missed {
			missed = true
		}
	}
	if !missed {
		t.Error("no change was marked Missed after overflowing the buffer")
	}

	short := timeout(t, 50*time.Millisecond)
	_, err = s.WaitMessage(short, func(m Message) bool { return m.Text == "never" })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `"later"`) {
		t.Errorf("WaitMessage timeout error: %v", err)
	}
}

func TestUserNames(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	for id, want := range map[string]string{alice: "alice", DefaultBotUserID: BotName, "U0WHO": "U0WHO"} {
		if got := s.UserName(id); got != want {
			t.Errorf("UserName(%s) = %q, want %q", id, got, want)
		}
	}
	if n := len(s.Users()); n != 3 {
		t.Errorf("%d users", n)
	}
	s.AddChannel(Channel{ID: nobot, Name: "random", Members: []string{alice, bob}, BotIsMember: true})
	chans := s.Channels()
	if len(chans) != 4 || !chans[1].BotIsMember || len(chans[1].Members) != 2 {
		t.Errorf("channels after replacing %s: %+v", nobot, chans)
	}
}

// TestCloseLeavesNoGoroutines runs a websocket, an in-flight slow request and a subscriber, then
// checks Close ends everything it started. Not parallel: it counts goroutines.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		s, err := New(Options{AppToken: appTok, BotToken: botTok, PingInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		s.AddChannel(Channel{ID: deploys, Name: "deploys", BotIsMember: true})
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		a := slack.New(botTok, slack.OptionAPIURL(s.APIURL()), slack.OptionAppLevelToken(appTok), slack.OptionHTTPClient(hc))
		ctx := timeout(t, 10*time.Second)
		_, u, err := a.StartSocketModeContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if _, hello, err := ws.ReadMessage(); err != nil || !strings.Contains(string(hello), `"hello"`) {
			t.Fatalf("hello: %s, %v", hello, err)
		}
		if _, u2, _ := a.StartSocketModeContext(ctx); u2 == u {
			t.Error("tickets are not fresh")
		}
		if _, _, err := websocket.DefaultDialer.DialContext(ctx, u, nil); err == nil {
			t.Error("a ticket was accepted twice")
		}
		_, _ = s.Subscribe()
		s.SetLatency("auth.test", time.Hour)
		slow := make(chan error, 1)
		go func() { _, err := a.AuthTestContext(ctx); slow <- err }()
		if err := s.WaitUntil(ctx, "slow call", func() bool { return s.CallCount("auth.test") == 1 }); err != nil {
			t.Fatal(err)
		}
		s.Close()
		// Close waited for everything the server started, even though the client's websocket
		// is still open. A request refused because it arrived during Close runs in net/http's
		// own goroutine for a moment more: wait for it, with a deadline.
		deadline := time.Now().Add(5 * time.Second)
		for stacks := serverGoroutines(); len(stacks) > 0; stacks = serverGoroutines() {
			if time.Now().After(deadline) {
				t.Fatalf("server goroutines still running 5 s after Close:\n%s", strings.Join(stacks, "\n\n"))
			}
			runtime.Gosched()
		}
		s.Close()
		<-slow
		if _, err := s.SendSlashCommand(ctx, SlashCommand{UserID: alice, ChannelID: deploys}); !errors.Is(err, ErrClosed) {
			t.Errorf("SendSlashCommand after Close: %v, want ErrClosed", err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling a counter that has no change notification
	}
}

// serverGoroutines returns the stacks of goroutines running the fake's own code.
func serverGoroutines() []string {
	buf := make([]byte, 1<<20)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "fakeslack.(*Server)") || strings.Contains(g, "fakeslack.New") {
			out = append(out, g)
		}
	}
	return out
}

func TestTooManyWebsockets(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	ctx := timeout(t, 10*time.Second)
	a := api(s)
	for i := range maxConnections {
		_, u, err := a.StartSocketModeContext(ctx)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer ws.Close()
	}
	if err := s.WaitConnections(ctx, maxConnections); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.StartSocketModeContext(ctx); slackErr(t, err) != "too_many_websockets" {
		t.Errorf("11th open: %v", err)
	}
}

func TestJSONBody(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	for _, tc := range []struct {
		name, bearer, body, want string
	}{
		{"bearer", botTok, `{"channel":"C0DEPLOYS","text":"hi","blocks":[{"type":"divider"}]}`, ""},
		{"token in a JSON body is not read", "", `{"token":"` + botTok + `","channel":"C0DEPLOYS","text":"hi"}`, "not_authed"},
		{"bad JSON", botTok, `{"channel":`, "invalid_form_data"},
	} {
		req, err := http.NewRequestWithContext(timeout(t, 5*time.Second), http.MethodPost, s.APIURL()+"chat.postMessage", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		if tc.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+tc.bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == "" && got["ok"] != true || tc.want != "" && got["error"] != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, got, tc.want)
		}
	}
	if msgs := s.Messages(); len(msgs) != 1 || len(msgs[0].Blocks) == 0 {
		t.Errorf("messages %+v", msgs)
	}
}

// An envelope queued behind another sender's write is timed from its own
// write: the fake's queue is not the client's latency.
func TestAckLatencyStartsAtTheWrite(t *testing.T) {
	t.Parallel()
	s := newFake(t)
	startBot(t, s, 0, true)
	ctx := timeout(t, 10*time.Second)
	if err := s.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	changes, stop := s.Subscribe()
	defer stop()
	c := s.liveConns()[0]
	c.writeMu.Lock() // another sender's frame is being written
	sent := make(chan string, 1)
	go func() {
		id, err := s.SendSlashCommand(ctx, SlashCommand{UserID: alice, ChannelID: deploys, Text: "queued"})
		if err != nil {
			t.Error(err)
		}
		sent <- id
	}()
	for ch := range changes {
		if ch.Kind == ChangeEnvelope {
			break
		}
	}
	queuedUntil := time.Now()
	c.writeMu.Unlock()
	ack, err := s.WaitAck(ctx, <-sent)
	if err != nil {
		t.Fatal(err)
	}
	if ack.SentAt.Before(queuedUntil) {
		t.Errorf("SentAt %v is before the write could start (%v)", ack.SentAt, queuedUntil)
	}
}
