package fakecodedeploy

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
)

const (
	prodAccount = "210987654321"
	prodKey     = "ASIAPRODEXAMPLE"
	prodToken   = "SESSION-TOKEN-prod-secret"
	prodARN     = "arn:aws:sts::210987654321:assumed-role/stopdeploy/alice"
)

func registerProd(s *Server) {
	s.RegisterKey(prodKey, Principal{Account: prodAccount, ARN: prodARN, SessionName: "alice", SessionToken: prodToken})
}

var prodSigner = signer{key: prodKey, token: prodToken}

func TestPlacesIsolateDeployments(t *testing.T) {
	const id = "d-SAMEID001"
	cases := []struct {
		name        string
		as          signer
		wantApp     string // "" = DeploymentDoesNotExistException
		wantAccount string
		wantSession string
	}{
		{"bot key, default region", signer{}, "home-east", DefaultAccount, ""},
		{"bot key, other region", signer{region: "eu-west-1"}, "home-west", DefaultAccount, ""},
		{"assumed role, its account", prodSigner, "prod-east", prodAccount, "alice"},
		{"assumed role, region without it", signer{key: prodKey, token: prodToken, region: "eu-west-1"}, "", prodAccount, "alice"},
		{"unknown region", signer{region: "ap-south-1"}, "", DefaultAccount, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{})
			registerProd(s)
			s.Put(Deployment{ID: id, Application: "home-east", Group: "g"})
			s.Put(Deployment{ID: id, Region: "eu-west-1", Application: "home-west", Group: "g"})
			s.Put(Deployment{ID: id, Account: prodAccount, Application: "prod-east", Group: "g"})
			c := newClientAs(t, s, tc.as, oneAttempt)
			_, err := c.GetDeployment(ctxT(t), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
			if tc.wantApp == "" {
				if !isErr[*types.DeploymentDoesNotExistException](err) {
					t.Fatalf("err = %v, want DeploymentDoesNotExistException", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.wantApp != "" {
				if info := get(t, c, id); aws.ToString(info.ApplicationName) != tc.wantApp {
					t.Errorf("application = %s, want %s", aws.ToString(info.ApplicationName), tc.wantApp)
				}
				stop(t, c, id, aws.Bool(false))
				for _, d := range s.Deployments() {
					if stopped := !d.StopRequestedAt.IsZero(); stopped != (d.Application == tc.wantApp) {
						t.Errorf("%s in %s/%s: stop requested %v", d.ID, d.Account, d.Region, stopped)
					}
				}
			}
			region := tc.as.region
			if region == "" {
				region = DefaultRegion
			}
			for _, call := range s.Calls() {
				key := tc.as.key
				if key == "" {
					key = "AKID"
				}
				if call.Account != tc.wantAccount || call.Region != region || call.AccessKeyID != key || call.SessionName != tc.wantSession {
					t.Errorf("call %v: account %q region %q key %q session %q", call, call.Account, call.Region, call.AccessKeyID, call.SessionName)
				}
			}
		})
	}
}

func TestDeploymentAndUpdateActOnFirstPut(t *testing.T) {
	s := newServer(t, Options{})
	const id = "d-TWICE0001"
	s.Put(Deployment{ID: id, Region: "eu-west-1", Description: "west"})
	s.Put(Deployment{ID: id, Description: "east"})
	s.Put(Deployment{ID: id, Region: "eu-west-1", Description: "west again"}) // replacing keeps its Put order

	if d, ok := s.Deployment(id); !ok || d.Region != "eu-west-1" || d.Account != DefaultAccount || d.Description != "west again" {
		t.Errorf("Deployment(id) = %s/%s %q", d.Account, d.Region, d.Description)
	}
	if d, ok := s.DeploymentAt("", "", id); !ok || d.Region != DefaultRegion || d.Description != "east" {
		t.Errorf("DeploymentAt(default) = %s %q", d.Region, d.Description)
	}
	if _, ok := s.DeploymentAt(prodAccount, "eu-west-1", id); ok {
		t.Error("DeploymentAt of another account found it")
	}
	if !s.Update(id, func(d *Deployment) { d.Status = StatusBaking; d.Region = "us-west-2"; d.Account = prodAccount }) {
		t.Fatal("Update = false")
	}
	if !s.UpdateAt(DefaultAccount, DefaultRegion, id, func(d *Deployment) { d.Status = StatusReady }) {
		t.Fatal("UpdateAt = false")
	}
	if s.UpdateAt(DefaultAccount, "us-west-2", id, func(*Deployment) {}) {
		t.Error("UpdateAt of a missing place = true")
	}
	west, _ := s.DeploymentAt("", "eu-west-1", id)
	east, _ := s.DeploymentAt("", "", id)
	if west.Status != StatusBaking || west.Region != "eu-west-1" || west.Account != DefaultAccount || east.Status != StatusReady {
		t.Errorf("west %s %s/%s, east %s", west.Status, west.Account, west.Region, east.Status)
	}
	if n := len(s.Deployments()); n != 2 {
		t.Errorf("%d deployments, want 2", n)
	}
}

func TestSessionToken(t *testing.T) {
	cases := []struct {
		name     string
		as       signer
		wantCode string // "" = answered
	}{
		{"right token", prodSigner, ""},
		{"wrong token", signer{key: prodKey, token: "SESSION-TOKEN-stale"}, "UnrecognizedClientException"},
		{"no token", signer{key: prodKey}, "UnrecognizedClientException"},
		{"unregistered key, no token", signer{key: "AKIAOTHER"}, ""},
		{"registered key without token", signer{key: "AKIALONGTERM"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{})
			registerProd(s)
			s.RegisterKey("AKIALONGTERM", Principal{Account: prodAccount})
			id := s.Put(Deployment{})
			s.Put(Deployment{ID: id, Account: prodAccount})
			_, err := newClientAs(t, s, tc.as, oneAttempt).GetDeployment(ctxT(t), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
			code, msg := apiErr(err)
			if code != tc.wantCode || (tc.wantCode == "" && err != nil) {
				t.Fatalf("err = %v, want %q", err, tc.wantCode)
			}
			if tc.wantCode != "" && (msg != "The security token included in the request is invalid." || httpStatus(err) != 400) {
				t.Errorf("message %q, status %d", msg, httpStatus(err))
			}
			if calls := s.Calls(); len(calls) != 1 || calls[0].AccessKeyID != tc.as.key {
				t.Errorf("calls = %v", calls)
			}
		})
	}
}

func TestDefaultAccountOption(t *testing.T) {
	const acct = "555555555555"
	s := newServer(t, Options{DefaultAccount: acct})
	id := s.Put(Deployment{Application: "a", Group: "g"})
	s.RegisterKey("AKIANOACCOUNT", Principal{SessionName: "x"})
	if d, _ := s.Deployment(id); d.Account != acct {
		t.Errorf("Put account = %q", d.Account)
	}
	for _, as := range []signer{{}, {key: "AKIANOACCOUNT"}} {
		get(t, newClientAs(t, s, as), id)
	}
	for _, c := range s.Calls() {
		if c.Account != acct {
			t.Errorf("call %v in account %q", c, c.Account)
		}
	}
	s.Deny("", "", OpStopDeployment)
	_, err := newClient(t, s).StopDeployment(ctxT(t), &codedeploy.StopDeploymentInput{DeploymentId: aws.String(id)})
	if _, msg := apiErr(err); !strings.Contains(msg, "arn:aws:iam::"+acct+":user/stopdeploy") {
		t.Errorf("err = %v", err)
	}
}
