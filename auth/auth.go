// Package auth decides who may stop a deployment, and where.
package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// Members lists the users in a Slack user group (usergroups.users.list).
// *slack.Client satisfies it.
type Members interface {
	GetUserGroupMembersContext(ctx context.Context, group string, opts ...slack.GetUserGroupMembersOption) ([]string, error)
}

var _ Members = (*slack.Client)(nil)

// Policy is the configured permission set. Empty Channels means every channel.
type Policy struct {
	Users    []string // Slack user IDs
	Groups   []string // Slack user-group IDs; their members are allowed
	Channels []string // channel IDs where the command works
}

// Decision is the answer to "may this user act here?". When Allowed is
// false, Reason is written for the user and Code names the refusal for logs
// and metrics.
type Decision struct {
	Allowed bool
	Reason  string
	Code    string
}

// Refusal codes.
const (
	CodeChannelNotAllowed = "channel_not_allowed"
	CodeUserNotAllowed    = "user_not_allowed"
	CodeLookupFailed      = "group_lookup_failed"
)

// DefaultGroupTTL is how long a user group's member list is trusted. It keeps
// a burst of commands during an incident within usergroups.users.list's rate
// limit (Tier 2, about 20 calls a minute) while a removal still takes effect
// within a minute.
const DefaultGroupTTL = 30 * time.Second

// Checker applies a Policy. It is safe for concurrent use.
type Checker struct {
	users    map[string]bool
	groups   []string
	channels map[string]bool
	members  Members
	ttl      time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]*groupEntry
}

// groupEntry is one group's member list. ready is closed once the lookup that
// fills it has finished, so concurrent checks share a single Slack call.
type groupEntry struct {
	ready   chan struct{}
	members map[string]bool
	err     error
	fetched time.Time
}

// Option adjusts a Checker.
type Option func(*Checker)

// WithGroupTTL sets how long a group's member list is reused.
func WithGroupTTL(d time.Duration) Option { return func(c *Checker) { c.ttl = d } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(c *Checker) { c.now = now } }

// NewChecker returns a Checker for p. members may be nil when p has no groups.
func NewChecker(p Policy, members Members, opts ...Option) *Checker {
	c := &Checker{
		users:    set(p.Users),
		groups:   slices.Clone(p.Groups),
		channels: set(p.Channels),
		members:  members,
		ttl:      DefaultGroupTTL,
		now:      time.Now,
		cache:    make(map[string]*groupEntry),
	}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// Check decides whether userID may stop deployments in channelID. A non-nil
// error means the question could not be answered (a user-group lookup
// failed); callers must treat it as a refusal.
func (c *Checker) Check(ctx context.Context, userID, channelID string) (Decision, error) {
	if !c.ChannelAllowed(channelID) {
		return Decision{Code: CodeChannelNotAllowed, Reason: "/stopdeploy is not enabled in this channel. Ask your platform team which channel to use."}, nil
	}
	if c.users[userID] {
		return Decision{Allowed: true}, nil
	}
	var lookupErrs []error
	for _, group := range c.groups {
		in, err := c.inGroup(ctx, group, userID)
		if err != nil {
			lookupErrs = append(lookupErrs, err)
			continue
		}
		if in {
			return Decision{Allowed: true}, nil
		}
	}
	if len(lookupErrs) > 0 {
		return Decision{Code: CodeLookupFailed, Reason: "I could not check your user-group membership with Slack, so I cannot let you do this right now. Try again in a minute."},
			errors.Join(lookupErrs...)
	}
	return Decision{Code: CodeUserNotAllowed, Reason: "You are not allowed to stop deployments. Ask your platform team to add you (or one of your user groups) to the allowed list."}, nil
}

// ChannelAllowed reports whether the command works in channelID at all.
func (c *Checker) ChannelAllowed(channelID string) bool {
	return len(c.channels) == 0 || c.channels[channelID]
}

func (c *Checker) inGroup(ctx context.Context, group, userID string) (bool, error) {
	e := c.entry(ctx, group)
	select {
	case <-e.ready:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	if e.err != nil {
		return false, e.err
	}
	return e.members[userID], nil
}

// entry returns the cached entry for group, starting a lookup when there is
// none, it has expired, or the last lookup failed.
func (c *Checker) entry(ctx context.Context, group string) *groupEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cache[group]; ok {
		select {
		case <-e.ready:
			if e.err == nil && c.now().Sub(e.fetched) < c.ttl {
				return e
			}
		default:
			return e // a lookup is under way: share it
		}
	}
	e := &groupEntry{ready: make(chan struct{})}
	c.cache[group] = e
	// The lookup runs on its own, so that every caller, the first included,
	// can give up when its context ends while the others still get an answer.
	go func() {
		lookupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		members, err := c.lookup(lookupCtx, group)
		e.members, e.err, e.fetched = set(members), err, c.now()
		close(e.ready)
	}()
	return e
}

func (c *Checker) lookup(ctx context.Context, group string) ([]string, error) {
	if c.members == nil {
		return nil, fmt.Errorf("user group %s: no Slack client to list its members", group)
	}
	members, err := c.members.GetUserGroupMembersContext(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("usergroups.users.list %s: %w", group, err)
	}
	return members, nil
}

func set(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id = strings.TrimSpace(id); id != "" {
			m[id] = true
		}
	}
	return m
}
