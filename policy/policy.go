// Package policy decides who may ask to stop which CodeDeploy deployment,
// where, and who must approve before the bot stops it.
//
// A Policy is an ordered list of rules. The first rule whose applications,
// deployment groups, accounts and regions all match a deployment decides;
// a deployment no rule matches cannot be stopped from Slack at all. The
// rule then says in which channels a stop may be requested, by whom, and
// how many other people must approve it.
//
// The package is pure: it reads the policy file in Load and nothing else.
// It never talks to Slack; user-group membership comes in as a Membership
// function, so the bot can pass its cached lookup and tests a map.
package policy

import (
	"path"
	"slices"
	"strings"
)

// Policy is a loaded policy. It is not changed after Load, Parse or Flat,
// so it is safe for concurrent use; the bot swaps the whole value to reload.
type Policy struct {
	File  string // the file it was loaded from; "" for Flat
	Rules []Rule // in file order: the first match wins
}

// Rule is one entry of the policy. The glob lists use path.Match syntax and
// are never empty once parsed: an omitted list is ["*"]. An empty glob list
// matches nothing, so a Rule built by hand fails closed.
type Rule struct {
	Name             string
	Applications     []string
	DeploymentGroups []string
	Accounts         []string // the bot's names for accounts ("prod", "default"), not account numbers
	Regions          []string
	Channels         []string // channel IDs where a stop may be requested; empty means any channel

	Requesters Principals
	// Approvers is what the file says. When ApproversSet is false the
	// requesters approve, and Approvers is empty.
	Approvers    Principals
	ApproversSet bool
	// Approvals is how many distinct approvers other than the requester
	// must approve. 0 means one press by a requester or approver stops.
	Approvals int

	Line int // where the rule starts in File; 0 for Flat

	// flat marks the rule Flat builds: its refusals keep the wording the
	// bot used before policy files, which users and end-to-end tests know.
	flat bool
}

// Principals are people named directly and through Slack user groups.
type Principals struct {
	Users  []string // user IDs (U…, W…)
	Groups []string // user-group IDs (S…)
}

func (p Principals) empty() bool { return len(p.Users) == 0 && len(p.Groups) == 0 }

// Target is the deployment a decision is about. Account is the bot's name
// for the account; the bot fills in "default" when it has only its own.
// Fields are matched exactly as given (CodeDeploy names are case-sensitive).
type Target struct {
	Application, Group, Account, Region string
}

// String is "checkout / production", followed by "(prod, eu-west-1)" when
// the place is known.
func (t Target) String() string {
	s := t.Application + " / " + t.Group
	var place []string
	for _, p := range []string{t.Account, t.Region} {
		if p != "" {
			place = append(place, p)
		}
	}
	if len(place) > 0 {
		s += " (" + strings.Join(place, ", ") + ")"
	}
	return s
}

// Flat is the policy the bot used before policy files, built from
// STOPDEPLOY_ALLOWED_USERS, _GROUPS, _CHANNELS and
// _REQUIRE_SECOND_APPROVER: one rule for every deployment, whose
// requesters also approve. Entries are expected to be checked IDs (the
// configuration does that); blank ones are dropped.
func Flat(users, groups, channels []string, secondApprover bool) *Policy {
	all := []string{"*"}
	r := Rule{
		Name:             flatRuleName,
		Applications:     all,
		DeploymentGroups: all,
		Accounts:         all,
		Regions:          all,
		Channels:         clean(channels),
		Requesters:       Principals{Users: clean(users), Groups: clean(groups)},
		flat:             true,
	}
	if secondApprover {
		r.Approvals = 1
	}
	return &Policy{Rules: []Rule{r}}
}

// flatRuleName is the name clicks carry under Flat, so the click path is the
// same with and without a file.
const flatRuleName = "allowed list"

func clean(ids []string) []string {
	var out []string
	for _, id := range ids {
		if id = strings.TrimSpace(id); id != "" {
			out = append(out, id)
		}
	}
	return out
}

// RuleFor returns the first rule that matches t, or false when none does:
// then nobody may stop t from Slack.
func (p *Policy) RuleFor(t Target) (*Rule, bool) {
	for i := range p.Rules {
		if p.Rules[i].Matches(t) {
			return &p.Rules[i], true
		}
	}
	return nil, false
}

// Rule returns the rule with this name. A confirmation names the rule that
// decided it; the bot looks it up again on every click, so a reloaded
// policy applies to clicks at once and a removed rule refuses them.
func (p *Policy) Rule(name string) (*Rule, bool) {
	for i := range p.Rules {
		if p.Rules[i].Name == name {
			return &p.Rules[i], true
		}
	}
	return nil, false
}

// Matches reports whether every glob list of r matches t.
func (r *Rule) Matches(t Target) bool {
	return matchAny(r.Applications, t.Application) &&
		matchAny(r.DeploymentGroups, t.Group) &&
		matchAny(r.Accounts, t.Account) &&
		matchAny(r.Regions, t.Region)
}

func matchAny(globs []string, s string) bool {
	for _, g := range globs {
		// Parse has rejected bad patterns; one built by hand matches nothing.
		if ok, err := path.Match(g, s); err == nil && ok {
			return true
		}
	}
	return false
}

// Flat reports whether r is the rule Flat built from the allow-list
// variables: the bot then keeps its cards as they were before policy files
// (a Stop button, and "another person must confirm").
func (r *Rule) Flat() bool { return r.flat }

// MatchesEverything reports whether r matches every deployment. When the
// first rule does, it decides every request, and the bot can refuse a user
// before it asks AWS anything.
func (r *Rule) MatchesEverything() bool {
	for _, globs := range [][]string{r.Applications, r.DeploymentGroups, r.Accounts, r.Regions} {
		if !slices.Contains(globs, "*") {
			return false
		}
	}
	return true
}

// approvers are the people whose approval counts.
func (r *Rule) approvers() Principals {
	if r.ApproversSet {
		return r.Approvers
	}
	return r.Requesters
}

// Groups is every user group r names, requesters first, each once: what
// `stopdeploy policy check` resolves and offline explain asks about.
func (r *Rule) Groups() []string {
	var out []string
	for _, g := range slices.Concat(r.Requesters.Groups, r.Approvers.Groups) {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// Approved reports whether approvals are enough to stop a deployment that
// requester asked for: r.Approvals distinct people, never the requester.
// Each approval must have passed MayApprove when it was given. With
// Approvals 0 it is always true: the confirming press is enough.
func (r *Rule) Approved(requester string, approvals []string) bool {
	var seen []string
	for _, a := range approvals {
		if a != "" && a != requester && !slices.Contains(seen, a) {
			seen = append(seen, a)
		}
	}
	return len(seen) >= r.Approvals
}
