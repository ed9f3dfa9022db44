package auth_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/auth"
)

// membersFunc is a function-type fake of auth.Members.
type membersFunc func(ctx context.Context, group string) ([]string, error)

func (f membersFunc) GetUserGroupMembersContext(ctx context.Context, group string, _ ...slack.GetUserGroupMembersOption) ([]string, error) {
	return f(ctx, group)
}

func groups(m map[string][]string) membersFunc {
	return func(_ context.Context, group string) ([]string, error) {
		members, ok := m[group]
		if !ok {
			return nil, slack.SlackErrorResponse{Err: "no_such_subteam"}
		}
		return members, nil
	}
}

func TestMember(t *testing.T) {
	g := auth.NewGroups(groups(map[string][]string{"S0ONCALL": {"U0BOB"}}))
	for _, tt := range []struct {
		group, user string
		want        bool
		wantErr     bool
	}{
		{"S0ONCALL", "U0BOB", true, false},
		{"S0ONCALL", "U0MALLORY", false, false},
		{"S0GONE", "U0BOB", false, true}, // unknown, not "no"
	} {
		got, err := g.Member(context.Background(), tt.group, tt.user)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("Member(%s, %s) = %v, %v; want %v, error %v", tt.group, tt.user, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestMember_GroupListIsCachedAndShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		release := make(chan struct{})
		slow := membersFunc(func(ctx context.Context, group string) ([]string, error) {
			calls.Add(1)
			<-release
			return []string{"U0BOB"}, nil
		})
		c := auth.NewGroups(slow, auth.WithGroupTTL(time.Minute))

		results := make(chan bool, 20)
		for range 20 {
			go func() {
				in, err := c.Member(context.Background(), "S0ONCALL", "U0BOB")
				if err != nil {
					t.Error(err)
				}
				results <- in
			}()
		}
		synctest.Wait() // every check is now waiting on the one lookup
		if n := calls.Load(); n != 1 {
			t.Errorf("usergroups.users.list called %d times for 20 concurrent checks, want 1", n)
		}
		close(release)
		for range 20 {
			if in := <-results; !in {
				t.Error("Member = false, want true")
			}
		}

		time.Sleep(30 * time.Second) // fake time: within the TTL
		if _, err := c.Member(context.Background(), "S0ONCALL", "U0BOB"); err != nil || calls.Load() != 1 {
			t.Errorf("within the TTL: lookups = %d, err %v; want the cached list", calls.Load(), err)
		}
		time.Sleep(time.Minute) // fake time: past the TTL
		if _, err := c.Member(context.Background(), "S0ONCALL", "U0BOB"); err != nil || calls.Load() != 2 {
			t.Errorf("after the TTL: lookups = %d, err %v; want a fresh list", calls.Load(), err)
		}
	})
}

func TestMember_CallerCanGiveUpOnASlowLookup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		stuck := membersFunc(func(ctx context.Context, group string) ([]string, error) {
			<-release
			return nil, nil
		})
		c := auth.NewGroups(stuck)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		in, err := c.Member(ctx, "S0ONCALL", "U0BOB")
		if in || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Member = %v, %v; want unknown when the caller's context ends", in, err)
		}
	})
}

func TestMember_FailedLookupIsRetried(t *testing.T) {
	fail := true
	m := membersFunc(func(ctx context.Context, group string) ([]string, error) {
		if fail {
			return nil, errors.New("connection refused")
		}
		return []string{"U0BOB"}, nil
	})
	c := auth.NewGroups(m)
	if in, err := c.Member(context.Background(), "S0ONCALL", "U0BOB"); err == nil || in {
		t.Fatalf("Member = %v, %v; want unknown with an error", in, err)
	}
	fail = false
	if in, err := c.Member(context.Background(), "S0ONCALL", "U0BOB"); err != nil || !in {
		t.Fatalf("Member after recovery = %v, %v; want true (failures are not cached)", in, err)
	}
}
