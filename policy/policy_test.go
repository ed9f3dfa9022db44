package policy_test

import (
	"testing"

	"github.com/stopdeploy/stopdeploy/policy"
)

func mustParse(t *testing.T, yaml string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("policy.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func TestRuleFor(t *testing.T) {
	p := mustParse(t, `rules:
  - name: checkout eu prod
    applications: [checkout]
    deployment_groups: ["prod*"]
    accounts: [prod]
    regions: ["eu-*"]
    requesters: {groups: [S0SRE]}
  - name: production
    deployment_groups: ["prod*", "production"]
    requesters: {groups: [S0SRE]}
  - name: canaries
    applications: ["pay-?", "[ab]*"]
    deployment_groups: ["canary"]
    requesters: {groups: [S0ENG]}
  - name: staging in sandbox
    deployment_groups: ["*"]
    accounts: [sandbox, "dev-*"]
    regions: [us-east-1]
    requesters: {groups: [S0ENG]}
`)
	tests := []struct {
		name   string
		target policy.Target
		want   string // "" when no rule matches
	}{
		{"every list matches the first rule", policy.Target{"checkout", "prod-eu", "prod", "eu-west-1"}, "checkout eu prod"},
		{"first match wins over a later, wider rule", policy.Target{"checkout", "production", "prod", "eu-central-1"}, "checkout eu prod"},
		{"another region falls through", policy.Target{"checkout", "prod-us", "prod", "us-east-1"}, "production"},
		{"another account falls through", policy.Target{"checkout", "prod-eu", "default", "eu-west-1"}, "production"},
		{"another application falls through", policy.Target{"search", "prod-eu", "prod", "eu-west-1"}, "production"},
		{"defaults match any application, account and region", policy.Target{"anything", "production", "x", "ap-south-1"}, "production"},
		{"a glob is whole-name, not a substring", policy.Target{"checkout", "preprod", "prod", "eu-west-1"}, ""},
		{"? is one character", policy.Target{"pay-1", "canary", "default", "us-east-1"}, "canaries"},
		{"? is exactly one character", policy.Target{"pay-12", "canary", "default", "us-east-1"}, ""},
		{"a character set", policy.Target{"billing", "canary", "default", "us-east-1"}, "canaries"},
		{"a glob in accounts", policy.Target{"web", "qa", "dev-2", "us-east-1"}, "staging in sandbox"},
		{"a literal in accounts", policy.Target{"web", "qa", "sandbox", "us-east-1"}, "staging in sandbox"},
		{"region literal must be equal", policy.Target{"web", "qa", "sandbox", "us-east-2"}, ""},
		{"case counts", policy.Target{"web", "PROD", "prod", "eu-west-1"}, ""},
		{"nothing matches", policy.Target{"web", "qa", "prod", "eu-west-1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := p.RuleFor(tt.target)
			got := ""
			if ok {
				got = r.Name
			}
			if got != tt.want {
				t.Errorf("RuleFor(%+v) = %q, want %q", tt.target, got, tt.want)
			}
		})
	}
}

func TestRule_ByName(t *testing.T) {
	p := mustParse(t, rule)
	if r, ok := p.Rule("production"); !ok || r != &p.Rules[0] {
		t.Errorf("Rule(production) = %v, %v; want the first rule", r, ok)
	}
	for _, name := range []string{"Production", "prod", ""} {
		if r, ok := p.Rule(name); ok {
			t.Errorf("Rule(%q) = %v, want none: a click names its rule exactly", name, r.Name)
		}
	}
	flat := policy.Flat([]string{"U0ALICE"}, nil, nil, false)
	r, ok := flat.RuleFor(policy.Target{"a", "b", "c", "d"})
	if !ok {
		t.Fatal("Flat matches nothing")
	}
	if again, ok := flat.Rule(r.Name); !ok || again != r {
		t.Errorf("Flat's rule %q cannot be found by its name", r.Name)
	}
}

func TestRule_HandBuiltFailsClosed(t *testing.T) {
	r := policy.Rule{Name: "empty", Requesters: policy.Principals{Users: []string{"U0ALICE"}}}
	if r.Matches(policy.Target{"a", "b", "c", "d"}) {
		t.Error("a rule with no globs matches: it must match nothing")
	}
	bad := policy.Rule{Applications: []string{"["}, DeploymentGroups: []string{"*"}, Accounts: []string{"*"}, Regions: []string{"*"}}
	if bad.Matches(policy.Target{"[", "b", "c", "d"}) {
		t.Error("a bad pattern matches")
	}
}

func TestRule_Groups(t *testing.T) {
	p := mustParse(t, rule+"    approvers: {groups: [S0LEADS, S0SRE], users: [U0ALICE]}\n")
	if got, want := p.Rules[0].Groups(), []string{"S0SRE", "S0LEADS"}; !equal(got, want) {
		t.Errorf("Groups = %v, want %v", got, want)
	}
}

func TestRule_Approved(t *testing.T) {
	tests := []struct {
		name      string
		approvals int
		given     []string
		want      bool
	}{
		{"zero needs nothing", 0, nil, true},
		{"one", 1, []string{"U0BOB"}, true},
		{"none yet", 1, nil, false},
		{"the requester never counts", 1, []string{"U0ALICE"}, false},
		{"each person once", 2, []string{"U0BOB", "U0BOB"}, false},
		{"two people", 2, []string{"U0BOB", "U0CAROL"}, true},
		{"blank IDs do not count", 1, []string{""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := policy.Rule{Approvals: tt.approvals}
			if got := r.Approved("U0ALICE", tt.given); got != tt.want {
				t.Errorf("Approved(U0ALICE, %v) with %d needed = %v, want %v", tt.given, tt.approvals, got, tt.want)
			}
		})
	}
}

func TestTarget_String(t *testing.T) {
	tests := []struct {
		t    policy.Target
		want string
	}{
		{policy.Target{Application: "checkout", Group: "production"}, "checkout / production"},
		{policy.Target{"checkout", "production", "prod", "eu-west-1"}, "checkout / production (prod, eu-west-1)"},
		{policy.Target{Application: "checkout", Group: "production", Region: "eu-west-1"}, "checkout / production (eu-west-1)"},
	}
	for _, tt := range tests {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.t, got, tt.want)
		}
	}
}
