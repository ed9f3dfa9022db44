// Package sandbox runs the whole bot offline: the loopback Slack fake, the
// loopback CodeDeploy fake seeded with a few deployments, and a web page
// that looks and behaves like a Slack channel, all in one process and on
// loopback only. The bot itself is not here: main's `sandbox` subcommand
// starts the unmodified bot with Env, so it reads its configuration and
// talks to Slack and AWS exactly as in production.
//
// The page renders the Block Kit the bot posts (server-side, escaped),
// sends /stopdeploy as the user you pick, clicks buttons (with Slack's
// confirm dialog), shows threads and ephemeral messages, the simulated
// deployments and the bot's audit log, and updates itself through
// server-sent events. Its assets are embedded; nothing is fetched from
// anywhere else.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

// DefaultAddr is where the page listens when Options.Addr is empty.
const DefaultAddr = "127.0.0.1:8080"

// followInterval is STOPDEPLOY_FOLLOW_INTERVAL in the sandbox: short enough
// to watch, long enough to see Pending before Stopped.
const followInterval = 2 * time.Second

// Options configures Start.
type Options struct {
	// Addr is the page's host:port. The host must be a loopback address or
	// "localhost"; port 0 picks a free port. Default DefaultAddr.
	Addr string
}

// Sandbox is a running sandbox: the two fakes and the page's server.
type Sandbox struct {
	slack *fakeslack.Server
	cd    *fakecodedeploy.Server
	logs  *logSink
	ui    *ui
	srv   *http.Server
	url   string
	env   map[string]string
	dir   string // holds the empty AWS config file and the policy file

	ctx    context.Context // ends at Close; the page's streams end with it
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Start starts the fakes, seeds them, and serves the page. It refuses an
// address that is not loopback. ctx bounds the sandbox's background work;
// Close releases everything.
func Start(ctx context.Context, opts Options) (_ *Sandbox, err error) {
	addr := opts.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Sandbox{logs: newLogSink(), url: "http://" + ln.Addr().String(), ctx: ctx, cancel: cancel}
	defer func() {
		if err != nil {
			_ = ln.Close()
			s.Close()
		}
	}()

	appToken := "xapp-1-A0STOPDEPLOY-" + randomHex(6) + "-" + randomHex(16)
	botToken := "xoxb-sandbox-" + randomHex(6) + "-" + randomHex(12)
	if s.slack, err = fakeslack.New(fakeslack.Options{AppToken: appToken, BotToken: botToken}); err != nil {
		return nil, err
	}
	if s.cd, err = fakecodedeploy.New(fakecodedeploy.Options{Tick: 250 * time.Millisecond}); err != nil {
		return nil, err
	}
	seedSlack(s.slack)
	seedCodeDeploy(s.cd, time.Now())

	if s.dir, err = os.MkdirTemp("", "stopdeploy-sandbox-"); err != nil {
		return nil, err
	}
	empty := filepath.Join(s.dir, "aws-config-empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		return nil, err
	}
	policyFile := filepath.Join(s.dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(policyYAML), 0o600); err != nil {
		return nil, err
	}
	s.env = sandboxEnv(s, appToken, botToken, empty, policyFile)

	if s.ui, err = newUI(s.ctx, s.slack, s.cd, s.logs); err != nil {
		return nil, err
	}
	s.srv = &http.Server{Handler: s.ui.routes(), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Go(func() { _ = s.srv.Serve(ln) }) // ErrServerClosed after Close
	s.wg.Go(func() {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
				progress(s.cd)
			}
		}
	})
	return s, nil
}

// sandboxEnv is the bot's environment: the fakes, the policy over the
// seeded people, and nothing of the developer's own AWS or bot setup. The
// policy file replaces the allow-list variables, which the bot refuses
// alongside it, so they are unset.
func sandboxEnv(s *Sandbox, appToken, botToken, emptyFile, policyFile string) map[string]string {
	return map[string]string{
		"SLACK_APP_TOKEN": appToken,
		"SLACK_BOT_TOKEN": botToken,
		"SLACK_API_URL":   s.slack.APIURL(),

		"STOPDEPLOY_POLICY_FILE":             policyFile,
		"STOPDEPLOY_ALLOWED_USERS":           "",
		"STOPDEPLOY_ALLOWED_GROUPS":          "",
		"STOPDEPLOY_ALLOWED_CHANNELS":        "",
		"STOPDEPLOY_AUDIT_CHANNEL":           Audit,
		"STOPDEPLOY_FOLLOW_INTERVAL":         followInterval.String(),
		"STOPDEPLOY_FOLLOW_TIMEOUT":          "",
		"STOPDEPLOY_CONFIRM_TIMEOUT":         "",
		"STOPDEPLOY_REQUIRE_SECOND_APPROVER": "",
		"LOG_FORMAT":                         "json",
		"LOG_LEVEL":                          "info",

		// The SDK's default chain, pinned to the fake: static dummy keys
		// (they come first in the chain), empty shared files, no profile,
		// role, container or instance credentials, and no setting that
		// would send a request elsewhere (a general endpoint, ignoring
		// configured endpoints, FIPS or dual-stack endpoints).
		"AWS_REGION":                             "us-east-1",
		"AWS_ACCESS_KEY_ID":                      "AKIASANDBOXEXAMPLE",
		"AWS_SECRET_ACCESS_KEY":                  "sandbox-secret-not-a-real-key",
		"AWS_SESSION_TOKEN":                      "",
		"AWS_PROFILE":                            "",
		"AWS_DEFAULT_PROFILE":                    "",
		"AWS_CONFIG_FILE":                        emptyFile,
		"AWS_SHARED_CREDENTIALS_FILE":            emptyFile,
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_ROLE_ARN":                           "",
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CA_BUNDLE":                          "",
		"AWS_ENDPOINT_URL":                       "",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS":    "",
		"AWS_USE_FIPS_ENDPOINT":                  "",
		"AWS_USE_DUALSTACK_ENDPOINT":             "",
		"AWS_ENDPOINT_URL_CODEDEPLOY":            s.cd.URL(),
	}
}

// checkLoopback refuses an address other people could reach.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("address %q is not a loopback address: the sandbox only listens on 127.0.0.1, ::1 or localhost", addr)
}

// URL is the page's address, "http://127.0.0.1:PORT".
func (s *Sandbox) URL() string { return s.url }

// Env is the environment the bot must run with. An empty value means the
// variable must be unset.
func (s *Sandbox) Env() map[string]string { return maps.Clone(s.env) }

// LogSink receives the bot's log output (JSON lines); the page shows the
// lines, and the audit records among them, as they arrive.
func (s *Sandbox) LogSink() io.Writer { return s.logs }

// Close stops the page's server and the fakes and removes the temporary
// files. It is safe to call more than once.
func (s *Sandbox) Close() {
	s.once.Do(func() {
		s.cancel() // ends the event streams, so Shutdown does not wait for them
		if s.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
				_ = s.srv.Close()
			}
			cancel()
		}
		s.wg.Wait()
		if s.slack != nil {
			s.slack.Close()
		}
		if s.cd != nil {
			s.cd.Close()
		}
		if s.dir != "" {
			_ = os.RemoveAll(s.dir)
		}
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}
