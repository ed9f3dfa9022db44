package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/commands"
	"github.com/stopdeploy/stopdeploy/deploy"
	"github.com/stopdeploy/stopdeploy/state"
)

// stateStore is the state table (*state.Store): with it, every transition
// of a confirmation is a conditional write that all bot processes agree on,
// follow-ups survive their process, and the audit trail is kept in the
// table too. Without it (nil), this process's memory decides, as documented.
type stateStore interface {
	Begin(ctx context.Context, r state.Request) (state.Pending, error)
	Posted(ctx context.Context, p state.Pending, ts string) (state.Message, error)
	Abandon(ctx context.Context, p state.Pending) error
	Claim(ctx context.Context, m state.Message, a state.Action, user string) (bool, state.Winner, error)
	Approve(ctx context.Context, m state.Message, user string) (state.Approval, error)
	Finish(ctx context.Context, m state.Message, final state.Status) (bool, error)
	AcquireLease(ctx context.Context, m state.Message) (bool, error)
	RenewLease(ctx context.Context, m state.Message) error
	ReleaseLease(ctx context.Context, m state.Message) error
	Orphans(ctx context.Context) ([]state.Confirmation, error)
	AppendAudit(ctx context.Context, d state.Deployment, ev state.AuditEvent) (int64, error)
}

var _ stateStore = (*state.Store)(nil)

// storeTimeout bounds one state-table call: a click waits on it, and an
// unreachable table must become a plain refusal, not a hang.
const storeTimeout = 5 * time.Second

func (c click) message() state.Message { return state.Message{Channel: c.channel, TS: c.ts} }

func (c click) deployment() state.Deployment {
	return state.Deployment{Account: c.conf.Account, Region: c.conf.Region, ID: c.conf.DeploymentID}
}

// storeCtx is ctx bounded for one state-table call.
func storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, storeTimeout)
}

// storeFailed tells a clicker the table could not guard their press, and
// records it: never a stop without its guard.
func (b *Bot) storeFailed(ctx context.Context, c click, err error) {
	c.log.Error().Err(err).Msg("state table: refusing the click")
	b.obs.StoreError()
	b.tell(ctx, c.log, c.to, "I cannot reach the state table that keeps replicas of this bot in agreement, so I will not act on this button right now. "+
		"Nothing was stopped. Try again in a moment, or stop the deployment in the CodeDeploy console.")
	b.audit(c.event(evRefused, c.user, "store_unavailable", err.Error()))
	b.obs.Refused("store_unavailable")
}

// notOnRecord refuses a click on a confirmation the table does not hold: a
// second copy of a post Slack stored twice, or one from before the table.
func (b *Bot) notOnRecord(ctx context.Context, c click) {
	c.log.Warn().Msg("state table: no record of this confirmation; refusing the click")
	b.tell(ctx, c.log, c.to, fmt.Sprintf("I have no record of this confirmation (a duplicate post, or one from before the state table), so I will not act on it. Nothing was stopped. Run `%s` again.",
		c.conf.Request().Command()))
	b.audit(c.event(evRefused, c.user, "not_on_record", "no state-table item for this message"))
	b.obs.Refused("not_on_record")
}

// recordWindow is how long a click on a confirmation the table does not
// hold yet is tried again: the card is clickable as soon as Slack has it,
// and the process that posted it records it a few writes later.
const recordWindow = 2 * time.Second

// whilePosting runs call (a state-table call about one message) until it
// finds the message, for at most recordWindow.
func whilePosting(ctx context.Context, call func(context.Context) error) error {
	deadline := time.Now().Add(recordWindow)
	for wait := 25 * time.Millisecond; ; wait = min(2*wait, 400*time.Millisecond) {
		sctx, cancel := storeCtx(ctx)
		err := call(sctx)
		cancel()
		if !errors.Is(err, state.ErrNotFound) || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
	}
}

// begin takes the deployment's open lock before a confirmation is posted.
// It returns false when the user was told why not.
func (b *Bot) begin(ctx context.Context, to recipient, conf commands.Confirmation, ev *auditEvent) (state.Pending, bool) {
	if b.store == nil {
		return state.Pending{}, true
	}
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	p, err := b.store.Begin(sctx, state.Request{
		Deployment: state.Deployment{Account: conf.Account, Region: conf.Region, ID: conf.DeploymentID},
		Requester:  conf.RequesterID, Channel: conf.ChannelID, ExpiresAt: conf.ExpiresAt, Needed: conf.Needed,
		Payload: b.cfg.SigningKey.Encode(conf),
	})
	var open *state.OpenError
	switch {
	case errors.As(err, &open):
		where := "<#" + open.Channel + ">"
		if link := b.permalink(open.Channel, open.MessageTS); link != "" {
			where = "<" + link + "|this confirmation> in " + where
		}
		reply := fmt.Sprintf("%s already has an open confirmation: %s asked in %s at %s. Confirm or cancel that one; nothing new was posted.",
			code(conf.DeploymentID), mention(open.Requester), where, slackTime(open.At))
		b.tell(ctx, b.log, to, reply)
		ev.Outcome, ev.Detail = "already_open", reply
		b.audit(*ev)
		return state.Pending{}, false
	case err != nil:
		b.log.Error().Err(err).Msg("state table: could not take the deployment's lock")
		b.obs.StoreError()
		reply := "I cannot reach the state table that keeps replicas of this bot in agreement, so I will not post a confirmation right now. Nothing was stopped. Try again in a moment."
		b.tell(ctx, b.log, to, reply)
		ev.Outcome, ev.Detail = "store_unavailable", err.Error()
		b.audit(*ev)
		return state.Pending{}, false
	}
	b.obs.StoreOK()
	return p, true
}

// posted binds the lock to the posted message; abandon releases it when the
// post failed.
func (b *Bot) posted(ctx context.Context, p state.Pending, ts string, to recipient) {
	if b.store == nil {
		return
	}
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	if _, err := b.store.Posted(sctx, p, ts); err != nil {
		b.log.Error().Err(err).Str("message_ts", ts).Msg("state table: could not record the posted confirmation; its buttons will be refused")
		b.obs.StoreError()
		b.tell(ctx, b.log, to, "I posted the confirmation but could not record it in the state table, so its buttons will not work. Run the command again in a moment.")
	}
}

func (b *Bot) abandon(ctx context.Context, p state.Pending) {
	if b.store == nil {
		return
	}
	sctx, cancel := storeCtx(context.WithoutCancel(ctx))
	defer cancel()
	if err := b.store.Abandon(sctx, p); err != nil {
		b.log.Warn().Err(err).Msg("state table: could not release the lock of a confirmation that was not posted (it lapses on its own)")
	}
}

// claimStored is claimed with the table deciding. It reports whether the
// click won; when it did not, the clicker has been told.
func (b *Bot) claimStored(ctx context.Context, c click, action string) bool {
	a := map[string]state.Action{actionStop: state.ActionStop, actionCancel: state.ActionCancel, actionExpire: state.ActionExpire}[action]
	var (
		won bool
		w   state.Winner
	)
	err := whilePosting(ctx, func(ctx context.Context) (err error) {
		won, w, err = b.store.Claim(ctx, c.message(), a, c.user)
		return err
	})
	switch {
	case errors.Is(err, state.ErrExpired):
		if action != actionExpire && b.claimStored(ctx, c, actionExpire) {
			b.expire(c)
		}
		return false
	case errors.Is(err, state.ErrNotFound):
		b.notOnRecord(ctx, c)
		return false
	case err != nil:
		b.storeFailed(ctx, c, err)
		return false
	case !won:
		b.obs.StoreOK()
		b.lost(ctx, c, winnerClaim(w))
		return false
	}
	b.obs.StoreOK()
	return true
}

// winnerClaim is the table's winner as this process's claims say it.
func winnerClaim(w state.Winner) claim {
	action := actionStop
	switch w.Action {
	case state.ActionCancel:
		action = actionCancel
	case state.ActionExpire:
		action = actionExpire
	}
	return claim{user: w.User, action: action, at: w.At}
}

// approveStored adds c's approval in the table. It returns the approvers
// and whether this approval completed them (the confirmation is then
// claimed for the stop); ok is false when the clicker was told otherwise.
func (b *Bot) approveStored(ctx context.Context, c click) (approvers []string, complete, ok bool) {
	var a state.Approval
	err := whilePosting(ctx, func(ctx context.Context) (err error) {
		a, err = b.store.Approve(ctx, c.message(), c.user)
		return err
	})
	switch {
	case errors.Is(err, state.ErrExpired):
		if b.claimStored(ctx, c, actionExpire) {
			b.expire(c)
		}
		return nil, false, false
	case errors.Is(err, state.ErrNotFound):
		b.notOnRecord(ctx, c)
		return nil, false, false
	case err != nil:
		b.storeFailed(ctx, c, err)
		return nil, false, false
	case a.Winner.Action != "":
		b.lost(ctx, c, winnerClaim(a.Winner))
		return nil, false, false
	case a.Already:
		b.tell(ctx, c.log, c.to, "You have already approved this, and each person counts once. Ask another approver.")
		b.audit(c.event(evRefused, c.user, "already_approved", "approval"))
		b.obs.Refused("already_approved")
		return nil, false, false
	}
	return a.Approvers, a.Complete, true
}

// finish ends a stop's confirmation in the table; false means another
// process already posted its final state, so this one posts nothing.
func (b *Bot) finish(c click, final state.Status) bool {
	if b.store == nil || c.ts == "" {
		return true
	}
	sctx, cancel := storeCtx(b.reportCtx)
	defer cancel()
	won, err := b.store.Finish(sctx, c.message(), final)
	if err != nil {
		c.log.Error().Err(err).Msg("state table: could not finish the confirmation; posting its final state anyway")
		b.obs.StoreError()
		return true
	}
	return won
}

// stillMine renews c's follow-up lease; false means another process holds
// it now, and this one must stop following without a word.
func (b *Bot) stillMine(ctx context.Context, c click) bool {
	if b.store == nil || c.ts == "" {
		return true
	}
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	err := b.store.RenewLease(sctx, c.message())
	switch {
	case errors.Is(err, state.ErrLeaseLost):
		c.log.Warn().Msg("state table: another process took this follow-up over")
		return false
	case err != nil:
		c.log.Warn().Err(err).Msg("state table: could not renew the follow-up lease; following on")
		b.obs.StoreError()
	}
	return true
}

// letGo releases c's lease at shutdown, so another process takes the
// follow-up over at once rather than when the lease runs out.
func (b *Bot) letGo(c click) {
	if b.store == nil || c.ts == "" {
		return
	}
	sctx, cancel := storeCtx(b.reportCtx)
	defer cancel()
	if err := b.store.ReleaseLease(sctx, c.message()); err != nil {
		c.log.Warn().Err(err).Msg("state table: could not release the follow-up lease; it runs out on its own")
	}
}

// adopt runs on every process each follow-up interval: follow-ups whose
// process died are taken over, and open confirmations past their expiry
// are closed, each by exactly one process.
func (b *Bot) adopt(runCtx context.Context) {
	ticker := time.NewTicker(b.cfg.FollowInterval)
	defer ticker.Stop()
	for {
		select {
		case <-runCtx.Done():
			return
		case <-ticker.C:
		}
		sctx, cancel := storeCtx(runCtx)
		orphans, err := b.store.Orphans(sctx)
		cancel()
		if err != nil {
			b.log.Warn().Err(err).Msg("state table: could not look for follow-ups to take over")
			b.obs.StoreError()
			continue
		}
		b.obs.StoreOK()
		for _, o := range orphans {
			b.adoptOne(runCtx, o)
		}
	}
}

func (b *Bot) adoptOne(runCtx context.Context, o state.Confirmation) {
	conf, err := b.cfg.SigningKey.Decode(o.Payload)
	if err != nil {
		b.log.Warn().Err(err).Str("message_ts", o.Message.TS).Msg("state table: a confirmation to take over has a value this process cannot verify")
		return
	}
	c := click{conf: conf, user: o.Winner.User, channel: o.Message.Channel, ts: o.Message.TS,
		log: b.log.With().Str("channel", o.Message.Channel).Str("message_ts", o.Message.TS).Str("deployment", conf.DeploymentID).Logger()}
	m := c.message()
	sctx, cancel := storeCtx(runCtx)
	defer cancel()
	switch o.Status {
	case state.StatusStopping:
		ok, err := b.store.AcquireLease(sctx, m)
		if err != nil || !ok {
			return
		}
		c.log.Info().Msg("state table: took over the follow-up of a stop whose process is gone")
		rep := b.reporterFor(c)
		rep.reply(fmt.Sprintf(":arrows_counterclockwise: The process that made this stop is gone; I am following %s now and will post its final state here.", code(conf.DeploymentID)))
		b.audit(c.event(evFinalState, c.user, "follow_taken_over", "follow-up taken over by another process"))
		b.startFollow(runCtx, c, rep, nil)
	case state.StatusOpen:
		won, _, err := b.store.Claim(sctx, m, state.ActionExpire, "")
		if err != nil || !won {
			return
		}
		b.reporterFor(c).reply(fmt.Sprintf(":hourglass: This confirmation expired at %s; nothing was stopped.", slackTime(conf.ExpiresAt)))
		b.audit(c.event(evExpired, conf.RequesterID, "expired", "nobody confirmed before "+conf.ExpiresAt.UTC().Format("15:04:05 UTC")))
	}
}

// auditStored writes ev to the table on its own goroutine, in order, so no
// request waits on it; a full queue drops events with a warning (the log
// line has them all).
func (b *Bot) auditStored(ev auditEvent) {
	if b.auditTable == nil || ev.Account == "" || ev.Deployment == "" {
		return
	}
	b.auditTableMu.RLock()
	defer b.auditTableMu.RUnlock()
	if b.auditTableClosed {
		return
	}
	select {
	case b.auditTable <- ev:
	default:
		b.log.Warn().Str("event", ev.Event).Str("deployment", ev.Deployment).Msg("state table: audit queue full; this event is only in the log")
	}
}

// closeAuditTable ends the writer once nothing more will be audited.
func (b *Bot) closeAuditTable() {
	if b.auditTable == nil {
		return
	}
	b.auditTableMu.Lock()
	defer b.auditTableMu.Unlock()
	if !b.auditTableClosed {
		b.auditTableClosed = true
		close(b.auditTable)
	}
}

// auditTableQueue is how many audit events may wait for the table.
const auditTableQueue = 1024

func (b *Bot) writeAudits(ctx context.Context) {
	for ev := range b.auditTable {
		sctx, cancel := storeCtx(ctx)
		_, err := b.store.AppendAudit(sctx, state.Deployment{Account: ev.Account, Region: ev.Region, ID: ev.Deployment},
			state.AuditEvent{At: b.now(), Event: ev.Event, User: ev.User, Channel: ev.Channel, MessageTS: ev.MessageTS, Outcome: ev.Outcome, Detail: ev.Detail})
		cancel()
		if err != nil {
			b.log.Warn().Err(err).Str("event", ev.Event).Str("deployment", ev.Deployment).Msg("state table: could not write an audit event; it is in the log")
			b.obs.StoreError()
		}
	}
}

// finalOf is the table's status for a followed deployment's final state:
// stopped when CodeDeploy says Stopped, failed when it ended otherwise.
func finalOf(d deploy.Deployment) state.Status {
	if d.Status == deploy.StatusStopped {
		return state.StatusStopped
	}
	return state.StatusFailed
}

// cardUpdate puts st on the card, unless the card is unknown (a follow-up
// taken over from another process knows only the thread).
func cardUpdate(rep *reporter, blocks []slack.Block, st cardState) {
	if blocks != nil {
		rep.setCard(withState(blocks, st))
	}
}
