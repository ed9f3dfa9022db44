package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

const waitTimeout = 10 * time.Second

func start(t *testing.T) *Sandbox {
	t.Helper()
	s, err := Start(t.Context(), Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, s *Sandbox, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(s.URL() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func post(t *testing.T, s *Sandbox, path string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(s.URL()+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestStartRefusesOtherAddresses(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:8080", "example.com:80", "127.0.0.1"} {
		if s, err := Start(t.Context(), Options{Addr: addr}); err == nil {
			s.Close()
			t.Errorf("Start(%q) succeeded, want a refusal", addr)
		}
	}
	if !strings.HasPrefix(start(t).URL(), "http://127.0.0.1:") {
		t.Error("URL is not on 127.0.0.1")
	}
}

func TestEnv(t *testing.T) {
	s := start(t)
	env := s.Env()
	for k, want := range map[string]string{
		"AWS_ENDPOINT_URL_CODEDEPLOY": s.cd.URL(),
		"SLACK_API_URL":               s.slack.APIURL(),
		"AWS_REGION":                  "us-east-1",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"STOPDEPLOY_AUDIT_CHANNEL":    Audit,
		"STOPDEPLOY_FOLLOW_INTERVAL":  "2s",
		"LOG_FORMAT":                  "json",
		// Unset, so the developer's own values cannot reach AWS or change the bot.
		"AWS_PROFILE": "", "AWS_SESSION_TOKEN": "", "AWS_ENDPOINT_URL": "", "STOPDEPLOY_ALLOWED_CHANNELS": "",
		// The bot refuses these alongside STOPDEPLOY_POLICY_FILE.
		"STOPDEPLOY_ALLOWED_USERS": "", "STOPDEPLOY_ALLOWED_GROUPS": "", "STOPDEPLOY_REQUIRE_SECOND_APPROVER": "",
	} {
		if got, ok := env[k]; !ok || got != want {
			t.Errorf("Env()[%s] = %q (set %t), want %q", k, got, ok, want)
		}
	}
	for k, prefix := range map[string]string{"SLACK_APP_TOKEN": "xapp-", "SLACK_BOT_TOKEN": "xoxb-"} {
		if !strings.HasPrefix(env[k], prefix) {
			t.Errorf("%s = %q, want an %s token", k, env[k], prefix)
		}
	}
	for _, k := range []string{"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		if b, err := os.ReadFile(env[k]); err != nil || len(b) != 0 {
			t.Errorf("%s = %q: want an empty file (%v)", k, env[k], err)
		}
	}
	if b, err := os.ReadFile(env["STOPDEPLOY_POLICY_FILE"]); err != nil || string(b) != policyYAML ||
		!strings.HasPrefix(env["STOPDEPLOY_POLICY_FILE"], s.dir+string(os.PathSeparator)) {
		t.Errorf("STOPDEPLOY_POLICY_FILE = %q: want the policy in the sandbox's directory (%v)", env["STOPDEPLOY_POLICY_FILE"], err)
	}
	env["AWS_REGION"] = "changed"
	if s.Env()["AWS_REGION"] != "us-east-1" {
		t.Error("Env returned its own map")
	}
}

func TestPage(t *testing.T) {
	s := start(t)
	resp, body := get(t, s, "/")
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	for _, want := range []string{
		`<body data-user="U0ALICE" data-channel="C0DEPLOYS">`, "# deploys", "# audit",
		"Alice Chen", "Bob Okafor", "@oncall: asks or approves production", "Carol Diaz", "@engineering: stops staging alone",
		"Mallory Reyes", "in no rule: may stop nothing",
		`data-deployment="d-LGUMS25CC"`, `data-deployment="d-STG7K3M2P"`, `data-deployment="d-7ECSBG4QX"`, `data-deployment="d-LMBDA8K2Z"`, `data-deployment="d-B7N4T2XQ1"`,
		`id="composer-input"`, `<dialog id="confirm-dialog">`, `src="/static/app.js"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("the page refers to another site")
	}
	_, body = get(t, s, "/?user=U0MALLORY&channel=C0AUDIT")
	if !strings.Contains(body, `<body data-user="U0MALLORY" data-channel="C0AUDIT">`) {
		t.Error("the page ignores ?user= and ?channel=")
	}

	for path, ct := range map[string]string{
		"/static/app.js": "text/javascript; charset=utf-8", "/static/style.css": "text/css; charset=utf-8",
		"/static/favicon.svg": "image/svg+xml",
	} {
		if resp, _ := get(t, s, path); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ct {
			t.Errorf("GET %s: %s %q, want 200 %q", path, resp.Status, resp.Header.Get("Content-Type"), ct)
		}
	}
	if resp, _ := get(t, s, "/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope: %s", resp.Status)
	}
}

func TestGuard(t *testing.T) {
	s := start(t)
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/", nil)
	req.Host = "evil.example:8080" // DNS rebinding
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("Host evil.example: %s, want 421", resp.Status)
	}

	req, _ = http.NewRequest(http.MethodPost, s.URL()+"/api/command",
		strings.NewReader(url.Values{"user": {Alice}, "channel": {Deploys}, "text": {"hi"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST: %s, want 403", resp.Status)
	}
	if n := len(s.slack.Messages()); n != 0 {
		t.Errorf("a refused POST posted %d messages", n)
	}

	for _, path := range []string{"/api/command", "/api/click"} {
		if resp, _ := get(t, s, path); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %s, want 405: state changes only through POST", path, resp.Status)
		}
	}
}

func TestCommandValidation(t *testing.T) {
	s := start(t)
	for _, tc := range []struct {
		name string
		form url.Values
		want int
	}{
		{"unknown user", url.Values{"user": {"U0NOBODY"}, "channel": {Deploys}, "text": {"/stopdeploy help"}}, 400},
		{"no user", url.Values{"channel": {Deploys}, "text": {"/stopdeploy help"}}, 400},
		{"unknown channel", url.Values{"user": {Alice}, "channel": {"C0NOPE"}, "text": {"/stopdeploy help"}}, 400},
		{"empty text", url.Values{"user": {Alice}, "channel": {Deploys}, "text": {"  "}}, 400},
		{"too long", url.Values{"user": {Alice}, "channel": {Deploys}, "text": {strings.Repeat("x", maxText+1)}}, 400},
		{"other command", url.Values{"user": {Alice}, "channel": {Deploys}, "text": {"/giphy cats"}}, 400},
		{"command but no bot connected", url.Values{"user": {Alice}, "channel": {Deploys}, "text": {"/stopdeploy help"}}, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, s, "/api/command", tc.form)
			if code != tc.want {
				t.Errorf("status %d (%s), want %d", code, body, tc.want)
			}
			var e struct{ Error string }
			if json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
				t.Errorf("body %q has no error text for the page", body)
			}
		})
	}
	if n := len(s.slack.Messages()); n != 0 {
		t.Errorf("refused commands posted %d messages", n)
	}

	code, body := post(t, s, "/api/command", url.Values{"user": {Bob}, "channel": {Deploys}, "text": {"hello <@U0ALICE>"}})
	if code != http.StatusCreated {
		t.Fatalf("plain message: %d %s", code, body)
	}
	msgs := s.slack.Messages()
	if len(msgs) != 1 || msgs[0].User != Bob || msgs[0].Text != "hello <@U0ALICE>" || msgs[0].Channel != Deploys {
		t.Errorf("plain message stored as %+v", msgs)
	}
}

func TestClickValidation(t *testing.T) {
	s := start(t)
	ts, err := s.slack.PostAsUser(Deploys, Alice, "no buttons here")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		form url.Values
		want int
	}{
		{"unknown user", url.Values{"user": {"U0X"}, "channel": {Deploys}, "ts": {ts}, "action": {"stop"}}, 400},
		{"unknown channel", url.Values{"user": {Alice}, "channel": {"C0X"}, "ts": {ts}, "action": {"stop"}}, 400},
		{"bad ts", url.Values{"user": {Alice}, "channel": {Deploys}, "ts": {"yesterday"}, "action": {"stop"}}, 400},
		{"no action", url.Values{"user": {Alice}, "channel": {Deploys}, "ts": {ts}}, 400},
		{"control characters in action", url.Values{"user": {Alice}, "channel": {Deploys}, "ts": {ts}, "action": {"st\nop"}}, 400},
		{"no such message", url.Values{"user": {Alice}, "channel": {Deploys}, "ts": {"1700000000.000001"}, "action": {"stop"}}, 400},
		{"no such button", url.Values{"user": {Alice}, "channel": {Deploys}, "ts": {ts}, "action": {"stop"}}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := post(t, s, "/api/click", tc.form); code != tc.want {
				t.Errorf("status %d (%s), want %d", code, body, tc.want)
			}
		})
	}
}

// botConn is a minimal Socket Mode client: it acks every envelope and hands
// over its payload.
func botConn(t *testing.T, s *Sandbox) <-chan map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.slack.APIURL()+"apps.connections.open", nil)
	req.Header.Set("Authorization", "Bearer "+s.Env()["SLACK_APP_TOKEN"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var open struct {
		OK  bool
		URL string
	}
	err = json.NewDecoder(resp.Body).Decode(&open)
	resp.Body.Close()
	if err != nil || !open.OK {
		t.Fatalf("apps.connections.open: %v %+v", err, open)
	}
	ws, _, err := websocket.DefaultDialer.Dial(open.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	payloads := make(chan map[string]any, 10)
	go func() {
		for {
			var env struct {
				Type       string         `json:"type"`
				EnvelopeID string         `json:"envelope_id"`
				Payload    map[string]any `json:"payload"`
			}
			if err := ws.ReadJSON(&env); err != nil {
				return
			}
			if env.EnvelopeID == "" {
				continue // hello
			}
			if err := ws.WriteJSON(map[string]string{"envelope_id": env.EnvelopeID}); err != nil {
				return
			}
			payloads <- env.Payload
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if err := s.slack.WaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	return payloads
}

func TestCommandAndClickReachTheBot(t *testing.T) {
	s := start(t)
	payloads := botConn(t, s)

	code, body := post(t, s, "/api/command", url.Values{"user": {Bob}, "channel": {Deploys}, "text": {"/stopdeploy   d-LGUMS25CC rollback"}})
	if code != http.StatusAccepted {
		t.Fatalf("command: %d %s", code, body)
	}
	p := <-payloads
	if p["command"] != "/stopdeploy" || p["text"] != "d-LGUMS25CC rollback" || p["user_id"] != Bob || p["channel_id"] != Deploys {
		t.Errorf("slash command payload %v", p)
	}

	// A message with a button, as the bot would post it.
	api := s.slack.APIURL() + "chat.postMessage"
	resp, err := http.PostForm(api, url.Values{"token": {s.Env()["SLACK_BOT_TOKEN"]}, "channel": {Deploys}, "text": {"stop?"},
		"blocks": {`[{"type":"actions","block_id":"stopdeploy_actions","elements":[{"type":"button","action_id":"stop","value":"v","text":{"type":"plain_text","text":"Stop"}}]}]`}})
	if err != nil {
		t.Fatal(err)
	}
	var posted struct {
		OK bool
		TS string
	}
	_ = json.NewDecoder(resp.Body).Decode(&posted)
	resp.Body.Close()
	if !posted.OK {
		t.Fatal("chat.postMessage failed")
	}
	code, body = post(t, s, "/api/click", url.Values{"user": {Mallory}, "channel": {Deploys}, "ts": {posted.TS}, "action": {"stop"}})
	if code != http.StatusAccepted {
		t.Fatalf("click: %d %s", code, body)
	}
	p = <-payloads
	user, _ := p["user"].(map[string]any)
	actions, _ := p["actions"].([]any)
	if p["type"] != "block_actions" || user["id"] != Mallory || len(actions) != 1 {
		t.Errorf("click payload %v", p)
	}
}

// events reads server-sent events from the page's stream.
type events struct {
	sc   *bufio.Scanner
	body io.Closer
}

func openEvents(t *testing.T, s *Sandbox) *events {
	t.Helper()
	resp, err := http.Get(s.URL() + "/events")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	return &events{sc: bufio.NewScanner(resp.Body), body: resp.Body}
}

// next returns the next event's name and data. A stuck stream fails the
// test through the body's deadline (the sandbox's Close, or the timeout).
func (e *events) next(t *testing.T) (string, string) {
	t.Helper()
	var name, data string
	for e.sc.Scan() {
		line := e.sc.Text()
		switch {
		case line == "" && name != "":
			return name, data
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
	t.Fatalf("event stream ended: %v", e.sc.Err())
	return "", ""
}

// waitFor reads events until one named name arrives.
func (e *events) waitFor(t *testing.T, name string) string {
	t.Helper()
	timer := time.AfterFunc(waitTimeout, func() { e.body.Close() })
	defer timer.Stop()
	for {
		if n, data := e.next(t); n == name {
			return data
		}
	}
}

func TestEvents(t *testing.T) {
	s := start(t)
	ev := openEvents(t, s)
	if data := ev.waitFor(t, "hello"); data != `{"online":false}` {
		t.Errorf("hello = %s", data)
	}

	if _, err := s.slack.PostAsUser(Deploys, Alice, "hi"); err != nil {
		t.Fatal(err)
	}
	if data := ev.waitFor(t, "messages"); !strings.Contains(data, Deploys) {
		t.Errorf("messages event %s does not name the channel", data)
	}

	s.cd.Put(fakecodedeploy.Deployment{ID: "d-NEW000001", Application: "a", Group: "g"})
	ev.waitFor(t, "deployments")

	_, _ = io.WriteString(s.LogSink(), `{"level":"info","message":"hello"}`+"\n")
	ev.waitFor(t, "log")

	botConn(t, s)
	if data := ev.waitFor(t, "status"); data != `{"online":true}` {
		t.Errorf("status after connecting = %s", data)
	}
}

func TestFragments(t *testing.T) {
	s := start(t)
	sl := s.slack
	parent, _ := sl.PostAsUser(Deploys, Alice, "the parent")
	// Replies and ephemeral messages come from the bot's Web API calls.
	api := func(method string, v url.Values) {
		t.Helper()
		v.Set("token", s.Env()["SLACK_BOT_TOKEN"])
		resp, err := http.PostForm(sl.APIURL()+method, v)
		if err != nil {
			t.Fatal(err)
		}
		var r struct{ OK bool }
		_ = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if !r.OK {
			t.Fatalf("%s %v failed", method, v)
		}
	}
	api("chat.postMessage", url.Values{"channel": {Deploys}, "thread_ts": {parent}, "text": {"*Pending*: stopping"}})
	api("chat.postMessage", url.Values{"channel": {Deploys}, "thread_ts": {parent}, "text": {"now *Stopped*"}})
	api("chat.postEphemeral", url.Values{"channel": {Deploys}, "user": {Mallory}, "text": {"You are not allowed"}})

	_, alice := get(t, s, "/fragment/messages?user=U0ALICE&channel=C0DEPLOYS")
	_, mallory := get(t, s, "/fragment/messages?user=U0MALLORY&channel=C0DEPLOYS")
	for _, want := range []string{"the parent", `data-thread="` + parent + `">2 replies</button>`} {
		if !strings.Contains(alice, want) {
			t.Errorf("Alice's channel lacks %q:\n%s", want, alice)
		}
	}
	if strings.Contains(alice, "Pending") {
		t.Error("a thread reply is shown in the channel")
	}
	if strings.Contains(alice, "not allowed") || strings.Contains(alice, "Only visible to you") {
		t.Error("Alice sees Mallory's ephemeral message")
	}
	for _, want := range []string{"msg-ephemeral", "Only visible to you", "You are not allowed"} {
		if !strings.Contains(mallory, want) {
			t.Errorf("Mallory's channel lacks %q", want)
		}
	}

	resp, thread := get(t, s, "/fragment/thread?user=U0ALICE&channel=C0DEPLOYS&ts="+parent)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("thread: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"the parent", "2 replies", "<b>Pending</b>: stopping", "now <b>Stopped</b>"} {
		if !strings.Contains(thread, want) {
			t.Errorf("thread lacks %q:\n%s", want, thread)
		}
	}
	if resp, _ := get(t, s, "/fragment/thread?user=U0ALICE&channel=C0DEPLOYS&ts=1700000000.000009"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown thread: %s", resp.Status)
	}
	if resp, _ := get(t, s, "/fragment/messages?user=U0EVE&channel=C0DEPLOYS"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown user: %s", resp.Status)
	}
	if resp, _ := get(t, s, "/fragment/messages?user=U0ALICE&channel=CNOPE"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown channel: %s", resp.Status)
	}
}

func TestDeploymentsJSON(t *testing.T) {
	s := start(t)
	resp, body := get(t, s, "/api/deployments")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var ds []deploymentJSON
	if err := json.Unmarshal([]byte(body), &ds); err != nil {
		t.Fatal(err)
	}
	got := map[string]deploymentJSON{}
	for _, d := range ds {
		got[d.ID] = d
	}
	for id, want := range map[string]struct{ status, platform string }{
		Running: {"InProgress", "Server"}, ECSBlueGreen: {"InProgress", "ECS"}, Lambda: {"InProgress", "Lambda"}, Succeeded: {"Succeeded", "Server"},
		Staging: {"InProgress", "Server"},
	} {
		d, ok := got[id]
		if !ok || d.Status != want.status || d.ComputePlatform != want.platform {
			t.Errorf("%s: %+v, want %s on %s", id, d, want.status, want.platform)
		}
	}
	if d := got[Running]; d.Application != "checkout" || d.Group != "production" || d.Overview.Pending == 0 {
		t.Errorf("%s: %+v", Running, d)
	}
}

func TestAuditJSON(t *testing.T) {
	s := start(t)
	sink := s.LogSink()
	// zerolog writes a line at once; a writer may still split it.
	line := `{"level":"info","service":"stopdeploy","audit":true,"event":"refused","user":"U0MALLORY","channel":"C0DEPLOYS","deployment":"d-LGUMS25CC","outcome":"user_not_allowed","message_ts":"","detail":"command","time":"2026-11-26T12:00:00Z","message":"audit refused"}` + "\n"
	_, _ = io.WriteString(sink, `{"level":"info","message":"starting","time":"2026-11-26T12:00:00Z"}`+"\n"+line[:40])
	_, _ = io.WriteString(sink, line[40:])
	_, _ = io.WriteString(sink, "not json\n")

	resp, body := get(t, s, "/api/audit")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var got []auditLine
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := auditLine{Time: "2026-11-26T12:00:00Z", Event: "refused", User: Mallory, Channel: Deploys, Deployment: Running, Outcome: "user_not_allowed", Detail: "command"}
	if len(got) != 1 || got[0] != want {
		t.Errorf("audit = %+v, want [%+v]", got, want)
	}

	_, log := get(t, s, "/fragment/log")
	for _, w := range []string{`<b class="event">refused</b>`, "user_not_allowed", "@mallory", "#deploys", "starting", "not json"} {
		if !strings.Contains(log, w) {
			t.Errorf("log fragment lacks %q", w)
		}
	}
}

// TestInert: text from AWS or a user never becomes markup in the page.
func TestInert(t *testing.T) {
	s := start(t)
	const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	s.cd.Put(fakecodedeploy.Deployment{ID: "d-EVIL00001", Application: evil, Group: evil, Description: evil, Creator: evil})
	if _, err := s.slack.PostAsUser(Deploys, Alice, evil); err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(s.LogSink(), `{"level":"info","audit":true,"event":"<script>x</script>","detail":"<img src=x>","message":"<script>"}`+"\n")
	for _, path := range []string{
		"/", "/fragment/deployments", "/fragment/messages?user=U0ALICE&channel=C0DEPLOYS", "/fragment/log",
	} {
		_, body := get(t, s, path)
		if strings.Contains(body, "<script>") || strings.Contains(body, "<img") {
			t.Errorf("%s renders markup from data:\n%s", path, body)
		}
		if !strings.Contains(body, "&lt;script&gt;") {
			t.Errorf("%s does not show the text escaped", path)
		}
	}
}

func TestSeed(t *testing.T) {
	s := start(t)
	d, ok := s.cd.Deployment(Running)
	if !ok || d.Application != "checkout" || d.Group != "production" || d.Status != fakecodedeploy.StatusInProgress || d.StopTakes <= 0 {
		t.Errorf("%s = %+v", Running, d)
	}
	names := map[string]string{}
	for _, u := range s.slack.Users() {
		names[u.ID] = u.Name
	}
	if d, ok := s.cd.Deployment(Staging); !ok || d.Application != "checkout" || d.Group != "staging" || d.Status != fakecodedeploy.StatusInProgress || d.StopTakes <= 0 {
		t.Errorf("%s = %+v", Staging, d)
	}
	if names[Alice] == "" || names[Bob] == "" || names[Carol] == "" || names[Mallory] == "" {
		t.Errorf("users %v", names)
	}
	chans := map[string]fakeslack.Channel{}
	for _, c := range s.slack.Channels() {
		chans[c.ID] = c
	}
	if !chans[Deploys].BotIsMember || !chans[Audit].BotIsMember {
		t.Errorf("the bot is not in #deploys and #audit: %v", chans)
	}

	// The running deployment moves along until one instance is left.
	before := d.Overview
	progress(s.cd)
	d, _ = s.cd.Deployment(Running)
	if d.Overview.Succeeded != before.Succeeded+1 || d.Overview.Pending != before.Pending-1 || d.Overview.InProgress != 1 {
		t.Errorf("progress: %+v → %+v", before, d.Overview)
	}
	for range 20 {
		progress(s.cd)
	}
	d, _ = s.cd.Deployment(Running)
	if d.Status != fakecodedeploy.StatusInProgress || d.Overview.Pending != 0 || d.Overview.InProgress != 1 {
		t.Errorf("after a while: %s %+v, want InProgress with one instance left", d.Status, d.Overview)
	}
}
