package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/deploy"
)

// follow reads a stopped deployment every FollowInterval until it is final
// or FollowTimeout passes, then reports in the thread and on the
// confirmation. It ends early when the bot shuts down (runCtx ends), saying
// so: a follow-up is the one thing that lives only in this process. Reports
// run on workCtx, which outlives runCtx by the shutdown grace period.
func (b *Bot) follow(runCtx, workCtx context.Context, c click, blocks []slack.Block) {
	ctx, cancel := context.WithTimeout(runCtx, b.cfg.FollowTimeout)
	defer cancel()
	ticker := time.NewTicker(b.cfg.FollowInterval)
	defer ticker.Stop()

	report := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(workCtx, 15*time.Second)
	}
	ev := auditEvent{Event: "final_state", User: c.user, Channel: c.channel, Deployment: c.conf.DeploymentID, MessageTS: c.ts}
	last := "unknown"
	for {
		select {
		case <-ctx.Done():
			rctx, rcancel := report()
			defer rcancel()
			line := fmt.Sprintf(":grey_question: `%s` was still *%s* after %s; I stopped following it. Check the AWS console.",
				c.conf.DeploymentID, escape(last), b.cfg.FollowTimeout)
			ev.Outcome = "follow_timeout"
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) || runCtx.Err() != nil {
				line = fmt.Sprintf(":grey_question: The bot is shutting down and stopped following `%s` (last seen *%s*). Check the AWS console for its final state.",
					c.conf.DeploymentID, escape(last))
				ev.Outcome = "follow_interrupted"
			}
			b.postThread(rctx, c, line)
			ev.Detail = "last seen " + last
			b.audit(workCtx, c.log, ev)
			return
		case <-ticker.C:
		}
		callCtx, callCancel := context.WithTimeout(ctx, b.cfg.AWSCallTimeout)
		d, err := b.deploy.Get(callCtx, c.conf.DeploymentID)
		callCancel()
		if err != nil {
			c.log.Warn().Err(err).Msg("follow-up: GetDeployment failed; trying again at the next interval")
			continue
		}
		last = d.Status
		if !d.Final() {
			continue
		}
		rctx, rcancel := report()
		defer rcancel()
		b.postThread(rctx, c, finalStateText(d))
		b.update(rctx, c, withOutcome(blocks, blockFinal, finalStateLine(d)))
		ev.Outcome, ev.Detail = d.Status, finalDetail(d)
		b.audit(workCtx, c.log, ev)
		return
	}
}

func finalDetail(d deploy.Deployment) string {
	if d.RollbackDeploymentID != "" {
		return "rollback deployment " + d.RollbackDeploymentID
	}
	return ""
}
