package sandbox

import (
	"context"
	"slices"
	"testing"

	"github.com/stopdeploy/stopdeploy/policy"
)

// TestPolicy checks the sandbox's policy file as the bot loads it, and that
// it lets each seeded person do what their role says.
func TestPolicy(t *testing.T) {
	s := start(t)
	p, err := policy.Load(s.Env()["STOPDEPLOY_POLICY_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	in := func(_ context.Context, group, user string) (bool, error) {
		return slices.Contains(groupMembers[group], user), nil
	}
	rules := map[string]string{Running: "production", ECSBlueGreen: "production", Lambda: "production", Staging: "staging", Succeeded: "staging"}
	for id, want := range rules {
		d, ok := s.cd.Deployment(id)
		if !ok {
			t.Fatalf("%s not seeded", id)
		}
		r, ok := p.RuleFor(policy.Target{Application: d.Application, Group: d.Group, Account: "default", Region: "us-east-1"})
		if !ok || r.Name != want {
			t.Errorf("%s (%s / %s): rule %v, want %s", id, d.Application, d.Group, r, want)
		}
	}
	for _, tc := range []struct {
		id          string
		mayRequest  []string // who may ask
		approvals   int
		approverFor map[string][]string // requester: whose approval counts
	}{
		{Running, []string{Alice, Bob}, 1, map[string][]string{Alice: {Bob}, Bob: {Alice}}},
		{Staging, []string{Alice, Bob, Carol}, 0, nil},
	} {
		d, _ := s.cd.Deployment(tc.id)
		target := policy.Target{Application: d.Application, Group: d.Group, Account: "default", Region: "us-east-1"}
		for _, p2 := range people {
			r, dec, err := p.MayRequest(t.Context(), target, p2.ID, Deploys, in)
			if err != nil {
				t.Fatal(err)
			}
			if want := slices.Contains(tc.mayRequest, p2.ID); dec.Allowed != want {
				t.Errorf("%s may ask to stop %s: %t (%s), want %t", p2.Name, tc.id, dec.Allowed, dec.Reason, want)
			}
			if r == nil || r.Approvals != tc.approvals {
				t.Fatalf("%s: rule %+v, want %d approvals", tc.id, r, tc.approvals)
			}
			if !dec.Allowed || tc.approvals == 0 {
				continue
			}
			for _, q := range people {
				dec, err := r.MayApprove(t.Context(), q.ID, Deploys, p2.ID, nil, in)
				if err != nil {
					t.Fatal(err)
				}
				if want := slices.Contains(tc.approverFor[p2.ID], q.ID); dec.Allowed != want {
					t.Errorf("%s approves %s's stop of %s: %t (%s), want %t", q.Name, p2.Name, tc.id, dec.Allowed, dec.Code, want)
				}
			}
		}
	}
}
