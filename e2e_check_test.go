package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

// TestE2E_Check: `stopdeploy check` against the fakes, all good and each failure.
func TestE2E_Check(t *testing.T) {
	closedPort := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}()
	tests := []struct {
		name   string
		scopes []string // granted to the bot token; default: the fake's
		setup  func(w *world)
		env    map[string]string
		ok     bool
		want   []string
	}{
		{name: "all good", ok: true, want: []string{
			"OK    configuration",
			"OK    slack bot token     bot stopdeploy (UBOTSTOPD) in team Fake",
			"OK    slack bot scopes",
			"OK    slack app token",
			"OK    user group S0ONCALL  1 members",
			"OK    aws codedeploy default/us-east-1  credentials work; codedeploy:GetDeployment and codedeploy:StopDeployment are allowed in default/us-east-1",
		}},
		{name: "bad configuration", env: map[string]string{"STOPDEPLOY_CONFIRM_TIMEOUT": "soon"},
			want: []string{"FAIL  configuration  STOPDEPLOY_CONFIRM_TIMEOUT: is not a valid Go duration"}},
		{name: "bot token not accepted", env: map[string]string{"SLACK_BOT_TOKEN": "xoxb-0000-1111-wrongbottoken"},
			want: []string{"FAIL  slack bot token", "auth.test failed: invalid_auth. Fix: copy the Bot User OAuth Token", "OK  slack app token", "OK  aws codedeploy"}},
		{name: "app token not accepted", env: map[string]string{"SLACK_APP_TOKEN": "xapp-1-A0-2-wrongapptoken"},
			want: []string{"FAIL  slack app token", "invalid_auth. Fix: create an app-level token with connections:write"}},
		{name: "missing scope", scopes: []string{"commands", "chat:write"},
			want: []string{"FAIL  slack bot scopes", "missing usergroups:read (usergroups.users.list for STOPDEPLOY_ALLOWED_GROUPS)", "reinstall the app"}},
		{name: "unknown user group", env: map[string]string{"STOPDEPLOY_ALLOWED_GROUPS": "S0ONCALL,S0NOSUCH"},
			want: []string{"OK    user group S0ONCALL", "FAIL  user group S0NOSUCH", "no_such_subteam. Fix: check the ID in STOPDEPLOY_ALLOWED_GROUPS"}},
		{name: "AWS denies GetDeployment", setup: func(w *world) {
			w.cd.Deny("", "", fakecodedeploy.OpGetDeployment)
		}, want: []string{"FAIL  aws codedeploy", "AWS refused codedeploy:GetDeployment (AccessDeniedException). Fix: attach iam-policy.json"}},
		{name: "AWS denies StopDeployment", setup: func(w *world) {
			w.cd.Deny("", "", fakecodedeploy.OpStopDeployment)
		}, want: []string{"FAIL  aws codedeploy", "AWS refused codedeploy:StopDeployment (AccessDeniedException)", `only with "Resource": "*"`}},
		{name: "AWS unreachable", env: map[string]string{"AWS_ENDPOINT_URL_CODEDEPLOY": closedPort, "AWS_MAX_ATTEMPTS": "1"},
			want: []string{"FAIL  aws codedeploy", "GetDeployment failed", "Fix: check AWS_REGION, the credentials, and network access"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, func(o *fakeslack.Options) {
				if tt.scopes != nil {
					o.Scopes = tt.scopes
				}
			})
			if tt.setup != nil {
				tt.setup(w)
			}
			p := w.spawn("check", tt.env, "check")
			code := p.wait(20 * time.Second)
			out := squeeze(p.out.text())
			if (code == 0) != tt.ok {
				t.Errorf("exit code %d, want success %v; output:\n%s%s", code, tt.ok, out, p.errOut.text())
			}
			for _, want := range tt.want {
				if want = squeeze(want); !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			// At most one GetDeployment, and a StopDeployment only of the
			// ID that GetDeployment had just said does not exist.
			calls := w.cd.Calls()
			if len(calls) > 2 || (len(calls) >= 1 && calls[0].Target != "GetDeployment") {
				t.Errorf("check made CodeDeploy calls %v, want one GetDeployment and at most one StopDeployment", calls)
			}
			if len(calls) == 2 {
				if calls[1].Target != "StopDeployment" || calls[1].DeploymentID != calls[0].DeploymentID || calls[0].Result != "DeploymentDoesNotExistException" {
					t.Errorf("check's second call %v after %v: want StopDeployment of the same ID, only after DeploymentDoesNotExistException", calls[1], calls[0])
				}
			}
			if tt.ok && len(calls) != 2 {
				t.Errorf("a passing check made calls %v: it must prove StopDeployment too", calls)
			}
			for _, c := range w.slack.Calls() {
				if strings.HasPrefix(c, "chat.") {
					t.Errorf("check posted to Slack: %s", c)
				}
			}
		})
	}
}

// TestE2E_Help: usage and the whole configuration table.
func TestE2E_Help(t *testing.T) {
	w := newWorld(t)
	for _, args := range [][]string{{"help"}, {"-h"}} {
		p := w.spawn("help", nil, args...)
		if code := p.wait(10 * time.Second); code != 0 {
			t.Errorf("%v exited %d", args, code)
		}
		out := p.out.text()
		for _, want := range []string{"stopdeploy check", "stopdeploy sandbox", "SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "SLACK_API_URL",
			"STOPDEPLOY_ALLOWED_USERS", "STOPDEPLOY_ALLOWED_GROUPS", "STOPDEPLOY_ALLOWED_CHANNELS", "STOPDEPLOY_REQUIRE_SECOND_APPROVER",
			"STOPDEPLOY_CONFIRM_TIMEOUT", "STOPDEPLOY_FOLLOW_INTERVAL", "STOPDEPLOY_FOLLOW_TIMEOUT", "STOPDEPLOY_AUDIT_CHANNEL",
			"STOPDEPLOY_HTTP_ADDR", "LOG_LEVEL", "LOG_FORMAT", "AWS_ENDPOINT_URL_CODEDEPLOY"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v output lacks %q", args, want)
			}
		}
	}
	p := w.spawn("unknown", nil, "frobnicate")
	if code := p.wait(10 * time.Second); code == 0 {
		t.Error("an unknown subcommand exited 0")
	}
	if !strings.Contains(p.errOut.text(), `unknown command "frobnicate"`) {
		t.Errorf("stderr = %q", p.errOut.text())
	}
}

// TestE2E_HealthAndMetrics: /healthz follows the socket, /metrics counts
// what the bot did.
func TestE2E_HealthAndMetrics(t *testing.T) {
	w := newWorld(t)
	bot := w.start("bot", map[string]string{"STOPDEPLOY_HTTP_ADDR": "127.0.0.1:0"})
	addr := bot.waitLog("serving health and metrics", func(l logLine) bool { return l.msg() == "serving health and metrics" }).str("addr")
	base := "http://" + addr

	if code, _ := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d while connected", code)
	}

	w.command(mallory, deploys, running)
	w.ephemeral(mallory, deploys, "not allowed")
	w.command(alice, deploys, "help")
	w.ephemeral(alice, deploys, "Usage")
	w.command(alice, noBot, running) // chat.postMessage fails: not_in_channel
	w.ephemeral(alice, noBot, "I am not a member")
	w.command(alice, deploys, running)
	conf := w.confirmation(deploys, running)
	w.click(bob, conf, "stop")
	w.threadReply(conf, "is now *Stopped*")

	_, body := httpGet(t, base+"/metrics")
	for _, want := range []string{
		`stopdeploy_commands_total{outcome="confirmation_posted"} 1`,
		`stopdeploy_commands_total{outcome="refused"} 1`,
		`stopdeploy_commands_total{outcome="usage"} 1`,
		`stopdeploy_commands_total{outcome="bot_not_in_channel"} 1`,
		`stopdeploy_stops_total{account="default",region="us-east-1",result="Pending"} 1`,
		`stopdeploy_refusals_total{reason="user_not_allowed"} 1`,
		`stopdeploy_ack_seconds_count 5`,
		`stopdeploy_socket_connects_total 1`,
		`stopdeploy_api_errors_total{api="slack",code="not_in_channel",method="chat.postMessage"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Keep the bot from reconnecting for a while, and watch /healthz go down and up.
	w.slack.FailNext("apps.connections.open", fakeslack.Failure{Status: 429, RetryAfter: 2})
	w.slack.DropConnections()
	waitHealth(t, base, http.StatusServiceUnavailable)
	waitHealth(t, base, http.StatusOK)
	if _, body := httpGet(t, base+"/metrics"); !strings.Contains(body, "stopdeploy_socket_connects_total 2") {
		t.Error("/metrics does not count the reconnect")
	}
}

// squeeze collapses runs of spaces, so tests do not depend on column widths.
func squeeze(s string) string {
	return regexp.MustCompile(` +`).ReplaceAllString(s, " ")
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitHealth polls /healthz until it answers want: an outside observer has
// no other way to see the state, as a load balancer would.
func waitHealth(t *testing.T, base string, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := 0
	for {
		if code, _ := httpGet(t, base+"/healthz"); code == want {
			return
		} else {
			last = code
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/healthz stayed %d, want %d", last, want)
		case <-tick.C:
		}
	}
}

// TestE2E_Version: `stopdeploy version` (and -version) print the module
// version and, for a binary built from a git checkout, its revision.
func TestE2E_Version(t *testing.T) {
	w := newWorld(t)
	w.binary = botBinary(t) // go build, as a user builds it: it stamps the VCS revision
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	for _, arg := range []string{"version", "-version"} {
		p := w.spawn("version", nil, arg)
		if code := p.wait(20 * time.Second); code != 0 {
			t.Fatalf("%s: exit %d: %s", arg, code, p.errOut.text())
		}
		out := p.out.text()
		if !strings.HasPrefix(out, "stopdeploy ") || !strings.Contains(out, "revision "+strings.TrimSpace(string(head))) || !strings.Contains(out, "go1.") {
			t.Errorf("%s printed %q, want the version, the revision %s and the Go version", arg, out, head)
		}
	}
}
