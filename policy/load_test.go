package policy_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stopdeploy/stopdeploy/policy"
)

// rule is a valid rule; cases change one line of it. Its "name:" is on
// line 2 of the file.
const rule = `rules:
  - name: production
    deployment_groups: ["prod*"]
    requesters: {groups: [S0SRE]}
`

func TestParse_Errors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string // the whole error text; several problems are one per line
	}{
		// The file as a whole.
		{"empty file", "", "policy.yaml: the file is empty: a policy needs a rules: list (see policy.example.yaml)"},
		{"only comments", "# rules: soon\n", "policy.yaml: the file is empty: a policy needs a rules: list (see policy.example.yaml)"},
		{"only a document marker", "---\n", "policy.yaml: the file is empty: a policy needs a rules: list (see policy.example.yaml)"},
		{"several documents", rule + "---\nrules: []\n",
			"policy.yaml:5: a second YAML document starts here: put every rule in one document, under one rules: list"},
		// yaml.v3 says line 1 for the first two and 2 for the third.
		{"bad indentation", "rules:\n  - name: a\n   deployment_groups: [x]\n",
			"policy.yaml:3: not valid YAML: did not find expected '-' indicator"},
		{"unclosed list", "rules:\n  - name: a\n    deployment_groups: [x\n  - name: b\n",
			"policy.yaml:3: not valid YAML: did not find expected ',' or ']'"},
		{"unclosed list after a multi-line one", "rules:\n  - name: a\n    deployment_groups: [\n      x]\n    applications: [y\n",
			"policy.yaml:5: not valid YAML: did not find expected ',' or ']'"},
		{"a colon in a value", "rules:\n  - name: a\n    deployment_groups: [x]\n    requesters: users: [U0A]\n",
			"policy.yaml:4: not valid YAML: mapping values are not allowed in this context"},
		{"unknown anchor", "rules:\n  - name: a\n    deployment_groups: *groups\n",
			"policy.yaml:3: not valid YAML: unknown anchor 'groups' referenced"},
		{"bare star on the first line", "rules: [*]\n",
			`policy.yaml:1: not valid YAML: did not find expected alphabetic or numeric character (quote globs that start with *, as in ["*"]: YAML reads a bare * as an alias)`},
		{"control character", "rules:\n  - name: a\x01\n",
			"policy.yaml:2: not valid YAML: control characters are not allowed"},
		{"a list at the top", "- name: a\n", "policy.yaml:1: the file must be a mapping with a rules: list (got a list)"},
		{"no rules key", "rule:\n  - name: a\n",
			"policy.yaml:1: rule: unknown key (did you mean rules?)\npolicy.yaml:1: rules: missing: list the rules, the first to match a deployment deciding (see policy.example.yaml)"},
		{"empty rules", "rules: []\n",
			"policy.yaml:1: rules: is empty: list at least one rule (a deployment no rule matches cannot be stopped, so an empty policy would refuse everything)"},
		{"null rules", "rules:\n",
			"policy.yaml:1: rules: is empty: list at least one rule (a deployment no rule matches cannot be stopped, so an empty policy would refuse everything)"},
		{"rules a mapping", "rules: {name: a}\n", `policy.yaml:1: rules: must be a list of rules, each starting with "- name:" (got a mapping)`},
		{"rule a string", "rules:\n  - production\n",
			`policy.yaml:2: rules[0]: must be a mapping with name:, deployment_groups: and requesters: (got the string "production")`},

		// Keys.
		{"unknown rule key, close to a known one", rule + "    aprovals: 1\n", "policy.yaml:5: rules[0].aprovals: unknown key (did you mean approvals?)"},
		{"unknown rule key", rule + "    owner: sre\n",
			"policy.yaml:5: rules[0].owner: unknown key (known keys: name, applications, deployment_groups, accounts, regions, channels, requesters, approvers, approvals)"},
		{"unknown nested key", strings.Replace(rule, "{groups: [S0SRE]}", "{user: [U0ALICE]}", 1),
			"policy.yaml:4: rules[0].requesters.user: unknown key (did you mean users?)"},
		{"repeated key", rule + "    name: again\n", "policy.yaml:5: rules[0].name: appears twice (first at line 2)"},
		{"merge key", "defaults: &d {deployment_groups: [\"*\"]}\n" + rule + "    <<: *d\n",
			"policy.yaml:1: defaults: unknown key (known keys: rules)\npolicy.yaml:6: rules[0].<<: merge keys are not supported: write the keys out in each rule"},

		// Names.
		{"missing name", "rules:\n  - deployment_groups: [\"*\"]\n    requesters: {users: [U0ALICE]}\n",
			"policy.yaml:2: rules[0].name: missing: give every rule a name (confirmations refer to their rule by it)"},
		{"empty name", strings.Replace(rule, "name: production", `name: ""`, 1), "policy.yaml:2: rules[0].name: is empty: give every rule a name"},
		{"name a number", strings.Replace(rule, "name: production", "name: 2024", 1),
			`policy.yaml:2: rules[0].name: must be a string (got the number 2024; quote it: "2024")`},
		{"name with mrkdwn", strings.Replace(rule, "name: production", "name: \"*prod*\"", 1),
			`policy.yaml:2: rules[0].name: "*prod*": use up to 64 letters, digits, spaces and . _ - ( ) / ' + #, starting with a letter or digit`},
		{"duplicate name, ignoring case", rule + "  - name: Production\n    deployment_groups: [\"*\"]\n    requesters: {users: [U0ALICE]}\n",
			`policy.yaml:5: rules[1].name: "Production" is already the name of the rule at line 2: rule names must be unique`},

		// Globs.
		{"a string for a list", strings.Replace(rule, `["prod*"]`, "prod*", 1),
			`policy.yaml:3: rules[0].deployment_groups: must be a list of globs such as ["*"] (got the string "prod*"; write ["prod*"])`},
		{"a number in a list", rule + "    applications: [42]\n",
			`policy.yaml:5: rules[0].applications[0]: must be a string (got the number 42; quote it: "42")`},
		{"bad glob", strings.Replace(rule, `["prod*"]`, `["prod", "prod["]`, 1),
			`policy.yaml:3: rules[0].deployment_groups[1]: "prod[" is not a valid glob (syntax error in pattern; see Go's path.Match)`},
		{"bad glob, failing before the error", rule + "    applications: [\"x[\"]\n",
			`policy.yaml:5: rules[0].applications[0]: "x[" is not a valid glob (syntax error in pattern; see Go's path.Match)`},
		{"empty glob", rule + "    applications: [\"\"]\n",
			`policy.yaml:5: rules[0].applications[0]: an empty glob matches nothing: use "*" to match anything`},
		{"empty glob list", rule + "    applications: []\n",
			"policy.yaml:5: rules[0].applications: is empty, so the rule would never match: list globs, or leave applications out to match any"},
		{"null glob list", rule + "    regions:\n",
			`policy.yaml:5: rules[0].regions: must be a list of globs such as ["*"] (got nothing)`},
		{"missing deployment groups", "rules:\n  - name: a\n    requesters: {users: [U0ALICE]}\n",
			`policy.yaml:2: rules[0].deployment_groups: missing: list the deployment groups this rule covers, or ["*"] for every group`},
		{"not a region", rule + "    regions: [\"eu-*\", eu-west, us-east-1]\n",
			`policy.yaml:5: rules[0].regions[1]: "eu-west" is not an AWS region such as eu-west-1 (globs such as "eu-*" are allowed)`},
		{"region in capitals", rule + "    regions: [EU-WEST-1]\n",
			`policy.yaml:5: rules[0].regions[0]: "EU-WEST-1" is not an AWS region such as eu-west-1 (globs such as "eu-*" are allowed)`},
		{"not an account name", rule + "    accounts: [\"prod account\"]\n",
			`policy.yaml:5: rules[0].accounts[0]: "prod account" is not an account name as configured in the bot, such as prod or default (letters, digits, ".", "_" and "-")`},

		// IDs.
		{"channel name", rule + "    channels: [\"#deploys\"]\n",
			`policy.yaml:5: rules[0].channels[0]: "#deploys" is a channel name: use the channel ID such as C0123ABCD (in Slack: channel details, at the bottom)`},
		{"channel mention", rule + "    channels: [\"<#C0DEPLOYS|deploys>\"]\n",
			`policy.yaml:5: rules[0].channels[0]: "<#C0DEPLOYS|deploys>" is a Slack mention: write the bare ID C0DEPLOYS`},
		{"channel star", rule + "    channels: [\"*\"]\n",
			`policy.yaml:5: rules[0].channels[0]: "*" is not a channel ID: leave channels out to allow any channel`},
		{"empty channels", rule + "    channels: []\n",
			"policy.yaml:5: rules[0].channels: is empty, so nobody could use the rule: list channel IDs, or leave channels out to allow any channel"},
		{"user name", strings.Replace(rule, "{groups: [S0SRE]}", `{users: ["@bob"]}`, 1),
			`policy.yaml:4: rules[0].requesters.users[0]: "@bob" is a name: use the member ID such as U0123ABCD (in Slack: the profile's ⋮ menu → Copy member ID)`},
		{"user ID in lower case", strings.Replace(rule, "{groups: [S0SRE]}", `{users: [u0bob]}`, 1),
			`policy.yaml:4: rules[0].requesters.users[0]: "u0bob" is not a user ID such as U0123ABCD (use IDs, not names)`},
		{"group among users", strings.Replace(rule, "{groups: [S0SRE]}", `{users: [S0SRE]}`, 1),
			`policy.yaml:4: rules[0].requesters.users[0]: "S0SRE" is a user-group ID: put it under groups`},
		{"group handle", strings.Replace(rule, "{groups: [S0SRE]}", `{groups: ["@sre"]}`, 1),
			`policy.yaml:4: rules[0].requesters.groups[0]: "@sre" is a handle: use the user-group ID such as S0123ABCD (use IDs, not names)`},
		{"user among groups", strings.Replace(rule, "{groups: [S0SRE]}", `{groups: [U0BOB]}`, 1),
			`policy.yaml:4: rules[0].requesters.groups[0]: "U0BOB" is a user ID: put it under users`},
		{"group mention", strings.Replace(rule, "{groups: [S0SRE]}", `{groups: ["<!subteam^S0SRE|@sre>"]}`, 1),
			`policy.yaml:4: rules[0].requesters.groups[0]: "<!subteam^S0SRE|@sre>" is a Slack mention: write the bare ID S0SRE`},

		// People.
		{"missing requesters", "rules:\n  - name: a\n    deployment_groups: [\"*\"]\n",
			"policy.yaml:2: rules[0].requesters: missing: name who may ask to stop these deployments, such as {groups: [S0123ABCD]}"},
		{"requesters nobody", strings.Replace(rule, "{groups: [S0SRE]}", "{users: [], groups: []}", 1),
			"policy.yaml:4: rules[0].requesters: names nobody, so nobody could satisfy the rule: add users or groups"},
		{"requesters a list", strings.Replace(rule, "{groups: [S0SRE]}", "[S0SRE]", 1),
			"policy.yaml:4: rules[0].requesters: must be a mapping with users: and/or groups: lists, such as {groups: [S0123ABCD]} (got a list)"},
		{"requesters nobody, as a block", "rules:\n  - name: a\n    deployment_groups: [\"*\"]\n    requesters:\n      users: []\n",
			"policy.yaml:4: rules[0].requesters: names nobody, so nobody could satisfy the rule: add users or groups"},
		{"approvers nobody", rule + "    approvers: {}\n",
			"policy.yaml:5: rules[0].approvers: names nobody: add users or groups, or leave approvers out so the requesters approve"},

		// Approvals. The first is the example, on line 7.
		{"negative approvals", rule + "    approvers:\n      groups: [S0SRE]\n    approvals: -1\n",
			"policy.yaml:7: rules[0].approvals: must be 0 or more (got -1)"},
		{"too many approvals", rule + "    approvals: 11\n",
			"policy.yaml:5: rules[0].approvals: must be 10 or less (got 11): the approvals travel in the confirmation button, which Slack limits to 2,000 characters"},
		{"huge approvals", rule + "    approvals: 99999999999999999999\n",
			"policy.yaml:5: rules[0].approvals: must be a whole number from 0 to 10 (got the number 99999999999999999999)"},
		{"approvals a string", rule + "    approvals: \"1\"\n",
			`policy.yaml:5: rules[0].approvals: must be a whole number from 0 to 10 (got the string "1")`},
		{"approvals a fraction", rule + "    approvals: 1.5\n",
			"policy.yaml:5: rules[0].approvals: must be a whole number from 0 to 10 (got the number 1.5)"},
		{"approvals nobody can give", "rules:\n  - name: a\n    deployment_groups: [\"*\"]\n    requesters: {users: [U0ALICE]}\n    approvals: 1\n",
			"policy.yaml:5: rules[0].approvals: must be at most 0 here (got 1): the approvers are only user U0ALICE and no user groups, and the requester's own approval never counts; add approvers or lower approvals"},
		{"more approvals than approvers", rule + "    approvers: {users: [U0ALICE, U0BOB]}\n    approvals: 3\n",
			"policy.yaml:6: rules[0].approvals: must be at most 2 here (got 3): the approvers are only users U0ALICE and U0BOB and no user groups, and the requester's own approval never counts; add approvers or lower approvals"},

		// Several problems: all of them, in file order, although the
		// whole-rule checks of rules[0] run after its keys.
		{"several problems", "rules:\n  - name: a\n    deployment_groups: [\"prod[\"]\n  - name: a\n    deployment_groups: [\"*\"]\n    requesters: {users: [\"@bob\"]}\n",
			"policy.yaml:2: rules[0].requesters: missing: name who may ask to stop these deployments, such as {groups: [S0123ABCD]}\n" +
				`policy.yaml:3: rules[0].deployment_groups[0]: "prod[" is not a valid glob (syntax error in pattern; see Go's path.Match)` + "\n" +
				`policy.yaml:4: rules[1].name: "a" is already the name of the rule at line 2: rule names must be unique` + "\n" +
				`policy.yaml:6: rules[1].requesters.users[0]: "@bob" is a name: use the member ID such as U0123ABCD (in Slack: the profile's ⋮ menu → Copy member ID)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.Parse("policy.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse = %+v, want error %q", p, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse error:\n got %s\nwant %s", err, tt.want)
			}
			// The first problem is the one errors.As finds, with its parts.
			var pe *policy.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *policy.Error", err)
			}
			if first, _, _ := strings.Cut(tt.want, "\n"); pe.Error() != first {
				t.Errorf("errors.As found %q, want the first problem %q", pe, first)
			}
			if pe.File != "policy.yaml" {
				t.Errorf("File = %q, want policy.yaml", pe.File)
			}
		})
	}
}

func TestError_Parts(t *testing.T) {
	_, err := policy.Parse("policy.yaml", []byte(rule+"    approvers:\n      groups: [S0SRE]\n    approvals: -1\n"))
	var pe *policy.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *policy.Error", err)
	}
	want := policy.Error{File: "policy.yaml", Line: 7, Key: "rules[0].approvals", Reason: "must be 0 or more (got -1)"}
	if *pe != want {
		t.Errorf("Error = %+v, want %+v", *pe, want)
	}
}

func TestLoad_Unreadable(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, path string
		want       string
		wantIs     error
	}{
		{"missing", filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "policy.yaml") + ": cannot open the file: no such file or directory", fs.ErrNotExist},
		{"a directory", dir, dir + ": cannot read the file: is a directory", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Load(tt.path)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Load error = %v, want %q", err, tt.want)
			}
			var pe *policy.Error
			if !errors.As(err, &pe) || pe.File != tt.path {
				t.Errorf("Load error %#v does not name the file as a *policy.Error", err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false: the OS error must stay reachable", err, tt.wantIs)
			}
		})
	}
}

func TestLoad_NamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stopdeploy.yaml")
	if err := os.WriteFile(path, []byte(rule+"    approvals: -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := policy.Load(path)
	if want := path + ":5: rules[0].approvals: must be 0 or more (got -1)"; err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %q", err, want)
	}
}

func TestParse_Valid(t *testing.T) {
	const file = `rules:
  - name: production
    applications: ["checkout", "pay-*"]
    deployment_groups: ["prod*", "production"]
    accounts: [prod]
    regions: ["eu-*", us-east-1]
    channels: [C0INCIDENTS, G0PRIVATE]
    requesters: {users: [U0ALICE, W0SAM], groups: [S0SRE]}
    approvers: {groups: [S0SRE]}
    approvals: 2
  - name: everything else
    deployment_groups: &all ["*"]
    requesters: &eng {groups: [S0ENG]}
  - name: shared
    deployment_groups: *all
    requesters: *eng
    approvers: *eng
    approvals: 0x0
`
	p, err := policy.Parse("policy.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules) != 3 || p.File != "policy.yaml" {
		t.Fatalf("Parse = %d rules from %q, want 3 from policy.yaml", len(p.Rules), p.File)
	}
	prod, other, shared := p.Rules[0], p.Rules[1], p.Rules[2]
	checks := []struct {
		what      string
		got, want any
	}{
		{"prod line", prod.Line, 2},
		{"prod applications", prod.Applications, []string{"checkout", "pay-*"}},
		{"prod regions", prod.Regions, []string{"eu-*", "us-east-1"}},
		{"prod channels", prod.Channels, []string{"C0INCIDENTS", "G0PRIVATE"}},
		{"prod requesters", prod.Requesters, policy.Principals{Users: []string{"U0ALICE", "W0SAM"}, Groups: []string{"S0SRE"}}},
		{"prod approvers set", prod.ApproversSet, true},
		{"prod approvals", prod.Approvals, 2},
		{"default applications", other.Applications, []string{"*"}},
		{"default accounts", other.Accounts, []string{"*"}},
		{"default regions", other.Regions, []string{"*"}},
		{"default channels", other.Channels, []string(nil)},
		{"default approvers", other.ApproversSet, false},
		{"default approvals", other.Approvals, 0},
		{"alias list", shared.DeploymentGroups, []string{"*"}},
		{"alias mapping", shared.Approvers, policy.Principals{Groups: []string{"S0ENG"}}},
		{"hex zero", shared.Approvals, 0},
	}
	for _, c := range checks {
		if !equal(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.what, c.got, c.want)
		}
	}
}
