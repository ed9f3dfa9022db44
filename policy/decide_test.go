package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stopdeploy/stopdeploy/policy"
)

// decisions is a policy with one rule of each kind the tests need.
const decisions = `rules:
  - name: production
    deployment_groups: ["prod*"]
    channels: [C0INCIDENTS, C0OPS]
    requesters: {users: [U0ALICE], groups: [S0GONE, S0SRE]}
    approvers: {users: [U0DAVE], groups: [S0SRE, S0GONE]}
    approvals: 2
  - name: staging
    deployment_groups: ["staging"]
    requesters: {users: [U0ALICE], groups: [S0ENG]}
    approvers: {groups: [S0LEADS]}
    approvals: 0
  - name: qa
    deployment_groups: ["qa"]
    requesters: {users: [U0ALICE, U0BOB]}
    approvals: 1
`

var (
	prod    = policy.Target{"checkout", "production", "prod", "eu-west-1"}
	staging = policy.Target{"checkout", "staging", "prod", "eu-west-1"}
)

// members: S0SRE has Bob and Carol, S0ENG has Erin, S0LEADS has Frank;
// S0GONE's lookup fails.
func members() *fakeGroups {
	return &fakeGroups{
		members: map[string][]string{"S0SRE": {"U0BOB", "U0CAROL"}, "S0ENG": {"U0ERIN"}, "S0LEADS": {"U0FRANK"}},
		failing: []string{"S0GONE"},
	}
}

func TestMayRequest(t *testing.T) {
	p := mustParse(t, decisions)
	tests := []struct {
		name          string
		target        policy.Target
		user, channel string
		wantCode      string // "" when allowed
		wantReason    string
		wantErr       bool
		wantCalls     []string
	}{
		{name: "direct user, no lookup", target: prod, user: "U0ALICE", channel: "C0INCIDENTS"},
		{name: "through a group, though an earlier group fails", target: prod, user: "U0BOB", channel: "C0OPS",
			wantCalls: []string{"S0GONE/U0BOB", "S0SRE/U0BOB"}},
		{name: "lookup failed and nothing else allows", target: prod, user: "U0MALLORY", channel: "C0INCIDENTS",
			wantCode: policy.CodeLookupFailed, wantErr: true, wantCalls: []string{"S0GONE/U0MALLORY", "S0SRE/U0MALLORY"},
			wantReason: "I could not check your user-group membership with Slack, so I cannot let you do this right now. Try again in a minute."},
		{name: "not a requester", target: staging, user: "U0MALLORY", channel: "C0RANDOM",
			wantCode: policy.CodeNotRequester, wantCalls: []string{"S0ENG/U0MALLORY"},
			wantReason: "You are not allowed to stop deployments under rule *staging* (checkout / staging): you are not one of its requesters. " +
				"Ask your platform team to add you (or one of your user groups) to that rule."},
		{name: "an approver is not a requester", target: staging, user: "U0FRANK", channel: "C0RANDOM",
			wantCode: policy.CodeNotRequester, wantCalls: []string{"S0ENG/U0FRANK"},
			wantReason: "You are not allowed to stop deployments under rule *staging* (checkout / staging): you are not one of its requesters. " +
				"Ask your platform team to add you (or one of your user groups) to that rule."},
		{name: "channel first, no lookup", target: prod, user: "U0BOB", channel: "C0RANDOM",
			wantCode:   policy.CodeChannelNotAllowed,
			wantReason: "/stopdeploy is not enabled in this channel for deployments under rule *production* (checkout / production). Use it in <#C0INCIDENTS> or <#C0OPS>."},
		{name: "channels omitted: any channel", target: staging, user: "U0ERIN", channel: "G0PRIVATE", wantCalls: []string{"S0ENG/U0ERIN"}},
		{name: "no rule", target: policy.Target{"checkout", "dev", "prod", "eu-west-1"}, user: "U0ALICE", channel: "C0INCIDENTS",
			wantCode: policy.CodeNoRule,
			wantReason: "No rule lets anyone stop checkout / dev (prod, eu-west-1) from Slack. If it must stop now, stop it in the CodeDeploy console; " +
				"ask your platform team to add a rule for it to the stopdeploy policy."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := members()
			r, got, err := p.MayRequest(context.Background(), tt.target, tt.user, tt.channel, g.lookup)
			if (err != nil) != tt.wantErr {
				t.Fatalf("MayRequest error = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, errSlack) {
				t.Errorf("error %v does not wrap the lookup's error", err)
			}
			want := policy.Decision{Allowed: tt.wantCode == "", Code: tt.wantCode, Reason: tt.wantReason}
			if got != want {
				t.Errorf("MayRequest = %+v,\n want %+v", got, want)
			}
			if (r == nil) != (tt.wantCode == policy.CodeNoRule) {
				t.Errorf("MayRequest rule = %v with code %q", r, got.Code)
			}
			if !equal(g.calls, tt.wantCalls) {
				t.Errorf("lookups = %v, want %v", g.calls, tt.wantCalls)
			}
		})
	}
}

func TestMayApprove(t *testing.T) {
	p := mustParse(t, decisions)
	rule := func(name string) *policy.Rule {
		r, ok := p.Rule(name)
		if !ok {
			t.Fatalf("no rule %q", name)
		}
		return r
	}
	tests := []struct {
		name, rule           string
		user, channel, asked string
		soFar                []string
		wantCode, wantReason string
		wantErr              bool
		wantCalls            []string
	}{
		{name: "direct approver, no lookup", rule: "production", user: "U0DAVE", channel: "C0INCIDENTS", asked: "U0ALICE"},
		{name: "approver through a group that answers first", rule: "production", user: "U0CAROL", channel: "C0INCIDENTS", asked: "U0ALICE",
			wantCalls: []string{"S0SRE/U0CAROL"}},
		{name: "a requester who is not an approver", rule: "production", user: "U0ALICE", channel: "C0INCIDENTS", asked: "U0BOB",
			wantCode: policy.CodeLookupFailed, wantErr: true, wantCalls: []string{"S0SRE/U0ALICE", "S0GONE/U0ALICE"},
			wantReason: "I could not check your user-group membership with Slack, so I cannot let you do this right now. Try again in a minute."},
		{name: "the requester presses approve: no lookup", rule: "production", user: "U0BOB", channel: "C0INCIDENTS", asked: "U0BOB",
			wantCode: policy.CodeOwnRequest,
			wantReason: "You asked for this, so your approval does not count: rule *production* needs 2 approvals from someone else. " +
				"Ask one of its approvers to approve. You can still Cancel."},
		{name: "a repeat approver: no lookup", rule: "production", user: "U0CAROL", channel: "C0INCIDENTS", asked: "U0ALICE", soFar: []string{"U0CAROL"},
			wantCode: policy.CodeAlreadyApproved,
			wantReason: "You have already approved this, and each person counts once: rule *production* needs 2 approvals from different people. " +
				"Ask another of its approvers to approve."},
		{name: "the second approver", rule: "production", user: "U0BOB", channel: "C0INCIDENTS", asked: "U0ALICE", soFar: []string{"U0CAROL"},
			wantCalls: []string{"S0SRE/U0BOB"}},
		{name: "a confirmation moved out of its channels", rule: "production", user: "U0DAVE", channel: "C0RANDOM", asked: "U0ALICE",
			wantCode:   policy.CodeChannelNotAllowed,
			wantReason: "/stopdeploy is not enabled in this channel for deployments under rule *production*. Use it in <#C0INCIDENTS> or <#C0OPS>."},
		{name: "approvers omitted: the requesters approve", rule: "qa", user: "U0BOB", channel: "C0RANDOM", asked: "U0ALICE"},
		{name: "approvers omitted: others refused", rule: "qa", user: "U0ERIN", channel: "C0RANDOM", asked: "U0ALICE",
			wantCode: policy.CodeNotApprover,
			wantReason: "You are not allowed to approve stops under rule *qa*: you are not one of its approvers. " +
				"Ask one of them to approve, or your platform team to add you (or one of your user groups) to its approvers."},
		{name: "approvals 0: the requester confirms alone", rule: "staging", user: "U0ALICE", channel: "C0RANDOM", asked: "U0ALICE"},
		{name: "approvals 0: another requester confirms", rule: "staging", user: "U0ERIN", channel: "C0RANDOM", asked: "U0ALICE",
			wantCalls: []string{"S0ENG/U0ERIN"}},
		{name: "approvals 0: an approver confirms", rule: "staging", user: "U0FRANK", channel: "C0RANDOM", asked: "U0ERIN",
			wantCalls: []string{"S0ENG/U0FRANK", "S0LEADS/U0FRANK"}},
		{name: "approvals 0: anyone else is refused", rule: "staging", user: "U0MALLORY", channel: "C0RANDOM", asked: "U0ERIN",
			wantCode: policy.CodeNotApprover, wantCalls: []string{"S0ENG/U0MALLORY", "S0LEADS/U0MALLORY"},
			wantReason: "You are not allowed to stop deployments under rule *staging*: only its requesters and approvers may confirm. " +
				"Ask one of them, or your platform team to add you (or one of your user groups) to that rule."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := members()
			got, err := rule(tt.rule).MayApprove(context.Background(), tt.user, tt.channel, tt.asked, tt.soFar, g.lookup)
			if (err != nil) != tt.wantErr {
				t.Fatalf("MayApprove error = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, errSlack) {
				t.Errorf("error %v does not wrap the lookup's error", err)
			}
			want := policy.Decision{Allowed: tt.wantCode == "", Code: tt.wantCode, Reason: tt.wantReason}
			if got != want {
				t.Errorf("MayApprove = %+v,\n want %+v", got, want)
			}
			if !equal(g.calls, tt.wantCalls) {
				t.Errorf("lookups = %v, want %v", g.calls, tt.wantCalls)
			}
		})
	}
}

// A group named by both requesters and approvers is looked up once when
// approvals is 0.
func TestMayApprove_ConfirmLooksUpEachGroupOnce(t *testing.T) {
	p := mustParse(t, rule+"    approvers: {groups: [S0SRE, S0LEADS]}\n")
	g := members()
	if _, err := p.Rules[0].MayApprove(context.Background(), "U0MALLORY", "C0ANY", "U0BOB", nil, g.lookup); err != nil {
		t.Fatal(err)
	}
	if want := []string{"S0SRE/U0MALLORY", "S0LEADS/U0MALLORY"}; !equal(g.calls, want) {
		t.Errorf("lookups = %v, want %v", g.calls, want)
	}
}

func TestDecide_NoMembership(t *testing.T) {
	p := mustParse(t, decisions)
	_, d, err := p.MayRequest(context.Background(), prod, "U0BOB", "C0OPS", nil)
	if err == nil || d.Code != policy.CodeLookupFailed {
		t.Errorf("MayRequest without a lookup = %+v, %v; want a lookup failure", d, err)
	}
	_, d, err = p.MayRequest(context.Background(), prod, "U0ALICE", "C0OPS", nil)
	if err != nil || !d.Allowed {
		t.Errorf("a direct user needs no lookup, got %+v, %v", d, err)
	}
}

// Flat keeps the bot's old wording, which users know and end-to-end tests
// check.
func TestFlat(t *testing.T) {
	const (
		notAllowed = "You are not allowed to stop deployments. Ask your platform team to add you (or one of your user groups) to the allowed list."
		channel    = "/stopdeploy is not enabled in this channel. Ask your platform team which channel to use."
		lookup     = "I could not check your user-group membership with Slack, so I cannot let you do this right now. Try again in a minute."
		ownRequest = "A second approver is required: another person allowed to stop deployments must press Stop. You can still Cancel."
	)
	target := policy.Target{"any", "thing", "default", "us-east-1"}
	tests := []struct {
		name           string
		second         bool
		channels       []string
		approve        bool // MayApprove on a request by U0BOB instead of MayRequest
		slackDown      bool // group lookups fail
		user, channel  string
		wantCode, want string
		wantErr        bool
	}{
		{name: "allowed user", user: "U0ALICE", channel: "C0DEPLOYS"},
		{name: "through a group", user: "U0BOB", channel: "C0DEPLOYS"},
		{name: "not allowed", user: "U0MALLORY", channel: "C0DEPLOYS", wantCode: policy.CodeNotRequester, want: notAllowed},
		{name: "channel", channels: []string{"C0DEPLOYS"}, user: "U0ALICE", channel: "C0RANDOM", wantCode: policy.CodeChannelNotAllowed, want: channel},
		{name: "lookup failed", slackDown: true, user: "U0CAROL", channel: "C0DEPLOYS", wantCode: policy.CodeLookupFailed, want: lookup, wantErr: true},
		{name: "lookup failed, allowed directly", slackDown: true, user: "U0ALICE", channel: "C0DEPLOYS"},
		{name: "confirm alone", approve: true, user: "U0BOB", channel: "C0DEPLOYS"},
		{name: "confirm by another", approve: true, user: "U0ALICE", channel: "C0DEPLOYS"},
		{name: "confirm refused", approve: true, user: "U0MALLORY", channel: "C0DEPLOYS", wantCode: policy.CodeNotApprover, want: notAllowed},
		{name: "second approver", second: true, approve: true, user: "U0ALICE", channel: "C0DEPLOYS"},
		{name: "second approver: own request", second: true, approve: true, user: "U0BOB", channel: "C0DEPLOYS", wantCode: policy.CodeSecondApprover, want: ownRequest},
		{name: "second approver: not allowed", second: true, approve: true, user: "U0MALLORY", channel: "C0DEPLOYS", wantCode: policy.CodeNotApprover, want: notAllowed},
		{name: "second approver: channel", second: true, approve: true, channels: []string{"C0DEPLOYS"}, user: "U0ALICE", channel: "C0RANDOM",
			wantCode: policy.CodeChannelNotAllowed, want: channel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policy.Flat([]string{"U0ALICE", " "}, []string{"S0ONCALL"}, tt.channels, tt.second)
			g := &fakeGroups{members: map[string][]string{"S0ONCALL": {"U0BOB"}}}
			if tt.slackDown {
				g.failing = []string{"S0ONCALL"}
			}
			var got policy.Decision
			var err error
			if tt.approve {
				r, _ := p.RuleFor(target)
				got, err = r.MayApprove(context.Background(), tt.user, tt.channel, "U0BOB", nil, g.lookup)
			} else {
				_, got, err = p.MayRequest(context.Background(), target, tt.user, tt.channel, g.lookup)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if want := (policy.Decision{Allowed: tt.wantCode == "", Code: tt.wantCode, Reason: tt.want}); got != want {
				t.Errorf("decision = %+v,\n want %+v", got, want)
			}
		})
	}
}

// One substring test fits the refusals with and without a file.
func TestRefusals_ShareTheirLeadingWords(t *testing.T) {
	flat := policy.Flat([]string{"U0ALICE"}, nil, []string{"C0DEPLOYS"}, false)
	file := mustParse(t, decisions)
	tests := []struct {
		name          string
		p             *policy.Policy
		target        policy.Target
		user, channel string
		prefix        string
	}{
		{"flat user", flat, prod, "U0MALLORY", "C0DEPLOYS", "You are not allowed to stop deployments"},
		{"file user", file, staging, "U0MALLORY", "C0RANDOM", "You are not allowed to stop deployments"},
		{"flat channel", flat, prod, "U0ALICE", "C0RANDOM", "/stopdeploy is not enabled in this channel"},
		{"file channel", file, prod, "U0ALICE", "C0RANDOM", "/stopdeploy is not enabled in this channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, d, err := tt.p.MayRequest(context.Background(), tt.target, tt.user, tt.channel, members().lookup)
			if err != nil || d.Allowed || !strings.HasPrefix(d.Reason, tt.prefix) {
				t.Errorf("MayRequest = %+v, %v; want a refusal starting %q", d, err, tt.prefix)
			}
		})
	}
}
