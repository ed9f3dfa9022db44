package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Membership reports whether user is in the Slack user group. The bot
// passes its cached usergroups.users.list lookup; an error means the answer
// is unknown, not "no".
type Membership func(ctx context.Context, group, user string) (bool, error)

// Decision answers one question about one user. When Allowed is false,
// Reason is written for that user (Slack mrkdwn) and says what they can do,
// and Code names the refusal for logs and metrics.
type Decision struct {
	Allowed bool
	Code    string
	Reason  string
}

// Refusal codes. CodeNotRequester and CodeLookupFailed keep the values the
// bot logged before policy files, so dashboards keep working.
const (
	CodeNoRule            = "no_rule"
	CodeChannelNotAllowed = "channel_not_allowed"
	CodeNotRequester      = "user_not_allowed"
	CodeNotApprover       = "not_approver"
	CodeOwnRequest        = "own_request"
	CodeAlreadyApproved   = "already_approved"
	CodeLookupFailed      = "group_lookup_failed"
	// CodeSecondApprover is CodeOwnRequest under Flat, as the bot logged it
	// before policy files.
	CodeSecondApprover = "second_approver_required"
)

// The bot's wording before policy files. Flat keeps it word for word.
const (
	flatNotAllowed = "You are not allowed to stop deployments. Ask your platform team to add you (or one of your user groups) to the allowed list."
	flatChannel    = "/stopdeploy is not enabled in this channel. Ask your platform team which channel to use."
	flatOwnRequest = "A second approver is required: another person allowed to stop deployments must press Stop. You can still Cancel."
	lookupFailed   = "I could not check your user-group membership with Slack, so I cannot let you do this right now. Try again in a minute."
)

var allowed = Decision{Allowed: true}

// MayRequest decides whether user may ask, in channel, to stop t. It
// returns the rule that decides, or nil when no rule matches t. A non-nil
// error means the question could not be answered (a group lookup failed,
// and no other entry of the rule allows the user); the caller must refuse,
// and the Decision still says why in words.
func (p *Policy) MayRequest(ctx context.Context, t Target, user, channel string, in Membership) (*Rule, Decision, error) {
	r, ok := p.RuleFor(t)
	if !ok {
		return nil, noRule(t), nil
	}
	d, err := r.mayRequest(ctx, t, user, channel, true, in)
	return r, d, err
}

func noRule(t Target) Decision {
	return Decision{Code: CodeNoRule, Reason: fmt.Sprintf(
		"No rule lets anyone stop %s from Slack. If it must stop now, stop it in the CodeDeploy console; "+
			"ask your platform team to add a rule for it to the stopdeploy policy.", t)}
}

func (r *Rule) mayRequest(ctx context.Context, t Target, user, channel string, checkChannel bool, in Membership) (Decision, error) {
	if checkChannel && !r.inChannel(channel) {
		return r.refuseChannel(t), nil
	}
	ok, err := member(ctx, r.Requesters, user, in)
	switch {
	case ok:
		return allowed, nil
	case err != nil:
		return Decision{Code: CodeLookupFailed, Reason: lookupFailed}, fmt.Errorf("rule %q requesters: %w", r.Name, err)
	case r.flat:
		return Decision{Code: CodeNotRequester, Reason: flatNotAllowed}, nil
	}
	return Decision{Code: CodeNotRequester, Reason: fmt.Sprintf(
		"You are not allowed to stop deployments under rule *%s*%s: you are not one of its requesters. "+
			"Ask your platform team to add you (or one of your user groups) to that rule.", r.Name, about(t))}, nil
}

// about is " (checkout / production)", or "" for a click, which knows only
// its rule. The place is left out: it is in the message the user answers.
func about(t Target) string {
	if t.Application == "" && t.Group == "" {
		return ""
	}
	return " (" + t.Application + " / " + t.Group + ")"
}

func (r *Rule) inChannel(channel string) bool {
	return len(r.Channels) == 0 || slices.Contains(r.Channels, channel)
}

func (r *Rule) refuseChannel(t Target) Decision {
	if r.flat {
		return Decision{Code: CodeChannelNotAllowed, Reason: flatChannel}
	}
	where := make([]string, len(r.Channels))
	for i, c := range r.Channels {
		where[i] = "<#" + c + ">"
	}
	return Decision{Code: CodeChannelNotAllowed, Reason: fmt.Sprintf(
		"/stopdeploy is not enabled in this channel for deployments under rule *%s*%s. Use it in %s.",
		r.Name, about(t), orList(where))}
}

// MayApprove decides whether user's press of the confirmation counts.
// requester asked for the stop; approvedSoFar are the people whose approval
// already counted; channel is where the confirmation is.
//
// With Approvals ≥ 1 the press is an approval: user must be an approver,
// not the requester, and not already in approvedSoFar. With Approvals 0
// the press confirms at once, and any requester or approver of the rule may
// make it, the requester included. Either way the answer is re-decided
// against the rule as it is now, so a removed member is refused.
//
// A non-nil error means membership could not be checked; the caller must
// refuse.
func (r *Rule) MayApprove(ctx context.Context, user, channel, requester string, approvedSoFar []string, in Membership) (Decision, error) {
	return r.mayApprove(ctx, user, channel, true, requester, approvedSoFar, in)
}

func (r *Rule) mayApprove(ctx context.Context, user, channel string, checkChannel bool, requester string, approvedSoFar []string, in Membership) (Decision, error) {
	if checkChannel && !r.inChannel(channel) {
		return r.refuseChannel(Target{}), nil
	}
	if r.Approvals == 0 {
		return r.mayConfirm(ctx, user, in)
	}
	// The cheap refusals first: they need no lookup, and "you asked for
	// this" is more use to the requester than "you are not an approver".
	if user == requester {
		return r.refuseOwn(), nil
	}
	if slices.Contains(approvedSoFar, user) {
		return r.refuseRepeat(), nil
	}
	ok, err := member(ctx, r.approvers(), user, in)
	switch {
	case ok:
		return allowed, nil
	case err != nil:
		return Decision{Code: CodeLookupFailed, Reason: lookupFailed}, fmt.Errorf("rule %q approvers: %w", r.Name, err)
	case r.flat:
		return Decision{Code: CodeNotApprover, Reason: flatNotAllowed}, nil
	}
	return Decision{Code: CodeNotApprover, Reason: fmt.Sprintf(
		"You are not allowed to approve stops under rule *%s*: you are not one of its approvers. "+
			"Ask one of them to approve, or your platform team to add you (or one of your user groups) to its approvers.", r.Name)}, nil
}

// MayCancel decides whether user may cancel a confirmation requester asked
// for: the requester always may; anyone else must be a requester or an
// approver of the rule, as for confirming.
func (r *Rule) MayCancel(ctx context.Context, user, requester string, in Membership) (Decision, error) {
	if user != "" && user == requester {
		return allowed, nil
	}
	return r.mayConfirm(ctx, user, in)
}

func (r *Rule) mayConfirm(ctx context.Context, user string, in Membership) (Decision, error) {
	ok, err := member(ctx, union(r.Requesters, r.approvers()), user, in)
	switch {
	case ok:
		return allowed, nil
	case err != nil:
		return Decision{Code: CodeLookupFailed, Reason: lookupFailed}, fmt.Errorf("rule %q requesters and approvers: %w", r.Name, err)
	case r.flat:
		return Decision{Code: CodeNotApprover, Reason: flatNotAllowed}, nil
	}
	return Decision{Code: CodeNotApprover, Reason: fmt.Sprintf(
		"You are not allowed to stop deployments under rule *%s*: only its requesters and approvers may confirm. "+
			"Ask one of them, or your platform team to add you (or one of your user groups) to that rule.", r.Name)}, nil
}

func (r *Rule) refuseOwn() Decision {
	if r.flat {
		return Decision{Code: CodeSecondApprover, Reason: flatOwnRequest}
	}
	return Decision{Code: CodeOwnRequest, Reason: fmt.Sprintf(
		"You asked for this, so your approval does not count: rule *%s* needs %s from someone else. "+
			"Ask one of its approvers to approve. You can still Cancel.", r.Name, approvalsText(r.Approvals))}
}

func (r *Rule) refuseRepeat() Decision {
	if r.flat {
		return Decision{Code: CodeAlreadyApproved, Reason: "You have already approved this: another person allowed to stop deployments must press Stop."}
	}
	return Decision{Code: CodeAlreadyApproved, Reason: fmt.Sprintf(
		"You have already approved this, and each person counts once: rule *%s* needs %s from different people. "+
			"Ask another of its approvers to approve.", r.Name, approvalsText(r.Approvals))}
}

func approvalsText(n int) string {
	if n == 1 {
		return "1 approval"
	}
	return fmt.Sprintf("%d approvals", n)
}

// member reports whether user is one of p. A direct match answers without
// any lookup, and the first group that says yes ends the search. A failed
// lookup is only an error when nothing else allows the user: one broken
// group must not lock out people another entry lets in.
func member(ctx context.Context, p Principals, user string, in Membership) (bool, error) {
	if user == "" {
		return false, nil
	}
	if slices.Contains(p.Users, user) {
		return true, nil
	}
	var errs []error
	for _, g := range p.Groups {
		if in == nil {
			errs = append(errs, fmt.Errorf("user group %s: no membership lookup", g))
			continue
		}
		ok, err := in(ctx, g, user)
		if err != nil {
			errs = append(errs, fmt.Errorf("user group %s: %w", g, err))
			continue
		}
		if ok {
			return true, nil
		}
	}
	return false, errors.Join(errs...)
}

// union is a and b with each user and group once, so a group that both
// requests and approves is looked up once.
func union(a, b Principals) Principals {
	var u Principals
	for _, id := range slices.Concat(a.Users, b.Users) {
		if !slices.Contains(u.Users, id) {
			u.Users = append(u.Users, id)
		}
	}
	for _, id := range slices.Concat(a.Groups, b.Groups) {
		if !slices.Contains(u.Groups, id) {
			u.Groups = append(u.Groups, id)
		}
	}
	return u
}

// orList is "a", "a or b", "a, b or c".
func orList(items []string) string { return joinWords(items, "or") }

func joinWords(items []string, word string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " " + word + " " + items[len(items)-1]
}
