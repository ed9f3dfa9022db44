package fakecodedeploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
)

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

func TestCallString(t *testing.T) {
	cases := []struct {
		c    Call
		want string
	}{
		{Call{Target: OpStopDeployment, DeploymentID: "d-LGUMS25CC", AutoRollbackEnabled: aws.Bool(true), Result: "ok"}, "StopDeployment d-LGUMS25CC autoRollbackEnabled=true"},
		{Call{Target: OpGetDeployment, Result: "ThrottlingException"}, "GetDeployment (no deploymentId) => ThrottlingException"},
		{Call{Target: OpStopDeployment, DeploymentID: "d-LGUMS25CC", Result: FailNetwork, After: true}, "StopDeployment d-LGUMS25CC => network after processing"},
		{Call{Target: OpListDeployments, Result: "ok", Page: 1}, "ListDeployments"},
		{Call{Target: OpListDeployments, Application: "checkout", Group: "production", Statuses: []string{"InProgress", "Ready"}, NextToken: "tok", Page: 2, Result: "ok"},
			"ListDeployments checkout/production [InProgress,Ready] page 2"},
		{Call{Target: OpListDeployments, NextToken: "stale", Result: "InvalidNextTokenException"}, "ListDeployments page ? => InvalidNextTokenException"},
		{Call{Target: OpBatchGetDeployments, IDs: []string{"d-AAAAAAAAA", "d-BBBBBBBBB"}, Result: "ok"}, "BatchGetDeployments d-AAAAAAAAA,d-BBBBBBBBB"},
		{Call{Target: OpBatchGetDeployments, Result: "DeploymentIdRequiredException"}, "BatchGetDeployments (no deploymentIds) => DeploymentIdRequiredException"},
		{Call{Result: "UnknownOperationException"}, "(no target) (no deploymentId) => UnknownOperationException"},
	}
	for _, tc := range cases {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	s := newServer(t, Options{Logf: func(format string, args ...any) {
		mu.Lock()
		lines = append(lines, fmt.Sprintf(format, args...))
		mu.Unlock()
	}})
	registerProd(s)
	id := s.Put(Deployment{Account: prodAccount})
	get(t, newClientAs(t, s, prodSigner), id)
	_, err := newClientAs(t, s, signer{key: prodKey, token: prodToken + "-wrong"}, oneAttempt).GetDeployment(ctxT(t), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
	if err == nil {
		t.Fatal("wrong token accepted")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 2 {
		t.Fatalf("lines = %q", lines)
	}
	for _, l := range lines {
		if strings.Contains(l, prodToken) || strings.Contains(l, testSecret) {
			t.Errorf("log line leaks a secret: %s", l)
		}
		if !strings.Contains(l, "["+prodAccount+" us-east-1 key="+prodKey+" session=alice]") {
			t.Errorf("log line lacks the place and principal: %s", l)
		}
	}
}
