package main

// The sandbox in a real browser: `stopdeploy sandbox` (this test binary
// re-executed as the program, with a bare environment) and Debian's
// headless Chromium driven through chromedp, doing what a newcomer does.

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

const browserStep = 30 * time.Second // a step waits at most this long

func TestBrowserSandbox(t *testing.T) {
	chromium := findChromium(t)
	sb := startSandboxChild(t)
	b := openBrowser(t, chromium)

	b.do("open the page and wait for the bot", chromedp.Navigate(sb.url), chromedp.WaitVisible(chromedp.CSS("#bot-status.online")))

	// Alice asks; production needs someone else's approval, so Bob
	// approves in Slack's dialog, and the thread follows the stop.
	b.do("type the command as Alice", chromedp.SendKeys(chromedp.CSS("#composer-input"), "/stopdeploy d-LGUMS25CC rollback\n"))
	b.wait("the public confirmation", `[...document.querySelectorAll("#messages .msg-confirmation")].some(m =>
		m.innerText.includes("@alice asks to stop deployment d-LGUMS25CC") && m.innerText.includes("Rollback: yes") &&
		m.innerText.includes("checkout") && m.innerText.includes("production"))`)
	approve := func(who string) {
		b.click("Approve", `#messages .msg-confirmation button.sk-danger[data-action-id="approve"]`)
		b.do("wait for the dialog", chromedp.WaitVisible(chromedp.CSS("#confirm-dialog[open]")))
		b.wait("Slack's confirm dialog", `document.querySelector("#confirm-title").textContent === "Approve the stop of d-LGUMS25CC?" &&
			document.querySelector("#confirm-text").textContent.includes("rolled back") &&
			document.querySelector("#confirm-ok").textContent === "Approve" &&
			document.querySelector("#confirm-ok").className === "sk-danger"`)
		b.click("Approve in the dialog as "+who, "#confirm-ok")
		b.do("wait for the dialog to close", chromedp.WaitNotVisible(chromedp.CSS("#confirm-dialog")))
	}
	// Alice's own approval does not count: she alone is told, and the
	// card still waits.
	approve("Alice")
	b.wait("Alice's approval refused", `[...document.querySelectorAll("#messages .msg-ephemeral")].some(m =>
		m.innerText.includes("You asked for this, so your approval does not count")) &&
		document.querySelector('#messages .msg-confirmation button[data-action-id="approve"]') !== null`)
	b.click("Bob", `.who[data-user="U0BOB"]`)
	b.wait("Bob's view of the confirmation, without Alice's refusal", `document.body.dataset.user === "U0BOB" &&
		document.querySelector("#composer-input").placeholder.includes("Bob") &&
		document.querySelectorAll("#messages .msg-ephemeral").length === 0 &&
		document.querySelector('#messages .msg-confirmation button.sk-danger[data-action-id="approve"]') !== null`)
	approve("Bob")
	b.wait("the buttons gone and who confirmed", `document.querySelector("#messages .msg-confirmation") === null &&
		document.querySelector("#messages").innerText.includes("Stop confirmed by @bob")`)
	b.click("the replies", "#messages .replies")
	b.do("wait for the thread", chromedp.WaitVisible(chromedp.CSS("#thread-pane")))
	b.wait("Pending in the thread", `document.querySelector("#thread").innerText.includes("CodeDeploy answered Pending")`)
	b.wait("Stopped in the thread", `document.querySelector("#thread").innerText.includes("Deployment d-LGUMS25CC is now Stopped; rollback deployment d-")`)
	b.wait("Pending before Stopped", `(t => t.indexOf("answered Pending") < t.indexOf("is now Stopped"))(document.querySelector("#thread").innerText)`)
	b.wait("the deployments panel", `document.querySelector('[data-deployment="d-LGUMS25CC"] .status').textContent === "Stopped" &&
		document.querySelector("#deployments").innerText.includes("rollback of d-LGUMS25CC")`)
	b.wait("the audit log", `(t => ["requested", "approved", "confirmed", "stop_result", "final_state"].every(e => t.includes(e)))(document.querySelector("#log").innerText)`)
	b.screenshot("sandbox-stopped.png")

	// Mallory is in no rule: she alone sees a refusal, and nothing public
	// appears. She tries the running staging deployment, the one any
	// engineer may stop: the bot finds a deployment before the policy
	// decides, so a finished one would only be called finished.
	b.click("Mallory", `.who[data-user="U0MALLORY"]`)
	b.wait("Mallory's view", `document.body.dataset.user === "U0MALLORY" &&
		document.querySelector("#composer-input").placeholder.includes("Mallory")`)
	public := `document.querySelectorAll("#messages .msg:not(.msg-ephemeral)").length`
	before := b.count(public)
	b.do("type the command as Mallory", chromedp.SendKeys(chromedp.CSS("#composer-input"), "/stopdeploy d-STG7K3M2P\n"))
	b.wait("the ephemeral refusal", `[...document.querySelectorAll("#messages .msg-ephemeral")].some(m =>
		m.innerText.includes("Only visible to you") && m.innerText.includes("You are not allowed to stop deployments under rule staging"))`)
	if after := b.count(public); after != before {
		t.Errorf("Mallory's refused command changed the public messages: %d, then %d", before, after)
	}
	if n := b.count(`document.querySelectorAll("#messages .msg-ephemeral").length`); n != 1 {
		t.Errorf("Mallory sees %d ephemeral messages, want only the refusal", n)
	}
	b.screenshot("sandbox-refused.png")
	b.click("Alice", `.who[data-user="U0ALICE"]`)
	b.wait("Alice does not see Mallory's refusal", `document.body.dataset.user === "U0ALICE" &&
		document.querySelector("#messages").innerText.includes("Stop confirmed by @bob") &&
		(e => e.length === 1 && e[0].innerText.includes("You asked for this"))([...document.querySelectorAll("#messages .msg-ephemeral")])`)

	// A busy channel, the thread still open, at common window sizes: every
	// pane scrolls on its own and the page never does.
	for i, size := range []struct{ w, h int64 }{{1280, 720}, {1440, 900}, {1920, 1080}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			b := b.in(t)
			b.resize(size.w, size.h)
			b.chat(t.Name(), 40)
			b.checkLayout("after sending 40 messages", false)
			b.tabThroughComposer()
			b.checkLayout("after tabbing to the composer", false)
			if i == 0 {
				b.scrollUpWhileOthersPost()
			}
			b.screenshot(fmt.Sprintf("sandbox-%dx%d.png", size.w, size.h))
		})
	}
	// Narrower than the three columns: the page scrolls, the channel fills
	// the first screen.
	t.Run("1024x768", func(t *testing.T) {
		b := b.in(t)
		b.resize(1024, 768)
		b.chat(t.Name(), 5)
		b.checkLayout("the narrow layout", true)
		b.screenshot("sandbox-1024x768.png")
	})

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
	t       *testing.T
	ctx     context.Context
	console *consoleLog
}

// consoleLog is what the tab reported, shared by a browser's subtests.
type consoleLog struct {
	mu       sync.Mutex
	problems []string
}

// in is the same tab, failing t (a subtest) instead.
func (b *browser) in(t *testing.T) *browser {
	c := *b
	c.t = t
	return &c
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
		chromedp.Flag("disable-smooth-scrolling", true), // a wheel scrolls at once
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	b := &browser{t: t, console: &consoleLog{}}
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
		b.console.mu.Lock()
		b.console.problems = append(b.console.problems, problem)
		b.console.mu.Unlock()
	}
}

func (b *browser) checkConsole() {
	b.t.Helper()
	b.console.mu.Lock()
	defer b.console.mu.Unlock()
	for _, p := range b.console.problems {
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

// screenshot saves what the window shows in the test's artifact directory
// (a temporary directory, kept with go test -artifacts). Only the window:
// a full-page capture would show what a user cannot scroll to.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
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

// ---- the layout ----

// layoutSettles is how long the page may take to place fragments and follow
// the newest message after a change.
const layoutSettles = 10 * time.Second

// resize gives the tab a window of w×h CSS pixels.
func (b *browser) resize(w, h int64) {
	b.t.Helper()
	b.do(fmt.Sprintf("resize the window to %d×%d", w, h), chromedp.EmulateViewport(w, h))
	b.wait("the new window size", fmt.Sprintf("innerWidth === %d && innerHeight === %d", w, h))
}

// helpAnswers counts the answers to /stopdeploy help the user sees.
const helpAnswers = `[...document.querySelectorAll("#messages .msg-ephemeral")].filter(m => m.innerText.includes("Usage:")).length`

// chat types n messages into the composer as a user does, each followed by
// Enter without waiting for the last one to appear; every tenth (the 5th,
// 15th…) is /stopdeploy help. The last one is a plain message. It waits
// until the channel shows them all, the plain ones in the order typed.
func (b *browser) chat(tag string, n int) {
	b.t.Helper()
	helpsBefore, helps := b.count(helpAnswers), 0
	var plain []string
	for i := 1; i <= n; i++ {
		text := fmt.Sprintf("%s message %d of %d", tag, i, n)
		if i%10 == 5 && i != n {
			text = "/stopdeploy help"
			helps++
		} else {
			plain = append(plain, text)
		}
		b.do("type "+text, chromedp.SendKeys(chromedp.CSS("#composer-input"), text+"\n"))
	}
	want, _ := json.Marshal(plain)
	prefix, _ := json.Marshal(tag + " message ")
	b.wait(fmt.Sprintf("%d messages and %d help answers", len(plain), helps), fmt.Sprintf(`((want, prefix, helps) =>
		JSON.stringify([...document.querySelectorAll("#messages .msg .msg-body")].map(m => m.innerText.trim()).
			filter(t => t.startsWith(prefix))) === JSON.stringify(want) && %s === helps)(%s, %s, %d)`,
		helpAnswers, want, prefix, helpsBefore+helps))
}

// layoutProblems lists what is wrong with the layout, given whether the
// window is narrower than the three columns. Boxes are compared with the
// window (the root's client box, without a scroll bar) to a pixel.
const layoutProblems = `((narrow) => {
	const problems = [];
	const $ = (sel) => document.querySelector(sel);
	const doc = document.scrollingElement;
	const vw = document.documentElement.clientWidth, vh = document.documentElement.clientHeight;
	const window_ = { left: 0, top: 0, right: vw, bottom: vh };
	const at = (r) => Math.round(r.left) + "," + Math.round(r.top) + " to " + Math.round(r.right) + "," + Math.round(r.bottom);
	const inside = (what, el, outer = window_, outerName = "the " + vw + "×" + vh + " window") => {
		if (!el) return problems.push(what + " is missing");
		const r = el.getBoundingClientRect();
		if (r.width < 1 || r.height < 1) return problems.push(what + " has no box");
		if (r.left < outer.left - 1 || r.top < outer.top - 1 || r.right > outer.right + 1 || r.bottom > outer.bottom + 1)
			problems.push(what + " (" + at(r) + ") is not inside " + outerName + " (" + at(outer) + ")");
	};
	const scrollsOnItsOwn = (what, el, minHeight) => {
		if (!el) return;
		const oy = getComputedStyle(el).overflowY;
		if (oy !== "auto" && oy !== "scroll") problems.push(what + " has overflow-y: " + oy + ", want auto");
		if (el.clientHeight < minHeight) problems.push(what + " is " + el.clientHeight + " px tall, want at least " + minHeight);
	};
	const atBottom = (what, el) => {
		const left = el.scrollHeight - el.scrollTop - el.clientHeight;
		if (left > 1) problems.push(what + " is " + Math.round(left) + " px above its bottom (scrollTop " + el.scrollTop + " of " + (el.scrollHeight - el.clientHeight) + ")");
	};

	inside("the channel header", $(".channel-header"));
	inside("the composer input", $("#composer-input"));
	inside("the Send button", $("#composer-send"));
	const m = $("#messages");
	inside("#messages", m);
	scrollsOnItsOwn("#messages", m, 100);
	if (m.scrollHeight <= m.clientHeight) problems.push("#messages does not overflow: scrollHeight " + m.scrollHeight + ", clientHeight " + m.clientHeight);
	atBottom("#messages", m);
	const newest = [...m.querySelectorAll(".msg")].at(-1);
	inside("the newest message", newest);
	inside("the newest message", newest, m.getBoundingClientRect(), "#messages");

	if (doc.scrollTop !== 0 || doc.scrollLeft !== 0) problems.push("the page is scrolled to " + doc.scrollLeft + "," + doc.scrollTop);
	if (doc.scrollWidth > innerWidth) problems.push("the page is " + doc.scrollWidth + " px wide in a " + innerWidth + " px window");
	if (narrow) {
		if (doc.scrollHeight <= innerHeight) problems.push("the narrow page does not scroll to the thread and the simulation");
		return problems;
	}
	if (doc.scrollHeight > innerHeight) problems.push("the page is " + doc.scrollHeight + " px tall in a " + innerHeight + " px window");

	inside("the sidebar", $(".sidebar"));
	const tp = $("#thread-pane");
	if (tp.hidden) problems.push("the thread is closed");
	inside("the thread pane", tp);
	inside("#thread", $("#thread"));
	scrollsOnItsOwn("#thread", $("#thread"), 100);
	atBottom("#thread", $("#thread"));
	inside("the simulation pane", $(".sim-pane"));
	inside("#deployments", $("#deployments"));
	scrollsOnItsOwn("#deployments", $("#deployments"), 100);
	inside("the audit log", $("#log"));
	scrollsOnItsOwn("the audit log", $("#log"), 100);
	return problems;
})`

// checkLayout waits until layoutProblems finds nothing, and reports what it
// found last if the layout does not settle.
func (b *browser) checkLayout(desc string, narrow bool) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, layoutSettles)
	defer cancel()
	cond := fmt.Sprintf(`(p => (window.layoutProblems = p).length === 0)(%s(%t))`, layoutProblems, narrow)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(0))); err != nil {
		last := evaluate[[]string](b, `window.layoutProblems || []`)
		b.t.Errorf("%s at %s: %v:\n\t%s", desc, evaluate[string](b, `innerWidth + "×" + innerHeight`), err, strings.Join(last, "\n\t"))
	}
}

// tabThroughComposer focuses the composer, tabs to Send and back, as a
// keyboard user does.
func (b *browser) tabThroughComposer() {
	b.t.Helper()
	b.do("focus the composer", chromedp.Focus(chromedp.CSS("#composer-input")))
	b.do("Tab", chromedp.KeyEvent(kb.Tab))
	b.wait("Send focused", `document.activeElement === document.querySelector("#composer-send")`)
	b.do("Shift+Tab", chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)))
	b.wait("the composer focused", `document.activeElement === document.querySelector("#composer-input")`)
}

// scrollUpWhileOthersPost scrolls the messages up with the wheel, as one
// reads back: the page stays put, a message from someone else leaves the
// list where it is, and one's own message brings it back to the newest.
func (b *browser) scrollUpWhileOthersPost() {
	b.t.Helper()
	center := evaluate[struct{ X, Y float64 }](b, `(r => ({X: r.left + r.width / 2, Y: r.top + r.height / 2}))(document.querySelector("#messages").getBoundingClientRect())`)
	// A raw call: cdproto's DispatchMouseEventParams omits a zero deltaX,
	// and Chromium requires it for a wheel event.
	b.do("wheel up over the messages", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		var res struct{}
		return t.Call(ctx, input.CommandDispatchMouseEvent, map[string]any{
			"type": input.DispatchMouseEventTypeMouseWheel, "x": center.X, "y": center.Y, "deltaX": 0, "deltaY": -600,
		}, &res)
	}))
	// Scrolled well up, and still (the same scrollTop two frames running).
	b.wait("the messages scrolled up", `(m => {
		const still = window.lastScrollTop === m.scrollTop;
		window.lastScrollTop = m.scrollTop;
		return still && m.scrollHeight - m.scrollTop - m.clientHeight > 300;
	})(document.querySelector("#messages"))`)
	top := evaluate[float64](b, `document.querySelector("#messages").scrollTop`)
	if s := evaluate[float64](b, `document.scrollingElement.scrollTop`); s != 0 {
		b.t.Errorf("the wheel over the messages scrolled the page to %v", s)
	}

	// Bob writes from his own window.
	const bob = "Bob: the freeze is over, deploy away"
	b.do("Bob posts", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`fetch("/api/command", {method: "POST",
		body: new URLSearchParams({user: "U0BOB", channel: "C0DEPLOYS", text: %q})}).
		then(r => { if (!r.ok) throw new Error("POST /api/command: " + r.status); })`, bob), chromedp.EvalAwaitPromise))
	b.wait("Bob's message", fmt.Sprintf(`document.querySelector("#messages").innerText.includes(%q)`, bob))
	if now := evaluate[float64](b, `document.querySelector("#messages").scrollTop`); now != top {
		b.t.Errorf("Bob's message moved the messages Alice had scrolled up: scrollTop %v, then %v", top, now)
	}

	const mine = "Alice: thanks, back to the newest"
	b.do("type "+mine, chromedp.SendKeys(chromedp.CSS("#composer-input"), mine+"\n"))
	b.wait("Alice's message, the newest shown", fmt.Sprintf(`(m => [...m.querySelectorAll(".msg")].at(-1).innerText.includes(%q) &&
		m.scrollHeight - m.scrollTop - m.clientHeight <= 1)(document.querySelector("#messages"))`, mine))
}

// evaluate is the value of a JavaScript expression.
func evaluate[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStep)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return v
}
