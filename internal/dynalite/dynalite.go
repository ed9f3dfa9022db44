// Package dynalite runs dynalite, an implementation of DynamoDB that speaks the real wire
// protocol (JSON 1.1, SigV4 accepted but not checked), on loopback for tests.
//
// dynalite is an npm package pinned in the repository's package.json; install it with
// `npm ci` at the repository root (Node.js >= 20). Each Server is one node process holding
// its tables in memory; it listens on 127.0.0.1 on a port the kernel picks, so parallel
// tests never race for a port.
//
//	srv := dynalite.Start(t)
//	client := srv.Client(t)
//	dynalite.CreateTable(t, client, "stopdeploy")
package dynalite

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// serverJS starts dynalite on 127.0.0.1:0 and prints {"port":N}; see server.js.
//
//go:embed server.js
var serverJS string

// ErrNotInstalled is returned (wrapped, with how to install) when node, a Node.js >= 20
// or node_modules/dynalite is missing.
var ErrNotInstalled = errors.New("dynalite is not installed")

const (
	// startTimeout bounds Start: node and dynalite's requires take about 0.2 s.
	startTimeout = 30 * time.Second
	// stopTimeout is how long Close waits after SIGTERM before it kills the process group.
	stopTimeout = 5 * time.Second
	// exitNodeTooOld is server.js's exit code for a Node.js older than 20.
	exitNodeTooOld = 3
)

// Options are dynalite's own options. The zero value is what tests want: tables leave
// CREATING, DELETING and UPDATING on the next tick instead of after dynalite's 500 ms.
type Options struct {
	CreateTableMs int `json:"createTableMs"`
	DeleteTableMs int `json:"deleteTableMs"`
	UpdateTableMs int `json:"updateTableMs"`
	// MaxItemSizeKb is the largest item accepted; 0 means DynamoDB's 400 KB.
	MaxItemSizeKb int `json:"maxItemSizeKb,omitempty"`
}

// Server is one running dynalite process.
type Server struct {
	endpoint string
	cmd      *exec.Cmd
	stdin    io.Closer
	output   *output

	waitDone chan struct{} // closed once cmd.Wait has returned
	waitErr  error         // cmd.Wait's result, read after waitDone

	closeOnce sync.Once
	closeErr  error
}

// Start starts dynalite with the zero Options and stops it when the test ends. It looks
// for node_modules/dynalite from the working directory up to the Go module root. If node or
// dynalite is missing the test is skipped, or fails when the CI environment variable is set.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartWith(tb, Options{})
}

// StartWith is Start with Options.
func StartWith(tb testing.TB, opts Options) *Server {
	tb.Helper()
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatalf("dynalite: os.Getwd: %v", err)
	}
	return start(tb, wd, opts)
}

func start(tb testing.TB, dir string, opts Options) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), startTimeout)
	defer cancel()
	s, err := StartContext(ctx, dir, opts)
	if errors.Is(err, ErrNotInstalled) {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%v (CI is set, so this is a failure, not a skip)", err)
		}
		tb.Skipf("%v", err)
	}
	if err != nil {
		tb.Fatalf("dynalite.StartContext: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("dynalite: Close: %v", err)
		}
		if tb.Failed() {
			tb.Logf("dynalite's output:\n%s", s.Output())
		}
	})
	return s
}

// StartContext starts dynalite from the node_modules found at or above dir (see Root).
// ctx bounds the start only; the server runs until Close. The error wraps ErrNotInstalled
// when node, Node.js >= 20 or dynalite is missing.
func StartContext(ctx context.Context, dir string, opts Options) (*Server, error) {
	root, err := Root(dir)
	if err != nil {
		return nil, err
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("%w: node not found in PATH (%v); install Node.js >= 20, then run `npm ci` in %s", ErrNotInstalled, err, root)
	}
	optsJSON, err := json.Marshal(opts)
	if err != nil {
		return nil, fmt.Errorf("json.Marshal: %w", err)
	}

	out := &output{}
	ports := &portWriter{out: out, port: make(chan int, 1)}
	cmd := exec.Command(node, "--eval", serverJS)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"DYNALITE_MODULE="+filepath.Join(root, "node_modules", "dynalite"),
		"DYNALITE_OPTIONS="+string(optsJSON),
	)
	cmd.Stdout = ports
	cmd.Stderr = out
	// Wait returns even if something still holds the output pipes open.
	cmd.WaitDelay = stopTimeout
	setProcessGroup(cmd)
	stdin, err := cmd.StdinPipe() // server.js exits when this closes, even if we are SIGKILLed
	if err != nil {
		return nil, fmt.Errorf("exec.Cmd.StdinPipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec.Cmd.Start: %w", err)
	}
	s := &Server{cmd: cmd, stdin: stdin, output: out, waitDone: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.waitDone)
	}()

	select {
	case port := <-ports.port:
		s.endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
		return s, nil
	case <-s.waitDone:
		var exit *exec.ExitError
		if errors.As(s.waitErr, &exit) && exit.ExitCode() == exitNodeTooOld {
			return nil, fmt.Errorf("%w: %s", ErrNotInstalled, bytes.TrimSpace(out.Bytes()))
		}
		return nil, fmt.Errorf("dynalite exited before listening (%v); its output:\n%s", s.waitErr, out.Bytes())
	case <-ctx.Done():
		closeErr := s.Close()
		return nil, fmt.Errorf("dynalite did not print its port: %w (close: %v); its output:\n%s", ctx.Err(), closeErr, out.Bytes())
	}
}

// Root returns the directory at or above dir that holds node_modules/dynalite, looking no
// higher than the Go module root (the first directory with a go.mod). Tests run in their
// package's directory, so this finds the repository root's node_modules.
func Root(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("filepath.Abs: %w", err)
	}
	for d := abs; ; {
		if isFile(filepath.Join(d, "node_modules", "dynalite", "package.json")) {
			return d, nil
		}
		if isFile(filepath.Join(d, "go.mod")) {
			return "", fmt.Errorf("%w: no node_modules/dynalite between %s and the module root %s; run `npm ci` in %s", ErrNotInstalled, abs, d, d)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("%w: no node_modules/dynalite and no go.mod at or above %s; run `npm ci` at the repository root", ErrNotInstalled, abs)
		}
		d = parent
	}
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// Endpoint is the server's URL, "http://127.0.0.1:PORT": a client's BaseEndpoint or
// AWS_ENDPOINT_URL_DYNAMODB.
func (s *Server) Endpoint() string { return s.endpoint }

// Output is what dynalite has written to stdout and stderr (the port line included).
func (s *Server) Output() string { return string(s.output.Bytes()) }

// Close stops dynalite: it closes its stdin and sends SIGTERM to its process group, then
// kills the group if it has not exited within 5 s. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stdin.Close()
		signalGroup(s.cmd, sigTerm)
		select {
		case <-s.waitDone:
		case <-time.After(stopTimeout):
			signalGroup(s.cmd, sigKill)
			<-s.waitDone
			s.closeErr = fmt.Errorf("dynalite did not exit within %v of SIGTERM; killed its process group", stopTimeout)
		}
		// Whatever it may have started goes with it (the group outlives a reaped leader
		// only while it has members, so this cannot hit a stranger).
		signalGroup(s.cmd, sigKill)
	})
	return s.closeErr
}

// output keeps a process's output for error messages, up to a limit.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const outputLimit = 1 << 20

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if room := outputLimit - o.buf.Len(); room > 0 {
		o.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (o *output) Bytes() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return bytes.Clone(o.buf.Bytes())
}

// portWriter is server.js's stdout: it sends the port from the first line, {"port":N}.
type portWriter struct {
	out  *output
	port chan int // buffered, receives once

	line []byte // the first line so far; nil once it has been read
	done bool
}

// Write is called from exec's copying goroutine only.
func (w *portWriter) Write(p []byte) (int, error) {
	w.out.Write(p)
	if w.done {
		return len(p), nil
	}
	w.line = append(w.line, p...)
	i := bytes.IndexByte(w.line, '\n')
	if i < 0 {
		return len(p), nil
	}
	w.done = true
	var msg struct {
		Port int `json:"port"`
	}
	if err := json.Unmarshal(w.line[:i], &msg); err == nil && msg.Port > 0 {
		w.port <- msg.Port
	}
	w.line = nil
	return len(p), nil
}
