package fakecodedeploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Special Failure codes that are not answered with an HTTP 400 exception.
const (
	// FailNetwork hijacks the connection and closes it without a response.
	FailNetwork = "network"
	// Fail500 answers HTTP 500 {"__type":"InternalFailure",…}.
	Fail500 = "500"
	// FailGarbled answers HTTP 200 with a JSON body cut off half-way, which
	// the SDK cannot decode.
	FailGarbled = "garbled"
	// FailOversized answers HTTP 200 with a valid JSON answer of Failure.Size
	// bytes (default DefaultOversize), streamed without holding it in memory:
	// the padding is StopDeployment's statusMessage, GetDeployment's (and the
	// first of BatchGetDeployments') description, or else an extra
	// "padding" member.
	FailOversized = "oversized"
)

// DefaultOversize is the size of a FailOversized answer when Failure.Size is 0.
const DefaultOversize = 64 << 20

// Failure makes calls fail: calls for one deployment (Deployment.GetFailure,
// StopFailure) or every call in a place (FailPlace).
type Failure struct {
	// Code is the exception type answered as HTTP 400 {"__type": Code,
	// "message": …}, e.g. "ThrottlingException", "AccessDeniedException",
	// "DeploymentGroupDoesNotExistException",
	// "UnsupportedActionForDeploymentTypeException". Special values:
	// FailNetwork ("network": close the connection without a response),
	// Fail500 ("500": HTTP 500 InternalFailure), FailGarbled and
	// FailOversized. "InternalFailure" is also answered with 500,
	// "ServiceUnavailable"/"ServiceUnavailableException" with 503.
	Code string
	// Message is the exception message; empty picks a realistic default. The
	// default AccessDeniedException message names the request's principal
	// and the deployment group for every operation; Deny words it per
	// operation as IAM does.
	Message string
	// Times is how many calls fail; 0 means every call. The fake counts it
	// down in its own copy and drops the Failure once it is used up.
	Times int
	// After processes the operation normally (a stop is accepted and
	// recorded, a read counts as a poll) and then answers the failure instead
	// of the real answer: "connection lost after sending" is
	// {Code: FailNetwork, After: true}, "garbled 200 after CodeDeploy
	// accepted the stop" is {Code: FailGarbled, After: true}. Without After
	// nothing is processed.
	After bool
	// Size is the body size of FailOversized in bytes; 0 means
	// DefaultOversize. An answer is never cut below its real size.
	Size int64
}

// SetDelay sets a latency added to every answer (benchmarks), on top of
// SetPlaceDelay's and the per-deployment GetDelay/StopDelay.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.notifyLocked()
	s.mu.Unlock()
}

// placeFault is what SetPlaceDelay and FailPlace set for one place.
type placeFault struct {
	delay time.Duration
	fail  *Failure
}

// SetPlaceDelay sets a latency added to the answer of every request in one
// account and region (empty: Options.DefaultAccount, DefaultRegion), as
// SetDelay does for all; 0 removes it. The fake returns early if the client
// gives up.
func (s *Server) SetPlaceDelay(account, region string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.placeFaultLocked(s.placeOf(account, region)).delay = d
	s.notifyLocked()
}

// FailPlace makes every operation in one account and region (empty:
// Options.DefaultAccount, DefaultRegion) fail as f says, before any
// per-deployment failure; Times counts calls across all operations. A
// Failure with an empty Code removes it.
func (s *Server) FailPlace(account, region string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pf := s.placeFaultLocked(s.placeOf(account, region))
	pf.fail = nil
	if f.Code != "" {
		pf.fail = &f
	}
	s.notifyLocked()
}

func (s *Server) placeFaultLocked(p place) *placeFault {
	pf := s.faults[p]
	if pf == nil {
		pf = &placeFault{}
		s.faults[p] = pf
	}
	return pf
}

// denial is one Deny rule; region "" is every region.
type denial struct{ account, region, op string }

// Deny makes op (one of the Op* names) answer AccessDeniedException for
// every principal of an account (empty: Options.DefaultAccount) in one
// region, or in every region if region is empty, as an identity policy
// without that action would. The message names the principal's ARN, the
// action and, for actions with a resource type, the deployment group.
// Denials are checked after FailPlace's and before anything else.
func (s *Server) Deny(account, region, op string) {
	if !knownOp[op] {
		panic("fakecodedeploy: Deny of unknown operation " + strconv.Quote(op))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if account == "" {
		account = s.opts.DefaultAccount
	}
	s.denied[denial{account, region, op}] = true
	s.notifyLocked()
}

func (s *Server) deniedLocked(p place, op string) bool {
	return s.denied[denial{p.account, p.region, op}] || s.denied[denial{p.account, "", op}]
}

// deniedError is the AccessDeniedException IAM's implicit deny produces.
// IAM's format (IAM User Guide, "Troubleshooting access denied error
// messages", awsdocs/iam-user-guide doc_source/troubleshoot_access-denied.md)
// is "User: <principal ARN> is not authorized to perform: <action> on
// resource: <ARN> because no identity-based policy allows the <action>
// action", without "on resource" for an action that has no resource type
// (its codecommit:ListRepositories example). The Service Authorization
// Reference (list_awscodedeploy) gives GetDeployment, BatchGetDeployments
// and ListDeployments the deploymentgroup resource type and StopDeployment
// none; ListDeployments without a group is denied on deploymentgroup:*, as
// in that page's codedeploy:ListDeployments example. CodeDeploy answers it
// with HTTP 400, like its other exceptions (e.g. "StatusCode: 400 … api
// error AccessDeniedException: User: arn:aws:sts::…:assumed-role/… is not
// authorized to perform: codedeploy:DeleteApplication on resource: …",
// github.com/ministryofjustice/modernisation-platform/pull/9014).
// application and group are empty when no deployment group is known.
func deniedError(op, principalARN string, p place, application, group string) *apiError {
	action := "codedeploy:" + op
	if op == OpStopDeployment {
		return errorf(400, "AccessDeniedException", "User: %s is not authorized to perform: %s because no identity-based policy allows the %s action",
			principalARN, action, action)
	}
	return errorf(400, "AccessDeniedException", "User: %s is not authorized to perform: %s on resource: %s because no identity-based policy allows the %s action",
		principalARN, action, groupARN(p, application, group), action)
}

// groupARN is a deployment group's ARN, or deploymentgroup:* when unknown.
func groupARN(p place, application, group string) string {
	name := "*"
	if application != "" || group != "" {
		name = application + "/" + group
	}
	return "arn:aws:codedeploy:" + p.region + ":" + p.account + ":deploymentgroup:" + name
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

// failureError is the error answer of a Failure whose Code is an exception
// (not FailNetwork, FailGarbled or FailOversized). d is the deployment the
// call is about (zero if none).
func failureError(f *Failure, op, principalARN string, p place, d Deployment) *apiError {
	msg := f.Message
	status := http.StatusBadRequest
	code := f.Code
	switch code {
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
			msg = fmt.Sprintf("User: %s is not authorized to perform: codedeploy:%s on resource: %s because no identity-based policy allows the codedeploy:%s action",
				principalARN, op, groupARN(p, d.Application, d.Group), op)
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

// writeGarbled answers 200 with the first half of body's JSON.
func writeGarbled(w http.ResponseWriter, body any) {
	b, err := json.Marshal(body)
	if err != nil || len(b) < 2 {
		b = []byte(`{"`)
	}
	writeRaw(w, http.StatusOK, b[:len(b)/2])
}

const padSentinel = "fakecodedeploy-padding-0c5e1a"

// writeOversized answers 200 with body's JSON padded to size bytes,
// streaming the padding. It gives up when the client goes away.
func writeOversized(w http.ResponseWriter, body any, size int64) {
	if size <= 0 {
		size = DefaultOversize
	}
	switch b := body.(type) {
	case stopOutput:
		b.StatusMessage = padSentinel
		body = b
	case getOutput:
		b.DeploymentInfo.Description = padSentinel
		body = b
	case batchGetOutput:
		if len(b.DeploymentsInfo) > 0 {
			b.DeploymentsInfo = slices.Clone(b.DeploymentsInfo)
			b.DeploymentsInfo[0].Description = padSentinel
			body = b
		}
	}
	raw, err := json.Marshal(body)
	if err != nil || len(raw) < 2 || raw[0] != '{' {
		raw = []byte("{}")
	}
	i := bytes.Index(raw, []byte(padSentinel))
	if i < 0 { // no string member to pad: add one
		member := `"padding":"` + padSentinel + `"`
		if len(raw) > 2 {
			member += ","
		}
		raw = append([]byte("{"+member), raw[1:]...)
		i = bytes.Index(raw, []byte(padSentinel))
	}
	prefix, suffix := raw[:i], raw[i+len(padSentinel):]
	pad := max(size-int64(len(prefix))-int64(len(suffix)), 0)
	pauseBeforeLargeAnswer()
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.FormatInt(int64(len(prefix))+pad+int64(len(suffix)), 10))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(prefix); err != nil {
		return
	}
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	for pad > 0 {
		n := min(pad, int64(len(chunk)))
		if _, err := w.Write(chunk[:n]); err != nil {
			return
		}
		pad -= n
	}
	_, _ = w.Write(suffix)
}
