// Package fakecodedeploy is a loopback fake of AWS CodeDeploy that speaks
// AWS JSON 1.1, for end-to-end tests, benchmarks and the offline sandbox.
//
// Point the real aws-sdk-go-v2 CodeDeploy client at it, either with
// AWS_ENDPOINT_URL_CODEDEPLOY=URL() or with
// codedeploy.Options.BaseEndpoint = aws.String(URL()). Only GetDeployment and
// StopDeployment are implemented, and they are as strict as the real service:
// POST /, Content-Type application/x-amz-json-1.1, an X-Amz-Target header, a
// well-formed SigV4 Authorization header scoped to "codedeploy" and an
// X-Amz-Date header. The signature itself is not verified (the fake does not
// know the secret key).
//
// Each Deployment carries its wire fields and a small script: what
// StopDeployment answers, how many GetDeployment reads (or how much time) pass
// before a stop takes effect, injected failures and answer latency. An
// accepted stop with autoRollbackEnabled=true creates a linked rollback
// deployment when the original becomes Stopped.
//
// Every request is recorded as a Call; tests wait on them with WaitCalls
// (no sleeping), and Subscribe notifies on every state change.
package fakecodedeploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Deployment statuses as CodeDeploy spells them on the wire.
const (
	StatusCreated    = "Created"
	StatusQueued     = "Queued"
	StatusInProgress = "InProgress"
	StatusBaking     = "Baking"
	StatusSucceeded  = "Succeeded"
	StatusFailed     = "Failed"
	StatusStopped    = "Stopped"
	StatusReady      = "Ready"
)

// StopDeployment answers (the "status" field of its output).
const (
	StopPending   = "Pending"
	StopSucceeded = "Succeeded"
	StopForced    = "Forced"
)

// Special Failure codes that are not answered with an HTTP 400 exception.
const (
	// FailNetwork hijacks the connection and closes it without a response.
	FailNetwork = "network"
	// Fail500 answers HTTP 500 {"__type":"InternalFailure",…}.
	Fail500 = "500"
)

// Default StopDeployment status messages. The Pending and Succeeded texts are
// the ones AWS shows in its documentation examples.
const (
	MessageStopPending   = "Stopping Pending. Stopping to schedule commands in the deployment instances"
	MessageStopSucceeded = "No more commands will be scheduled for execution in the deployment instances"
	MessageStopForced    = "The deployment was stopped forcibly. Commands already running in the deployment instances were interrupted"
)

// Target prefix of the CodeDeploy JSON 1.1 API (X-Amz-Target: Prefix+Operation).
const TargetPrefix = "CodeDeploy_20141006."

// Operation names accepted in X-Amz-Target (after TargetPrefix) and used as Call.Target.
const (
	OpGetDeployment  = "GetDeployment"
	OpStopDeployment = "StopDeployment"
)

const (
	contentType = "application/x-amz-json-1.1"
	account     = "123456789012"
	maxBody     = 1 << 20
	amzDate     = "20060102T150405Z"
)

var deploymentIDRE = regexp.MustCompile(`^d-[A-Z0-9]{9}$`)

// ValidID reports whether id has the shape of a CodeDeploy deployment ID:
// "d-" followed by 9 upper-case letters or digits.
func ValidID(id string) bool { return deploymentIDRE.MatchString(id) }

// Overview is the per-instance count summary (DeploymentInfo.deploymentOverview).
type Overview struct {
	Pending, InProgress, Succeeded, Failed, Skipped, Ready int64
}

// Failure makes calls for one deployment fail before normal processing.
type Failure struct {
	// Code is the exception type answered as HTTP 400 {"__type": Code,
	// "message": …}, e.g. "ThrottlingException", "AccessDeniedException",
	// "DeploymentGroupDoesNotExistException",
	// "UnsupportedActionForDeploymentTypeException". Special values: FailNetwork
	// ("network": close the connection without a response) and Fail500 ("500":
	// HTTP 500 InternalFailure). "InternalFailure" is also answered with 500,
	// "ServiceUnavailable"/"ServiceUnavailableException" with 503.
	Code string
	// Message is the exception message; empty picks a realistic default.
	Message string
	// Times is how many calls fail; 0 means every call. The fake counts it
	// down in its own copy and drops the Failure once it is used up.
	Times int
}

// Deployment is one simulated deployment: the fields GetDeployment returns,
// then the script that drives it. The zero values of most fields are filled
// with realistic defaults by Put.
type Deployment struct {
	// ID is the deployment ID ("d-" + 9 upper-case alphanumerics). Put
	// generates one when empty. IDs that do not match are stored but can never
	// be reached over the wire (InvalidDeploymentIdException).
	ID string
	// Application and Group are the application and deployment group names.
	Application, Group string
	// Status is one of the Status* constants; Put defaults it to "InProgress".
	Status string
	// Creator is "user" (Put's default), "autoscaling", "codeDeployRollback", …
	Creator string
	// ComputePlatform is "Server" (Put's default), "Lambda" or "ECS".
	ComputePlatform string
	// DeploymentConfigName defaults to the platform's CodeDeployDefault config.
	DeploymentConfigName string
	// Description is the free-text description.
	Description string
	// CreateTime defaults to now. StartTime defaults to CreateTime unless the
	// status is Created or Queued. CompleteTime defaults to now for a final
	// status. Zero times are omitted on the wire; precision is milliseconds.
	CreateTime, StartTime, CompleteTime time.Time
	// Overview is the instance count summary.
	Overview Overview
	// RollbackDeploymentID, RollbackMessage and RollbackTriggeringDeploymentID
	// form rollbackInfo (omitted when all are empty).
	RollbackDeploymentID, RollbackMessage, RollbackTriggeringDeploymentID string
	// ErrorCode and ErrorMessage form errorInformation (omitted when both are
	// empty); codes are types.ErrorCode values such as "HEALTH_CONSTRAINTS".
	ErrorCode, ErrorMessage string
	// StatusMessages is deploymentStatusMessages.
	StatusMessages []string

	// StopStatus is what an accepted StopDeployment answers: StopPending
	// (default) stops the deployment later (PollsUntilFinal or StopTakes);
	// any other value, e.g. StopSucceeded or StopForced, is answered verbatim
	// and the deployment becomes Stopped at once.
	StopStatus string
	// StopMessage is the answered statusMessage; empty picks MessageStop*.
	StopMessage string
	// PollsUntilFinal is, after an accepted Pending stop, how many
	// GetDeployment answers still show the pre-stop status before it becomes
	// Stopped. 0 means 1; negative means none (the first read shows Stopped).
	PollsUntilFinal int
	// StopTakes, when positive, replaces PollsUntilFinal: the deployment
	// becomes Stopped this long after the stop was accepted (checked on every
	// read and by the Options.Tick ticker).
	StopTakes time.Duration
	// FinishAfterPolls, when non-zero, lets a deployment that is not being
	// stopped finish by itself as FinishStatus: after this many GetDeployment
	// answers (negative: at the first read). Counted from Put.
	FinishAfterPolls int
	// FinishAfter, when positive, lets the deployment finish as FinishStatus
	// this long after Put (checked on reads and by the ticker).
	FinishAfter time.Duration
	// FinishStatus is the final status of FinishAfterPolls/FinishAfter:
	// "Succeeded" (default) or "Failed".
	FinishStatus string
	// GetFailure and StopFailure make GetDeployment and StopDeployment calls
	// for this deployment fail.
	GetFailure, StopFailure *Failure
	// GetDelay and StopDelay are answer latencies for this deployment, added
	// to SetDelay's. The fake returns early if the client gives up.
	GetDelay, StopDelay time.Duration

	// StopRequestedAt is set by the fake when it accepts a stop (zero: no
	// stop). Putting a non-final Deployment with it set simulates a stop that
	// is already pending.
	StopRequestedAt time.Time
	// StopAutoRollback is set by the fake to the accepted stop's
	// autoRollbackEnabled (omitted counts as false).
	StopAutoRollback bool
}

// Final reports whether status is final: Succeeded, Failed or Stopped.
func Final(status string) bool {
	return status == StatusSucceeded || status == StatusFailed || status == StatusStopped
}

// Options configures New.
type Options struct {
	// Logf, if set, receives one line per request.
	Logf func(format string, args ...any)
	// Now is the clock for timestamps, StopTakes and FinishAfter; default time.Now.
	Now func() time.Time
	// Tick, if positive, runs a background ticker that applies time-based
	// transitions (StopTakes, FinishAfter) without waiting for a read, so
	// Subscribe fires for them (the sandbox's live panel).
	Tick time.Duration
}

// Call is one recorded request.
type Call struct {
	// Target is the operation ("GetDeployment" or "StopDeployment"), or for a
	// request rejected before that was known, its X-Amz-Target without the
	// "CodeDeploy_20141006." prefix (may be empty).
	Target string
	// DeploymentID is the deploymentId sent (empty if none or not parsed).
	DeploymentID string
	// AutoRollbackEnabled is StopDeployment's autoRollbackEnabled (nil if omitted).
	AutoRollbackEnabled *bool
	// At is when the request arrived (Options.Now).
	At time.Time
	// Result is "ok", the error code answered ("ThrottlingException",
	// "network", "InternalFailure", …), or "canceled" if the client gave up
	// (or the server closed) during the answer delay; nothing was processed then.
	Result string
}

// String renders c like "StopDeployment d-LGUMS25CC autoRollbackEnabled=true",
// with " => Result" appended when Result is not "ok".
func (c Call) String() string {
	var b strings.Builder
	if c.Target == "" {
		b.WriteString("(no target)")
	}
	b.WriteString(c.Target)
	if c.DeploymentID != "" {
		b.WriteString(" " + c.DeploymentID)
	} else {
		b.WriteString(" (no deploymentId)")
	}
	if c.AutoRollbackEnabled != nil {
		fmt.Fprintf(&b, " autoRollbackEnabled=%t", *c.AutoRollbackEnabled)
	}
	if c.Result != "ok" {
		b.WriteString(" => " + c.Result)
	}
	return b.String()
}

// entry is a stored deployment plus script counters that live from Put.
type entry struct {
	d              Deployment
	stopPollsLeft  int       // reads still showing the pre-stop status
	finishPolls    bool      // FinishAfterPolls active
	finishLeft     int       // reads still showing the current status
	finishDeadline time.Time // FinishAfter deadline (zero: none)
}

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	opts Options
	now  func() time.Time
	ln   net.Listener
	srv  *http.Server
	url  string

	mu      sync.Mutex
	deps    map[string]*entry
	calls   []Call
	delay   time.Duration
	delayed int           // requests waiting out their answer delay
	changed chan struct{} // closed and replaced on every change
	subs    map[int]chan struct{}
	nextSub int
	closed  bool

	testHookDelay func() // called when an answer delay starts (tests only)

	done      chan struct{}
	wg        sync.WaitGroup // serve loop, ticker, handlers
	closeOnce sync.Once
}

// New starts a fake listening on 127.0.0.1 on a free port.
func New(opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakecodedeploy: listen: %w", err)
	}
	s := &Server{
		opts:    opts,
		now:     opts.Now,
		ln:      ln,
		url:     "http://" + ln.Addr().String(),
		deps:    make(map[string]*entry),
		changed: make(chan struct{}),
		subs:    make(map[int]chan struct{}),
		done:    make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.handle),
		ReadHeaderTimeout: 10 * time.Second,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
	if opts.Tick > 0 {
		s.wg.Add(1)
		go s.tick(opts.Tick)
	}
	return s, nil
}

// URL is the endpoint, "http://127.0.0.1:PORT".
func (s *Server) URL() string { return s.url }

// Close stops the server, aborts pending answer delays, closes Subscribe
// channels, wakes WaitCalls, and waits for its goroutines. Idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.done)
		for id, ch := range s.subs {
			close(ch)
			delete(s.subs, id)
		}
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
		_ = s.srv.Close()
		s.wg.Wait()
	})
}

func (s *Server) tick(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.mu.Lock()
			if s.advanceLocked(s.now()) {
				s.notifyLocked()
			}
			s.mu.Unlock()
		}
	}
}

// Put adds or replaces a deployment, fills defaults (see Deployment), starts
// its script counters afresh and returns its ID.
func (s *Server) Put(d Deployment) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if d.ID == "" {
		d.ID = s.newIDLocked()
	}
	d = cloneDeployment(d)
	applyDefaults(&d, now)
	e := &entry{d: d}
	if stopPending(d) {
		e.stopPollsLeft = pollsLeft(d.PollsUntilFinal, 1)
	}
	if d.FinishAfterPolls != 0 {
		e.finishPolls = true
		e.finishLeft = pollsLeft(d.FinishAfterPolls, 0)
	}
	if d.FinishAfter > 0 {
		e.finishDeadline = now.Add(d.FinishAfter)
	}
	s.deps[d.ID] = e
	s.notifyLocked()
	return d.ID
}

func pollsLeft(n, zero int) int {
	switch {
	case n == 0:
		return zero
	case n < 0:
		return 0
	}
	return n
}

func applyDefaults(d *Deployment, now time.Time) {
	if d.Status == "" {
		d.Status = StatusInProgress
	}
	if d.Creator == "" {
		d.Creator = "user"
	}
	if d.ComputePlatform == "" {
		d.ComputePlatform = "Server"
	}
	if d.DeploymentConfigName == "" {
		switch d.ComputePlatform {
		case "Lambda":
			d.DeploymentConfigName = "CodeDeployDefault.LambdaAllAtOnce"
		case "ECS":
			d.DeploymentConfigName = "CodeDeployDefault.ECSAllAtOnce"
		default:
			d.DeploymentConfigName = "CodeDeployDefault.OneAtATime"
		}
	}
	if d.CreateTime.IsZero() {
		d.CreateTime = now
	}
	if d.StartTime.IsZero() && d.Status != StatusCreated && d.Status != StatusQueued {
		d.StartTime = d.CreateTime
	}
	if d.CompleteTime.IsZero() && Final(d.Status) {
		d.CompleteTime = now
	}
}

// Deployment returns a copy of a deployment after applying due time-based
// transitions. Reading does not count as a GetDeployment poll.
func (s *Server) Deployment(id string) (Deployment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceAndNotifyLocked()
	e, ok := s.deps[id]
	if !ok {
		return Deployment{}, false
	}
	return cloneDeployment(e.d), true
}

// Deployments returns copies of all deployments sorted by CreateTime (then ID).
func (s *Server) Deployments() []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceAndNotifyLocked()
	out := make([]Deployment, 0, len(s.deps))
	for _, e := range s.deps {
		out = append(out, cloneDeployment(e.d))
	}
	slices.SortFunc(out, func(a, b Deployment) int {
		if c := a.CreateTime.Compare(b.CreateTime); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Update changes a stored deployment in place under the lock and reports
// whether it exists. f must not call the Server. The ID cannot be changed and
// script counters are not restarted (use Put for that).
func (s *Server) Update(id string, f func(*Deployment)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.deps[id]
	if !ok {
		return false
	}
	f(&e.d)
	e.d.ID = id
	e.d = cloneDeployment(e.d)
	s.notifyLocked()
	return true
}

// SetDelay sets a latency added to every answer (benchmarks), on top of the
// per-deployment GetDelay/StopDelay.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// Calls returns a copy of all recorded calls in arrival order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = cloneCall(c)
	}
	return out
}

// Count returns how many recorded calls have this target and deployment ID
// (an empty target or id matches any), whatever their result.
func (s *Server) Count(target, id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if (target == "" || c.Target == target) && (id == "" || c.DeploymentID == id) {
			n++
		}
	}
	return n
}

// WaitCalls blocks until at least n recorded calls satisfy match (nil matches
// all) and returns all matching calls, or returns those seen so far with an
// error when ctx is done or the server is closed.
func (s *Server) WaitCalls(ctx context.Context, match func(Call) bool, n int) ([]Call, error) {
	for {
		s.mu.Lock()
		all := make([]Call, len(s.calls))
		for i, c := range s.calls {
			all[i] = cloneCall(c)
		}
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		var got []Call
		for _, c := range all {
			if match == nil || match(c) {
				got = append(got, c)
			}
		}
		if len(got) >= n {
			return got, nil
		}
		if closed {
			return got, fmt.Errorf("fakecodedeploy: waiting for %d matching calls, saw %d: server closed", n, len(got))
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return got, fmt.Errorf("fakecodedeploy: waiting for %d matching calls, saw %d: %w", n, len(got), ctx.Err())
		}
	}
}

// WaitDelayed blocks until at least n requests are waiting out their answer
// delay (SetDelay, GetDelay, StopDelay): calls the client has made and is
// still waiting for.
func (s *Server) WaitDelayed(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, ch, closed := s.delayed, s.changed, s.closed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		if closed {
			return fmt.Errorf("fakecodedeploy: waiting for %d delayed requests, saw %d: server closed", n, got)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakecodedeploy: waiting for %d delayed requests, saw %d: %w", n, got, ctx.Err())
		}
	}
}

// Subscribe returns a channel that receives (without blocking the fake, so
// signals coalesce) after every state change: a call, Put, Update or a
// transition. cancel unsubscribes and closes the channel; Close closes it too.
func (s *Server) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(ch)
		return ch, func() {}
	}
	id := s.nextSub
	s.nextSub++
	s.subs[id] = ch
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c, ok := s.subs[id]; ok {
			delete(s.subs, id)
			close(c)
		}
	}
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
	for _, ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *Server) advanceAndNotifyLocked() {
	if s.advanceLocked(s.now()) {
		s.notifyLocked()
	}
}

// RandomID returns a fresh deployment ID: "d-" + 9 upper-case alphanumerics.
func RandomID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := []byte("d-.........")
	for i := 2; i < len(b); i++ {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

func (s *Server) newIDLocked() string {
	for {
		id := RandomID()
		if _, taken := s.deps[id]; !taken {
			return id
		}
	}
}

// ---- transitions ----

// advanceLocked applies due time-based transitions and reports whether any happened.
func (s *Server) advanceLocked(now time.Time) bool {
	changed := false
	ids := make([]string, 0, len(s.deps))
	for id := range s.deps {
		ids = append(ids, id)
	}
	for _, id := range ids {
		e := s.deps[id]
		if Final(e.d.Status) {
			continue
		}
		if stopPending(e.d) {
			if e.d.StopTakes > 0 {
				if at := e.d.StopRequestedAt.Add(e.d.StopTakes); !now.Before(at) {
					s.markStoppedLocked(e, at)
					changed = true
				}
			}
			continue
		}
		if !e.finishDeadline.IsZero() && !now.Before(e.finishDeadline) {
			finishLocked(e, e.finishDeadline)
			changed = true
		}
	}
	return changed
}

func stopPending(d Deployment) bool {
	return !d.StopRequestedAt.IsZero() && !Final(d.Status)
}

// pollLocked applies read-driven transitions for one GetDeployment answer.
func (s *Server) pollLocked(e *entry, now time.Time) {
	if Final(e.d.Status) {
		return
	}
	if stopPending(e.d) {
		if e.d.StopTakes > 0 {
			return
		}
		if e.stopPollsLeft > 0 {
			e.stopPollsLeft--
			return
		}
		s.markStoppedLocked(e, now)
		return
	}
	if e.finishPolls {
		if e.finishLeft > 0 {
			e.finishLeft--
			return
		}
		finishLocked(e, now)
	}
}

// markStoppedLocked makes e Stopped at time at and creates the rollback deployment
// if the accepted stop asked for one.
func (s *Server) markStoppedLocked(e *entry, at time.Time) {
	d := &e.d
	d.Status = StatusStopped
	d.CompleteTime = at
	if d.StartTime.IsZero() {
		d.StartTime = d.CreateTime
	}
	d.Overview.Failed += d.Overview.InProgress
	d.Overview.Skipped += d.Overview.Pending
	d.Overview.InProgress, d.Overview.Pending = 0, 0
	if !d.StopAutoRollback || d.RollbackDeploymentID != "" {
		return
	}
	o := d.Overview
	total := o.Pending + o.InProgress + o.Succeeded + o.Failed + o.Skipped + o.Ready
	rb := Deployment{
		ID:                             s.newIDLocked(),
		Application:                    d.Application,
		Group:                          d.Group,
		Status:                         StatusInProgress,
		Creator:                        "codeDeployRollback",
		ComputePlatform:                d.ComputePlatform,
		DeploymentConfigName:           d.DeploymentConfigName,
		CreateTime:                     at,
		StartTime:                      at,
		Overview:                       Overview{InProgress: total},
		RollbackTriggeringDeploymentID: d.ID,
		PollsUntilFinal:                d.PollsUntilFinal,
		StopTakes:                      d.StopTakes,
		FinishStatus:                   StatusSucceeded,
	}
	re := &entry{}
	if d.StopTakes > 0 {
		rb.FinishAfter = d.StopTakes
		re.finishDeadline = at.Add(d.StopTakes)
	} else {
		rb.FinishAfterPolls = d.PollsUntilFinal
		if rb.FinishAfterPolls == 0 {
			rb.FinishAfterPolls = 1
		}
		re.finishPolls = true
		re.finishLeft = pollsLeft(rb.FinishAfterPolls, 0)
	}
	re.d = rb
	s.deps[rb.ID] = re
	d.RollbackDeploymentID = rb.ID
	d.RollbackMessage = fmt.Sprintf("Rollback deployment %s was created by a stop request on deployment %s", rb.ID, d.ID)
}

func finishLocked(e *entry, at time.Time) {
	d := &e.d
	status := d.FinishStatus
	if status == "" {
		status = StatusSucceeded
	}
	d.Status = status
	d.CompleteTime = at
	if d.StartTime.IsZero() {
		d.StartTime = d.CreateTime
	}
	if status == StatusSucceeded {
		d.Overview.Succeeded += d.Overview.Pending + d.Overview.InProgress
	} else {
		d.Overview.Failed += d.Overview.InProgress
		d.Overview.Skipped += d.Overview.Pending
	}
	d.Overview.InProgress, d.Overview.Pending = 0, 0
}

// ---- HTTP ----

// apiError is an error answer.
type apiError struct {
	status  int
	code    string
	message string
}

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

type request struct {
	DeploymentID        *string `json:"deploymentId"`
	AutoRollbackEnabled *bool   `json:"autoRollbackEnabled"`
}

func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Amzn-Requestid", newUUID())
	if !s.enter() {
		writeError(w, errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "Service is shutting down."))
		return
	}
	defer s.wg.Done()

	call := Call{Target: strings.TrimPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix), At: s.now()}
	op, region, in, aerr := checkRequest(r)
	if aerr != nil {
		call.Result = aerr.code
		s.finish(call)
		writeError(w, aerr)
		return
	}
	call.Target = op
	call.DeploymentID = deref(in.DeploymentID)
	if op == OpStopDeployment {
		call.AutoRollbackEnabled = in.AutoRollbackEnabled
	}
	id := call.DeploymentID

	// Answer latency first; a client that gives up gets nothing processed.
	s.mu.Lock()
	delay := s.delay
	if e, ok := s.deps[id]; ok {
		if op == OpGetDeployment {
			delay += e.d.GetDelay
		} else {
			delay += e.d.StopDelay
		}
	}
	hook := s.testHookDelay
	if delay > 0 {
		s.delayed++
		s.notifyLocked()
		defer func() {
			s.mu.Lock()
			s.delayed--
			s.mu.Unlock()
		}()
	}
	s.mu.Unlock()
	if delay > 0 {
		if hook != nil {
			hook()
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			call.Result = "canceled"
			s.finish(call)
			dropConnection(w)
			return
		case <-s.done:
			t.Stop()
			call.Result = "canceled"
			s.finish(call)
			dropConnection(w)
			return
		}
	}

	s.mu.Lock()
	now := s.now()
	s.advanceLocked(now)
	var (
		body   any
		fail   *Failure
		result = "ok"
	)
	switch {
	case id == "":
		aerr = errorf(400, "DeploymentIdRequiredException", "At least one deployment ID must be specified.")
	case !ValidID(id):
		aerr = errorf(400, "InvalidDeploymentIdException", "Specified DeploymentId is not in the valid format: %s", id)
	default:
		e, ok := s.deps[id]
		if !ok {
			aerr = errorf(400, "DeploymentDoesNotExistException", "The deployment %s could not be found.", id)
			break
		}
		if op == OpGetDeployment {
			fail = takeFailure(&e.d.GetFailure)
		} else {
			fail = takeFailure(&e.d.StopFailure)
		}
		if fail != nil {
			aerr = failureError(fail, op, region, e.d)
			break
		}
		if op == OpGetDeployment {
			s.pollLocked(e, now)
			body = map[string]any{"deploymentInfo": toWire(e.d)}
		} else {
			body, aerr = s.stopDeploymentLocked(e, in.AutoRollbackEnabled, now)
		}
	}
	if aerr != nil {
		result = aerr.code
	}
	call.Result = result
	s.calls = append(s.calls, call)
	s.notifyLocked()
	s.mu.Unlock()
	s.logf(call)

	switch {
	case aerr != nil && aerr.code == FailNetwork:
		dropConnection(w)
	case aerr != nil:
		writeError(w, aerr)
	default:
		writeJSON(w, http.StatusOK, body)
	}
}

// dropConnection closes the connection without writing a response, so the
// client sees a connection error rather than an empty 200.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// Not hijackable (HTTP/2): abort the response instead.
	panic(http.ErrAbortHandler)
}

// stopDeploymentLocked answers a StopDeployment for e, accepting or rejecting it.
func (s *Server) stopDeploymentLocked(e *entry, autoRollback *bool, now time.Time) (any, *apiError) {
	d := &e.d
	if Final(d.Status) {
		return nil, errorf(400, "DeploymentAlreadyCompletedException", "The deployment %s has already completed.", d.ID)
	}
	if stopPending(*d) {
		// A repeated stop while the first is pending is harmless.
		return stopAnswer(StopPending, d.StopMessage, d.ID), nil
	}
	status := d.StopStatus
	if status == "" {
		status = StopPending
	}
	d.StopRequestedAt = now
	d.StopAutoRollback = autoRollback != nil && *autoRollback
	if status == StopPending {
		e.stopPollsLeft = pollsLeft(d.PollsUntilFinal, 1)
	} else {
		s.markStoppedLocked(e, now)
	}
	return stopAnswer(status, d.StopMessage, d.ID), nil
}

func stopAnswer(status, msg, id string) map[string]string {
	if msg == "" {
		switch status {
		case StopPending:
			msg = MessageStopPending
		case StopSucceeded:
			msg = MessageStopSucceeded
		case StopForced:
			msg = MessageStopForced
		default:
			msg = "Deployment " + id + " stop status: " + status
		}
	}
	return map[string]string{"status": status, "statusMessage": msg}
}

// takeFailure returns the failure to apply now, counting down Times.
func takeFailure(p **Failure) *Failure {
	f := *p
	if f == nil {
		return nil
	}
	out := *f
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			*p = nil
		}
	}
	return &out
}

func failureError(f *Failure, op, region string, d Deployment) *apiError {
	msg := f.Message
	status := http.StatusBadRequest
	code := f.Code
	switch code {
	case FailNetwork:
		return &apiError{code: FailNetwork}
	case Fail500, "InternalFailure":
		status, code = http.StatusInternalServerError, "InternalFailure"
		if msg == "" {
			msg = "We encountered an internal error. Please try again."
		}
	case "ServiceUnavailable", "ServiceUnavailableException":
		status = http.StatusServiceUnavailable
		if msg == "" {
			msg = "Service is unavailable. Please try again later."
		}
	}
	if msg == "" {
		switch code {
		case "ThrottlingException":
			msg = "Rate exceeded"
		case "AccessDeniedException":
			msg = fmt.Sprintf("User: arn:aws:iam::%s:user/stopdeploy is not authorized to perform: codedeploy:%s on resource: arn:aws:codedeploy:%s:%s:deploymentgroup:%s/%s because no identity-based policy allows the codedeploy:%s action",
				account, op, region, account, d.Application, d.Group, op)
		case "DeploymentGroupDoesNotExistException":
			msg = fmt.Sprintf("No Deployment Group found for name: %s", d.Group)
		case "UnsupportedActionForDeploymentTypeException":
			msg = fmt.Sprintf("%s is not supported for %s deployments of deployment %s", op, d.ComputePlatform, d.ID)
		case "DeploymentAlreadyCompletedException":
			msg = fmt.Sprintf("The deployment %s has already completed.", d.ID)
		default:
			msg = code
		}
	}
	return &apiError{status: status, code: code, message: msg}
}

// checkRequest validates the wire envelope and decodes the body.
func checkRequest(r *http.Request) (op, region string, in request, aerr *apiError) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return "", "", in, errorf(http.StatusNotFound, "UnknownOperationException", "")
	}
	region, aerr = checkAuth(r)
	if aerr != nil {
		return "", "", in, aerr
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != contentType {
		return "", "", in, errorf(400, "UnknownOperationException", "")
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, TargetPrefix)
	if !ok || (op != OpGetDeployment && op != OpStopDeployment) {
		return "", "", in, errorf(400, "UnknownOperationException", "")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return "", "", in, errorf(http.StatusRequestEntityTooLarge, "SerializationException", "Request body could not be read.")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&in); err != nil {
		return "", "", in, errorf(400, "SerializationException", "Start of structure or map found where not expected.")
	}
	if dec.More() {
		return "", "", in, errorf(400, "SerializationException", "Unexpected content after the request structure.")
	}
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		return "", "", in, errorf(400, "SerializationException", "Expected a JSON object.")
	}
	return op, region, in, nil
}

// checkAuth checks the shape of SigV4 authentication (not the signature) and
// returns the credential scope's region.
func checkAuth(r *http.Request) (string, *apiError) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return "", errorf(http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return "", errorf(400, "IncompleteSignatureException", "Authorization header requires 'AWS4-HMAC-SHA256' algorithm. Authorization=%s", auth)
	}
	params := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		params[k] = v
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if params[k] == "" {
			return "", errorf(400, "IncompleteSignatureException", "Authorization header requires '%s' parameter. Authorization=%s", k, auth)
		}
	}
	scope := strings.Split(params["Credential"], "/")
	if len(scope) != 5 || scope[0] == "" || scope[2] == "" || scope[4] != "aws4_request" {
		return "", errorf(400, "IncompleteSignatureException", "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", params["Credential"])
	}
	if scope[3] != "codedeploy" {
		return "", errorf(http.StatusForbidden, "InvalidSignatureException", "Credential should be scoped to correct service: 'codedeploy'.")
	}
	if !slices.Contains(strings.Split(params["SignedHeaders"], ";"), "host") {
		return "", errorf(400, "IncompleteSignatureException", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	date := r.Header.Get("X-Amz-Date")
	if date == "" {
		return "", errorf(400, "IncompleteSignatureException", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=%s", auth)
	}
	if _, err := time.Parse(amzDate, date); err != nil {
		return "", errorf(400, "IncompleteSignatureException", "Date must be in ISO-8601 'basic format'. Got '%s'.", date)
	}
	if !strings.HasPrefix(date, scope[1]) || len(scope[1]) != 8 {
		return "", errorf(http.StatusForbidden, "InvalidSignatureException", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", scope[1], safePrefix(date, 8), date)
	}
	return scope[2], nil
}

func safePrefix(s string, n int) string {
	if len(s) < n {
		return s
	}
	return s[:n]
}

func (s *Server) finish(c Call) {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.notifyLocked()
	s.mu.Unlock()
	s.logf(c)
}

func (s *Server) logf(c Call) {
	if s.opts.Logf != nil {
		if c.Result == "ok" {
			s.opts.Logf("fakecodedeploy: %s => ok", c)
		} else {
			s.opts.Logf("fakecodedeploy: %s", c)
		}
	}
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("X-Amzn-Errortype", e.code)
	body := map[string]string{"__type": e.code}
	if e.message != "" {
		body["message"] = e.message
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"__type":"InternalFailure"}`)
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ---- wire shapes ----

type epoch time.Time

// MarshalJSON writes epoch seconds as a JSON number with millisecond fraction.
func (t epoch) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(time.Time(t).UnixMilli())/1000, 'f', -1, 64)), nil
}

func epochPtr(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

type wireOverview struct {
	Pending    int64 `json:"Pending"`
	InProgress int64 `json:"InProgress"`
	Succeeded  int64 `json:"Succeeded"`
	Failed     int64 `json:"Failed"`
	Skipped    int64 `json:"Skipped"`
	Ready      int64 `json:"Ready"`
}

type wireErrorInformation struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

type wireRollbackInfo struct {
	RollbackDeploymentID           string `json:"rollbackDeploymentId,omitempty"`
	RollbackTriggeringDeploymentID string `json:"rollbackTriggeringDeploymentId,omitempty"`
	RollbackMessage                string `json:"rollbackMessage,omitempty"`
}

type wireDeploymentInfo struct {
	ApplicationName                    string                `json:"applicationName,omitempty"`
	DeploymentGroupName                string                `json:"deploymentGroupName,omitempty"`
	DeploymentConfigName               string                `json:"deploymentConfigName,omitempty"`
	DeploymentID                       string                `json:"deploymentId"`
	Status                             string                `json:"status,omitempty"`
	ErrorInformation                   *wireErrorInformation `json:"errorInformation,omitempty"`
	CreateTime                         *epoch                `json:"createTime,omitempty"`
	StartTime                          *epoch                `json:"startTime,omitempty"`
	CompleteTime                       *epoch                `json:"completeTime,omitempty"`
	DeploymentOverview                 wireOverview          `json:"deploymentOverview"`
	Description                        string                `json:"description,omitempty"`
	Creator                            string                `json:"creator,omitempty"`
	IgnoreApplicationStopFailures      bool                  `json:"ignoreApplicationStopFailures"`
	RollbackInfo                       *wireRollbackInfo     `json:"rollbackInfo,omitempty"`
	UpdateOutdatedInstancesOnly        bool                  `json:"updateOutdatedInstancesOnly"`
	DeploymentStatusMessages           []string              `json:"deploymentStatusMessages,omitempty"`
	ComputePlatform                    string                `json:"computePlatform,omitempty"`
	InstanceTerminationWaitTimeStarted bool                  `json:"instanceTerminationWaitTimeStarted"`
}

func toWire(d Deployment) wireDeploymentInfo {
	w := wireDeploymentInfo{
		ApplicationName:          d.Application,
		DeploymentGroupName:      d.Group,
		DeploymentConfigName:     d.DeploymentConfigName,
		DeploymentID:             d.ID,
		Status:                   d.Status,
		CreateTime:               epochPtr(d.CreateTime),
		StartTime:                epochPtr(d.StartTime),
		CompleteTime:             epochPtr(d.CompleteTime),
		DeploymentOverview:       wireOverview(d.Overview),
		Description:              d.Description,
		Creator:                  d.Creator,
		DeploymentStatusMessages: d.StatusMessages,
		ComputePlatform:          d.ComputePlatform,
	}
	if d.ErrorCode != "" || d.ErrorMessage != "" {
		w.ErrorInformation = &wireErrorInformation{Code: d.ErrorCode, Message: d.ErrorMessage}
	}
	if d.RollbackDeploymentID != "" || d.RollbackMessage != "" || d.RollbackTriggeringDeploymentID != "" {
		w.RollbackInfo = &wireRollbackInfo{
			RollbackDeploymentID:           d.RollbackDeploymentID,
			RollbackTriggeringDeploymentID: d.RollbackTriggeringDeploymentID,
			RollbackMessage:                d.RollbackMessage,
		}
	}
	return w
}

// ---- helpers ----

func cloneDeployment(d Deployment) Deployment {
	d.StatusMessages = slices.Clone(d.StatusMessages)
	if d.GetFailure != nil {
		f := *d.GetFailure
		d.GetFailure = &f
	}
	if d.StopFailure != nil {
		f := *d.StopFailure
		d.StopFailure = &f
	}
	return d
}

func cloneCall(c Call) Call {
	if c.AutoRollbackEnabled != nil {
		b := *c.AutoRollbackEnabled
		c.AutoRollbackEnabled = &b
	}
	return c
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
