package fakecodedeploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/smithy-go"
)

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

func TestDeny(t *testing.T) {
	const user = "arn:aws:iam::123456789012:user/stopdeploy"
	group := func(region, account, name string) string {
		return "arn:aws:codedeploy:" + region + ":" + account + ":deploymentgroup:" + name
	}
	msg := func(principal, op, resource string) string {
		if resource == "" {
			return "User: " + principal + " is not authorized to perform: codedeploy:" + op + " because no identity-based policy allows the codedeploy:" + op + " action"
		}
		return "User: " + principal + " is not authorized to perform: codedeploy:" + op + " on resource: " + resource + " because no identity-based policy allows the codedeploy:" + op + " action"
	}
	const id = "d-DENIED001"
	type call func(ctx context.Context, c *codedeploy.Client) error
	getCall := func(id string) call {
		return func(ctx context.Context, c *codedeploy.Client) error {
			_, err := c.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
			return err
		}
	}
	stopCall := func(ctx context.Context, c *codedeploy.Client) error {
		_, err := c.StopDeployment(ctx, &codedeploy.StopDeploymentInput{DeploymentId: aws.String(id), AutoRollbackEnabled: aws.Bool(true)})
		return err
	}
	listCall := func(app, group string) call {
		return func(ctx context.Context, c *codedeploy.Client) error {
			in := &codedeploy.ListDeploymentsInput{}
			if app != "" {
				in.ApplicationName, in.DeploymentGroupName = aws.String(app), aws.String(group)
			}
			_, err := c.ListDeployments(ctx, in)
			return err
		}
	}
	batchCall := func(ctx context.Context, c *codedeploy.Client) error {
		_, err := c.BatchGetDeployments(ctx, &codedeploy.BatchGetDeploymentsInput{DeploymentIds: []string{"d-MISSING01", id}})
		return err
	}
	cases := []struct {
		name    string
		account string // Deny's
		region  string
		op      string
		as      signer
		call    call
		wantMsg string // "" = allowed
	}{
		{"GetDeployment names the group", "", "us-east-1", OpGetDeployment, signer{}, getCall(id), msg(user, OpGetDeployment, group("us-east-1", DefaultAccount, "shop/prod"))},
		{"GetDeployment of an unknown ID", "", "us-east-1", OpGetDeployment, signer{}, getCall("d-MISSING01"), msg(user, OpGetDeployment, group("us-east-1", DefaultAccount, "*"))},
		{"StopDeployment has no resource type", "", "", OpStopDeployment, signer{}, stopCall, msg(user, OpStopDeployment, "")},
		{"ListDeployments of a group", "", "us-east-1", OpListDeployments, signer{}, listCall("shop", "prod"), msg(user, OpListDeployments, group("us-east-1", DefaultAccount, "shop/prod"))},
		{"ListDeployments of all", "", "us-east-1", OpListDeployments, signer{}, listCall("", ""), msg(user, OpListDeployments, group("us-east-1", DefaultAccount, "*"))},
		{"BatchGetDeployments names the first known group", "", "", OpBatchGetDeployments, signer{}, batchCall, msg(user, OpBatchGetDeployments, group("us-east-1", DefaultAccount, "shop/prod"))},
		{"assumed role", prodAccount, "", OpStopDeployment, prodSigner, stopCall, msg(prodARN, OpStopDeployment, "")},
		{"other region allowed", "", "eu-west-1", OpStopDeployment, signer{}, stopCall, ""},
		{"other account allowed", prodAccount, "", OpStopDeployment, signer{}, stopCall, ""},
		{"other operation allowed", "", "", OpGetDeployment, signer{}, stopCall, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{})
			registerProd(s)
			s.Put(Deployment{ID: id, Application: "shop", Group: "prod"})
			s.Put(Deployment{ID: id, Account: prodAccount, Application: "shop", Group: "prod"})
			s.Deny(tc.account, tc.region, tc.op)
			err := tc.call(ctxT(t), newClientAs(t, s, tc.as, oneAttempt))
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("err = %v, want allowed", err)
				}
				return
			}
			code, gotMsg := apiErr(err)
			if code != "AccessDeniedException" || gotMsg != tc.wantMsg || httpStatus(err) != 400 {
				t.Fatalf("err = %v (status %d)\nwant message %s", err, httpStatus(err), tc.wantMsg)
			}
			for _, d := range s.Deployments() {
				if !d.StopRequestedAt.IsZero() {
					t.Errorf("a denied call was processed: %+v", d)
				}
			}
			if calls := s.Calls(); len(calls) != 1 || calls[0].Result != "AccessDeniedException" {
				t.Errorf("calls = %v", calls)
			}
		})
	}
	t.Run("unknown operation panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("Deny(CreateDeployment) did not panic")
			}
		}()
		newServer(t, Options{}).Deny("", "", "CreateDeployment")
	})
}

func TestFailPlace(t *testing.T) {
	s := newServer(t, Options{})
	id := s.Put(Deployment{Application: "shop", Group: "prod"})
	s.Put(Deployment{ID: id, Region: "eu-west-1", Application: "shop", Group: "prod"})
	s.FailPlace("", "", Failure{Code: "ThrottlingException", Times: 3})
	east, west := newClient(t, s, oneAttempt), newClientAs(t, s, signer{region: "eu-west-1"}, oneAttempt)

	calls := []func(*codedeploy.Client) error{
		func(c *codedeploy.Client) error {
			_, err := c.GetDeployment(ctxT(t), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
			return err
		},
		func(c *codedeploy.Client) error {
			_, err := c.ListDeployments(ctxT(t), &codedeploy.ListDeploymentsInput{})
			return err
		},
		func(c *codedeploy.Client) error {
			_, err := c.BatchGetDeployments(ctxT(t), &codedeploy.BatchGetDeploymentsInput{DeploymentIds: []string{"not-an-id"}})
			return err // throttled before the ID is validated
		},
	}
	for i, call := range calls {
		if code, _ := apiErr(call(east)); code != "ThrottlingException" {
			t.Errorf("call %d in us-east-1: %s, want ThrottlingException", i, code)
		}
		if err := call(west); err != nil && i != 2 {
			t.Errorf("call %d in eu-west-1: %v", i, err)
		}
	}
	if err := calls[0](east); err != nil {
		t.Errorf("after Times ran out: %v", err)
	}
	s.FailPlace("", "", Failure{Code: Fail500})
	if code, _ := apiErr(calls[1](east)); code != "InternalFailure" {
		t.Errorf("Fail500 answered %s", code)
	}
	s.FailPlace("", "", Failure{})
	if err := calls[1](east); err != nil {
		t.Errorf("after clearing: %v", err)
	}
}

func TestSetPlaceDelay(t *testing.T) {
	s := newServer(t, Options{})
	id := s.Put(Deployment{})
	s.Put(Deployment{ID: id, Region: "eu-west-1"})
	s.SetPlaceDelay("", "", time.Hour)
	ctx, cancel := context.WithCancel(ctxT(t))
	errc := make(chan error, 1)
	go func() {
		_, err := newClient(t, s).ListDeployments(ctx, &codedeploy.ListDeploymentsInput{})
		errc <- err
	}()
	if err := s.WaitDelayed(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	// Another region is not delayed while the first request waits.
	get(t, newClientAs(t, s, signer{region: "eu-west-1"}), id)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("delayed call: %v", err)
	}
	if _, err := s.WaitCalls(ctxT(t), func(c Call) bool { return c.Target == OpListDeployments && c.Result == "canceled" }, 1); err != nil {
		t.Fatal(err)
	}
	s.SetPlaceDelay("", "", 0)
	get(t, newClient(t, s), id)
}

func TestFailureAfter(t *testing.T) {
	cases := []struct {
		name      string
		fail      Failure
		retries   bool
		wantErr   func(error) bool // nil: the call succeeds
		wantCalls string           // results of the recorded calls
	}{
		{"connection lost after sending", Failure{Code: FailNetwork, After: true}, false,
			func(err error) bool { return err != nil && !isErr[smithy.APIError](err) }, "network"},
		{"connection lost once, retried", Failure{Code: FailNetwork, After: true, Times: 1}, true, nil, "network,ok"},
		{"500 after accepting", Failure{Code: Fail500, After: true}, false,
			func(err error) bool { code, _ := apiErr(err); return code == "InternalFailure" }, "InternalFailure"},
		{"exception after accepting", Failure{Code: "ThrottlingException", After: true}, false,
			func(err error) bool { code, _ := apiErr(err); return code == "ThrottlingException" }, "ThrottlingException"},
		{"garbled 200 after accepting", Failure{Code: FailGarbled, After: true}, false,
			func(err error) bool { return err != nil && !isErr[smithy.APIError](err) }, "garbled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{})
			f := tc.fail
			id := s.Put(Deployment{StopFailure: &f})
			var fns []func(*codedeploy.Options)
			if !tc.retries {
				fns = append(fns, oneAttempt)
			}
			out, err := newClient(t, s, fns...).StopDeployment(ctxT(t), &codedeploy.StopDeploymentInput{DeploymentId: aws.String(id), AutoRollbackEnabled: aws.Bool(true)})
			if tc.wantErr == nil {
				if err != nil || out.Status != types.StopStatusPending {
					t.Fatalf("StopDeployment = %v, %v", out, err)
				}
			} else if !tc.wantErr(err) {
				t.Fatalf("err = %v", err)
			}
			if d, _ := s.Deployment(id); d.StopRequestedAt.IsZero() || !d.StopAutoRollback {
				t.Errorf("stop not processed: %+v", d)
			}
			var results []string
			for _, c := range s.Calls() {
				results = append(results, c.Result)
			}
			if strings.Join(results, ",") != tc.wantCalls {
				t.Errorf("results = %v, want %s", results, tc.wantCalls)
			}
			if c := s.Calls()[0]; !c.After || c.String() != "StopDeployment "+id+" autoRollbackEnabled=true => "+c.Result+" after processing" {
				t.Errorf("first call = %q (After %v)", c.String(), c.After)
			}
		})
	}
	t.Run("a failed read after processing counts as a poll", func(t *testing.T) {
		for _, after := range []bool{false, true} {
			s := newServer(t, Options{})
			id := s.Put(Deployment{StopRequestedAt: t0, GetFailure: &Failure{Code: FailNetwork, After: after, Times: 1}})
			c := newClient(t, s, oneAttempt)
			if _, err := c.GetDeployment(ctxT(t), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)}); err == nil {
				t.Fatal("first read succeeded")
			}
			want := types.DeploymentStatusInProgress
			if after {
				want = types.DeploymentStatusStopped
			}
			if got := get(t, c, id).Status; got != want {
				t.Errorf("After=%v: second read = %s, want %s", after, got, want)
			}
		}
	})
}

func TestGarbled(t *testing.T) {
	for _, after := range []bool{false, true} {
		t.Run(fmt.Sprintf("after=%v", after), func(t *testing.T) {
			s := newServer(t, Options{})
			id := s.Put(Deployment{ID: "d-GARBLED01", StopFailure: &Failure{Code: FailGarbled, After: after}})
			status, raw := rawCall(t, s, OpStopDeployment, `{"deploymentId":"d-GARBLED01"}`)
			if status != 200 || json.Valid(raw) || !bytes.HasPrefix(raw, []byte(`{"status":"Pe`)) {
				t.Errorf("answer %d %q, want 200 with cut-off JSON", status, raw)
			}
			if d, _ := s.Deployment(id); d.StopRequestedAt.IsZero() == after {
				t.Errorf("processed = %v, want %v", !d.StopRequestedAt.IsZero(), after)
			}
			// The SDK cannot decode it: a deserialization error, not an API error.
			s.Update(id, func(d *Deployment) { d.GetFailure = &Failure{Code: FailGarbled}; d.StopFailure = nil })
			_, err := newClient(t, s, oneAttempt).GetDeployment(ctxT(t), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
			if !isErr[*smithy.DeserializationError](err) {
				t.Errorf("err = %v, want a DeserializationError", err)
			}
		})
	}
}

func TestGarbledPlace(t *testing.T) {
	s := newServer(t, Options{})
	s.FailPlace("", "", Failure{Code: FailGarbled})
	for op, body := range map[string]string{
		OpListDeployments:     `{}`,
		OpBatchGetDeployments: `{"deploymentIds":["d-MISSING01"]}`,
		OpGetDeployment:       `{"deploymentId":"d-MISSING01"}`,
	} {
		if status, raw := rawCall(t, s, op, body); status != 200 || json.Valid(raw) || !bytes.HasPrefix(raw, []byte(`{"deploy`)) {
			t.Errorf("%s: %d %q, want 200 with cut-off JSON", op, status, raw)
		}
	}
}

func TestOversized(t *testing.T) {
	const size = 1 << 20
	t.Run("StopDeployment statusMessage", func(t *testing.T) {
		s := newServer(t, Options{})
		id := s.Put(Deployment{StopFailure: &Failure{Code: FailOversized, After: true, Size: size}})
		out := stop(t, newClient(t, s, oneAttempt), id, aws.Bool(false))
		msg := aws.ToString(out.StatusMessage)
		if out.Status != types.StopStatusPending || len(msg) < size-100 || strings.Trim(msg, "x") != "" {
			t.Errorf("status %s, message of %d bytes", out.Status, len(msg))
		}
		if d, _ := s.Deployment(id); d.StopRequestedAt.IsZero() {
			t.Error("stop not processed")
		}
	})
	t.Run("GetDeployment description", func(t *testing.T) {
		s := newServer(t, Options{})
		id := s.Put(Deployment{Application: "shop", Group: "prod", GetFailure: &Failure{Code: FailOversized, Size: size}})
		info := get(t, newClient(t, s), id)
		if aws.ToString(info.DeploymentId) != id || aws.ToString(info.ApplicationName) != "shop" || len(aws.ToString(info.Description)) < size-1000 {
			t.Errorf("info %s %s, description of %d bytes", aws.ToString(info.DeploymentId), aws.ToString(info.ApplicationName), len(aws.ToString(info.Description)))
		}
	})
	t.Run("ListDeployments padding member", func(t *testing.T) {
		s := newServer(t, Options{})
		id := s.Put(Deployment{})
		s.FailPlace("", "", Failure{Code: FailOversized, After: true, Size: size})
		status, raw := rawCall(t, s, OpListDeployments, `{}`)
		var out struct {
			Deployments []string
			Padding     string
		}
		if err := json.Unmarshal(raw, &out); err != nil || status != 200 || len(raw) != size ||
			len(out.Deployments) != 1 || out.Deployments[0] != id || len(out.Padding) < size-100 {
			t.Errorf("status %d, %d bytes, %v, %v", status, len(raw), out.Deployments, err)
		}
		lo, err := newClient(t, s).ListDeployments(ctxT(t), &codedeploy.ListDeploymentsInput{})
		if err != nil || len(lo.Deployments) != 1 {
			t.Errorf("SDK: %v, %v", lo, err)
		}
	})
	t.Run("large answers survive one-attempt clients", func(t *testing.T) {
		// Without pauseBeforeLargeAnswer about 1 in 8 of these fails with
		// "use of closed network connection" (a smithy-go race, see wire.go).
		s := newServer(t, Options{Logf: func(string, ...any) {}})
		id := s.Put(Deployment{GetFailure: &Failure{Code: FailOversized, Size: 64 << 10}})
		c := newClient(t, s, oneAttempt)
		for i := range 80 {
			if _, err := c.GetDeployment(ctxT(t), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)}); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	})
	t.Run("default size is streamed", func(t *testing.T) {
		s := newServer(t, Options{})
		s.Put(Deployment{ID: "d-BIGBODY01", GetFailure: &Failure{Code: FailOversized}})
		r, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, s.URL(), strings.NewReader(`{"deploymentId":"d-BIGBODY01"}`))
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", "CodeDeploy_20141006.GetDeployment")
		r.Header.Set("X-Amz-Date", "20261126T000000Z")
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/codedeploy/aws4_request, SignedHeaders=host, Signature=0")
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 20)
		n1, _ := io.ReadFull(resp.Body, head)
		n2, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		runtime.ReadMemStats(&after)
		if err != nil || n1+int(n2) != DefaultOversize || resp.ContentLength != DefaultOversize || string(head) != `{"deploymentInfo":{"` {
			t.Errorf("read %d bytes (Content-Length %d, %v), head %q", n1+int(n2), resp.ContentLength, err, head)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
			t.Errorf("allocated %d MiB to answer 64 MiB: not streamed", alloc>>20)
		}
	})
}
