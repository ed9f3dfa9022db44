package fakecodedeploy

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
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

// validStatus lists the DeploymentStatus enum (types/enums.go).
var validStatus = map[string]bool{
	StatusCreated: true, StatusQueued: true, StatusInProgress: true, StatusBaking: true,
	StatusSucceeded: true, StatusFailed: true, StatusStopped: true, StatusReady: true,
}

// StopDeployment answers (the "status" field of its output).
const (
	StopPending   = "Pending"
	StopSucceeded = "Succeeded"
	StopForced    = "Forced"
	// StopEmpty, as Deployment.StopStatus, answers an accepted stop without a
	// "status" field (the deployment then stops as for StopPending); as
	// Deployment.StopMessage it leaves out "statusMessage".
	StopEmpty = "(empty)"
)

// Default StopDeployment status messages. The Pending and Succeeded texts are
// the ones AWS shows in its documentation examples.
const (
	MessageStopPending   = "Stopping Pending. Stopping to schedule commands in the deployment instances"
	MessageStopSucceeded = "No more commands will be scheduled for execution in the deployment instances"
	MessageStopForced    = "The deployment was stopped forcibly. Commands already running in the deployment instances were interrupted"
)

// Revision types (RevisionLocation.revisionType).
const (
	RevisionS3             = "S3"
	RevisionGitHub         = "GitHub"
	RevisionString         = "String"
	RevisionAppSpecContent = "AppSpecContent"
)

var deploymentIDRE = regexp.MustCompile(`^d-[A-Z0-9]{9}$`)

// ValidID reports whether id has the shape of a CodeDeploy deployment ID:
// "d-" followed by 9 upper-case letters or digits.
func ValidID(id string) bool { return deploymentIDRE.MatchString(id) }

// Final reports whether status is final: Succeeded, Failed or Stopped.
func Final(status string) bool {
	return status == StatusSucceeded || status == StatusFailed || status == StatusStopped
}

// Overview is the per-instance count summary (DeploymentInfo.deploymentOverview).
type Overview struct {
	Pending, InProgress, Succeeded, Failed, Skipped, Ready int64
}

// Revision is where a deployment's application revision lives: exactly the
// RevisionLocation that GetDeployment returns as "revision" and
// "previousRevision". Only the fields of its Type are sent.
type Revision struct {
	// Type is RevisionS3, RevisionGitHub, RevisionString or
	// RevisionAppSpecContent. Put infers it when empty: S3 if Bucket is set,
	// GitHub if Repository is set, String if Content or SHA256 is set.
	Type string
	// Bucket, Key, BundleType ("zip", "tar", "tgz", "YAML", "JSON"), Version
	// and ETag form s3Location.
	Bucket, Key, BundleType, Version, ETag string
	// Repository ("owner/name") and CommitID form gitHubLocation.
	Repository, CommitID string
	// Content and SHA256 form string (RevisionString) or appSpecContent
	// (RevisionAppSpecContent). GetDeployment never sends appSpecContent's
	// content, as AWS documents (API_GetDeployment: "The content property of
	// the appSpecContent object in the returned revision is always null").
	Content, SHA256 string
}

// Deployment is one simulated deployment: the fields GetDeployment returns,
// then the script that drives it. The zero values of most fields are filled
// with realistic defaults by Put.
type Deployment struct {
	// ID is the deployment ID ("d-" + 9 upper-case alphanumerics). Put
	// generates one when empty. IDs that do not match are stored but can never
	// be reached over the wire (InvalidDeploymentIdException).
	ID string
	// Account is the 12-digit AWS account the deployment lives in; Put
	// defaults it to Options.DefaultAccount.
	Account string
	// Region is the region the deployment lives in; Put defaults it to
	// DefaultRegion. Only requests signed for this account and region see it.
	Region string
	// Application and Group are the application and deployment group names.
	// Put and Update make them exist in its place (ListDeployments).
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
	// Revision is the revision being deployed (nil: omitted on the wire; Put
	// sets none). PreviousRevision is what the group ran before; a rollback
	// created by a stop deploys it.
	Revision, PreviousRevision *Revision
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
	// (default) stops the deployment later (PollsUntilFinal or StopTakes), and
	// so does StopEmpty, which answers without a status; any other value, e.g.
	// StopSucceeded or StopForced, is answered verbatim and the deployment
	// becomes Stopped at once.
	StopStatus string
	// StopMessage is the answered statusMessage; empty picks MessageStop*,
	// StopEmpty leaves the field out.
	StopMessage string
	// PollsUntilFinal is, after an accepted Pending stop, how many
	// GetDeployment answers still show the pre-stop status before it becomes
	// Stopped. 0 means 1; negative means none (the first read shows Stopped).
	// BatchGetDeployments answers do not count.
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
	// to SetDelay's and SetPlaceDelay's. The fake returns early if the client
	// gives up.
	GetDelay, StopDelay time.Duration

	// StopRequestedAt is set by the fake when it accepts a stop (zero: no
	// stop). Putting a non-final Deployment with it set simulates a stop that
	// is already pending.
	StopRequestedAt time.Time
	// StopAutoRollback is set by the fake to the accepted stop's
	// autoRollbackEnabled (omitted counts as false).
	StopAutoRollback bool
}

// entry is a stored deployment plus script counters that live from Put.
type entry struct {
	d              Deployment
	stopPollsLeft  int       // reads still showing the pre-stop status
	finishPolls    bool      // FinishAfterPolls active
	finishLeft     int       // reads still showing the current status
	finishDeadline time.Time // FinishAfter deadline (zero: none)
}

func (e *entry) key() key { return key{place{e.d.Account, e.d.Region}, e.d.ID} }

// Put adds or replaces the deployment with d's account, region and ID, fills
// defaults (see Deployment), starts its script counters afresh and returns
// its ID. Its application and deployment group then exist in its place.
func (s *Server) Put(d Deployment) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	p := s.placeOf(d.Account, d.Region)
	d.Account, d.Region = p.account, p.region
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
	s.storeLocked(e)
	s.addGroupLocked(p, d.Application, d.Group)
	s.notifyLocked()
	return d.ID
}

// AddGroup makes an application and deployment group exist in a place
// without any deployment, so ListDeployments answers it with an empty list
// instead of ApplicationDoesNotExistException or
// DeploymentGroupDoesNotExistException. Empty account and region mean
// Options.DefaultAccount and DefaultRegion.
func (s *Server) AddGroup(account, region, application, group string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addGroupLocked(s.placeOf(account, region), application, group)
	s.notifyLocked()
}

func (s *Server) addGroupLocked(p place, application, group string) {
	if application == "" {
		return
	}
	if s.apps[p] == nil {
		s.apps[p] = make(map[string]bool)
	}
	s.apps[p][application] = true
	if group == "" {
		return
	}
	if s.groups[p] == nil {
		s.groups[p] = make(map[[2]string]bool)
	}
	s.groups[p][[2]string{application, group}] = true
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
	inferRevisionType(d.Revision)
	inferRevisionType(d.PreviousRevision)
}

func inferRevisionType(r *Revision) {
	if r == nil || r.Type != "" {
		return
	}
	switch {
	case r.Bucket != "":
		r.Type = RevisionS3
	case r.Repository != "":
		r.Type = RevisionGitHub
	case r.Content != "" || r.SHA256 != "":
		r.Type = RevisionString
	}
}

// Deployment returns a copy of the deployment with this ID after applying due
// time-based transitions. Reading does not count as a GetDeployment poll. If
// several places hold the ID, it is the one whose account, region and ID were
// Put first; use DeploymentAt to choose.
func (s *Server) Deployment(id string) (Deployment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceAndNotifyLocked()
	e := s.firstLocked(id)
	if e == nil {
		return Deployment{}, false
	}
	return cloneDeployment(e.d), true
}

// DeploymentAt is Deployment for the deployment with this ID in one account
// and region (empty: Options.DefaultAccount, DefaultRegion).
func (s *Server) DeploymentAt(account, region, id string) (Deployment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceAndNotifyLocked()
	e, ok := s.deps[key{s.placeOf(account, region), id}]
	if !ok {
		return Deployment{}, false
	}
	return cloneDeployment(e.d), true
}

// storeLocked stores e, remembering the first place its ID was put in.
func (s *Server) storeLocked(e *entry) {
	k := e.key()
	s.deps[k] = e
	if _, ok := s.first[k.id]; !ok {
		s.first[k.id] = k
	}
}

// firstLocked returns the first-Put entry with this ID, or nil.
func (s *Server) firstLocked(id string) *entry {
	k, ok := s.first[id]
	if !ok {
		return nil
	}
	return s.deps[k]
}

// Deployments returns copies of all deployments in every place, sorted by
// CreateTime (then ID, account and region).
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
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		if c := strings.Compare(a.Account, b.Account); c != 0 {
			return c
		}
		return strings.Compare(a.Region, b.Region)
	})
	return out
}

// Update changes a stored deployment in place under the lock and reports
// whether it exists. f must not call the Server. The ID, account and region
// cannot be changed and script counters are not restarted (use Put for that).
// If several places hold the ID, Update acts on the one Deployment(id)
// returns; use UpdateAt to choose.
func (s *Server) Update(id string, f func(*Deployment)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateLocked(s.firstLocked(id), f)
}

// UpdateAt is Update for the deployment with this ID in one account and
// region (empty: Options.DefaultAccount, DefaultRegion).
func (s *Server) UpdateAt(account, region, id string, f func(*Deployment)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateLocked(s.deps[key{s.placeOf(account, region), id}], f)
}

func (s *Server) updateLocked(e *entry, f func(*Deployment)) bool {
	if e == nil {
		return false
	}
	k := e.key()
	f(&e.d)
	e.d.ID, e.d.Account, e.d.Region = k.id, k.account, k.region
	e.d = cloneDeployment(e.d)
	s.addGroupLocked(k.place, e.d.Application, e.d.Group)
	s.notifyLocked()
	return true
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

// newIDLocked returns an ID that no place uses.
func (s *Server) newIDLocked() string {
	for {
		if id := RandomID(); s.firstLocked(id) == nil {
			return id
		}
	}
}

// ---- transitions ----

// advanceLocked applies due time-based transitions and reports whether any happened.
func (s *Server) advanceLocked(now time.Time) bool {
	changed := false
	entries := make([]*entry, 0, len(s.deps))
	for _, e := range s.deps {
		entries = append(entries, e) // markStoppedLocked adds rollbacks to s.deps
	}
	for _, e := range entries {
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

func (s *Server) advanceAndNotifyLocked() {
	if s.advanceLocked(s.now()) {
		s.notifyLocked()
	}
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
// (in the same place) if the accepted stop asked for one.
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
		Account:                        d.Account,
		Region:                         d.Region,
		Application:                    d.Application,
		Group:                          d.Group,
		Status:                         StatusInProgress,
		Creator:                        "codeDeployRollback",
		ComputePlatform:                d.ComputePlatform,
		DeploymentConfigName:           d.DeploymentConfigName,
		Revision:                       cloneRevision(d.PreviousRevision),
		PreviousRevision:               cloneRevision(d.Revision),
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
	s.storeLocked(re)
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

// ---- copies ----

func cloneDeployment(d Deployment) Deployment {
	d.StatusMessages = slices.Clone(d.StatusMessages)
	d.GetFailure = cloneFailure(d.GetFailure)
	d.StopFailure = cloneFailure(d.StopFailure)
	d.Revision = cloneRevision(d.Revision)
	d.PreviousRevision = cloneRevision(d.PreviousRevision)
	return d
}

func cloneFailure(f *Failure) *Failure {
	if f == nil {
		return nil
	}
	c := *f
	return &c
}

func cloneRevision(r *Revision) *Revision {
	if r == nil {
		return nil
	}
	c := *r
	return &c
}
