// Package auth answers who is in which Slack user group, for the policy
// (package policy) that decides who may stop which deployment, where. It
// caches each group's member list, so a burst of requests during an
// incident costs one usergroups.users.list call per group.
package auth

import (
	"context"
	"fmt"
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

// DefaultGroupTTL is how long a user group's member list is trusted. It keeps
// a burst of commands during an incident within usergroups.users.list's rate
// limit (Tier 2, about 20 calls a minute) while a removal still takes effect
// within a minute.
const DefaultGroupTTL = 30 * time.Second

// Groups is a cache of user groups' member lists. It is safe for
// concurrent use.
type Groups struct {
	members Members
	ttl     time.Duration
	now     func() time.Time

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

// Option adjusts Groups.
type Option func(*Groups)

// WithGroupTTL sets how long a group's member list is reused.
func WithGroupTTL(d time.Duration) Option { return func(c *Groups) { c.ttl = d } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(c *Groups) { c.now = now } }

// NewGroups returns an empty cache that lists members through members.
func NewGroups(members Members, opts ...Option) *Groups {
	c := &Groups{
		members: members,
		ttl:     DefaultGroupTTL,
		now:     time.Now,
		cache:   make(map[string]*groupEntry),
	}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// Member reports whether user is in group; it is a policy.Membership. An
// error means the answer is unknown (the lookup failed, or ctx ended
// first), and the caller must not read it as "no".
func (c *Groups) Member(ctx context.Context, group, user string) (bool, error) {
	return c.inGroup(ctx, group, user)
}

func (c *Groups) inGroup(ctx context.Context, group, userID string) (bool, error) {
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
func (c *Groups) entry(ctx context.Context, group string) *groupEntry {
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

func (c *Groups) lookup(ctx context.Context, group string) ([]string, error) {
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
