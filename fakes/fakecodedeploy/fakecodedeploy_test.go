package fakecodedeploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/smithy-go"
)

// ---- helpers ----

func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, s *Server, fns ...func(*codedeploy.Options)) *codedeploy.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")))
	if err != nil {
		t.Fatal(err)
	}
	fns = append([]func(*codedeploy.Options){func(o *codedeploy.Options) { o.BaseEndpoint = aws.String(s.URL()) }}, fns...)
	return codedeploy.NewFromConfig(cfg, fns...)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func oneAttempt(o *codedeploy.Options) { o.RetryMaxAttempts = 1 }

func get(t *testing.T, c *codedeploy.Client, id string) *types.DeploymentInfo {
	t.Helper()
	out, err := c.GetDeployment(ctxT(t), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetDeployment %s: %v", id, err)
	}
	return out.DeploymentInfo
}

func stop(t *testing.T, c *codedeploy.Client, id string, rollback *bool) *codedeploy.StopDeploymentOutput {
	t.Helper()
	out, err := c.StopDeployment(ctxT(t), &codedeploy.StopDeploymentInput{DeploymentId: aws.String(id), AutoRollbackEnabled: rollback})
	if err != nil {
		t.Fatalf("StopDeployment %s: %v", id, err)
	}
	return out
}

func isErr[T error](err error) bool {
	var e T
	return errors.As(err, &e)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 11, 26, 22, 55, 12, 123_000_000, time.UTC)

// ---- GetDeployment ----

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

// ---- StopDeployment ----

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

// ---- errors ----

func TestErrors(t *testing.T) {
	type op func(ctx context.Context, c *codedeploy.Client, id string) error
	getOp := func(ctx context.Context, c *codedeploy.Client, id string) error {
		_, err := c.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)}, oneAttempt)
		return err
	}
	stopOp := func(ctx context.Context, c *codedeploy.Client, id string) error {
		_, err := c.StopDeployment(ctx, &codedeploy.StopDeploymentInput{DeploymentId: aws.String(id), AutoRollbackEnabled: aws.Bool(true)}, oneAttempt)
		return err
	}
	apiCode := func(code string) func(error) bool {
		return func(err error) bool {
			var ae smithy.APIError
			return errors.As(err, &ae) && ae.ErrorCode() == code && ae.ErrorMessage() != ""
		}
	}
	const known = "d-KNOWN0001"
	cases := []struct {
		name  string
		d     Deployment // stored as known
		op    op
		id    string
		check func(error) bool
	}{
		{"stop completed", Deployment{Status: StatusSucceeded}, stopOp, known, isErr[*types.DeploymentAlreadyCompletedException]},
		{"stop failed", Deployment{Status: StatusFailed}, stopOp, known, isErr[*types.DeploymentAlreadyCompletedException]},
		{"stop unknown", Deployment{}, stopOp, "d-UNKNOWN01", isErr[*types.DeploymentDoesNotExistException]},
		{"get unknown", Deployment{}, getOp, "d-UNKNOWN01", isErr[*types.DeploymentDoesNotExistException]},
		{"stop group missing", Deployment{StopFailure: &Failure{Code: "DeploymentGroupDoesNotExistException"}}, stopOp, known, isErr[*types.DeploymentGroupDoesNotExistException]},
		{"stop empty id", Deployment{}, stopOp, "", isErr[*types.DeploymentIdRequiredException]},
		{"get empty id", Deployment{}, getOp, "", isErr[*types.DeploymentIdRequiredException]},
		{"get malformed id", Deployment{}, getOp, "d-abc", isErr[*types.InvalidDeploymentIdException]},
		{"stop malformed id", Deployment{}, stopOp, "bogus", isErr[*types.InvalidDeploymentIdException]},
		{"stop unsupported", Deployment{StopFailure: &Failure{Code: "UnsupportedActionForDeploymentTypeException", Message: "nope"}}, stopOp, known, isErr[*types.UnsupportedActionForDeploymentTypeException]},
		{"stop throttled", Deployment{StopFailure: &Failure{Code: "ThrottlingException"}}, stopOp, known, apiCode("ThrottlingException")},
		{"get throttled", Deployment{GetFailure: &Failure{Code: "ThrottlingException"}}, getOp, known, apiCode("ThrottlingException")},
		{"stop access denied", Deployment{StopFailure: &Failure{Code: "AccessDeniedException"}}, stopOp, known, apiCode("AccessDeniedException")},
		{"get 500", Deployment{GetFailure: &Failure{Code: Fail500}}, getOp, known, apiCode("InternalFailure")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{})
			tc.d.ID = known
			tc.d.Application, tc.d.Group = "shop", "prod"
			s.Put(tc.d)
			err := tc.op(ctxT(t), newClient(t, s), tc.id)
			if err == nil || !tc.check(err) {
				t.Fatalf("err = %v", err)
			}
			calls := s.Calls()
			if len(calls) != 1 || calls[0].Result == "ok" || calls[0].DeploymentID != tc.id {
				t.Errorf("calls = %v", calls)
			}
		})
	}
}

func TestAccessDeniedMessage(t *testing.T) {
	s := newServer(t, Options{})
	id := s.Put(Deployment{Application: "shop", Group: "prod", StopFailure: &Failure{Code: "AccessDeniedException"}})
	_, err := newClient(t, s).StopDeployment(ctxT(t), &codedeploy.StopDeploymentInput{DeploymentId: aws.String(id)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || !strings.Contains(ae.ErrorMessage(), "codedeploy:StopDeployment") ||
		!strings.Contains(ae.ErrorMessage(), "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:shop/prod") {
		t.Errorf("err = %v", err)
	}
}

func TestRetries(t *testing.T) {
	t.Run("network, default retries", func(t *testing.T) {
		s := newServer(t, Options{})
		id := s.Put(Deployment{StopFailure: &Failure{Code: FailNetwork}})
		_, err := newClient(t, s).StopDeployment(ctxT(t), &codedeploy.StopDeploymentInput{DeploymentId: aws.String(id)})
		if err == nil || isErr[smithy.APIError](err) {
			t.Fatalf("err = %v, want a non-API error", err)
		}
		// The standard retryer makes 3 attempts on connection errors.
		if n := s.Count(OpStopDeployment, id); n != 3 {
			t.Errorf("attempts = %d, want 3", n)
		}
		if d, _ := s.Deployment(id); !d.StopRequestedAt.IsZero() {
			t.Error("a failed stop must not be processed")
		}
	})
	t.Run("network, one attempt", func(t *testing.T) {
		s := newServer(t, Options{})
		id := s.Put(Deployment{GetFailure: &Failure{Code: FailNetwork}})
		_, err := newClient(t, s, oneAttempt).GetDeployment(ctxT(t), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
		if err == nil || isErr[smithy.APIError](err) {
			t.Fatalf("err = %v", err)
		}
		if calls := s.Calls(); len(calls) != 1 || calls[0].Result != FailNetwork {
			t.Errorf("calls = %v", calls)
		}
	})
	t.Run("throttled once, retried", func(t *testing.T) {
		s := newServer(t, Options{})
		id := s.Put(Deployment{StopFailure: &Failure{Code: "ThrottlingException", Times: 1}})
		out := stop(t, newClient(t, s), id, aws.Bool(false))
		if out.Status != types.StopStatusPending {
			t.Errorf("status = %s", out.Status)
		}
		var results []string
		for _, c := range s.Calls() {
			results = append(results, c.Result)
		}
		if strings.Join(results, ",") != "ThrottlingException,ok" {
			t.Errorf("results = %v", results)
		}
		if d, _ := s.Deployment(id); d.StopFailure != nil {
			t.Errorf("used-up failure still set: %+v", d.StopFailure)
		}
	})
	t.Run("times counts down", func(t *testing.T) {
		s := newServer(t, Options{})
		c := newClient(t, s, oneAttempt)
		id := s.Put(Deployment{GetFailure: &Failure{Code: "AccessDeniedException", Times: 2}})
		for i := range 2 {
			if _, err := c.GetDeployment(ctxT(t), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)}); err == nil {
				t.Fatalf("call %d succeeded", i)
			}
		}
		get(t, c, id)
	})
}

// ---- latency ----

func TestDelay(t *testing.T) {
	t.Run("client gives up", func(t *testing.T) {
		s := newServer(t, Options{})
		id := s.Put(Deployment{StopDelay: time.Hour})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := newClient(t, s).StopDeployment(ctx, &codedeploy.StopDeploymentInput{DeploymentId: aws.String(id)})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		calls, err := s.WaitCalls(ctxT(t), func(c Call) bool { return c.Result == "canceled" }, 1)
		if err != nil {
			t.Fatal(err)
		}
		if calls[0].DeploymentID != id {
			t.Errorf("calls = %v", calls)
		}
		if d, _ := s.Deployment(id); !d.StopRequestedAt.IsZero() {
			t.Error("canceled stop was processed")
		}
	})
	t.Run("Close aborts a delayed answer", func(t *testing.T) {
		s := newServer(t, Options{})
		id := s.Put(Deployment{GetDelay: time.Hour})
		started := make(chan struct{})
		var once sync.Once
		s.mu.Lock()
		s.testHookDelay = func() { once.Do(func() { close(started) }) }
		s.mu.Unlock()
		errc := make(chan error, 1)
		c := newClient(t, s)
		go func() {
			_, err := c.GetDeployment(context.Background(), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
			errc <- err
		}()
		<-started
		s.Close() // must not wait for the hour
		if err := <-errc; err == nil || isErr[smithy.APIError](err) {
			t.Errorf("err = %v, want a connection error", err)
		}
		if calls := s.Calls(); len(calls) != 1 || calls[0].Result != "canceled" {
			t.Errorf("calls = %v", calls)
		}
	})
	t.Run("SetDelay adds latency", func(t *testing.T) {
		s := newServer(t, Options{})
		id := s.Put(Deployment{GetDelay: 20 * time.Millisecond})
		s.SetDelay(30 * time.Millisecond)
		c := newClient(t, s)
		start := time.Now()
		get(t, c, id)
		if el := time.Since(start); el < 50*time.Millisecond {
			t.Errorf("answered in %v, want >= 50ms", el)
		}
	})
}

// ---- raw wire ----

func TestRawWire(t *testing.T) {
	s := newServer(t, Options{})
	s.Put(Deployment{ID: "d-RAWWIRE01", Application: "a", Group: "g", CreateTime: t0})
	base := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, s.URL()+"/", strings.NewReader(`{"deploymentId":"d-RAWWIRE01"}`))
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", "CodeDeploy_20141006.GetDeployment")
		r.Header.Set("X-Amz-Date", "20261126T225512Z")
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/codedeploy/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0123abcd")
		return r
	}
	body := func(s string) func(*http.Request) {
		return func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(s)); r.ContentLength = int64(len(s)) }
	}
	header := func(k, v string) func(*http.Request) {
		return func(r *http.Request) {
			if v == "" {
				r.Header.Del(k)
			} else {
				r.Header.Set(k, v)
			}
		}
	}
	cases := []struct {
		name       string
		mod        func(*http.Request)
		wantStatus int
		wantType   string
	}{
		{"ok", func(*http.Request) {}, 200, ""},
		{"unsigned", header("Authorization", ""), 403, "MissingAuthenticationTokenException"},
		{"wrong algorithm", header("Authorization", "Bearer xyz"), 400, "IncompleteSignatureException"},
		{"no signature", header("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/codedeploy/aws4_request, SignedHeaders=host"), 400, "IncompleteSignatureException"},
		{"wrong service", header("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=ab"), 403, "InvalidSignatureException"},
		{"host unsigned", header("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/codedeploy/aws4_request, SignedHeaders=x-amz-date, Signature=ab"), 400, "IncompleteSignatureException"},
		{"no date", header("X-Amz-Date", ""), 400, "IncompleteSignatureException"},
		{"date mismatch", header("X-Amz-Date", "20261127T000000Z"), 403, "InvalidSignatureException"},
		{"wrong content type", header("Content-Type", "application/json"), 400, "UnknownOperationException"},
		{"no content type", header("Content-Type", ""), 400, "UnknownOperationException"},
		{"unknown target", header("X-Amz-Target", "CodeDeploy_20141006.ListDeployments"), 400, "UnknownOperationException"},
		{"foreign target", header("X-Amz-Target", "DynamoDB_20120810.GetItem"), 400, "UnknownOperationException"},
		{"no target", header("X-Amz-Target", ""), 400, "UnknownOperationException"},
		{"GET", func(r *http.Request) { r.Method = http.MethodGet }, 404, "UnknownOperationException"},
		{"other path", func(r *http.Request) { r.URL.Path = "/x" }, 404, "UnknownOperationException"},
		{"malformed json", body(`{"deploymentId":`), 400, "SerializationException"},
		{"wrong type", body(`{"deploymentId":5}`), 400, "SerializationException"},
		{"not an object", body(`null`), 400, "SerializationException"},
		{"empty body", body(``), 400, "SerializationException"},
		{"no id", body(`{}`), 400, "DeploymentIdRequiredException"},
		{"stop no id", func(r *http.Request) {
			header("X-Amz-Target", "CodeDeploy_20141006.StopDeployment")(r)
			body(`{"autoRollbackEnabled":true}`)(r)
		}, 400, "DeploymentIdRequiredException"},
	}
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := base()
			tc.mod(r)
			resp, err := http.DefaultClient.Do(r.WithContext(ctxT(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d: %s", resp.StatusCode, tc.wantStatus, raw)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
				t.Errorf("Content-Type = %q", ct)
			}
			if rid := resp.Header.Get("X-Amzn-Requestid"); !uuidRE.MatchString(rid) {
				t.Errorf("X-Amzn-Requestid = %q", rid)
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("body %q: %v", raw, err)
			}
			if tc.wantType != "" {
				if m["__type"] != tc.wantType {
					t.Errorf("__type = %v, want %s (%s)", m["__type"], tc.wantType, raw)
				}
				return
			}
			info := m["deploymentInfo"].(map[string]any)
			ov := info["deploymentOverview"].(map[string]any)
			for _, k := range []string{"Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Ready"} {
				if _, ok := ov[k].(json.Number); !ok {
					t.Errorf("deploymentOverview.%s = %v", k, ov[k])
				}
			}
			if n, ok := info["createTime"].(json.Number); !ok || n.String() != strconv.FormatInt(t0.Unix(), 10)+".123" {
				t.Errorf("createTime = %#v", info["createTime"])
			}
			for _, absent := range []string{"completeTime", "rollbackInfo", "errorInformation", "description"} {
				if _, ok := info[absent]; ok {
					t.Errorf("%s present for a running deployment", absent)
				}
			}
		})
	}
	if n := s.Count(OpGetDeployment, "d-RAWWIRE01"); n != 1 {
		t.Errorf("accepted GetDeployment calls = %d, want 1", n)
	}
}

// ---- endpoint through the environment (REFERENCE §3.5) ----

func TestEnvironmentEndpoint(t *testing.T) {
	s := newServer(t, Options{})
	id := s.Put(Deployment{Application: "a", Group: "g"})
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL_CODEDEPLOY", s.URL())
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETENV")
	t.Setenv("AWS_PROFILE", "")
	cfg, err := config.LoadDefaultConfig(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	c := codedeploy.NewFromConfig(cfg)
	if info := get(t, c, id); aws.ToString(info.DeploymentId) != id {
		t.Errorf("got %v", aws.ToString(info.DeploymentId))
	}
	stop(t, c, id, aws.Bool(false))
	if got := s.Count("", id); got != 2 {
		t.Errorf("calls = %d", got)
	}
}

// ---- bookkeeping ----

func TestWaitCallsAndSubscribe(t *testing.T) {
	s := newServer(t, Options{})
	c := newClient(t, s)
	id := s.Put(Deployment{})
	ch, cancel := s.Subscribe()

	type res struct {
		calls []Call
		err   error
	}
	done := make(chan res, 1)
	go func() {
		calls, err := s.WaitCalls(ctxT(t), func(c Call) bool { return c.Target == OpGetDeployment }, 3)
		done <- res{calls, err}
	}()
	for range 3 {
		get(t, c, id)
	}
	r := <-done
	if r.err != nil || len(r.calls) != 3 {
		t.Fatalf("WaitCalls = %v, %v", r.calls, r.err)
	}
	select {
	case <-ch:
	default:
		t.Error("no notification after calls")
	}

	expired, cancelCtx := context.WithCancel(context.Background())
	cancelCtx()
	if got, err := s.WaitCalls(expired, nil, 100); !errors.Is(err, context.Canceled) || len(got) != 3 {
		t.Errorf("WaitCalls(expired) = %d calls, %v", len(got), err)
	}

	cancel()
	cancel() // idempotent
	if _, ok := <-ch; ok {
		t.Error("channel still open after cancel")
	}

	ch2, _ := s.Subscribe()
	s.Close()
	if _, ok := <-ch2; ok {
		t.Error("channel still open after Close")
	}
	if _, err := s.WaitCalls(ctxT(t), nil, 100); err == nil {
		t.Error("WaitCalls after Close succeeded")
	}
	if ch3, _ := s.Subscribe(); ch3 != nil {
		if _, ok := <-ch3; ok {
			t.Error("Subscribe after Close returned an open channel")
		}
	}
	if _, err := http.Post(s.URL(), "application/x-amz-json-1.1", strings.NewReader("{}")); err == nil {
		t.Error("server still answers after Close")
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

func TestConcurrentClients(t *testing.T) {
	s := newServer(t, Options{Logf: func(string, ...any) {}, Tick: time.Millisecond})
	c := newClient(t, s)
	ids := make([]string, 8)
	for i := range ids {
		ids[i] = s.Put(Deployment{PollsUntilFinal: 3, StopTakes: time.Duration(i%2) * time.Millisecond})
	}
	ch, cancel := s.Subscribe()
	defer cancel()
	go func() {
		for range ch {
		}
	}()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			id := ids[i%len(ids)]
			for range 5 {
				if i%2 == 0 {
					_, _ = c.StopDeployment(context.Background(), &codedeploy.StopDeploymentInput{DeploymentId: aws.String(id), AutoRollbackEnabled: aws.Bool(true)})
				} else {
					_, _ = c.GetDeployment(context.Background(), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
				}
				_ = s.Deployments()
				_ = s.Count("", id)
			}
		})
	}
	wg.Wait()
	if n := len(s.Calls()); n != 32*5 {
		t.Errorf("calls = %d, want %d", n, 32*5)
	}
}

func TestWaitDelayed(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Put(Deployment{ID: "d-DELAY0001", Application: "a", Group: "g", GetDelay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL(), strings.NewReader(`{"deploymentId":"d-DELAY0001"}`))
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", "CodeDeploy_20141006.GetDeployment")
			req.Header.Set("X-Amz-Date", "20261126T000000Z")
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/codedeploy/aws4_request, SignedHeaders=host, Signature=0")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	if err := s.WaitDelayed(ctx, 3); err != nil {
		t.Fatal(err)
	}
}
