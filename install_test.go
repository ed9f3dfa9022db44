package main

// Tests of what a platform team installs: the IAM policy, the Slack app
// manifest and the Procfile.

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestIAMPolicy_GrantsWhatIAMCanGrant: least privilege, checked. It holds
// iam-policy.json to what IAM's Service Authorization Reference says
// (CodeDeploy's "Actions, resources, and condition keys" table,
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscodedeploy.html):
// GetDeployment, BatchGetDeployments (Read) and ListDeployments (List) have
// the resource type deploymentgroup, so they are scoped to deployment-group
// ARNs; StopDeployment has no resource type, so only "Resource": "*" grants
// it, alone in its own statement. A statement naming group ARNs for
// StopDeployment would be refused on every real stop. ListDeployments
// without an application and group (Active across all applications) is
// authorized on deploymentgroup:* rather than on one group's ARN (that
// page's ListDeployments example; fakecodedeploy's Deny answers the same),
// so its statement names deploymentgroup:* without the "/".
func TestIAMPolicy_GrantsWhatIAMCanGrant(t *testing.T) {
	raw, err := os.ReadFile("iam-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	var policy struct {
		Version   string
		Statement []map[string]json.RawMessage
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&policy); err != nil {
		t.Fatalf("iam-policy.json: %v", err)
	}
	if policy.Version != "2012-10-17" {
		t.Errorf("Version = %q", policy.Version)
	}
	groupARN := regexp.MustCompile(`^arn:aws:codedeploy:[a-z0-9*-]+:(\d{12}|\*):deploymentgroup:[^/\s]+/[^/\s]+$`)
	// ListDeployments of a whole account: every group, "deploymentgroup:*".
	anyGroupARN := regexp.MustCompile(`^arn:aws:codedeploy:[a-z0-9*-]+:(\d{12}|\*):deploymentgroup:\*$`)
	// Actions without a resource type in the reference: "*" only, and alone.
	noResourceType := map[string]bool{"codedeploy:StopDeployment": true}
	var granted []string
	for i, st := range policy.Statement {
		for key := range st {
			if !slices.Contains([]string{"Sid", "Effect", "Action", "Resource"}, key) {
				t.Errorf("statement %d has %s: only Sid, Effect, Action and Resource are expected (no NotAction, NotResource or Condition widening)", i, key)
			}
		}
		var effect string
		if err := json.Unmarshal(st["Effect"], &effect); err != nil || effect != "Allow" {
			t.Errorf("statement %d Effect = %s", i, st["Effect"])
		}
		actions := stringOrList(t, st["Action"])
		resources := stringOrList(t, st["Resource"])
		granted = append(granted, actions...)
		for _, a := range actions {
			switch {
			case noResourceType[a]:
				if len(actions) != 1 || !slices.Equal(resources, []string{"*"}) {
					t.Errorf("statement %d: %s has no resource type in IAM, so it needs a statement of its own on \"*\"; got actions %v on %v", i, a, actions, resources)
				}
			case strings.HasPrefix(a, "dynamodb:"):
				// The state table (state package doc): only tables named
				// stopdeploy*, in any region and account.
				if !slices.Equal(resources, []string{"arn:aws:dynamodb:*:*:table/stopdeploy*"}) {
					t.Errorf("statement %d: %s on %v: must be the stopdeploy* tables only", i, a, resources)
				}
			case a == "codedeploy:ListDeployments":
				for _, r := range resources {
					if !groupARN.MatchString(r) && !anyGroupARN.MatchString(r) {
						t.Errorf("statement %d: %s on %q: must be scoped to deployment-group ARNs", i, a, r)
					}
				}
				if !slices.ContainsFunc(resources, anyGroupARN.MatchString) {
					t.Errorf("statement %d: %s on %v: listing across applications needs deploymentgroup:*", i, a, resources)
				}
			default:
				for _, r := range resources {
					if !groupARN.MatchString(r) {
						t.Errorf("statement %d: %s on %q: reads must be scoped to deployment-group ARNs", i, a, r)
					}
				}
			}
		}
	}
	slices.Sort(granted)
	if want := []string{"codedeploy:BatchGetDeployments", "codedeploy:GetDeployment", "codedeploy:ListDeployments", "codedeploy:StopDeployment",
		"dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}; !slices.Equal(granted, want) {
		t.Errorf("actions = %v, want exactly %v", granted, want)
	}
}

func stringOrList(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		t.Fatalf("%s is neither a string nor a list of strings", raw)
	}
	return many
}

// TestManifest_ScopesAreExactlyWhatTheBotCalls: the manifest and the
// scopes `stopdeploy check` requires are the same list.
func TestManifest_ScopesAreExactlyWhatTheBotCalls(t *testing.T) {
	f, err := os.Open("slack-app-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		scopes                              []string
		inBot                               bool
		socketMode, interactivity, hasSlash bool
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "#") || trimmed == "":
			continue
		case trimmed == "bot:":
			inBot = true
			continue
		case trimmed == "socket_mode_enabled: true":
			socketMode = true
		case trimmed == "- command: /stopdeploy":
			hasSlash = true
		case trimmed == "is_enabled: true":
			interactivity = true
		}
		if inBot {
			if scope, ok := strings.CutPrefix(trimmed, "- "); ok {
				scopes = append(scopes, scope)
				continue
			}
			inBot = false
		}
	}
	var want []string
	for _, s := range requiredScopes {
		want = append(want, s.scope)
	}
	slices.Sort(scopes)
	slices.Sort(want)
	if !slices.Equal(scopes, want) {
		t.Errorf("manifest bot scopes = %v, want %v", scopes, want)
	}
	if !socketMode || !interactivity || !hasSlash {
		t.Errorf("manifest: socket mode %v, interactivity %v, /stopdeploy %v; want all", socketMode, interactivity, hasSlash)
	}
}

// TestProcfile_RunsTheBinaryTheGoBuildpackInstalls: Heroku's Go buildpack
// installs the main package as bin/<last element of the module path>.
func TestProcfile_RunsTheBinaryTheGoBuildpackInstalls(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	path := ""
	for line := range strings.Lines(string(mod)) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			path = strings.Trim(strings.TrimSpace(p), `"`)
		}
	}
	binary := "bin/" + path[strings.LastIndex(path, "/")+1:]
	procfile, err := os.ReadFile("Procfile")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(procfile)), "worker: "+binary; got != want {
		t.Errorf("Procfile = %q, want %q", got, want)
	}
}
