package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/stopdeploy/stopdeploy/deploy"
)

// fakeAPI implements deploy.API with one function per operation, as the AWS
// SDK's unit-testing guide suggests.
type fakeAPI struct {
	get  func(context.Context, *codedeploy.GetDeploymentInput) (*codedeploy.GetDeploymentOutput, error)
	stop func(context.Context, *codedeploy.StopDeploymentInput) (*codedeploy.StopDeploymentOutput, error)
}

func (f fakeAPI) GetDeployment(ctx context.Context, in *codedeploy.GetDeploymentInput, _ ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentOutput, error) {
	return f.get(ctx, in)
}

func (f fakeAPI) StopDeployment(ctx context.Context, in *codedeploy.StopDeploymentInput, _ ...func(*codedeploy.Options)) (*codedeploy.StopDeploymentOutput, error) {
	return f.stop(ctx, in)
}

func TestGet_MapsDeploymentInfo(t *testing.T) {
	created := time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)
	api := fakeAPI{get: func(_ context.Context, in *codedeploy.GetDeploymentInput) (*codedeploy.GetDeploymentOutput, error) {
		if got := aws.ToString(in.DeploymentId); got != "d-LGUMS25CC" {
			t.Errorf("GetDeployment deploymentId = %q", got)
		}
		return &codedeploy.GetDeploymentOutput{DeploymentInfo: &types.DeploymentInfo{
			DeploymentId:        aws.String("d-LGUMS25CC"),
			ApplicationName:     aws.String("checkout"),
			DeploymentGroupName: aws.String("production"),
			Status:              types.DeploymentStatusStopped,
			Creator:             types.DeploymentCreatorUser,
			ComputePlatform:     types.ComputePlatformServer,
			CreateTime:          aws.Time(created),
			DeploymentOverview:  &types.DeploymentOverview{Succeeded: 3, InProgress: 1, Pending: 2},
			RollbackInfo:        &types.RollbackInfo{RollbackDeploymentId: aws.String("d-ROLLBACK1"), RollbackMessage: aws.String("started")},
			ErrorInformation:    &types.ErrorInformation{Message: aws.String("stopped by user")},
		}}, nil
	}}
	got, err := deploy.NewClient(api, 0).Get(context.Background(), "d-LGUMS25CC")
	if err != nil {
		t.Fatal(err)
	}
	want := deploy.Deployment{
		ID: "d-LGUMS25CC", Application: "checkout", Group: "production", Status: "Stopped", Creator: "user",
		ComputePlatform: "Server", CreateTime: created, Overview: &deploy.Overview{Succeeded: 3, InProgress: 1, Pending: 2},
		RollbackDeploymentID: "d-ROLLBACK1", RollbackMessage: "started", ErrorMessage: "stopped by user",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Get =\n%+v\nwant\n%+v", got, want)
	}
	if !got.Final() {
		t.Error("Stopped deployment is not Final")
	}
}

func TestDeployment_Final(t *testing.T) {
	for status, final := range map[string]bool{
		"Created": false, "Queued": false, "InProgress": false, "Baking": false, "Ready": false,
		"Succeeded": true, "Failed": true, "Stopped": true,
	} {
		if got := (deploy.Deployment{Status: status}).Final(); got != final {
			t.Errorf("Final() for %s = %v, want %v", status, got, final)
		}
	}
}

func TestStop_SendsRollbackExplicitly(t *testing.T) {
	for _, rollback := range []bool{true, false} {
		t.Run(fmt.Sprint(rollback), func(t *testing.T) {
			api := fakeAPI{stop: func(_ context.Context, in *codedeploy.StopDeploymentInput) (*codedeploy.StopDeploymentOutput, error) {
				if in.AutoRollbackEnabled == nil || *in.AutoRollbackEnabled != rollback {
					t.Errorf("AutoRollbackEnabled = %v, want explicit %v", in.AutoRollbackEnabled, rollback)
				}
				return &codedeploy.StopDeploymentOutput{Status: "Forced", StatusMessage: aws.String("forced")}, nil
			}}
			got, err := deploy.NewClient(api, 0).Stop(context.Background(), "d-LGUMS25CC", rollback)
			if err != nil {
				t.Fatal(err)
			}
			if got != (deploy.StopResult{Status: "Forced", Message: "forced"}) {
				t.Errorf("Stop = %+v", got)
			}
		})
	}
}

func TestStop_ErrorKinds(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		kind    deploy.Kind
		explain string
	}{
		{"already completed", &types.DeploymentAlreadyCompletedException{Message: aws.String("done")}, deploy.KindAlreadyCompleted,
			"Deployment `d-LGUMS25CC` had already completed, so there was nothing to stop."},
		{"does not exist", &types.DeploymentDoesNotExistException{}, deploy.KindNotFound,
			"CodeDeploy has no deployment `d-LGUMS25CC` in the AWS account and region this bot uses."},
		{"group does not exist", &types.DeploymentGroupDoesNotExistException{}, deploy.KindGroupNotFound,
			"The deployment group of `d-LGUMS25CC` no longer exists, so CodeDeploy cannot stop it."},
		{"id required", &types.DeploymentIdRequiredException{}, deploy.KindIDRequired,
			"No deployment ID reached CodeDeploy. This is a bug in stopdeploy; please report it."},
		{"invalid id", &types.InvalidDeploymentIdException{}, deploy.KindInvalidID,
			"CodeDeploy says `d-LGUMS25CC` is not a valid deployment ID."},
		{"unsupported", &types.UnsupportedActionForDeploymentTypeException{}, deploy.KindUnsupported,
			"CodeDeploy cannot stop `d-LGUMS25CC`: its deployment type does not support this action."},
		{"throttled", &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}, deploy.KindThrottled,
			"AWS kept throttling the request, even after retries. `d-LGUMS25CC` was *not* stopped: try again in a minute, or stop it in the AWS console."},
		{"access denied", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"}, deploy.KindAccessDenied,
			"AWS refused the bot's credentials for StopDeployment on `d-LGUMS25CC` (AccessDeniedException). Ask your platform team to check the bot's IAM policy."},
		{"network", &smithyhttp.RequestSendError{Err: errors.New("connection reset by peer")}, deploy.KindUnreachable,
			"The bot could not reach CodeDeploy (network failure), so it does not know whether `d-LGUMS25CC` was stopped. Check the AWS console."},
		{"timeout", context.DeadlineExceeded, deploy.KindCanceled,
			"The bot gave up waiting for CodeDeploy, so it does not know whether `d-LGUMS25CC` was stopped. Check the AWS console."},
		{"other API error", &smithy.GenericAPIError{Code: "ValidationException", Message: "boom <!channel> & <@U0ALICE>"}, deploy.KindOther,
			"CodeDeploy answered ValidationException on `d-LGUMS25CC`: boom &lt;!channel&gt; &amp; &lt;@U0ALICE&gt;"},
		{"answer too large", &deploy.AnswerTooLargeError{Limit: deploy.MaxAnswerBytes}, deploy.KindTooLarge,
			"CodeDeploy's answer about `d-LGUMS25CC` was over 1024 KiB, so the bot did not read it and does not know whether it was stopped."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := fakeAPI{stop: func(context.Context, *codedeploy.StopDeploymentInput) (*codedeploy.StopDeploymentOutput, error) {
				// The SDK wraps every failure in an OperationError.
				return nil, &smithy.OperationError{ServiceID: "CodeDeploy", OperationName: "StopDeployment", Err: tt.err}
			}}
			_, err := deploy.NewClient(api, 0).Stop(context.Background(), "d-LGUMS25CC", true)
			var de *deploy.Error
			if !errors.As(err, &de) {
				t.Fatalf("Stop error %v is not a *deploy.Error", err)
			}
			if de.Kind != tt.kind {
				t.Errorf("Kind = %v, want %v", de.Kind, tt.kind)
			}
			if got := de.Explain(); got != tt.explain {
				t.Errorf("Explain()\n got: %s\nwant: %s", got, tt.explain)
			}
			// Only an exception CodeDeploy answered proves it did nothing.
			unknown := tt.kind == deploy.KindUnreachable || tt.kind == deploy.KindCanceled || tt.kind == deploy.KindTooLarge || tt.name == "other API error"
			if de.Unknown() != unknown {
				t.Errorf("Unknown() = %t, want %t", de.Unknown(), unknown)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error does not wrap the SDK error")
			}
			if !strings.Contains(err.Error(), "StopDeployment d-LGUMS25CC") {
				t.Errorf("Error() = %q, want op and ID", err.Error())
			}
		})
	}
}

func TestClient_BoundsCallsInFlight(t *testing.T) {
	const limit = 3
	var (
		mu             sync.Mutex
		inFlight, peak int
		entered        = make(chan struct{}, 10)
		release        = make(chan struct{})
	)
	api := fakeAPI{get: func(ctx context.Context, in *codedeploy.GetDeploymentInput) (*codedeploy.GetDeploymentOutput, error) {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		entered <- struct{}{}
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		return &codedeploy.GetDeploymentOutput{DeploymentInfo: &types.DeploymentInfo{DeploymentId: in.DeploymentId}}, nil
	}}
	c := deploy.NewClient(api, limit)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := c.Get(context.Background(), "d-LGUMS25CC"); err != nil {
				t.Error(err)
			}
		})
	}
	for range limit {
		<-entered
	}
	// With the limit reached, a caller whose context ends gives up waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx, "d-LGUMS25CC"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context while full = %v, want context.Canceled", err)
	}
	close(release)
	wg.Wait()
	if peak != limit {
		t.Errorf("peak calls in flight = %d, want %d", peak, limit)
	}
}

func TestLimitAnswers_RefusesBodiesOverTheLimit(t *testing.T) {
	for _, tt := range []struct {
		size    int
		chunked bool
		fails   bool
	}{{1024, false, false}, {1024, true, false}, {1025, true, true}, {1025, false, true}, {64 << 10, true, true}} {
		t.Run(fmt.Sprintf("%d chunked=%t", tt.size, tt.chunked), func(t *testing.T) {
			client := deploy.LimitAnswers(bodyClient{size: tt.size, chunked: tt.chunked}, 1024)
			resp, err := client.Do(&http.Request{})
			if err == nil {
				_, err = io.ReadAll(resp.Body)
			}
			var tooLarge *deploy.AnswerTooLargeError
			if got := errors.As(err, &tooLarge); got != tt.fails {
				t.Errorf("error %v: too large %t, want %t", err, got, tt.fails)
			}
		})
	}
}

// bodyClient answers every request with size bytes, with or without a Content-Length.
type bodyClient struct {
	size    int
	chunked bool
}

func (c bodyClient) Do(*http.Request) (*http.Response, error) {
	resp := &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(strings.Repeat("x", c.size))), ContentLength: int64(c.size)}
	if c.chunked {
		resp.ContentLength = -1
	}
	return resp, nil
}

// TestClient_StopsHaveSlotsOfTheirOwn: with every read slot taken by slow
// lookups, a stop still starts at once.
func TestClient_StopsHaveSlotsOfTheirOwn(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	api := fakeAPI{
		get: func(ctx context.Context, in *codedeploy.GetDeploymentInput) (*codedeploy.GetDeploymentOutput, error) {
			entered <- struct{}{}
			<-release
			return &codedeploy.GetDeploymentOutput{DeploymentInfo: &types.DeploymentInfo{DeploymentId: in.DeploymentId}}, nil
		},
		stop: func(context.Context, *codedeploy.StopDeploymentInput) (*codedeploy.StopDeploymentOutput, error) {
			return &codedeploy.StopDeploymentOutput{Status: types.StopStatusPending}, nil
		},
	}
	c := deploy.NewClient(api, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _, _ = c.Get(context.Background(), "d-LGUMS25CC") })
	}
	<-entered
	<-entered // every read slot is taken
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res, err := c.Stop(ctx, "d-LGUMS25CC", false); err != nil || res.Status != "Pending" {
		t.Errorf("Stop while reads are full = %+v, %v; want Pending at once", res, err)
	}
	close(release)
	wg.Wait()
}
