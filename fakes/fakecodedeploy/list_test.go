package fakecodedeploy

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
)

// seedList puts deployments into several places; in the default place,
// newest first: STAGE0001, PROD00003, PROD00004 (same time, ID order),
// PROD00002, PROD00001, NOAPP0001.
func seedList(t *testing.T, pageSize int) *Server {
	t.Helper()
	s := newServer(t, Options{ListPageSize: pageSize})
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for _, d := range []Deployment{
		{ID: "d-NOAPP0001", CreateTime: at(0)},
		{ID: "d-PROD00001", Application: "shop", Group: "prod", CreateTime: at(1), Status: StatusInProgress},
		{ID: "d-PROD00002", Application: "shop", Group: "prod", CreateTime: at(2), Status: StatusSucceeded},
		{ID: "d-PROD00004", Application: "shop", Group: "prod", CreateTime: at(3), Status: StatusInProgress},
		{ID: "d-PROD00003", Application: "shop", Group: "prod", CreateTime: at(3), Status: StatusStopped},
		{ID: "d-STAGE0001", Application: "shop", Group: "staging", CreateTime: at(4), Status: StatusReady},
		{ID: "d-WEST00001", Region: "eu-west-1", Application: "shop", Group: "prod", CreateTime: at(5)},
		{ID: "d-OTHER0001", Account: prodAccount, Application: "shop", Group: "prod", CreateTime: at(5)},
	} {
		s.Put(d)
	}
	s.AddGroup("", "", "shop", "empty")
	return s
}

func TestListDeployments(t *testing.T) {
	at := func(m int) *time.Time { return aws.Time(t0.Add(time.Duration(m) * time.Minute)) }
	cases := []struct {
		name     string
		in       codedeploy.ListDeploymentsInput
		as       signer
		want     string // IDs over all pages, or the error code
		wantPage int    // pages fetched
	}{
		{"whole place, newest first", codedeploy.ListDeploymentsInput{}, signer{},
			"d-STAGE0001 d-PROD00003 d-PROD00004 d-PROD00002 d-PROD00001 d-NOAPP0001", 3},
		{"one group", codedeploy.ListDeploymentsInput{ApplicationName: aws.String("shop"), DeploymentGroupName: aws.String("prod")}, signer{},
			"d-PROD00003 d-PROD00004 d-PROD00002 d-PROD00001", 2},
		{"statuses", codedeploy.ListDeploymentsInput{ApplicationName: aws.String("shop"), DeploymentGroupName: aws.String("prod"),
			IncludeOnlyStatuses: []types.DeploymentStatus{types.DeploymentStatusInProgress, types.DeploymentStatusSucceeded}}, signer{},
			"d-PROD00004 d-PROD00002 d-PROD00001", 2},
		{"create time range is inclusive", codedeploy.ListDeploymentsInput{CreateTimeRange: &types.TimeRange{Start: at(2), End: at(3)}}, signer{},
			"d-PROD00003 d-PROD00004 d-PROD00002", 2},
		{"open-ended time range", codedeploy.ListDeploymentsInput{CreateTimeRange: &types.TimeRange{Start: at(4)}}, signer{}, "d-STAGE0001", 1},
		{"group without deployments", codedeploy.ListDeploymentsInput{ApplicationName: aws.String("shop"), DeploymentGroupName: aws.String("empty")}, signer{}, "", 1},
		{"external ID matches nothing", codedeploy.ListDeploymentsInput{ExternalId: aws.String("arn:aws:cloudformation:x")}, signer{}, "", 1},
		{"other region", codedeploy.ListDeploymentsInput{}, signer{region: "eu-west-1"}, "d-WEST00001", 1},
		{"other account", codedeploy.ListDeploymentsInput{ApplicationName: aws.String("shop"), DeploymentGroupName: aws.String("prod")}, prodSigner, "d-OTHER0001", 1},
		{"application only", codedeploy.ListDeploymentsInput{ApplicationName: aws.String("shop")}, signer{}, "DeploymentGroupNameRequiredException", 1},
		{"group only", codedeploy.ListDeploymentsInput{DeploymentGroupName: aws.String("prod")}, signer{}, "ApplicationNameRequiredException", 1},
		{"unknown application", codedeploy.ListDeploymentsInput{ApplicationName: aws.String("shoe"), DeploymentGroupName: aws.String("prod")}, signer{}, "ApplicationDoesNotExistException", 1},
		{"unknown group", codedeploy.ListDeploymentsInput{ApplicationName: aws.String("shop"), DeploymentGroupName: aws.String("qa")}, signer{}, "DeploymentGroupDoesNotExistException", 1},
		{"group of another region", codedeploy.ListDeploymentsInput{ApplicationName: aws.String("shop"), DeploymentGroupName: aws.String("staging")}, signer{region: "eu-west-1"}, "DeploymentGroupDoesNotExistException", 1},
		{"unknown status", codedeploy.ListDeploymentsInput{IncludeOnlyStatuses: []types.DeploymentStatus{"Running"}}, signer{}, "InvalidDeploymentStatusException", 1},
		{"reversed time range", codedeploy.ListDeploymentsInput{CreateTimeRange: &types.TimeRange{Start: at(3), End: at(2)}}, signer{}, "InvalidTimeRangeException", 1},
		{"made-up token", codedeploy.ListDeploymentsInput{NextToken: aws.String("AAAA")}, signer{}, "InvalidNextTokenException", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := seedList(t, 2)
			registerProd(s)
			p := codedeploy.NewListDeploymentsPaginator(newClientAs(t, s, tc.as, oneAttempt), &tc.in)
			var ids []string
			pages := 0
			for p.HasMorePages() {
				pages++
				out, err := p.NextPage(ctxT(t))
				if err != nil {
					code, msg := apiErr(err)
					ids = []string{code}
					if msg == "" {
						t.Errorf("%s without a message", code)
					}
					break
				}
				if len(out.Deployments) > 2 || (out.NextToken != nil && len(out.Deployments) != 2) {
					t.Errorf("page %d: %d IDs, nextToken %v", pages, len(out.Deployments), out.NextToken != nil)
				}
				ids = append(ids, out.Deployments...)
			}
			if got := strings.Join(ids, " "); got != tc.want || pages != tc.wantPage {
				t.Errorf("got %q in %d pages, want %q in %d", got, pages, tc.want, tc.wantPage)
			}
		})
	}
}

func TestListDeploymentsTokens(t *testing.T) {
	s := seedList(t, 2)
	c := newClient(t, s, oneAttempt)
	group := func(token *string) *codedeploy.ListDeploymentsInput {
		return &codedeploy.ListDeploymentsInput{ApplicationName: aws.String("shop"), DeploymentGroupName: aws.String("prod"),
			IncludeOnlyStatuses: []types.DeploymentStatus{types.DeploymentStatusInProgress, types.DeploymentStatusStopped, types.DeploymentStatusSucceeded},
			NextToken:           token}
	}
	first, err := c.ListDeployments(ctxT(t), group(nil))
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %v, %v", first, err)
	}
	// A newer deployment does not shift the next page.
	s.Put(Deployment{ID: "d-PROD00009", Application: "shop", Group: "prod", CreateTime: t0.Add(time.Hour)})
	second, err := c.ListDeployments(ctxT(t), group(first.NextToken))
	if err != nil || strings.Join(second.Deployments, " ") != "d-PROD00002 d-PROD00001" || second.NextToken != nil {
		t.Fatalf("second page: %v, %v", second, err)
	}
	// The token belongs to its query: another filter, place or a made-up
	// token is InvalidNextTokenException.
	for name, in := range map[string]*codedeploy.ListDeploymentsInput{
		"other statuses": {ApplicationName: aws.String("shop"), DeploymentGroupName: aws.String("prod"), NextToken: first.NextToken},
		"no filter":      {NextToken: first.NextToken},
		"made up":        group(aws.String(*first.NextToken + "x")),
	} {
		if _, err := c.ListDeployments(ctxT(t), in); !isErr[*types.InvalidNextTokenException](err) {
			t.Errorf("%s: %v, want InvalidNextTokenException", name, err)
		}
	}
	if _, err := newClientAs(t, s, signer{region: "eu-west-1"}, oneAttempt).ListDeployments(ctxT(t), group(first.NextToken)); !isErr[*types.InvalidNextTokenException](err) {
		t.Errorf("other region: %v", err)
	}

	var got []string
	for _, c := range s.Calls() {
		got = append(got, c.String())
	}
	want := []string{
		"ListDeployments shop/prod [InProgress,Stopped,Succeeded]",
		"ListDeployments shop/prod [InProgress,Stopped,Succeeded] page 2",
	}
	if len(got) < 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("calls = %q, want first %q", got, want)
	}
	for _, c := range s.Calls()[2:] {
		if c.Page != 0 || !strings.HasSuffix(c.String(), " page ? => InvalidNextTokenException") {
			t.Errorf("call %q page %d", c.String(), c.Page)
		}
	}
}

func TestListDeploymentsDefaultPageSize(t *testing.T) {
	s := newServer(t, Options{})
	for i := range DefaultListPageSize + 1 {
		s.Put(Deployment{Application: "a", Group: "g", CreateTime: t0.Add(time.Duration(i) * time.Second)})
	}
	out, err := newClient(t, s).ListDeployments(ctxT(t), &codedeploy.ListDeploymentsInput{ApplicationName: aws.String("a"), DeploymentGroupName: aws.String("g")})
	if err != nil || len(out.Deployments) != DefaultListPageSize || out.NextToken == nil {
		t.Fatalf("%v, %v", out, err)
	}
}

func TestBatchGetDeployments(t *testing.T) {
	many := func(n int) []string {
		var ids []string
		for i := range n {
			ids = append(ids, fmt.Sprintf("d-MANY%05d", i))
		}
		return ids
	}
	cases := []struct {
		name string
		ids  []string
		as   signer
		want string // IDs answered, or the error code
	}{
		{"missing IDs are left out", []string{"d-PROD00001", "d-MISSING01", "d-STAGE0001"}, signer{}, "d-PROD00001 d-STAGE0001"},
		{"repeated ID answered once", []string{"d-PROD00002", "d-PROD00002"}, signer{}, "d-PROD00002"},
		{"only this place", []string{"d-WEST00001", "d-OTHER0001", "d-PROD00001"}, signer{region: "eu-west-1"}, "d-WEST00001"},
		{"none known", []string{"d-MISSING01"}, signer{}, ""},
		{"25 is the limit", many(25), signer{}, ""},
		{"26 is too many", many(26), signer{}, "BatchLimitExceededException"},
		{"empty list", []string{}, signer{}, "DeploymentIdRequiredException"},
		{"malformed ID", []string{"d-PROD00001", "d-short"}, signer{}, "InvalidDeploymentIdException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := seedList(t, 2)
			out, err := newClientAs(t, s, tc.as, oneAttempt).BatchGetDeployments(ctxT(t), &codedeploy.BatchGetDeploymentsInput{DeploymentIds: tc.ids})
			var got []string
			if err != nil {
				code, _ := apiErr(err)
				got = []string{code}
			} else {
				for _, info := range out.DeploymentsInfo {
					got = append(got, aws.ToString(info.DeploymentId))
				}
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if calls := s.Calls(); len(calls) != 1 || strings.Join(calls[0].IDs, ",") != strings.Join(tc.ids, ",") {
				t.Errorf("calls = %v", calls)
			}
		})
	}
	_, err := newClient(t, seedList(t, 2)).BatchGetDeployments(ctxT(t), &codedeploy.BatchGetDeploymentsInput{DeploymentIds: many(26)})
	if !isErr[*types.BatchLimitExceededException](err) {
		t.Errorf("26 IDs: %v, want a typed BatchLimitExceededException", err)
	}
}

func TestBatchGetDeploymentsIsNotAPoll(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s)
	id := s.Put(Deployment{Application: "shop", Group: "prod", StopRequestedAt: t0, PollsUntilFinal: 1,
		Revision: &Revision{Repository: "acme/shop", CommitID: "abc"}, Description: "release 9", StatusMessages: []string{"m"}})
	other := s.Put(Deployment{FinishAfterPolls: 1})
	batch := func() []types.DeploymentInfo {
		t.Helper()
		out, err := c.BatchGetDeployments(ctxT(t), &codedeploy.BatchGetDeploymentsInput{DeploymentIds: []string{id, other}})
		if err != nil || len(out.DeploymentsInfo) != 2 {
			t.Fatalf("%v, %v", out, err)
		}
		return out.DeploymentsInfo
	}
	for range 3 {
		for _, info := range batch() {
			if info.Status != types.DeploymentStatusInProgress {
				t.Fatalf("%s = %s after batch reads", aws.ToString(info.DeploymentId), info.Status)
			}
		}
	}
	// Same wire shape as GetDeployment (whose read is the first poll).
	want := get(t, c, id)
	if got := batch()[0]; !reflect.DeepEqual(got, *want) {
		t.Errorf("BatchGetDeployments info\n%+v\nGetDeployment info\n%+v", got, *want)
	}
	if st := get(t, c, id).Status; st != types.DeploymentStatusStopped {
		t.Errorf("second GetDeployment = %s", st)
	}
	if n := s.Count(OpBatchGetDeployments, other); n != 4 {
		t.Errorf("Count(BatchGetDeployments, id) = %d, want 4", n)
	}
	if c := s.Calls()[0]; c.String() != "BatchGetDeployments "+id+","+other {
		t.Errorf("String() = %q", c.String())
	}
}

func TestUpdateMakesItsGroupExist(t *testing.T) {
	s := newServer(t, Options{})
	id := s.Put(Deployment{})
	c := newClient(t, s, oneAttempt)
	in := &codedeploy.ListDeploymentsInput{ApplicationName: aws.String("shop"), DeploymentGroupName: aws.String("prod")}
	if _, err := c.ListDeployments(ctxT(t), in); !isErr[*types.ApplicationDoesNotExistException](err) {
		t.Fatalf("before Update: %v", err)
	}
	s.Update(id, func(d *Deployment) { d.Application, d.Group = "shop", "prod" })
	if out, err := c.ListDeployments(ctxT(t), in); err != nil || len(out.Deployments) != 1 || out.Deployments[0] != id {
		t.Errorf("after Update: %v, %v", out, err)
	}
}
