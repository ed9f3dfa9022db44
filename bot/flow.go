package bot

import (
	"context"
	"errors"
	"fmt"
	"net/url"
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
	to := recipient{channel: cmd.ChannelID, user: cmd.UserID, responseURL: cmd.ResponseURL}
	outcome := "usage"
	defer func() { b.obs.Command(outcome) }()

	req, err := commands.Parse(cmd.Text)
	if err != nil {
		reply := commands.Usage()
		var usage *commands.UsageError
		if errors.As(err, &usage) {
			reply = usage.Reason + "\n\n" + reply
		}
		log.Info().Str("outcome", "usage").Msg("answered with usage")
		b.tell(ctx, log, to, reply)
		return
	}
	log = log.With().Str("deployment", req.DeploymentID).Logger()
	ev := auditEvent{Event: "requested", User: cmd.UserID, Channel: cmd.ChannelID, Deployment: req.DeploymentID}

	if !b.authorized(ctx, log, to, ev, "command") {
		outcome = "refused"
		return
	}

	callCtx, cancel := context.WithTimeout(ctx, b.cfg.AWSCallTimeout)
	d, err := b.deploy.Get(callCtx, req.DeploymentID)
	cancel()
	if err != nil {
		var de *deploy.Error
		explain := fmt.Sprintf("I could not look up `%s`: %v", req.DeploymentID, err)
		ev.Outcome = "lookup_failed"
		if errors.As(err, &de) {
			explain, ev.Outcome = de.Explain(), de.Kind.String()
		}
		log.Warn().Err(err).Msg("GetDeployment failed")
		b.tell(ctx, log, to, explain)
		ev.Detail = explain
		b.audit(ctx, log, ev)
		outcome = ev.Outcome
		return
	}
	if d.Final() {
		reply := fmt.Sprintf("Deployment `%s` (%s / %s) has already completed: it is *%s*. There is nothing to stop.",
			d.ID, escape(d.Application), escape(d.Group), escape(d.Status))
		b.tell(ctx, log, to, reply)
		ev.Outcome, ev.Detail = "already_completed", "status "+d.Status
		b.audit(ctx, log, ev)
		outcome = ev.Outcome
		return
	}

	conf := commands.Confirmation{
		DeploymentID: req.DeploymentID,
		Rollback:     req.Rollback,
		RequesterID:  cmd.UserID,
		// The button holds whole seconds: round up, never shortening the timeout.
		ExpiresAt: ceilSecond(b.now().Add(b.cfg.ConfirmTimeout)),
	}
	text, blocks := confirmationMessage(d, conf, b.cfg.RequireSecondApprover)
	_, ts, err := b.slack.PostMessageContext(ctx, cmd.ChannelID, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
	if err != nil {
		log.Warn().Err(err).Msg("could not post the confirmation")
		ev.Outcome = "post_failed"
		reply := fmt.Sprintf("I could not post the confirmation for `%s` in this channel (%v). Nothing was stopped.", d.ID, err)
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
		b.audit(ctx, log, ev)
		outcome = ev.Outcome
		return
	}
	ev.Outcome, ev.MessageTS = "confirmation_posted", ts
	outcome = ev.Outcome
	ev.Detail = fmt.Sprintf("asked for confirmation (%s / %s, %s, rollback %t)", d.Application, d.Group, d.Status, req.Rollback)
	b.audit(ctx, log, ev)
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
// anyone who can see the message can press it.
func (b *Bot) handleStop(runCtx, ctx context.Context, c click) {
	ev := auditEvent{Event: "confirmed", User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID, MessageTS: c.ts}
	if !b.authorized(ctx, c.log, c.to, ev, "stop click") {
		return
	}
	if b.cfg.RequireSecondApprover && c.user == c.conf.RequesterID {
		reply := "A second approver is required: another person allowed to stop deployments must press Stop. You can still Cancel."
		b.tell(ctx, c.log, c.to, reply)
		b.audit(ctx, c.log, auditEvent{Event: "refused", User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID,
			MessageTS: c.ts, Outcome: "second_approver_required", Detail: "stop click by the requester"})
		b.obs.Refused("second_approver_required")
		return
	}
	if !b.claimed(c) {
		return
	}
	if c.conf.Expired(b.now()) {
		b.expire(ctx, c)
		return
	}

	ev.Outcome, ev.Detail = "stopping", fmt.Sprintf("confirmed the stop (rollback %t)", c.conf.Rollback)
	b.audit(ctx, c.log, ev)
	// Buttons go first, so nobody else presses Stop while CodeDeploy works.
	blocks := withOutcome(c.blocks, blockOutcome, fmt.Sprintf(":octagonal_sign: Stop confirmed by %s at %s.", mention(c.user), slackTime(b.now())))
	b.update(ctx, c, blocks)

	callCtx, cancel := context.WithTimeout(ctx, b.cfg.AWSCallTimeout)
	res, err := b.deploy.Stop(callCtx, c.conf.DeploymentID, c.conf.Rollback)
	cancel()
	if err != nil {
		explain, kind := err.Error(), "error"
		var de *deploy.Error
		if errors.As(err, &de) {
			explain, kind = de.Explain(), de.Kind.String()
		}
		c.log.Warn().Err(err).Msg("StopDeployment failed")
		b.obs.Stop("error")
		b.postThread(ctx, c, fmt.Sprintf(":x: %s confirmed, but the stop failed. %s", mention(c.user), explain))
		b.update(ctx, c, withOutcome(blocks, blockFinal, ":x: The stop failed: see the thread."))
		b.audit(ctx, c.log, auditEvent{Event: "stop_error", User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID,
			MessageTS: c.ts, Outcome: kind, Detail: explain})
		return
	}
	b.obs.Stop(res.Status)
	b.postThread(ctx, c, stopResultText(c.conf, c.user, res))
	b.audit(ctx, c.log, auditEvent{Event: "stop_result", User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID,
		MessageTS: c.ts, Outcome: res.Status, Detail: res.Message})

	b.follows.Go(func() { b.follow(runCtx, ctx, c, blocks) })
}

// handleCancel is a press of Cancel: the requester may always cancel their
// own request, anyone else must be allowed to stop deployments.
func (b *Bot) handleCancel(ctx context.Context, c click) {
	ev := auditEvent{Event: "cancelled", User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID, MessageTS: c.ts}
	if c.user != c.conf.RequesterID && !b.authorized(ctx, c.log, c.to, ev, "cancel click") {
		return
	}
	if !b.claimed(c) {
		return
	}
	line := fmt.Sprintf(":no_entry_sign: Cancelled by %s at %s. Nothing was stopped.", mention(c.user), slackTime(b.now()))
	b.update(ctx, c, withOutcome(c.blocks, blockOutcome, line))
	b.postThread(ctx, c, line)
	ev.Outcome, ev.Detail = "cancelled", "nothing was stopped"
	b.audit(ctx, c.log, ev)
}

// claimed reports whether this click is the one that acts on its
// confirmation. Clicks on a message whose buttons are gone come from a
// stale view, and later clicks lose to the first.
func (b *Bot) claimed(c click) bool {
	if !hasButtons(c.blocks) {
		c.log.Info().Msg("ignored click on a confirmation that has no buttons any more")
		return false
	}
	if !b.claims.claim(c.channel+"/"+c.ts, c.conf.ExpiresAt) {
		c.log.Info().Msg("ignored click: this confirmation is already being handled")
		return false
	}
	return true
}

func (b *Bot) expire(ctx context.Context, c click) {
	line := fmt.Sprintf(":hourglass: This confirmation expired at %s; nothing was stopped. Run `%s` again if the deployment still needs stopping.",
		slackTime(c.conf.ExpiresAt), c.conf.Request().Command())
	b.update(ctx, c, withOutcome(c.blocks, blockOutcome, line))
	b.postThread(ctx, c, line)
	b.audit(ctx, c.log, auditEvent{Event: "expired", User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID,
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
	ev.Event, ev.Outcome, ev.Detail = "refused", firstNonEmpty(decision.Code, "auth_error"), what
	b.audit(ctx, log, ev)
	b.obs.Refused(ev.Outcome)
	return false
}

// recipient is someone to answer privately.
type recipient struct {
	channel, user, responseURL string
}

// tell sends an ephemeral message to one user. chat.postEphemeral fails where
// the bot is not a channel member; the payload's response_url still works there.
func (b *Bot) tell(ctx context.Context, log zerolog.Logger, to recipient, text string) {
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

func (b *Bot) postThread(ctx context.Context, c click, text string) {
	if _, _, err := b.slack.PostMessageContext(ctx, c.channel, slack.MsgOptionText(text, false), slack.MsgOptionTS(c.ts)); err != nil {
		c.log.Error().Err(err).Msg("could not post in the confirmation's thread")
	}
}

// update replaces the confirmation's blocks. Blocks are always sent:
// chat.update without them would keep the old ones, buttons included.
func (b *Bot) update(ctx context.Context, c click, blocks []slack.Block) {
	if _, _, _, err := b.slack.UpdateMessageContext(ctx, c.channel, c.ts, slack.MsgOptionText(c.text, false), slack.MsgOptionBlocks(blocks...)); err != nil {
		c.log.Error().Err(err).Msg("could not update the confirmation")
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
