package bot

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/commands"
	"github.com/stopdeploy/stopdeploy/deploy"
	"github.com/stopdeploy/stopdeploy/policy"
)

// Block and action IDs of the confirmation message. A click is routed by
// them, and updates find their own blocks by them.
const (
	blockRequest    = "stopdeploy_request"
	blockDeployment = "stopdeploy_deployment"
	blockExpiry     = "stopdeploy_expiry"
	blockActions    = "stopdeploy_actions"
	blockState      = "stopdeploy_state" // at the top once acted on: Stopping…, Stopped, Cancelled…

	actionStop    = "stop"
	actionApprove = "approve" // the confirming button of a rule that needs approvals
	actionCancel  = "cancel"
)

// confirmationMessage is the public message asking for confirmation. key
// signs the buttons' values; rule is the policy rule that decided it.
func confirmationMessage(key commands.Key, d deploy.Deployment, c commands.Confirmation, rule *policy.Rule) (text string, blocks []slack.Block) {
	id := code(c.DeploymentID)
	rollback := "*Rollback:* no: the instances stay as they are when the deployment stops."
	if c.Rollback {
		rollback = "*Rollback:* yes: CodeDeploy redeploys the last successful revision after stopping."
	}
	// text is mrkdwn too (notifications, screen readers): AWS strings are
	// escaped here as in the blocks, or "<!channel>" would notify everyone.
	text = fmt.Sprintf("%s asks to stop deployment %s (%s / %s)", mention(c.RequesterID), c.DeploymentID, awsText(d.Application), awsText(d.Group))
	blocks = []slack.Block{
		slack.NewSectionBlock(mrkdwn(fmt.Sprintf(":octagonal_sign: %s asks to stop deployment %s.\n%s", mention(c.RequesterID), id, rollback)),
			nil, nil, slack.SectionBlockOptionBlockID(blockRequest)),
		slack.NewSectionBlock(nil, deploymentFields(d), nil, slack.SectionBlockOptionBlockID(blockDeployment)),
		expiryBlock(c, rule),
		actionsBlock(key, d.Application, d.Group, c, rule),
	}
	return text, blocks
}

// approvalUI reports whether the card asks for approvals (an Approve
// button, "Approvals: 1 of 2"). The flat rule keeps the card it had before
// policy files: one Stop button, pressed by someone other than the requester.
func approvalUI(rule *policy.Rule, c commands.Confirmation) bool {
	return c.Needed > 0 && !rule.Flat()
}

// expiryBlock says who must do what, and by when.
func expiryBlock(c commands.Confirmation, rule *policy.Rule) slack.Block {
	var who string
	switch {
	case approvalUI(rule, c):
		who = fmt.Sprintf("Rule *%s* · *Approvals:* %s · %s cannot approve their own request.",
			escape(c.Rule), approvalsSoFar(c), mention(c.RequesterID))
	case c.Needed > 0:
		who = fmt.Sprintf("Another person allowed to stop deployments must confirm: %s cannot confirm their own request.", mention(c.RequesterID))
	case rule.Flat():
		who = "Anyone allowed to stop deployments can confirm."
	default:
		who = fmt.Sprintf("Rule *%s*: any of its requesters or approvers can confirm.", escape(c.Rule))
	}
	return slack.NewContextBlock(blockExpiry, mrkdwn(fmt.Sprintf("Confirm before %s. %s", slackTime(c.ExpiresAt), who)))
}

// approvalsSoFar is "0 of 2", or "1 of 2: <@U1>".
func approvalsSoFar(c commands.Confirmation) string {
	s := fmt.Sprintf("%d of %d", len(c.Approvers), c.Needed)
	if len(c.Approvers) > 0 {
		names := make([]string, len(c.Approvers))
		for i, a := range c.Approvers {
			names[i] = mention(a)
		}
		s += ": " + strings.Join(names, ", ")
	}
	return s
}

// actionsBlock holds the confirming button (Stop, or Approve when the rule
// asks for approvals) and Cancel, each carrying c signed.
func actionsBlock(key commands.Key, application, group string, c commands.Confirmation, rule *policy.Rule) slack.Block {
	// Plain text (the dialog) needs no escaping; it is cut to its limit.
	dialog := fmt.Sprintf("CodeDeploy will stop %s (%s / %s). It will not roll back.", c.DeploymentID, limit(application, 100), limit(group, 100))
	label, action, title, yes := "Stop deployment", actionStop, "Stop "+c.DeploymentID+"?", "Stop it"
	if c.Rollback {
		label = "Stop and roll back"
		dialog = fmt.Sprintf("CodeDeploy will stop %s (%s / %s) and roll back to the last successful revision.", c.DeploymentID, limit(application, 100), limit(group, 100))
	}
	if approvalUI(rule, c) {
		label, action, title, yes = "Approve", actionApprove, "Approve the stop of "+c.DeploymentID+"?", "Approve"
		dialog = fmt.Sprintf("You approve that %s (%s / %s) be stopped%s. It stops once %d people other than the requester have approved.",
			c.DeploymentID, limit(application, 100), limit(group, 100), map[bool]string{true: " and rolled back", false: ""}[c.Rollback], c.Needed)
	}
	value := key.Encode(c)
	return slack.NewActionBlock(blockActions,
		slack.NewButtonBlockElement(action, value, plain(label)).
			WithStyle(slack.StyleDanger).
			WithConfirm(slack.NewConfirmationBlockObject(
				plain(limit(title, 100)),
				plain(limit(dialog, 300)),
				plain(yes),
				plain("Keep it running"),
			).WithStyle(slack.StyleDanger)),
		slack.NewButtonBlockElement(actionCancel, value, plain("Cancel")),
	)
}

// withApprovals is the card after an approval: the "Approvals" line and the
// buttons' values carry c (the approvers so far, bound to its message);
// everything else is as Slack holds it.
func withApprovals(key commands.Key, blocks []slack.Block, c commands.Confirmation, rule *policy.Rule) []slack.Block {
	application, group := deploymentNames(blocks)
	out := make([]slack.Block, 0, len(blocks))
	for _, b := range blocks {
		switch b.ID() {
		case blockExpiry:
			out = append(out, expiryBlock(c, rule))
		case blockActions:
			out = append(out, actionsBlock(key, application, group, c, rule))
		default:
			out = append(out, b)
		}
	}
	return out
}

// deploymentNames reads the application and group back from a card's
// fields, for the Approve dialog of an updated card.
func deploymentNames(blocks []slack.Block) (application, group string) {
	for _, b := range blocks {
		sec, ok := b.(*slack.SectionBlock)
		if !ok || b.ID() != blockDeployment {
			continue
		}
		for _, f := range sec.Fields {
			if v, ok := strings.CutPrefix(f.Text, "*Application*\n"); ok {
				application = unescape(v)
			}
			if v, ok := strings.CutPrefix(f.Text, "*Deployment group*\n"); ok {
				group = unescape(v)
			}
		}
	}
	return application, group
}

func unescape(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
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
	started := awsText(creator)
	if !d.CreateTime.IsZero() {
		started += ", " + slackTime(d.CreateTime)
	}
	fields := []*slack.TextBlockObject{
		mrkdwn("*Application*\n" + awsText(orDash(d.Application))),
		mrkdwn("*Deployment group*\n" + awsText(orDash(d.Group))),
		mrkdwn(statusField + statusWords(d.Status)),
		mrkdwn("*Started by*\n" + started),
	}
	if d.Overview != nil {
		fields = append(fields, mrkdwn("*Instances*\n"+overview(*d.Overview)))
	}
	if d.Place != (deploy.Place{}) {
		fields = append(fields, mrkdwn("*Account / region*\n"+awsText(d.Place.Account+" / "+d.Place.Region)))
	}
	if d.ComputePlatform != "" {
		fields = append(fields, mrkdwn("*Platform*\n"+awsText(d.ComputePlatform)))
	}
	// What is being deployed. Slack allows 10 fields of 2,000 characters;
	// awsText cuts each AWS string well below that.
	for _, f := range []struct{ name, value string }{
		{"Revision", d.Revision}, {"Description", d.Description}, {"Deployment config", d.ConfigName},
	} {
		if f.value != "" {
			fields = append(fields, mrkdwn("*"+f.name+"*\n"+awsText(f.value)))
		}
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

// statusField starts the card's status field; withState rewrites it.
const statusField = "*Status*\n"

// cardState is what a card says once acted on: a line at the top and,
// when known, the deployment's status in its field.
type cardState struct {
	line   string
	status string // "" keeps the field as it is
}

func stateStopping(user string, at time.Time) cardState {
	return cardState{fmt.Sprintf(":hourglass_flowing_sand: *Stopping…* Stop confirmed by %s at %s.", mention(user), slackTime(at)), "Stopping…"}
}

func stateUnconfirmed(user string, at time.Time) cardState {
	return cardState{fmt.Sprintf(":grey_question: *Stop sent, not confirmed by CodeDeploy.* Stop confirmed by %s at %s; the thread will say what it becomes.", mention(user), slackTime(at)), ""}
}

func stateFailed(user string, at time.Time) cardState {
	return cardState{fmt.Sprintf(":x: *Stop failed.* Stop confirmed by %s at %s; the thread says why.", mention(user), slackTime(at)), ""}
}

func stateCancelled(user string, at time.Time) cardState {
	return cardState{fmt.Sprintf(":no_entry_sign: *Cancelled by %s* at %s. Nothing was stopped.", mention(user), slackTime(at)), ""}
}

func stateExpired(at time.Time) cardState {
	return cardState{fmt.Sprintf(":hourglass: *Expired* at %s. Nothing was stopped.", slackTime(at)), ""}
}

func stateFinal(d deploy.Deployment, confirmer string) cardState {
	s := fmt.Sprintf("%s Final state: *%s*", statusEmoji(d.Status), statusWords(d.Status))
	if d.RollbackDeploymentID != "" {
		s += fmt.Sprintf(" · rollback deployment %s", code(d.RollbackDeploymentID))
	}
	if confirmer != "" {
		s += " · Stop confirmed by " + mention(confirmer)
	}
	return cardState{s + ".", d.Status}
}

// withState returns the card without its buttons and its "Confirm before"
// line, with st's line at the top (replacing an earlier one) and st's
// status in the status field. blocks is not changed.
func withState(blocks []slack.Block, st cardState) []slack.Block {
	out := make([]slack.Block, 0, len(blocks)+1)
	out = append(out, slack.NewContextBlock(blockState, mrkdwn(st.line)))
	for _, b := range blocks {
		switch b.ID() {
		case blockActions, blockExpiry, blockState:
			continue
		case blockDeployment:
			if sec, ok := b.(*slack.SectionBlock); ok && st.status != "" {
				b = withStatus(sec, st.status)
			}
		}
		out = append(out, b)
	}
	return out
}

func withStatus(sec *slack.SectionBlock, status string) *slack.SectionBlock {
	c := *sec
	c.Fields = make([]*slack.TextBlockObject, len(sec.Fields))
	for i, f := range sec.Fields {
		if f != nil && strings.HasPrefix(f.Text, statusField) {
			f = mrkdwn(statusField + statusWords(status))
		}
		c.Fields[i] = f
	}
	return &c
}

// stateOf is a card's state line, "" for a card not acted on.
func stateOf(blocks []slack.Block) string {
	for _, b := range blocks {
		if cb, ok := b.(*slack.ContextBlock); ok && b.ID() == blockState {
			for _, e := range cb.ContextElements.Elements {
				if t, ok := e.(*slack.TextBlockObject); ok {
					return t.Text
				}
			}
		}
	}
	return ""
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
		msg = ": " + awsText(r.Message)
	}
	answer := fmt.Sprintf("CodeDeploy answered *%s*%s", awsText(r.Status), msg)
	if r.Status == "" {
		answer = "CodeDeploy accepted the stop without saying its status" + msg
	}
	where := ""
	if c.Account != "" {
		where = " in " + awsText(c.Account+"/"+c.Region)
	}
	return fmt.Sprintf(":hourglass_flowing_sand: %s confirmed the stop of %s%s. %s", mention(confirmer), code(c.DeploymentID), where, answer) +
		fmt.Sprintf("\nI will post the final state of %s here.", code(c.DeploymentID))
}

func finalStateText(d deploy.Deployment) string {
	s := fmt.Sprintf("%s Deployment %s is now *%s*", statusEmoji(d.Status), code(d.ID), statusWords(d.Status))
	if d.RollbackDeploymentID != "" {
		s += fmt.Sprintf("; rollback deployment %s started", code(d.RollbackDeploymentID))
	}
	if d.ErrorMessage != "" {
		s += ". CodeDeploy says: " + awsText(d.ErrorMessage)
	}
	return s + "."
}

// rollbackText is the end of a rollback a stop started: a failed one is
// said loudly, with CodeDeploy's own words.
func rollbackText(r deploy.Deployment) string {
	at := ""
	if !r.CompleteTime.IsZero() {
		at = " at " + slackTime(r.CompleteTime)
	}
	if r.Status == deploy.StatusSucceeded {
		return fmt.Sprintf(":white_check_mark: Rollback %s *Succeeded*%s.", code(r.ID), at)
	}
	s := fmt.Sprintf(":rotating_light: <!here> Rollback %s ended *%s*%s: the previous revision is *not* fully restored.", code(r.ID), statusWords(r.Status), at)
	if r.ErrorMessage != "" {
		s += " CodeDeploy says: " + awsText(r.ErrorMessage)
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

// Slack's limits: a message's text is cut at 40,000 characters ("chat.postMessage"
// method page, "Truncating content"); a section's text at 3,000. AWS strings
// are cut to awsMax first, so one long string cannot crowd out the rest.
const (
	maxText = 40000
	awsMax  = 1000
)

// awsText is a string from AWS made safe for mrkdwn and cut to size.
func awsText(s string) string { return escape(limit(s, awsMax)) }

// statusWords is a deployment status for people; an empty one said so.
func statusWords(status string) string {
	if status == "" {
		return "unknown (CodeDeploy gave no status)"
	}
	return awsText(status)
}

// limit cuts s to at most n characters (not bytes), the unit of Slack's limits.
func limit(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
