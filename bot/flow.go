package bot

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/commands"
	"github.com/stopdeploy/stopdeploy/deploy"
	"github.com/stopdeploy/stopdeploy/policy"
	"github.com/stopdeploy/stopdeploy/state"
)

// handleCommand answers /stopdeploy: syntax, then the request path.
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
	switch {
	case req.List:
		outcome = b.list(ctx, log, to, req)
	case req.DeploymentID == "":
		outcome = b.byGroup(ctx, log, to, req)
	default:
		outcome = b.request(ctx, log, to, req, deploy.Place{})
	}
}

// request is the one path from "stop this deployment" to a public
// confirmation, for a typed command and a pick from a list alike: the
// deployment is found (only in place, when one is given), then the policy
// decides on it, then the confirmation is posted. Every refusal is told to
// the requester alone, and nothing before the confirmation changes
// anything. It returns the outcome, for the command metric.
func (b *Bot) request(ctx context.Context, log zerolog.Logger, to recipient, req commands.Request, place deploy.Place) string {
	log = log.With().Str("deployment", req.DeploymentID).Logger()
	ev := auditEvent{Event: evRequested, User: to.user, Channel: to.channel, Deployment: req.DeploymentID}

	// When the first rule matches every deployment it decides every
	// request: refuse before asking AWS anything (the allow-list variables
	// are such a rule). Otherwise the rule depends on the deployment, so
	// a refused user learns its application and group: they could read
	// them in the console anyway.
	if first := b.policy.Rules; len(first) > 0 && first[0].MatchesEverything() {
		if _, d, err := b.policy.MayRequest(ctx, policy.Target{}, to.user, to.channel, b.members); !d.Allowed || err != nil {
			b.refuse(ctx, log, to, ev, d, err, "command")
			return "refused"
		}
	}

	d, ok := b.locate(ctx, log, to, req, place, &ev)
	if !ok {
		return ev.Outcome
	}
	log = log.With().Str("account", d.Place.Account).Str("region", d.Place.Region).Logger()
	ev.Account, ev.Region = d.Place.Account, d.Place.Region
	if d.Final() {
		reply := fmt.Sprintf("Deployment `%s` (%s / %s) has already completed: it is *%s*. There is nothing to stop.",
			d.ID, awsText(d.Application), awsText(d.Group), statusWords(d.Status))
		b.tell(ctx, log, to, reply)
		ev.Outcome, ev.Detail = "already_completed", "status "+d.Status
		b.audit(ev)
		return ev.Outcome
	}

	target := policy.Target{Application: d.Application, Group: d.Group, Account: d.Place.Account, Region: d.Place.Region}
	rule, decision, err := b.policy.MayRequest(ctx, target, to.user, to.channel, b.members)
	if !decision.Allowed || err != nil {
		b.refuse(ctx, log, to, ev, decision, err, "command for "+target.String())
		return "refused"
	}

	conf := commands.Confirmation{
		Account:      d.Place.Account,
		Region:       d.Place.Region,
		DeploymentID: d.ID,
		Rollback:     req.Rollback,
		RequesterID:  to.user,
		ChannelID:    to.channel,
		// The button holds whole seconds: round up, never shortening the timeout.
		ExpiresAt: ceilSecond(b.now().Add(b.cfg.ConfirmTimeout)),
		Rule:      rule.Name,
		Needed:    rule.Approvals,
	}
	pending, ok := b.begin(ctx, to, conf, &ev)
	if !ok {
		return ev.Outcome
	}
	text, blocks := confirmationMessage(b.cfg.SigningKey, d, conf, rule)
	_, ts, err := b.slack.PostMessageContext(ctx, to.channel, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
	if err != nil {
		b.abandon(ctx, pending)
		log.Warn().Err(err).Msg("could not post the confirmation")
		ev.Outcome = "post_failed"
		reply := fmt.Sprintf("I could not post the confirmation for `%s` in this channel (%s). Nothing was stopped.", d.ID, escape(err.Error()))
		if slackError(err, "not_in_channel", "channel_not_found") {
			// chat.postEphemeral fails in such a channel too; the command's
			// response_url does not need the bot to be a member.
			ev.Outcome = "bot_not_in_channel"
			reply = fmt.Sprintf("I am not a member of this channel, so I cannot ask for confirmation here and nothing was stopped. "+
				"Invite me with `/invite @stopdeploy` (or run the command in a channel I am in), then run `%s` again.", req.Command())
			b.respond(ctx, log, to.responseURL, slack.MsgOptionText(reply, false))
		} else {
			b.tell(ctx, log, to, reply)
		}
		ev.Detail = reply
		b.audit(ev)
		return ev.Outcome
	}
	b.posted(ctx, pending, ts, to)
	ev.Outcome, ev.MessageTS = "confirmation_posted", ts
	b.scheduleExpiry(click{conf: conf, user: to.user, channel: to.channel, ts: ts, text: text, card: newCard(blocks, nil),
		log: log.With().Str("message_ts", ts).Logger()})
	ev.Detail = fmt.Sprintf("%s / %s, %s, rollback %s, rule %q", d.Application, d.Group, d.Status, yesNo(req.Rollback), rule.Name)
	if rule.Approvals > 0 {
		ev.Detail += fmt.Sprintf(", %d approval(s) needed", rule.Approvals)
	}
	b.audit(ev)
	return ev.Outcome
}

func yesNo(v bool) string { return map[bool]string{true: "yes", false: "no"}[v] }

// locate finds the deployment req names: in place when one is given,
// otherwise in every configured account and region. When it is not found
// in exactly one place it tells the user why, audits ev, and returns false.
func (b *Bot) locate(ctx context.Context, log zerolog.Logger, to recipient, req commands.Request, place deploy.Place, ev *auditEvent) (deploy.Deployment, bool) {
	fail := func(outcome, reply string) (deploy.Deployment, bool) {
		b.tell(ctx, log, to, reply)
		ev.Outcome, ev.Detail = outcome, reply
		b.audit(*ev)
		return deploy.Deployment{}, false
	}
	if place != (deploy.Place{}) {
		callCtx, cancel := context.WithTimeout(ctx, b.cfg.AWSCallTimeout)
		d, err := b.deploy.Get(callCtx, place, req.DeploymentID)
		cancel()
		if err != nil {
			log.Warn().Err(err).Msg("GetDeployment failed")
			return fail(errorOutcome(err), explain(err))
		}
		return d, true
	}
	found, failed := b.deploy.Find(ctx, req.DeploymentID)
	places := b.deploy.Places()
	if req.Region != "" {
		// A console link's region decides: only places there count.
		found = only(found, func(d deploy.Deployment) bool { return d.Place.Region == req.Region })
		failed = only(failed, func(f deploy.PlaceFailure) bool { return f.Place.Region == req.Region })
		places = only(places, func(p deploy.Place) bool { return p.Region == req.Region })
		if len(places) == 0 {
			return fail("region_not_searched", fmt.Sprintf("That link is for region %s, which I am not configured to search (I search %s). Nothing was stopped.",
				code(req.Region), placeList(b.deploy.Places())))
		}
	}
	switch {
	case len(found) == 1:
		return found[0], true
	case len(found) > 1:
		b.pickList(ctx, log, to, req, found)
		ev.Outcome, ev.Detail = "ambiguous", fmt.Sprintf("found in %d places", len(found))
		b.audit(*ev)
		return deploy.Deployment{}, false
	case len(places) == 1 && len(failed) == 1 && failed[0].Err != nil:
		// One place: its error in full, as CodeDeploy gave it.
		log.Warn().Err(failed[0].Err).Msg("GetDeployment failed")
		return fail(failed[0].Err.Kind.String(), failed[0].Err.Explain())
	case len(failed) == 0:
		var reply string
		if len(places) == 1 {
			reply = (&deploy.Error{Op: "GetDeployment", DeploymentID: req.DeploymentID, Kind: deploy.KindNotFound, Place: places[0]}).Explain()
		} else {
			reply = fmt.Sprintf("CodeDeploy has no deployment %s in any of the %d places I searched (%s).", code(req.DeploymentID), len(places), placeList(places))
		}
		return fail(deploy.KindNotFound.String(), reply)
	}
	lines := make([]string, len(failed))
	for i, f := range failed {
		lines[i] = "• " + awsText(f.String())
	}
	reply := fmt.Sprintf("I did not find %s in the places I could search, and I could not search %d of them, so it may be there:\n%s",
		code(req.DeploymentID), len(failed), strings.Join(lines, "\n"))
	for _, f := range failed {
		log.Warn().Str("place", f.Place.String()).Str("reason", f.Reason).Msg("could not search a place")
	}
	return fail("lookup_failed", reply)
}

// only is xs without the elements keep rejects; xs is not changed.
func only[T any](xs []T, keep func(T) bool) []T {
	return slices.DeleteFunc(slices.Clone(xs), func(x T) bool { return !keep(x) })
}

func placeList(places []deploy.Place) string {
	names := make([]string, len(places))
	for i, p := range places {
		names[i] = p.String()
	}
	return strings.Join(names, ", ")
}

func errorOutcome(err error) string {
	var de *deploy.Error
	if errors.As(err, &de) {
		return de.Kind.String()
	}
	return "lookup_failed"
}

// click is one press of a confirmation's button.
type click struct {
	conf    commands.Confirmation
	user    string
	channel string
	ts      string // the confirmation message
	text    string
	card    *card // the confirmation's blocks as Slack holds them now
	to      recipient
	log     zerolog.Logger
}

func (c click) key() string { return c.channel + "/" + c.ts }

func (c click) place() deploy.Place {
	return deploy.Place{Account: c.conf.Account, Region: c.conf.Region}
}

// event is an audit event of c's confirmation.
func (c click) event(event, user, outcome, detail string) auditEvent {
	return auditEvent{Event: event, User: user, Channel: c.channel, Deployment: c.conf.DeploymentID,
		Account: c.conf.Account, Region: c.conf.Region, MessageTS: c.ts, Outcome: outcome, Detail: detail}
}

// handleInteraction routes block actions by block and action ID. rawBlocks
// are the message's blocks as written, when cb was decoded without them
// (interaction.callback); nil means cb.Message.Blocks holds them.
func (b *Bot) handleInteraction(runCtx, ctx context.Context, cb slack.InteractionCallback, rawBlocks []byte) {
	if cb.Type != slack.InteractionTypeBlockActions {
		b.log.Debug().Str("interaction", string(cb.Type)).Msg("ignored interaction")
		return
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if strings.HasPrefix(a.BlockID, blockPick) && strings.HasPrefix(a.ActionID, actionPick) {
			b.handlePick(ctx, cb, a)
			continue
		}
		if a.BlockID != blockActions {
			continue
		}
		c, err := b.readClick(cb, a, rawBlocks)
		if err != nil {
			c.log.Warn().Err(err).Msg("refused a click whose button value does not verify")
			b.badButton(ctx, c, err)
			continue
		}
		switch a.ActionID {
		case actionStop, actionApprove:
			b.handleStop(runCtx, ctx, c)
		case actionCancel:
			b.handleCancel(ctx, c)
		default:
			c.log.Warn().Str("action", a.ActionID).Msg("ignored unknown action")
		}
	}
}

// readClick verifies the pressed button's value and that it belongs where
// it was pressed: its channel, and its message once the value names one.
func (b *Bot) readClick(cb slack.InteractionCallback, a *slack.BlockAction, rawBlocks []byte) (click, error) {
	c := click{
		user:    cb.User.ID,
		channel: firstNonEmpty(cb.Channel.ID, cb.Container.ChannelID),
		ts:      firstNonEmpty(cb.Container.MessageTs, cb.Message.Timestamp),
		text:    cb.Message.Text,
		card:    newCard(cb.Message.Blocks.BlockSet, rawBlocks),
	}
	c.to = recipient{channel: c.channel, user: c.user, responseURL: cb.ResponseURL}
	if cb.Team.Domain != "" {
		b.teamDomain.Store(cb.Team.Domain)
	}
	c.log = b.log.With().Str("user", c.user).Str("channel", c.channel).Str("message_ts", c.ts).Logger()
	conf, err := b.cfg.SigningKey.Decode(a.Value)
	if err != nil {
		return c, err
	}
	c.conf = conf
	c.log = c.log.With().Str("deployment", conf.DeploymentID).Str("account", conf.Account).Str("region", conf.Region).Logger()
	switch {
	case conf.ChannelID != c.channel:
		return c, &elsewhereError{"channel", conf.ChannelID, c.channel}
	case conf.MessageTS != "" && conf.MessageTS != c.ts:
		return c, &elsewhereError{"message", conf.MessageTS, c.ts}
	}
	return c, nil
}

// badButton refuses a click whose value fails verification or disagrees
// with the click. Nothing is called in AWS: a leaked bot token lets anyone
// post messages as the bot, and it must not let them forge a stop, an
// approval or a later expiry.
func (b *Bot) badButton(ctx context.Context, c click, err error) {
	reply := "I cannot act on this button. Nothing was stopped. Run `/stopdeploy` again to get a fresh confirmation."
	var elsewhere *elsewhereError
	if errors.As(err, &elsewhere) {
		reply = "I cannot act on this button: it belongs to a confirmation in another " + elsewhere.what + ". Nothing was stopped."
	}
	b.tell(ctx, c.log, c.to, reply)
	b.audit(auditEvent{Event: evRefused, User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID,
		MessageTS: c.ts, Outcome: outcomeBadSignature, Detail: err.Error()})
	b.obs.Refused(outcomeBadSignature)
}

// elsewhereError is a verified value pressed somewhere it does not belong.
type elsewhereError struct {
	what, want, got string
}

func (e *elsewhereError) Error() string {
	return fmt.Sprintf("%v: it belongs to %s %s, not %s", commands.ErrBadValue, e.what, e.want, e.got)
}

func (e *elsewhereError) Unwrap() error { return commands.ErrBadValue }

const outcomeBadSignature = "bad_signature"

// ruleOf is the rule a click is decided by: the confirmation's rule as the
// policy has it now. A rule no longer in the policy refuses the click.
func (b *Bot) ruleOf(ctx context.Context, c click) (*policy.Rule, bool) {
	rule, ok := b.policy.Rule(c.conf.Rule)
	if ok {
		return rule, true
	}
	c.log.Warn().Str("rule", c.conf.Rule).Msg("refused a click: its rule is no longer in the policy")
	b.tell(ctx, c.log, c.to, fmt.Sprintf("The rule *%s* that decided this confirmation is no longer in the policy, so I will not act on it. Nothing was stopped. Run `%s` again.",
		escape(c.conf.Rule), c.conf.Request().Command()))
	b.audit(c.event(evRefused, c.user, "rule_gone", "rule "+c.conf.Rule))
	b.obs.Refused("rule_gone")
	return nil, false
}

// handleStop is a press of Stop or Approve. The clicker is decided on their
// own, against the rule as the policy has it now: anyone who can see the
// message can press it. Presses on one confirmation are taken one at a
// time in this process, so no approval is lost. An approval that is not
// the last is recorded on the card; the press that completes the approvals
// (or a Stop press, when none are needed) makes the stop. Once it is
// claimed, the next outbound call is StopDeployment: the card and the
// thread are updated after it, by the confirmation's reporter, so Slack's
// speed cannot delay a stop.
func (b *Bot) handleStop(runCtx, ctx context.Context, c click) {
	rule, ok := b.ruleOf(ctx, c)
	if !ok {
		return
	}
	st, unlockOnce := b.approvalsOf(c.key(), c.conf.ExpiresAt)
	var once sync.Once
	unlock := func() { once.Do(unlockOnce) }
	defer unlock()
	if !b.open(ctx, c) {
		return
	}
	approvers := mergeApprovers(c.conf, st.approvers)
	decision, err := rule.MayApprove(ctx, c.user, c.channel, c.conf.RequesterID, approvers, b.members)
	if !decision.Allowed || err != nil {
		what := "stop click"
		if rule.Approvals > 0 {
			what = "approval"
		}
		b.refuse(ctx, c.log, c.to, c.event(evRefused, c.user, "", ""), decision, err, what)
		return
	}
	if c.conf.Expired(b.now()) {
		if b.claimed(ctx, c, actionExpire) {
			b.expire(c)
		}
		return
	}
	switch {
	case b.store != nil && rule.Approvals > 0 && !rule.Flat():
		// The table counts the approvals: the one that completes them
		// claims the stop in the same write.
		var complete, ok bool
		if approvers, complete, ok = b.approveStored(ctx, c); !ok {
			return
		}
		if !complete {
			b.recordApproval(ctx, c, rule, st, approvers)
			return
		}
		b.claims.claim(c.key(), c.conf.ExpiresAt, c.user, actionStop)
		b.forgetExpiry(c.key())
	case rule.Approvals > 0:
		approvers = append(approvers, c.user)
		if !rule.Approved(c.conf.RequesterID, approvers) {
			b.recordApproval(ctx, c, rule, st, approvers)
			return
		}
		fallthrough
	default:
		if !b.claimed(ctx, c, actionStop) {
			return
		}
	}
	// Claimed: later presses need not wait for the stop to be told they lost.
	unlock()
	if rule.Approvals > 0 && !rule.Flat() {
		b.audit(c.event(evApproved, c.user, "approved", fmt.Sprintf("%d of %d under rule %q: the last approval", len(approvers), rule.Approvals, rule.Name)))
	}
	b.stop(runCtx, ctx, c, rule, approvers)
}

// recordApproval puts c's approval on the card, and only once Slack holds
// it tells the approver and the thread: the card is where the next press,
// on any process, reads the approvals so far.
func (b *Bot) recordApproval(ctx context.Context, c click, rule *policy.Rule, st *approvalState, approvers []string) {
	next := c.conf
	next.Approvers, next.Needed, next.MessageTS = approvers, rule.Approvals, c.ts
	blocks := withApprovals(b.cfg.SigningKey, c.card.blocks(), next, rule)
	callCtx, cancel := context.WithTimeout(ctx, b.cfg.AWSCallTimeout)
	_, _, _, err := b.reportSlack.UpdateMessageContext(callCtx, c.channel, c.ts, slack.MsgOptionText(c.text, false), slack.MsgOptionBlocks(blocks...))
	cancel()
	if err != nil && b.store == nil {
		c.log.Warn().Err(err).Msg("could not record an approval on the card")
		b.tell(ctx, c.log, c.to, fmt.Sprintf("I could not record your approval on the confirmation (%s), so it does not count yet. Press Approve again.", escape(err.Error())))
		b.audit(c.event(evRefused, c.user, "approval_not_recorded", err.Error()))
		return
	}
	if err != nil {
		// The table holds the approval; the card catches up on the next one.
		c.log.Warn().Err(err).Msg("could not show an approval on the card; the state table has it")
	}
	st.approvers = approvers
	so := approvalsSoFar(next)
	// Recorded first, so that whoever hears of the approval finds it there.
	b.audit(c.event(evApproved, c.user, "approved", fmt.Sprintf("%d of %d under rule %q", len(approvers), rule.Approvals, rule.Name)))
	b.tell(ctx, c.log, c.to, fmt.Sprintf("Your approval is recorded: %s. The deployment stops at the %s approval.", so, ordinal(rule.Approvals)))
	b.reporterFor(c).reply(fmt.Sprintf(":ballot_box_with_check: %s approved the stop of %s under rule *%s*: %s.",
		mention(c.user), code(c.conf.DeploymentID), escape(rule.Name), so))
}

func ordinal(n int) string {
	switch n {
	case 1:
		return "first"
	case 2:
		return "second"
	case 3:
		return "third"
	}
	return fmt.Sprintf("%dth", n)
}

// mergeApprovers is the approvals of the pressed value and those this
// process recorded since (a press made before Slack showed the last
// approval carries an older value), each person once.
func mergeApprovers(c commands.Confirmation, recorded []string) []string {
	out := slices.Clone(c.Approvers)
	for _, a := range recorded {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// approvalState serializes the presses on one confirmation in this process
// and remembers the approvals it recorded.
type approvalState struct {
	mu        sync.Mutex
	approvers []string
	users     int       // presses holding or waiting for mu
	forget    time.Time // when the state may be dropped: after expiry nothing can be approved
}

// approvalsOf locks key's state; unlock releases it, and forgets it when
// nobody else waits.
func (b *Bot) approvalsOf(key string, expires time.Time) (st *approvalState, unlock func()) {
	b.approvalsMu.Lock()
	if b.approvals == nil {
		b.approvals = make(map[string]*approvalState)
	}
	now := b.now()
	for k, old := range b.approvals {
		if old.users == 0 && now.After(old.forget) {
			delete(b.approvals, k)
		}
	}
	st, ok := b.approvals[key]
	if !ok {
		st = &approvalState{forget: expires.Add(claimMargin)}
		b.approvals[key] = st
	}
	st.users++
	b.approvalsMu.Unlock()
	st.mu.Lock()
	return st, func() {
		st.mu.Unlock()
		b.approvalsMu.Lock()
		defer b.approvalsMu.Unlock()
		st.users--
		// Recorded approvals stay while the confirmation is open: the card
		// has them too, but a press may carry a value from before them.
		if st.users == 0 && (len(st.approvers) == 0 || b.claims.taken(key)) {
			delete(b.approvals, key)
		}
	}
}

// stop makes the stop of a claimed confirmation.
func (b *Bot) stop(runCtx, ctx context.Context, c click, rule *policy.Rule, approvers []string) {
	detail := "rollback " + yesNo(c.conf.Rollback) + ", rule " + strconv.Quote(rule.Name)
	if len(approvers) > 0 && !rule.Flat() {
		detail += ", approved by " + strings.Join(approvers, ", ")
	}
	ev := c.event(evConfirmed, c.user, "stopping", detail)
	b.auditLog(ev) // posted to the audit channel after the stop: nothing goes before it
	callCtx, cancel := context.WithTimeout(ctx, b.cfg.AWSCallTimeout)
	res, err := b.deploy.Stop(callCtx, c.place(), c.conf.DeploymentID, c.conf.Rollback, c.user)
	cancel()
	b.auditPost(ev)

	rep := b.reporterFor(c)
	at := b.now()
	blocks := withState(c.card.blocks(), stateStopping(c.user, at))
	if err == nil {
		b.obs.Stop(res.Status, c.conf.Account, c.conf.Region)
		rep.setCard(blocks)
		rep.reply(stopResultText(c.conf, c.user, res))
		b.audit(c.event(evStopResult, c.user, firstNonEmpty(res.Status, "no_status"), res.Message))
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
		b.obs.Stop("already_completed", c.conf.Account, c.conf.Region)
		b.audit(c.event(evStopResult, c.user, "already_completed", "CodeDeploy says the deployment had already completed"))
		b.alreadyCompleted(runCtx, ctx, c, rep, blocks)
	case de.Unknown():
		b.obs.Stop("unknown", c.conf.Account, c.conf.Region)
		rep.setCard(withState(c.card.blocks(), stateUnconfirmed(c.user, at)))
		rep.reply(fmt.Sprintf(":grey_question: %s confirmed, but CodeDeploy did not confirm the stop of %s: %s "+
			"I will follow the deployment and post here what it really becomes.", mention(c.user), code(c.conf.DeploymentID), de.Explain()))
		b.audit(c.event(evStopError, c.user, "unknown", de.Explain()))
		b.startFollow(runCtx, c, rep, blocks)
	default:
		b.obs.Stop("error", c.conf.Account, c.conf.Region)
		b.finish(c, state.StatusFailed)
		rep.setCard(withState(c.card.blocks(), stateFailed(c.user, at)))
		rep.reply(fmt.Sprintf(":x: %s confirmed, but the stop failed. %s", mention(c.user), de.Explain()))
		b.audit(c.event(evStopError, c.user, de.Kind.String(), de.Explain()))
	}
}

// alreadyCompleted says what a deployment CodeDeploy would not stop really
// is, and follows it if it is not final yet (a stop of ours was accepted
// and is under way).
func (b *Bot) alreadyCompleted(runCtx, ctx context.Context, c click, rep *reporter, blocks []slack.Block) {
	callCtx, cancel := context.WithTimeout(ctx, b.cfg.AWSCallTimeout)
	d, err := b.deploy.Get(callCtx, c.place(), c.conf.DeploymentID)
	cancel()
	switch {
	case err != nil:
		rep.reply(fmt.Sprintf(":grey_question: CodeDeploy says %s has already completed, but I could not read its state: %s",
			code(c.conf.DeploymentID), explain(err)))
		b.startFollow(runCtx, c, rep, blocks)
	case d.Final():
		if !b.finish(c, finalOf(d)) {
			return
		}
		since := ""
		if !d.CompleteTime.IsZero() {
			since = " (since " + slackTime(d.CompleteTime) + ")"
		}
		rep.reply(fmt.Sprintf("%s %s is already *%s*%s: there was nothing left to stop.", statusEmoji(d.Status), code(d.ID), statusWords(d.Status), since))
		rep.setCard(withState(blocks, stateFinal(d, c.user)))
		b.audit(c.event(evFinalState, c.user, d.Status, finalDetail(d)))
		b.followRollback(runCtx, c, rep, d)
	default:
		rep.setCard(blocks)
		rep.reply(fmt.Sprintf(":hourglass_flowing_sand: %s is stopping (*%s*). I will post its final state here.", code(d.ID), statusWords(d.Status)))
		b.startFollow(runCtx, c, rep, blocks)
	}
}

// handleCancel is a press of Cancel: the requester may always cancel their
// own request, anyone else must be a requester or approver of its rule.
func (b *Bot) handleCancel(ctx context.Context, c click) {
	rule, ok := b.ruleOf(ctx, c)
	if !ok {
		return
	}
	decision, err := rule.MayCancel(ctx, c.user, c.conf.RequesterID, b.members)
	if !decision.Allowed || err != nil {
		b.refuse(ctx, c.log, c.to, c.event(evRefused, c.user, "", ""), decision, err, "cancel click")
		return
	}
	if !b.open(ctx, c) || !b.claimed(ctx, c, actionCancel) {
		return
	}
	at := b.now()
	rep := b.reporterFor(c)
	rep.setCard(withState(c.card.blocks(), stateCancelled(c.user, at)))
	rep.reply(fmt.Sprintf(":no_entry_sign: Cancelled by %s at %s. Nothing was stopped.", mention(c.user), slackTime(at)))
	b.audit(c.event(evCancelled, c.user, "cancelled", "nothing was stopped"))
}

// open reports whether c's confirmation can still be acted on, and tells
// the clicker what happened when it cannot: the click comes from a stale
// view of a card already acted on, or another click won.
func (b *Bot) open(ctx context.Context, c click) bool {
	if !c.card.hasButtons() {
		c.log.Info().Msg("click on a confirmation that has no buttons any more")
		b.tell(ctx, c.log, c.to, "This confirmation was already acted on: "+firstNonEmpty(stateOf(c.card.blocks()), "see its thread.")+" Nothing more was done.")
		return false
	}
	if won, ok := b.claims.winner(c.key()); ok {
		b.lost(ctx, c, won)
		return false
	}
	return true
}

// claimed reports whether this click is the one that acts on its
// confirmation, and tells the clicker who won when it is not.
func (b *Bot) claimed(ctx context.Context, c click, action string) bool {
	if b.store != nil && !b.claimStored(ctx, c, action) {
		return false
	}
	won, ok := b.claims.claim(c.key(), c.conf.ExpiresAt, c.user, action)
	if !ok {
		b.lost(ctx, c, won)
		return false
	}
	b.forgetExpiry(c.key())
	return true
}

func (b *Bot) lost(ctx context.Context, c click, won claim) {
	c.log.Info().Str("winner", won.user).Msg("click lost: this confirmation is already being handled")
	if won.action == actionExpire {
		b.tell(ctx, c.log, c.to, fmt.Sprintf("This confirmation expired at %s; nothing was stopped. Run `%s` again if the deployment still needs stopping.",
			slackTime(c.conf.ExpiresAt), c.conf.Request().Command()))
		return
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
		if b.store != nil {
			sctx, cancel := storeCtx(b.runCtx)
			won, _, err := b.store.Claim(sctx, c.message(), state.ActionExpire, "")
			cancel()
			if err != nil || !won {
				return // another process swept it, or will
			}
		}
		if _, ok := b.claims.claim(c.channel+"/"+c.ts, c.conf.ExpiresAt, "", actionExpire); !ok {
			return
		}
		b.reporterFor(c).setCard(withState(c.card.blocks(), stateExpired(c.conf.ExpiresAt)))
		b.audit(c.event(evExpired, c.conf.RequesterID, "expired", "nobody confirmed before "+c.conf.ExpiresAt.UTC().Format("15:04:05 UTC")))
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
	rep.setCard(withState(c.card.blocks(), stateExpired(c.conf.ExpiresAt)))
	rep.reply(line)
	b.audit(c.event(evExpired, c.user, "expired", "click after "+c.conf.ExpiresAt.UTC().Format("15:04:05 UTC")))
}

// refuse tells a user the policy's refusal, and audits and counts it. An
// error means the question could not be answered: that is a refusal too.
func (b *Bot) refuse(ctx context.Context, log zerolog.Logger, to recipient, ev auditEvent, d policy.Decision, err error, what string) {
	if err != nil {
		log.Error().Err(err).Msg("authorization check failed; refusing")
	}
	if d.Reason == "" {
		d.Reason = "I could not check whether you may do this, so I will not. Try again in a minute."
	}
	// Recorded first: the audit trail must not wait for Slack to answer.
	ev.Event, ev.Outcome, ev.Detail = evRefused, firstNonEmpty(d.Code, "auth_error"), what
	b.audit(ev)
	b.obs.Refused(ev.Outcome)
	b.tell(ctx, log, to, d.Reason)
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
	b.tellBlocks(ctx, log, to, text, nil)
}

// tellBlocks is tell with blocks; text is then the notification's fallback.
func (b *Bot) tellBlocks(ctx context.Context, log zerolog.Logger, to recipient, text string, blocks []slack.Block) {
	opts := []slack.MsgOption{slack.MsgOptionText(limit(text, maxText), false)}
	if blocks != nil {
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	_, err := b.slack.PostEphemeralContext(ctx, to.channel, to.user, opts...)
	if err == nil {
		return
	}
	log.Debug().Err(err).Msg("chat.postEphemeral failed; answering through response_url")
	b.respond(ctx, log, to.responseURL, opts...)
}

// respond answers through a response_url, visible only to the user.
func (b *Bot) respond(ctx context.Context, log zerolog.Logger, responseURL string, content ...slack.MsgOption) {
	if responseURL == "" {
		log.Error().Msg("could not answer the user: no response_url")
		return
	}
	opts := append([]slack.MsgOption{slack.MsgOptionResponseURL(responseURL, slack.ResponseTypeEphemeral)}, content...)
	if _, _, err := b.slack.PostMessageContext(ctx, "", opts...); err != nil {
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
