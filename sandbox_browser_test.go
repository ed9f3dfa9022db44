package main

// The sandbox in a real browser: `stopdeploy sandbox` (this test binary
// re-executed as the program, with a bare environment) and Debian's
// headless Chromium driven through chromedp, doing what a newcomer does.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

const browserStep = 30 * time.Second // a step waits at most this long

func TestBrowserSandbox(t *testing.T) {
	chromium := findChromium(t)
	sb := startSandboxChild(t)
	b := openBrowser(t, chromium)

	b.do("open the page and wait for the bot", chromedp.Navigate(sb.url), chromedp.WaitVisible(chromedp.CSS("#bot-status.online")))

	// Alice asks, confirms in Slack's dialog, and follows the thread.
	b.do("type the command as Alice", chromedp.SendKeys(chromedp.CSS("#composer-input"), "/stopdeploy d-LGUMS25CC rollback\n"))
	b.wait("the public confirmation", `[...document.querySelectorAll("#messages .msg-confirmation")].some(m =>
		m.innerText.includes("@alice asks to stop deployment d-LGUMS25CC") && m.innerText.includes("Rollback: yes") &&
		m.innerText.includes("checkout") && m.innerText.includes("production"))`)
	b.click("Stop", `#messages .msg-confirmation button.sk-danger[data-action-id="stop"]`)
	b.do("wait for the dialog", chromedp.WaitVisible(chromedp.CSS("#confirm-dialog[open]")))
	b.wait("Slack's confirm dialog", `document.querySelector("#confirm-title").textContent === "Stop d-LGUMS25CC?" &&
		document.querySelector("#confirm-text").textContent.includes("roll back") &&
		document.querySelector("#confirm-ok").textContent === "Stop it"`)
	b.click("Stop it in the dialog", "#confirm-ok")
	b.do("wait for the dialog to close", chromedp.WaitNotVisible(chromedp.CSS("#confirm-dialog")))
	b.wait("the buttons gone and who confirmed", `document.querySelector("#messages .msg-confirmation") === null &&
		document.querySelector("#messages").innerText.includes("Stop confirmed by @alice")`)
	b.click("the replies", "#messages .replies")
	b.do("wait for the thread", chromedp.WaitVisible(chromedp.CSS("#thread-pane")))
	b.wait("Pending in the thread", `document.querySelector("#thread").innerText.includes("CodeDeploy answered Pending")`)
	b.wait("Stopped in the thread", `document.querySelector("#thread").innerText.includes("Deployment d-LGUMS25CC is now Stopped; rollback deployment d-")`)
	b.wait("Pending before Stopped", `(t => t.indexOf("answered Pending") < t.indexOf("is now Stopped"))(document.querySelector("#thread").innerText)`)
	b.wait("the deployments panel", `document.querySelector('[data-deployment="d-LGUMS25CC"] .status').textContent === "Stopped" &&
		document.querySelector("#deployments").innerText.includes("rollback of d-LGUMS25CC")`)
	b.wait("the audit log", `(t => ["requested", "confirmed", "stop_result", "final_state"].every(e => t.includes(e)))(document.querySelector("#log").innerText)`)
	b.screenshot("sandbox-stopped.png")

	// Mallory is not allowed: she alone sees a refusal, and nothing public appears.
	b.click("Mallory", `.who[data-user="U0MALLORY"]`)
	b.wait("Mallory's view", `document.body.dataset.user === "U0MALLORY" &&
		document.querySelector("#composer-input").placeholder.includes("Mallory")`)
	public := `document.querySelectorAll("#messages .msg:not(.msg-ephemeral)").length`
	before := b.count(public)
	b.do("type the command as Mallory", chromedp.SendKeys(chromedp.CSS("#composer-input"), "/stopdeploy d-LGUMS25CC rollback\n"))
	b.wait("the ephemeral refusal", `[...document.querySelectorAll("#messages .msg-ephemeral")].some(m =>
		m.innerText.includes("Only visible to you") && m.innerText.includes("You are not allowed to stop deployments"))`)
	if after := b.count(public); after != before {
		t.Errorf("Mallory's refused command changed the public messages: %d, then %d", before, after)
	}
	if n := b.count(`document.querySelectorAll("#messages .msg-ephemeral").length`); n != 1 {
		t.Errorf("Mallory sees %d ephemeral messages, want only the refusal", n)
	}
	b.screenshot("sandbox-refused.png")
	b.click("Alice", `.who[data-user="U0ALICE"]`)
	b.wait("Alice does not see Mallory's refusal", `document.body.dataset.user === "U0ALICE" &&
		document.querySelector("#messages").innerText.includes("Stop confirmed by @alice") &&
		document.querySelectorAll("#messages .msg-ephemeral").length === 0`)

	b.checkConsole()
	if out := sb.out.String(); !strings.Contains(out, `"event":"refused","user":"U0MALLORY"`) {
		t.Errorf("the bot logged no refusal of Mallory:\n%s", out)
	}
}

// findChromium finds Debian's chromium. In CI (CI set) the test must run, so
// a missing browser fails it.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	const install = "apt-get install -y chromium"
	if os.Getenv("CI") != "" {
		t.Fatalf("chromium not found and CI is set: the browser test must run in CI (%s; .ci/run does it)", install)
	}
	t.Skipf("chromium not found: install it to run the browser test (Debian: %s)", install)
	return ""
}

// sandboxChild is `stopdeploy sandbox` running as a child process.
type sandboxChild struct {
	url      string
	out, err *childOutput
}

// startSandboxChild starts the sandbox on a free loopback port with only
// PATH and HOME from this environment, waits for the URL it prints, and at
// cleanup stops it as Ctrl-C would, expecting a clean exit.
func startSandboxChild(t *testing.T) *sandboxChild {
	t.Helper()
	sb := &sandboxChild{out: newChildOutput(), err: newChildOutput()}
	cmd := exec.Command(os.Args[0], "sandbox", "-addr", "127.0.0.1:0")
	cmd.Env = []string{childEnv + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Stdout, cmd.Stderr = sb.out, sb.err
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("the sandbox exited with %d after SIGTERM", code)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("the sandbox did not exit within 15 s of SIGTERM")
			_ = cmd.Process.Kill()
			<-exited
		}
		for _, text := range []string{sb.out.String(), sb.err.String()} {
			if secretPattern.MatchString(text) {
				t.Errorf("the sandbox printed a Slack token or response_url")
			}
			if strings.Contains(text, "WARNING: DATA RACE") {
				t.Errorf("the sandbox reported a data race")
			}
		}
		if t.Failed() {
			t.Logf("sandbox stdout:\n%s\nsandbox stderr:\n%s", sb.out.String(), sb.err.String())
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), browserStep)
	defer cancel()
	m, err := sb.err.wait(ctx, regexp.MustCompile(`stopdeploy sandbox: open (http://127\.0\.0\.1:[0-9]+)\n`))
	if err != nil {
		t.Fatalf("the sandbox printed no URL: %v\nstderr:\n%s", err, sb.err.String())
	}
	sb.url = m[1]
	return sb
}

// childOutput collects a process's output and lets the test wait on it.
type childOutput struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newChildOutput() *childOutput { return &childOutput{changed: make(chan struct{})} }

func (o *childOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return len(p), nil
}

func (o *childOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func (o *childOutput) wait(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	for {
		o.mu.Lock()
		m, changed := re.FindStringSubmatch(o.buf.String()), o.changed
		o.mu.Unlock()
		if m != nil {
			return m, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// browser is one Chromium tab, with every console error and uncaught
// exception it reports.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

func openBrowser(t *testing.T, chromium string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // Chromium refuses to run as root with its sandbox (CI runs as root)
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	b := &browser{t: t}
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	t.Cleanup(cancel)
	b.ctx = ctx
	// The first Do starts the browser and ties its life to the context it
	// gets, so it gets ctx, and the deadline is kept here.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting %s: %v", chromium, err)
		}
	case <-time.After(browserStep):
		t.Fatalf("%s did not start within %v", chromium, browserStep)
	}
	return b
}

// listen records console errors, uncaught exceptions and browser log errors
// (failed loads, refused content). It runs in the tab's event loop.
func (b *browser) listen(ev any) {
	var problem string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var args []string
			for _, a := range ev.Args {
				args = append(args, a.Description+string(a.Value))
			}
			problem = "console.error: " + strings.Join(args, " ")
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		problem = fmt.Sprintf("exception: %s %s:%d", d.Text, d.URL, d.LineNumber)
		if d.Exception != nil {
			problem += " " + d.Exception.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			problem = "log: " + ev.Entry.Text + " " + ev.Entry.URL
		}
	}
	if problem != "" {
		b.mu.Lock()
		b.problems = append(b.problems, problem)
		b.mu.Unlock()
	}
}

func (b *browser) checkConsole() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("the page reported %s", p)
	}
}

// do runs steps within browserStep.
func (b *browser) do(desc string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\n%s", desc, err, b.pageText())
	}
}

// click clicks the element sel finds, as a user does. The page replaces a
// fragment when the server says it changed; a click that lands as its node
// is replaced is tried again on the new node, as a user would.
func (b *browser) click(desc, sel string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	for {
		err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel)))
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "Could not find node") || ctx.Err() != nil {
			b.t.Fatalf("click %s: %v\n%s", desc, err, b.pageText())
		}
	}
}

// wait polls a JavaScript condition until it holds, within browserStep.
func (b *browser) wait(desc, cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(0))); err != nil {
		b.t.Fatalf("waiting for %s: %v\n%s", desc, err, b.pageText())
	}
}

func (b *browser) count(expr string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return n
}

// screenshot saves the page in the test's artifact directory (a temporary
// directory, kept with go test -artifacts).
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(b.t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// pageText is what the page shows, for failure messages.
func (b *browser) pageText() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		return "(page text unavailable: " + err.Error() + ")"
	}
	return "page text:\n" + text
}
