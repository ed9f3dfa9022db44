package policy_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stopdeploy/stopdeploy/policy"
)

const example = "../policy.example.yaml"

func TestExample(t *testing.T) {
	p, err := policy.Load(example)
	if err != nil {
		t.Fatalf("the example does not load: %v", err)
	}
	g := &fakeGroups{members: map[string][]string{
		"S0SRE":    {"U0SRE1", "U0SRE2"},
		"S0ONCALL": {"U0DEV"},
		"S0ENG":    {"U0DEV", "U0SRE1"},
	}}
	prod := policy.Target{"checkout", "prod-eu", "default", "eu-west-1"}
	ctx := context.Background()

	// Production: an on-call engineer asks in #incidents, an SRE approves.
	r, d, err := p.MayRequest(ctx, prod, "U0DEV", "C0INCIDENTS", g.lookup)
	if err != nil || !d.Allowed || r.Name != "production" {
		t.Fatalf("on-call request in #incidents = %v, %+v, %v", r, d, err)
	}
	if _, d, _ := p.MayRequest(ctx, prod, "U0DEV", "C0RANDOM", g.lookup); d.Code != policy.CodeChannelNotAllowed {
		t.Errorf("production outside #incidents = %+v, want refused", d)
	}
	if d, _ := r.MayApprove(ctx, "U0DEV", "C0INCIDENTS", "U0SRE1", nil, g.lookup); d.Code != policy.CodeNotApprover {
		t.Errorf("on-call approving = %+v, want refused: only SREs approve", d)
	}
	if d, _ := r.MayApprove(ctx, "U0SRE2", "C0INCIDENTS", "U0DEV", nil, g.lookup); !d.Allowed || !r.Approved("U0DEV", []string{"U0SRE2"}) {
		t.Errorf("SRE approving = %+v, want allowed and enough", d)
	}

	// Staging: any engineer, anywhere, alone.
	staging := policy.Target{"checkout", "staging-2", "default", "eu-west-1"}
	r, d, _ = p.MayRequest(ctx, staging, "U0DEV", "C0RANDOM", g.lookup)
	if !d.Allowed || r.Name != "staging" {
		t.Fatalf("engineer stopping staging = %v, %+v", r, d)
	}
	if d, _ := r.MayApprove(ctx, "U0DEV", "C0RANDOM", "U0DEV", nil, g.lookup); !d.Allowed {
		t.Errorf("engineer confirming their own staging stop = %+v, want allowed", d)
	}

	// Everything else: refused.
	if r, d, _ := p.MayRequest(ctx, policy.Target{"checkout", "dev", "default", "eu-west-1"}, "U0SRE1", "C0INCIDENTS", g.lookup); r != nil || d.Code != policy.CodeNoRule {
		t.Errorf("dev = %v, %+v; want no rule", r, d)
	}
}

func TestDescribe_Example(t *testing.T) {
	p, err := policy.Load(example)
	if err != nil {
		t.Fatal(err)
	}
	want := `../policy.example.yaml: 2 rules. The first rule that matches a deployment decides; a deployment no rule matches cannot be stopped from Slack.

1. production (line 32)
   Matches: any application; deployment groups prod, prod-* or production; any account; any region.
   Requested in: channel C0INCIDENTS.
   Requesters: members of S0SRE or S0ONCALL.
   Approvers: members of S0SRE.
   Stops after 1 approval by an approver other than the requester.

2. staging (line 47)
   Matches: any application; deployment groups staging or staging-*; any account; any region.
   Requested in: any channel.
   Requesters: user W0CONTRACTOR; members of S0ENG.
   Approvers: the requesters.
   Stops when a requester confirms; the requester may confirm their own request.
`
	if got := p.Describe(); got != want {
		t.Errorf("Describe =\n%s\nwant\n%s", got, want)
	}
}

func TestDescribe_Variants(t *testing.T) {
	p := mustParse(t, `rules:
  - name: a
    applications: [checkout]
    deployment_groups: ["*"]
    accounts: [prod, stage]
    regions: [eu-west-1, "us-*", ap-south-1]
    channels: [C0A, C0B]
    requesters: {users: [U0A, U0B, U0C]}
    approvers: {users: [U0D], groups: [S0X]}
    approvals: 3
  - name: b
    deployment_groups: ["*"]
    requesters: {users: [U0A]}
    approvers: {users: [U0B]}
`)
	want := `policy.yaml: 2 rules. The first rule that matches a deployment decides; a deployment no rule matches cannot be stopped from Slack.

1. a (line 2)
   Matches: application checkout; any deployment group; accounts prod or stage; regions eu-west-1, us-* or ap-south-1.
   Requested in: channels C0A or C0B.
   Requesters: users U0A, U0B and U0C.
   Approvers: user U0D; members of S0X.
   Stops after 3 approvals by different approvers, none of them the requester.

2. b (line 11)
   Matches: any application; any deployment group; any account; any region.
   Requested in: any channel.
   Requesters: user U0A.
   Approvers: user U0B.
   Stops when a requester or an approver confirms; the requester may confirm their own request.
`
	if got := p.Describe(); got != want {
		t.Errorf("Describe =\n%s\nwant\n%s", got, want)
	}
}

func TestDescribe_Flat(t *testing.T) {
	want := `No policy file: one rule built from STOPDEPLOY_ALLOWED_USERS, _GROUPS, _CHANNELS and _REQUIRE_SECOND_APPROVER.

1. allowed list
   Matches: any application; any deployment group; any account; any region.
   Requested in: channel C0DEPLOYS.
   Requesters: user U0ALICE; members of S0ONCALL.
   Approvers: the requesters.
   Stops after 1 approval by an approver other than the requester.
`
	if got := policy.Flat([]string{"U0ALICE"}, []string{"S0ONCALL"}, []string{"C0DEPLOYS"}, true).Describe(); got != want {
		t.Errorf("Describe =\n%s\nwant\n%s", got, want)
	}
}

func TestExplain(t *testing.T) {
	p, err := policy.Load(example)
	if err != nil {
		t.Fatal(err)
	}
	prod := policy.Target{"checkout", "prod-eu", "default", "eu-west-1"}
	tests := []struct {
		name          string
		target        policy.Target
		user, channel string
		failing       []string
		want          string
		wantErr       bool
	}{
		{name: "an SRE in #incidents", target: prod, user: "U0SRE1", channel: "C0INCIDENTS",
			want: `checkout / prod-eu (default, eu-west-1): rule "production" decides (line 32).
May U0SRE1 request a stop in C0INCIDENTS? Yes.
May U0SRE1 approve someone else's request? Yes.
Stops after 1 approval by an approver other than the requester.
`},
		{name: "on call, anywhere", target: prod, user: "U0DEV", channel: "",
			want: `checkout / prod-eu (default, eu-west-1): rule "production" decides (line 32).
May U0DEV request a stop (channel not checked)? Yes.
May U0DEV approve someone else's request? No (not_approver): You are not allowed to approve stops under rule *production*: you are not one of its approvers. Ask one of them to approve, or your platform team to add you (or one of your user groups) to its approvers.
Stops after 1 approval by an approver other than the requester.
`},
		{name: "the wrong channel", target: prod, user: "U0SRE1", channel: "C0RANDOM",
			want: `checkout / prod-eu (default, eu-west-1): rule "production" decides (line 32).
May U0SRE1 request a stop in C0RANDOM? No (channel_not_allowed): /stopdeploy is not enabled in this channel for deployments under rule *production* (checkout / prod-eu). Use it in <#C0INCIDENTS>.
May U0SRE1 approve someone else's request? No (channel_not_allowed): /stopdeploy is not enabled in this channel for deployments under rule *production*. Use it in <#C0INCIDENTS>.
Stops after 1 approval by an approver other than the requester.
`},
		{name: "staging, Slack down", target: policy.Target{"web", "staging", "default", "us-east-1"}, user: "U0DEV", failing: []string{"S0ENG"},
			wantErr: true,
			want: `web / staging (default, us-east-1): rule "staging" decides (line 47).
May U0DEV request a stop (channel not checked)? Unknown: a user-group lookup failed.
May U0DEV confirm a request with one press? Unknown: a user-group lookup failed.
Stops when a requester confirms; the requester may confirm their own request.
`},
		{name: "no rule", target: policy.Target{"web", "dev", "default", "us-east-1"}, user: "U0SRE1",
			want: "web / dev (default, us-east-1): no rule matches, so nobody can stop it from Slack.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &fakeGroups{members: map[string][]string{"S0SRE": {"U0SRE1"}, "S0ONCALL": {"U0DEV"}, "S0ENG": {"U0DEV"}}, failing: tt.failing}
			e, err := policy.Explain(context.Background(), p, tt.target, tt.user, tt.channel, g.lookup)
			if (err != nil) != tt.wantErr || tt.wantErr && !errors.Is(err, errSlack) {
				t.Fatalf("Explain error = %v, wantErr %v", err, tt.wantErr)
			}
			if got := e.String(); got != tt.want {
				t.Errorf("Explain =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
