package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Describe is the policy in plain words, rule by rule in the order they are
// tried: what `stopdeploy policy check` prints, so a reviewer can read what
// a change means without knowing the file format.
func (p *Policy) Describe() string {
	var b strings.Builder
	if p.File == "" {
		b.WriteString("No policy file: one rule built from STOPDEPLOY_ALLOWED_USERS, _GROUPS, _CHANNELS and _REQUIRE_SECOND_APPROVER.\n")
	} else {
		fmt.Fprintf(&b, "%s: %s. The first rule that matches a deployment decides; a deployment no rule matches cannot be stopped from Slack.\n",
			p.File, count(len(p.Rules), "rule", "rules"))
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		b.WriteString("\n")
		fmt.Fprintf(&b, "%d. %s", i+1, r.Name)
		if r.Line > 0 {
			fmt.Fprintf(&b, " (line %d)", r.Line)
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "   Matches: %s; %s; %s; %s.\n",
			globsText(r.Applications, "application", "applications"),
			globsText(r.DeploymentGroups, "deployment group", "deployment groups"),
			globsText(r.Accounts, "account", "accounts"),
			globsText(r.Regions, "region", "regions"))
		fmt.Fprintf(&b, "   Requested in: %s.\n", channelsText(r.Channels))
		fmt.Fprintf(&b, "   Requesters: %s.\n", principalsText(r.Requesters))
		if r.ApproversSet {
			fmt.Fprintf(&b, "   Approvers: %s.\n", principalsText(r.Approvers))
		} else {
			b.WriteString("   Approvers: the requesters.\n")
		}
		fmt.Fprintf(&b, "   %s\n", stopsText(r))
	}
	return b.String()
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func globsText(globs []string, one, many string) string {
	switch {
	case len(globs) == 1 && globs[0] == "*":
		return "any " + one
	case len(globs) == 1:
		return one + " " + globs[0]
	}
	return many + " " + orList(globs)
}

func channelsText(channels []string) string {
	switch len(channels) {
	case 0:
		return "any channel"
	case 1:
		return "channel " + channels[0]
	}
	return "channels " + orList(channels)
}

func principalsText(p Principals) string {
	var parts []string
	switch len(p.Users) {
	case 0:
	case 1:
		parts = append(parts, "user "+p.Users[0])
	default:
		parts = append(parts, "users "+joinWords(p.Users, "and"))
	}
	if len(p.Groups) > 0 {
		parts = append(parts, "members of "+orList(p.Groups))
	}
	if len(parts) == 0 {
		return "nobody"
	}
	return strings.Join(parts, "; ")
}

func stopsText(r *Rule) string {
	switch {
	case r.Approvals == 0 && r.ApproversSet:
		return "Stops when a requester or an approver confirms; the requester may confirm their own request."
	case r.Approvals == 0:
		return "Stops when a requester confirms; the requester may confirm their own request."
	case r.Approvals == 1:
		return "Stops after 1 approval by an approver other than the requester."
	}
	return fmt.Sprintf("Stops after %d approvals by different approvers, none of them the requester.", r.Approvals)
}

// Explanation is what `stopdeploy policy explain` reports about one person
// and one deployment.
type Explanation struct {
	Target  Target
	User    string
	Channel string // "" when the channel was not checked
	Rule    *Rule  // the rule that decides; nil when none matches
	// Request is whether User may ask to stop Target in Channel.
	Request Decision
	// Approve is whether User's press counts on someone else's request:
	// an approval when Rule.Approvals ≥ 1, the confirming press when 0.
	Approve Decision
}

// Explain answers every question the bot would ask about user and t. An
// empty channel skips the channel checks, for questions asked away from
// Slack. A non-nil error means a group lookup failed; the Explanation is
// still filled in, with CodeLookupFailed where the answer is unknown.
func Explain(ctx context.Context, p *Policy, t Target, user, channel string, in Membership) (Explanation, error) {
	e := Explanation{Target: t, User: user, Channel: channel}
	r, ok := p.RuleFor(t)
	if !ok {
		e.Request, e.Approve = noRule(t), noRule(t)
		return e, nil
	}
	e.Rule = r
	var errReq, errApp error
	e.Request, errReq = r.mayRequest(ctx, t, user, channel, channel != "", in)
	// Someone else asked: an empty requester is nobody's ID.
	e.Approve, errApp = r.mayApprove(ctx, user, channel, channel != "", "", nil, in)
	return e, errors.Join(errReq, errApp)
}

// String is the explanation in plain words, one answer a line.
func (e Explanation) String() string {
	var b strings.Builder
	if e.Rule == nil {
		fmt.Fprintf(&b, "%s: no rule matches, so nobody can stop it from Slack.\n", e.Target)
		return b.String()
	}
	fmt.Fprintf(&b, "%s: rule %q decides", e.Target, e.Rule.Name)
	if e.Rule.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Rule.Line)
	}
	b.WriteString(".\n")
	where := "in " + e.Channel
	if e.Channel == "" {
		where = "(channel not checked)"
	}
	fmt.Fprintf(&b, "May %s request a stop %s? %s\n", e.User, where, answer(e.Request))
	if e.Rule.Approvals == 0 {
		fmt.Fprintf(&b, "May %s confirm a request with one press? %s\n", e.User, answer(e.Approve))
	} else {
		fmt.Fprintf(&b, "May %s approve someone else's request? %s\n", e.User, answer(e.Approve))
	}
	fmt.Fprintf(&b, "%s\n", stopsText(e.Rule))
	return b.String()
}

func answer(d Decision) string {
	switch {
	case d.Allowed:
		return "Yes."
	case d.Code == CodeLookupFailed:
		return "Unknown: a user-group lookup failed."
	}
	return fmt.Sprintf("No (%s): %s", d.Code, d.Reason)
}
