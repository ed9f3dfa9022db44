// Package fakests is a loopback fake of AWS STS (Security Token Service) that
// speaks the STS query protocol, for end-to-end tests and the offline sandbox.
//
// Point the real aws-sdk-go-v2 STS client at it, either with
// AWS_ENDPOINT_URL_STS=URL() (service ID "STS", read by sts.NewFromConfig's
// resolveBaseEndpoint in service/sts@v1.52.0 endpoints.go) or with
// sts.Options.BaseEndpoint = aws.String(URL()). The bot's
// aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(client, roleARN))
// then gets its keys from here.
//
// AssumeRole is implemented as strictly as the real service checks it (see
// wire.go and validate.go); GetCallerIdentity answers for the base caller
// (Options.CallerARN) and for keys this fake issued. Any other action gets
// InvalidAction, as from STS.
//
// Every successful AssumeRole issues fresh keys (Issued), reports them to
// Options.OnIssue before the answer is written, and remembers them: a later
// request signed with them is that assumed-role session (role chaining,
// expiry and a wrong session token are answered as STS does). The
// CodeDeploy fake uses OnIssue to map access keys to accounts and sessions,
// for example:
//
//	cd, _ := fakecodedeploy.New(fakecodedeploy.Options{})
//	st, _ := fakests.New(fakests.Options{OnIssue: func(i fakests.Issued) {
//		cd.RegisterKey(i.AccessKeyID, fakecodedeploy.Principal{
//			Account: i.Account, ARN: i.AssumedRoleARN,
//			SessionName: i.RoleSessionName, SessionToken: i.SessionToken,
//		})
//	}})
//	st.AddRole("arn:aws:iam::210987654321:role/stopdeploy")
//	t.Setenv("AWS_ENDPOINT_URL_STS", st.URL())
//
// Every request is recorded as a Call; tests wait on them with WaitCalls (no
// sleeping). Logf never receives secret keys or session tokens.
package fakests

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Protocol constants of STS (model sts-2011-06-15: "apiVersion":"2011-06-15",
// "protocol":"query", "xmlNamespace":"https://sts.amazonaws.com/doc/2011-06-15/";
// boto/botocore botocore/data/sts/2011-06-15/service-2.json).
const (
	Version   = "2011-06-15"
	Namespace = "https://sts.amazonaws.com/doc/2011-06-15/"
)

// Actions this fake answers (Call.Action).
const (
	ActionAssumeRole        = "AssumeRole"
	ActionGetCallerIdentity = "GetCallerIdentity"
)

// Error codes the fake answers, as STS spells them in <Code>. The HTTP status
// of each is in failureError; modelled ones come from the STS model's
// "error" traits (service-2.json; also service/sts@v1.52.0 schemas.go
// HTTPError/AWSQueryError traits).
const (
	// CodeAccessDenied (403): unknown role, a role whose trust policy does not
	// name the caller, or DenyRole. Not modelled: the SDK returns a
	// *smithy.GenericAPIError with this ErrorCode().
	CodeAccessDenied = "AccessDenied"
	// CodeValidationError (400): a parameter breaks the model's constraints
	// or a session-duration limit.
	CodeValidationError = "ValidationError"
	// CodeMalformedInput (400): DurationSeconds is not a 32-bit integer.
	CodeMalformedInput = "MalformedInput"
	// CodeInvalidAction (400): unknown Action or Version.
	CodeInvalidAction = "InvalidAction"
	// CodeThrottling (400, "Rate exceeded"): the SDK's standard retryer treats
	// it as a throttle error (aws/retry/standard.go DefaultThrottleErrorCodes)
	// and backs off for up to 1 s per retry.
	CodeThrottling = "Throttling"
	// CodeRegionDisabled (403, modelled: *types.RegionDisabledException).
	CodeRegionDisabled = "RegionDisabledException"
	// CodeExpiredTokenException (400, modelled: *types.ExpiredTokenException).
	CodeExpiredTokenException = "ExpiredTokenException"
	// CodeExpiredToken (403): the caller signed with session keys that have
	// expired (a common error, not the modelled ExpiredTokenException).
	CodeExpiredToken = "ExpiredToken"
	// CodeInvalidClientTokenID (403): the caller signed with keys this fake
	// issued but sent a different X-Amz-Security-Token.
	CodeInvalidClientTokenID = "InvalidClientTokenId"
	// CodeInternalFailure (500, retried by the SDK).
	CodeInternalFailure = "InternalFailure"
	// CodeServiceUnavailable (503, retried by the SDK).
	CodeServiceUnavailable = "ServiceUnavailable"
)

// Special Failure codes that are not answered with an STS error document.
const (
	// FailNetwork hijacks the connection and closes it without a response.
	FailNetwork = "network"
	// Fail500 answers HTTP 500 InternalFailure.
	Fail500 = "500"
)

// DefaultCallerARN is the identity of requests signed with keys this fake did
// not issue (the bot's own IAM user) when Options.CallerARN is empty. The
// account matches the CodeDeploy fake's.
const DefaultCallerARN = "arn:aws:iam::123456789012:user/stopdeploy"

// DefaultMaxSessionDuration is a role's MaxSessionDuration when Role leaves it
// zero: IAM's default of 1 hour (the setting "can have a value from 1 hour to
// 12 hours"; AssumeRole API reference, DurationSeconds).
const DefaultMaxSessionDuration = time.Hour

// Options configures New.
type Options struct {
	// Logf, if set, receives one line per request. It never receives secret
	// access keys or session tokens (access key IDs are not secret).
	Logf func(format string, args ...any)
	// Now is the clock for Call.At, issued Expiration times and the expiry
	// of issued keys; default time.Now. The SDK's credentials cache checks
	// expiry against the real wall clock, so a Now behind real time makes
	// the keys it issues already expired for the cache.
	Now func() time.Time
	// OnIssue, if set, is called with every set of keys a successful
	// AssumeRole issues, synchronously and before the answer is written (so
	// the keys are registered before the client can use them). It runs
	// outside the fake's lock and may call the Server.
	OnIssue func(Issued)
	// CallerARN is the principal of requests signed with keys this fake did
	// not issue: it appears in AccessDenied messages and GetCallerIdentity.
	// Default DefaultCallerARN. Must be an ARN with a 12-digit account.
	CallerARN string
}

// Role is an IAM role that may be assumed.
type Role struct {
	// ARN is arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME with a 12-digit
	// account; the account and NAME make the assumed-role ARN.
	ARN string
	// MaxSessionDuration bounds DurationSeconds; 0 means
	// DefaultMaxSessionDuration (1 h). IAM allows 1 h to 12 h.
	MaxSessionDuration time.Duration
}

// Failure makes requests fail before they are answered normally.
type Failure struct {
	// Code is the STS error code answered, e.g. CodeAccessDenied,
	// CodeThrottling, CodeRegionDisabled, CodeExpiredTokenException,
	// CodeInternalFailure; or FailNetwork / Fail500. Empty in Fail removes a
	// scripted failure.
	Code string
	// Message is the error message; empty picks the real service's text
	// for the code (e.g. the "User: … is not authorized to perform:
	// sts:AssumeRole on resource: …" of AccessDenied).
	Message string
	// Status overrides the HTTP status (0: the code's real status, 400 for
	// codes the fake does not know).
	Status int
	// Times is how many requests fail; 0 means every request until Fail is
	// called again. The fake counts down its own copy.
	Times int
}

// Issued is one set of temporary credentials a successful AssumeRole issued.
// String and GoString redact the secret key and session token, so printing
// an Issued with %v, %+v or %#v is safe.
type Issued struct {
	// AccessKeyID is "ASIA" + 16 characters of [A-Z2-7] (temporary keys
	// start with ASIA; the AssumeRole API reference's example is
	// ASIAIOSFODNN7EXAMPLE).
	AccessKeyID string
	// SecretAccessKey is 40 characters of base64 alphabet.
	SecretAccessKey string
	// SessionToken is an opaque base64 string (its size is not fixed;
	// "make no assumptions about the maximum size", AssumeRole API reference).
	SessionToken string
	// Expiration is Options.Now + DurationSeconds, truncated to whole
	// seconds as it appears on the wire.
	Expiration time.Time
	// Account is the role's 12-digit account.
	Account string
	// RoleARN and RoleSessionName are as requested.
	RoleARN, RoleSessionName string
	// AssumedRoleARN is arn:PARTITION:sts::ACCOUNT:assumed-role/ROLENAME/SESSION
	// (AssumedRoleUser.Arn; the role's path is not part of it).
	AssumedRoleARN string
	// AssumedRoleID is ROLEID:SESSION, ROLEID being "AROA" + 17 characters
	// fixed per role (AssumedRoleUser.AssumedRoleId).
	AssumedRoleID string
}

// String renders i without its secrets, like
// "ASIA… arn:aws:sts::…:assumed-role/R/S until 2026-12-01T10:15:00Z".
func (i Issued) String() string {
	return fmt.Sprintf("%s %s until %s", i.AccessKeyID, i.AssumedRoleARN, i.Expiration.UTC().Format(time.RFC3339))
}

// GoString renders i for %#v with the secret key and session token redacted.
func (i Issued) GoString() string {
	return fmt.Sprintf("fakests.Issued{AccessKeyID:%q, SecretAccessKey:\"[redacted]\", SessionToken:\"[redacted]\", Expiration:%q, Account:%q, RoleARN:%q, RoleSessionName:%q, AssumedRoleARN:%q, AssumedRoleID:%q}",
		i.AccessKeyID, i.Expiration.UTC().Format(time.RFC3339), i.Account, i.RoleARN, i.RoleSessionName, i.AssumedRoleARN, i.AssumedRoleID)
}

// Call is one recorded request.
type Call struct {
	// Action is the Action form field ("AssumeRole", "GetCallerIdentity", or
	// whatever was sent); empty if the request was rejected before it was read.
	Action string
	// RoleARN and RoleSessionName are AssumeRole's fields as sent (empty if absent).
	RoleARN, RoleSessionName string
	// DurationSeconds is as sent; 0 if absent or not an integer (STS then
	// applies its default of 3600).
	DurationSeconds int
	// CallerAccessKeyID is the access key ID of the SigV4 credential scope.
	CallerAccessKeyID string
	// Region is the credential scope's region.
	Region string
	// At is when the request arrived (Options.Now).
	At time.Time
	// Result is "ok", the error code answered ("AccessDenied",
	// "ValidationError", "Throttling", …) or "network" for a dropped connection.
	Result string
	// AccessKeyID is the key a successful AssumeRole issued.
	AccessKeyID string
}

// String renders c like
// "AssumeRole arn:aws:iam::210987654321:role/stopdeploy session=U012AB duration=900 caller=AKID => ASIA…"
// (a successful AssumeRole ends with the issued key, other results with " => Result").
func (c Call) String() string {
	var b strings.Builder
	if c.Action == "" {
		b.WriteString("(no action)")
	}
	b.WriteString(c.Action)
	if c.Action == ActionAssumeRole {
		if c.RoleARN != "" {
			b.WriteString(" " + c.RoleARN)
		}
		if c.RoleSessionName != "" {
			b.WriteString(" session=" + quoteIfOdd(c.RoleSessionName))
		}
		if c.DurationSeconds != 0 {
			b.WriteString(" duration=" + strconv.Itoa(c.DurationSeconds))
		}
	}
	if c.CallerAccessKeyID != "" {
		b.WriteString(" caller=" + c.CallerAccessKeyID)
	}
	switch {
	case c.Result == "ok" && c.AccessKeyID != "":
		b.WriteString(" => " + c.AccessKeyID)
	case c.Result != "ok":
		b.WriteString(" => " + c.Result)
	}
	return b.String()
}

func quoteIfOdd(s string) string {
	if sessionNameChars.MatchString(s) {
		return s
	}
	return strconv.Quote(s)
}

// role is a stored Role with its parsed parts.
type role struct {
	Role
	partition, account, name string
	id                       string // "AROA" + 17
}

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	opts Options
	now  func() time.Time
	ln   net.Listener
	srv  *http.Server
	url  string

	caller caller // identity of keys the fake did not issue

	mu       sync.Mutex
	roles    map[string]*role
	failures map[string]*Failure // by role ARN; "" applies to every request
	issued   map[string]Issued   // by access key ID
	calls    []Call
	changed  chan struct{} // closed and replaced on every change
	closed   bool

	wg        sync.WaitGroup // serve loop and handlers
	closeOnce sync.Once
}

// caller is the identity a request is signed with.
type caller struct {
	arn, userID, account string
	chained              bool // an assumed-role session issued by this fake
}

var (
	// roleARNRE: arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME.
	roleARNRE = regexp.MustCompile(`^arn:(aws[a-z-]*):iam::(\d{12}):role/((?:[\x21-\x7e]*/)?)([\w+=,.@-]{1,64})$`)
	// principalARNRE: any arn:PARTITION:SERVICE::ACCOUNT:RESOURCE.
	principalARNRE = regexp.MustCompile(`^arn:(aws[a-z-]*):(iam|sts)::(\d{12}):(.+)$`)
)

// New starts a fake listening on 127.0.0.1 on a free port.
func New(opts Options) (*Server, error) {
	callerARN := opts.CallerARN
	if callerARN == "" {
		callerARN = DefaultCallerARN
	}
	m := principalARNRE.FindStringSubmatch(callerARN)
	if m == nil {
		return nil, fmt.Errorf("fakests: CallerARN %q is not an IAM or STS principal ARN with a 12-digit account", callerARN)
	}
	c := caller{arn: callerARN, account: m[3], userID: "AIDA" + randomBase32(17)}
	if rest, ok := strings.CutPrefix(m[4], "assumed-role/"); ok {
		_, session, _ := strings.Cut(rest, "/")
		c.userID = "AROA" + randomBase32(17) + ":" + session
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakests: listen: %w", err)
	}
	s := &Server{
		opts:     opts,
		now:      opts.Now,
		ln:       ln,
		url:      "http://" + ln.Addr().String(),
		caller:   c,
		roles:    make(map[string]*role),
		failures: make(map[string]*Failure),
		issued:   make(map[string]Issued),
		changed:  make(chan struct{}),
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
	return s, nil
}

// URL is the endpoint, "http://127.0.0.1:PORT", for AWS_ENDPOINT_URL_STS or
// sts.Options.BaseEndpoint.
func (s *Server) URL() string { return s.url }

// Close stops the server, wakes WaitCalls and waits for its goroutines.
// Idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.notifyLocked()
		s.mu.Unlock()
		_ = s.srv.Close()
		s.wg.Wait()
	})
}

// AddRole adds a role that may be assumed, with the default 1 h
// MaxSessionDuration. It is PutRole(Role{ARN: roleARN}).
func (s *Server) AddRole(roleARN string) { s.PutRole(Role{ARN: roleARN}) }

// PutRole adds or replaces a role that may be assumed. It panics if r.ARN is
// not arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME or MaxSessionDuration is
// outside 1 h–12 h: like regexp.MustCompile, a malformed fixture is a bug in
// the test. Replacing a role keeps its role ID.
func (s *Server) PutRole(r Role) {
	m := roleARNRE.FindStringSubmatch(r.ARN)
	if m == nil {
		panic(fmt.Sprintf("fakests: PutRole: %q is not a role ARN (arn:aws:iam::ACCOUNT:role/[PATH/]NAME)", r.ARN))
	}
	if r.MaxSessionDuration == 0 {
		r.MaxSessionDuration = DefaultMaxSessionDuration
	}
	if r.MaxSessionDuration < time.Hour || r.MaxSessionDuration > 12*time.Hour {
		panic(fmt.Sprintf("fakests: PutRole %s: MaxSessionDuration %v is outside 1h–12h", r.ARN, r.MaxSessionDuration))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := "AROA" + randomBase32(17)
	if old, ok := s.roles[r.ARN]; ok {
		id = old.id
	}
	s.roles[r.ARN] = &role{Role: r, partition: m[1], account: m[2], name: m[4], id: id}
	s.notifyLocked()
}

// DenyRole makes every AssumeRole of roleARN fail with AccessDenied, as when
// the role's trust policy does not name the caller; the answer is the same as
// for a role that does not exist. It is Fail(roleARN, Failure{Code:
// CodeAccessDenied}); Fail(roleARN, Failure{}) lifts it.
func (s *Server) DenyRole(roleARN string) { s.Fail(roleARN, Failure{Code: CodeAccessDenied}) }

// Fail scripts a failure for AssumeRole of roleARN, or for every request
// (including GetCallerIdentity) when roleARN is "". A role's own failure is
// used before the "" one. A zero Failure (empty Code) removes the script.
//
// Scripted failures apply after the request's envelope, signature shape and
// parameters have been accepted, where STS would otherwise authorize and
// answer it.
func (s *Server) Fail(roleARN string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Code == "" {
		delete(s.failures, roleARN)
		return
	}
	s.failures[roleARN] = &f
}

// Lookup returns the keys issued with this access key ID.
func (s *Server) Lookup(accessKeyID string) (Issued, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.issued[accessKeyID]
	return i, ok
}

// Calls returns a copy of all recorded calls in arrival order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Count returns how many recorded calls satisfy match (nil matches all).
func (s *Server) Count(match func(Call) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if match == nil || match(c) {
			n++
		}
	}
	return n
}

// WaitCalls blocks until at least n recorded calls satisfy match (nil matches
// all) and returns all matching calls, or returns those seen so far with an
// error when ctx is done or the server is closed. It re-checks after every
// change; it never sleeps.
func (s *Server) WaitCalls(ctx context.Context, match func(Call) bool, n int) ([]Call, error) {
	for {
		s.mu.Lock()
		var got []Call
		for _, c := range s.calls {
			if match == nil || match(c) {
				got = append(got, c)
			}
		}
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		if closed {
			return got, fmt.Errorf("fakests: waiting for %d matching calls, saw %d: server closed", n, len(got))
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return got, fmt.Errorf("fakests: waiting for %d matching calls, saw %d: %w", n, len(got), ctx.Err())
		}
	}
}

// IsAssumeRole matches calls of AssumeRole (any result), for WaitCalls and Count.
func IsAssumeRole(c Call) bool { return c.Action == ActionAssumeRole }

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// ---- random identifiers ----

// base32 is the alphabet of AWS access key and unique IDs (A-Z, 2-7).
const base32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func randomBase32(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	for i := range b {
		b[i] = base32[b[i]&31]
	}
	return string(b)
}

func randomBase64(nbytes int) string {
	b := make([]byte, nbytes)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
