// Package deploy reads and stops AWS CodeDeploy deployments.
//
// A deployment is a Place (the bot's name for an AWS account, and a region)
// and an ID. Client acts in one place through one CodeDeploy client. Places
// acts in many, with one PlaceAPI (CodeDeploy clients for reads and stops)
// per account × region:
//
//	places, err := deploy.NewPlaces([]deploy.PlaceAPI{
//		{Place: deploy.Place{Account: "prod", Region: "eu-west-1"}, Reads: cd, Stops: cd, StopsFor: perUser},
//		…
//	}, deploy.PlacesOptions{})
//	d, err := places.Get(ctx, place, id)                      // one place
//	r, err := places.Stop(ctx, place, id, rollback, userID)   // through StopsFor(userID)
//	found, failed := places.Find(ctx, id)                     // every place at once
//	active, failed := places.Active(ctx, application, group)  // what can be stopped, newest first
//
// Find and Active never return an error: a place that could not answer is a
// PlaceFailure (its Place, a Reason in plain words, and the *Error), beside
// the answers of the others, and each place has its own deadline
// (PlacesOptions.LookupTimeout, 8 s by default), so the answer comes within
// it. Every other failure is a *Error, whose Kind says what to tell the user
// and whose Explain says it.
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
	Place                Place // where it was read; zero from a Client made by NewClient
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

// getAPI and stopAPI are the single operations Get and Stop call.
type getAPI interface {
	GetDeployment(ctx context.Context, in *codedeploy.GetDeploymentInput, optFns ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentOutput, error)
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
	return get(ctx, c.reads, c.readSlots, Place{}, id)
}

// Stop asks CodeDeploy to stop a deployment, with autoRollbackEnabled always
// sent explicitly. The SDK retries throttled or failed attempts; repeating a
// stop is harmless (a retry after an accepted attempt answers
// DeploymentAlreadyCompletedException or Pending again). Failures are *Error.
func (c *Client) Stop(ctx context.Context, id string, rollback bool) (StopResult, error) {
	return stop(ctx, c.stops, c.stopSlots, Place{}, id, rollback)
}

func get(ctx context.Context, api getAPI, slots chan struct{}, place Place, id string) (Deployment, error) {
	release, err := acquire(ctx, slots)
	if err != nil {
		return Deployment{}, newError("GetDeployment", place, id, err)
	}
	defer release()
	out, err := api.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
	if err != nil {
		return Deployment{}, newError("GetDeployment", place, id, err)
	}
	if out.DeploymentInfo == nil {
		return Deployment{}, newError("GetDeployment", place, id, fmt.Errorf("response has no deploymentInfo"))
	}
	d := fromInfo(out.DeploymentInfo)
	d.Place = place
	return d, nil
}

func stop(ctx context.Context, api StopAPI, slots chan struct{}, place Place, id string, rollback bool) (StopResult, error) {
	release, err := acquire(ctx, slots)
	if err != nil {
		return StopResult{}, newError("StopDeployment", place, id, err)
	}
	defer release()
	out, err := api.StopDeployment(ctx, &codedeploy.StopDeploymentInput{
		DeploymentId:        aws.String(id),
		AutoRollbackEnabled: aws.Bool(rollback),
	})
	if err != nil {
		return StopResult{}, newError("StopDeployment", place, id, err)
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
