package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

// TestE2E_StopAndRollBack is the whole product: command, confirmation,
// click, StopDeployment, thread, follow-up, audit.
func TestE2E_StopAndRollBack(t *testing.T) {
	w := newWorld(t)
	w.cd.Update(running, func(d *fakecodedeploy.Deployment) { d.PollsUntilFinal = 2 })
	bot := w.start("bot", nil)

	w.command(alice, deploys, "d-lgums25cc rollback")
	conf := w.confirmation(deploys, running)
	for _, want := range []string{running, "<@" + alice + ">", "checkout", "production", "InProgress", "Rollback:* yes", "3 succeeded · 1 in progress · 2 pending"} {
		if !strings.Contains(string(conf.Blocks), want) {
			t.Errorf("confirmation lacks %q: %s", want, conf.Blocks)
		}
	}
	buttons := conf.Buttons()
	if len(buttons) != 2 || buttons[0].ActionID != "stop" || buttons[0].Style != "danger" || !buttons[0].Confirm ||
		buttons[0].Text != "Stop and roll back" || buttons[1].ActionID != "cancel" {
		t.Fatalf("buttons = %+v, want a red Stop with a confirm dialog, then Cancel", buttons)
	}
	if n := len(w.calls("StopDeployment", running)); n != 0 {
		t.Fatalf("StopDeployment called %d times before any click", n)
	}
	bot.auditLine("requested", running)

	w.click(bob, conf, "stop")
	stops := w.waitCalls("StopDeployment", running, 1)
	if r := stops[0].AutoRollbackEnabled; r == nil || !*r {
		t.Errorf("StopDeployment autoRollbackEnabled = %v, want explicit true", r)
	}
	after := w.waitNoButtons(conf)
	if !strings.Contains(string(after.Blocks), "Stop confirmed by <@"+bob+">") {
		t.Errorf("confirmation after the click does not say who confirmed: %s", after.Blocks)
	}
	w.threadReply(conf, "CodeDeploy answered *Pending*: Stopping Pending. Stopping to schedule commands in the deployment instances")

	final := w.threadReply(conf, "is now *Stopped*; rollback deployment `d-")
	rolled, _ := w.cd.Deployment(running)
	if rolled.RollbackDeploymentID == "" || !strings.Contains(final.Text, rolled.RollbackDeploymentID) {
		t.Errorf("final reply %q does not name the rollback deployment %q", final.Text, rolled.RollbackDeploymentID)
	}
	w.waitMessage("confirmation shows the final state", func(m fakeslack.Message) bool {
		return m.TS == conf.TS && strings.Contains(string(m.Blocks), "Final state: *Stopped*")
	})
	bot.auditLine("final_state", running)
	if got := w.calls("StopDeployment", running); len(got) != 1 {
		t.Errorf("StopDeployment calls = %v, want exactly one", got)
	}

	// Then the rollback the stop started, followed to its own end.
	w.threadReply(conf, "Rollback `"+rolled.RollbackDeploymentID+"` *Succeeded*")
	bot.waitLog("the rollback's final state", func(l logLine) bool {
		return l["audit"] == true && l.str("deployment") == running && l.str("outcome") == "rollback_Succeeded"
	})
	want := []string{"requested confirmation_posted", "confirmed stopping", "stop_result Pending", "final_state Stopped", "final_state rollback_Succeeded"}
	if got := bot.audits(running); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit trail = %q, want %q", got, want)
	}
	line := bot.auditLine("stop_result", running)
	for key, want := range map[string]string{"user": bob, "channel": deploys, "deployment": running, "outcome": "Pending", "level": "info"} {
		if line.str(key) != want {
			t.Errorf("stop_result audit line %s = %q, want %q (line %v)", key, line.str(key), want, line)
		}
	}
}

// TestE2E_AcksBeforeSlowWork: the ack must not wait for AWS.
func TestE2E_AcksBeforeSlowWork(t *testing.T) {
	w := newWorld(t)
	w.cd.Update(running, func(d *fakecodedeploy.Deployment) { d.GetDelay = 3 * time.Second })
	w.start("bot", nil)
	ack := w.command(alice, deploys, running)
	if lag := ack.AckedAt.Sub(ack.SentAt); lag > time.Second {
		t.Errorf("ack took %v while GetDeployment was slow, want it at once", lag)
	}
	if len(ack.Payload) != 0 && string(ack.Payload) != "null" {
		t.Errorf("ack payload = %s, want none", ack.Payload)
	}
	if n := len(w.publicMessages(deploys)); n != 0 {
		t.Errorf("%d public messages before GetDeployment answered", n)
	}
	w.confirmation(deploys, running)
}

// TestE2E_BadCommandsNeverReachAWS: syntax errors and help get usage, only
// to the user who typed them.
func TestE2E_BadCommandsNeverReachAWS(t *testing.T) {
	w := newWorld(t)
	w.start("bot", nil)
	tests := []struct{ text, want string }{
		{"", "*Usage:* `/stopdeploy <deployment> [rollback|no-rollback]`"},
		{"help", "*Usage:* `/stopdeploy <deployment> [rollback|no-rollback]`"},
		{"d-LGUMS25C", "\"d-LGUMS25C\" is not a deployment ID"},
		{"d-LGUMS25CC yes", "\"yes\" is not an option: use rollback|no-rollback."},
		{"d-LGUMS25CC rollback please", "Too many words"},
		{"<https://evil.example.com/d-LGUMS25CC>", "That link is not an AWS CodeDeploy console link"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			w := w.in(t)
			w.command(mallory, deploys, tt.text) // even a user who is not allowed gets help
			m := w.ephemeral(mallory, deploys, tt.want)
			if !strings.Contains(m.Text, "*Usage:*") {
				t.Errorf("reply %q lacks the usage text", m.Text)
			}
			// Only help (or nothing) gets the whole usage; a typo gets what
			// is wrong, the syntax and where to find more, in two lines.
			full := strings.Contains(m.Text, "Example:")
			if help := tt.text == "" || tt.text == "help"; help != full {
				t.Errorf("reply to %q has the full usage: %t, want %t: %q", tt.text, full, help, m.Text)
			}
			if tt.text != "" && tt.text != "help" && (strings.Count(m.Text, "\n") != 1 || !strings.Contains(m.Text, "`/stopdeploy help` for more")) {
				t.Errorf("reply to %q = %q, want two lines ending with the pointer to help", tt.text, m.Text)
			}
		})
	}
	if calls := w.cd.Calls(); len(calls) != 0 {
		t.Errorf("CodeDeploy calls = %v, want none", calls)
	}
	if n := len(w.publicMessages(deploys)); n != 0 {
		t.Errorf("%d public messages, want none", n)
	}
}

// TestE2E_Authorization: users directly or through a group, channels, and
// refusals that are private and never reach AWS.
func TestE2E_Authorization(t *testing.T) {
	w := newWorld(t)
	bot := w.start("bot", map[string]string{"STOPDEPLOY_ALLOWED_CHANNELS": deploys + "," + noBot})

	t.Run("user not allowed", func(t *testing.T) {
		w, bot := w.in(t), bot.in(t)
		w.command(mallory, deploys, running)
		w.ephemeral(mallory, deploys, "You are not allowed to stop deployments.")
		line := bot.waitLog("refused", func(l logLine) bool { return l.str("event") == "refused" && l.str("user") == mallory })
		if line.str("outcome") != "user_not_allowed" || line.str("channel") != deploys || line.str("deployment") != running {
			t.Errorf("refusal audit line = %v", line)
		}
	})
	t.Run("channel not allowed", func(t *testing.T) {
		w := w.in(t)
		w.command(alice, random, running)
		w.ephemeral(alice, random, "/stopdeploy is not enabled in this channel.")
	})
	t.Run("refused where the bot is not a member", func(t *testing.T) {
		w := w.in(t)
		w.command(mallory, noBot, running)
		m := w.ephemeral(mallory, noBot, "You are not allowed to stop deployments.")
		if m.Via != fakeslack.ViaResponseURL {
			t.Errorf("refusal came via %s, want the command's response_url", m.Via)
		}
	})
	if calls := w.cd.Calls(); len(calls) != 0 {
		t.Fatalf("CodeDeploy calls after refusals = %v, want none", calls)
	}
	if n := len(w.publicMessages(deploys)) + len(w.publicMessages(random)) + len(w.publicMessages(noBot)); n != 0 {
		t.Fatalf("%d public messages after refusals, want none", n)
	}

	t.Run("allowed through a user group", func(t *testing.T) {
		w := w.in(t)
		w.command(bob, deploys, running)
		w.confirmation(deploys, running)
		if n := w.slack.CallCount("usergroups.users.list"); n == 0 {
			t.Error("usergroups.users.list was not called")
		}
	})
}

// TestE2E_LookupAnswers: GetDeployment decides whether there is anything to confirm.
func TestE2E_LookupAnswers(t *testing.T) {
	w := newWorld(t)
	w.cd.Put(fakecodedeploy.Deployment{ID: "d-BADIDXXXX", Application: "a", Group: "g",
		GetFailure: &fakecodedeploy.Failure{Code: "InvalidDeploymentIdException"}})
	w.cd.Put(fakecodedeploy.Deployment{ID: "d-DENIED001", Application: "a", Group: "g",
		GetFailure: &fakecodedeploy.Failure{Code: "AccessDeniedException", Message: "not authorized to perform codedeploy:GetDeployment"}})
	bot := w.start("bot", nil)
	tests := []struct{ id, want, outcome string }{
		{"d-NOSUCH001", "CodeDeploy has no deployment `d-NOSUCH001` in default/us-east-1.", "not_found"},
		{"d-BADIDXXXX", "CodeDeploy says `d-BADIDXXXX` is not a valid deployment ID.", "invalid_id"},
		{done, "Deployment `d-DONE00001` (checkout / staging) has already completed: it is *Succeeded*. There is nothing to stop.", "already_completed"},
		{"d-DENIED001", "AWS refused the bot's credentials for GetDeployment on `d-DENIED001` (AccessDeniedException).", "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			w, bot := w.in(t), bot.in(t)
			w.command(alice, deploys, tt.id)
			w.ephemeral(alice, deploys, tt.want)
			if got := bot.auditLine("requested", tt.id).str("outcome"); got != tt.outcome {
				t.Errorf("audit outcome = %q, want %q", got, tt.outcome)
			}
		})
	}
	if n := len(w.publicMessages(deploys)); n != 0 {
		t.Errorf("%d public messages, want none", n)
	}
	for _, c := range w.cd.Calls() {
		if c.Target != "GetDeployment" {
			t.Errorf("unexpected call %s", c)
		}
	}
}

// TestE2E_BotNotInChannel: the requester learns how to fix it, through the
// command's response_url, and nothing is stopped. Slack answers
// not_in_channel for a public channel and channel_not_found for a private one.
func TestE2E_BotNotInChannel(t *testing.T) {
	w := newWorld(t)
	bot := w.start("bot", nil)
	for _, channel := range []string{noBot, private} {
		t.Run(channel, func(t *testing.T) {
			w, bot := w.in(t), bot.in(t)
			w.command(alice, channel, running+" rollback")
			m := w.ephemeral(alice, channel, "I am not a member of this channel")
			if m.Via != fakeslack.ViaResponseURL || !strings.Contains(m.Text, "/invite @stopdeploy") || !strings.Contains(m.Text, "/stopdeploy d-LGUMS25CC rollback") {
				t.Errorf("reply via %s = %q, want the fix through response_url", m.Via, m.Text)
			}
			line := bot.waitLog("request in "+channel, func(l logLine) bool {
				return l.str("event") == "requested" && l.str("channel") == channel
			})
			if got := line.str("outcome"); got != "bot_not_in_channel" {
				t.Errorf("audit outcome = %q", got)
			}
		})
	}
	if calls := w.calls("StopDeployment", running); len(calls) != 0 {
		t.Errorf("StopDeployment calls = %v", calls)
	}
}

// TestE2E_ClickRules: who may press which button, second approver, cancel, expiry.
func TestE2E_ClickRules(t *testing.T) {
	t.Run("unauthorized Stop is refused and the buttons stay", func(t *testing.T) {
		w := newWorld(t)
		bot := w.start("bot", nil)
		w.command(alice, deploys, running)
		conf := w.confirmation(deploys, running)
		w.click(mallory, conf, "stop")
		w.ephemeral(mallory, deploys, "You are not allowed to stop deployments.")
		bot.auditLine("refused", running)
		if got := w.current(conf); len(got.Buttons()) != 2 {
			t.Errorf("buttons after a refused click = %+v", got.Buttons())
		}
		w.click(mallory, conf, "cancel")
		w.ephemeral(mallory, deploys, "You are not allowed to stop deployments.")
		bot.waitLog("two refusals", func(logLine) bool { return len(bot.auditsOf(running, "refused")) == 2 })
		if got := w.current(conf); len(got.Buttons()) != 2 {
			t.Errorf("buttons after a refused cancel = %+v", got.Buttons())
		}
		if calls := w.calls("StopDeployment", running); len(calls) != 0 {
			t.Errorf("StopDeployment calls = %v", calls)
		}
	})

	t.Run("second approver required", func(t *testing.T) {
		w := newWorld(t)
		bot := w.start("bot", map[string]string{"STOPDEPLOY_REQUIRE_SECOND_APPROVER": "true"})
		w.command(alice, deploys, running)
		conf := w.confirmation(deploys, running)
		if !strings.Contains(string(conf.Blocks), "Another person allowed to stop deployments must confirm") {
			t.Errorf("confirmation does not say a second approver is needed: %s", conf.Blocks)
		}
		w.click(alice, conf, "stop")
		w.ephemeral(alice, deploys, "A second approver is required")
		if got := bot.auditLine("refused", running).str("outcome"); got != "second_approver_required" {
			t.Errorf("refusal outcome = %q", got)
		}
		if got := w.current(conf); len(got.Buttons()) != 2 {
			t.Fatalf("buttons after the requester's click = %+v", got.Buttons())
		}
		w.click(carol, conf, "stop")
		w.waitCalls("StopDeployment", running, 1)
		w.threadReply(conf, "<@"+carol+"> confirmed")
	})

	t.Run("cancel by the requester", func(t *testing.T) {
		w := newWorld(t)
		bot := w.start("bot", nil)
		w.command(alice, deploys, running)
		conf := w.confirmation(deploys, running)
		w.click(alice, conf, "cancel")
		after := w.waitNoButtons(conf)
		if !strings.Contains(string(after.Blocks), "Cancelled by <@"+alice+">") {
			t.Errorf("cancelled message = %s", after.Blocks)
		}
		w.threadReply(conf, "Cancelled by <@"+alice+">")
		bot.auditLine("cancelled", running)
		if calls := w.calls("StopDeployment", running); len(calls) != 0 {
			t.Errorf("StopDeployment calls = %v", calls)
		}
	})

	t.Run("cancel by another allowed user", func(t *testing.T) {
		w := newWorld(t)
		w.start("bot", nil)
		w.command(alice, deploys, running)
		conf := w.confirmation(deploys, running)
		w.click(bob, conf, "cancel")
		w.threadReply(conf, "Cancelled by <@"+bob+">")
	})

	t.Run("expired: the process that posted it marks it", func(t *testing.T) {
		w := newWorld(t)
		bot := w.start("bot", map[string]string{"STOPDEPLOY_CONFIRM_TIMEOUT": "1s"})
		w.command(alice, deploys, running)
		conf := w.confirmation(deploys, running)
		after := w.waitNoButtons(conf) // nobody clicks
		if !strings.Contains(string(after.Blocks), "*Expired* at") || strings.Contains(string(after.Blocks), "Confirm before") {
			t.Errorf("expired card = %s, want the state on top and no \"Confirm before\"", after.Blocks)
		}
		bot.auditLine("expired", running)
		if calls := w.calls("StopDeployment", running); len(calls) != 0 {
			t.Errorf("StopDeployment calls after expiry = %v", calls)
		}
	})
	t.Run("expired: a click on another process is refused", func(t *testing.T) {
		w := newWorld(t)
		// Long enough that the first process is gone before its expiry
		// sweep could run, even on a slow machine.
		env := map[string]string{"STOPDEPLOY_CONFIRM_TIMEOUT": "3s"}
		first := w.start("first", env)
		w.command(alice, deploys, running)
		conf := w.confirmation(deploys, running)
		if code, _ := first.signal(syscall.SIGTERM); code != 0 {
			t.Fatalf("first bot exit %d", code)
		}
		second := w.start("second", env)
		waitPast(t, expiryOf(t, conf))
		w.click(bob, conf, "stop")
		after := w.waitNoButtons(conf)
		if !strings.Contains(string(after.Blocks), "*Expired* at") {
			t.Errorf("expired card = %s", after.Blocks)
		}
		w.threadReply(conf, "This confirmation expired")
		second.auditLine("expired", running)
		if calls := w.calls("StopDeployment", running); len(calls) != 0 {
			t.Errorf("StopDeployment calls after expiry = %v", calls)
		}
	})
}

// TestE2E_StopErrors: every StopDeployment error after which CodeDeploy
// certainly did nothing, throttling beyond the SDK's retries included,
// becomes a plain thread reply and a "Stop failed" card, and the bot carries
// on. (Errors after which the stop may have happened: TestE2E_StopTruth.)
func TestE2E_StopErrors(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		id, code, want, outcome string
	}{
		{"d-ERRGONE01", "DeploymentDoesNotExistException", "CodeDeploy has no deployment `d-ERRGONE01`", "not_found"},
		{"d-ERRGROUP1", "DeploymentGroupDoesNotExistException", "The deployment group of `d-ERRGROUP1` no longer exists", "group_not_found"},
		{"d-ERRIDREQ1", "DeploymentIdRequiredException", "No deployment ID reached CodeDeploy.", "id_required"},
		{"d-ERRINVAL1", "InvalidDeploymentIdException", "CodeDeploy says `d-ERRINVAL1` is not a valid deployment ID.", "invalid_id"},
		{"d-ERRUNSUP1", "UnsupportedActionForDeploymentTypeException", "CodeDeploy cannot stop `d-ERRUNSUP1`: its deployment type does not support this action.", "unsupported"},
		{"d-ERRTHROT1", "ThrottlingException", "AWS kept throttling the request, even after retries. `d-ERRTHROT1` was *not* stopped", "throttled"},
	}
	for _, tt := range tests {
		w.cd.Put(fakecodedeploy.Deployment{ID: tt.id, Application: "checkout", Group: "production", Status: "InProgress",
			StopFailure: &fakecodedeploy.Failure{Code: tt.code}})
	}
	bot := w.start("bot", nil)
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			w, bot := w.in(t), bot.in(t)
			w.command(alice, deploys, tt.id)
			conf := w.confirmation(deploys, tt.id)
			w.click(alice, conf, "stop")
			reply := w.threadReply(conf, tt.want)
			if !strings.HasPrefix(reply.Text, ":x: <@"+alice+"> confirmed, but the stop failed. ") {
				t.Errorf("reply = %q", reply.Text)
			}
			if got := bot.auditLine("stop_error", tt.id).str("outcome"); got != tt.outcome {
				t.Errorf("stop_error outcome = %q, want %q", got, tt.outcome)
			}
			w.waitMessage("failure on the confirmation", func(m fakeslack.Message) bool {
				return m.TS == conf.TS && strings.Contains(string(m.Blocks), "*Stop failed.*")
			})
			// Throttling is worth retrying (the SDK's three attempts); the
			// service's verdicts are not.
			wantCalls := 1
			if tt.code == "ThrottlingException" {
				wantCalls = 3
			}
			if got := w.calls("StopDeployment", tt.id); len(got) != wantCalls {
				t.Errorf("StopDeployment calls = %v, want %d", got, wantCalls)
			}
		})
	}
	// Still up: the next request works.
	w.command(alice, deploys, running)
	w.confirmation(deploys, running)
}

// TestE2E_ExactlyOnce: a burst of clicks on one confirmation calls
// StopDeployment once, and posts one result.
func TestE2E_ExactlyOnce(t *testing.T) {
	w := newWorld(t)
	// A slow chat.update keeps the buttons on screen while every click lands,
	// so each click reaches the bot with buttons and only its claim can stop it.
	w.slack.SetLatency("chat.update", 500*time.Millisecond)
	bot := w.start("bot", nil)
	w.command(alice, deploys, running)
	conf := w.confirmation(deploys, running)

	const clicks = 8
	errs := make(chan error, clicks)
	for i := range clicks {
		user := []string{alice, bob, carol}[i%3]
		go func() {
			_, err := w.slack.ClickButton(t.Context(), fakeslack.Click{UserID: user, ChannelID: deploys, MessageTS: conf.TS, ActionID: "stop"})
			errs <- err
		}()
	}
	delivered := 0
	for range clicks {
		if err := <-errs; err == nil {
			delivered++
		}
	}
	if delivered < 2 {
		t.Fatalf("only %d clicks were delivered; the test proves nothing", delivered)
	}
	w.threadReply(conf, "CodeDeploy answered *Pending*")
	w.threadReply(conf, "is now *Stopped*")
	bot.waitLog("every later click refused by its claim", func(logLine) bool {
		return strings.Count(bot.out.text(), "this confirmation is already being handled") == delivered-1
	})
	if got := w.calls("StopDeployment", running); len(got) != 1 {
		t.Errorf("%d clicks gave StopDeployment calls %v, want exactly one", delivered, got)
	}
	results := 0
	for _, m := range w.slack.Messages() {
		if m.ThreadTS == conf.TS && strings.Contains(m.Text, "CodeDeploy answered") {
			results++
		}
	}
	if results != 1 {
		t.Errorf("%d result replies in the thread, want 1", results)
	}
}

// TestE2E_AuditChannel: every step is also posted to the audit channel.
func TestE2E_AuditChannel(t *testing.T) {
	w := newWorld(t)
	w.start("bot", map[string]string{"STOPDEPLOY_AUDIT_CHANNEL": audit})
	w.command(mallory, deploys, running)
	w.command(alice, deploys, running)
	conf := w.confirmation(deploys, running)
	w.click(carol, conf, "stop")
	// Sentences, with a link to the confirmation once there is one.
	link := " · <https://" + fakeslack.TeamDomain + ".slack.com/archives/" + deploys + "/p" + strings.ReplaceAll(conf.TS, ".", "") + "|confirmation>"
	for _, want := range []struct {
		text   string
		linked bool
	}{
		{"<@U0MALLORY> was refused for `d-LGUMS25CC` in <#C0DEPLOYS>: not allowed to stop deployments.", false},
		{"<@U0ALICE> asked to stop `d-LGUMS25CC` (default/us-east-1) in <#C0DEPLOYS> · checkout / production, InProgress, rollback no, rule \"allowed list\"", true},
		{"<@U0CAROL> confirmed the stop of `d-LGUMS25CC` (default/us-east-1) in <#C0DEPLOYS> · rollback no", true},
		{"CodeDeploy answered *Pending* to the stop of `d-LGUMS25CC` (default/us-east-1) confirmed by <@U0CAROL>: Stopping Pending.", true},
		{"`d-LGUMS25CC` (default/us-east-1) is now *Stopped*", true},
	} {
		w.waitMessage("audit channel: "+want.text, func(m fakeslack.Message) bool {
			return m.Channel == audit && strings.HasPrefix(m.Text, want.text) && strings.HasSuffix(m.Text, link) == want.linked
		})
	}
	for _, m := range w.publicMessages(audit) {
		if strings.Contains(m.Text, "_") && !strings.Contains(m.Text, "slack.com") {
			t.Errorf("audit line speaks in codes: %q", m.Text)
		}
	}
}

// TestE2E_FollowTimeout: a deployment that does not reach a final state in
// time is reported as such.
func TestE2E_FollowTimeout(t *testing.T) {
	w := newWorld(t)
	w.cd.Update(running, func(d *fakecodedeploy.Deployment) { d.PollsUntilFinal = 1_000_000 })
	bot := w.start("bot", map[string]string{"STOPDEPLOY_FOLLOW_TIMEOUT": "300ms"})
	w.command(alice, deploys, running)
	conf := w.confirmation(deploys, running)
	w.click(alice, conf, "stop")
	w.threadReply(conf, "`d-LGUMS25CC` was still *InProgress* after 300ms; I stopped following it.")
	if got := bot.auditLine("final_state", running).str("outcome"); got != "follow_timeout" {
		t.Errorf("final_state outcome = %q, want follow_timeout", got)
	}
	if n := len(w.calls("GetDeployment", running)); n < 3 {
		t.Errorf("GetDeployment read %d times while following, want several", n)
	}
}

// expiryOf reads the expiry from the Stop button's value.
func expiryOf(t *testing.T, msg fakeslack.Message) time.Time {
	t.Helper()
	for _, b := range msg.Buttons() {
		if b.ActionID == "stop" || b.ActionID == "approve" {
			c, err := signingKey.Decode(b.Value)
			if err != nil {
				t.Fatal(err)
			}
			return c.ExpiresAt
		}
	}
	t.Fatal("no Stop or Approve button")
	return time.Time{}
}

// waitPast returns once the wall clock is past deadline: the expiry is
// a point in time, so this is a wait on a known event, not a guess.
func waitPast(t *testing.T, deadline time.Time) {
	t.Helper()
	if d := time.Until(deadline); d > 0 {
		if d > waitTimeout {
			t.Fatalf("deadline %v is too far", deadline)
		}
		<-time.After(d + 10*time.Millisecond)
	}
}

// TestE2E_RefusalRecordedBeforeSlackAnswers: the audit trail does not wait
// for Slack. A refusal is logged while its private answer is still on its
// way (here Slack takes 30 s to take it).
func TestE2E_RefusalRecordedBeforeSlackAnswers(t *testing.T) {
	w := newWorld(t)
	bot := w.start("bot", nil)
	w.slack.SetLatency("chat.postEphemeral", 30*time.Second)
	w.slack.SetLatency("response_url", 30*time.Second)
	w.command(mallory, deploys, running)
	if got := bot.auditLine("refused", running).str("outcome"); got != "user_not_allowed" {
		t.Errorf("refusal outcome = %q, want user_not_allowed", got)
	}
	if n := w.slack.CountMessages(func(m fakeslack.Message) bool { return m.Ephemeral && m.VisibleTo == mallory }); n != 0 {
		t.Errorf("%d answers to mallory before the audit line: want it recorded while Slack is slow", n)
	}
}
