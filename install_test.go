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

// TestIAMPolicy_GrantsOnlyGetAndStopDeployment: least privilege, checked.
func TestIAMPolicy_GrantsOnlyGetAndStopDeployment(t *testing.T) {
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
	if len(policy.Statement) == 0 {
		t.Fatal("no statements")
	}
	resourceARN := regexp.MustCompile(`^arn:aws:codedeploy:[a-z0-9*-]+:(\d{12}|\*):deploymentgroup:[^/\s]+/[^/\s]+$`)
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
		granted = append(granted, stringOrList(t, st["Action"])...)
		for _, r := range stringOrList(t, st["Resource"]) {
			if !resourceARN.MatchString(r) {
				t.Errorf("statement %d Resource %q is not a CodeDeploy deployment group ARN", i, r)
			}
		}
	}
	slices.Sort(granted)
	if want := []string{"codedeploy:GetDeployment", "codedeploy:StopDeployment"}; !slices.Equal(granted, want) {
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
