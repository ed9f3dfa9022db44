package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

// TestE2E_StopTruth: when CodeDeploy's answer to a stop does not say it
// failed for certain, the bot never calls it a failure. It says what it
// knows, reads the deployment, and posts what it really became.
func TestE2E_StopTruth(t *testing.T) {
	w := newWorld(t)
	bot := w.start("bot", map[string]string{"STOPDEPLOY_FOLLOW_TIMEOUT": "5s"})

	t.Run("already stopped", func(t *testing.T) {
		w, bot := w.in(t), bot.in(t)
		id := w.cd.Put(fakecodedeploy.Deployment{ID: "d-TRUTHDONE", Application: "checkout", Group: "production"})
		w.command(alice, deploys, id)
		conf := w.confirmation(deploys, id)
		// Someone stops it in the console before the click.
		w.cd.Update(id, func(d *fakecodedeploy.Deployment) { d.Status, d.CompleteTime = "Stopped", time.Now() })
		w.click(bob, conf, "stop")
		w.threadReply(conf, "`"+id+"` is already *Stopped* (since <!date^")
		w.waitMessage("the card in its final state", func(m fakeslack.Message) bool {
			return m.TS == conf.TS && strings.Contains(string(m.Blocks), "Final state: *Stopped*") && strings.Contains(string(m.Blocks), `*Status*\nStopped`)
		})
		bot.auditLine("final_state", id)
		noRedFailure(t, w, conf)
		if got := bot.auditLine("stop_result", id).str("outcome"); got != "already_completed" {
			t.Errorf("stop_result outcome = %q, want already_completed", got)
		}
	})

	unknown := []struct {
		name string
		fail fakecodedeploy.Failure
		says string // the first reply
	}{
		{"garbled 200 after CodeDeploy accepted the stop", fakecodedeploy.Failure{Code: fakecodedeploy.FailGarbled, After: true, Times: 1},
			"CodeDeploy did not confirm the stop"},
		// Every attempt is accepted and answered with 4 MiB: refused unread.
		{"answer over 1 MiB", fakecodedeploy.Failure{Code: fakecodedeploy.FailOversized, After: true, Size: 4 << 20},
			"was over 1024 KiB, so the bot did not read it and does not know whether it was stopped"},
		// The SDK retries, and CodeDeploy accepts the stop again.
		{"connection lost after sending, then the SDK's retry", fakecodedeploy.Failure{Code: fakecodedeploy.FailNetwork, After: true, Times: 1},
			"CodeDeploy answered *Pending*"},
	}
	for i, tt := range unknown {
		t.Run(tt.name, func(t *testing.T) {
			w, bot := w.in(t), bot.in(t)
			fail := tt.fail
			id := w.cd.Put(fakecodedeploy.Deployment{ID: []string{"d-TRUTHGARB", "d-TRUTHHUGE", "d-TRUTHLOST"}[i], Application: "checkout", Group: "production",
				StopFailure: &fail})
			w.command(alice, deploys, id)
			conf := w.confirmation(deploys, id)
			w.click(bob, conf, "stop")
			w.threadReply(conf, tt.says)
			w.threadReply(conf, "Deployment `"+id+"` is now *Stopped*")
			bot.auditLine("final_state", id)
			noRedFailure(t, w, conf)
			w.waitMessage("the card in its final state", func(m fakeslack.Message) bool {
				return m.TS == conf.TS && strings.Contains(string(m.Blocks), "Final state: *Stopped*")
			})
		})
	}

	t.Run("no answer at all: said so, then followed", func(t *testing.T) {
		w, bot := w.in(t), bot.in(t)
		id := w.cd.Put(fakecodedeploy.Deployment{ID: "d-TRUTHNONE", Application: "checkout", Group: "production",
			StopFailure: &fakecodedeploy.Failure{Code: fakecodedeploy.FailNetwork}})
		w.command(alice, deploys, id)
		conf := w.confirmation(deploys, id)
		w.click(bob, conf, "stop")
		w.threadReply(conf, "CodeDeploy did not confirm the stop of `"+id+"`: The bot could not reach CodeDeploy")
		w.threadReply(conf, "was still *InProgress* after 5s; I stopped following it")
		if got := bot.auditLine("stop_error", id).str("outcome"); got != "unknown" {
			t.Errorf("stop_error outcome = %q, want unknown", got)
		}
		noRedFailure(t, w, conf)
	})

	t.Run("empty stop status is said in words", func(t *testing.T) {
		w := w.in(t)
		id := w.cd.Put(fakecodedeploy.Deployment{ID: "d-TRUTHMUTE", Application: "checkout", Group: "production", StopStatus: fakecodedeploy.StopEmpty})
		w.command(alice, deploys, id)
		conf := w.confirmation(deploys, id)
		w.click(bob, conf, "stop")
		reply := w.threadReply(conf, "CodeDeploy accepted the stop without saying its status")
		if strings.Contains(reply.Text, "**") {
			t.Errorf("reply %q has an empty bold status", reply.Text)
		}
	})
}

// noRedFailure fails t if the thread or the card called the stop failed.
func noRedFailure(t *testing.T, w *world, conf fakeslack.Message) {
	t.Helper()
	for _, m := range w.slack.Messages() {
		if m.ThreadTS == conf.TS && strings.Contains(m.Text, "the stop failed") {
			t.Errorf("thread says the stop failed: %q", m.Text)
		}
	}
	if cur := w.current(conf); strings.Contains(string(cur.Blocks), "Stop failed") {
		t.Errorf("card says the stop failed: %s", cur.Blocks)
	}
}

// clickSent presses a button and returns when the fake sent the click.
func (w *world) clickSent(user string, msg fakeslack.Message, action string) time.Time {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	id, err := w.slack.ClickButton(ctx, fakeslack.Click{UserID: user, ChannelID: msg.Channel, MessageTS: msg.TS, ActionID: action})
	if err != nil {
		w.t.Fatalf("click %s: %v", action, err)
	}
	ack, err := w.slack.WaitAck(ctx, id)
	if err != nil {
		w.t.Fatalf("ack of click %s: %v", action, err)
	}
	return ack.SentAt
}

// TestE2E_StopFirst: once a click is authorized, StopDeployment goes out
// before anything else, so Slack's speed cannot delay a stop; the thread
// reply does not wait for the card either.
func TestE2E_StopFirst(t *testing.T) {
	tests := []struct {
		name  string
		slack func(*fakeslack.Server)
	}{
		{"chat.update takes 10 s", func(s *fakeslack.Server) { s.SetLatency("chat.update", 10*time.Second) }},
		{"chat.update answers 429 Retry-After 10, three times", func(s *fakeslack.Server) {
			s.FailNext("chat.update", fakeslack.Failure{Status: 429, RetryAfter: 10, Times: 3})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			bot := w.start("bot", nil)
			w.command(alice, deploys, running)
			conf := w.confirmation(deploys, running)
			tt.slack(w.slack)
			sent := w.clickSent(bob, conf, "stop")
			stop := w.waitCalls("StopDeployment", running, 1)[0]
			if lag := stop.At.Sub(sent); lag > time.Second {
				t.Errorf("StopDeployment reached CodeDeploy %v after the click, want within 1s", lag)
			}
			w.threadReply(conf, "CodeDeploy answered *Pending*")
			if len(w.current(conf).Buttons()) == 0 {
				t.Errorf("the card changed before the thread reply: the test did not hold the card back")
			}
			bot.auditLine("stop_result", running)
		})
	}
}

// TestE2E_SlackDownDuringAStop: the stop happens and is logged whatever
// Slack does; its thread reply and card update land once Slack is back.
func TestE2E_SlackDownDuringAStop(t *testing.T) {
	w := newWorld(t)
	bot := w.start("bot", nil)
	w.command(alice, deploys, running)
	conf := w.confirmation(deploys, running)
	// Down for three attempts of each write (slack-go retries none of
	// these), then back.
	w.slack.FailNext("chat.postMessage", fakeslack.Failure{Status: 503, Error: "service_unavailable", Times: 3})
	w.slack.FailNext("chat.update", fakeslack.Failure{Status: 503, Error: "service_unavailable", Times: 3})
	w.click(bob, conf, "stop")
	w.waitCalls("StopDeployment", running, 1)
	bot.auditLine("stop_result", running)
	w.threadReply(conf, "CodeDeploy answered *Pending*")
	w.threadReply(conf, "is now *Stopped*")
	w.waitNoButtons(conf)
	bot.waitLog("a retried write", func(l logLine) bool { return l.msg() == "could not write to Slack; retrying" })
	if got := w.calls("StopDeployment", running); len(got) != 1 {
		t.Errorf("StopDeployment calls = %v, want one", got)
	}
}

// TestE2E_ShutdownCarriesTheStop: SIGTERM right after a click still sends
// its StopDeployment and posts its result, within the 10 s exit budget,
// even with Slack slow or CodeDeploy slower than the grace period.
func TestE2E_ShutdownCarriesTheStop(t *testing.T) {
	t.Run("chat.update takes 20 s", func(t *testing.T) {
		w := newWorld(t)
		bot := w.start("bot", nil)
		w.command(alice, deploys, running)
		conf := w.confirmation(deploys, running)
		w.slack.SetLatency("chat.update", 20*time.Second)
		w.click(bob, conf, "stop")
		w.waitCalls("StopDeployment", running, 1)
		code, took := bot.signal(syscall.SIGTERM)
		if code != 0 || took > 10*time.Second {
			t.Errorf("exit %d after %v, want 0 within 10s", code, took)
		}
		w.threadReply(conf, "CodeDeploy answered *Pending*")
	})
	t.Run("StopDeployment takes longer than the grace period", func(t *testing.T) {
		w := newWorld(t)
		w.cd.Update(running, func(d *fakecodedeploy.Deployment) { d.StopDelay = 30 * time.Second })
		bot := w.start("bot", nil)
		w.command(alice, deploys, running)
		conf := w.confirmation(deploys, running)
		w.click(bob, conf, "stop")
		// The fake records a call once it has answered: wait for the
		// bot's own line, written just before it calls StopDeployment.
		bot.auditLine("confirmed", running)
		code, took := bot.signal(syscall.SIGTERM)
		if code != 0 || took > 10*time.Second {
			t.Errorf("exit %d after %v, want 0 within 10s", code, took)
		}
		if got := w.calls("StopDeployment", running); len(got) != 1 {
			t.Errorf("StopDeployment calls = %v, want the one cut short by the exit", got)
		}
		// Reported on a context of its own, not the cancelled one.
		w.threadReply(conf, "CodeDeploy did not confirm the stop of `"+running+"`")
		if got := bot.auditLine("stop_error", running).str("outcome"); got != "unknown" {
			t.Errorf("stop_error outcome = %q, want unknown", got)
		}
	})
}

// TestE2E_ClickAnswers: every click the bot does not act on is told why.
func TestE2E_ClickAnswers(t *testing.T) {
	w := newWorld(t)
	w.cd.Update(running, func(d *fakecodedeploy.Deployment) { d.StopDelay = time.Second })
	// A slow chat.update keeps the buttons on screen for the later clicks.
	w.slack.SetLatency("chat.update", 6*time.Second)
	bot := w.start("bot", nil)

	t.Run("a click that loses to another", func(t *testing.T) {
		w := w.in(t)
		w.command(alice, deploys, running)
		conf := w.confirmation(deploys, running)
		w.click(bob, conf, "stop")
		w.waitCalls("StopDeployment", running, 1)
		w.click(carol, conf, "stop")
		w.ephemeral(carol, deploys, "<@"+bob+"> already pressed Stop at")
		w.click(alice, conf, "cancel")
		w.ephemeral(alice, deploys, "<@"+bob+"> already pressed Stop at")
		w.threadReply(conf, "CodeDeploy answered *Pending*")
		if got := w.calls("StopDeployment", running); len(got) != 1 {
			t.Errorf("StopDeployment calls = %v", got)
		}
	})
	t.Run("a Stop after a Cancel", func(t *testing.T) {
		w := w.in(t)
		id := w.cd.Put(fakecodedeploy.Deployment{ID: "d-ANSWERS01", Application: "checkout", Group: "production"})
		w.command(alice, deploys, id)
		conf := w.confirmation(deploys, id)
		w.click(alice, conf, "cancel")
		w.threadReply(conf, "Cancelled by <@"+alice+">")
		w.click(bob, conf, "stop")
		w.ephemeral(bob, deploys, "<@"+alice+"> already cancelled it at")
		if got := w.calls("StopDeployment", id); len(got) != 0 {
			t.Errorf("StopDeployment calls after a Cancel = %v", got)
		}
	})
	t.Run("a button whose value names another channel", func(t *testing.T) {
		w := w.in(t)
		id := w.cd.Put(fakecodedeploy.Deployment{ID: "d-ANSWERS02", Application: "checkout", Group: "production"})
		w.command(alice, deploys, id)
		conf := w.confirmation(deploys, id)
		// Signed with the bot's own key, so only the channel disagrees.
		c, err := signingKey.Decode(conf.Buttons()[0].Value)
		if err != nil || c.ChannelID != deploys {
			t.Fatalf("button value %q does not carry the channel: %+v, %v", conf.Buttons()[0].Value, c, err)
		}
		c.ChannelID = random
		value := signingKey.Encode(c)
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		envID, err := w.slack.ClickButton(ctx, fakeslack.Click{UserID: bob, ChannelID: deploys, MessageTS: conf.TS, ActionID: "stop", ForgedValue: &value})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.slack.WaitAck(ctx, envID); err != nil {
			t.Fatal(err)
		}
		w.ephemeral(bob, deploys, "it belongs to a confirmation in another channel")
		if got := bot.in(t).auditLine("refused", id).str("outcome"); got != "bad_signature" {
			t.Errorf("refused outcome = %q", got)
		}
		if got := w.calls("StopDeployment", id); len(got) != 0 {
			t.Errorf("StopDeployment calls = %v", got)
		}
		if len(w.current(conf).Buttons()) != 2 {
			t.Error("the buttons went away after a refused click")
		}
	})
}

// TestE2E_PublicOnly: a stop must be confirmed where others can see it.
func TestE2E_PublicOnly(t *testing.T) {
	w := newWorld(t)
	w.slack.AddChannel(fakeslack.Channel{ID: "D0ALICEDM", Name: "directmessage", Members: []string{alice}, Private: true, BotIsMember: true})
	w.slack.AddChannel(fakeslack.Channel{ID: "G0GROUPDM", Name: "mpdm-alice--bob-1", Members: []string{alice, bob}, Private: true, BotIsMember: true})
	w.start("bot", nil)
	for channel, kind := range map[string]string{"D0ALICEDM": "a direct message", "G0GROUPDM": "a group direct message"} {
		w.command(alice, channel, running)
		w.ephemeral(alice, channel, "I only stop deployments where others can see it: this is "+kind)
		if got := w.publicMessages(channel); len(got) != 0 {
			t.Errorf("public messages in %s: %v", channel, got)
		}
	}
	if calls := w.cd.Calls(); len(calls) != 0 {
		t.Errorf("CodeDeploy calls for a DM: %v", calls)
	}
}

// TestE2E_AuditChannelUnderARefusalFlood: Slack allows about one message
// per second per channel. A flood of refusals must not push the events
// that matter out of the audit channel: refusals are coalesced, every event
// stays in the JSON log.
func TestE2E_AuditChannelUnderARefusalFlood(t *testing.T) {
	// Slack's limit, with one post of slack above the bot's own burst of 3:
	// Slack does not publish its burst size.
	w := newWorld(t, func(o *fakeslack.Options) { o.ChannelRate = fakeslack.ChannelRate{PerSecond: 1, Burst: 4} })
	bot := w.start("bot", map[string]string{"STOPDEPLOY_AUDIT_CHANNEL": audit})
	const flood = 300
	for range flood {
		w.command(mallory, deploys, running)
	}
	w.command(alice, deploys, running)
	conf := w.confirmation(deploys, running)
	w.click(carol, conf, "stop")
	w.threadReply(conf, "is now *Stopped*")
	for _, want := range []string{"<@U0ALICE> asked to stop", "<@U0CAROL> confirmed the stop", "CodeDeploy answered *Pending*", "is now *Stopped*"} {
		w.waitMessage("audit channel: "+want, func(m fakeslack.Message) bool {
			return m.Channel == audit && strings.Contains(m.Text, want)
		})
	}
	if code, _ := bot.signal(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := w.slack.RateLimited(audit); n != 0 {
		t.Errorf("Slack refused %d audit posts as over its rate: the bot does not pace them", n)
	}
	refused := len(bot.auditsOf(running, "refused"))
	dropped := strings.Count(bot.out.text(), "dropped: too many requests in flight")
	if refused+dropped != flood || refused == 0 {
		t.Errorf("the log has %d refusals and %d dropped commands, want %d in all", refused, dropped, flood)
	}
	var lines, summaries []string
	for _, m := range w.publicMessages(audit) {
		if strings.Contains(m.Text, "<@U0MALLORY> was refused for") {
			lines = append(lines, m.Text)
		}
		if strings.Contains(m.Text, "more times since") {
			summaries = append(summaries, m.Text)
		}
	}
	if len(lines) != 1 {
		t.Errorf("audit channel has %d refusal lines for Mallory, want 1 (the rest coalesced): %q", len(lines), lines)
	}
	if want := fmt.Sprintf("<@U0MALLORY> was refused %d more times", refused-1); refused > 1 && (len(summaries) != 1 || !strings.Contains(summaries[0], want)) {
		t.Errorf("summaries = %q, want one saying %q", summaries, want)
	}
}

// TestE2E_RollbackFollowed: the rollback a stop started is followed to its
// own end, in the same thread; a failed one is said loudly.
func TestE2E_RollbackFollowed(t *testing.T) {
	w := newWorld(t)
	bot := w.start("bot", nil)

	t.Run("succeeds", func(t *testing.T) {
		w, bot := w.in(t), bot.in(t)
		id := w.cd.Put(fakecodedeploy.Deployment{ID: "d-RBACKOK01", Application: "checkout", Group: "production", PollsUntilFinal: 2})
		w.command(alice, deploys, id+" rollback")
		conf := w.confirmation(deploys, id)
		w.click(bob, conf, "stop")
		w.threadReply(conf, "is now *Stopped*; rollback deployment `d-")
		d, _ := w.cd.Deployment(id)
		w.threadReply(conf, "Rollback `"+d.RollbackDeploymentID+"` *Succeeded* at <!date^")
		// The audit line is written just after the reply is queued: wait for it.
		bot.waitLog("the rollback's final_state audit line", func(l logLine) bool {
			return l["audit"] == true && l.str("deployment") == id && l.str("outcome") == "rollback_Succeeded"
		})
		if got := bot.auditsOf(id, "final_state"); len(got) != 2 || got[1].str("outcome") != "rollback_Succeeded" {
			t.Errorf("final_state audit lines = %v, want the stop's and then the rollback's", got)
		}
	})
	t.Run("fails", func(t *testing.T) {
		w := w.in(t)
		rb := w.cd.Put(fakecodedeploy.Deployment{ID: "d-RBACKBAD1", Application: "checkout", Group: "production", Creator: "codeDeployRollback",
			FinishAfterPolls: 2, FinishStatus: "Failed", ErrorCode: "HEALTH_CONSTRAINTS", ErrorMessage: "The overall deployment failed because too many <individual> instances failed"})
		// The rollback CodeDeploy will name once the stop is done.
		id := w.cd.Put(fakecodedeploy.Deployment{ID: "d-RBACKBAD0", Application: "checkout", Group: "production", RollbackDeploymentID: rb})
		w.command(alice, deploys, id+" rollback")
		conf := w.confirmation(deploys, id)
		w.click(bob, conf, "stop")
		m := w.threadReply(conf, "Rollback `"+rb+"` ended *Failed*")
		for _, want := range []string{"<!here>", "is *not* fully restored", "too many &lt;individual&gt; instances failed"} {
			if !strings.Contains(m.Text, want) {
				t.Errorf("failed rollback reply %q lacks %q", m.Text, want)
			}
		}
	})
}

// TestE2E_CardShowsWhatIsDeployed: the revision, the description and the
// deployment configuration, escaped, in CodeDeploy's real answer shapes.
func TestE2E_CardShowsWhatIsDeployed(t *testing.T) {
	w := newWorld(t)
	w.start("bot", nil)
	tests := []struct {
		d    fakecodedeploy.Deployment
		want []string
	}{
		{fakecodedeploy.Deployment{ID: "d-REVS3OBJ1", Description: "release <!channel> 42 & more", DeploymentConfigName: "CodeDeployDefault.OneAtATime",
			Revision: &fakecodedeploy.Revision{Bucket: "artifacts", Key: "checkout/app.zip", BundleType: "zip", Version: "3HL4kqtJlcpXroDTDmJ"}},
			[]string{`*Revision*\ns3://artifacts/checkout/app.zip (version 3HL4kqtJlcpXroDTDmJ), zip`, `*Description*\nrelease &lt;!channel&gt; 42 &amp; more`,
				`*Deployment config*\nCodeDeployDefault.OneAtATime`}},
		{fakecodedeploy.Deployment{ID: "d-REVGITHB1", Revision: &fakecodedeploy.Revision{Repository: "acme/checkout", CommitID: "0123456789abcdef0123456789abcdef01234567"}},
			[]string{`*Revision*\nGitHub acme/checkout @ 0123456789ab`}},
		{fakecodedeploy.Deployment{ID: "d-REVAPPSP1", ComputePlatform: "ECS", Revision: &fakecodedeploy.Revision{Type: fakecodedeploy.RevisionAppSpecContent, SHA256: "a1b2c3d4e5f6a7b8c9d0"}},
			[]string{`*Revision*\nAppSpec, sha256 a1b2c3d4e5f6`, `*Deployment config*\nCodeDeployDefault.ECSAllAtOnce`}},
	}
	for _, tt := range tests {
		t.Run(tt.d.ID, func(t *testing.T) {
			w := w.in(t)
			tt.d.Application, tt.d.Group = "checkout", "production"
			w.cd.Put(tt.d)
			w.command(alice, deploys, tt.d.ID)
			conf := w.confirmation(deploys, tt.d.ID)
			for _, want := range tt.want {
				if !strings.Contains(string(conf.Blocks), want) {
					t.Errorf("card lacks %q: %s", want, conf.Blocks)
				}
			}
			if strings.Contains(conf.Text, "<!channel>") || strings.Contains(string(conf.Blocks), "<!channel>") {
				t.Errorf("an AWS string reached Slack unescaped")
			}
		})
	}
}
