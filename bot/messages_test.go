package bot

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/commands"
	"github.com/stopdeploy/stopdeploy/deploy"
	"github.com/stopdeploy/stopdeploy/policy"
)

func TestConfirmationMessage(t *testing.T) {
	d := deploy.Deployment{
		ID: "d-LGUMS25CC", Application: "checkout", Group: "production", Status: "InProgress", Creator: "user",
		ComputePlatform: "Server", CreateTime: time.Unix(1795734000, 0),
		Overview: &deploy.Overview{Succeeded: 3, InProgress: 1, Pending: 2},
	}
	c := commands.Confirmation{Account: "default", Region: "us-east-1", DeploymentID: d.ID, Rollback: true, RequesterID: "U0ALICE",
		ChannelID: "C0DEPLOYS", ExpiresAt: time.Unix(1795734600, 0).UTC(), Rule: "allowed list"}

	tests := []struct {
		name           string
		rollback       bool
		secondApprover bool
		want           []string
	}{
		{"rollback", true, false, []string{"<@U0ALICE> asks to stop deployment `d-LGUMS25CC`", "*Rollback:* yes", "Stop and roll back",
			"3 succeeded · 1 in progress · 2 pending · 0 failed · 0 skipped", "*Application*\ncheckout", "*Deployment group*\nproduction", "*Started by*\na user (console, CLI or API), <!date^1795734000^",
			"<!date^1795734600^{date_short_pretty} {time}|", "Anyone allowed to stop deployments can confirm."}},
		{"no rollback, second approver", false, true, []string{"*Rollback:* no", "Stop deployment",
			"<@U0ALICE> cannot confirm their own request"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := c
			c.Rollback = tt.rollback
			rule := policy.Flat([]string{"U0ALICE"}, nil, nil, tt.secondApprover).Rules[0]
			c.Needed = rule.Approvals
			_, blocks := confirmationMessage(testKey, d, c, &rule)
			raw, err := json.Marshal(blocks)
			if err != nil {
				t.Fatal(err)
			}
			text := unescapeJSON(t, raw)
			for _, want := range tt.want {
				if !strings.Contains(text, want) {
					t.Errorf("blocks lack %q:\n%s", want, text)
				}
			}
			stop, cancel := buttons(t, blocks)
			if stop.Style != slack.StyleDanger || stop.Confirm == nil || stop.Confirm.Style != slack.StyleDanger {
				t.Errorf("Stop button = %+v, want danger style and a danger confirm dialog", stop)
			}
			for _, b := range []*slack.ButtonBlockElement{stop, cancel} {
				got, err := testKey.Decode(b.Value)
				if err != nil || !reflect.DeepEqual(got, c) {
					t.Errorf("%s value decodes to %+v, %v; want %+v", b.ActionID, got, err, c)
				}
			}
		})
	}
}

func TestConfirmationMessage_RespectsSlackLimitsAndEscapes(t *testing.T) {
	long := strings.Repeat("ä", 120)
	d := deploy.Deployment{ID: "d-LGUMS25CC", Application: "<script>&" + long, Group: long, Status: "InProgress"}
	c := commands.Confirmation{DeploymentID: d.ID, RequesterID: "U0ALICE", ChannelID: "C0DEPLOYS", ExpiresAt: time.Unix(1795734600, 0).UTC()}
	_, blocks := confirmationMessage(testKey, d, c, &everyone.Rules[0])
	stop, _ := buttons(t, blocks)
	if n := utf8.RuneCountInString(stop.Confirm.Title.Text); n > 100 {
		t.Errorf("confirm title has %d characters, Slack allows 100", n)
	}
	if n := utf8.RuneCountInString(stop.Confirm.Text.Text); n > 300 {
		t.Errorf("confirm text has %d characters, Slack allows 300", n)
	}
	fields := blocks[1].(*slack.SectionBlock).Fields
	if got := fields[0].Text; !strings.HasPrefix(got, "*Application*\n&lt;script&gt;&amp;") {
		t.Errorf("application field = %q, want &, < and > escaped for mrkdwn", got)
	}
}

func TestWithState(t *testing.T) {
	c := commands.Confirmation{DeploymentID: "d-LGUMS25CC", RequesterID: "U0ALICE", ChannelID: "C0DEPLOYS", ExpiresAt: time.Unix(1795734600, 0).UTC()}
	_, blocks := confirmationMessage(testKey, deploy.Deployment{ID: c.DeploymentID, Status: "InProgress"}, c, &everyone.Rules[0])
	if !hasButtons(blocks) || stateOf(blocks) != "" {
		t.Fatal("a fresh confirmation has no buttons, or a state")
	}
	at := time.Unix(1795734100, 0)
	once := withState(blocks, stateStopping("U0BOB", at))
	again := withState(once, stateFinal(deploy.Deployment{Status: "Stopped", RollbackDeploymentID: "d-ROLLBACK1"}, "U0BOB"))
	if hasButtons(once) || hasButtons(again) {
		t.Error("buttons survive withState")
	}
	var ids []string
	for _, b := range again {
		ids = append(ids, b.ID())
	}
	// The state on top; "Confirm before" gone once it no longer applies.
	want := []string{blockState, blockRequest, blockDeployment}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("block IDs = %v, want %v", ids, want)
	}
	if got := stateOf(again); !strings.Contains(got, "Final state: *Stopped*") || !strings.Contains(got, "d-ROLLBACK1") {
		t.Errorf("state line = %q", got)
	}
	fields, _ := json.Marshal(again[2])
	if !strings.Contains(string(fields), `*Status*\nStopped`) || strings.Contains(string(fields), "InProgress") {
		t.Errorf("status field not updated: %s", fields)
	}
	fields, _ = json.Marshal(once[2])
	if !strings.Contains(string(fields), "Stopping…") {
		t.Errorf("status field while stopping: %s", fields)
	}
	if len(blocks) != 4 || !strings.Contains(mustJSON(t, blocks[1]), "InProgress") {
		t.Errorf("withState changed its input")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFinalStateText(t *testing.T) {
	tests := []struct {
		d    deploy.Deployment
		want string
	}{
		{deploy.Deployment{ID: "d-LGUMS25CC", Status: "Stopped", RollbackDeploymentID: "d-ROLLBACK1"},
			":octagonal_sign: Deployment `d-LGUMS25CC` is now *Stopped*; rollback deployment `d-ROLLBACK1` started."},
		{deploy.Deployment{ID: "d-LGUMS25CC", Status: "Succeeded"},
			":white_check_mark: Deployment `d-LGUMS25CC` is now *Succeeded*."},
		{deploy.Deployment{ID: "d-LGUMS25CC", Status: "Failed", ErrorMessage: "health <checks> failed"},
			":x: Deployment `d-LGUMS25CC` is now *Failed*. CodeDeploy says: health &lt;checks&gt; failed."},
	}
	for _, tt := range tests {
		if got := finalStateText(tt.d); got != tt.want {
			t.Errorf("finalStateText(%s)\n got: %s\nwant: %s", tt.d.Status, got, tt.want)
		}
	}
}

func buttons(t *testing.T, blocks []slack.Block) (stop, cancel *slack.ButtonBlockElement) {
	t.Helper()
	for _, b := range blocks {
		if a, ok := b.(*slack.ActionBlock); ok && a.BlockID == blockActions {
			for _, e := range a.Elements.ElementSet {
				switch btn := e.(*slack.ButtonBlockElement); btn.ActionID {
				case actionStop, actionApprove:
					stop = btn
				case actionCancel:
					cancel = btn
				}
			}
		}
	}
	if stop == nil || cancel == nil {
		t.Fatal("confirmation lacks Stop or Cancel")
	}
	return stop, cancel
}

// unescapeJSON returns the strings of a JSON document joined, so tests can
// look for text as Slack will render it.
func unescapeJSON(t *testing.T, raw []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			b.WriteString(v)
			b.WriteString("\n")
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return b.String()
}

// TestConfirmationMessage_Approvals: a rule that needs approvals gets an
// Approve button, its name and "Approvals: 0 of N" on the card; after an
// approval the card names the approvers and its buttons carry them, bound
// to the message.
func TestConfirmationMessage_Approvals(t *testing.T) {
	pol, err := policy.Parse("p.yaml", []byte("rules:\n  - name: production\n    deployment_groups: [prod*]\n    requesters: {users: [U0ALICE, U0BOB, U0CAROL]}\n    approvals: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	rule := &pol.Rules[0]
	d := deploy.Deployment{ID: "d-LGUMS25CC", Application: "checkout", Group: "production", Status: "InProgress"}
	c := commands.Confirmation{Account: "default", Region: "us-east-1", DeploymentID: d.ID, RequesterID: "U0ALICE",
		ChannelID: "C0DEPLOYS", ExpiresAt: time.Unix(1795734600, 0).UTC(), Rule: rule.Name, Needed: 2}
	_, blocks := confirmationMessage(testKey, d, c, rule)
	text := unescapeJSON(t, []byte(mustJSON(t, blocks)))
	for _, want := range []string{"Rule *production*", "*Approvals:* 0 of 2", "<@U0ALICE> cannot approve their own request"} {
		if !strings.Contains(text, want) {
			t.Errorf("card lacks %q:\n%s", want, text)
		}
	}
	approve, _ := buttons(t, blocks)
	if approve.ActionID != actionApprove || approve.Text.Text != "Approve" || approve.Confirm == nil {
		t.Errorf("confirming button = %+v, want Approve with a dialog", approve)
	}

	next := c
	next.Approvers, next.MessageTS = []string{"U0BOB"}, "1795734000.000100"
	after := withApprovals(testKey, blocks, next, rule)
	text = unescapeJSON(t, []byte(mustJSON(t, after)))
	if !strings.Contains(text, "*Approvals:* 1 of 2: <@U0BOB>") {
		t.Errorf("card after an approval:\n%s", text)
	}
	approve, cancel := buttons(t, after)
	for _, b := range []*slack.ButtonBlockElement{approve, cancel} {
		got, err := testKey.Decode(b.Value)
		if err != nil || !reflect.DeepEqual(got, next) {
			t.Errorf("%s value = %+v, %v; want %+v", b.ActionID, got, err, next)
		}
	}
	if !strings.Contains(approve.Confirm.Text.Text, "checkout / production") {
		t.Errorf("dialog after an approval lost the deployment's names: %q", approve.Confirm.Text.Text)
	}
}
