package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

// testPolicy is the policy of the end-to-end policy tests:
//   - production: Alice or Bob (@oncall) may ask; one approval from another
//     of Alice, Bob or Carol.
//   - critical: Alice asks, two of Bob, Carol and Mallory approve.
//   - staging: Carol or Alice stop it alone.
//   - anything else: no rule.
const testPolicy = `rules:
  - name: production
    deployment_groups: [production]
    requesters: {users: [U0ALICE], groups: [S0ONCALL]}
    approvers: {users: [U0ALICE, U0CAROL], groups: [S0ONCALL]}
    approvals: 1
  - name: critical
    deployment_groups: [critical]
    requesters: {users: [U0ALICE]}
    approvers: {users: [U0BOB, U0CAROL, U0MALLORY]}
    approvals: 2
  - name: staging
    deployment_groups: ["staging*"]
    requesters: {users: [U0CAROL, U0ALICE]}
`

const (
	staging  = "d-STAGING01"
	critical = "d-CRITICAL1"
	dev      = "d-DEVELOP01"
)

// policyWorld is the world with testPolicy as the bot's policy, and a
// running deployment in each of its groups.
func policyWorld(t *testing.T) (*world, map[string]string) {
	t.Helper()
	w := newWorld(t)
	for id, group := range map[string]string{staging: "staging", critical: "critical", dev: "dev"} {
		w.cd.Put(fakecodedeploy.Deployment{ID: id, Application: "checkout", Group: group, Status: "InProgress", Creator: "user"})
	}
	return w, policyEnv(t, testPolicy)
}

// policyEnv writes yaml to a file and returns the environment that makes it
// the bot's policy, the allow-list variables unset.
func policyEnv(t *testing.T, yaml string) map[string]string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"STOPDEPLOY_POLICY_FILE": path, "STOPDEPLOY_ALLOWED_USERS": unset, "STOPDEPLOY_ALLOWED_GROUPS": unset}
}

// noStop fails the test if id was stopped.
func (w *world) noStop(id string) {
	w.t.Helper()
	if calls := w.calls("StopDeployment", id); len(calls) != 0 {
		w.t.Errorf("StopDeployment calls for %s = %v, want none", id, calls)
	}
}

// approvals waits until the card of msg says "Approvals: want".
func (w *world) approvals(msg fakeslack.Message, want string) fakeslack.Message {
	w.t.Helper()
	return w.waitMessage("card with approvals "+want, func(m fakeslack.Message) bool {
		return m.Channel == msg.Channel && m.TS == msg.TS && strings.Contains(string(m.Blocks), "*Approvals:* "+want)
	})
}

func TestE2E_Policy_WhoMayStopWhat(t *testing.T) {
	w, env := policyWorld(t)
	bot := w.start("bot", env)

	t.Run("staging stopped by an engineer with no approval", func(t *testing.T) {
		w, bot := w.in(t), bot.in(t)
		w.command(carol, deploys, staging)
		conf := w.confirmation(deploys, staging)
		if !strings.Contains(string(conf.Blocks), "Rule *staging*") || strings.Contains(string(conf.Blocks), "Approvals") {
			t.Errorf("staging card = %s", conf.Blocks)
		}
		w.click(carol, conf, "stop")
		w.waitCalls("StopDeployment", staging, 1)
		if got := bot.auditLine("confirmed", staging).str("detail"); !strings.Contains(got, `rule "staging"`) {
			t.Errorf("confirmed detail = %q", got)
		}
	})

	t.Run("production refused to the same engineer, privately", func(t *testing.T) {
		w, bot := w.in(t), bot.in(t)
		w.command(carol, deploys, running)
		w.ephemeral(carol, deploys, "You are not allowed to stop deployments under rule *production* (checkout / production): you are not one of its requesters.")
		if got := bot.auditLine("refused", running).str("outcome"); got != "user_not_allowed" {
			t.Errorf("refused outcome = %q", got)
		}
		for _, m := range w.publicMessages(deploys) {
			if strings.Contains(m.Text, mention(carol)+" asks to stop deployment "+running) {
				t.Errorf("a refused request was posted: %q", m.Text)
			}
		}
		w.noStop(running)
	})

	t.Run("no rule matches", func(t *testing.T) {
		w, bot := w.in(t), bot.in(t)
		w.command(alice, deploys, dev)
		w.ephemeral(alice, deploys, "No rule lets anyone stop checkout / dev (default, us-east-1) from Slack.")
		if got := bot.auditLine("refused", dev).str("outcome"); got != "no_rule" {
			t.Errorf("refused outcome = %q", got)
		}
	})

	t.Run("production asked by an SRE, refused presses, approved by another", func(t *testing.T) {
		w, bot := w.in(t), bot.in(t)
		w.command(alice, deploys, running)
		conf := w.confirmation(deploys, running)
		for _, want := range []string{"Rule *production*", "*Approvals:* 0 of 1"} {
			if !strings.Contains(string(conf.Blocks), want) {
				t.Errorf("card lacks %q: %s", want, conf.Blocks)
			}
		}
		if b := conf.Buttons(); len(b) != 2 || b[0].ActionID != "approve" || b[0].Text != "Approve" || b[0].Style != "danger" {
			t.Fatalf("buttons = %+v, want Approve (danger) and Cancel", b)
		}
		w.click(alice, conf, "approve")
		w.ephemeral(alice, deploys, "You asked for this, so your approval does not count: rule *production* needs 1 approval from someone else.")
		w.click(mallory, conf, "approve")
		w.ephemeral(mallory, deploys, "You are not allowed to approve stops under rule *production*: you are not one of its approvers.")
		for _, outcome := range []string{"own_request", "not_approver"} {
			bot.waitLog("refused "+outcome, func(l logLine) bool {
				return l.str("event") == "refused" && l.str("deployment") == running && l.str("outcome") == outcome
			})
		}
		if len(w.current(conf).Buttons()) != 2 {
			t.Error("a refused press removed the buttons")
		}
		w.noStop(running)

		w.click(bob, conf, "approve")
		w.waitCalls("StopDeployment", running, 1)
		w.threadReply(conf, "CodeDeploy answered")
		approved := bot.auditLine("approved", running)
		if approved.str("user") != bob || approved.str("account") != "default" || approved.str("region") != "us-east-1" {
			t.Errorf("approved audit line = %v", approved)
		}
		if got := len(w.calls("StopDeployment", running)); got != 1 {
			t.Errorf("StopDeployment calls = %d, want 1", got)
		}
	})
}

// TestE2E_Policy_TwoOfThree: distinct approvers count once each, a repeat
// is refused, and presses at the same instant on one process lose no
// approval and stop once.
func TestE2E_Policy_TwoOfThree(t *testing.T) {
	w, env := policyWorld(t)
	bot := w.start("bot", env)

	t.Run("duplicate", func(t *testing.T) {
		w, bot := w.in(t), bot.in(t)
		w.command(alice, deploys, critical)
		conf := w.confirmation(deploys, critical)
		w.click(bob, conf, "approve")
		w.ephemeral(bob, deploys, "Your approval is recorded: 1 of 2: <@U0BOB>.")
		w.threadReply(conf, "<@U0BOB> approved the stop of `d-CRITICAL1` under rule *critical*: 1 of 2: <@U0BOB>.")
		conf = w.approvals(conf, "1 of 2: <@U0BOB>")
		w.click(bob, conf, "approve")
		w.ephemeral(bob, deploys, "You have already approved this, and each person counts once")
		w.noStop(critical)

		// Carol and Mallory press at once, on the card as it is now.
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		var ids []string
		for _, u := range []string{carol, mallory} {
			id, err := w.slack.ClickButton(ctx, fakeslack.Click{UserID: u, ChannelID: conf.Channel, MessageTS: conf.TS, ActionID: "approve"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		for _, id := range ids {
			if _, err := w.slack.WaitAck(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		w.waitCalls("StopDeployment", critical, 1)
		w.waitMessage("the second press told it changed nothing", func(m fakeslack.Message) bool {
			return m.Ephemeral && (m.VisibleTo == carol || m.VisibleTo == mallory) && strings.Contains(m.Text, "already pressed Stop")
		})
		bot.waitLog("stop result", func(l logLine) bool { return l.str("event") == "stop_result" && l.str("deployment") == critical })
		if got := len(w.calls("StopDeployment", critical)); got != 1 {
			t.Errorf("StopDeployment calls = %d, want 1", got)
		}
	})

	t.Run("first presses at once lose no approval", func(t *testing.T) {
		w, bot := w.in(t), bot.in(t)
		w.cd.Put(fakecodedeploy.Deployment{ID: "d-CRITICAL2", Application: "checkout", Group: "critical", Status: "InProgress"})
		w.command(alice, deploys, "d-CRITICAL2")
		conf := w.confirmation(deploys, "d-CRITICAL2")
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		// Both clicks carry the value with no approvals: the second must
		// still find the first's approval.
		value := conf.Buttons()[0].Value
		var ids []string
		for _, u := range []string{bob, carol} {
			id, err := w.slack.ClickButton(ctx, fakeslack.Click{UserID: u, ChannelID: conf.Channel, MessageTS: conf.TS, ActionID: "approve", ForgedValue: &value})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		for _, id := range ids {
			if _, err := w.slack.WaitAck(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		w.waitCalls("StopDeployment", "d-CRITICAL2", 1)
		untilAll(t, "approvals audited from Bob and Carol", func() bool {
			users := map[string]bool{}
			for _, l := range bot.auditsOf("d-CRITICAL2", "approved") {
				users[l.str("user")] = true
			}
			return users[bob] && users[carol]
		}, bot)
	})
}

// TestE2E_Policy_ApprovalAcrossProcesses: the approvals so far travel in
// the signed message, so the second approval may land on another process,
// or on the same app after a restart.
func TestE2E_Policy_ApprovalAcrossProcesses(t *testing.T) {
	w, env := policyWorld(t)
	first := w.start("first", env)
	second := w.start("second", env)

	w.command(alice, deploys, critical, fakeslack.ToConnection(0))
	conf := w.confirmation(deploys, critical)
	w.click(bob, conf, "approve", fakeslack.ToConnection(0))
	conf = w.approvals(conf, "1 of 2: <@U0BOB>")
	first.auditLine("approved", critical)
	w.click(carol, conf, "approve", fakeslack.ToConnection(1))
	w.waitCalls("StopDeployment", critical, 1)
	second.auditLine("confirmed", critical)

	t.Run("restart in the middle", func(t *testing.T) {
		w := w.in(t)
		w.cd.Put(fakecodedeploy.Deployment{ID: "d-CRITICAL3", Application: "checkout", Group: "critical", Status: "InProgress"})
		w.command(alice, deploys, "d-CRITICAL3", fakeslack.ToConnection(0))
		conf := w.confirmation(deploys, "d-CRITICAL3")
		w.click(bob, conf, "approve", fakeslack.ToConnection(0))
		conf = w.approvals(conf, "1 of 2: <@U0BOB>")
		if code, _ := first.in(t).signal(syscall.SIGTERM); code != 0 {
			t.Fatalf("first exited %d", code)
		}
		if code, _ := second.in(t).signal(syscall.SIGTERM); code != 0 {
			t.Fatalf("second exited %d", code)
		}
		third := w.start("third", env)
		w.click(mallory, conf, "approve")
		w.waitCalls("StopDeployment", "d-CRITICAL3", 1)
		third.in(t).auditLine("confirmed", "d-CRITICAL3")
	})
}

// TestE2E_Policy_ExpiryCoversTheApproval: an approval begun before the
// confirmation timeout cannot finish after it.
func TestE2E_Policy_ExpiryCoversTheApproval(t *testing.T) {
	w, env := policyWorld(t)
	env["STOPDEPLOY_CONFIRM_TIMEOUT"] = "2s"
	first := w.start("first", env)
	w.command(alice, deploys, critical)
	conf := w.confirmation(deploys, critical)
	w.click(bob, conf, "approve")
	conf = w.approvals(conf, "1 of 2: <@U0BOB>")
	// Killed: no process sweeps the card at its expiry, so the buttons are
	// still there to press.
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.wait(10 * time.Second)
	second := w.start("second", env)
	waitPast(t, expiryOf(t, conf))
	w.click(carol, conf, "approve")
	w.threadReply(conf, "This confirmation expired")
	second.auditLine("expired", critical)
	w.noStop(critical)
}

// TestE2E_Policy_TamperedValues: a button value changed in any way, or
// from before signing, is refused with no AWS call.
func TestE2E_Policy_TamperedValues(t *testing.T) {
	w, env := policyWorld(t)
	bot := w.start("bot", env)
	w.command(alice, deploys, critical)
	conf := w.confirmation(deploys, critical)
	value := conf.Buttons()[0].Value
	c, err := signingKey.Decode(value)
	if err != nil {
		t.Fatal(err)
	}
	expiry := strconv.FormatInt(c.ExpiresAt.Unix(), 10)
	gets := len(w.calls("GetDeployment", critical))
	swap := func(old, new string) string {
		if !strings.Contains(value, old) {
			t.Fatalf("value %q lacks %q", value, old)
		}
		return strings.Replace(value, old, new, 1)
	}
	for _, tt := range []struct{ name, value string }{
		{"expiry moved", swap(" "+expiry+" ", " "+strconv.FormatInt(c.ExpiresAt.Unix()+3600, 10)+" ")},
		{"approver added", swap(" critical 2 - ", " critical 2 U0BOB,U0CAROL ")},
		{"approvals lowered", swap(" critical 2 ", " critical 0 ")},
		{"deployment changed", swap(critical, running)},
		{"channel changed", swap(" "+deploys+" ", " "+random+" ")},
		{"rule changed", swap(" critical ", " staging ")},
		{"unsigned v1", "v1 " + critical + " rollback " + alice + " " + expiry},
		{"unsigned v2", "v2 " + critical + " rollback " + alice + " " + deploys + " " + expiry},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := w.in(t)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			id, err := w.slack.ClickButton(ctx, fakeslack.Click{UserID: carol, ChannelID: deploys, MessageTS: conf.TS, ActionID: "approve", ForgedValue: &tt.value})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.slack.WaitAck(ctx, id); err != nil {
				t.Fatal(err)
			}
			w.ephemeral(carol, deploys, "I cannot act on this button.")
		})
	}
	refusals := func() (n int) {
		for _, l := range bot.out.parsed() {
			if l.str("event") == "refused" {
				n++
			}
		}
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_ = bot.out.until(ctx, func() bool { return refusals() >= 8 }) // the audit line follows the answer
	refused := 0
	for _, l := range bot.out.parsed() {
		if l.str("event") == "refused" {
			refused++
			if l.str("outcome") != "bad_signature" {
				t.Errorf("refused outcome = %q, want bad_signature", l.str("outcome"))
			}
		}
	}
	if refused != 8 {
		t.Errorf("refused audit lines = %d, want 8", refused)
	}
	w.noStop(critical)
	w.noStop(running)
	if n := len(w.calls("GetDeployment", critical)); n != gets {
		t.Errorf("GetDeployment calls %d → %d: a refused value reached AWS", gets, n)
	}
	if len(w.current(conf).Buttons()) != 2 {
		t.Error("a refused value removed the buttons")
	}
}

// TestE2E_Policy_BadFiles: a policy the bot cannot trust stops it at start,
// within 5 s, naming the file, the line and the key.
func TestE2E_Policy_BadFiles(t *testing.T) {
	w := newWorld(t)
	rule := "rules:\n  - name: production\n    deployment_groups: [prod]\n    requesters: {groups: [S0SRE]}\n"
	for _, tt := range []struct{ name, yaml, want string }{
		{"unknown key", rule + "    aprovals: 1\n", ":5: rules[0].aprovals: unknown key (did you mean approvals?)"},
		{"bad glob", strings.Replace(rule, "[prod]", `["prod["]`, 1), ":3: rules[0].deployment_groups[0]:"},
		{"nobody can request", "rules:\n  - name: production\n    deployment_groups: [prod]\n", ":2: rules[0].requesters: missing"},
		{"duplicate name", rule + "  - name: production\n    deployment_groups: [x]\n    requesters: {users: [U0ALICE]}\n", ":5: rules[1].name:"},
		{"negative approvals", rule + "    approvals: -1\n", ":5: rules[0].approvals:"},
		{"a name, not an ID", strings.Replace(rule, "S0SRE", "sre", 1), ":4: rules[0].requesters.groups[0]:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := w.in(t)
			env := policyEnv(t, tt.yaml)
			p := w.spawn("bot", env)
			if code := p.wait(5 * time.Second); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			if got := p.errOut.text(); !strings.Contains(got, env["STOPDEPLOY_POLICY_FILE"]+tt.want) {
				t.Errorf("stderr = %q, want %q after the file name", got, tt.want)
			}
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		w := w.in(t)
		missing := filepath.Join(t.TempDir(), "nope.yaml")
		p := w.spawn("bot", map[string]string{"STOPDEPLOY_POLICY_FILE": missing, "STOPDEPLOY_ALLOWED_USERS": unset, "STOPDEPLOY_ALLOWED_GROUPS": unset})
		if code := p.wait(5 * time.Second); code != 1 {
			t.Fatalf("exit code %d, want 1", code)
		}
		if got := p.errOut.text(); !strings.Contains(got, missing+": cannot open the file") {
			t.Errorf("stderr = %q", got)
		}
	})
	for _, v := range []string{"STOPDEPLOY_ALLOWED_USERS", "STOPDEPLOY_ALLOWED_GROUPS", "STOPDEPLOY_ALLOWED_CHANNELS", "STOPDEPLOY_REQUIRE_SECOND_APPROVER"} {
		t.Run("with "+v, func(t *testing.T) {
			w := w.in(t)
			env := policyEnv(t, rule)
			env[v] = map[string]string{"STOPDEPLOY_ALLOWED_USERS": alice, "STOPDEPLOY_ALLOWED_GROUPS": "S0ONCALL",
				"STOPDEPLOY_ALLOWED_CHANNELS": deploys, "STOPDEPLOY_REQUIRE_SECOND_APPROVER": "true"}[v]
			p := w.spawn("bot", env)
			if code := p.wait(5 * time.Second); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			if got := p.errOut.text(); !strings.Contains(got, "STOPDEPLOY_POLICY_FILE: is set together with "+v) {
				t.Errorf("stderr = %q", got)
			}
		})
	}
}

func mention(user string) string { return "<@" + user + ">" }

// TestE2E_PolicyCommands: `policy check` and `policy explain` answer
// offline, from the file and -member alone.
func TestE2E_PolicyCommands(t *testing.T) {
	w := newWorld(t)
	// No Slack and no AWS: any call would fail.
	env := map[string]string{"SLACK_API_URL": "http://127.0.0.1:1/api/", "AWS_ENDPOINT_URL_CODEDEPLOY": "http://127.0.0.1:1"}
	bad := policyEnv(t, "rules:\n  - name: x\n    deployment_groups: [x]\n    requesters: {users: [alice]}\n")["STOPDEPLOY_POLICY_FILE"]
	good := policyEnv(t, testPolicy)["STOPDEPLOY_POLICY_FILE"]
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		code int
		out  []string // on stdout, or stderr when code is 1
	}{
		{"check the example", []string{"policy", "check", "policy.example.yaml"}, nil, 0,
			[]string{"OK\n", "1. production (line 32)", "Stops after 1 approval by an approver other than the requester.", "2. staging (line 47)"}},
		{"check the configured file", []string{"policy", "check"}, map[string]string{"STOPDEPLOY_POLICY_FILE": good}, 0,
			[]string{"3 rules", "2. critical"}},
		{"check a bad file", []string{"policy", "check", bad}, nil, 1, []string{bad + ":4: rules[0].requesters.users[0]:"}},
		{"explain, offline", []string{"policy", "explain", "-file", good, "-user", bob, "-application", "checkout", "-group", "production",
			"-region", "us-east-1", "-channel", deploys, "-member", "S0ONCALL=" + bob}, nil, 0,
			[]string{`checkout / production (default, us-east-1): rule "production" decides (line 2).`,
				"May U0BOB request a stop in C0DEPLOYS? Yes.", "May U0BOB approve someone else's request? Yes.", "Stops after 1 approval"}},
		{"explain, a user who may not", []string{"policy", "explain", "-file", good, "-user", mallory, "-application", "checkout", "-group", "critical",
			"-region", "us-east-1"}, nil, 0,
			[]string{`rule "critical" decides`, "May U0MALLORY request a stop (channel not checked)? No (user_not_allowed)", "May U0MALLORY approve someone else's request? Yes."}},
		{"explain, no rule", []string{"policy", "explain", "-file", good, "-user", alice, "-application", "checkout", "-group", "dev", "-region", "us-east-1"}, nil, 0,
			[]string{"no rule matches, so nobody can stop it from Slack"}},
		{"explain needs Slack for a group not given", []string{"policy", "explain", "-file", good, "-user", bob, "-application", "checkout",
			"-group", "production", "-region", "us-east-1"}, map[string]string{"SLACK_BOT_TOKEN": unset}, 1,
			[]string{"S0ONCALL, not given with -member, so Slack must be asked", "SLACK_BOT_TOKEN"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := w.in(t)
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range tt.env {
				e[k] = v
			}
			p := w.spawn("stopdeploy", e, tt.args...)
			if code := p.wait(10 * time.Second); code != tt.code {
				t.Fatalf("exit code %d, want %d; stdout %q stderr %q", code, tt.code, p.out.text(), p.errOut.text())
			}
			got := p.out.text()
			if tt.code != 0 {
				got = p.errOut.text()
			}
			for _, want := range tt.out {
				if !strings.Contains(got, want) {
					t.Errorf("output lacks %q:\n%s", want, got)
				}
			}
		})
	}
	if calls := w.slack.Calls(); len(calls) != 0 {
		t.Errorf("Slack calls = %v, want none", calls)
	}
}
