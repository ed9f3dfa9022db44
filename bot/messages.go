package bot

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/commands"
	"github.com/stopdeploy/stopdeploy/deploy"
)

// Block and action IDs of the confirmation message. A click is routed by
// them, and updates find their own blocks by them.
const (
	blockRequest    = "stopdeploy_request"
	blockDeployment = "stopdeploy_deployment"
	blockExpiry     = "stopdeploy_expiry"
	blockActions    = "stopdeploy_actions"
	blockOutcome    = "stopdeploy_outcome" // who confirmed, cancelled, or that it expired
	blockFinal      = "stopdeploy_final"   // the deployment's final state

	actionStop   = "stop"
	actionCancel = "cancel"
)

// confirmationMessage is the public message asking for confirmation.
func confirmationMessage(d deploy.Deployment, c commands.Confirmation, secondApprover bool) (text string, blocks []slack.Block) {
	id := code(c.DeploymentID)
	rollback := "*Rollback:* no: the instances stay as they are when the deployment stops."
	stopLabel := "Stop deployment"
	dialog := fmt.Sprintf("CodeDeploy will stop %s (%s / %s). It will not roll back.", c.DeploymentID, d.Application, d.Group)
	if c.Rollback {
		rollback = "*Rollback:* yes: CodeDeploy redeploys the last successful revision after stopping."
		stopLabel = "Stop and roll back"
		dialog = fmt.Sprintf("CodeDeploy will stop %s (%s / %s) and roll back to the last successful revision.", c.DeploymentID, d.Application, d.Group)
	}
	who := "Anyone allowed to stop deployments can confirm."
	if secondApprover {
		who = fmt.Sprintf("Another person allowed to stop deployments must confirm: %s cannot confirm their own request.", mention(c.RequesterID))
	}

	text = fmt.Sprintf("%s asks to stop deployment %s (%s / %s)", mention(c.RequesterID), c.DeploymentID, d.Application, d.Group)
	blocks = []slack.Block{
		slack.NewSectionBlock(mrkdwn(fmt.Sprintf(":octagonal_sign: %s asks to stop deployment %s.\n%s", mention(c.RequesterID), id, rollback)),
			nil, nil, slack.SectionBlockOptionBlockID(blockRequest)),
		slack.NewSectionBlock(nil, deploymentFields(d), nil, slack.SectionBlockOptionBlockID(blockDeployment)),
		slack.NewContextBlock(blockExpiry, mrkdwn(fmt.Sprintf("Confirm before %s. %s", slackTime(c.ExpiresAt), who))),
		slack.NewActionBlock(blockActions,
			slack.NewButtonBlockElement(actionStop, c.Encode(), plain(stopLabel)).
				WithStyle(slack.StyleDanger).
				WithConfirm(slack.NewConfirmationBlockObject(
					plain(limit("Stop "+c.DeploymentID+"?", 100)),
					plain(limit(dialog, 300)),
					plain("Stop it"),
					plain("Keep it running"),
				).WithStyle(slack.StyleDanger)),
			slack.NewButtonBlockElement(actionCancel, c.Encode(), plain("Cancel")),
		),
	}
	return text, blocks
}

// creators names CodeDeploy's creator values. GetDeployment says how a
// deployment was started, not by whom: the identity is only in CloudTrail.
var creators = map[string]string{
	"user":                   "a user (console, CLI or API)",
	"autoscaling":            "Auto Scaling (new instance)",
	"autoscalingTermination": "Auto Scaling (instance termination)",
	"codeDeployRollback":     "CodeDeploy (rollback)",
	"CodeDeploy":             "CodeDeploy",
	"CodeDeployAutoUpdate":   "CodeDeploy (automatic update)",
	"CloudFormation":         "CloudFormation",
	"CloudFormationRollback": "CloudFormation (rollback)",
}

func deploymentFields(d deploy.Deployment) []*slack.TextBlockObject {
	creator, ok := creators[d.Creator]
	if !ok {
		creator = orDash(d.Creator)
	}
	started := escape(creator)
	if !d.CreateTime.IsZero() {
		started += ", " + slackTime(d.CreateTime)
	}
	fields := []*slack.TextBlockObject{
		mrkdwn("*Application*\n" + escape(orDash(d.Application))),
		mrkdwn("*Deployment group*\n" + escape(orDash(d.Group))),
		mrkdwn("*Status*\n" + escape(orDash(d.Status))),
		mrkdwn("*Started by*\n" + started),
	}
	if d.Overview != nil {
		fields = append(fields, mrkdwn("*Instances*\n"+overview(*d.Overview)))
	}
	if d.ComputePlatform != "" {
		fields = append(fields, mrkdwn("*Platform*\n"+escape(d.ComputePlatform)))
	}
	return fields
}

func overview(o deploy.Overview) string {
	parts := []string{
		fmt.Sprintf("%d succeeded", o.Succeeded),
		fmt.Sprintf("%d in progress", o.InProgress),
		fmt.Sprintf("%d pending", o.Pending),
		fmt.Sprintf("%d failed", o.Failed),
		fmt.Sprintf("%d skipped", o.Skipped),
	}
	if o.Ready > 0 {
		parts = append(parts, fmt.Sprintf("%d ready", o.Ready))
	}
	return strings.Join(parts, " · ")
}

// withOutcome returns the confirmation's blocks without buttons, with the
// context block id set to line (replacing an earlier one of that id).
func withOutcome(blocks []slack.Block, id, line string) []slack.Block {
	out := make([]slack.Block, 0, len(blocks)+1)
	for _, b := range blocks {
		if b.ID() == blockActions || b.ID() == id {
			continue
		}
		out = append(out, b)
	}
	return append(out, slack.NewContextBlock(id, mrkdwn(line)))
}

// hasButtons reports whether a message still offers Stop/Cancel. A click on
// a message whose buttons are gone comes from a stale client view.
func hasButtons(blocks []slack.Block) bool {
	for _, b := range blocks {
		if b.ID() == blockActions {
			return true
		}
	}
	return false
}

func stopResultText(c commands.Confirmation, confirmer string, r deploy.StopResult) string {
	msg := ""
	if r.Message != "" {
		msg = ": " + escape(r.Message)
	}
	return fmt.Sprintf(":hourglass_flowing_sand: %s confirmed. CodeDeploy answered *%s*%s", mention(confirmer), escape(r.Status), msg) +
		fmt.Sprintf("\nI will post the final state of %s here.", code(c.DeploymentID))
}

func finalStateText(d deploy.Deployment) string {
	s := fmt.Sprintf("%s Deployment %s is now *%s*", statusEmoji(d.Status), code(d.ID), escape(d.Status))
	if d.RollbackDeploymentID != "" {
		s += fmt.Sprintf("; rollback deployment %s started", code(d.RollbackDeploymentID))
	}
	if d.ErrorMessage != "" {
		s += ". CodeDeploy says: " + escape(d.ErrorMessage)
	}
	return s + "."
}

func finalStateLine(d deploy.Deployment) string {
	s := fmt.Sprintf("Final state: *%s*", escape(d.Status))
	if d.RollbackDeploymentID != "" {
		s += fmt.Sprintf(" · rollback deployment %s", code(d.RollbackDeploymentID))
	}
	return s
}

func statusEmoji(status string) string {
	switch status {
	case deploy.StatusStopped:
		return ":octagonal_sign:"
	case deploy.StatusSucceeded:
		return ":white_check_mark:"
	case deploy.StatusFailed:
		return ":x:"
	}
	return ":grey_question:"
}

// slackTime renders t in each reader's own time zone, with UTC as the
// fallback for clients that cannot.
func slackTime(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func mention(userID string) string { return "<@" + userID + ">" }

func code(s string) string { return "`" + s + "`" }

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, limit(s, 3000), false, false)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

// escape makes text from AWS safe to embed in mrkdwn: Slack requires &, <
// and > to be escaped, or they would be read as links or mentions.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// limit cuts s to at most n characters (not bytes), the unit of Slack's limits.
func limit(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
