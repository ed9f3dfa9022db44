package policy_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stopdeploy/stopdeploy/policy"
)

// FuzzParse: Parse never panics, fails only with *policy.Error values that
// name the file, and what it accepts can be described and decided on.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(example); err == nil {
		f.Add(data)
	}
	for _, seed := range []string{
		rule,
		decisions,
		"",
		"---\n",
		"rules: [*]\n",
		"rules:\n  - name: a\n    deployment_groups: &g [\"*\"]\n    requesters: {users: [U0A]}\n  - name: b\n    deployment_groups: *g\n    requesters: {users: [U0A]}\n",
		"a: &a [*a]\n",
		"rules:\n  - {name: x, deployment_groups: ['['], requesters: {<<: {}}, approvals: 0x7fffffffffffffff}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policy.Parse("fuzz.yaml", data)
		if err != nil {
			var pe *policy.Error
			if !errors.As(err, &pe) || pe.File != "fuzz.yaml" || !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("Parse error %q is not a *policy.Error naming the file", err)
			}
			return
		}
		if len(p.Rules) == 0 {
			t.Fatal("Parse accepted a policy with no rules")
		}
		_ = p.Describe()
		for i := range p.Rules {
			r := &p.Rules[i]
			if r.Requesters.Users == nil && r.Requesters.Groups == nil {
				t.Fatalf("rule %q has no requesters", r.Name)
			}
			if r.Approvals < 0 || r.Approvals > policy.MaxApprovals {
				t.Fatalf("rule %q needs %d approvals", r.Name, r.Approvals)
			}
			if _, err := r.MayApprove(context.Background(), "U0X", "C0X", "U0Y", nil, func(context.Context, string, string) (bool, error) { return true, nil }); err != nil {
				t.Fatal(err)
			}
		}
	})
}
