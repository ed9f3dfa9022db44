package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
	"github.com/stopdeploy/stopdeploy/internal/dynalite"
)

const stateTable = "stopdeploy-e2e"

// stateWorld is the world with a state table in dynalite; env points the
// bot at it.
func stateWorld(t *testing.T) (*world, map[string]string, *dynalite.Server) {
	t.Helper()
	w := newWorld(t)
	srv := dynalite.Start(t)
	dynalite.CreateTable(t, srv.Client(t), stateTable)
	w.env["AWS_ENDPOINT_URL_DYNAMODB"] = srv.Endpoint()
	return w, map[string]string{"STOPDEPLOY_STATE_TABLE": stateTable}, srv
}

// press sends clicks at once, each on its own connection, and waits for
// every ack.
func (w *world) press(msg fakeslack.Message, clicks ...fakeslack.Click) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var ids []string
	for i, c := range clicks {
		c.ChannelID, c.MessageTS = msg.Channel, msg.TS
		id, err := w.slack.ClickButton(ctx, c, fakeslack.ToConnection(i%2))
		if err != nil {
			w.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if _, err := w.slack.WaitAck(ctx, id); err != nil {
			w.t.Fatal(err)
		}
	}
}

// TestE2E_State_StopAndCancelAtOnce: Stop on one process and Cancel on
// the other at the same instant: exactly one acts, and the other is told
// who won. Repeated, so either may win.
func TestE2E_State_StopAndCancelAtOnce(t *testing.T) {
	w, env, _ := stateWorld(t)
	w.start("first", env)
	second := w.start("second", env)
	for _, l := range second.out.parsed() {
		if strings.Contains(l.msg(), "STOPDEPLOY_STATE_TABLE is not set") {
			t.Errorf("warned of no state table although one is set: %v", l)
		}
	}
	for round := range 4 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			w := w.in(t)
			id := fmt.Sprintf("d-RACE%05d", round)
			w.cd.Put(fakecodedeploy.Deployment{ID: id, Application: "checkout", Group: "production", Status: "InProgress"})
			w.command(alice, deploys, id, fakeslack.ToConnection(round%2))
			conf := w.confirmation(deploys, id)
			w.press(conf, fakeslack.Click{UserID: bob, ActionID: "stop"}, fakeslack.Click{UserID: alice, ActionID: "cancel"})
			loser := w.waitMessage("the loser told who won", func(m fakeslack.Message) bool {
				return m.Ephemeral && m.Channel == deploys && strings.Contains(m.Text, "your press changed nothing") && w.seen.claim(m)
			})
			outcome := w.waitMessage("the outcome in the thread", func(m fakeslack.Message) bool {
				return m.ThreadTS == conf.TS && (strings.Contains(m.Text, "Cancelled by") || strings.Contains(m.Text, "CodeDeploy answered"))
			})
			stopped := strings.Contains(outcome.Text, "CodeDeploy answered")
			if stopped != (len(w.calls("StopDeployment", id)) > 0) {
				t.Errorf("thread says %q, StopDeployment calls %v", outcome.Text, w.calls("StopDeployment", id))
			}
			if (loser.VisibleTo == bob) != !stopped {
				t.Errorf("%s was told they lost, but the outcome is %q", loser.VisibleTo, outcome.Text)
			}
			for _, m := range w.slack.Messages() {
				if m.ThreadTS == conf.TS && strings.Contains(m.Text, "Cancelled by") == stopped && (strings.Contains(m.Text, "Cancelled by") || strings.Contains(m.Text, "CodeDeploy answered")) {
					t.Errorf("both outcomes in the thread: %q", m.Text)
				}
			}
		})
	}
}

// TestE2E_State_ApprovalsOnTwoProcesses: three presses of a 2-of-3 at once,
// on two processes: no approval lost, exactly one stop.
func TestE2E_State_ApprovalsOnTwoProcesses(t *testing.T) {
	w, env, _ := stateWorld(t)
	for k, v := range policyEnv(t, testPolicy) {
		env[k] = v
	}
	w.cd.Put(fakecodedeploy.Deployment{ID: critical, Application: "checkout", Group: "critical", Status: "InProgress"})
	first := w.start("first", env)
	second := w.start("second", env)
	w.command(alice, deploys, critical)
	conf := w.confirmation(deploys, critical)
	w.press(conf, fakeslack.Click{UserID: bob, ActionID: "approve"}, fakeslack.Click{UserID: carol, ActionID: "approve"},
		fakeslack.Click{UserID: mallory, ActionID: "approve"})
	w.waitCalls("StopDeployment", critical, 1)
	w.threadReply(conf, "CodeDeploy answered")
	untilAll(t, "the two approvals that made the stop audited", func() bool {
		return len(first.auditsOf(critical, "approved"))+len(second.auditsOf(critical, "approved")) >= 2
	}, first, second)
	if n := len(w.calls("StopDeployment", critical)); n != 1 {
		t.Errorf("StopDeployment calls = %d, want 1", n)
	}
}

// TestE2E_State_OneOpenConfirmation: a second request for a deployment
// with an open confirmation points at it; a copy of a confirmation the
// table does not hold cannot act.
func TestE2E_State_OneOpenConfirmation(t *testing.T) {
	w, env, _ := stateWorld(t)
	w.start("bot", env)
	w.command(alice, deploys, running)
	conf := w.confirmation(deploys, running)
	w.command(carol, random, running)
	w.ephemeral(carol, random, "`d-LGUMS25CC` already has an open confirmation: <@U0ALICE> asked in ")

	// A second message carrying the same buttons, as a chat.postMessage
	// retried after its answer was lost would leave.
	ts := w.postAsBot(deploys, conf.Text, string(conf.Blocks))
	value := conf.Buttons()[0].Value
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	id, err := w.slack.ClickButton(ctx, fakeslack.Click{UserID: bob, ChannelID: deploys, MessageTS: ts, ActionID: "stop", ForgedValue: &value})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.slack.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	w.ephemeral(bob, deploys, "I have no record of this confirmation")
	w.noStop(running)

	w.click(alice, conf, "cancel")
	w.threadReply(conf, "Cancelled by")
	// Cancelled: the deployment may be asked for again.
	w.command(carol, deploys, running)
	w.waitMessage("a new confirmation", func(m fakeslack.Message) bool {
		return m.Channel == deploys && !m.Ephemeral && m.TS != conf.TS && strings.Contains(m.Text, "<@U0CAROL> asks to stop deployment "+running)
	})
}

// TestE2E_State_FollowUpSurvivesKill9: the process that made a stop is
// killed; another takes the follow-up over and posts the final state once.
func TestE2E_State_FollowUpSurvivesKill9(t *testing.T) {
	w, env, _ := stateWorld(t)
	env["STOPDEPLOY_FOLLOW_INTERVAL"] = "200ms"
	w.cd.Update(running, func(d *fakecodedeploy.Deployment) { d.PollsUntilFinal = 1_000_000 })
	first := w.start("first", env)
	second := w.start("second", env)
	w.command(alice, deploys, running, fakeslack.ToConnection(0))
	conf := w.confirmation(deploys, running)
	w.click(bob, conf, "stop", fakeslack.ToConnection(0))
	w.threadReply(conf, "CodeDeploy answered")
	first.auditLine("stop_result", running)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.wait(10 * time.Second)
	w.threadReply(conf, "The process that made this stop is gone; I am following `d-LGUMS25CC` now")
	second.auditLine("final_state", running) // follow_taken_over
	w.cd.Update(running, func(d *fakecodedeploy.Deployment) {
		d.Status = fakecodedeploy.StatusStopped
		d.CompleteTime = time.Now()
	})
	w.threadReply(conf, "is now *Stopped*")
	finals := 0
	for _, m := range w.slack.Messages() {
		if m.ThreadTS == conf.TS && strings.Contains(m.Text, "is now *Stopped*") {
			finals++
		}
	}
	if finals != 1 {
		t.Errorf("final state posted %d times, want once", finals)
	}
}

// TestE2E_State_AuditCommand: `stopdeploy audit` prints a deployment's
// history from the table, in order.
func TestE2E_State_AuditCommand(t *testing.T) {
	w, env, _ := stateWorld(t)
	bot := w.start("bot", env)
	w.command(alice, deploys, running)
	conf := w.confirmation(deploys, running)
	w.click(carol, conf, "stop")
	w.threadReply(conf, "is now *Stopped*")
	bot.auditLine("final_state", running)
	if code, _ := bot.signal(syscall.SIGTERM); code != 0 { // the audit writer drains
		t.Fatalf("exit %d", code)
	}
	p := w.spawn("audit", env, "audit", running)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("audit exited %d: %s", code, p.errOut.text())
	}
	out := p.out.text()
	last := -1
	for _, want := range []string{"requested", "confirmed", "stop_result", "final_state"} {
		i := strings.Index(out, want)
		if i < 0 || i < last {
			t.Errorf("history lacks %q after the previous event:\n%s", want, out)
		}
		last = i
	}
	if !strings.Contains(out, "default/us-east-1/d-LGUMS25CC") {
		t.Errorf("history does not name the deployment:\n%s", out)
	}
}

// TestE2E_State_BadTable: a missing table or one with the wrong key stops
// the bot at start, naming STOPDEPLOY_STATE_TABLE.
func TestE2E_State_BadTable(t *testing.T) {
	w, _, srv := stateWorld(t)
	dynalite.CreateTableWithKeys(t, srv.Client(t), "stopdeploy-by-id", dynalite.Key{Name: "id", Type: types.ScalarAttributeTypeS})
	for _, table := range []string{"stopdeploy-missing", "stopdeploy-by-id"} {
		t.Run(table, func(t *testing.T) {
			p := w.in(t).spawn("bot", map[string]string{"STOPDEPLOY_STATE_TABLE": table})
			if code := p.wait(10 * time.Second); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			if got := p.errOut.text(); !strings.Contains(got, "STOPDEPLOY_STATE_TABLE: ") || !strings.Contains(got, table) {
				t.Errorf("stderr = %q", got)
			}
		})
	}
}

// postAsBot sends chat.postMessage with the bot token, as the bot does,
// and returns the new message's ts.
func (w *world) postAsBot(channel, text, blocks string) string {
	w.t.Helper()
	form := url.Values{"channel": {channel}, "text": {text}, "blocks": {blocks}}
	req, err := http.NewRequest(http.MethodPost, w.slack.APIURL()+"chat.postMessage", strings.NewReader(form.Encode()))
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+botToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		OK    bool   `json:"ok"`
		TS    string `json:"ts"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || !answer.OK {
		w.t.Fatalf("chat.postMessage: %v %s", err, answer.Error)
	}
	return answer.TS
}

// TestE2E_State_Unreachable: with the table gone, a click is refused in
// plain words (never a stop without its guard), and /healthz says so.
func TestE2E_State_Unreachable(t *testing.T) {
	w, env, srv := stateWorld(t)
	env["STOPDEPLOY_HTTP_ADDR"] = "127.0.0.1:0"
	bot := w.start("bot", env)
	base := "http://" + bot.waitLog("serving health and metrics", func(l logLine) bool { return l.msg() == "serving health and metrics" }).str("addr")
	if code, _ := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d with the table up", code)
	}
	w.command(alice, deploys, running)
	conf := w.confirmation(deploys, running)
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	w.click(bob, conf, "stop")
	w.ephemeral(bob, deploys, "I cannot reach the state table that keeps replicas of this bot in agreement, so I will not act on this button right now. Nothing was stopped.")
	w.noStop(running)
	if got := bot.auditLine("refused", running).str("outcome"); got != "store_unavailable" {
		t.Errorf("refused outcome = %q", got)
	}
	code, body := httpGet(t, base+"/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "state table") {
		t.Errorf("/healthz = %d %q with the table gone, want 503 naming it", code, body)
	}
	if len(w.current(conf).Buttons()) != 2 {
		t.Error("a refused click removed the buttons")
	}
}

// TestE2E_State_RestartMidApproval: the table holds the approvals, so a
// restart between two approvals loses neither.
func TestE2E_State_RestartMidApproval(t *testing.T) {
	w, env, _ := stateWorld(t)
	for k, v := range policyEnv(t, testPolicy) {
		env[k] = v
	}
	w.cd.Put(fakecodedeploy.Deployment{ID: critical, Application: "checkout", Group: "critical", Status: "InProgress"})
	first := w.start("first", env)
	w.command(alice, deploys, critical)
	conf := w.confirmation(deploys, critical)
	w.click(bob, conf, "approve")
	w.ephemeral(bob, deploys, "Your approval is recorded: 1 of 2")
	if code, _ := first.signal(syscall.SIGTERM); code != 0 {
		t.Fatalf("first exited %d", code)
	}
	second := w.start("second", env)
	// The value pressed is the one from before Bob's approval: only the
	// table knows it.
	value := conf.Buttons()[0].Value
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	id, err := w.slack.ClickButton(ctx, fakeslack.Click{UserID: bob, ChannelID: deploys, MessageTS: conf.TS, ActionID: "approve", ForgedValue: &value})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.slack.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	w.ephemeral(bob, deploys, "You have already approved this")
	w.click(carol, conf, "approve")
	w.waitCalls("StopDeployment", critical, 1)
	second.auditLine("confirmed", critical)
}

// TestE2E_State_Check: `stopdeploy check` proves the table, and names a
// missing one.
func TestE2E_State_Check(t *testing.T) {
	w, env, _ := stateWorld(t)
	for _, tt := range []struct {
		table, want string
		ok          bool
	}{
		{stateTable, "OK state table " + stateTable + " exists with key pk; a conditional write and delete of a check item worked", true},
		{"stopdeploy-missing", "FAIL state table stopdeploy-missing STOPDEPLOY_STATE_TABLE: ", false},
	} {
		t.Run(tt.table, func(t *testing.T) {
			w := w.in(t)
			env["STOPDEPLOY_STATE_TABLE"] = tt.table
			p := w.spawn("check", env, "check")
			code := p.wait(20 * time.Second)
			out := squeeze(p.out.text())
			if (code == 0) != tt.ok || !strings.Contains(out, squeeze(tt.want)) {
				t.Errorf("exit %d, output lacks %q:\n%s", code, tt.want, out)
			}
		})
	}
}
