package fakests

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Wire format (AWS query protocol), as the SDK speaks it
// (smithy-go@v1.28.9 transport/http/protocol/awsquery, service/sts@v1.52.0
// request_snapshot/AssumeRole.request.snap):
//
//	POST /
//	Content-Type: application/x-www-form-urlencoded
//	Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/sts/aws4_request, SignedHeaders=…, Signature=…
//	X-Amz-Date: 20261201T101500Z
//
//	Action=AssumeRole&DurationSeconds=900&RoleArn=…&RoleSessionName=…&Version=2011-06-15
//
// Success (the SDK reads the element named <Action>Result, case-insensitively,
// anywhere in the body; awsquery.go DeserializeResponse):
//
//	<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
//	  <AssumeRoleResult>
//	    <AssumedRoleUser><AssumedRoleId>AROA…:SESSION</AssumedRoleId><Arn>arn:aws:sts::…</Arn></AssumedRoleUser>
//	    <Credentials><AccessKeyId>ASIA…</AccessKeyId><SecretAccessKey>…</SecretAccessKey><SessionToken>…</SessionToken><Expiration>2026-12-01T10:30:00Z</Expiration></Credentials>
//	  </AssumeRoleResult>
//	  <ResponseMetadata><RequestId>…</RequestId></ResponseMetadata>
//	</AssumeRoleResponse>
//
// Error (any non-2xx status; the SDK extracts the first <Error> element and
// reads <Code> and <Message>; internal/xml/error.go GetProtocolErrorInfo. A
// <Code> matching a modelled error's awsQueryError code decodes to its
// types.*Exception, anything else to *smithy.GenericAPIError):
//
//	<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
//	  <Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: … is not authorized …</Message></Error>
//	  <RequestId>…</RequestId>
//	</ErrorResponse>
//
// (the error shape as STS sent it in Netflix/security_monkey#77). Answers are
// Content-Type text/xml with an x-amzn-RequestId header, which the SDK reads
// as the request ID (aws/middleware/request_id_retriever.go).
const (
	formContentType = "application/x-www-form-urlencoded"
	xmlContentType  = "text/xml"
	maxBody         = 1 << 20
	amzDate         = "20060102T150405Z"
	wireTime        = "2006-01-02T15:04:05Z"
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
	reqID := newUUID()
	w.Header().Set("X-Amzn-Requestid", reqID)
	if !s.enter() {
		writeError(w, reqID, errorf(http.StatusServiceUnavailable, CodeServiceUnavailable, "Service is shutting down."))
		return
	}
	defer s.wg.Done()

	call := Call{At: s.now()}
	out, iss, aerr := s.process(r, &call)
	call.Result = "ok"
	if aerr != nil {
		call.Result = aerr.code
	}
	if iss != nil {
		call.AccessKeyID = iss.AccessKeyID
		// Before the call is recorded and the answer written, so whoever
		// registers the keys has them before the client can use them.
		if s.opts.OnIssue != nil {
			s.opts.OnIssue(*iss)
		}
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.notifyLocked()
	s.mu.Unlock()
	s.logCall(call, aerr)

	switch {
	case aerr != nil && aerr.code == FailNetwork:
		dropConnection(w)
	case aerr != nil:
		writeError(w, reqID, aerr)
	default:
		writeResult(w, reqID, call.Action, out)
	}
}

func (s *Server) logCall(c Call, aerr *apiError) {
	if s.opts.Logf == nil {
		return
	}
	// Call.String holds no secrets; messages hold ARNs and the sent
	// parameters, never keys or tokens.
	if aerr != nil && aerr.message != "" {
		s.opts.Logf("fakests: %s: %s", c, aerr.message)
		return
	}
	s.opts.Logf("fakests: %s", c)
}

// process checks and answers one request. It returns the <Action>Result
// value, or the keys issued, or an error answer; c receives what was sent.
func (s *Server) process(r *http.Request, c *Call) (any, *Issued, *apiError) {
	// The SDK always POSTs to "/". (STS also takes GET with a query string;
	// the fake does not.)
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return nil, nil, errorf(http.StatusMethodNotAllowed, "MethodNotAllowed", "fakests: only POST / is served (the SDK's query protocol), got %s %s", r.Method, r.URL.Path)
	}
	keyID, region, aerr := checkAuth(r)
	c.CallerAccessKeyID, c.Region = keyID, region
	if aerr != nil {
		return nil, nil, aerr
	}
	// Real STS answers a POST without a form Content-Type or without an
	// Action with a redirect to https://aws.amazon.com/iam; following it
	// would leave the loopback, so the fake answers 400 MissingAction.
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != formContentType {
		return nil, nil, errorf(400, "MissingAction", "fakests: Content-Type must be %s, got %q (STS redirects such requests to https://aws.amazon.com/iam)", formContentType, r.Header.Get("Content-Type"))
	}
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return nil, nil, errorf(http.StatusRequestEntityTooLarge, "MalformedQueryString", "fakests: request body could not be read: %v", err)
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, nil, errorf(400, "MalformedQueryString", "fakests: request body is not form-encoded: %v", err)
	}
	action, ok := first(form, "Action")
	if !ok {
		return nil, nil, errorf(400, "MissingAction", "fakests: the request has no Action (STS redirects such requests to https://aws.amazon.com/iam)")
	}
	c.Action = *action
	version := "NO_VERSION_SPECIFIED"
	if v, ok := first(form, "Version"); ok {
		version = *v
	}
	if version != Version || (c.Action != ActionAssumeRole && c.Action != ActionGetCallerIdentity) {
		return nil, nil, errorf(400, CodeInvalidAction, "Could not find operation %s for version %s", c.Action, version)
	}

	who, aerr := s.identify(r, keyID)
	if aerr != nil {
		return nil, nil, aerr
	}
	if c.Action == ActionGetCallerIdentity {
		return s.getCallerIdentity(who)
	}
	return s.assumeRole(form, c, who)
}

// identify maps the signing key to a principal. Keys this fake issued are
// their assumed-role session and must come with their session token and be
// unexpired; any other key is Options.CallerARN.
func (s *Server) identify(r *http.Request, keyID string) (caller, *apiError) {
	s.mu.Lock()
	iss, ok := s.issued[keyID]
	s.mu.Unlock()
	if !ok {
		return s.caller, nil
	}
	if r.Header.Get("X-Amz-Security-Token") != iss.SessionToken {
		return caller{}, errorf(http.StatusForbidden, CodeInvalidClientTokenID, "The security token included in the request is invalid.")
	}
	if !s.now().Before(iss.Expiration) {
		return caller{}, errorf(http.StatusForbidden, CodeExpiredToken, "The security token included in the request is expired")
	}
	return caller{arn: iss.AssumedRoleARN, userID: iss.AssumedRoleID, account: iss.Account, chained: true}, nil
}

func (s *Server) getCallerIdentity(who caller) (any, *Issued, *apiError) {
	s.mu.Lock()
	f := takeFailureLocked(s.failures, "")
	s.mu.Unlock()
	if f != nil {
		return nil, nil, failureError(*f, "", who, "")
	}
	return getCallerIdentityResult{Arn: who.arn, UserID: who.userID, Account: who.account}, nil, nil
}

func (s *Server) assumeRole(form url.Values, c *Call, who caller) (any, *Issued, *apiError) {
	in, aerr := parseAssumeRole(form, c)
	if aerr != nil {
		return nil, nil, aerr
	}
	s.mu.Lock()
	f := takeFailureLocked(s.failures, in.roleARN)
	if f == nil {
		f = takeFailureLocked(s.failures, "")
	}
	r, known := s.roles[in.roleARN]
	s.mu.Unlock()
	account := ""
	if known {
		account = r.account
	}
	if f != nil {
		return nil, nil, failureError(*f, in.roleARN, who, account)
	}
	// An unknown role and a role whose trust policy does not name the caller
	// get the same answer, so the caller cannot tell them apart.
	if !known {
		return nil, nil, accessDenied(who, in.roleARN)
	}
	if aerr := checkDuration(in, r, who); aerr != nil {
		return nil, nil, aerr
	}

	now := s.now()
	iss := Issued{
		AccessKeyID:     "ASIA" + randomBase32(16),
		SecretAccessKey: randomBase64(30), // 40 characters
		SessionToken:    randomBase64(264),
		Expiration:      now.Add(time.Duration(in.duration) * time.Second).UTC().Truncate(time.Second),
		Account:         r.account,
		RoleARN:         in.roleARN,
		RoleSessionName: in.session,
		AssumedRoleARN:  fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/%s", r.partition, r.account, r.name, in.session),
		AssumedRoleID:   r.id + ":" + in.session,
	}
	s.mu.Lock()
	s.issued[iss.AccessKeyID] = iss
	s.mu.Unlock()
	out := assumeRoleResult{
		AssumedRoleUser: assumedRoleUser{AssumedRoleID: iss.AssumedRoleID, Arn: iss.AssumedRoleARN},
		Credentials: wireCredentials{
			AccessKeyID:     iss.AccessKeyID,
			SecretAccessKey: iss.SecretAccessKey,
			SessionToken:    iss.SessionToken,
			Expiration:      iss.Expiration.Format(wireTime),
		},
	}
	return out, &iss, nil
}

// takeFailureLocked returns the failure to apply now for key, counting down Times.
func takeFailureLocked(m map[string]*Failure, key string) *Failure {
	f, ok := m[key]
	if !ok {
		return nil
	}
	out := *f
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			delete(m, key)
		}
	}
	return &out
}

// accessDenied is STS's answer for a role the caller may not assume, e.g.
// "User: arn:aws:iam::123456789012:user/alice is not authorized to perform:
// sts:AssumeRole on resource: arn:aws:iam::111122223333:role/X", HTTP 403
// (as STS sent it in Netflix/security_monkey#77 and
// amzn/selling-partner-api-models#2523).
func accessDenied(who caller, roleARN string) *apiError {
	return errorf(http.StatusForbidden, CodeAccessDenied, "User: %s is not authorized to perform: sts:AssumeRole on resource: %s", who.arn, roleARN)
}

// failureError turns a scripted Failure into its answer, with the real
// service's status and text for the codes it knows.
func failureError(f Failure, roleARN string, who caller, roleAccount string) *apiError {
	status, msg := http.StatusBadRequest, f.Message
	switch f.Code {
	case FailNetwork:
		return &apiError{code: FailNetwork}
	case Fail500, CodeInternalFailure:
		f.Code, status = CodeInternalFailure, http.StatusInternalServerError
		if msg == "" {
			msg = "An internal error has occurred. Please try again."
		}
	case CodeServiceUnavailable:
		status = http.StatusServiceUnavailable
		if msg == "" {
			msg = "Service is unavailable. Please try again later."
		}
	case CodeAccessDenied:
		status = http.StatusForbidden
		if msg == "" {
			if roleARN == "" {
				return errorf(status, f.Code, "User: %s is not authorized to perform: sts:GetCallerIdentity", who.arn)
			}
			msg = accessDenied(who, roleARN).message
		}
	case CodeThrottling:
		if msg == "" {
			msg = "Rate exceeded"
		}
	case CodeRegionDisabled:
		// HTTP 403 per the model; text as STS words it, e.g. "STS is not
		// activated in this region for account:123456789012. Your account
		// administrator can activate STS in this region using the IAM Console."
		status = http.StatusForbidden
		if msg == "" {
			acct := roleAccount
			if acct == "" {
				acct = who.account
			}
			msg = fmt.Sprintf("STS is not activated in this region for account:%s. Your account administrator can activate STS in this region using the IAM Console.", acct)
		}
	case CodeExpiredToken, CodeInvalidClientTokenID:
		status = http.StatusForbidden
		if msg == "" && f.Code == CodeExpiredToken {
			msg = "The security token included in the request is expired"
		} else if msg == "" {
			msg = "The security token included in the request is invalid."
		}
	case CodeExpiredTokenException:
		if msg == "" {
			// The model's description of the exception (service-2.json).
			msg = "The web identity token that was passed is expired or is not valid."
		}
	}
	if msg == "" {
		msg = f.Code
	}
	if f.Status != 0 {
		status = f.Status
	}
	return &apiError{status: status, code: f.Code, message: msg}
}

// checkAuth checks the shape of SigV4 authentication (not the signature: the
// fake does not know the secret key of the base caller) and returns the
// credential scope's access key ID and region. Codes are the query-protocol
// common errors (no "Exception" suffix).
func checkAuth(r *http.Request) (keyID, region string, aerr *apiError) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return "", "", errorf(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token")
	}
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return "", "", errorf(400, "IncompleteSignature", "Authorization header requires 'AWS4-HMAC-SHA256' algorithm. Authorization=%s", redactSignature(auth))
	}
	params := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		params[k] = v
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if params[k] == "" {
			return "", "", errorf(400, "IncompleteSignature", "Authorization header requires '%s' parameter. Authorization=%s", k, redactSignature(auth))
		}
	}
	scope := strings.Split(params["Credential"], "/")
	if len(scope) != 5 || scope[0] == "" || scope[2] == "" || scope[4] != "aws4_request" {
		return "", "", errorf(400, "IncompleteSignature", "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", params["Credential"])
	}
	keyID, region = scope[0], scope[2]
	if scope[3] != "sts" {
		return keyID, region, errorf(http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to correct service: 'sts'. ")
	}
	if !slices.Contains(strings.Split(params["SignedHeaders"], ";"), "host") {
		return keyID, region, errorf(400, "IncompleteSignature", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	date := r.Header.Get("X-Amz-Date")
	if date == "" {
		return keyID, region, errorf(400, "IncompleteSignature", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=%s", redactSignature(auth))
	}
	if _, err := time.Parse(amzDate, date); err != nil {
		return keyID, region, errorf(400, "IncompleteSignature", "Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", date)
	}
	if len(scope[1]) != 8 || !strings.HasPrefix(date, scope[1]) {
		return keyID, region, errorf(http.StatusForbidden, "SignatureDoesNotMatch", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", scope[1], date[:8], date)
	}
	return keyID, region, nil
}

// redactSignature drops the Signature value from an Authorization header
// before it is quoted in a message (and so in Logf).
func redactSignature(auth string) string {
	i := strings.Index(auth, "Signature=")
	if i < 0 {
		return auth
	}
	return auth[:i] + "Signature=[redacted]"
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
	panic(http.ErrAbortHandler) // not hijackable (HTTP/2): abort instead
}

// ---- XML ----

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

type assumedRoleUser struct {
	AssumedRoleID string `xml:"AssumedRoleId"`
	Arn           string `xml:"Arn"`
}

type wireCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumeRoleResult struct {
	XMLName         xml.Name        `xml:"AssumeRoleResult"`
	AssumedRoleUser assumedRoleUser `xml:"AssumedRoleUser"`
	Credentials     wireCredentials `xml:"Credentials"`
}

type getCallerIdentityResult struct {
	XMLName xml.Name `xml:"GetCallerIdentityResult"`
	Arn     string   `xml:"Arn"`
	UserID  string   `xml:"UserId"`
	Account string   `xml:"Account"`
}

type response struct {
	XMLName  xml.Name
	Xmlns    string           `xml:"xmlns,attr"`
	Result   any              // carries its own <ActionResult> name
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

type errorDetail struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type errorResponse struct {
	XMLName   xml.Name    `xml:"ErrorResponse"`
	Xmlns     string      `xml:"xmlns,attr"`
	Error     errorDetail `xml:"Error"`
	RequestID string      `xml:"RequestId"`
}

func writeResult(w http.ResponseWriter, reqID, action string, result any) {
	writeXML(w, http.StatusOK, response{
		XMLName:  xml.Name{Local: action + "Response"},
		Xmlns:    Namespace,
		Result:   result,
		Metadata: responseMetadata{RequestID: reqID},
	})
}

func writeError(w http.ResponseWriter, reqID string, e *apiError) {
	typ := "Sender"
	if e.status >= 500 {
		typ = "Receiver"
	}
	writeXML(w, e.status, errorResponse{
		Xmlns:     Namespace,
		Error:     errorDetail{Type: typ, Code: e.code, Message: e.message},
		RequestID: reqID,
	})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`<ErrorResponse xmlns="` + Namespace + `"><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>fakests: encoding the answer failed</Message></Error></ErrorResponse>`)
	}
	buf.WriteByte('\n')
	h := w.Header()
	h.Set("Content-Type", xmlContentType)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
