package fakecodedeploy

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
)

func TestGetDeploymentDecodesEveryField(t *testing.T) {
	cases := []struct {
		name string
		d    Deployment
		want types.DeploymentInfo
	}{
		{
			name: "running, absent fields omitted",
			d: Deployment{
				ID: "d-RUNNING01", Application: "shop", Group: "prod", Status: StatusInProgress,
				Creator: "user", ComputePlatform: "Server", DeploymentConfigName: "CodeDeployDefault.HalfAtATime",
				CreateTime: t0, StartTime: t0.Add(1500 * time.Millisecond),
				Overview: Overview{Pending: 1, InProgress: 2, Succeeded: 3, Failed: 4, Skipped: 5, Ready: 6},
			},
			want: types.DeploymentInfo{
				DeploymentId: aws.String("d-RUNNING01"), ApplicationName: aws.String("shop"), DeploymentGroupName: aws.String("prod"),
				Status: types.DeploymentStatusInProgress, Creator: types.DeploymentCreatorUser, ComputePlatform: types.ComputePlatformServer,
				DeploymentConfigName: aws.String("CodeDeployDefault.HalfAtATime"),
				CreateTime:           aws.Time(t0), StartTime: aws.Time(t0.Add(1500 * time.Millisecond)),
				DeploymentOverview: &types.DeploymentOverview{Pending: 1, InProgress: 2, Succeeded: 3, Failed: 4, Skipped: 5, Ready: 6},
			},
		},
		{
			name: "stopped, rollback and error info",
			d: Deployment{
				ID: "d-STOPPED01", Application: "fn", Group: "live", Status: StatusStopped,
				Creator: "autoscaling", ComputePlatform: "Lambda", DeploymentConfigName: "CodeDeployDefault.LambdaCanary10Percent5Minutes",
				Description: "release 42",
				// sub-millisecond precision is dropped on the wire
				CreateTime: t0.Add(456 * time.Microsecond), StartTime: t0.Add(time.Second), CompleteTime: t0.Add(time.Minute + 7*time.Millisecond),
				Overview:             Overview{Failed: 1},
				RollbackDeploymentID: "d-ROLLBACK1", RollbackMessage: "rolled back", RollbackTriggeringDeploymentID: "d-TRIGGER01",
				ErrorCode: "HEALTH_CONSTRAINTS", ErrorMessage: "too many failed instances",
				StatusMessages: []string{"one", "two"},
			},
			want: types.DeploymentInfo{
				DeploymentId: aws.String("d-STOPPED01"), ApplicationName: aws.String("fn"), DeploymentGroupName: aws.String("live"),
				Status: types.DeploymentStatusStopped, Creator: types.DeploymentCreatorAutoscaling, ComputePlatform: types.ComputePlatformLambda,
				DeploymentConfigName: aws.String("CodeDeployDefault.LambdaCanary10Percent5Minutes"),
				Description:          aws.String("release 42"),
				CreateTime:           aws.Time(t0), StartTime: aws.Time(t0.Add(time.Second)), CompleteTime: aws.Time(t0.Add(time.Minute + 7*time.Millisecond)),
				DeploymentOverview: &types.DeploymentOverview{Failed: 1},
				RollbackInfo: &types.RollbackInfo{RollbackDeploymentId: aws.String("d-ROLLBACK1"), RollbackMessage: aws.String("rolled back"),
					RollbackTriggeringDeploymentId: aws.String("d-TRIGGER01")},
				ErrorInformation:         &types.ErrorInformation{Code: types.ErrorCodeHealthConstraints, Message: aws.String("too many failed instances")},
				DeploymentStatusMessages: []string{"one", "two"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{})
			s.Put(tc.d)
			got := get(t, newClient(t, s), tc.d.ID)
			w := tc.want
			eqs := func(field string, g, w *string) {
				t.Helper()
				if aws.ToString(g) != aws.ToString(w) || (g == nil) != (w == nil) {
					t.Errorf("%s = %v, want %v", field, aws.ToString(g), aws.ToString(w))
				}
			}
			eqt := func(field string, g, w *time.Time) {
				t.Helper()
				if (g == nil) != (w == nil) || (g != nil && !g.Equal(*w)) {
					t.Errorf("%s = %v, want %v", field, g, w)
				}
			}
			eqs("DeploymentId", got.DeploymentId, w.DeploymentId)
			eqs("ApplicationName", got.ApplicationName, w.ApplicationName)
			eqs("DeploymentGroupName", got.DeploymentGroupName, w.DeploymentGroupName)
			eqs("DeploymentConfigName", got.DeploymentConfigName, w.DeploymentConfigName)
			eqs("Description", got.Description, w.Description)
			if got.Status != w.Status || got.Creator != w.Creator || got.ComputePlatform != w.ComputePlatform {
				t.Errorf("status/creator/platform = %s/%s/%s, want %s/%s/%s", got.Status, got.Creator, got.ComputePlatform, w.Status, w.Creator, w.ComputePlatform)
			}
			eqt("CreateTime", got.CreateTime, w.CreateTime)
			eqt("StartTime", got.StartTime, w.StartTime)
			eqt("CompleteTime", got.CompleteTime, w.CompleteTime)
			if got.DeploymentOverview == nil || *got.DeploymentOverview != *w.DeploymentOverview {
				t.Errorf("DeploymentOverview = %+v, want %+v", got.DeploymentOverview, w.DeploymentOverview)
			}
			if (got.RollbackInfo == nil) != (w.RollbackInfo == nil) {
				t.Fatalf("RollbackInfo = %+v, want %+v", got.RollbackInfo, w.RollbackInfo)
			}
			if w.RollbackInfo != nil {
				eqs("RollbackDeploymentId", got.RollbackInfo.RollbackDeploymentId, w.RollbackInfo.RollbackDeploymentId)
				eqs("RollbackMessage", got.RollbackInfo.RollbackMessage, w.RollbackInfo.RollbackMessage)
				eqs("RollbackTriggeringDeploymentId", got.RollbackInfo.RollbackTriggeringDeploymentId, w.RollbackInfo.RollbackTriggeringDeploymentId)
			}
			if (got.ErrorInformation == nil) != (w.ErrorInformation == nil) {
				t.Fatalf("ErrorInformation = %+v, want %+v", got.ErrorInformation, w.ErrorInformation)
			}
			if w.ErrorInformation != nil {
				if got.ErrorInformation.Code != w.ErrorInformation.Code {
					t.Errorf("ErrorInformation.Code = %s", got.ErrorInformation.Code)
				}
				eqs("ErrorInformation.Message", got.ErrorInformation.Message, w.ErrorInformation.Message)
			}
			if strings.Join(got.DeploymentStatusMessages, "|") != strings.Join(w.DeploymentStatusMessages, "|") {
				t.Errorf("DeploymentStatusMessages = %q", got.DeploymentStatusMessages)
			}
		})
	}
}

func TestStopDeploymentRecordsAutoRollback(t *testing.T) {
	cases := []struct {
		name     string
		rollback *bool
		wantStr  string
	}{
		{"true", aws.Bool(true), "StopDeployment d-LGUMS25CC autoRollbackEnabled=true"},
		{"false", aws.Bool(false), "StopDeployment d-LGUMS25CC autoRollbackEnabled=false"},
		{"omitted", nil, "StopDeployment d-LGUMS25CC"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{})
			s.Put(Deployment{ID: "d-LGUMS25CC", Application: "a", Group: "g"})
			out := stop(t, newClient(t, s), "d-LGUMS25CC", tc.rollback)
			if out.Status != types.StopStatusPending || aws.ToString(out.StatusMessage) != MessageStopPending {
				t.Errorf("stop = %s %q", out.Status, aws.ToString(out.StatusMessage))
			}
			calls := s.Calls()
			if len(calls) != 1 {
				t.Fatalf("calls = %v", calls)
			}
			c := calls[0]
			if (c.AutoRollbackEnabled == nil) != (tc.rollback == nil) || (c.AutoRollbackEnabled != nil && *c.AutoRollbackEnabled != *tc.rollback) {
				t.Errorf("AutoRollbackEnabled = %v, want %v", c.AutoRollbackEnabled, tc.rollback)
			}
			if c.String() != tc.wantStr || c.Result != "ok" || c.Target != OpStopDeployment {
				t.Errorf("call = %q (%s), want %q", c.String(), c.Result, tc.wantStr)
			}
			d, _ := s.Deployment("d-LGUMS25CC")
			if d.StopRequestedAt.IsZero() || d.StopAutoRollback != (tc.rollback != nil && *tc.rollback) {
				t.Errorf("StopRequestedAt=%v StopAutoRollback=%v", d.StopRequestedAt, d.StopAutoRollback)
			}
		})
	}
}

func TestStopProgression(t *testing.T) {
	cases := []struct {
		name     string
		polls    int // PollsUntilFinal
		reads    int // reads that still show InProgress
		rollback bool
	}{
		{"default one poll, rollback", 0, 1, true},
		{"two polls, rollback", 2, 2, true},
		{"no polls, no rollback", -1, 0, false},
		{"three polls, no rollback", 3, 3, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{})
			c := newClient(t, s)
			const id = "d-ABCDEF123"
			s.Put(Deployment{ID: id, Application: "shop", Group: "prod", PollsUntilFinal: tc.polls,
				Overview: Overview{Pending: 2, InProgress: 3, Succeeded: 5}})

			out := stop(t, c, id, aws.Bool(tc.rollback))
			if out.Status != types.StopStatusPending {
				t.Fatalf("stop status = %s", out.Status)
			}
			for i := range tc.reads {
				if info := get(t, c, id); info.Status != types.DeploymentStatusInProgress || info.CompleteTime != nil {
					t.Fatalf("read %d: status %s completeTime %v, want InProgress", i, info.Status, info.CompleteTime)
				}
				// A repeated stop while pending is harmless.
				if again := stop(t, c, id, aws.Bool(tc.rollback)); again.Status != types.StopStatusPending {
					t.Fatalf("repeated stop = %s", again.Status)
				}
			}
			info := get(t, c, id)
			if info.Status != types.DeploymentStatusStopped || info.CompleteTime == nil {
				t.Fatalf("after %d reads: status %s completeTime %v, want Stopped", tc.reads, info.Status, info.CompleteTime)
			}
			if o := *info.DeploymentOverview; o.InProgress != 0 || o.Pending != 0 || o.Failed != 3 || o.Skipped != 2 || o.Succeeded != 5 {
				t.Errorf("overview = %+v", o)
			}
			_, err := c.StopDeployment(ctxT(t), &codedeploy.StopDeploymentInput{DeploymentId: aws.String(id)})
			if !isErr[*types.DeploymentAlreadyCompletedException](err) {
				t.Errorf("stop after Stopped: %v, want DeploymentAlreadyCompletedException", err)
			}

			if !tc.rollback {
				if info.RollbackInfo != nil || len(s.Deployments()) != 1 {
					t.Errorf("unexpected rollback: %+v, %d deployments", info.RollbackInfo, len(s.Deployments()))
				}
				return
			}
			if info.RollbackInfo == nil || !ValidID(aws.ToString(info.RollbackInfo.RollbackDeploymentId)) {
				t.Fatalf("RollbackInfo = %+v", info.RollbackInfo)
			}
			rbID := aws.ToString(info.RollbackInfo.RollbackDeploymentId)
			if msg := aws.ToString(info.RollbackInfo.RollbackMessage); !strings.Contains(msg, rbID) {
				t.Errorf("RollbackMessage = %q", msg)
			}
			for i := range tc.reads {
				rb := get(t, c, rbID)
				if rb.Status != types.DeploymentStatusInProgress || rb.Creator != types.DeploymentCreatorCodeDeployRollback ||
					aws.ToString(rb.RollbackInfo.RollbackTriggeringDeploymentId) != id ||
					aws.ToString(rb.ApplicationName) != "shop" || aws.ToString(rb.DeploymentGroupName) != "prod" {
					t.Fatalf("rollback read %d = %s %s %+v", i, rb.Status, rb.Creator, rb.RollbackInfo)
				}
			}
			if rb := get(t, c, rbID); rb.Status != types.DeploymentStatusSucceeded || rb.CompleteTime == nil {
				t.Errorf("rollback final = %s, want Succeeded", rb.Status)
			}
			if n := len(s.Deployments()); n != 2 {
				t.Errorf("%d deployments, want 2", n)
			}
		})
	}
}

func TestStopStatusImmediate(t *testing.T) {
	cases := []struct {
		status, msg string
		want        types.StopStatus
	}{
		{StopSucceeded, MessageStopSucceeded, types.StopStatusSucceeded},
		{StopForced, MessageStopForced, types.StopStatus("Forced")},
	}
	for _, tc := range cases {
		t.Run(tc.status, func(t *testing.T) {
			s := newServer(t, Options{})
			c := newClient(t, s)
			id := s.Put(Deployment{Application: "a", Group: "g", StopStatus: tc.status})
			out := stop(t, c, id, aws.Bool(true))
			if out.Status != tc.want || aws.ToString(out.StatusMessage) != tc.msg {
				t.Errorf("stop = %q %q", out.Status, aws.ToString(out.StatusMessage))
			}
			info := get(t, c, id)
			if info.Status != types.DeploymentStatusStopped || info.RollbackInfo == nil {
				t.Fatalf("after stop: %s %+v", info.Status, info.RollbackInfo)
			}
		})
	}
	t.Run("custom message", func(t *testing.T) {
		s := newServer(t, Options{})
		id := s.Put(Deployment{StopMessage: "custom"})
		if out := stop(t, newClient(t, s), id, nil); aws.ToString(out.StatusMessage) != "custom" {
			t.Errorf("message = %q", aws.ToString(out.StatusMessage))
		}
	})
}

func TestStopTakesAndFinishAfter(t *testing.T) {
	clk := &clock{t: t0}
	s := newServer(t, Options{Now: clk.Now})
	c := newClient(t, s)
	id := s.Put(Deployment{Application: "a", Group: "g", StopTakes: 30 * time.Second})
	stop(t, c, id, aws.Bool(true))
	for range 3 { // reads do not advance a time-based stop
		if info := get(t, c, id); info.Status != types.DeploymentStatusInProgress {
			t.Fatalf("status = %s before StopTakes", info.Status)
		}
	}
	clk.Add(30 * time.Second)
	info := get(t, c, id)
	if info.Status != types.DeploymentStatusStopped || !info.CompleteTime.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("status = %s completeTime %v", info.Status, info.CompleteTime)
	}
	rbID := aws.ToString(info.RollbackInfo.RollbackDeploymentId)
	if rb, ok := s.Deployment(rbID); !ok || rb.Status != StatusInProgress || rb.FinishAfter != 30*time.Second {
		t.Fatalf("rollback = %+v", rb)
	}
	clk.Add(30 * time.Second)
	// Deployment applies due transitions lazily, without a wire read.
	if rb, _ := s.Deployment(rbID); rb.Status != StatusSucceeded || !rb.CompleteTime.Equal(t0.Add(time.Minute)) {
		t.Errorf("rollback after FinishAfter = %s %v", rb.Status, rb.CompleteTime)
	}
}

func TestTickerAppliesTransitionsAndNotifies(t *testing.T) {
	clk := &clock{t: t0}
	s := newServer(t, Options{Now: clk.Now, Tick: time.Millisecond})
	id := s.Put(Deployment{FinishAfter: time.Minute, FinishStatus: StatusFailed, Overview: Overview{InProgress: 1, Pending: 1}})
	ch, cancel := s.Subscribe()
	defer cancel()
	clk.Add(time.Minute)
	select {
	case <-ch: // only the ticker can change state now
	case <-ctxT(t).Done():
		t.Fatal("no notification from the ticker")
	}
	d, _ := s.Deployment(id)
	if d.Status != StatusFailed || d.Overview != (Overview{Failed: 1, Skipped: 1}) {
		t.Errorf("after tick: %s %+v", d.Status, d.Overview)
	}
}

func TestFinishAfterPolls(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s)
	id := s.Put(Deployment{FinishAfterPolls: 2, Overview: Overview{InProgress: 2}})
	for range 2 {
		if st := get(t, c, id).Status; st != types.DeploymentStatusInProgress {
			t.Fatalf("status = %s", st)
		}
	}
	info := get(t, c, id)
	if info.Status != types.DeploymentStatusSucceeded || info.DeploymentOverview.Succeeded != 2 {
		t.Errorf("final = %s %+v", info.Status, info.DeploymentOverview)
	}
}

func TestPutDefaultsAndAccessors(t *testing.T) {
	clk := &clock{t: t0}
	s := newServer(t, Options{Now: clk.Now})
	id := s.Put(Deployment{Status: StatusQueued})
	if !ValidID(id) {
		t.Fatalf("generated id %q", id)
	}
	d, ok := s.Deployment(id)
	if !ok || d.Creator != "user" || d.ComputePlatform != "Server" || d.DeploymentConfigName != "CodeDeployDefault.OneAtATime" ||
		!d.CreateTime.Equal(t0) || !d.StartTime.IsZero() || !d.CompleteTime.IsZero() {
		t.Errorf("defaults = %+v", d)
	}
	clk.Add(time.Second)
	ecs := s.Put(Deployment{ComputePlatform: "ECS", Status: StatusSucceeded, CreateTime: t0.Add(-time.Hour)})
	e, _ := s.Deployment(ecs)
	if e.DeploymentConfigName != "CodeDeployDefault.ECSAllAtOnce" || !e.StartTime.Equal(t0.Add(-time.Hour)) || !e.CompleteTime.Equal(t0.Add(time.Second)) {
		t.Errorf("ECS defaults = %+v", e)
	}
	if all := s.Deployments(); len(all) != 2 || all[0].ID != ecs || all[1].ID != id {
		t.Errorf("Deployments order = %v", all)
	}
	msgs := []string{"a"}
	s.Put(Deployment{ID: "d-COPYCHK01", StatusMessages: msgs})
	msgs[0] = "mutated"
	if !s.Update("d-COPYCHK01", func(d *Deployment) { d.Status = StatusBaking; d.ID = "d-OTHER0001" }) {
		t.Fatal("Update of a stored deployment returned false")
	}
	if got, _ := s.Deployment("d-COPYCHK01"); got.Status != StatusBaking || got.StatusMessages[0] != "a" {
		t.Errorf("after Update: %+v", got)
	}
	if s.Update("d-MISSING01", func(*Deployment) {}) {
		t.Error("Update of a missing deployment returned true")
	}
	for range 100 {
		if id := RandomID(); !ValidID(id) {
			t.Fatalf("RandomID() = %q", id)
		}
	}
	c := Call{Target: OpGetDeployment, Result: "ThrottlingException"}
	if c.String() != "GetDeployment (no deploymentId) => ThrottlingException" {
		t.Errorf("String() = %q", c.String())
	}
}

func TestStopEmpty(t *testing.T) {
	cases := []struct {
		name            string
		status, message string
		wantBody        string
		wantStatus      types.StopStatus
		wantMessage     string
	}{
		{"no status", StopEmpty, "", `{"statusMessage":"` + MessageStopPending + `"}`, "", MessageStopPending},
		{"no status, custom message", StopEmpty, "stopping", `{"statusMessage":"stopping"}`, "", "stopping"},
		{"neither", StopEmpty, StopEmpty, `{}`, "", ""},
		{"no message", "", StopEmpty, `{"status":"Pending"}`, types.StopStatusPending, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{})
			s.Put(Deployment{ID: "d-EMPTYST01", StopStatus: tc.status, StopMessage: tc.message})
			if status, raw := rawCall(t, s, OpStopDeployment, `{"deploymentId":"d-EMPTYST01"}`); status != 200 || string(raw) != tc.wantBody {
				t.Errorf("answer %d %s, want %s", status, raw, tc.wantBody)
			}
			c := newClient(t, s)
			// A repeated stop answers the same way; the deployment stops as for Pending.
			out := stop(t, c, "d-EMPTYST01", nil)
			if out.Status != tc.wantStatus || aws.ToString(out.StatusMessage) != tc.wantMessage || (out.StatusMessage == nil) != (tc.wantMessage == "") {
				t.Errorf("SDK sees status %q message %v", out.Status, out.StatusMessage)
			}
			if st := get(t, c, "d-EMPTYST01").Status; st != types.DeploymentStatusInProgress {
				t.Errorf("first read = %s", st)
			}
			if st := get(t, c, "d-EMPTYST01").Status; st != types.DeploymentStatusStopped {
				t.Errorf("second read = %s", st)
			}
		})
	}
}

func TestRevisionOnTheWire(t *testing.T) {
	cases := []struct {
		name string
		rev  *Revision
		want string // the "revision" member
	}{
		{"none", nil, ""},
		{"S3", &Revision{Type: RevisionS3, Bucket: "artifacts", Key: "shop/app.zip", BundleType: "zip", Version: "v3", ETag: "abc123"},
			`{"revisionType":"S3","s3Location":{"bucket":"artifacts","key":"shop/app.zip","bundleType":"zip","version":"v3","eTag":"abc123"}}`},
		{"S3 inferred", &Revision{Bucket: "artifacts", Key: "app.zip"},
			`{"revisionType":"S3","s3Location":{"bucket":"artifacts","key":"app.zip"}}`},
		{"GitHub", &Revision{Type: RevisionGitHub, Repository: "acme/shop", CommitID: "0f1e2d3c"},
			`{"revisionType":"GitHub","gitHubLocation":{"repository":"acme/shop","commitId":"0f1e2d3c"}}`},
		{"String", &Revision{Type: RevisionString, Content: "version: 0.0", SHA256: "e3b0"},
			`{"revisionType":"String","string":{"content":"version: 0.0","sha256":"e3b0"}}`},
		{"AppSpecContent has no content", &Revision{Type: RevisionAppSpecContent, Content: "version: 0.0", SHA256: "e3b0"},
			`{"revisionType":"AppSpecContent","appSpecContent":{"sha256":"e3b0"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{})
			s.Put(Deployment{ID: "d-REVISION1", Revision: tc.rev, PreviousRevision: tc.rev,
				DeploymentConfigName: "CodeDeployDefault.AllAtOnce", Description: "release 7"})
			_, raw := rawCall(t, s, OpGetDeployment, `{"deploymentId":"d-REVISION1"}`)
			var out struct {
				DeploymentInfo map[string]json.RawMessage
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatal(err)
			}
			info := out.DeploymentInfo
			for _, k := range []string{"revision", "previousRevision"} {
				if string(info[k]) != tc.want {
					t.Errorf("%s = %s, want %s", k, info[k], tc.want)
				}
			}
			if string(info["deploymentConfigName"]) != `"CodeDeployDefault.AllAtOnce"` || string(info["description"]) != `"release 7"` {
				t.Errorf("deploymentConfigName %s, description %s", info["deploymentConfigName"], info["description"])
			}
			// The SDK decodes it.
			got := get(t, newClient(t, s), "d-REVISION1")
			if (got.Revision == nil) != (tc.rev == nil) {
				t.Fatalf("SDK revision = %+v", got.Revision)
			}
			if tc.rev != nil && got.Revision.RevisionType == "" {
				t.Errorf("SDK revision type empty: %+v", got.Revision)
			}
		})
	}
}

func TestRollbackDeploysPreviousRevision(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s)
	cur := &Revision{Bucket: "artifacts", Key: "v2.zip", BundleType: "zip"}
	prev := &Revision{Bucket: "artifacts", Key: "v1.zip", BundleType: "zip"}
	id := s.Put(Deployment{Application: "shop", Group: "prod", Revision: cur, PreviousRevision: prev, PollsUntilFinal: -1})
	stop(t, c, id, aws.Bool(true))
	info := get(t, c, id)
	rb := get(t, c, aws.ToString(info.RollbackInfo.RollbackDeploymentId))
	if rb.Revision == nil || aws.ToString(rb.Revision.S3Location.Key) != "v1.zip" ||
		rb.PreviousRevision == nil || aws.ToString(rb.PreviousRevision.S3Location.Key) != "v2.zip" {
		t.Errorf("rollback revision %+v, previous %+v", rb.Revision, rb.PreviousRevision)
	}
	cur.Key = "mutated" // Put copied it
	if d, _ := s.Deployment(id); d.Revision.Key != "v2.zip" {
		t.Errorf("stored revision aliased the caller's: %+v", d.Revision)
	}
}
