// Package deploy reads and stops AWS CodeDeploy deployments.
package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
)

// API is the part of the CodeDeploy client this package calls, with the
// SDK's own signatures.
type API interface {
	GetDeployment(ctx context.Context, in *codedeploy.GetDeploymentInput, optFns ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentOutput, error)
	StopDeployment(ctx context.Context, in *codedeploy.StopDeploymentInput, optFns ...func(*codedeploy.Options)) (*codedeploy.StopDeploymentOutput, error)
}

var _ API = (*codedeploy.Client)(nil)

// Deployment statuses used by the bot. CodeDeploy also reports Created,
// Queued, Baking and Ready.
const (
	StatusInProgress = "InProgress"
	StatusSucceeded  = "Succeeded"
	StatusFailed     = "Failed"
	StatusStopped    = "Stopped"
)

// Deployment is what the bot shows about a deployment.
type Deployment struct {
	ID                   string
	Application          string
	Group                string
	Status               string
	Creator              string // "user", "autoscaling", "codeDeployRollback", …
	ComputePlatform      string // "Server", "Lambda" or "ECS"
	CreateTime           time.Time
	StartTime            time.Time
	CompleteTime         time.Time
	Overview             *Overview // nil when CodeDeploy sends none (Lambda and ECS often do not)
	RollbackDeploymentID string    // set once a rollback deployment was started
	RollbackMessage      string
	ErrorMessage         string
	// What is being deployed, which an engineer checks before stopping it.
	Revision    string // a summary of the revision's location, "" when CodeDeploy sends none
	Description string
	ConfigName  string // the deployment configuration, e.g. CodeDeployDefault.OneAtATime
}

// Overview counts the deployment's targets by state.
type Overview struct {
	Pending, InProgress, Succeeded, Failed, Skipped, Ready int64
}

// Final reports whether the deployment has reached a state it will not
// leave: Succeeded, Failed or Stopped.
func (d Deployment) Final() bool {
	switch d.Status {
	case StatusSucceeded, StatusFailed, StatusStopped:
		return true
	}
	return false
}

// StopResult is CodeDeploy's answer to a stop request.
type StopResult struct {
	Status  string // "Pending", "Succeeded" or "Forced"
	Message string
}

// DefaultMaxInFlight bounds concurrent CodeDeploy calls. It is above the
// number of people who plausibly act at once in an incident, so nobody waits
// behind another's call, yet a flood of commands cannot open unbounded
// connections or exhaust the SDK's retry budget.
const DefaultMaxInFlight = 128

// Client reads and stops deployments through API. It is safe for concurrent use.
//
// Reads and stops have capacity of their own: a flood of lookups (or slow
// follow-ups) can fill every read slot, and a stop still starts at once.
// Give it two API clients with separate HTTP transports (NewClientSplit) and
// stops have their own connections too.
type Client struct {
	reads, stops         API
	readSlots, stopSlots chan struct{}
}

// NewClient returns a Client allowing at most maxInFlight concurrent reads
// and, separately, maxInFlight concurrent stops (DefaultMaxInFlight when
// maxInFlight <= 0), all through api.
func NewClient(api API, maxInFlight int) *Client {
	return NewClientSplit(api, api, maxInFlight)
}

// NewClientSplit is NewClient with stops sent through their own API client.
func NewClientSplit(reads, stops API, maxInFlight int) *Client {
	if maxInFlight <= 0 {
		maxInFlight = DefaultMaxInFlight
	}
	return &Client{reads: reads, stops: stops,
		readSlots: make(chan struct{}, maxInFlight), stopSlots: make(chan struct{}, maxInFlight)}
}

// Get looks a deployment up. Failures are *Error.
func (c *Client) Get(ctx context.Context, id string) (Deployment, error) {
	release, err := acquire(ctx, c.readSlots)
	if err != nil {
		return Deployment{}, newError("GetDeployment", id, err)
	}
	defer release()
	out, err := c.reads.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
	if err != nil {
		return Deployment{}, newError("GetDeployment", id, err)
	}
	if out.DeploymentInfo == nil {
		return Deployment{}, newError("GetDeployment", id, fmt.Errorf("response has no deploymentInfo"))
	}
	return fromInfo(out.DeploymentInfo), nil
}

// Stop asks CodeDeploy to stop a deployment, with autoRollbackEnabled always
// sent explicitly. The SDK retries throttled or failed attempts; repeating a
// stop is harmless (a retry after an accepted attempt answers
// DeploymentAlreadyCompletedException or Pending again). Failures are *Error.
func (c *Client) Stop(ctx context.Context, id string, rollback bool) (StopResult, error) {
	release, err := acquire(ctx, c.stopSlots)
	if err != nil {
		return StopResult{}, newError("StopDeployment", id, err)
	}
	defer release()
	out, err := c.stops.StopDeployment(ctx, &codedeploy.StopDeploymentInput{
		DeploymentId:        aws.String(id),
		AutoRollbackEnabled: aws.Bool(rollback),
	})
	if err != nil {
		return StopResult{}, newError("StopDeployment", id, err)
	}
	return StopResult{Status: string(out.Status), Message: aws.ToString(out.StatusMessage)}, nil
}

func acquire(ctx context.Context, slots chan struct{}) (release func(), err error) {
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func fromInfo(in *types.DeploymentInfo) Deployment {
	d := Deployment{
		ID:              aws.ToString(in.DeploymentId),
		Application:     aws.ToString(in.ApplicationName),
		Group:           aws.ToString(in.DeploymentGroupName),
		Status:          string(in.Status),
		Creator:         string(in.Creator),
		ComputePlatform: string(in.ComputePlatform),
		CreateTime:      aws.ToTime(in.CreateTime),
		StartTime:       aws.ToTime(in.StartTime),
		CompleteTime:    aws.ToTime(in.CompleteTime),
		Revision:        revisionSummary(in.Revision),
		Description:     aws.ToString(in.Description),
		ConfigName:      aws.ToString(in.DeploymentConfigName),
	}
	if o := in.DeploymentOverview; o != nil {
		d.Overview = &Overview{Pending: o.Pending, InProgress: o.InProgress, Succeeded: o.Succeeded, Failed: o.Failed, Skipped: o.Skipped, Ready: o.Ready}
	}
	if r := in.RollbackInfo; r != nil {
		d.RollbackDeploymentID = aws.ToString(r.RollbackDeploymentId)
		d.RollbackMessage = aws.ToString(r.RollbackMessage)
	}
	if e := in.ErrorInformation; e != nil {
		d.ErrorMessage = aws.ToString(e.Message)
	}
	return d
}

// revisionSummary says where a revision lives, in one line: an S3 object
// (with its version), a GitHub commit, or for ECS and Lambda the AppSpec's
// hash (GetDeployment never returns the AppSpec's content).
func revisionSummary(r *types.RevisionLocation) string {
	if r == nil {
		return ""
	}
	short := func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	}
	switch {
	case r.S3Location != nil:
		l := r.S3Location
		s := "s3://" + aws.ToString(l.Bucket) + "/" + aws.ToString(l.Key)
		if v := aws.ToString(l.Version); v != "" {
			s += " (version " + v + ")"
		}
		if l.BundleType != "" {
			s += ", " + string(l.BundleType)
		}
		return s
	case r.GitHubLocation != nil:
		return "GitHub " + aws.ToString(r.GitHubLocation.Repository) + " @ " + short(aws.ToString(r.GitHubLocation.CommitId))
	case r.AppSpecContent != nil:
		return "AppSpec, sha256 " + short(aws.ToString(r.AppSpecContent.Sha256))
	case r.String_ != nil:
		return "AppSpec string, sha256 " + short(aws.ToString(r.String_.Sha256))
	}
	return string(r.RevisionType)
}
