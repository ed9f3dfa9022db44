package fakecodedeploy

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	contentType = "application/x-amz-json-1.1"
	maxBody     = 1 << 20
)

// apiError is an error answer.
type apiError struct {
	status  int
	code    string
	message string
}

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// input is the union of the request bodies of the implemented operations
// (serializers.go awsAwsjson11_serializeOpDocument*Input).
type input struct {
	DeploymentID        *string    `json:"deploymentId"`
	AutoRollbackEnabled *bool      `json:"autoRollbackEnabled"`
	DeploymentIDs       []string   `json:"deploymentIds"`
	ApplicationName     *string    `json:"applicationName"`
	DeploymentGroupName *string    `json:"deploymentGroupName"`
	IncludeOnlyStatuses []string   `json:"includeOnlyStatuses"`
	CreateTimeRange     *timeRange `json:"createTimeRange"`
	ExternalID          *string    `json:"externalId"`
	NextToken           *string    `json:"nextToken"`
}

// timeRange is TimeRange: epoch seconds as JSON numbers.
type timeRange struct {
	Start *float64 `json:"start"`
	End   *float64 `json:"end"`
}

func epochTime(p *float64) time.Time {
	if p == nil {
		return time.Time{}
	}
	sec, frac := math.Modf(*p)
	return time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond))
}

// readEnvelope validates the wire envelope (method, path, content type,
// target) and decodes the body. Authentication is checked by the caller
// between the path and the content type, as AWS does.
func readEnvelope(r *http.Request) (op string, in input, aerr *apiError) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != contentType {
		return "", in, errorf(400, "UnknownOperationException", "")
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), TargetPrefix)
	if !ok || !knownOp[op] {
		return "", in, errorf(400, "UnknownOperationException", "")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return "", in, errorf(http.StatusRequestEntityTooLarge, "SerializationException", "Request body could not be read.")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&in); err != nil {
		return "", in, errorf(400, "SerializationException", "Start of structure or map found where not expected.")
	}
	if dec.More() {
		return "", in, errorf(400, "SerializationException", "Unexpected content after the request structure.")
	}
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		return "", in, errorf(400, "SerializationException", "Expected a JSON object.")
	}
	return op, in, nil
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
	writeRaw(w, status, b)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	if len(b) > smallAnswer {
		pauseBeforeLargeAnswer()
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// smallAnswer is the largest body answered without pauseBeforeLargeAnswer:
// with the headers it fits the client's first read (net/http's 4 KiB
// bufio.Reader).
const smallAnswer = 2 << 10

// pauseBeforeLargeAnswer works around a client race that only a loopback
// server wins: smithy-go closes the request body as soon as the response
// headers arrive (transport/http/client.go, ClientHandler.Handle), its
// safeWriteToReadCloser.WriteTo then returns io.EOF
// (transport/http/internal/io/safe.go), and net/http's transport, which reads
// the body once more after Content-Length bytes to check for extra data,
// takes that for a write error and closes the connection while the client is
// still reading a body larger than its first read ("failed to decode
// response body, read tcp …: use of closed network connection"; about 1 in
// 100 BatchGetDeployments answers of 25 deployments, 1 in 10 for 1 MiB,
// without this pause). Real AWS answers too slowly to lose that race: this
// pause is the latency of a real answer, and lets the transport finish
// writing the request first. 5 ms was not enough on a loaded 2-core machine
// (1 failure in 800 answers under go test -race -count=10 ./...).
func pauseBeforeLargeAnswer() { time.Sleep(25 * time.Millisecond) }

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

// ---- answers (deserializers.go awsAwsjson11_deserializeOpDocument*Output) ----

type stopOutput struct {
	Status        string `json:"status,omitempty"`
	StatusMessage string `json:"statusMessage,omitempty"`
}

type getOutput struct {
	DeploymentInfo wireDeploymentInfo `json:"deploymentInfo"`
}

type batchGetOutput struct {
	DeploymentsInfo []wireDeploymentInfo `json:"deploymentsInfo"`
}

type listOutput struct {
	Deployments []string `json:"deployments"`
	NextToken   string   `json:"nextToken,omitempty"`
}

// ---- DeploymentInfo ----

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

type wireS3Location struct {
	Bucket     string `json:"bucket,omitempty"`
	Key        string `json:"key,omitempty"`
	BundleType string `json:"bundleType,omitempty"`
	Version    string `json:"version,omitempty"`
	ETag       string `json:"eTag,omitempty"`
}

type wireGitHubLocation struct {
	Repository string `json:"repository,omitempty"`
	CommitID   string `json:"commitId,omitempty"`
}

// wireRawString is both RawString ("string") and AppSpecContent.
type wireRawString struct {
	Content string `json:"content,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
}

type wireRevisionLocation struct {
	RevisionType   string              `json:"revisionType,omitempty"`
	S3Location     *wireS3Location     `json:"s3Location,omitempty"`
	GitHubLocation *wireGitHubLocation `json:"gitHubLocation,omitempty"`
	String         *wireRawString      `json:"string,omitempty"`
	AppSpecContent *wireRawString      `json:"appSpecContent,omitempty"`
}

type wireDeploymentInfo struct {
	ApplicationName                    string                `json:"applicationName,omitempty"`
	DeploymentGroupName                string                `json:"deploymentGroupName,omitempty"`
	DeploymentConfigName               string                `json:"deploymentConfigName,omitempty"`
	DeploymentID                       string                `json:"deploymentId"`
	PreviousRevision                   *wireRevisionLocation `json:"previousRevision,omitempty"`
	Revision                           *wireRevisionLocation `json:"revision,omitempty"`
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
		PreviousRevision:         revisionToWire(d.PreviousRevision),
		Revision:                 revisionToWire(d.Revision),
		Status:                   d.Status,
		CreateTime:               epochPtr(d.CreateTime),
		StartTime:                epochPtr(d.StartTime),
		CompleteTime:             epochPtr(d.CompleteTime),
		DeploymentOverview:       wireOverview(d.Overview),
		Description:              d.Description,
		Creator:                  d.Creator,
		DeploymentStatusMessages: slices.Clone(d.StatusMessages), // written after the lock is released
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

func revisionToWire(r *Revision) *wireRevisionLocation {
	if r == nil {
		return nil
	}
	w := &wireRevisionLocation{RevisionType: r.Type}
	switch r.Type {
	case RevisionS3:
		w.S3Location = &wireS3Location{Bucket: r.Bucket, Key: r.Key, BundleType: r.BundleType, Version: r.Version, ETag: r.ETag}
	case RevisionGitHub:
		w.GitHubLocation = &wireGitHubLocation{Repository: r.Repository, CommitID: r.CommitID}
	case RevisionString:
		w.String = &wireRawString{Content: r.Content, SHA256: r.SHA256}
	case RevisionAppSpecContent:
		// API_GetDeployment: "The content property of the appSpecContent
		// object in the returned revision is always null."
		w.AppSpecContent = &wireRawString{SHA256: r.SHA256}
	}
	return w
}

// ---- helpers ----

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
