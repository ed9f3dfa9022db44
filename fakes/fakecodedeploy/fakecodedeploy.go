// Package fakecodedeploy is a loopback fake of AWS CodeDeploy that speaks
// AWS JSON 1.1, for end-to-end tests, benchmarks and the offline sandbox.
//
// Point the real aws-sdk-go-v2 CodeDeploy client at it, either with
// AWS_ENDPOINT_URL_CODEDEPLOY=URL() or with
// codedeploy.Options.BaseEndpoint = aws.String(URL()). GetDeployment,
// StopDeployment, ListDeployments and BatchGetDeployments are implemented, and
// they are as strict as the real service: POST /, Content-Type
// application/x-amz-json-1.1, an X-Amz-Target header, a well-formed SigV4
// Authorization header scoped to "codedeploy" and an X-Amz-Date header. The
// signature itself is not verified (the fake does not know the secret key).
//
// Deployments live in places: an AWS account and a region. A request's region
// is the region of its SigV4 credential scope, its account is the account of
// its access key (RegisterKey; unregistered keys belong to
// Options.DefaultAccount), and it only sees the deployments of that place.
//
// Each Deployment carries its wire fields and a small script: what
// StopDeployment answers, how many GetDeployment reads (or how much time) pass
// before a stop takes effect, injected failures and answer latency. An
// accepted stop with autoRollbackEnabled=true creates a linked rollback
// deployment when the original becomes Stopped. Faults can also be set for a
// whole place (SetPlaceDelay, FailPlace) or for one operation of a principal's
// account (Deny).
//
// Every request is recorded as a Call; tests wait on them with WaitCalls
// (no sleeping), and Subscribe notifies on every state change.
//
// Files: deployments.go (Deployment, Put/Update, transitions), operations.go
// (the HTTP handler, one function per operation), faults.go (Failure, delays,
// Deny), recording.go (Call and waiting), wire.go (wire shapes), auth.go
// (SigV4 shape checks, keys and principals).
package fakecodedeploy

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults for a Deployment's place and for keys that were never registered.
const (
	// DefaultAccount is Options.DefaultAccount when that is empty.
	DefaultAccount = "123456789012"
	// DefaultRegion is the region of a Deployment put with an empty Region.
	DefaultRegion = "us-east-1"
)

// DefaultListPageSize is Options.ListPageSize when that is zero.
const DefaultListPageSize = 10

// Options configures New.
type Options struct {
	// Logf, if set, receives one line per request. Lines carry the access key
	// ID and role session name, never a secret key or session token.
	Logf func(format string, args ...any)
	// Now is the clock for timestamps, StopTakes and FinishAfter; default time.Now.
	Now func() time.Time
	// Tick, if positive, runs a background ticker that applies time-based
	// transitions (StopTakes, FinishAfter) without waiting for a read, so
	// Subscribe fires for them (the sandbox's live panel).
	Tick time.Duration
	// DefaultAccount is the 12-digit account of access keys that were not
	// registered (the bot's own credentials) and of Deployments put without an
	// Account; default DefaultAccount.
	DefaultAccount string
	// ListPageSize is how many IDs a ListDeployments page holds; default
	// DefaultListPageSize. AWS documents neither a page size nor a parameter
	// to choose one (API_ListDeployments), so the default is small enough for
	// tests to exercise nextToken.
	ListPageSize int
}

// place is an account and a region.
type place struct{ account, region string }

func (p place) String() string { return p.account + "/" + p.region }

// key identifies a stored deployment.
type key struct {
	place
	id string
}

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	opts Options
	now  func() time.Time
	ln   net.Listener
	srv  *http.Server
	url  string

	mu      sync.Mutex
	deps    map[key]*entry
	first   map[string]key               // where each ID was first put, for Deployment(id)
	apps    map[place]map[string]bool    // applications seen by Put or AddGroup
	groups  map[place]map[[2]string]bool // {application, group} seen by Put or AddGroup
	tokens  map[string]listCursor        // ListDeployments nextTokens handed out
	keys    map[string]Principal         // RegisterKey
	denied  map[denial]bool              // Deny
	faults  map[place]*placeFault        // SetPlaceDelay, FailPlace
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
	if opts.DefaultAccount == "" {
		opts.DefaultAccount = DefaultAccount
	}
	if opts.ListPageSize <= 0 {
		opts.ListPageSize = DefaultListPageSize
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakecodedeploy: listen: %w", err)
	}
	s := &Server{
		opts:    opts,
		now:     opts.Now,
		ln:      ln,
		url:     "http://" + ln.Addr().String(),
		deps:    make(map[key]*entry),
		first:   make(map[string]key),
		apps:    make(map[place]map[string]bool),
		groups:  make(map[place]map[[2]string]bool),
		tokens:  make(map[string]listCursor),
		keys:    make(map[string]Principal),
		denied:  make(map[denial]bool),
		faults:  make(map[place]*placeFault),
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

// Close stops the server, aborts pending answer delays and answers being
// streamed, closes Subscribe channels, wakes WaitCalls, and waits for its
// goroutines. Idempotent.
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

// placeOf normalizes an account and region given to an exported method: an
// empty account is Options.DefaultAccount, an empty region DefaultRegion.
func (s *Server) placeOf(account, region string) place {
	if account == "" {
		account = s.opts.DefaultAccount
	}
	if region == "" {
		region = DefaultRegion
	}
	return place{account, region}
}
