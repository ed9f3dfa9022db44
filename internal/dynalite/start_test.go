package dynalite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRoot(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	touch(t, filepath.Join(tmp, "node_modules", "dynalite", "package.json")) // above the module: not used
	touch(t, filepath.Join(tmp, "mod", "go.mod"))
	touch(t, filepath.Join(tmp, "mod", "pkg", "x.go"))
	touch(t, filepath.Join(tmp, "other", "go.mod"))
	touch(t, filepath.Join(tmp, "other", "node_modules", "dynalite", "package.json"))

	for _, c := range []struct {
		dir, want string
	}{
		{filepath.Join(tmp, "mod", "pkg"), ""},
		{filepath.Join(tmp, "mod"), ""},
		{filepath.Join(tmp, "other"), filepath.Join(tmp, "other")},
		{filepath.Join(tmp, "other", "node_modules"), filepath.Join(tmp, "other")},
	} {
		got, err := Root(c.dir)
		if c.want == "" {
			if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "npm ci") {
				t.Errorf("Root(%s) = %q, %v; want ErrNotInstalled saying `npm ci`", c.dir, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Root(%s) = %q, %v; want %q", c.dir, got, err, c.want)
		}
	}
}

// recordingTB stops the calling goroutine at Skipf or Fatalf, as testing.T does, and
// records the message.
type recordingTB struct {
	testing.TB
	skipped, fatal string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// startIn runs start(tb, dir) in a goroutine, as a test would, and reports what it did.
func startIn(t *testing.T, dir string) *recordingTB {
	t.Helper()
	tb := &recordingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		start(tb, dir, Options{})
		t.Errorf("start(%s) returned a server", dir)
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("start(%s) did not return within %v", dir, waitTimeout)
	}
	return tb
}

func TestStart_NotInstalled(t *testing.T) {
	dir := t.TempDir()

	t.Setenv("CI", "")
	if tb := startIn(t, dir); tb.fatal != "" || !strings.Contains(tb.skipped, "npm ci") {
		t.Errorf("CI unset: skipped %q, fatal %q; want a skip saying `npm ci`", tb.skipped, tb.fatal)
	}

	t.Setenv("CI", "true")
	if tb := startIn(t, dir); tb.skipped != "" || !strings.Contains(tb.fatal, "npm ci") {
		t.Errorf("CI set: skipped %q, fatal %q; want a failure saying `npm ci`", tb.skipped, tb.fatal)
	}
}

func TestStartContext_NoNode(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	Start(t) // skips (or fails in CI) unless node_modules/dynalite is there
	t.Setenv("PATH", t.TempDir())
	_, err = StartContext(t.Context(), wd, Options{})
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "node not found") {
		t.Errorf("StartContext with no node in PATH: %v, want ErrNotInstalled saying node not found", err)
	}
}

func TestClose_EndsProcess(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if s.cmd.ProcessState == nil || !s.cmd.ProcessState.Exited() {
		t.Errorf("after Close: process state %v, want exited", s.cmd.ProcessState)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestExitsWhenStdinCloses is what happens when the test binary dies without cleanup.
func TestExitsWhenStdinCloses(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.stdin.Close()
	select {
	case <-s.waitDone:
		if s.waitErr != nil {
			t.Errorf("dynalite exited with %v, want 0", s.waitErr)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("dynalite still running %v after its stdin closed", waitTimeout)
	}
}

func TestStartContext_Canceled(t *testing.T) {
	t.Parallel()
	Start(t) // skips (or fails in CI) unless installed
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	s, err := StartContext(ctx, wd, Options{})
	if err == nil {
		// The port may have won the race with ctx.Done; either outcome is valid.
		s.Close()
		return
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("StartContext(canceled) = %v, want context.Canceled", err)
	}
}

func TestStartWith_CreateTableMs(t *testing.T) {
	t.Parallel()
	client := StartWith(t, Options{CreateTableMs: 200}).Client(t)

	out, err := client.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String("slow"),
		BillingMode:          types.BillingModePayPerRequest,
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
	})
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	if got := out.TableDescription.TableStatus; got != types.TableStatusCreating {
		t.Errorf("CreateTable status = %s, want CREATING", got)
	}
	// The helper waits for ACTIVE.
	if got := CreateTable(t, client, "stopdeploy").TableStatus; got != types.TableStatusActive {
		t.Errorf("CreateTable helper returned status %s, want ACTIVE", got)
	}
}
