package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/deploy"
)

// startFollow follows c's deployment in a goroutine of its own.
func (b *Bot) startFollow(runCtx context.Context, c click, rep *reporter, blocks []slack.Block) {
	b.follows.Go(func() {
		defer b.recoverGoroutine("follow-up")
		b.follow(runCtx, c, rep, blocks)
	})
}

// follow reads a stopped deployment every FollowInterval until it is final
// or FollowTimeout passes, then reports in the thread and on the card. It
// ends early when the bot shuts down (runCtx ends), saying so: a follow-up
// lives only in this process. Reports go through the reporter, which
// outlives runCtx.
func (b *Bot) follow(runCtx context.Context, c click, rep *reporter, blocks []slack.Block) {
	d, ok := b.watch(runCtx, c, rep, c.conf.DeploymentID, evFinalState)
	if !ok {
		return
	}
	if !b.finish(c, finalOf(d)) {
		return // another process posted it
	}
	rep.reply(finalStateText(d))
	cardUpdate(rep, blocks, stateFinal(d, c.user))
	b.audit(c.event(evFinalState, c.user, d.Status, finalDetail(d)))
	b.followRollback(runCtx, c, rep, d)
}

// followRollback follows the rollback deployment a stop started, if any,
// to its own final state, in the same thread.
func (b *Bot) followRollback(runCtx context.Context, c click, rep *reporter, d deploy.Deployment) {
	if d.RollbackDeploymentID == "" {
		return
	}
	r, ok := b.watch(runCtx, c, rep, d.RollbackDeploymentID, "rollback_final_state")
	if !ok {
		return
	}
	rep.reply(rollbackText(r))
	b.audit(c.event(evFinalState, c.user, "rollback_"+r.Status, "rollback deployment "+r.ID+rollbackDetail(r)))
}

func rollbackDetail(r deploy.Deployment) string {
	if r.ErrorMessage != "" {
		return ": " + r.ErrorMessage
	}
	return ""
}

// watch reads id until it is final (ok), or until FollowTimeout or
// shutdown, which it reports itself (not ok).
func (b *Bot) watch(runCtx context.Context, c click, rep *reporter, id, what string) (deploy.Deployment, bool) {
	ctx, cancel := context.WithTimeout(runCtx, b.cfg.FollowTimeout)
	defer cancel()
	ticker := time.NewTicker(b.cfg.FollowInterval)
	defer ticker.Stop()
	last := "unknown"
	for {
		select {
		case <-ctx.Done():
			line := fmt.Sprintf(":grey_question: %s was still *%s* after %s; I stopped following it. Check the AWS console.",
				code(id), statusWords(last), b.cfg.FollowTimeout)
			outcome := "follow_timeout"
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) || runCtx.Err() != nil {
				line = fmt.Sprintf(":grey_question: The bot is shutting down and stopped following %s (last seen *%s*). Check the AWS console for its final state.",
					code(id), statusWords(last))
				outcome = "follow_interrupted"
				if b.store != nil && what == evFinalState {
					// Another process takes it over from the state table.
					b.letGo(c)
					line = fmt.Sprintf(":arrows_counterclockwise: This process is shutting down while %s is *%s*; another one will follow it and post its final state here.",
						code(id), statusWords(last))
					outcome = "follow_handed_over"
				}
			}
			rep.reply(line)
			b.audit(c.event(evFinalState, c.user, outcome, what+": "+id+" last seen "+last))
			return deploy.Deployment{}, false
		case <-ticker.C:
		}
		if what == evFinalState && !b.stillMine(ctx, c) {
			return deploy.Deployment{}, false
		}
		callCtx, callCancel := context.WithTimeout(ctx, b.cfg.AWSCallTimeout)
		d, err := b.deploy.Get(callCtx, c.place(), id)
		callCancel()
		if err != nil {
			c.log.Warn().Err(err).Str("following", id).Msg("follow-up: GetDeployment failed; trying again at the next interval")
			continue
		}
		last = d.Status
		if d.Final() {
			return d, true
		}
	}
}

func finalDetail(d deploy.Deployment) string {
	if d.RollbackDeploymentID != "" {
		return "rollback deployment " + d.RollbackDeploymentID
	}
	return ""
}
