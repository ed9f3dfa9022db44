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

func TestCheck(t *testing.T) {
	policy := auth.Policy{
		Users:    []string{"U0ALICE"},
		Groups:   []string{"S0ONCALL", "S0GONE"},
		Channels: []string{"C0DEPLOYS", "C0INCIDENT"},
	}
	members := groups(map[string][]string{"S0ONCALL": {"U0BOB"}})

	tests := []struct {
		name, user, channel  string
		wantAllowed          bool
		wantReason, wantCode string
		wantErr              bool
	}{
		{name: "allowed user", user: "U0ALICE", channel: "C0DEPLOYS", wantAllowed: true},
		{name: "member of an allowed group, though another group fails", user: "U0BOB", channel: "C0INCIDENT", wantAllowed: true},
		{name: "allowed user in another channel", user: "U0ALICE", channel: "C0RANDOM",
			wantCode: auth.CodeChannelNotAllowed, wantReason: "/stopdeploy is not enabled in this channel. Ask your platform team which channel to use."},
		{name: "group lookup failed and no other grant", user: "U0MALLORY", channel: "C0DEPLOYS", wantErr: true, wantCode: auth.CodeLookupFailed,
			wantReason: "I could not check your user-group membership with Slack, so I cannot let you do this right now. Try again in a minute."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := auth.NewChecker(policy, members)
			got, err := c.Check(context.Background(), tt.user, tt.channel)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Check error = %v, wantErr %v", err, tt.wantErr)
			}
			if got.Allowed != tt.wantAllowed || got.Reason != tt.wantReason || got.Code != tt.wantCode {
				t.Errorf("Check = %+v, want Allowed=%v Code=%q Reason=%q", got, tt.wantAllowed, tt.wantCode, tt.wantReason)
			}
		})
	}
}

func TestCheck_NotAllowed(t *testing.T) {
	c := auth.NewChecker(auth.Policy{Users: []string{"U0ALICE"}, Groups: []string{"S0ONCALL"}},
		groups(map[string][]string{"S0ONCALL": {"U0BOB"}}))
	got, err := c.Check(context.Background(), "U0MALLORY", "C0ANY")
	if err != nil {
		t.Fatal(err)
	}
	want := "You are not allowed to stop deployments. Ask your platform team to add you (or one of your user groups) to the allowed list."
	if got.Allowed || got.Reason != want || got.Code != auth.CodeUserNotAllowed {
		t.Errorf("Check = %+v, want refusal %q", got, want)
	}
}

func TestCheck_GroupListIsCachedAndShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		release := make(chan struct{})
		slow := membersFunc(func(ctx context.Context, group string) ([]string, error) {
			calls.Add(1)
			<-release
			return []string{"U0BOB"}, nil
		})
		c := auth.NewChecker(auth.Policy{Groups: []string{"S0ONCALL"}}, slow, auth.WithGroupTTL(time.Minute))

		results := make(chan auth.Decision, 20)
		for range 20 {
			go func() {
				d, err := c.Check(context.Background(), "U0BOB", "C0ANY")
				if err != nil {
					t.Error(err)
				}
				results <- d
			}()
		}
		synctest.Wait() // every check is now waiting on the one lookup
		if n := calls.Load(); n != 1 {
			t.Errorf("usergroups.users.list called %d times for 20 concurrent checks, want 1", n)
		}
		close(release)
		for range 20 {
			if d := <-results; !d.Allowed {
				t.Errorf("Check = %+v, want allowed", d)
			}
		}

		time.Sleep(30 * time.Second) // fake time: within the TTL
		if _, err := c.Check(context.Background(), "U0BOB", "C0ANY"); err != nil || calls.Load() != 1 {
			t.Errorf("within the TTL: lookups = %d, err %v; want the cached list", calls.Load(), err)
		}
		time.Sleep(time.Minute) // fake time: past the TTL
		if _, err := c.Check(context.Background(), "U0BOB", "C0ANY"); err != nil || calls.Load() != 2 {
			t.Errorf("after the TTL: lookups = %d, err %v; want a fresh list", calls.Load(), err)
		}
	})
}

func TestCheck_CallerCanGiveUpOnASlowLookup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		stuck := membersFunc(func(ctx context.Context, group string) ([]string, error) {
			<-release
			return nil, nil
		})
		c := auth.NewChecker(auth.Policy{Groups: []string{"S0ONCALL"}}, stuck)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		d, err := c.Check(ctx, "U0BOB", "C0ANY")
		if d.Allowed || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Check = %+v, %v; want a refusal when the caller's context ends", d, err)
		}
	})
}

func TestCheck_FailedLookupIsRetried(t *testing.T) {
	fail := true
	m := membersFunc(func(ctx context.Context, group string) ([]string, error) {
		if fail {
			return nil, errors.New("connection refused")
		}
		return []string{"U0BOB"}, nil
	})
	c := auth.NewChecker(auth.Policy{Groups: []string{"S0ONCALL"}}, m)
	if d, err := c.Check(context.Background(), "U0BOB", "C0ANY"); err == nil || d.Allowed {
		t.Fatalf("Check = %+v, %v; want a refusal with an error", d, err)
	}
	fail = false
	if d, err := c.Check(context.Background(), "U0BOB", "C0ANY"); err != nil || !d.Allowed {
		t.Fatalf("Check after recovery = %+v, %v; want allowed (failures are not cached)", d, err)
	}
}

func TestChannelAllowed_EmptyMeansAny(t *testing.T) {
	c := auth.NewChecker(auth.Policy{Users: []string{"U0ALICE"}}, nil)
	if !c.ChannelAllowed("C0ANYTHING") {
		t.Error("ChannelAllowed with no channel list = false, want true")
	}
}
