package policy_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
)

func equal(a, b any) bool { return reflect.DeepEqual(a, b) }

// errSlack is what a failing usergroups.users.list looks like to the policy.
var errSlack = errors.New("usergroups.users.list: ratelimited")

// fakeGroups is a function-type Membership over a map. Groups in failing
// answer with errSlack. It records every lookup as "group/user", so tests
// can check which lookups a decision made.
type fakeGroups struct {
	members map[string][]string
	failing []string

	mu    sync.Mutex
	calls []string
}

func (g *fakeGroups) lookup(_ context.Context, group, user string) (bool, error) {
	g.mu.Lock()
	g.calls = append(g.calls, group+"/"+user)
	g.mu.Unlock()
	if slices.Contains(g.failing, group) {
		return false, errSlack
	}
	return slices.Contains(g.members[group], user), nil
}
