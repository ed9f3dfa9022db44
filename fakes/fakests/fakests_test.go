package fakests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
)

// ---- helpers ----

const (
	baseKeyID  = "AKIDBASE"
	testRegion = "eu-west-1"
	prodRole   = "arn:aws:iam::210987654321:role/stopdeploy-stop"
)

var t0 = time.Date(2026, 12, 1, 10, 15, 0, 750_000_000, time.UTC)

func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// newClient is a real STS client on the fake, signing with base keys.
func newClient(s *Server, fns ...func(*sts.Options)) *sts.Client {
	return sts.New(sts.Options{
		Region:       testRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(baseKeyID, "BASESECRET", ""),
		BaseEndpoint: aws.String(s.URL()),
	}, fns...)
}

// sessionClient signs with keys the fake issued.
func sessionClient(s *Server, iss Issued, token string) *sts.Client {
	return sts.New(sts.Options{
		Region:       testRegion,
		Credentials:  credentials.NewStaticCredentialsProvider(iss.AccessKeyID, iss.SecretAccessKey, token),
		BaseEndpoint: aws.String(s.URL()),
	}, oneAttempt)
}

func oneAttempt(o *sts.Options) { o.RetryMaxAttempts = 1 }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func assume(t *testing.T, c *sts.Client, roleARN, session string, duration int32) *sts.AssumeRoleOutput {
	t.Helper()
	in := &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String(session)}
	if duration != 0 {
		in.DurationSeconds = aws.Int32(duration)
	}
	out, err := c.AssumeRole(ctxT(t), in)
	if err != nil {
		t.Fatalf("AssumeRole %s %s: %v", roleARN, session, err)
	}
	return out
}

// apiErr asserts err carries an STS error with this code and HTTP status and
// returns its message.
func apiErr(t *testing.T, err error, code string, status int) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not a smithy.APIError", err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("ErrorCode() = %q (%v), want %q", ae.ErrorCode(), err, code)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v carries no HTTP response", err)
	}
	if re.HTTPStatusCode() != status {
		t.Errorf("HTTP status = %d, want %d", re.HTTPStatusCode(), status)
	}
	if re.ServiceRequestID() == "" {
		t.Error("no request ID in the error (x-amzn-RequestId)")
	}
	return ae.ErrorMessage()
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// issuedLog collects OnIssue calls.
type issuedLog struct {
	mu  sync.Mutex
	all []Issued
}

func (l *issuedLog) add(i Issued) { l.mu.Lock(); l.all = append(l.all, i); l.mu.Unlock() }
func (l *issuedLog) list() []Issued {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Issued(nil), l.all...)
}

// isolateEnv makes config.LoadDefaultConfig see only what the test sets.
func isolateEnv(t *testing.T) {
	t.Helper()
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":             empty,
		"AWS_SHARED_CREDENTIALS_FILE": empty,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_REGION":                  testRegion,
		"AWS_ACCESS_KEY_ID":           baseKeyID,
		"AWS_SECRET_ACCESS_KEY":       "BASESECRET",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
	} {
		t.Setenv(k, v)
	}
	// Set-but-empty counts as set for the endpoint variables, so unset them
	// (t.Setenv first, so they are restored afterwards).
	for _, k := range []string{"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

var (
	accessKeyRE = regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`)
	secretRE    = regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`)
	roleIDRE    = regexp.MustCompile(`^AROA[A-Z2-7]{17}:`)
)

// ---- AssumeRole with the real client ----

func TestAssumeRole(t *testing.T) {
	cases := []struct {
		name        string
		role        Role
		session     string
		duration    int32
		wantExpiry  time.Time
		wantAssumed string
	}{
		{
			name: "explicit duration", role: Role{ARN: prodRole}, session: "U012ABCDEF", duration: 900,
			wantExpiry:  time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC), // t0+900s, whole seconds
			wantAssumed: "arn:aws:sts::210987654321:assumed-role/stopdeploy-stop/U012ABCDEF",
		},
		{
			name: "default 3600 s, role with a path", role: Role{ARN: "arn:aws:iam::210987654321:role/ops/bots/stopper"},
			session:     "alice@example.com",
			wantExpiry:  time.Date(2026, 12, 1, 11, 15, 0, 0, time.UTC),
			wantAssumed: "arn:aws:sts::210987654321:assumed-role/stopper/alice@example.com",
		},
		{
			name: "12 hours on a 12-hour role", role: Role{ARN: prodRole, MaxSessionDuration: 12 * time.Hour},
			session: "Ab0_+=,.@-", duration: 43200,
			wantExpiry:  time.Date(2026, 12, 1, 22, 15, 0, 0, time.UTC),
			wantAssumed: "arn:aws:sts::210987654321:assumed-role/stopdeploy-stop/Ab0_+=,.@-",
		},
		{
			name: "other partition", role: Role{ARN: "arn:aws-cn:iam::555555555555:role/cn"}, session: "cn-session", duration: 900,
			wantExpiry:  time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC),
			wantAssumed: "arn:aws-cn:sts::555555555555:assumed-role/cn/cn-session",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var log issuedLog
			s := newServer(t, Options{Now: func() time.Time { return t0 }, OnIssue: log.add})
			s.PutRole(tc.role)
			out := assume(t, newClient(s), tc.role.ARN, tc.session, tc.duration)

			cr, u := out.Credentials, out.AssumedRoleUser
			if !accessKeyRE.MatchString(aws.ToString(cr.AccessKeyId)) || !secretRE.MatchString(aws.ToString(cr.SecretAccessKey)) || aws.ToString(cr.SessionToken) == "" {
				t.Errorf("credentials = %q / %d-char secret / %d-char token", aws.ToString(cr.AccessKeyId), len(aws.ToString(cr.SecretAccessKey)), len(aws.ToString(cr.SessionToken)))
			}
			if !aws.ToTime(cr.Expiration).Equal(tc.wantExpiry) {
				t.Errorf("Expiration = %v, want %v", aws.ToTime(cr.Expiration), tc.wantExpiry)
			}
			if got := aws.ToString(u.Arn); got != tc.wantAssumed {
				t.Errorf("AssumedRoleUser.Arn = %s, want %s", got, tc.wantAssumed)
			}
			if id := aws.ToString(u.AssumedRoleId); !roleIDRE.MatchString(id) || !strings.HasSuffix(id, ":"+tc.session) {
				t.Errorf("AssumedRoleId = %s", id)
			}

			issued := log.list()
			if len(issued) != 1 {
				t.Fatalf("OnIssue called %d times", len(issued))
			}
			want := Issued{
				AccessKeyID: aws.ToString(cr.AccessKeyId), SecretAccessKey: aws.ToString(cr.SecretAccessKey),
				SessionToken: aws.ToString(cr.SessionToken), Expiration: tc.wantExpiry,
				Account: strings.Split(tc.role.ARN, ":")[4], RoleARN: tc.role.ARN, RoleSessionName: tc.session,
				AssumedRoleARN: tc.wantAssumed, AssumedRoleID: aws.ToString(u.AssumedRoleId),
			}
			if issued[0] != want {
				t.Errorf("OnIssue got %#v\nwant %#v", issued[0], want)
			}
			if got, ok := s.Lookup(want.AccessKeyID); !ok || got != want {
				t.Errorf("Lookup = %v, %t", got, ok)
			}

			calls := s.Calls()
			wantCall := Call{
				Action: ActionAssumeRole, RoleARN: tc.role.ARN, RoleSessionName: tc.session, DurationSeconds: int(tc.duration),
				CallerAccessKeyID: baseKeyID, Region: testRegion, At: t0, Result: "ok", AccessKeyID: want.AccessKeyID,
			}
			if len(calls) != 1 || calls[0] != wantCall {
				t.Errorf("Calls = %+v\nwant [%+v]", calls, wantCall)
			}
		})
	}
}

func TestCallString(t *testing.T) {
	cases := []struct {
		c    Call
		want string
	}{
		{Call{Action: ActionAssumeRole, RoleARN: prodRole, RoleSessionName: "U012AB", DurationSeconds: 900, CallerAccessKeyID: "AKID", Result: "ok", AccessKeyID: "ASIAAAAABBBBCCCCDDDD"},
			"AssumeRole " + prodRole + " session=U012AB duration=900 caller=AKID => ASIAAAAABBBBCCCCDDDD"},
		{Call{Action: ActionAssumeRole, RoleARN: prodRole, RoleSessionName: "bad name", CallerAccessKeyID: "AKID", Result: CodeValidationError},
			"AssumeRole " + prodRole + ` session="bad name" caller=AKID => ValidationError`},
		{Call{Action: ActionGetCallerIdentity, CallerAccessKeyID: "AKID", Result: "ok"}, "GetCallerIdentity caller=AKID"},
		{Call{Result: "MissingAuthenticationToken"}, "(no action) => MissingAuthenticationToken"},
	}
	for _, tc := range cases {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("String() = %q\nwant        %q", got, tc.want)
		}
	}
}

// ---- the bot's wiring: env endpoint, stscreds provider, credentials cache ----

func TestProviderThroughEnvironment(t *testing.T) {
	var log issuedLog
	s := newServer(t, Options{OnIssue: log.add})
	s.AddRole(prodRole)
	isolateEnv(t)
	// The service-specific variable must win over the global one, which
	// points at a closed loopback port.
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_STS", s.URL())

	cfg, err := config.LoadDefaultConfig(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), prodRole, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "U012ABCDEF"
	})
	cache := aws.NewCredentialsCache(provider)

	// Many concurrent and sequential retrieves, one AssumeRole.
	var wg sync.WaitGroup
	got := make([]aws.Credentials, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Go(func() { got[i], errs[i] = cache.Retrieve(ctxT(t)) })
	}
	wg.Wait()
	for i := 0; i < 20; i++ {
		c, err := cache.Retrieve(ctxT(t))
		got, errs = append(got, c), append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := s.Count(IsAssumeRole); n != 1 {
		t.Fatalf("%d AssumeRole calls for %d retrieves, want 1:\n%v", n, len(got), s.Calls())
	}

	issued := log.list()
	if len(issued) != 1 {
		t.Fatalf("OnIssue called %d times", len(issued))
	}
	iss := issued[0]
	for _, c := range got {
		if c.AccessKeyID != iss.AccessKeyID || c.SecretAccessKey != iss.SecretAccessKey || c.SessionToken != iss.SessionToken {
			t.Fatalf("provider returned %s, OnIssue saw %s", c.AccessKeyID, iss.AccessKeyID)
		}
		if c.Source != stscreds.ProviderName || !c.CanExpire || !c.Expires.Equal(iss.Expiration) || c.AccountID != "210987654321" {
			t.Fatalf("credentials = source %q, canExpire %t, expires %v, account %q", c.Source, c.CanExpire, c.Expires, c.AccountID)
		}
	}
	call := s.Calls()[0]
	// stscreds sends DurationSeconds = DefaultDuration (15 min) when unset.
	if call.RoleSessionName != "U012ABCDEF" || call.DurationSeconds != 900 || call.Region != testRegion {
		t.Errorf("call = %v (region %s)", call, call.Region)
	}

	// The issued keys work: the same config, signing with the cache, is the
	// assumed-role session.
	cfg.Credentials = cache
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctxT(t), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(id.Arn) != iss.AssumedRoleARN || aws.ToString(id.Account) != "210987654321" || aws.ToString(id.UserId) != iss.AssumedRoleID {
		t.Errorf("GetCallerIdentity = %s %s %s", aws.ToString(id.Arn), aws.ToString(id.Account), aws.ToString(id.UserId))
	}
	if n := s.Count(IsAssumeRole); n != 1 {
		t.Errorf("%d AssumeRole calls after using the keys, want 1", n)
	}
}

func TestProviderDefaultSessionName(t *testing.T) {
	s := newServer(t, Options{})
	s.AddRole(prodRole)
	cache := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(newClient(s), prodRole))
	if _, err := cache.Retrieve(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// stscreds names the session "aws-go-sdk-<UnixNano>" when none is set.
	if c := s.Calls()[0]; !regexp.MustCompile(`^aws-go-sdk-\d+$`).MatchString(c.RoleSessionName) || c.Result != "ok" {
		t.Errorf("call = %v", c)
	}
}

// The SDK's cache checks expiry against the real wall clock (sdk.NowTime),
// and STS allows no session shorter than 900 s, so the test moves the fake's
// clock instead: keys issued with Now two hours in the past are already
// expired for the cache, which then calls AssumeRole on every Retrieve.
func TestCredentialsCacheRefreshesExpiredKeys(t *testing.T) {
	clk := &clock{t: time.Now().Add(-2 * time.Hour)}
	s := newServer(t, Options{Now: clk.Now})
	s.AddRole(prodRole)
	cache := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(newClient(s), prodRole, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "refresh"
	}))
	retrieve := func() aws.Credentials {
		t.Helper()
		c, err := cache.Retrieve(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	a, b := retrieve(), retrieve()
	if n := s.Count(IsAssumeRole); n != 2 || a.AccessKeyID == b.AccessKeyID {
		t.Fatalf("expired keys: %d AssumeRole calls, keys %s %s; want 2 calls, fresh keys", n, a.AccessKeyID, b.AccessKeyID)
	}
	if !a.Expired() {
		t.Errorf("keys expiring %v are not expired", a.Expires)
	}

	clk.Set(time.Now())
	c := retrieve()
	for i := 0; i < 5; i++ {
		if d := retrieve(); d.AccessKeyID != c.AccessKeyID {
			t.Fatalf("cache returned %s after %s", d.AccessKeyID, c.AccessKeyID)
		}
	}
	if n := s.Count(IsAssumeRole); n != 3 {
		t.Fatalf("%d AssumeRole calls, want 3:\n%v", n, s.Calls())
	}
}

// ---- errors ----

func TestAccessDenied(t *testing.T) {
	const unknown = "arn:aws:iam::210987654321:role/not-there"
	cases := []struct {
		name      string
		opts      Options
		setup     func(*Server)
		role      string
		wantMsg   string
		viaCache  bool
		thenAllow bool
	}{
		{
			name: "unknown role", role: unknown,
			wantMsg: "User: arn:aws:iam::123456789012:user/stopdeploy is not authorized to perform: sts:AssumeRole on resource: " + unknown,
		},
		{
			name: "denied role", setup: func(s *Server) { s.AddRole(prodRole); s.DenyRole(prodRole) }, role: prodRole,
			wantMsg:   "User: arn:aws:iam::123456789012:user/stopdeploy is not authorized to perform: sts:AssumeRole on resource: " + prodRole,
			thenAllow: true,
		},
		{
			name: "through the credentials cache, own caller ARN", opts: Options{CallerARN: "arn:aws:iam::999999999999:user/bot"},
			setup: func(s *Server) { s.AddRole(prodRole); s.DenyRole(prodRole) }, role: prodRole, viaCache: true,
			wantMsg: "User: arn:aws:iam::999999999999:user/bot is not authorized to perform: sts:AssumeRole on resource: " + prodRole,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.opts)
			if tc.setup != nil {
				tc.setup(s)
			}
			c := newClient(s)
			var err error
			if tc.viaCache {
				cache := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(c, tc.role))
				_, err = cache.Retrieve(ctxT(t))
			} else {
				_, err = c.AssumeRole(ctxT(t), &sts.AssumeRoleInput{RoleArn: aws.String(tc.role), RoleSessionName: aws.String("U012")})
			}
			if msg := apiErr(t, err, CodeAccessDenied, 403); msg != tc.wantMsg {
				t.Errorf("message = %q\nwant      %q", msg, tc.wantMsg)
			}
			// The SDK's awsquery decoder (smithy-go@v1.28.9) does not read
			// <Type>Sender</Type>: an unmodelled error's fault is unknown.
			var ae smithy.APIError
			if errors.As(err, &ae); ae.ErrorFault() != smithy.FaultUnknown {
				t.Errorf("fault = %v", ae.ErrorFault())
			}
			if calls := s.Calls(); len(calls) != 1 || calls[0].Result != CodeAccessDenied {
				t.Errorf("calls = %v (AccessDenied is not retried)", calls)
			}
			if tc.thenAllow {
				s.Fail(tc.role, Failure{})
				assume(t, c, tc.role, "U012", 0)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	long := strings.Repeat("a", 65)
	cases := []struct {
		name     string
		role     string
		session  string
		duration int32
		code     string
		msg      string
	}{
		{name: "session too short", session: "a", code: CodeValidationError,
			msg: "1 validation error detected: Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"},
		{name: "empty session", session: "", code: CodeValidationError,
			msg: "1 validation error detected: Value '' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"},
		{name: "space in session", session: "bad name", code: CodeValidationError,
			msg: `1 validation error detected: Value 'bad name' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*`},
		{name: "slash in session", session: "bad/name", code: CodeValidationError,
			msg: `1 validation error detected: Value 'bad/name' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*`},
		{name: "session too long", session: long, code: CodeValidationError,
			msg: "1 validation error detected: Value '" + long + "' at 'roleSessionName' failed to satisfy constraint: Member must have length less than or equal to 64"},
		{name: "session too long and odd", session: long + " ", code: CodeValidationError,
			msg: "2 validation errors detected: Value '" + long + ` ' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*; Value '` + long + " ' at 'roleSessionName' failed to satisfy constraint: Member must have length less than or equal to 64"},
		{name: "session of 64", session: strings.Repeat("b", 64)},
		{name: "session of 2", session: "aa"},
		{name: "duration too short", session: "ok", duration: 899, code: CodeValidationError,
			msg: "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"},
		{name: "duration too long", session: "ok", duration: 43201, code: CodeValidationError,
			msg: "1 validation error detected: Value '43201' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"},
		{name: "duration over the role's 1 h", session: "ok", duration: 3601, code: CodeValidationError,
			msg: "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."},
		{name: "12 h on a 1 h role", session: "ok", duration: 43200, code: CodeValidationError,
			msg: "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."},
		{name: "duration of the role's 1 h", session: "ok", duration: 3600},
		{name: "bad session and duration", session: "bad name", duration: 100, code: CodeValidationError,
			msg: `2 validation errors detected: Value 'bad name' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*; Value '100' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900`},
		{name: "role ARN too short", role: "not-an-arn", session: "ok", code: CodeValidationError,
			msg: "1 validation error detected: Value 'not-an-arn' at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20"},
		{name: "role ARN not an ARN", role: strings.Repeat("x", 20), session: "ok", code: CodeValidationError,
			msg: strings.Repeat("x", 20) + " is invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{})
			s.AddRole(prodRole)
			role := tc.role
			if role == "" {
				role = prodRole
			}
			in := &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String(tc.session)}
			if tc.duration != 0 {
				in.DurationSeconds = aws.Int32(tc.duration)
			}
			_, err := newClient(s).AssumeRole(ctxT(t), in)
			call := s.Calls()[0]
			if call.RoleSessionName != tc.session || call.DurationSeconds != int(tc.duration) {
				t.Errorf("recorded %v", call)
			}
			if tc.code == "" {
				if err != nil || call.Result != "ok" {
					t.Fatalf("err = %v, call %v", err, call)
				}
				return
			}
			if msg := apiErr(t, err, tc.code, 400); msg != tc.msg {
				t.Errorf("message = %q\nwant      %q", msg, tc.msg)
			}
			if call.Result != tc.code {
				t.Errorf("Result = %s", call.Result)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	cases := []struct {
		name        string
		key         string // Fail's roleARN; "-" means prodRole
		f           Failure
		client      []func(*sts.Options)
		wantCode    string // "" means the call succeeds in the end
		wantStatus  int
		wantMsg     string
		wantAs      func(error) bool
		wantResults []string
	}{
		{
			name: "throttled once, no retry", key: "-", f: Failure{Code: CodeThrottling, Times: 1}, client: []func(*sts.Options){oneAttempt},
			wantCode: CodeThrottling, wantStatus: 400, wantMsg: "Rate exceeded", wantResults: []string{CodeThrottling},
		},
		{
			name: "500 once, retried", key: "-", f: Failure{Code: Fail500, Times: 1},
			wantResults: []string{CodeInternalFailure, "ok"},
		},
		{
			name: "network drop once, retried", key: "", f: Failure{Code: FailNetwork, Times: 1},
			wantResults: []string{FailNetwork, "ok"},
		},
		{
			name: "503 twice, retried", key: "", f: Failure{Code: CodeServiceUnavailable, Times: 2},
			wantResults: []string{CodeServiceUnavailable, CodeServiceUnavailable, "ok"},
		},
		{
			name: "region disabled", key: "-", f: Failure{Code: CodeRegionDisabled},
			wantCode: CodeRegionDisabled, wantStatus: 403,
			wantMsg:     "STS is not activated in this region for account:210987654321. Your account administrator can activate STS in this region using the IAM Console.",
			wantAs:      func(err error) bool { var e *types.RegionDisabledException; return errors.As(err, &e) },
			wantResults: []string{CodeRegionDisabled},
		},
		{
			name: "expired token exception", key: "-", f: Failure{Code: CodeExpiredTokenException, Message: "expired"},
			wantCode: CodeExpiredTokenException, wantStatus: 400, wantMsg: "expired",
			wantAs:      func(err error) bool { var e *types.ExpiredTokenException; return errors.As(err, &e) },
			wantResults: []string{CodeExpiredTokenException},
		},
		{
			name: "custom code and status", key: "", f: Failure{Code: "SomethingOdd", Status: 409, Message: "odd"},
			wantCode: "SomethingOdd", wantStatus: 409, wantMsg: "odd", wantResults: []string{"SomethingOdd"},
		},
		{
			name: "other role's failure does not apply", key: "arn:aws:iam::210987654321:role/other", f: Failure{Code: CodeAccessDenied},
			wantResults: []string{"ok"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{})
			s.AddRole(prodRole)
			key := tc.key
			if key == "-" {
				key = prodRole
			}
			s.Fail(key, tc.f)
			_, err := newClient(s, tc.client...).AssumeRole(ctxT(t), &sts.AssumeRoleInput{RoleArn: aws.String(prodRole), RoleSessionName: aws.String("U012")})
			if tc.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				if msg := apiErr(t, err, tc.wantCode, tc.wantStatus); msg != tc.wantMsg {
					t.Errorf("message = %q, want %q", msg, tc.wantMsg)
				}
				if tc.wantAs != nil && !tc.wantAs(err) {
					t.Errorf("error %v is not the modelled type", err)
				}
			}
			var results []string
			for _, c := range s.Calls() {
				results = append(results, c.Result)
			}
			if strings.Join(results, ",") != strings.Join(tc.wantResults, ",") {
				t.Errorf("results = %v, want %v", results, tc.wantResults)
			}
		})
	}
}

func TestFailureTimesAndGlobalScope(t *testing.T) {
	s := newServer(t, Options{})
	s.AddRole(prodRole)
	c := newClient(s, oneAttempt)
	s.Fail("", Failure{Code: CodeAccessDenied, Times: 2})
	// The "" failure applies to every action, twice.
	_, err := c.GetCallerIdentity(ctxT(t), &sts.GetCallerIdentityInput{})
	apiErr(t, err, CodeAccessDenied, 403)
	_, err = c.AssumeRole(ctxT(t), &sts.AssumeRoleInput{RoleArn: aws.String(prodRole), RoleSessionName: aws.String("x2")})
	apiErr(t, err, CodeAccessDenied, 403)
	assume(t, c, prodRole, "after", 0) // used up
}

// ---- issued keys as the caller ----

func TestIssuedKeysAreTheirSession(t *testing.T) {
	clk := &clock{t: t0}
	s := newServer(t, Options{Now: clk.Now})
	s.PutRole(Role{ARN: prodRole, MaxSessionDuration: 12 * time.Hour})
	base := newClient(s, oneAttempt)

	id, err := base.GetCallerIdentity(ctxT(t), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(id.Arn) != DefaultCallerARN || aws.ToString(id.Account) != "123456789012" || !regexp.MustCompile(`^AIDA[A-Z2-7]{17}$`).MatchString(aws.ToString(id.UserId)) {
		t.Errorf("base identity = %s %s %s", aws.ToString(id.Arn), aws.ToString(id.Account), aws.ToString(id.UserId))
	}

	out := assume(t, base, prodRole, "first", 900)
	iss, ok := s.Lookup(aws.ToString(out.Credentials.AccessKeyId))
	if !ok {
		t.Fatal("issued keys not found")
	}
	sess := sessionClient(s, iss, iss.SessionToken)
	id, err = sess.GetCallerIdentity(ctxT(t), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(id.Arn) != iss.AssumedRoleARN || aws.ToString(id.UserId) != iss.AssumedRoleID || aws.ToString(id.Account) != "210987654321" {
		t.Errorf("session identity = %s %s %s", aws.ToString(id.Arn), aws.ToString(id.Account), aws.ToString(id.UserId))
	}

	// Role chaining: at most one hour, even on a 12-hour role.
	_, err = sess.AssumeRole(ctxT(t), &sts.AssumeRoleInput{RoleArn: aws.String(prodRole), RoleSessionName: aws.String("chained"), DurationSeconds: aws.Int32(3601)})
	if msg := apiErr(t, err, CodeValidationError, 400); msg != "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining." {
		t.Errorf("message = %q", msg)
	}
	assume(t, sess, prodRole, "chained", 3600)
	// The session is the caller named in AccessDenied.
	_, err = sess.AssumeRole(ctxT(t), &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::210987654321:role/nope"), RoleSessionName: aws.String("chained")})
	if msg := apiErr(t, err, CodeAccessDenied, 403); !strings.HasPrefix(msg, "User: "+iss.AssumedRoleARN+" is not authorized") {
		t.Errorf("message = %q", msg)
	}

	// A wrong session token, then expiry.
	_, err = sessionClient(s, iss, "not-the-token").GetCallerIdentity(ctxT(t), &sts.GetCallerIdentityInput{})
	if msg := apiErr(t, err, CodeInvalidClientTokenID, 403); msg != "The security token included in the request is invalid." {
		t.Errorf("message = %q", msg)
	}
	clk.Set(iss.Expiration)
	_, err = sess.GetCallerIdentity(ctxT(t), &sts.GetCallerIdentityInput{})
	if msg := apiErr(t, err, CodeExpiredToken, 403); msg != "The security token included in the request is expired" {
		t.Errorf("message = %q", msg)
	}
}

// ---- recording and waiting ----

func TestWaitCalls(t *testing.T) {
	s := newServer(t, Options{})
	s.AddRole(prodRole)
	c := newClient(s)

	bySession := func(name string) func(Call) bool {
		return func(c Call) bool { return c.Action == ActionAssumeRole && c.RoleSessionName == name }
	}
	type result struct {
		calls []Call
		err   error
	}
	done := make(chan result, 1)
	go func() {
		calls, err := s.WaitCalls(ctxT(t), bySession("wanted"), 2)
		done <- result{calls, err}
	}()
	assume(t, c, prodRole, "other", 0)
	assume(t, c, prodRole, "wanted", 0)
	assume(t, c, prodRole, "wanted", 0)
	select {
	case r := <-done:
		if r.err != nil || len(r.calls) != 2 || r.calls[0].RoleSessionName != "wanted" {
			t.Fatalf("WaitCalls = %v, %v", r.calls, r.err)
		}
	case <-ctxT(t).Done():
		t.Fatal("WaitCalls did not return")
	}
	if n := s.Count(bySession("other")); n != 1 {
		t.Errorf("Count = %d", n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if calls, err := s.WaitCalls(ctx, bySession("wanted"), 3); !errors.Is(err, context.Canceled) || len(calls) != 2 {
		t.Errorf("cancelled WaitCalls = %v, %v", calls, err)
	}

	go func() {
		calls, err := s.WaitCalls(context.Background(), nil, 100)
		done <- result{calls, err}
	}()
	s.Close()
	if r := <-done; r.err == nil || !strings.Contains(r.err.Error(), "server closed") || len(r.calls) != 3 {
		t.Errorf("WaitCalls after Close = %d calls, %v", len(r.calls), r.err)
	}
	s.Close() // idempotent
	if _, err := c.GetCallerIdentity(ctxT(t), &sts.GetCallerIdentityInput{}, oneAttempt); err == nil {
		t.Error("request after Close succeeded")
	}
}

func TestConcurrentAssumeRole(t *testing.T) {
	var log issuedLog
	s := newServer(t, Options{OnIssue: log.add})
	s.AddRole(prodRole)
	c := newClient(s)
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Go(func() {
			if _, err := c.AssumeRole(ctxT(t), &sts.AssumeRoleInput{RoleArn: aws.String(prodRole), RoleSessionName: aws.String(fmt.Sprintf("s%d", i))}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	keys := map[string]bool{}
	for _, i := range log.list() {
		keys[i.AccessKeyID] = true
	}
	if len(keys) != 16 || s.Count(IsAssumeRole) != 16 {
		t.Errorf("%d distinct keys, %d calls; want 16", len(keys), s.Count(IsAssumeRole))
	}
}

// ---- secrets stay out of logs ----

func TestLogfNeverPrintsSecrets(t *testing.T) {
	var (
		mu    sync.Mutex
		lines []string
		log   issuedLog
	)
	logf := func(format string, args ...any) {
		mu.Lock()
		lines = append(lines, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	s := newServer(t, Options{Logf: logf, OnIssue: log.add})
	s.AddRole(prodRole)
	c := newClient(s, oneAttempt)
	out := assume(t, c, prodRole, "secretive", 0)
	iss, _ := s.Lookup(aws.ToString(out.Credentials.AccessKeyId))
	sess := sessionClient(s, iss, iss.SessionToken)
	assume(t, sess, prodRole, "chained", 0)
	_, _ = sess.AssumeRole(ctxT(t), &sts.AssumeRoleInput{RoleArn: aws.String(prodRole), RoleSessionName: aws.String("bad name")})
	_, _ = sessionClient(s, iss, "wrong").GetCallerIdentity(ctxT(t), &sts.GetCallerIdentityInput{})

	mu.Lock()
	all := strings.Join(lines, "\n")
	mu.Unlock()
	if len(lines) != 4 {
		t.Errorf("%d log lines, want 4:\n%s", len(lines), all)
	}
	for _, i := range log.list() {
		printed := all + fmt.Sprintf("%v %+v %#v %s", i, i, i, i) + fmt.Sprint(s.Calls())
		if strings.Contains(printed, i.SecretAccessKey) || strings.Contains(printed, i.SessionToken) {
			t.Fatalf("a secret of %s was printed:\n%s", i.AccessKeyID, printed)
		}
		if !strings.Contains(all, i.AccessKeyID) {
			t.Errorf("log does not name issued key %s:\n%s", i.AccessKeyID, all)
		}
	}
	if !strings.Contains(fmt.Sprintf("%#v", iss), `SecretAccessKey:"[redacted]"`) {
		t.Errorf("GoString = %#v", iss)
	}
}

// ---- setup errors ----

func TestSetupErrors(t *testing.T) {
	if _, err := New(Options{CallerARN: "bob"}); err == nil {
		t.Error("New accepted CallerARN \"bob\"")
	}
	s := newServer(t, Options{CallerARN: "arn:aws:sts::111111111111:assumed-role/runner/task-1"})
	id, err := newClient(s).GetCallerIdentity(ctxT(t), &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Account) != "111111111111" || !roleIDRE.MatchString(aws.ToString(id.UserId)) || !strings.HasSuffix(aws.ToString(id.UserId), ":task-1") {
		t.Errorf("GetCallerIdentity = %v, %v", id, err)
	}
	for _, r := range []Role{
		{ARN: "arn:aws:iam::12345:role/short-account"},
		{ARN: "arn:aws:iam::123456789012:user/not-a-role"},
		{ARN: prodRole, MaxSessionDuration: 30 * time.Minute},
		{ARN: prodRole, MaxSessionDuration: 13 * time.Hour},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("PutRole(%+v) did not panic", r)
				}
			}()
			s.PutRole(r)
		}()
	}
}
