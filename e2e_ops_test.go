package main

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

// TestE2E_TwoProcessesShareTheApp: Slack may deliver the click to another
// process than the one that posted the confirmation.
func TestE2E_TwoProcessesShareTheApp(t *testing.T) {
	w := newWorld(t)
	a := w.start("bot-a", nil)
	waitConnections(t, w, 1)
	b := w.start("bot-b", nil)
	waitConnections(t, w, 2)
	// Slack's hello says two connections, and nothing keeps them agreeing.
	b.waitLog("the no-state-table warning", func(l logLine) bool {
		return l.str("level") == "warn" && strings.Contains(l.msg(), "STOPDEPLOY_STATE_TABLE is not set")
	})

	w.command(alice, deploys, running, fakeslack.ToConnection(0))
	conf := w.confirmation(deploys, running)
	a.auditLine("requested", running)

	w.click(bob, conf, "stop", fakeslack.ToConnection(1))
	w.threadReply(conf, "CodeDeploy answered *Pending*")
	if got := b.auditLine("stop_result", running).str("user"); got != bob {
		t.Errorf("bot-b stop_result user = %q", got)
	}
	if got := a.audits(running); strings.Join(got, "|") != "requested confirmation_posted" {
		t.Errorf("bot-a audit trail = %q, want only the request", got)
	}
	if got := w.calls("StopDeployment", running); len(got) != 1 {
		t.Errorf("StopDeployment calls = %v", got)
	}
}

// TestE2E_RestartBetweenCommandAndClick: nothing a click needs lives only in
// the process that posted the confirmation.
func TestE2E_RestartBetweenCommandAndClick(t *testing.T) {
	w := newWorld(t)
	first := w.start("bot-1", nil)
	w.command(alice, deploys, running+" rollback")
	conf := w.confirmation(deploys, running)
	if code, _ := first.signal(syscall.SIGTERM); code != 0 {
		t.Fatalf("first bot exited %d", code)
	}
	second := w.start("bot-2", nil)
	w.click(carol, conf, "stop")
	calls := w.waitCalls("StopDeployment", running, 1)
	if r := calls[0].AutoRollbackEnabled; r == nil || !*r {
		t.Errorf("autoRollbackEnabled after restart = %v, want true", r)
	}
	w.threadReply(conf, "is now *Stopped*")
	second.auditLine("final_state", running)
}

// TestE2E_Reconnects: disconnect envelopes and dropped sockets lead to a new
// connection, and the bot keeps working.
func TestE2E_Reconnects(t *testing.T) {
	w := newWorld(t)
	w.start("bot", nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	steps := []struct {
		name  string
		cause func() error
	}{
		{"disconnect refresh_requested", func() error { return w.slack.Disconnect(ctx, "refresh_requested") }},
		{"disconnect warning", func() error { return w.slack.Disconnect(ctx, "warning") }},
		{"dropped socket", func() error { w.slack.DropConnections(); return nil }},
	}
	for i, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			w := w.in(t)
			if err := step.cause(); err != nil {
				t.Fatal(err)
			}
			if err := w.slack.WaitUntil(ctx, "a new connection", func() bool {
				return w.slack.ConnectionsOpened() == i+2 && w.slack.LiveConnections() == 1
			}); err != nil {
				t.Fatal(err)
			}
			waitConnections(t, w, 1)
			w.command(alice, deploys, done)
			w.ephemeral(alice, deploys, "has already completed")
			if n := len(w.calls("GetDeployment", done)); n != i+1 {
				t.Errorf("GetDeployment calls = %d, want %d", n, i+1)
			}
		})
	}
}

// TestE2E_RateLimited: HTTP 429 with Retry-After is waited out, on the Web
// API and when connecting.
func TestE2E_RateLimited(t *testing.T) {
	w := newWorld(t)
	w.slack.FailNext("apps.connections.open", fakeslack.Failure{Status: 429, RetryAfter: 1})
	w.start("bot", nil)

	w.slack.FailNext("chat.postMessage", fakeslack.Failure{Status: 429, RetryAfter: 1})
	start := time.Now()
	w.command(alice, deploys, running)
	w.confirmation(deploys, running)
	if took := time.Since(start); took < time.Second {
		t.Errorf("confirmation posted after %v, before the 1s Retry-After", took)
	}
	if n := w.slack.CallCount("chat.postMessage"); n != 2 {
		t.Errorf("chat.postMessage called %d times, want 2 (one refused, one retried)", n)
	}
	if n := w.slack.CallCount("apps.connections.open"); n != 2 {
		t.Errorf("apps.connections.open called %d times, want 2", n)
	}
}

// TestE2E_MalformedEnvelopes are logged and skipped; the connection stays.
func TestE2E_MalformedEnvelopes(t *testing.T) {
	w := newWorld(t)
	bot := w.start("bot", nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, frame := range []string{
		`{not json`,
		`{"type":"surprise","envelope_id":"env-unknown-1","payload":{}}`,
		`{"type":"slash_commands","envelope_id":"env-bad-1","accepts_response_payload":true,"payload":"oops"}`,
	} {
		if err := w.slack.SendRaw(ctx, []byte(frame), fakeslack.AnyConnection); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"env-unknown-1", "env-bad-1"} {
		if _, err := w.slack.WaitAck(ctx, id); err != nil {
			t.Errorf("envelope %s was not acknowledged: %v", id, err)
		}
	}
	bot.waitLog("malformed JSON skipped", func(l logLine) bool { return l.msg() == "skipped malformed envelope" })
	bot.waitLog("unknown type skipped", func(l logLine) bool {
		return l.msg() == "skipped malformed or unknown envelope" && l.str("envelope_type") == "surprise"
	})
	w.command(alice, deploys, running)
	w.confirmation(deploys, running)
	if n := w.slack.ConnectionsOpened(); n != 1 {
		t.Errorf("connections opened = %d, want the first one kept", n)
	}
}

// TestE2E_GracefulShutdown: SIGTERM lets an in-flight stop finish, tells the
// thread the follow-up ended, and exits 0 within 10 s.
func TestE2E_GracefulShutdown(t *testing.T) {
	w := newWorld(t)
	w.cd.Update(running, func(d *fakecodedeploy.Deployment) {
		d.StopDelay = 2 * time.Second
		d.PollsUntilFinal = 1_000_000
	})
	bot := w.start("bot", nil)
	w.command(alice, deploys, running)
	conf := w.confirmation(deploys, running)
	w.click(alice, conf, "stop")
	bot.auditLine("confirmed", running)

	code, took := bot.signal(syscall.SIGTERM)
	if code != 0 || took > 10*time.Second {
		t.Errorf("exit %d after %v, want 0 within 10s", code, took)
	}
	if took < time.Second {
		t.Errorf("exited after %v, before the in-flight StopDeployment (2s) could answer", took)
	}
	w.threadReply(conf, "CodeDeploy answered *Pending*")
	w.threadReply(conf, "The bot is shutting down and stopped following `d-LGUMS25CC`")
	if got := bot.auditLine("final_state", running).str("outcome"); got != "follow_interrupted" {
		t.Errorf("final_state outcome = %q", got)
	}
}

// TestE2E_ShutdownDoesNotWaitForSlowSlack: work stuck behind Slack (an
// audit post told to retry after 20 s) is cancelled at the end of the grace
// period, and the process still exits within 10 s.
func TestE2E_ShutdownDoesNotWaitForSlowSlack(t *testing.T) {
	w := newWorld(t)
	bot := w.start("bot", map[string]string{"STOPDEPLOY_AUDIT_CHANNEL": audit})
	w.slack.FailNext("chat.postMessage", fakeslack.Failure{Status: 429, RetryAfter: 20, Times: 5})
	w.command(mallory, deploys, running)
	w.ephemeral(mallory, deploys, "not allowed")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := w.slack.WaitUntil(ctx, "the audit post to be rate limited", func() bool {
		return w.slack.CallCount("chat.postMessage") >= 1
	}); err != nil {
		t.Fatal(err)
	}
	code, took := bot.signal(syscall.SIGTERM)
	if code != 0 || took > 10*time.Second {
		t.Errorf("exit %d after %v, want 0 within 10s", code, took)
	}
}

func TestE2E_InterruptWhenIdle(t *testing.T) {
	w := newWorld(t)
	bot := w.start("bot", nil)
	if code, took := bot.signal(syscall.SIGINT); code != 0 || took > 10*time.Second {
		t.Errorf("exit %d after %v, want 0 within 10s", code, took)
	}
	bot.waitLog("stopped", func(l logLine) bool { return l.msg() == "stopped" })
}

// TestE2E_BadConfig: the process exits non-zero within 5 s, naming the
// variable, and never printing a token.
func TestE2E_BadConfig(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"app token missing", map[string]string{"SLACK_APP_TOKEN": unset}, "SLACK_APP_TOKEN"},
		{"app token empty", map[string]string{"SLACK_APP_TOKEN": ""}, "SLACK_APP_TOKEN: is empty"},
		{"bot token in the app token", map[string]string{"SLACK_APP_TOKEN": botToken}, "SLACK_APP_TOKEN: must be an app-level token starting with xapp-"},
		{"bot token missing", map[string]string{"SLACK_BOT_TOKEN": unset}, "SLACK_BOT_TOKEN"},
		{"user token as bot token", map[string]string{"SLACK_BOT_TOKEN": "xoxp-1234-5678-usertokensecret"}, "SLACK_BOT_TOKEN: must be a bot token starting with xoxb-"},
		{"app token as bot token", map[string]string{"SLACK_BOT_TOKEN": appToken}, "SLACK_BOT_TOKEN: must be a bot token"},
		{"bad API URL", map[string]string{"SLACK_API_URL": "ftp://slack.example/"}, "SLACK_API_URL: must be an http(s) URL"},
		{"bad duration", map[string]string{"STOPDEPLOY_CONFIRM_TIMEOUT": "ten minutes"}, "STOPDEPLOY_CONFIRM_TIMEOUT: is not a valid Go duration"},
		{"negative duration", map[string]string{"STOPDEPLOY_FOLLOW_INTERVAL": "-1s"}, "STOPDEPLOY_FOLLOW_INTERVAL: must be a positive duration"},
		{"sub-second confirmation", map[string]string{"STOPDEPLOY_CONFIRM_TIMEOUT": "500ms"}, "STOPDEPLOY_CONFIRM_TIMEOUT: must be at least 1s"},
		{"interval beyond timeout", map[string]string{"STOPDEPLOY_FOLLOW_INTERVAL": "1h"}, "STOPDEPLOY_FOLLOW_INTERVAL: is longer than STOPDEPLOY_FOLLOW_TIMEOUT"},
		{"bad boolean", map[string]string{"STOPDEPLOY_REQUIRE_SECOND_APPROVER": "yes please"}, "STOPDEPLOY_REQUIRE_SECOND_APPROVER: is not a valid boolean"},
		{"nobody allowed", map[string]string{"STOPDEPLOY_ALLOWED_USERS": unset, "STOPDEPLOY_ALLOWED_GROUPS": " , "}, "STOPDEPLOY_ALLOWED_USERS: and STOPDEPLOY_ALLOWED_GROUPS are both empty"},
		{"user name instead of ID", map[string]string{"STOPDEPLOY_ALLOWED_USERS": "U0ALICE, @bob"}, `STOPDEPLOY_ALLOWED_USERS: "@bob" is not an ID`},
		{"group name instead of ID", map[string]string{"STOPDEPLOY_ALLOWED_GROUPS": "oncall"}, "STOPDEPLOY_ALLOWED_GROUPS:"},
		{"channel name instead of ID", map[string]string{"STOPDEPLOY_ALLOWED_CHANNELS": "#deploys"}, "STOPDEPLOY_ALLOWED_CHANNELS:"},
		{"audit channel name", map[string]string{"STOPDEPLOY_AUDIT_CHANNEL": "#audit"}, "STOPDEPLOY_AUDIT_CHANNEL: must be a channel ID"},
		{"bad log level", map[string]string{"LOG_LEVEL": "verbose"}, "LOG_LEVEL: must be debug, info, warn or error"},
		{"bad log format", map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT: must be json or console"},
		{"no AWS region", map[string]string{"AWS_REGION": unset}, "AWS_REGION: is not set"},
		{"revoked app token", map[string]string{"SLACK_APP_TOKEN": "xapp-1-A0STOPDEPLOY-1-revokedsecret"}, "invalid_auth"},
	}
	w := newWorld(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := w.in(t)
			p := w.spawn(tt.name, tt.env)
			start := time.Now()
			code := p.wait(5 * time.Second)
			if code == 0 {
				t.Errorf("exit code 0 after %v, want non-zero", time.Since(start))
			}
			stderr := p.errOut.text()
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.want)
			}
			for _, secret := range []string{"usertokensecret", "revokedsecret"} {
				if strings.Contains(stderr+p.out.text(), secret) {
					t.Errorf("output contains the token %q", secret)
				}
			}
		})
	}
}

func waitConnections(t testing.TB, w *world, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := w.slack.WaitConnections(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// TestE2E_LogFormatAndLevel: LOG_FORMAT=console writes text for people,
// LOG_LEVEL=warn keeps info lines out; both keep tokens out.
func TestE2E_LogFormatAndLevel(t *testing.T) {
	w := newWorld(t)
	console := w.spawn("console", map[string]string{"LOG_FORMAT": "console", "LOG_LEVEL": "info"})
	waitConnections(t, w, 1)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := console.out.until(ctx, func() bool { return strings.Contains(console.out.text(), "connected to Slack") }); err != nil {
		t.Fatalf("console output never said it connected: %v\n%s", err, console.out.text())
	}
	for line := range strings.Lines(console.out.text()) {
		if strings.HasPrefix(line, "{") || !strings.Contains(line, "INF") {
			t.Errorf("console line %q is not a human-readable info line", line)
		}
	}
	if code, _ := console.signal(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d", code)
	}

	quiet := w.spawn("quiet", map[string]string{"LOG_LEVEL": "warn"})
	if err := w.slack.WaitUntil(ctx, "the quiet bot's connection", func() bool {
		return w.slack.ConnectionsOpened() == 2 && w.slack.LiveConnections() == 1
	}); err != nil {
		t.Fatal(err)
	}
	waitConnections(t, w, 1)
	w.command(mallory, deploys, running) // an info-level audit line
	w.ephemeral(mallory, deploys, "not allowed")
	if err := w.slack.SendRaw(ctx, []byte(`{not json`), fakeslack.AnyConnection); err != nil {
		t.Fatal(err)
	}
	quiet.waitLog("a warning", func(l logLine) bool { return l.msg() == "skipped malformed envelope" })
	for _, l := range quiet.out.parsed() {
		if l.str("level") != "warn" && l.str("level") != "error" {
			t.Errorf("LOG_LEVEL=warn printed a %s line: %v", l.str("level"), l)
		}
	}
}
