package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/stopdeploy/stopdeploy/deploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
)

// The places of these tests: two accounts (the bot's own, "home", and
// "prod", reached with a key of its own) × two regions.
const (
	prodAccount = "210987654321"
	prodKey     = "AKIAPRODLOOKUPS"
)

var (
	homeEast = deploy.Place{Account: "home", Region: "us-east-1"}
	homeWest = deploy.Place{Account: "home", Region: "eu-west-1"}
	prodEast = deploy.Place{Account: "prod", Region: "us-east-1"}
	prodWest = deploy.Place{Account: "prod", Region: "eu-west-1"}
	allFour  = []deploy.Place{homeEast, homeWest, prodEast, prodWest}
)

// accountOf is the fake's 12-digit account of a place.
func accountOf(p deploy.Place) string {
	if p.Account == "prod" {
		return prodAccount
	}
	return fakecodedeploy.DefaultAccount
}

func newFake(t *testing.T) *fakecodedeploy.Server {
	t.Helper()
	s, err := fakecodedeploy.New(fakecodedeploy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.RegisterKey(prodKey, fakecodedeploy.Principal{Account: prodAccount})
	return s
}

// realClient is the SDK's CodeDeploy client for region, signing with key,
// pointed at the fake, one attempt per call.
func realClient(s *fakecodedeploy.Server, key, region string) *codedeploy.Client {
	return codedeploy.New(codedeploy.Options{
		Region:           region,
		BaseEndpoint:     aws.String(s.URL()),
		Credentials:      credentials.NewStaticCredentialsProvider(key, "test-secret", ""),
		RetryMaxAttempts: 1,
	})
}

func keyOf(p deploy.Place) string {
	if p.Account == "prod" {
		return prodKey
	}
	return "AKIAHOMEBOT"
}

func newPlaces(t *testing.T, s *fakecodedeploy.Server, opts deploy.PlacesOptions, stopsFor func(deploy.Place, string) deploy.StopAPI) *deploy.Places {
	t.Helper()
	var apis []deploy.PlaceAPI
	for _, p := range allFour {
		c := realClient(s, keyOf(p), p.Region)
		a := deploy.PlaceAPI{Place: p, Reads: c, Stops: c}
		if stopsFor != nil {
			a.StopsFor = func(user string) deploy.StopAPI { return stopsFor(p, user) }
		}
		apis = append(apis, a)
	}
	places, err := deploy.NewPlaces(apis, opts)
	if err != nil {
		t.Fatal(err)
	}
	return places
}

func put(s *fakecodedeploy.Server, p deploy.Place, d fakecodedeploy.Deployment) {
	d.Account, d.Region = accountOf(p), p.Region
	s.Put(d)
}

func placesOf(deps []deploy.Deployment) []deploy.Place {
	var out []deploy.Place
	for _, d := range deps {
		out = append(out, d.Place)
	}
	return out
}

func TestPlaces_Find(t *testing.T) {
	const id = "d-FINDME001"
	tests := []struct {
		name       string
		setup      func(s *fakecodedeploy.Server)
		timeout    time.Duration
		wantFound  []deploy.Place
		wantFailed []string // PlaceFailure.String()
		wantWithin time.Duration
	}{
		{name: "in one place", setup: func(s *fakecodedeploy.Server) {
			put(s, prodWest, fakecodedeploy.Deployment{ID: id, Application: "checkout", Group: "live"})
		}, wantFound: []deploy.Place{prodWest}},
		{name: "in none", setup: func(s *fakecodedeploy.Server) {}},
		{name: "in two", setup: func(s *fakecodedeploy.Server) {
			put(s, homeEast, fakecodedeploy.Deployment{ID: id, Application: "checkout", Group: "staging"})
			put(s, prodWest, fakecodedeploy.Deployment{ID: id, Application: "checkout", Group: "live"})
		}, wantFound: []deploy.Place{homeEast, prodWest}},
		{name: "one account denies, another answers", setup: func(s *fakecodedeploy.Server) {
			put(s, homeWest, fakecodedeploy.Deployment{ID: id, Application: "checkout", Group: "staging"})
			s.Deny(prodAccount, "", fakecodedeploy.OpGetDeployment)
		}, wantFound: []deploy.Place{homeWest}, wantFailed: []string{
			"prod/us-east-1: AWS refused access (AccessDeniedException)",
			"prod/eu-west-1: AWS refused access (AccessDeniedException)",
		}},
		{name: "one place throttles", setup: func(s *fakecodedeploy.Server) {
			put(s, homeEast, fakecodedeploy.Deployment{ID: id, Application: "checkout", Group: "staging"})
			s.FailPlace(prodAccount, "us-east-1", fakecodedeploy.Failure{Code: "ThrottlingException"})
		}, wantFound: []deploy.Place{homeEast}, wantFailed: []string{
			"prod/us-east-1: throttled by AWS, even after retries (ThrottlingException)",
		}},
		{name: "one place slow", timeout: 2 * time.Second, setup: func(s *fakecodedeploy.Server) {
			put(s, prodEast, fakecodedeploy.Deployment{ID: id, Application: "checkout", Group: "live"})
			s.SetPlaceDelay(fakecodedeploy.DefaultAccount, "eu-west-1", time.Hour)
		}, wantFound: []deploy.Place{prodEast}, wantFailed: []string{
			"home/eu-west-1: no answer within 2s",
		}, wantWithin: 2*time.Second + 3*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t)
			tt.setup(s)
			places := newPlaces(t, s, deploy.PlacesOptions{LookupTimeout: tt.timeout}, nil)
			start := time.Now()
			found, failed := places.Find(context.Background(), id)
			took := time.Since(start)
			if got := placesOf(found); !slices.Equal(got, tt.wantFound) {
				t.Errorf("found in %v, want %v", got, tt.wantFound)
			}
			for _, d := range found {
				if d.ID != id || d.Application != "checkout" {
					t.Errorf("found %+v", d)
				}
			}
			var gotFailed []string
			for _, f := range failed {
				gotFailed = append(gotFailed, f.String())
				if f.Err == nil || f.Err.Place != f.Place {
					t.Errorf("failure %v: Err %v does not name its place", f, f.Err)
				}
			}
			if !slices.Equal(gotFailed, tt.wantFailed) {
				t.Errorf("failed = %q, want %q", gotFailed, tt.wantFailed)
			}
			if tt.wantWithin > 0 && took > tt.wantWithin {
				t.Errorf("Find took %v, want within %v", took, tt.wantWithin)
			}
			// A call the client gave up on is recorded once the fake sees that.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			isGet := func(c fakecodedeploy.Call) bool {
				return c.Target == fakecodedeploy.OpGetDeployment && c.DeploymentID == id
			}
			if calls, err := s.WaitCalls(ctx, isGet, len(allFour)); err != nil || len(calls) != len(allFour) {
				t.Errorf("GetDeployment calls %v (%v), want one per place (%d)", calls, err, len(allFour))
			}
		})
	}
}

func TestPlaces_Get(t *testing.T) {
	s := newFake(t)
	put(s, prodWest, fakecodedeploy.Deployment{ID: "d-GETME0001", Application: "billing", Group: "live"})
	places := newPlaces(t, s, deploy.PlacesOptions{}, nil)
	ctx := context.Background()

	d, err := places.Get(ctx, prodWest, "d-GETME0001")
	if err != nil {
		t.Fatal(err)
	}
	if d.Place != prodWest || d.Application != "billing" {
		t.Errorf("Get = %+v", d)
	}
	tests := []struct {
		place   deploy.Place
		kind    deploy.Kind
		explain string
	}{
		{prodEast, deploy.KindNotFound, "CodeDeploy has no deployment `d-GETME0001` in prod/us-east-1."},
		{deploy.Place{Account: "staging", Region: "eu-west-1"}, deploy.KindUnknownPlace, "The bot has no AWS account and region staging/eu-west-1 configured."},
	}
	for _, tt := range tests {
		t.Run(tt.place.String(), func(t *testing.T) {
			_, err := places.Get(ctx, tt.place, "d-GETME0001")
			var de *deploy.Error
			if !errors.As(err, &de) || de.Kind != tt.kind || de.Place != tt.place {
				t.Fatalf("Get in %s: err = %v, want a %s *deploy.Error naming the place", tt.place, err, tt.kind)
			}
			if got := de.Explain(); got != tt.explain {
				t.Errorf("Explain = %q, want %q", got, tt.explain)
			}
		})
	}
}

// TestPlaces_Active: more than a page of ListDeployments and more than one
// BatchGetDeployments of active deployments, across places, newest first.
func TestPlaces_Active(t *testing.T) {
	base := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	setup := func(s *fakecodedeploy.Server) {
		// 30 active in home/us-east-1 checkout/production (3 pages of 10, 2 batches).
		for i := range 30 {
			put(s, homeEast, fakecodedeploy.Deployment{ID: fmt.Sprintf("d-PROD%05d", i), Application: "checkout", Group: "production",
				Status: []string{"InProgress", "Created", "Queued", "Baking", "Ready"}[i%5], CreateTime: base.Add(time.Duration(2*i) * time.Minute)})
		}
		put(s, homeEast, fakecodedeploy.Deployment{ID: "d-STAGING01", Application: "checkout", Group: "staging", CreateTime: base.Add(time.Minute)})
		put(s, homeEast, fakecodedeploy.Deployment{ID: "d-DONE00001", Application: "checkout", Group: "production", Status: "Succeeded", CreateTime: base.Add(time.Hour)})
		put(s, homeEast, fakecodedeploy.Deployment{ID: "d-STOPPED01", Application: "checkout", Group: "production", Status: "Stopped", CreateTime: base.Add(time.Hour)})
		put(s, prodWest, fakecodedeploy.Deployment{ID: "d-BILLING01", Application: "billing", Group: "live", CreateTime: base.Add(3 * time.Minute)})
		put(s, prodWest, fakecodedeploy.Deployment{ID: "d-BILLING02", Application: "billing", Group: "production", CreateTime: base.Add(100 * time.Minute)})
		s.AddGroup(accountOf(prodEast), prodEast.Region, "checkout", "production")
	}
	tests := []struct {
		name, application, group string
		want                     int
		wantFirst                string
		wantListFilter           string // Call.Application/Group as sent
	}{
		{name: "everything", want: 33, wantFirst: "d-BILLING02"},
		{name: "application and group", application: "checkout", group: "production", want: 30, wantFirst: "d-PROD00029", wantListFilter: "checkout/production"},
		{name: "application only", application: "checkout", want: 31, wantFirst: "d-PROD00029"},
		{name: "group only", group: "production", want: 31, wantFirst: "d-BILLING02"},
		{name: "nothing matches", application: "search", group: "live", wantListFilter: "search/live"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t)
			setup(s)
			s.AddGroup(fakecodedeploy.DefaultAccount, "us-east-1", "search", "live")
			places := newPlaces(t, s, deploy.PlacesOptions{}, nil)
			active, failed := places.Active(context.Background(), tt.application, tt.group)
			// Where the application or group does not exist, CodeDeploy
			// answers ApplicationDoesNotExist or DeploymentGroupDoesNotExist:
			// nothing active there, not a failure.
			if len(failed) > 0 {
				t.Errorf("failed = %v", failed)
			}
			if len(active) != tt.want {
				t.Fatalf("%d active deployments, want %d: %v", len(active), tt.want, active)
			}
			for i, d := range active {
				if d.Final() || d.Place == (deploy.Place{}) ||
					(tt.application != "" && d.Application != tt.application) || (tt.group != "" && d.Group != tt.group) {
					t.Errorf("listed %s %s/%s %s in %s", d.ID, d.Application, d.Group, d.Status, d.Place)
				}
				if i > 0 && d.CreateTime.After(active[i-1].CreateTime) {
					t.Errorf("%s (%v) after %s (%v): want newest first", d.ID, d.CreateTime, active[i-1].ID, active[i-1].CreateTime)
				}
			}
			if tt.want > 0 && active[0].ID != tt.wantFirst {
				t.Errorf("first = %s, want %s", active[0].ID, tt.wantFirst)
			}

			wantStatuses := []string{"Baking", "Created", "InProgress", "Queued", "Ready"}
			pages, batched := map[deploy.Place]int{}, 0
			for _, c := range s.Calls() {
				p := deploy.Place{Account: "home", Region: c.Region}
				if c.Account == prodAccount {
					p.Account = "prod"
				}
				switch c.Target {
				case fakecodedeploy.OpListDeployments:
					pages[p]++
					statuses := slices.Sorted(slices.Values(c.Statuses))
					if !slices.Equal(statuses, wantStatuses) {
						t.Errorf("%v: includeOnlyStatuses %v, want %v", c, statuses, wantStatuses)
					}
					if filter := strings.Trim(c.Application+"/"+c.Group, "/"); filter != tt.wantListFilter {
						t.Errorf("%v: filter %q, want %q", c, filter, tt.wantListFilter)
					}
				case fakecodedeploy.OpBatchGetDeployments:
					if len(c.IDs) > 25 || c.Result != "ok" {
						t.Errorf("%v: %d IDs, result %s", c, len(c.IDs), c.Result)
					}
					batched += len(c.IDs)
				default:
					t.Errorf("unexpected call %v", c)
				}
			}
			for _, p := range allFour {
				if pages[p] == 0 {
					t.Errorf("no ListDeployments in %s", p)
				}
			}
			if tt.wantListFilter == "checkout/production" && (pages[homeEast] != 3 || batched != 30) {
				t.Errorf("home/us-east-1: %d pages listed and %d IDs read, want 3 pages of 10 and 30 IDs in batches of at most 25", pages[homeEast], batched)
			}
		})
	}
}

// TestPlaces_Stop: a stop goes through the requester's own client when the
// place has StopsFor, through Stops otherwise.
func TestPlaces_Stop(t *testing.T) {
	tests := []struct {
		name     string
		stopsFor bool
		user     string
		wantKey  string
		wantSess string
	}{
		{name: "per-user client", stopsFor: true, user: "U0ALICE", wantKey: "AKIAPRODU0ALICE", wantSess: "stopdeploy-U0ALICE"},
		{name: "no user: the place's Stops", stopsFor: true, user: "", wantKey: prodKey},
		{name: "no StopsFor", user: "U0ALICE", wantKey: prodKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t)
			put(s, prodWest, fakecodedeploy.Deployment{ID: "d-STOPME001", Application: "billing", Group: "live", StopStatus: "Succeeded"})
			var stopsFor func(deploy.Place, string) deploy.StopAPI
			var asked []string
			if tt.stopsFor {
				stopsFor = func(p deploy.Place, user string) deploy.StopAPI {
					asked = append(asked, p.String()+" "+user)
					key := "AKIAPROD" + user
					s.RegisterKey(key, fakecodedeploy.Principal{Account: accountOf(p), SessionName: "stopdeploy-" + user})
					return realClient(s, key, p.Region)
				}
			}
			places := newPlaces(t, s, deploy.PlacesOptions{}, stopsFor)
			got, err := places.Stop(context.Background(), prodWest, "d-STOPME001", true, tt.user)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != "Succeeded" {
				t.Errorf("Stop = %+v", got)
			}
			calls := s.Calls()
			if len(calls) != 1 || calls[0].Target != fakecodedeploy.OpStopDeployment || calls[0].AccessKeyID != tt.wantKey ||
				calls[0].SessionName != tt.wantSess || calls[0].Account != prodAccount || calls[0].Region != "eu-west-1" {
				t.Errorf("calls = %v (key %s, session %q), want one StopDeployment in prod/eu-west-1 signed with %s, session %q",
					calls, calls[0].AccessKeyID, calls[0].SessionName, tt.wantKey, tt.wantSess)
			}
			if tt.stopsFor && tt.user != "" && !slices.Equal(asked, []string{"prod/eu-west-1 " + tt.user}) {
				t.Errorf("StopsFor asked %v", asked)
			}
		})
	}
}

func TestNewPlaces_Refuses(t *testing.T) {
	s := newFake(t)
	c := realClient(s, "AKIAHOMEBOT", "us-east-1")
	tests := map[string][]deploy.PlaceAPI{
		"no places": nil,
		"twice":     {{Place: homeEast, Reads: c, Stops: c}, {Place: homeEast, Reads: c, Stops: c}},
		"no region": {{Place: deploy.Place{Account: "home"}, Reads: c, Stops: c}},
		"no client": {{Place: homeEast, Reads: c}},
	}
	for name, apis := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := deploy.NewPlaces(apis, deploy.PlacesOptions{}); err == nil {
				t.Error("NewPlaces accepted it")
			}
		})
	}
	places, err := deploy.NewPlaces([]deploy.PlaceAPI{{Place: homeWest, Reads: c, Stops: c}, {Place: homeEast, Reads: c, Stops: c}}, deploy.PlacesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := places.Places(); !slices.Equal(got, []deploy.Place{homeWest, homeEast}) {
		t.Errorf("Places() = %v", got)
	}
}
