package bot

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/commands"
	"github.com/stopdeploy/stopdeploy/deploy"
)

// handleCommand answers /stopdeploy: syntax, then authorization, then the
// deployment's state, then a public confirmation. Every refusal is told to
// the requester alone, and nothing before the confirmation changes anything.
func (b *Bot) handleCommand(ctx context.Context, cmd slack.SlashCommand) {
	log := b.log.With().Str("user", cmd.UserID).Str("channel", cmd.ChannelID).Logger()
	if cmd.TeamDomain != "" {
		b.teamDomain.Store(cmd.TeamDomain)
	}
	to := recipient{channel: cmd.ChannelID, user: cmd.UserID, responseURL: cmd.ResponseURL}
	outcome := "usage"
	defer func() { b.obs.Command(outcome) }()

	if where := directMessage(cmd); where != "" {
		log.Info().Str("outcome", "direct_message").Msg("refused a command in a direct message")
		b.tell(ctx, log, to, fmt.Sprintf("I only stop deployments where others can see it: this is %s. "+
			"Run the command in your team's deployment or incident channel instead.", where))
		b.obs.Refused("direct_message")
		outcome = "direct_message"
		return
	}

	req, err := commands.Parse(cmd.Text)
	if err != nil {
		reply := commands.Usage()
		var usage *commands.UsageError
		if errors.As(err, &usage) {
			reply = usage.Short()
		}
		log.Info().Str("outcome", "usage").Msg("answered with usage")
		b.tell(ctx, log, to, reply)
		return
	}
	log = log.With().Str("deployment", req.DeploymentID).Logger()
	ev := auditEvent{Event: evRequested, User: cmd.UserID, Channel: cmd.ChannelID, Deployment: req.DeploymentID}

	if !b.authorized(ctx, log, to, ev, "command") {
		outcome = "refused"
		return
	}

	callCtx, cancel := context.WithTimeout(ctx, b.cfg.AWSCallTimeout)
	d, err := b.deploy.Get(callCtx, req.DeploymentID)
	cancel()
	if err != nil {
		var de *deploy.Error
		explain := fmt.Sprintf("I could not look up `%s`: %s", req.DeploymentID, awsText(err.Error()))
		ev.Outcome = "lookup_failed"
		if errors.As(err, &de) {
			explain, ev.Outcome = de.Explain(), de.Kind.String()
		}
		log.Warn().Err(err).Msg("GetDeployment failed")
		b.tell(ctx, log, to, explain)
		ev.Detail = explain
		b.audit(ev)
		outcome = ev.Outcome
		return
	}
	if d.Final() {
		reply := fmt.Sprintf("Deployment `%s` (%s / %s) has already completed: it is *%s*. There is nothing to stop.",
			d.ID, awsText(d.Application), awsText(d.Group), statusWords(d.Status))
		b.tell(ctx, log, to, reply)
		ev.Outcome, ev.Detail = "already_completed", "status "+d.Status
		b.audit(ev)
		outcome = ev.Outcome
		return
	}

	conf := commands.Confirmation{
		DeploymentID: req.DeploymentID,
		Rollback:     req.Rollback,
		RequesterID:  cmd.UserID,
		ChannelID:    cmd.ChannelID,
		// The button holds whole seconds: round up, never shortening the timeout.
		ExpiresAt: ceilSecond(b.now().Add(b.cfg.ConfirmTimeout)),
	}
	text, blocks := confirmationMessage(d, conf, b.cfg.RequireSecondApprover)
	_, ts, err := b.slack.PostMessageContext(ctx, cmd.ChannelID, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
	if err != nil {
		log.Warn().Err(err).Msg("could not post the confirmation")
		ev.Outcome = "post_failed"
		reply := fmt.Sprintf("I could not post the confirmation for `%s` in this channel (%s). Nothing was stopped.", d.ID, escape(err.Error()))
		if slackError(err, "not_in_channel", "channel_not_found") {
			// chat.postEphemeral fails in such a channel too; the command's
			// response_url does not need the bot to be a member.
			ev.Outcome = "bot_not_in_channel"
			reply = fmt.Sprintf("I am not a member of this channel, so I cannot ask for confirmation here and nothing was stopped. "+
				"Invite me with `/invite @stopdeploy` (or run the command in a channel I am in), then run `%s` again.", req.Command())
			b.respond(ctx, log, to.responseURL, reply)
		} else {
			b.tell(ctx, log, to, reply)
		}
		ev.Detail = reply
		b.audit(ev)
		outcome = ev.Outcome
		return
	}
	ev.Outcome, ev.MessageTS = "confirmation_posted", ts
	outcome = ev.Outcome
	b.scheduleExpiry(click{conf: conf, user: cmd.UserID, channel: cmd.ChannelID, ts: ts, text: text, blocks: blocks,
		log: log.With().Str("message_ts", ts).Logger()})
	ev.Detail = fmt.Sprintf("%s / %s, %s, rollback %s", d.Application, d.Group, d.Status, map[bool]string{true: "yes", false: "no"}[req.Rollback])
	b.audit(ev)
}

// click is one press of a confirmation's button.
type click struct {
	conf    commands.Confirmation
	user    string
	channel string
	ts      string // the confirmation message
	text    string
	blocks  []slack.Block // the confirmation's blocks as Slack holds them now
	to      recipient
	log     zerolog.Logger
}

// handleInteraction routes block actions by block and action ID.
func (b *Bot) handleInteraction(runCtx, ctx context.Context, cb slack.InteractionCallback) {
	if cb.Type != slack.InteractionTypeBlockActions {
		b.log.Debug().Str("interaction", string(cb.Type)).Msg("ignored interaction")
		return
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if a.BlockID != blockActions {
			continue
		}
		c, err := b.readClick(cb, a)
		if err != nil {
			c.log.Warn().Err(err).Msg("ignored click with an unreadable button value")
			b.tell(ctx, c.log, c.to, "I cannot act on this button. Run `/stopdeploy` again to get a fresh confirmation.")
			continue
		}
		switch a.ActionID {
		case actionStop:
			b.handleStop(runCtx, ctx, c)
		case actionCancel:
			b.handleCancel(ctx, c)
		default:
			c.log.Warn().Str("action", a.ActionID).Msg("ignored unknown action")
		}
	}
}

func (b *Bot) readClick(cb slack.InteractionCallback, a *slack.BlockAction) (click, error) {
	c := click{
		user:    cb.User.ID,
		channel: firstNonEmpty(cb.Channel.ID, cb.Container.ChannelID),
		ts:      firstNonEmpty(cb.Container.MessageTs, cb.Message.Timestamp),
		text:    cb.Message.Text,
		blocks:  cb.Message.Blocks.BlockSet,
	}
	c.to = recipient{channel: c.channel, user: c.user, responseURL: cb.ResponseURL}
	if cb.Team.Domain != "" {
		b.teamDomain.Store(cb.Team.Domain)
	}
	c.log = b.log.With().Str("user", c.user).Str("channel", c.channel).Str("message_ts", c.ts).Logger()
	conf, err := commands.DecodeConfirmation(a.Value)
	if err != nil {
		return c, err
	}
	c.conf = conf
	c.log = c.log.With().Str("deployment", conf.DeploymentID).Logger()
	return c, nil
}

// handleStop is a press of Stop. The clicker is authorized on their own:
// anyone who can see the message can press it. Once the click is
// authorized and claimed, the next outbound call is StopDeployment: the
// card and the thread are updated after it, by the confirmation's reporter,
// so Slack's speed cannot delay a stop.
func (b *Bot) handleStop(runCtx, ctx context.Context, c click) {
	ev := auditEvent{Event: evConfirmed, User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID, MessageTS: c.ts}
	if !b.authorized(ctx, c.log, c.to, ev, "stop click") {
		return
	}
	if b.cfg.RequireSecondApprover && c.user == c.conf.RequesterID {
		reply := "A second approver is required: another person allowed to stop deployments must press Stop. You can still Cancel."
		b.tell(ctx, c.log, c.to, reply)
		b.audit(auditEvent{Event: evRefused, User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID,
			MessageTS: c.ts, Outcome: "second_approver_required", Detail: "stop click by the requester"})
		b.obs.Refused("second_approver_required")
		return
	}
	if !b.claimed(ctx, c, actionStop) {
		return
	}
	if c.conf.Expired(b.now()) {
		b.expire(c)
		return
	}

	ev.Outcome, ev.Detail = "stopping", "rollback "+map[bool]string{true: "yes", false: "no"}[c.conf.Rollback]
	b.auditLog(ev) // posted to the audit channel after the stop: nothing goes before it
	callCtx, cancel := context.WithTimeout(ctx, b.cfg.AWSCallTimeout)
	res, err := b.deploy.Stop(callCtx, c.conf.DeploymentID, c.conf.Rollback)
	cancel()
	b.auditPost(ev)

	rep := b.reporterFor(c)
	at := b.now()
	blocks := withState(c.blocks, stateStopping(c.user, at))
	if err == nil {
		b.obs.Stop(res.Status)
		rep.setCard(blocks)
		rep.reply(stopResultText(c.conf, c.user, res))
		b.audit(auditEvent{Event: evStopResult, User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID,
			MessageTS: c.ts, Outcome: firstNonEmpty(res.Status, "no_status"), Detail: res.Message})
		b.startFollow(runCtx, c, rep, blocks)
		return
	}

	var de *deploy.Error
	if !errors.As(err, &de) {
		de = &deploy.Error{Op: "StopDeployment", DeploymentID: c.conf.DeploymentID, Err: err}
	}
	c.log.Warn().Err(err).Msg("StopDeployment failed")
	switch {
	case de.Kind == deploy.KindAlreadyCompleted:
		// Not a failure: the deployment ended before (or because of) this
		// stop. An SDK retry after our own accepted attempt answers this too.
		b.obs.Stop("already_completed")
		b.audit(auditEvent{Event: evStopResult, User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID,
			MessageTS: c.ts, Outcome: "already_completed", Detail: "CodeDeploy says the deployment had already completed"})
		b.alreadyCompleted(runCtx, ctx, c, rep, blocks)
	case de.Unknown():
		b.obs.Stop("unknown")
		rep.setCard(withState(c.blocks, stateUnconfirmed(c.user, at)))
		rep.reply(fmt.Sprintf(":grey_question: %s confirmed, but CodeDeploy did not confirm the stop of %s: %s "+
			"I will follow the deployment and post here what it really becomes.", mention(c.user), code(c.conf.DeploymentID), de.Explain()))
		b.audit(auditEvent{Event: evStopError, User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID,
			MessageTS: c.ts, Outcome: "unknown", Detail: de.Explain()})
		b.startFollow(runCtx, c, rep, blocks)
	default:
		b.obs.Stop("error")
		rep.setCard(withState(c.blocks, stateFailed(c.user, at)))
		rep.reply(fmt.Sprintf(":x: %s confirmed, but the stop failed. %s", mention(c.user), de.Explain()))
		b.audit(auditEvent{Event: evStopError, User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID,
			MessageTS: c.ts, Outcome: de.Kind.String(), Detail: de.Explain()})
	}
}

// alreadyCompleted says what a deployment CodeDeploy would not stop really
// is, and follows it if it is not final yet (a stop of ours was accepted
// and is under way).
func (b *Bot) alreadyCompleted(runCtx, ctx context.Context, c click, rep *reporter, blocks []slack.Block) {
	callCtx, cancel := context.WithTimeout(ctx, b.cfg.AWSCallTimeout)
	d, err := b.deploy.Get(callCtx, c.conf.DeploymentID)
	cancel()
	switch {
	case err != nil:
		rep.reply(fmt.Sprintf(":grey_question: CodeDeploy says %s has already completed, but I could not read its state: %s",
			code(c.conf.DeploymentID), explain(err)))
		b.startFollow(runCtx, c, rep, blocks)
	case d.Final():
		since := ""
		if !d.CompleteTime.IsZero() {
			since = " (since " + slackTime(d.CompleteTime) + ")"
		}
		rep.reply(fmt.Sprintf("%s %s is already *%s*%s: there was nothing left to stop.", statusEmoji(d.Status), code(d.ID), statusWords(d.Status), since))
		rep.setCard(withState(blocks, stateFinal(d, c.user)))
		b.audit(auditEvent{Event: evFinalState, User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID,
			MessageTS: c.ts, Outcome: d.Status, Detail: finalDetail(d)})
		b.followRollback(runCtx, c, rep, d)
	default:
		rep.setCard(blocks)
		rep.reply(fmt.Sprintf(":hourglass_flowing_sand: %s is stopping (*%s*). I will post its final state here.", code(d.ID), statusWords(d.Status)))
		b.startFollow(runCtx, c, rep, blocks)
	}
}

// handleCancel is a press of Cancel: the requester may always cancel their
// own request, anyone else must be allowed to stop deployments.
func (b *Bot) handleCancel(ctx context.Context, c click) {
	ev := auditEvent{Event: evCancelled, User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID, MessageTS: c.ts}
	if c.user != c.conf.RequesterID && !b.authorized(ctx, c.log, c.to, ev, "cancel click") {
		return
	}
	if !b.claimed(ctx, c, actionCancel) {
		return
	}
	at := b.now()
	rep := b.reporterFor(c)
	rep.setCard(withState(c.blocks, stateCancelled(c.user, at)))
	rep.reply(fmt.Sprintf(":no_entry_sign: Cancelled by %s at %s. Nothing was stopped.", mention(c.user), slackTime(at)))
	ev.Outcome, ev.Detail = "cancelled", "nothing was stopped"
	b.audit(ev)
}

// claimed reports whether this click is the one that acts on its
// confirmation, and tells the clicker what happened when it is not: the
// click is in another channel than its confirmation, comes from a stale
// view of a card already acted on, or lost to an earlier click.
func (b *Bot) claimed(ctx context.Context, c click, action string) bool {
	if c.conf.ChannelID != c.channel {
		c.log.Warn().Str("confirmation_channel", c.conf.ChannelID).Msg("refused a click whose button belongs to another channel")
		b.tell(ctx, c.log, c.to, "I cannot act on this button: it belongs to a confirmation in another channel. Nothing was stopped.")
		b.audit(auditEvent{Event: evRefused, User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID,
			MessageTS: c.ts, Outcome: "wrong_channel", Detail: "button of a confirmation in <#" + c.conf.ChannelID + ">"})
		b.obs.Refused("wrong_channel")
		return false
	}
	if !hasButtons(c.blocks) {
		c.log.Info().Msg("click on a confirmation that has no buttons any more")
		b.tell(ctx, c.log, c.to, "This confirmation was already acted on: "+firstNonEmpty(stateOf(c.blocks), "see its thread.")+" Nothing more was done.")
		return false
	}
	won, ok := b.claims.claim(c.channel+"/"+c.ts, c.conf.ExpiresAt, c.user, action)
	if !ok {
		c.log.Info().Str("winner", won.user).Msg("click lost: this confirmation is already being handled")
		if won.action == actionExpire {
			b.tell(ctx, c.log, c.to, fmt.Sprintf("This confirmation expired at %s; nothing was stopped. Run `%s` again if the deployment still needs stopping.",
				slackTime(c.conf.ExpiresAt), c.conf.Request().Command()))
			return false
		}
		what := "pressed Stop"
		if won.action == actionCancel {
			what = "cancelled it"
		}
		who := mention(won.user)
		if won.user == c.user {
			who = "You"
		}
		b.tell(ctx, c.log, c.to, fmt.Sprintf("%s already %s at %s: your press changed nothing. The thread has the outcome.", who, what, slackTime(won.at)))
		return false
	}
	b.forgetExpiry(c.channel + "/" + c.ts)
	return true
}

// actionExpire claims a confirmation for the expiry sweep.
const actionExpire = "expire"

// scheduleExpiry removes the buttons of a confirmation this process posted
// once it expires, and marks it expired. Best effort: a restart forgets it
// (a later click is refused as expired anyway), and a click that won the
// claim first keeps the card.
func (b *Bot) scheduleExpiry(c click) {
	key := c.channel + "/" + c.ts
	b.expiryMu.Lock()
	defer b.expiryMu.Unlock()
	if b.expiries == nil {
		b.expiries = make(map[string]*time.Timer)
	}
	b.expiries[key] = time.AfterFunc(c.conf.ExpiresAt.Sub(b.now()), func() {
		defer b.recoverGoroutine("expiry")
		b.forgetExpiry(key)
		if b.runCtx == nil || b.runCtx.Err() != nil {
			return // shutting down: the next process or a click will say it
		}
		if _, ok := b.claims.claim(c.channel+"/"+c.ts, c.conf.ExpiresAt, "", actionExpire); !ok {
			return
		}
		b.reporterFor(c).setCard(withState(c.blocks, stateExpired(c.conf.ExpiresAt)))
		b.audit(auditEvent{Event: evExpired, User: c.conf.RequesterID, Channel: c.channel, Deployment: c.conf.DeploymentID,
			MessageTS: c.ts, Outcome: "expired", Detail: "nobody confirmed before " + c.conf.ExpiresAt.UTC().Format("15:04:05 UTC")})
	})
}

// forgetExpiry drops key's expiry timer: a confirmation acted on needs no
// sweep, and the timer would hold its card in memory until it expires.
func (b *Bot) forgetExpiry(key string) {
	b.expiryMu.Lock()
	defer b.expiryMu.Unlock()
	if t, ok := b.expiries[key]; ok {
		t.Stop()
		delete(b.expiries, key)
	}
}

func (b *Bot) expire(c click) {
	line := fmt.Sprintf(":hourglass: This confirmation expired at %s; nothing was stopped. Run `%s` again if the deployment still needs stopping.",
		slackTime(c.conf.ExpiresAt), c.conf.Request().Command())
	rep := b.reporterFor(c)
	rep.setCard(withState(c.blocks, stateExpired(c.conf.ExpiresAt)))
	rep.reply(line)
	b.audit(auditEvent{Event: evExpired, User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID,
		MessageTS: c.ts, Outcome: "expired", Detail: "click after " + c.conf.ExpiresAt.UTC().Format("15:04:05 UTC")})
}

// authorized checks the user and channel, and tells a refused user why.
func (b *Bot) authorized(ctx context.Context, log zerolog.Logger, to recipient, ev auditEvent, what string) bool {
	decision, err := b.auth.Check(ctx, to.user, to.channel)
	if err != nil {
		log.Error().Err(err).Msg("authorization check failed; refusing")
	}
	if decision.Allowed && err == nil {
		return true
	}
	if decision.Reason == "" {
		decision.Reason = "I could not check whether you may do this, so I will not. Try again in a minute."
	}
	b.tell(ctx, log, to, decision.Reason)
	ev.Event, ev.Outcome, ev.Detail = evRefused, firstNonEmpty(decision.Code, "auth_error"), what
	b.audit(ev)
	b.obs.Refused(ev.Outcome)
	return false
}

// directMessage names the kind of conversation a command came from when it
// is a direct message or a group DM, where nobody else would see the
// confirmation. DM IDs start with D; Slack names the conversation of a
// slash command "directmessage" for a DM and "mpdm-…" for a group DM.
func directMessage(cmd slack.SlashCommand) string {
	switch {
	case strings.HasPrefix(cmd.ChannelID, "D") || cmd.ChannelName == "directmessage":
		return "a direct message"
	case strings.HasPrefix(cmd.ChannelName, "mpdm-"):
		return "a group direct message"
	}
	return ""
}

// explain is the plain-words form of a CodeDeploy error.
func explain(err error) string {
	var de *deploy.Error
	if errors.As(err, &de) {
		return de.Explain()
	}
	return awsText(err.Error())
}

// recipient is someone to answer privately.
type recipient struct {
	channel, user, responseURL string
}

// tell sends an ephemeral message to one user. chat.postEphemeral fails where
// the bot is not a channel member; the payload's response_url still works there.
func (b *Bot) tell(ctx context.Context, log zerolog.Logger, to recipient, text string) {
	text = limit(text, maxText)
	_, err := b.slack.PostEphemeralContext(ctx, to.channel, to.user, slack.MsgOptionText(text, false))
	if err == nil {
		return
	}
	log.Debug().Err(err).Msg("chat.postEphemeral failed; answering through response_url")
	b.respond(ctx, log, to.responseURL, text)
}

// respond answers through a response_url, visible only to the user.
func (b *Bot) respond(ctx context.Context, log zerolog.Logger, responseURL, text string) {
	if responseURL == "" {
		log.Error().Msg("could not answer the user: no response_url")
		return
	}
	_, _, err := b.slack.PostMessageContext(ctx, "",
		slack.MsgOptionResponseURL(responseURL, slack.ResponseTypeEphemeral), slack.MsgOptionText(text, false))
	if err != nil {
		log.Error().Err(withoutURL(err)).Msg("could not answer the user through response_url")
	}
}

// slackError reports whether err is a Slack API error with one of codes.
func slackError(err error, codes ...string) bool {
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.Err == c {
			return true
		}
	}
	return false
}

// withoutURL drops the URL from an HTTP client error: a response_url is a
// credential (anyone holding it may post for 30 minutes) and must not be logged.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s response_url: %w", ue.Op, ue.Err)
	}
	return err
}

func ceilSecond(t time.Time) time.Time {
	if down := t.Truncate(time.Second); !down.Equal(t) {
		return down.Add(time.Second)
	}
	return t
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
