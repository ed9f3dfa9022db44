package main

// The end-to-end harness: the real bot binary (this test binary, re-executed
// as the bot) against the loopback Slack and CodeDeploy fakes, configured
// only through its environment, as in production.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/commands"
	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

// childEnv makes the test binary run main() instead of the tests.
const childEnv = "STOPDEPLOY_TEST_RUN_MAIN"

// statsEnv makes the child print its goroutine count and live heap to
// stderr on SIGUSR1, for the leak test. It is harness code: the bot itself
// has no such hook.
const statsEnv = "STOPDEPLOY_TEST_STATS"

// cpuProfileEnv names a file for the child's CPU profile, written when it
// exits normally.
const cpuProfileEnv = "STOPDEPLOY_TEST_CPUPROFILE"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if os.Getenv(statsEnv) == "1" {
			go reportStatsOnSignal()
		}
		// The bot's own CPU profile, for finding what limits a benchmark
		// (go test's -cpuprofile covers only the test process).
		if path := os.Getenv(cpuProfileEnv); path != "" {
			f, err := os.Create(path)
			if err == nil && pprof.StartCPUProfile(f) == nil {
				defer f.Close()
				defer pprof.StopCPUProfile()
			}
		}
		main()
		return
	}
	code := m.Run()
	if builtBot != "" {
		os.RemoveAll(filepath.Dir(builtBot))
	}
	os.Exit(code)
}

func reportStatsOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	for range ch {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(os.Stderr, "STATS goroutines=%d heap=%d\n", goroutinesOutsideConnPools(), m.HeapAlloc)
	}
}

// goroutinesOutsideConnPools counts goroutines, leaving out the two each
// idle keep-alive connection has: how many connections are idle depends on
// the last burst, not on leaks.
func goroutinesOutsideConnPools() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if !strings.Contains(g, "net/http.(*persistConn)") {
			count++
		}
	}
	return count
}

// signingKey is the key the bot derives from appToken when no
// STOPDEPLOY_SIGNING_SECRET is set: tests read and forge button values with it.
var signingKey = commands.DeriveKey(appToken)

const (
	appToken = "xapp-1-A0STOPDEPLOY-1234567890-e2eapptokensecret"
	botToken = "xoxb-1234567890-0987654321-e2ebottokensecret"

	alice   = "U0ALICE"   // allowed directly
	bob     = "U0BOB"     // allowed through the S0ONCALL user group
	carol   = "U0CAROL"   // allowed directly
	mallory = "U0MALLORY" // not allowed

	deploys = "C0DEPLOYS" // the bot is a member
	random  = "C0RANDOM"  // the bot is a member
	noBot   = "C0NOBOT"   // the bot is not a member
	private = "G0PRIVATE" // private, and the bot is not a member
	audit   = "C0AUDIT"   // the bot is a member

	running = "d-LGUMS25CC" // in progress on checkout / production
	done    = "d-DONE00001" // already succeeded

	waitTimeout = 15 * time.Second
)

// world is one loopback Slack workspace and one CodeDeploy region.
type world struct {
	t      testing.TB
	binary string // the bot: this test binary re-executed, unless a benchmark built one
	slack  *fakeslack.Server
	cd     *fakecodedeploy.Server
	env    map[string]string
	seen   *seenMessages
}

// seenMessages lets a wait for a private reply skip replies an earlier
// step already matched, so that two equal answers are two answers.
type seenMessages struct {
	mu sync.Mutex
	m  map[string]bool
}

func (s *seenMessages) claim(m fakeslack.Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := m.Channel + "/" + m.TS + "/" + m.VisibleTo
	if s.m[key] {
		return false
	}
	s.m[key] = true
	return true
}

func newWorld(t testing.TB, slackOpts ...func(*fakeslack.Options)) *world {
	t.Helper()
	opts := fakeslack.Options{AppToken: appToken, BotToken: botToken, PingInterval: time.Second}
	for _, o := range slackOpts {
		o(&opts)
	}
	sl, err := fakeslack.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sl.Close)
	cd, err := fakecodedeploy.New(fakecodedeploy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cd.Close)

	for _, u := range []fakeslack.User{
		{ID: alice, Name: "alice", RealName: "Alice Example"},
		{ID: bob, Name: "bob", RealName: "Bob Example"},
		{ID: carol, Name: "carol", RealName: "Carol Example"},
		{ID: mallory, Name: "mallory", RealName: "Mallory Example"},
	} {
		sl.AddUser(u)
	}
	everyone := []string{alice, bob, carol, mallory}
	sl.AddChannel(fakeslack.Channel{ID: deploys, Name: "deploys", Members: everyone, BotIsMember: true})
	sl.AddChannel(fakeslack.Channel{ID: random, Name: "random", Members: everyone, BotIsMember: true})
	sl.AddChannel(fakeslack.Channel{ID: noBot, Name: "no-bot", Members: everyone})
	sl.AddChannel(fakeslack.Channel{ID: private, Name: "private", Members: everyone, Private: true})
	sl.AddChannel(fakeslack.Channel{ID: audit, Name: "audit", Members: []string{alice}, BotIsMember: true})
	sl.AddUserGroup("S0ONCALL", bob)

	cd.Put(fakecodedeploy.Deployment{
		ID: running, Application: "checkout", Group: "production", Status: "InProgress", Creator: "user",
		CreateTime: time.Now().Add(-5 * time.Minute),
		Overview:   fakecodedeploy.Overview{Succeeded: 3, InProgress: 1, Pending: 2},
	})
	cd.Put(fakecodedeploy.Deployment{ID: done, Application: "checkout", Group: "staging", Status: "Succeeded"})

	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return &world{t: t, binary: os.Args[0], slack: sl, cd: cd, seen: &seenMessages{m: map[string]bool{}}, env: map[string]string{
		childEnv:                      "1",
		"SLACK_APP_TOKEN":             appToken,
		"SLACK_BOT_TOKEN":             botToken,
		"SLACK_API_URL":               sl.APIURL(),
		"STOPDEPLOY_ALLOWED_USERS":    alice + "," + carol,
		"STOPDEPLOY_ALLOWED_GROUPS":   "S0ONCALL",
		"STOPDEPLOY_FOLLOW_INTERVAL":  "20ms",
		"LOG_LEVEL":                   "debug", // the most output, to prove tokens stay out of it
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "AKIAE2ETESTKEY",
		"AWS_SECRET_ACCESS_KEY":       "e2e-test-secret",
		"AWS_CONFIG_FILE":             empty,
		"AWS_SHARED_CREDENTIALS_FILE": empty,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL_CODEDEPLOY": cd.URL(),
	}}
}

// in returns w reporting to t, for use in subtests.
func (w *world) in(t *testing.T) *world {
	c := *w
	c.t = t
	return &c
}

// proc is one running bot process.
type proc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	out    *lines // stdout: JSON log lines
	errOut *lines // stderr
	exited chan struct{}
	err    error // valid once exited is closed
}

// unset, as an override, removes a variable.
const unset = "\x00unset"

// environ returns the world's environment with overrides.
func (w *world) environ(overrides map[string]string) []string {
	env := map[string]string{}
	for k, v := range w.env {
		env[k] = v
	}
	for k, v := range overrides {
		if v == unset {
			delete(env, k)
			continue
		}
		env[k] = v
	}
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// spawn starts the bot with args and environment overrides, without waiting.
func (w *world) spawn(name string, overrides map[string]string, args ...string) *proc {
	t := w.t
	t.Helper()
	p := &proc{t: t, name: name, out: newLines(), errOut: newLines(), exited: make(chan struct{})}
	p.cmd = exec.Command(w.binary, args...)
	p.cmd.Env = w.environ(overrides)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.errOut
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		p.checkOutput()
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, p.out.text(), name, p.errOut.text())
		}
	})
	return p
}

// start runs a bot and waits until it is connected to Slack.
func (w *world) start(name string, overrides map[string]string) *proc {
	w.t.Helper()
	p := w.spawn(name, overrides)
	p.waitLog("connected to Slack", func(l logLine) bool { return l.msg() == "connected to Slack" })
	return p
}

// checkOutput holds for every process: no token in any output, no data race.
func (p *proc) checkOutput() {
	p.t.Helper()
	for _, stream := range []*lines{p.out, p.errOut} {
		text := stream.text()
		// The fake's response_urls are shaped like Slack's: /commands/T0FAKE/… and /actions/T0FAKE/….
		for _, secret := range []string{appToken, botToken, "e2eapptokensecret", "e2ebottokensecret", "/commands/T0FAKE/", "/actions/T0FAKE/"} {
			if strings.Contains(text, secret) {
				p.t.Errorf("%s printed a token (%q)", p.name, secret)
			}
		}
		if strings.Contains(text, "WARNING: DATA RACE") {
			p.t.Errorf("%s reported a data race", p.name)
		}
	}
}

// signal sends sig and waits for the exit, returning the exit code and how long it took.
func (p *proc) signal(sig syscall.Signal) (code int, took time.Duration) {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s: %v", p.name, err)
	}
	return p.wait(20 * time.Second), time.Since(start)
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(limit time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(limit):
		p.t.Fatalf("%s did not exit within %v", p.name, limit)
	}
	return p.cmd.ProcessState.ExitCode()
}

// in returns p reporting to t, for use in subtests.
func (p *proc) in(t *testing.T) *proc {
	c := *p
	c.t = t
	return &c
}

type logLine map[string]any

func (l logLine) msg() string           { s, _ := l["message"].(string); return s }
func (l logLine) str(key string) string { s, _ := l[key].(string); return s }

// waitLog waits for a JSON log line that matches.
func (p *proc) waitLog(desc string, match func(logLine) bool) logLine {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	l, err := p.out.wait(ctx, match)
	if err != nil {
		p.t.Fatalf("%s: waiting for log %q: %v", p.name, desc, err)
	}
	return l
}

// auditLine waits for the audit log line of event for deployment.
func (p *proc) auditLine(event, deployment string) logLine {
	p.t.Helper()
	return p.waitLog("audit "+event+" "+deployment, func(l logLine) bool {
		return l["audit"] == true && l.str("event") == event && l.str("deployment") == deployment
	})
}

// audits returns the audit lines logged so far for deployment, as "event outcome".
func (p *proc) audits(deployment string) []string {
	var out []string
	for _, l := range p.out.parsed() {
		if l["audit"] == true && l.str("deployment") == deployment {
			out = append(out, l.str("event")+" "+l.str("outcome"))
		}
	}
	return out
}

// auditsOf returns the audit lines of one event for deployment.
func (p *proc) auditsOf(deployment, event string) []logLine {
	var out []logLine
	for _, l := range p.out.parsed() {
		if l["audit"] == true && l.str("deployment") == deployment && l.str("event") == event {
			out = append(out, l)
		}
	}
	return out
}

// lines collects a process's output and lets tests wait on it.
type lines struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLines() *lines { return &lines{changed: make(chan struct{})} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *lines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lines) parsed() []logLine {
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(l.text()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line logLine
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			out = append(out, line)
		}
	}
	return out
}

// until waits until cond holds, re-checking after every write.
func (l *lines) until(ctx context.Context, cond func() bool) error {
	for {
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// untilAll waits until cond holds, re-checking after every write to any
// of procs' stdout: a line written before some other event (a call to a
// fake) may still be in the pipe when the test sees that event.
func untilAll(t testing.TB, desc string, cond func() bool, procs ...*proc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cases := make([]reflect.SelectCase, len(procs)+1)
	cases[len(procs)] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}
	for {
		for i, p := range procs {
			p.out.mu.Lock()
			cases[i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(p.out.changed)}
			p.out.mu.Unlock()
		}
		if cond() {
			return
		}
		if chosen, _, _ := reflect.Select(cases); chosen == len(procs) {
			t.Fatalf("waiting for %s: %v", desc, ctx.Err())
		}
	}
}

func (l *lines) wait(ctx context.Context, match func(logLine) bool) (logLine, error) {
	for {
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		for _, line := range l.parsed() {
			if match(line) {
				return line, nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// command sends a slash command and waits for its ack.
func (w *world) command(user, channel, text string, opts ...fakeslack.DeliveryOption) fakeslack.Ack {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	id, err := w.slack.SendSlashCommand(ctx, fakeslack.SlashCommand{UserID: user, ChannelID: channel, Text: text}, opts...)
	if err != nil {
		w.t.Fatalf("send /stopdeploy %s: %v", text, err)
	}
	ack, err := w.slack.WaitAck(ctx, id)
	if err != nil {
		w.t.Fatalf("ack of /stopdeploy %s: %v", text, err)
	}
	return ack
}

// click presses a button on msg and waits for the ack.
func (w *world) click(user string, msg fakeslack.Message, action string, opts ...fakeslack.DeliveryOption) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	id, err := w.slack.ClickButton(ctx, fakeslack.Click{UserID: user, ChannelID: msg.Channel, MessageTS: msg.TS, ActionID: action}, opts...)
	if err != nil {
		w.t.Fatalf("click %s: %v", action, err)
	}
	if _, err := w.slack.WaitAck(ctx, id); err != nil {
		w.t.Fatalf("ack of click %s: %v", action, err)
	}
}

// waitMessage waits for a message that matches.
func (w *world) waitMessage(desc string, match func(fakeslack.Message) bool) fakeslack.Message {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	m, err := w.slack.WaitMessage(ctx, match)
	if err != nil {
		w.t.Fatalf("waiting for %s: %v", desc, err)
	}
	return m
}

// confirmation waits for the public confirmation of deployment in channel.
func (w *world) confirmation(channel, deployment string) fakeslack.Message {
	w.t.Helper()
	needle := []byte(deployment)
	return w.waitMessage("confirmation of "+deployment, func(m fakeslack.Message) bool {
		return m.Channel == channel && !m.Ephemeral && m.ThreadTS == "" && bytes.Contains(m.Blocks, needle)
	})
}

// ephemeral waits for a new message in channel, one that only user can see
// and that contains want.
func (w *world) ephemeral(user, channel, want string) fakeslack.Message {
	w.t.Helper()
	return w.waitMessage(fmt.Sprintf("ephemeral to %s in %s containing %q", user, channel, want), func(m fakeslack.Message) bool {
		return m.Ephemeral && m.VisibleTo == user && m.Channel == channel && strings.Contains(m.Text, want) && w.seen.claim(m)
	})
}

// threadReply waits for a reply in msg's thread that contains want.
func (w *world) threadReply(msg fakeslack.Message, want string) fakeslack.Message {
	w.t.Helper()
	return w.waitMessage(fmt.Sprintf("thread reply containing %q", want), func(m fakeslack.Message) bool {
		return m.Channel == msg.Channel && m.ThreadTS == msg.TS && strings.Contains(m.Text, want)
	})
}

// current returns the message as Slack holds it now.
func (w *world) current(msg fakeslack.Message) fakeslack.Message {
	w.t.Helper()
	m, ok := w.slack.Message(msg.Channel, msg.TS)
	if !ok {
		w.t.Fatalf("message %s/%s is gone", msg.Channel, msg.TS)
	}
	return m
}

// waitNoButtons waits until msg has lost its buttons.
func (w *world) waitNoButtons(msg fakeslack.Message) fakeslack.Message {
	w.t.Helper()
	return w.waitMessage("buttons removed", func(m fakeslack.Message) bool {
		return m.Channel == msg.Channel && m.TS == msg.TS && len(m.Buttons()) == 0
	})
}

// publicMessages returns the non-ephemeral messages in channel.
func (w *world) publicMessages(channel string) []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range w.slack.Messages() {
		if m.Channel == channel && !m.Ephemeral {
			out = append(out, m)
		}
	}
	return out
}

// calls returns CodeDeploy calls of target for id, as strings.
func (w *world) calls(target, id string) []string {
	var out []string
	for _, c := range w.cd.Calls() {
		if c.Target == target && c.DeploymentID == id {
			out = append(out, c.String())
		}
	}
	return out
}

// waitCalls waits until n calls of target for id were made.
func (w *world) waitCalls(target, id string, n int) []fakecodedeploy.Call {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	calls, err := w.cd.WaitCalls(ctx, func(c fakecodedeploy.Call) bool { return c.Target == target && c.DeploymentID == id }, n)
	if err != nil {
		w.t.Fatalf("waiting for %d %s calls on %s: %v (calls: %v)", n, target, id, err, w.cd.Calls())
	}
	return calls
}
