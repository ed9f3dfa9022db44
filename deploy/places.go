package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
)

// Place is where a deployment lives: one of the bot's AWS accounts, by the
// bot's own name for it ("prod", or "default" for the bot's own
// credentials), and a region. A deployment is a Place and an ID.
type Place struct{ Account, Region string }

// String is "account/region", e.g. "prod/eu-west-1".
func (p Place) String() string { return p.Account + "/" + p.Region }

// ReadAPI is the part of the CodeDeploy client that Places reads through,
// with the SDK's own signatures.
type ReadAPI interface {
	getAPI
	ListDeployments(ctx context.Context, in *codedeploy.ListDeploymentsInput, optFns ...func(*codedeploy.Options)) (*codedeploy.ListDeploymentsOutput, error)
	BatchGetDeployments(ctx context.Context, in *codedeploy.BatchGetDeploymentsInput, optFns ...func(*codedeploy.Options)) (*codedeploy.BatchGetDeploymentsOutput, error)
}

// StopAPI is the part of the CodeDeploy client that Places stops through.
type StopAPI interface {
	StopDeployment(ctx context.Context, in *codedeploy.StopDeploymentInput, optFns ...func(*codedeploy.Options)) (*codedeploy.StopDeploymentOutput, error)
}

var (
	_ ReadAPI = (*codedeploy.Client)(nil)
	_ StopAPI = (*codedeploy.Client)(nil)
)

// PlaceAPI is how Places reaches one place.
type PlaceAPI struct {
	Place Place
	// Reads serves Get, Find and Active (in production: the account's
	// lookup session, a CodeDeploy client for Place.Region).
	Reads ReadAPI
	// Stops serves Stop when StopsFor is nil or the user ID is empty.
	Stops StopAPI
	// StopsFor, if set, returns the client a stop requested by a Slack user
	// goes through (in production: a role session named after the user, so
	// CloudTrail shows who stopped it). It is called on every Stop and
	// should cache.
	StopsFor func(userID string) StopAPI
}

// Defaults of PlacesOptions.
const (
	// DefaultLookupTimeout bounds each place's part of Find and Active, so
	// one slow or unreachable place cannot delay the answer past ~10 s.
	DefaultLookupTimeout = 8 * time.Second
	// DefaultFanOut is how many places Find and Active ask at once.
	DefaultFanOut = 8
)

// PlacesOptions tunes NewPlaces; the zero value is the defaults.
type PlacesOptions struct {
	// LookupTimeout is the deadline of each place's part of one Find or
	// Active, counted from the call (time spent waiting for a fan-out slot
	// counts); default DefaultLookupTimeout.
	LookupTimeout time.Duration
	// FanOut is how many places one Find or Active asks at once; default
	// DefaultFanOut.
	FanOut int
	// MaxInFlight bounds concurrent CodeDeploy reads across all places and,
	// separately, stops (as in NewClient); default DefaultMaxInFlight.
	MaxInFlight int
}

// Places reads and stops deployments in several accounts and regions. It is
// safe for concurrent use.
//
// Get and Stop act in one named place. Find looks an ID up in every place
// (deployment IDs are unique per account and region, not globally), and
// Active lists what is running everywhere. Find and Active ask DefaultFanOut
// places at once, each with a deadline of its own, and report places that
// could not answer as PlaceFailures beside the answers of the others:
//
//	found, failed := places.Find(ctx, "d-LGUMS25CC")
//	// len(found) == 1: that deployment; > 1: ask which; 0: not found,
//	// unless failed is not empty (it may be in a place that did not answer).
//
// Every Deployment carries its Place, and every error is a *Error with Place set.
type Places struct {
	places               []PlaceAPI
	index                map[Place]int
	timeout              time.Duration
	fanOut               int
	readSlots, stopSlots chan struct{}
}

// NewPlaces returns Places over apis, asked in that order. It refuses an
// empty list, a place named twice and a place without Reads or Stops.
func NewPlaces(apis []PlaceAPI, opts PlacesOptions) (*Places, error) {
	if len(apis) == 0 {
		return nil, errors.New("deploy.NewPlaces: no places")
	}
	opts.LookupTimeout = cmp.Or(opts.LookupTimeout, DefaultLookupTimeout)
	opts.FanOut = cmp.Or(opts.FanOut, DefaultFanOut)
	opts.MaxInFlight = cmp.Or(opts.MaxInFlight, DefaultMaxInFlight)
	p := &Places{places: slices.Clone(apis), index: map[Place]int{}, timeout: opts.LookupTimeout, fanOut: opts.FanOut,
		readSlots: make(chan struct{}, opts.MaxInFlight), stopSlots: make(chan struct{}, opts.MaxInFlight)}
	for i, a := range apis {
		switch {
		case a.Place.Account == "" || a.Place.Region == "":
			return nil, fmt.Errorf("deploy.NewPlaces: place %d (%s) has no account or region", i, a.Place)
		case a.Reads == nil || a.Stops == nil:
			return nil, fmt.Errorf("deploy.NewPlaces: %s has no Reads or Stops client", a.Place)
		}
		if _, dup := p.index[a.Place]; dup {
			return nil, fmt.Errorf("deploy.NewPlaces: %s is listed twice", a.Place)
		}
		p.index[a.Place] = i
	}
	return p, nil
}

// Places lists the places, in the order given to NewPlaces.
func (p *Places) Places() []Place {
	out := make([]Place, len(p.places))
	for i, a := range p.places {
		out[i] = a.Place
	}
	return out
}

func (p *Places) lookup(op string, place Place, id string) (PlaceAPI, error) {
	i, ok := p.index[place]
	if !ok {
		return PlaceAPI{}, &Error{Kind: KindUnknownPlace, Op: op, Place: place, DeploymentID: id,
			Err: fmt.Errorf("no such place %s", place)}
	}
	return p.places[i], nil
}

// Get reads one deployment in one place. Failures are *Error (KindNotFound
// when that place has no such deployment, KindUnknownPlace when Places has no
// such place).
func (p *Places) Get(ctx context.Context, place Place, id string) (Deployment, error) {
	a, err := p.lookup("GetDeployment", place, id)
	if err != nil {
		return Deployment{}, err
	}
	return get(ctx, a.Reads, p.readSlots, place, id)
}

// Stop stops one deployment in one place, as Client.Stop does, through the
// place's StopsFor(userID) client when it has one and userID is not empty.
// Failures are *Error.
func (p *Places) Stop(ctx context.Context, place Place, id string, rollback bool, userID string) (StopResult, error) {
	a, err := p.lookup("StopDeployment", place, id)
	if err != nil {
		return StopResult{}, err
	}
	api := a.Stops
	if a.StopsFor != nil && userID != "" {
		api = a.StopsFor(userID)
	}
	return stop(ctx, api, p.stopSlots, place, id, rollback)
}

// PlaceFailure is a place that could not answer a Find or an Active.
type PlaceFailure struct {
	Place  Place
	Reason string // plain words, e.g. "AWS refused access (AccessDeniedException)"
	Err    *Error
}

// String is "place: reason", e.g. "prod/eu-west-1: no answer within 8s".
func (f PlaceFailure) String() string { return f.Place.String() + ": " + f.Reason }

// Find looks id up in every place at once and returns the places that have
// it (in Places order) and those that failed to answer. A place that
// answers DeploymentDoesNotExist is neither. It returns within about
// LookupTimeout whatever the places do.
func (p *Places) Find(ctx context.Context, id string) (found []Deployment, failed []PlaceFailure) {
	results := p.each(ctx, func(ctx context.Context, a PlaceAPI) ([]Deployment, error) {
		d, err := get(ctx, a.Reads, p.readSlots, a.Place, id)
		if err != nil {
			var de *Error
			if errors.As(err, &de) && de.Kind == KindNotFound {
				return nil, nil
			}
			return nil, err
		}
		return []Deployment{d}, nil
	})
	for _, r := range results {
		found = append(found, r.deps...)
		if r.failure != nil {
			failed = append(failed, *r.failure)
		}
	}
	return found, failed
}

// ActiveStatuses are the statuses Active lists: every status a deployment
// can still be stopped in (all but Succeeded, Failed and Stopped).
var ActiveStatuses = []types.DeploymentStatus{
	types.DeploymentStatusCreated, types.DeploymentStatusQueued, types.DeploymentStatusInProgress,
	types.DeploymentStatusBaking, types.DeploymentStatusReady,
}

// Active lists the deployments in an active status (ActiveStatuses) in every
// place, newest first (CreateTime), and the places that failed to answer.
// application and group filter when not empty.
//
// CodeDeploy's ListDeployments takes applicationName and
// deploymentGroupName together or not at all ("If applicationName is
// specified, then deploymentGroupName must be specified. If it is not
// specified, then deploymentGroupName must not be specified.", API
// reference, https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_ListDeployments.html).
// Without both it lists every deployment of the account in the region, so
// Active sends both names only when both are given, and otherwise lists
// the whole place and filters by the one name given. A place where the
// application or group does not exist has none active: not a failure.
func (p *Places) Active(ctx context.Context, application, group string) (active []Deployment, failed []PlaceFailure) {
	results := p.each(ctx, func(ctx context.Context, a PlaceAPI) ([]Deployment, error) {
		return p.active(ctx, a, application, group)
	})
	for _, r := range results {
		active = append(active, r.deps...)
		if r.failure != nil {
			failed = append(failed, *r.failure)
		}
	}
	slices.SortStableFunc(active, func(a, b Deployment) int {
		if c := b.CreateTime.Compare(a.CreateTime); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return active, failed
}

// maxBatchGet is BatchGetDeployments' limit: "deploymentIds … The unique ID
// of a deployment. … Array Members: Maximum number of 25 items." (API
// reference, API_BatchGetDeployments.html; more is answered
// BatchLimitExceededException).
const maxBatchGet = 25

// maxListPages stops Active following nextTokens forever if a buggy
// endpoint never stops handing them out (a page holds up to 100 IDs).
const maxListPages = 1000

func (p *Places) active(ctx context.Context, a PlaceAPI, application, group string) ([]Deployment, error) {
	in := &codedeploy.ListDeploymentsInput{IncludeOnlyStatuses: ActiveStatuses}
	if application != "" && group != "" {
		in.ApplicationName, in.DeploymentGroupName = aws.String(application), aws.String(group)
	}
	var ids []string
	for page := 0; ; page++ {
		if page == maxListPages {
			return nil, newError("ListDeployments", a.Place, "", fmt.Errorf("more than %d pages of deployments", maxListPages))
		}
		out, err := withSlot(ctx, p.readSlots, func() (*codedeploy.ListDeploymentsOutput, error) {
			return a.Reads.ListDeployments(ctx, in)
		})
		var noApp *types.ApplicationDoesNotExistException
		var noGroup *types.DeploymentGroupDoesNotExistException
		if errors.As(err, &noApp) || errors.As(err, &noGroup) {
			return nil, nil // not in this place: nothing active here
		}
		if err != nil {
			return nil, newError("ListDeployments", a.Place, "", err)
		}
		ids = append(ids, out.Deployments...)
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var deps []Deployment
	for chunk := range slices.Chunk(ids, maxBatchGet) {
		out, err := withSlot(ctx, p.readSlots, func() (*codedeploy.BatchGetDeploymentsOutput, error) {
			return a.Reads.BatchGetDeployments(ctx, &codedeploy.BatchGetDeploymentsInput{DeploymentIds: chunk})
		})
		if err != nil {
			return nil, newError("BatchGetDeployments", a.Place, "", err)
		}
		for i := range out.DeploymentsInfo {
			d := fromInfo(&out.DeploymentsInfo[i])
			d.Place = a.Place
			switch {
			case d.Final(), // finished between the list and the read
				application != "" && d.Application != application,
				group != "" && d.Group != group:
				continue
			}
			deps = append(deps, d)
		}
	}
	return deps, nil
}

func withSlot[T any](ctx context.Context, slots chan struct{}, call func() (T, error)) (T, error) {
	release, err := acquire(ctx, slots)
	if err != nil {
		var zero T
		return zero, err
	}
	defer release()
	return call()
}

type placeResult struct {
	deps    []Deployment
	failure *PlaceFailure
}

// each runs f in every place, FanOut at a time, each with a deadline of
// LookupTimeout from now, and returns the results in Places order.
func (p *Places) each(ctx context.Context, f func(context.Context, PlaceAPI) ([]Deployment, error)) []placeResult {
	deadline := time.Now().Add(p.timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	results := make([]placeResult, len(p.places))
	fanOut := make(chan struct{}, p.fanOut)
	var wg sync.WaitGroup
	for i, a := range p.places {
		wg.Go(func() {
			var (
				deps []Deployment
				err  error
			)
			select {
			case fanOut <- struct{}{}:
				deps, err = f(ctx, a)
				<-fanOut
			case <-ctx.Done():
				err = newError("", a.Place, "", ctx.Err())
			}
			if err == nil {
				results[i] = placeResult{deps: deps}
				return
			}
			var de *Error
			if !errors.As(err, &de) {
				de = newError("", a.Place, "", err)
			}
			results[i] = placeResult{failure: &PlaceFailure{Place: a.Place, Reason: p.reason(ctx, de), Err: de}}
		})
	}
	wg.Wait()
	return results
}

// CredentialsError is a place whose credentials could not be obtained, e.g.
// an sts:AssumeRole that was refused. Wrap a credentials provider's errors in
// it (the SDK keeps the chain), and PlaceFailure.Reason names the role.
type CredentialsError struct {
	RoleARN string
	Err     error
}

func (e *CredentialsError) Error() string {
	return fmt.Sprintf("assuming role %s: %v", e.RoleARN, e.Err)
}

func (e *CredentialsError) Unwrap() error { return e.Err }

// reason says in plain words why a place did not answer.
func (p *Places) reason(ctx context.Context, e *Error) string {
	code := ""
	if e.Code != "" {
		code = " (" + e.Code + ")"
	}
	var ce *CredentialsError
	switch {
	case errors.As(e, &ce):
		return "the bot could not assume role " + ce.RoleARN + code
	case e.Kind == KindAccessDenied:
		return "AWS refused access" + code
	case e.Kind == KindThrottled:
		return "throttled by AWS, even after retries" + code
	case e.Kind == KindUnreachable:
		return "CodeDeploy could not be reached (network failure)"
	case e.Kind == KindCanceled && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", p.timeout)
	case e.Kind == KindCanceled:
		return "the lookup was canceled"
	case e.Kind == KindTooLarge:
		return fmt.Sprintf("the answer was over %d KiB", MaxAnswerBytes>>10)
	case code != "":
		return "CodeDeploy answered" + code
	}
	return "failed: " + e.Err.Error()
}
