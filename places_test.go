package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/deploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakests"
)

const (
	prodAccountID    = "210987654321"
	stagingAccountID = "333333333333"
	prodRole         = "arn:aws:iam::210987654321:role/stopdeploy"
	stagingRole      = "arn:aws:iam::333333333333:role/ops/stopdeploy"
	twoAccounts      = "prod=" + prodRole + ", staging=" + stagingRole
)

func TestConfig_Places(t *testing.T) {
	tests := []struct {
		name         string
		regions      []string
		accounts     []string
		wantErr      string // "" = valid
		wantRegions  []string
		wantAccounts []accountRole
	}{
		{name: "unset"},
		{name: "regions trimmed", regions: []string{" us-east-1", "eu-west-1 ", "", "us-gov-west-1", "ap-southeast-4"},
			wantRegions: []string{"us-east-1", "eu-west-1", "us-gov-west-1", "ap-southeast-4"}},
		{name: "not a region", regions: []string{"us-east-1", "Ireland"}, wantErr: "STOPDEPLOY_REGIONS: entry 2 is not an AWS region such as eu-west-1"},
		{name: "region twice", regions: []string{"us-east-1", "us-east-1"}, wantErr: "STOPDEPLOY_REGIONS: lists us-east-1 twice"},
		{name: "accounts", accounts: strings.Split(twoAccounts, ","),
			wantAccounts: []accountRole{{"prod", prodRole}, {"staging", stagingRole}}},
		{name: "other partition", accounts: []string{"cn=arn:aws-cn:iam::123456789012:role/stopdeploy"},
			wantAccounts: []accountRole{{"cn", "arn:aws-cn:iam::123456789012:role/stopdeploy"}}},
		{name: "no name", accounts: []string{prodRole}, wantErr: "STOPDEPLOY_ACCOUNTS: entry 1 is not name=arn:aws:iam::123456789012:role/NAME"},
		{name: "bad name", accounts: []string{"Prod=" + prodRole}, wantErr: "STOPDEPLOY_ACCOUNTS: entry 1: the name must be 1 to 32 lower-case letters, digits, - or _"},
		{name: "user, not role", accounts: []string{"prod=arn:aws:iam::210987654321:user/stopdeploy"},
			wantErr: "STOPDEPLOY_ACCOUNTS: entry 1 (prod): the role must be an IAM role ARN"},
		{name: "short account", accounts: []string{"prod=arn:aws:iam::2109876:role/stopdeploy"}, wantErr: "entry 1 (prod): the role must be"},
		{name: "name twice", accounts: []string{"prod=" + prodRole, "prod=" + stagingRole}, wantErr: "STOPDEPLOY_ACCOUNTS: names the account prod twice"},
		{name: "secret in the wrong place is not echoed", accounts: []string{"xoxb-1234-secretvalue"}, wantErr: "entry 1 is not name="},
		{name: "secret as a name is not echoed", accounts: []string{"xoxb-1234-SECRETVALUE=" + prodRole}, wantErr: "entry 1: the name must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config{Regions: tt.regions, Accounts: tt.accounts}
			err := c.validatePlaces()
			if tt.wantErr != "" {
				var ce *configError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a *configError with %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "SECRET") {
					t.Errorf("error echoes the value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Regions, tt.wantRegions) || !slices.Equal(c.accounts, tt.wantAccounts) {
				t.Errorf("regions %q accounts %v, want %q %v", c.Regions, c.accounts, tt.wantRegions, tt.wantAccounts)
			}
		})
	}
}

// newFakeSTS is a fake STS whose issued keys act in their role's account
// in cd, with the role session name recorded on cd's calls.
func newFakeSTS(t *testing.T, cd *fakecodedeploy.Server) *fakests.Server {
	t.Helper()
	st, err := fakests.New(fakests.Options{OnIssue: func(i fakests.Issued) {
		cd.RegisterKey(i.AccessKeyID, fakecodedeploy.Principal{Account: i.Account, ARN: i.AssumedRoleARN,
			SessionName: i.RoleSessionName, SessionToken: i.SessionToken})
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	st.AddRole(prodRole)
	st.AddRole(stagingRole)
	return st
}

// TestE2E_CheckPlaces: `stopdeploy check` in two accounts × two regions,
// reached through fake STS: one line per place, and an account whose role
// cannot be assumed is one FAIL line naming it and its role.
func TestE2E_CheckPlaces(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(w *world, st *fakests.Server)
		ok        bool
		want      []string
		wantPlace int // places probed
	}{
		{name: "all good", ok: true, wantPlace: 4, want: []string{
			"OK aws account prod assumed " + prodRole,
			"OK aws codedeploy prod/us-east-1 credentials work; codedeploy:GetDeployment and codedeploy:StopDeployment are allowed in prod/us-east-1",
			"OK aws codedeploy prod/eu-west-1 credentials work",
			"OK aws account staging assumed " + stagingRole,
			"OK aws codedeploy staging/us-east-1 credentials work",
			"OK aws codedeploy staging/eu-west-1 credentials work",
		}},
		{name: "a role cannot be assumed", setup: func(w *world, st *fakests.Server) { st.DenyRole(stagingRole) }, wantPlace: 2, want: []string{
			"OK aws codedeploy prod/us-east-1 credentials work",
			"OK aws codedeploy prod/eu-west-1 credentials work",
			"FAIL aws account staging sts:AssumeRole failed, so its regions were not probed: ",
			stagingRole,
			"AccessDenied",
			"Fix: the role's trust policy must name the bot's identity",
		}},
		{name: "one place denies GetDeployment", setup: func(w *world, st *fakests.Server) {
			w.cd.Deny(stagingAccountID, "eu-west-1", fakecodedeploy.OpGetDeployment)
		}, wantPlace: 4, want: []string{
			"OK aws codedeploy staging/us-east-1 credentials work",
			"FAIL aws codedeploy staging/eu-west-1 AWS refused codedeploy:GetDeployment (AccessDeniedException)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			st := newFakeSTS(t, w.cd)
			if tt.setup != nil {
				tt.setup(w, st)
			}
			p := w.spawn("check", map[string]string{
				"STOPDEPLOY_ACCOUNTS":  twoAccounts,
				"STOPDEPLOY_REGIONS":   "us-east-1,eu-west-1",
				"AWS_ENDPOINT_URL_STS": st.URL(),
			}, "check")
			code := p.wait(20 * time.Second)
			out := squeeze(p.out.text())
			if (code == 0) != tt.ok {
				t.Errorf("exit code %d, want success %v; output:\n%s%s", code, tt.ok, out, p.errOut.text())
			}
			for _, want := range tt.want {
				if !strings.Contains(out, squeeze(want)) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "default/") {
				t.Errorf("check probed the bot's own account although STOPDEPLOY_ACCOUNTS is set:\n%s", out)
			}
			// Each place probed once (GetDeployment, then StopDeployment
			// of the same ID), with the lookup session.
			probed := map[string]bool{}
			for _, c := range w.cd.Calls() {
				probed[c.Account+"/"+c.Region] = true
				if c.SessionName != lookupSessionName {
					t.Errorf("%v in %s/%s signed by session %q, want %q", c, c.Account, c.Region, c.SessionName, lookupSessionName)
				}
			}
			if len(probed) != tt.wantPlace {
				t.Errorf("probed %v, want %d places", probed, tt.wantPlace)
			}
			for _, c := range st.Calls() {
				if c.Action == fakests.ActionAssumeRole && c.RoleSessionName != lookupSessionName {
					t.Errorf("AssumeRole %v, want session %q", c, lookupSessionName)
				}
			}
		})
	}
}

// TestPlaces_StopSessionIsNamedAfterTheUser: newPlaces with real stscreds
// against fake STS. Lookups use the session "stopdeploy"; a stop uses
// "stopdeploy-<Slack user ID>", assumed once per user and account.
func TestPlaces_StopSessionIsNamedAfterTheUser(t *testing.T) {
	cd, st, places := placesAgainstFakes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const id = "d-PRODWEST1"
	cd.Put(fakecodedeploy.Deployment{ID: id, Account: prodAccountID, Region: "eu-west-1", Application: "billing", Group: "live", StopStatus: "Succeeded"})
	prodWest := deploy.Place{Account: "prod", Region: "eu-west-1"}
	if got, want := places.Places(), []deploy.Place{
		{Account: "prod", Region: "us-east-1"}, prodWest, {Account: "staging", Region: "us-east-1"}, {Account: "staging", Region: "eu-west-1"}}; !slices.Equal(got, want) {
		t.Errorf("Places() = %v, want %v", got, want)
	}

	found, failed := places.Find(ctx, id)
	if len(found) != 1 || found[0].Place != prodWest || len(failed) != 0 {
		t.Fatalf("Find = %v, failed %v", found, failed)
	}
	for i, user := range []string{alice, alice, bob} {
		// The first stop succeeds at once; the later ones find it completed.
		_, err := places.Stop(ctx, prodWest, id, false, user)
		var de *deploy.Error
		if (i == 0 && err != nil) || (i > 0 && !(errors.As(err, &de) && de.Kind == deploy.KindAlreadyCompleted)) {
			t.Fatalf("Stop %d as %s: %v", i+1, user, err)
		}
	}
	_, err := places.Stop(ctx, prodWest, id, false, "alice smith")
	var de *deploy.Error
	if !errors.As(err, &de) || de.Unknown() {
		t.Errorf("a stop by a user ID that cannot name a role session: err = %v, want a *deploy.Error that is not Unknown (nothing was sent)", err)
	}

	var sessions []string
	for _, c := range cd.Calls() {
		sessions = append(sessions, c.Target+" "+c.Account+"/"+c.Region+" "+c.SessionName)
	}
	slices.Sort(sessions)
	want := []string{
		"GetDeployment 210987654321/eu-west-1 stopdeploy",
		"GetDeployment 210987654321/us-east-1 stopdeploy",
		"GetDeployment 333333333333/eu-west-1 stopdeploy",
		"GetDeployment 333333333333/us-east-1 stopdeploy",
		"StopDeployment 210987654321/eu-west-1 stopdeploy-" + alice,
		"StopDeployment 210987654321/eu-west-1 stopdeploy-" + alice,
		"StopDeployment 210987654321/eu-west-1 stopdeploy-" + bob,
	}
	slices.Sort(want)
	if !slices.Equal(sessions, want) {
		t.Errorf("CodeDeploy calls:\n%s\nwant\n%s", strings.Join(sessions, "\n"), strings.Join(want, "\n"))
	}
	var assumed []string
	for _, c := range st.Calls() {
		assumed = append(assumed, c.Action+" "+c.RoleARN+" "+c.RoleSessionName+" "+c.Result)
	}
	slices.Sort(assumed)
	wantAssumed := []string{
		"AssumeRole " + prodRole + " stopdeploy ok",
		"AssumeRole " + prodRole + " stopdeploy-" + alice + " ok",
		"AssumeRole " + prodRole + " stopdeploy-" + bob + " ok",
		"AssumeRole " + stagingRole + " stopdeploy ok",
	}
	slices.Sort(wantAssumed)
	if !slices.Equal(assumed, wantAssumed) {
		t.Errorf("STS calls:\n%s\nwant (one session per account for lookups, one per user for stops)\n%s", strings.Join(assumed, "\n"), strings.Join(wantAssumed, "\n"))
	}
}

// placesAgainstFakes is newPlaces for prod and staging × us-east-1 and
// eu-west-1, from the environment as the bot reads it, against a fake
// CodeDeploy and a fake STS.
func placesAgainstFakes(t *testing.T) (*fakecodedeploy.Server, *fakests.Server, *deploy.Places) {
	t.Helper()
	cd, err := fakecodedeploy.New(fakecodedeploy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cd.Close)
	st := newFakeSTS(t, cd)
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIAE2ETESTKEY", "AWS_SECRET_ACCESS_KEY": "e2e-test-secret",
		"AWS_CONFIG_FILE": empty, "AWS_SHARED_CREDENTIALS_FILE": empty, "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_ENDPOINT_URL_CODEDEPLOY": cd.URL(), "AWS_ENDPOINT_URL_STS": st.URL(), "AWS_PROFILE": "", "AWS_ENDPOINT_URL": "",
	} {
		t.Setenv(k, v)
	}
	awsCfg, err := loadAWSConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg := config{Regions: []string{"us-east-1", "eu-west-1"}, Accounts: strings.Split(twoAccounts, ",")}
	if err := cfg.validatePlaces(); err != nil {
		t.Fatal(err)
	}
	places, err := newPlaces(context.Background(), cfg, awsCfg)
	if err != nil {
		t.Fatal(err)
	}
	return cd, st, places
}

// TestPlaces_RoleRefused: an account whose role cannot be assumed is a
// PlaceFailure naming the role, and a stop there says it was not sent.
func TestPlaces_RoleRefused(t *testing.T) {
	cd, st, places := placesAgainstFakes(t)
	st.DenyRole(stagingRole)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const id = "d-PRODEAST1"
	cd.Put(fakecodedeploy.Deployment{ID: id, Account: prodAccountID, Region: "us-east-1", Application: "billing", Group: "live"})

	found, failed := places.Find(ctx, id)
	if len(found) != 1 || found[0].Place != (deploy.Place{Account: "prod", Region: "us-east-1"}) {
		t.Errorf("found %v", found)
	}
	var got []string
	for _, f := range failed {
		got = append(got, f.String())
	}
	want := []string{
		"staging/us-east-1: the bot could not assume role " + stagingRole + " (AccessDenied)",
		"staging/eu-west-1: the bot could not assume role " + stagingRole + " (AccessDenied)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("failed = %q, want %q", got, want)
	}

	_, err := places.Stop(ctx, deploy.Place{Account: "staging", Region: "eu-west-1"}, id, false, alice)
	var de *deploy.Error
	if !errors.As(err, &de) || de.Unknown() {
		t.Fatalf("Stop err = %v, want a *deploy.Error that is not Unknown", err)
	}
	if ex := de.Explain(); !strings.Contains(ex, "could not assume the role "+stagingRole+" for staging/eu-west-1, so it did *not* stop `"+id+"` (AccessDenied)") {
		t.Errorf("Explain = %q", ex)
	}
	if n := cd.Count("", ""); n != 2 {
		t.Errorf("%d CodeDeploy calls, want the 2 lookups in prod: nothing is sent without credentials", n)
	}
}
