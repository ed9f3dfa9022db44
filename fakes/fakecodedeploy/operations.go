package fakecodedeploy

import (
	"crypto/rand"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Target prefix of the CodeDeploy JSON 1.1 API (X-Amz-Target: Prefix+Operation).
const TargetPrefix = "CodeDeploy_20141006."

// Operation names accepted in X-Amz-Target (after TargetPrefix) and used as Call.Target.
const (
	OpGetDeployment       = "GetDeployment"
	OpStopDeployment      = "StopDeployment"
	OpListDeployments     = "ListDeployments"
	OpBatchGetDeployments = "BatchGetDeployments"
)

var knownOp = map[string]bool{
	OpGetDeployment: true, OpStopDeployment: true, OpListDeployments: true, OpBatchGetDeployments: true,
}

// maxBatch is BatchGetDeployments' limit ("The maximum number of deployment
// IDs you can specify is 25", aws deploy batch-get-deployments).
const maxBatch = 25

// request is a request that passed the envelope and authentication checks.
type request struct {
	op        string
	in        input
	place     place
	principal Principal
}

// answer is what a request is answered, decided under the lock and written
// after it is released.
type answer struct {
	body    any       // success body
	err     *apiError // error answer
	special string    // FailNetwork, FailGarbled or FailOversized
	size    int64     // FailOversized size
	after   bool      // a Failure.After replaced the real answer
	page    int       // ListDeployments page (Call.Page)
}

func (a answer) result() string {
	switch {
	case a.special != "":
		return a.special
	case a.err != nil:
		return a.err.code
	}
	return "ok"
}

func (a answer) write(w http.ResponseWriter) {
	switch {
	case a.special == FailNetwork:
		dropConnection(w)
	case a.special == FailGarbled:
		writeGarbled(w, a.body)
	case a.special == FailOversized:
		writeOversized(w, a.body, a.size)
	case a.err != nil:
		writeError(w, a.err)
	default:
		writeJSON(w, http.StatusOK, a.body)
	}
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
	req, aerr := s.readRequest(r, &call)
	if aerr != nil {
		call.Result = aerr.code
		s.record(call)
		writeError(w, aerr)
		return
	}
	// Answer latency first; a client that gives up gets nothing processed.
	if !s.waitDelay(w, r, req, &call) {
		return
	}

	s.mu.Lock()
	now := s.now()
	s.advanceLocked(now)
	a := s.answerLocked(req, now)
	call.Result, call.After, call.Page = a.result(), a.after, a.page
	s.calls = append(s.calls, call)
	s.notifyLocked()
	s.mu.Unlock()
	s.logf(call)
	a.write(w)
}

// readRequest checks the envelope and authentication in AWS's order and fills
// call with what it learns.
func (s *Server) readRequest(r *http.Request, call *Call) (request, *apiError) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return request{}, errorf(http.StatusNotFound, "UnknownOperationException", "")
	}
	keyID, region, aerr := checkAuth(r)
	if aerr != nil {
		return request{}, aerr
	}
	call.AccessKeyID, call.Region = keyID, region
	p, aerr := s.authenticate(r, keyID)
	call.Account, call.SessionName = p.Account, p.SessionName
	if aerr != nil {
		return request{}, aerr
	}
	op, in, aerr := readEnvelope(r)
	if aerr != nil {
		return request{}, aerr
	}
	call.Target = op
	switch op {
	case OpGetDeployment:
		call.DeploymentID = deref(in.DeploymentID)
	case OpStopDeployment:
		call.DeploymentID = deref(in.DeploymentID)
		call.AutoRollbackEnabled = in.AutoRollbackEnabled
	case OpBatchGetDeployments:
		call.IDs = slices.Clone(in.DeploymentIDs)
	case OpListDeployments:
		call.Application, call.Group = deref(in.ApplicationName), deref(in.DeploymentGroupName)
		call.Statuses = slices.Clone(in.IncludeOnlyStatuses)
		call.NextToken = deref(in.NextToken)
	}
	return request{op: op, in: in, place: place{p.Account, region}, principal: p}, nil
}

// waitDelay waits out the answer latency (SetDelay + SetPlaceDelay + the
// deployment's GetDelay/StopDelay). It records the call as canceled and
// returns false if the client gave up or the server closed meanwhile.
func (s *Server) waitDelay(w http.ResponseWriter, r *http.Request, req request, call *Call) bool {
	s.mu.Lock()
	delay := s.delay
	if pf := s.faults[req.place]; pf != nil {
		delay += pf.delay
	}
	if e := s.deps[key{req.place, deref(req.in.DeploymentID)}]; e != nil {
		switch req.op {
		case OpGetDeployment:
			delay += e.d.GetDelay
		case OpStopDeployment:
			delay += e.d.StopDelay
		}
	}
	hook := s.testHookDelay
	if delay > 0 {
		s.delayed++
		s.notifyLocked()
	}
	s.mu.Unlock()
	if delay <= 0 {
		return true
	}
	defer func() {
		s.mu.Lock()
		s.delayed--
		s.mu.Unlock()
	}()
	if hook != nil {
		hook()
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.done:
	}
	call.Result = "canceled"
	s.record(*call)
	dropConnection(w)
	return false
}

// answerLocked decides the answer: FailPlace's failure, then Deny, then the
// operation itself (which may take a per-deployment failure). A Failure with
// After replaces the real answer once the operation was processed.
func (s *Server) answerLocked(req request, now time.Time) answer {
	var fail *Failure
	if pf := s.faults[req.place]; pf != nil {
		fail = takeFailure(&pf.fail)
	}
	subject := s.subjectLocked(req)
	if fail != nil && !fail.After {
		return s.failAnswer(fail, req, subject, answer{})
	}
	var real answer
	if s.deniedLocked(req.place, req.op) {
		var d Deployment
		if subject != nil {
			d = subject.d
		}
		if req.op == OpListDeployments {
			d.Application, d.Group = deref(req.in.ApplicationName), deref(req.in.DeploymentGroupName)
		}
		real = answer{err: deniedError(req.op, req.principal.ARN, req.place, d.Application, d.Group)}
	} else {
		switch req.op {
		case OpGetDeployment, OpStopDeployment:
			real = s.deploymentOpLocked(req, now, &fail)
		case OpBatchGetDeployments:
			real = s.batchGetLocked(req)
		case OpListDeployments:
			real = s.listLocked(req)
		}
	}
	if fail != nil && fail.After {
		return s.failAnswer(fail, req, subject, real)
	}
	return real
}

// subjectLocked is the stored deployment a request is about, if any: the
// deploymentId of GetDeployment and StopDeployment, the first known of
// BatchGetDeployments' deploymentIds.
func (s *Server) subjectLocked(req request) *entry {
	ids := req.in.DeploymentIDs
	if req.op != OpBatchGetDeployments {
		ids = []string{deref(req.in.DeploymentID)}
	}
	for _, id := range ids {
		if e := s.deps[key{req.place, id}]; e != nil {
			return e
		}
	}
	return nil
}

// failAnswer answers Failure f. real is the processed answer for f.After
// (its body is what FailGarbled cuts and FailOversized pads).
func (s *Server) failAnswer(f *Failure, req request, subject *entry, real answer) answer {
	a := answer{after: f.After, page: real.page}
	var d Deployment
	if subject != nil {
		d = subject.d
	}
	switch f.Code {
	case FailNetwork:
		a.special = FailNetwork
	case FailGarbled, FailOversized:
		a.special, a.size, a.body = f.Code, f.Size, real.body
		if a.body == nil {
			a.body = skeleton(req, subject)
		}
	default:
		a.err = failureError(f, req.op, req.principal.ARN, req.place, d)
	}
	return a
}

// skeleton is a plausible success body for an operation that was not
// processed, for FailGarbled and FailOversized.
func skeleton(req request, subject *entry) any {
	switch req.op {
	case OpStopDeployment:
		return stopOutput{Status: StopPending, StatusMessage: MessageStopPending}
	case OpGetDeployment:
		if subject != nil {
			return getOutput{DeploymentInfo: toWire(subject.d)}
		}
		return getOutput{DeploymentInfo: wireDeploymentInfo{DeploymentID: deref(req.in.DeploymentID)}}
	case OpBatchGetDeployments:
		return batchGetOutput{DeploymentsInfo: []wireDeploymentInfo{}}
	}
	return listOutput{Deployments: []string{}}
}

// ---- GetDeployment, StopDeployment ----

func (s *Server) deploymentOpLocked(req request, now time.Time, fail **Failure) answer {
	id := deref(req.in.DeploymentID)
	switch {
	case id == "":
		return answer{err: errorf(400, "DeploymentIdRequiredException", "At least one deployment ID must be specified.")}
	case !ValidID(id):
		return answer{err: errorf(400, "InvalidDeploymentIdException", "Specified DeploymentId is not in the valid format: %s", id)}
	}
	e, ok := s.deps[key{req.place, id}]
	if !ok {
		return answer{err: errorf(400, "DeploymentDoesNotExistException", "The deployment %s could not be found.", id)}
	}
	if *fail == nil {
		if req.op == OpGetDeployment {
			*fail = takeFailure(&e.d.GetFailure)
		} else {
			*fail = takeFailure(&e.d.StopFailure)
		}
		if *fail != nil && !(*fail).After {
			return s.failAnswer(*fail, req, e, answer{})
		}
	}
	if req.op == OpGetDeployment {
		s.pollLocked(e, now)
		return answer{body: getOutput{DeploymentInfo: toWire(e.d)}}
	}
	return s.stopDeploymentLocked(e, req.in.AutoRollbackEnabled, now)
}

// stopDeploymentLocked answers a StopDeployment for e, accepting or rejecting it.
func (s *Server) stopDeploymentLocked(e *entry, autoRollback *bool, now time.Time) answer {
	d := &e.d
	if Final(d.Status) {
		return answer{err: errorf(400, "DeploymentAlreadyCompletedException", "The deployment %s has already completed.", d.ID)}
	}
	status := d.StopStatus
	if status == "" {
		status = StopPending
	}
	later := status == StopPending || status == StopEmpty
	if stopPending(*d) {
		// A repeated stop while the first is pending is harmless.
		if !later {
			status = StopPending
		}
		return answer{body: stopAnswer(status, d.StopMessage, d.ID)}
	}
	d.StopRequestedAt = now
	d.StopAutoRollback = autoRollback != nil && *autoRollback
	if later {
		e.stopPollsLeft = pollsLeft(d.PollsUntilFinal, 1)
	} else {
		s.markStoppedLocked(e, now)
	}
	return answer{body: stopAnswer(status, d.StopMessage, d.ID)}
}

func stopAnswer(status, msg, id string) stopOutput {
	if msg == "" {
		switch status {
		case StopPending, StopEmpty:
			msg = MessageStopPending
		case StopSucceeded:
			msg = MessageStopSucceeded
		case StopForced:
			msg = MessageStopForced
		default:
			msg = "Deployment " + id + " stop status: " + status
		}
	}
	if msg == StopEmpty {
		msg = ""
	}
	if status == StopEmpty {
		status = ""
	}
	return stopOutput{Status: status, StatusMessage: msg}
}

// ---- BatchGetDeployments ----

// batchGetLocked answers BatchGetDeployments. IDs that do not exist in the
// place are left out of deploymentsInfo without an error: the operation's
// modeled errors are only BatchLimitExceededException,
// DeploymentIdRequiredException and InvalidDeploymentIdException
// (codedeploy@v1.36.0 deserializers.go,
// awsAwsjson11_deserializeOpErrorBatchGetDeployments), and moto
// (getmoto/moto moto/codedeploy/models.py batch_get_deployments) skips
// unknown IDs the same way. A repeated ID is answered once. Reads do not
// count as GetDeployment polls.
func (s *Server) batchGetLocked(req request) answer {
	ids := req.in.DeploymentIDs
	switch {
	case len(ids) == 0:
		return answer{err: errorf(400, "DeploymentIdRequiredException", "At least one deployment ID must be specified.")}
	case len(ids) > maxBatch:
		return answer{err: errorf(400, "BatchLimitExceededException", "The maximum number of names or IDs allowed for this request (%d) was exceeded.", maxBatch)}
	}
	for _, id := range ids {
		if !ValidID(id) {
			return answer{err: errorf(400, "InvalidDeploymentIdException", "Specified DeploymentId is not in the valid format: %s", id)}
		}
	}
	infos := []wireDeploymentInfo{}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if e := s.deps[key{req.place, id}]; e != nil {
			infos = append(infos, toWire(e.d))
		}
	}
	return answer{body: batchGetOutput{DeploymentsInfo: infos}}
}

// ---- ListDeployments ----

// listCursor is what a ListDeployments nextToken stands for: the query it was
// handed out for and the last deployment of the page before.
type listCursor struct {
	query     string
	afterTime time.Time
	afterID   string
	page      int // the page the token leads to
}

// listLocked answers ListDeployments with the IDs of the deployments of the
// request's place, newest first (CreateTime descending, then ID ascending),
// Options.ListPageSize per page. AWS documents no order
// (API_ListDeployments); scripts rely on the first ID being the newest
// (e.g. `--query 'deployments[0]'` in mbailey/bash-my-aws
// lib/codedeploy-functions). A nextToken is only valid for the query it was
// handed out for (same place and filters); anything else is
// InvalidNextTokenException. Errors as in the API reference: only one of
// applicationName and deploymentGroupName → DeploymentGroupNameRequired /
// ApplicationNameRequired; unknown names in the place →
// ApplicationDoesNotExist / DeploymentGroupDoesNotExist, with the service's
// "No application found for name: …" / "No Deployment Group found for
// name: …" wording.
func (s *Server) listLocked(req request) answer {
	in := req.in
	app, group := deref(in.ApplicationName), deref(in.DeploymentGroupName)
	var start, end time.Time
	if in.CreateTimeRange != nil {
		start, end = epochTime(in.CreateTimeRange.Start), epochTime(in.CreateTimeRange.End)
	}
	statuses := slices.Clone(in.IncludeOnlyStatuses)
	slices.Sort(statuses)
	statuses = slices.Compact(statuses)
	query := strings.Join([]string{req.place.String(), app, group, strings.Join(statuses, ","),
		start.String(), end.String(), deref(in.ExternalID)}, "\x00")

	cursor := listCursor{page: 1}
	tokenOK := true
	if tok := deref(in.NextToken); tok != "" {
		c, ok := s.tokens[tok]
		tokenOK = ok && c.query == query
		cursor = c
		if !tokenOK {
			cursor = listCursor{}
		}
	}
	fail := func(code, format string, args ...any) answer {
		return answer{err: errorf(400, code, format, args...), page: cursor.page}
	}
	switch {
	case app != "" && group == "":
		return fail("DeploymentGroupNameRequiredException", "The deployment group name was not specified.")
	case app == "" && group != "":
		return fail("ApplicationNameRequiredException", "The minimum number of required application names was not specified.")
	case app != "" && !s.apps[req.place][app]:
		return fail("ApplicationDoesNotExistException", "No application found for name: %s", app)
	case app != "" && !s.groups[req.place][[2]string{app, group}]:
		return fail("DeploymentGroupDoesNotExistException", "No Deployment Group found for name: %s", group)
	}
	for _, st := range statuses {
		if !validStatus[st] {
			return fail("InvalidDeploymentStatusException", "The specified deployment status doesn't exist or cannot be determined: %s", st)
		}
	}
	if !start.IsZero() && !end.IsZero() && start.After(end) {
		return fail("InvalidTimeRangeException", "The specified time range was specified in an invalid format.")
	}
	if !tokenOK {
		return fail("InvalidNextTokenException", "The next token was specified in an invalid format.")
	}

	var match []Deployment
	for k, e := range s.deps {
		d := e.d
		switch {
		case k.place != req.place,
			app != "" && (d.Application != app || d.Group != group),
			len(statuses) > 0 && !slices.Contains(statuses, d.Status),
			!start.IsZero() && d.CreateTime.Before(start),
			!end.IsZero() && d.CreateTime.After(end),
			deref(in.ExternalID) != "": // no deployment is linked to an external resource
			continue
		}
		match = append(match, d)
	}
	slices.SortFunc(match, func(a, b Deployment) int {
		if c := b.CreateTime.Compare(a.CreateTime); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if cursor.afterID != "" {
		i := 0
		for i < len(match) && !listedAfter(match[i], cursor) {
			i++
		}
		match = match[i:]
	}
	out := listOutput{Deployments: []string{}}
	for _, d := range match[:min(len(match), s.opts.ListPageSize)] {
		out.Deployments = append(out.Deployments, d.ID)
	}
	if len(match) > s.opts.ListPageSize {
		last := match[s.opts.ListPageSize-1]
		out.NextToken = rand.Text()
		s.tokens[out.NextToken] = listCursor{query: query, afterTime: last.CreateTime, afterID: last.ID, page: cursor.page + 1}
	}
	return answer{body: out, page: cursor.page}
}

// listedAfter reports whether d comes after the cursor's deployment in
// ListDeployments order.
func listedAfter(d Deployment, c listCursor) bool {
	if c := d.CreateTime.Compare(c.afterTime); c != 0 {
		return c < 0
	}
	return d.ID > c.afterID
}
