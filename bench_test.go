package main

// Benchmarks of the real bot binary (built with go build, as a user would)
// against the loopback fakes. They report figures with b.ReportMetric and
// assert no times: the README's Performance section lists the figures and
// the command that reproduces them.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

var (
	buildOnce sync.Once
	builtBot  string
	buildErr  error
)

// botBinary builds the bot once per run, with go build as in production.
func botBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stopdeploy-bench")
		if err != nil {
			buildErr = err
			return
		}
		builtBot = filepath.Join(dir, "stopdeploy")
		// A static build, as the README recommends for deployment: it maps no
		// libc, about 2.5 MB less resident memory.
		// -buildvcs=true: stamp the revision (TestE2E_Version) even where
		// GOFLAGS turns it off, as on this project's machines.
		cmd := exec.Command("go", "build", "-buildvcs=true", "-o", builtBot, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return builtBot
}

// benchWorld is a world whose bot is the built binary, logging at info
// (debug logging would measure the logger).
func benchWorld(b *testing.B, deployments int) *world {
	b.Helper()
	w := newWorld(b)
	w.binary = botBinary(b)
	w.env["LOG_LEVEL"] = "info"
	for i := range deployments {
		w.cd.Put(fakecodedeploy.Deployment{ID: benchID(i), Application: "checkout", Group: "production", Status: "InProgress"})
	}
	return w
}

func benchID(i int) string { return fmt.Sprintf("d-BENCH%04d", i) }

// burst sends n slash commands, at most c at a time, and returns each
// envelope's time from sent to acknowledged.
func burst(b *testing.B, w *world, n, c int, text func(i int) string, opts ...fakeslack.DeliveryOption) []time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lat := make([]time.Duration, n)
	sem := make(chan struct{}, c)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// Several people: the bot caps each user's share of the work.
			user := []string{alice, bob, carol}[i%3]
			id, err := w.slack.SendSlashCommand(ctx, fakeslack.SlashCommand{UserID: user, ChannelID: deploys, Text: text(i)}, opts...)
			if err != nil {
				b.Error(err)
				return
			}
			ack, err := w.slack.WaitAck(ctx, id)
			if err != nil {
				b.Error(err)
				return
			}
			lat[i] = ack.AckedAt.Sub(ack.SentAt)
		})
	}
	wg.Wait()
	return lat
}

// rawEnvelopes numbers the envelopes burstNoWork sends.
var rawEnvelopes atomic.Int64

// burstNoWork sends n Events API envelopes, at most c at a time, on
// connection conn: the bot acknowledges each and has no work to do for it.
// It returns each envelope's time from sent to acknowledged.
func burstNoWork(b *testing.B, w *world, n, c, conn int) []time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lat := make([]time.Duration, n)
	sem := make(chan struct{}, c)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			id := fmt.Sprintf("ev-%08d", rawEnvelopes.Add(1))
			frame := `{"envelope_id":"` + id + `","type":"events_api","accepts_response_payload":false,"retry_attempt":0,` +
				`"payload":{"token":"x","team_id":"T0FAKE","api_app_id":"A0FAKE","type":"event_callback","event_id":"E` + id + `",` +
				`"event_time":1,"event":{"type":"reaction_added","user":"U0ALICE","reaction":"eyes","event_ts":"1.1",` +
				`"item":{"type":"message","channel":"C0DEPLOYS","ts":"1.1"}}}}`
			if err := w.slack.SendRaw(ctx, []byte(frame), conn); err != nil {
				b.Error(err)
				return
			}
			ack, err := w.slack.WaitAck(ctx, id)
			if err != nil {
				b.Error(err)
				return
			}
			lat[i] = ack.AckedAt.Sub(ack.SentAt)
		})
	}
	wg.Wait()
	return lat
}

// echoClient is the floor: a websocket client on the same fake that acks
// every envelope at once and does nothing else (it finds the envelope_id
// without decoding the frame). It returns its connection index.
func echoClient(b *testing.B, w *world) int {
	b.Helper()
	conn, index := openSocket(b, w)
	go func() {
		key := []byte(`"envelope_id":"`)
		ack := make([]byte, 0, 64)
		for {
			_, frame, err := conn.ReadMessage()
			if err != nil {
				return
			}
			i := bytes.Index(frame, key)
			if i < 0 {
				continue
			}
			id := frame[i+len(key):]
			if j := bytes.IndexByte(id, '"'); j > 0 {
				ack = append(append(append(ack[:0], `{"envelope_id":"`...), id[:j]...), `"}`...)
				_ = conn.WriteMessage(websocket.TextMessage, ack)
			}
		}
	}()
	return index
}

// harnessCPU is the CPU time (user + system) this test process, and with
// it every fake, sender and echo client, has used so far.
func harnessCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAckLatency: a burst of 200 commands, 50 at a time, acknowledged
// by the bot while it works on each, against the echo floor in the same run:
// the same burst through the same fake to echoClient, with the bot idle.
// nowork is a third burst, of Events API envelopes the bot acknowledges
// and skips: its acknowledgement path alone (slack-go's socket client and
// the event loop) under the same concurrency.
// harness-cpu-µs/envelope is what the fake, the senders and the echo client
// cost per envelope of the floor burst; bot-cpu-µs/envelope the bot's own
// CPU per envelope of its burst (the ack and the work of each command).
func BenchmarkAckLatency(b *testing.B) {
	const n, c = 200, 50
	w := benchWorld(b, 0)
	p := w.start("bot", nil)
	waitConnections(b, w, 1)
	echo := echoClient(b, w)
	var bot, floor, nowork []time.Duration
	var botCPU, harness time.Duration
	for b.Loop() {
		nowork = append(nowork, burstNoWork(b, w, n, c, 0)...)
		posted := w.slack.CountMessages(isPublicIn(deploys))
		before := cpuTime(b, p.cmd.Process.Pid)
		bot = append(bot, burst(b, w, n, c, func(int) string { return running }, fakeslack.ToConnection(0))...)
		// The floor is measured with the bot idle again.
		waitCount(b, w, "confirmations", posted+n, isPublicIn(deploys))
		botCPU += cpuTime(b, p.cmd.Process.Pid) - before
		before = harnessCPU(b)
		floor = append(floor, burst(b, w, n, c, func(int) string { return running }, fakeslack.ToConnection(echo))...)
		harness += harnessCPU(b) - before
	}
	reportLatency(b, "ack", bot)
	reportLatency(b, "floor", floor)
	reportLatency(b, "nowork", nowork)
	_, botP99, _ := percentiles(bot)
	_, floorP99, _ := percentiles(floor)
	_, noworkP99, _ := percentiles(nowork)
	b.ReportMetric(float64(botP99)/float64(floorP99), "p99/floor")
	b.ReportMetric(float64(noworkP99)/float64(floorP99), "nowork-p99/floor")
	b.ReportMetric(float64(peakRSS(b, p.cmd.Process.Pid))/(1<<20), "burst-peak-RSS-MB")
	b.ReportMetric(float64(botCPU.Microseconds())/float64(len(bot)), "bot-cpu-µs/envelope")
	b.ReportMetric(float64(harness.Microseconds())/float64(len(floor)), "harness-cpu-µs/envelope")
}

// BenchmarkAckLatencyIdle: one person at a time. 100 commands, each sent
// once the previous one's confirmation is posted, envelope sent → ack
// received; then the floor, 100 envelopes to echoClient one at a time.
func BenchmarkAckLatencyIdle(b *testing.B) {
	const n = 100
	w := benchWorld(b, 0)
	w.start("bot", nil)
	waitConnections(b, w, 1)
	echo := echoClient(b, w)
	var bot, floor []time.Duration
	for b.Loop() {
		for range n {
			posted := w.slack.CountMessages(isPublicIn(deploys))
			ack := w.command(alice, deploys, running, fakeslack.ToConnection(0))
			bot = append(bot, ack.AckedAt.Sub(ack.SentAt))
			waitCount(b, w, "confirmation", posted+1, isPublicIn(deploys))
		}
		for range n {
			ack := w.command(alice, deploys, running, fakeslack.ToConnection(echo))
			floor = append(floor, ack.AckedAt.Sub(ack.SentAt))
		}
	}
	reportLatency(b, "ack", bot)
	reportLatency(b, "floor", floor)
	botP50, botP99, _ := percentiles(bot)
	floorP50, floorP99, _ := percentiles(floor)
	b.ReportMetric(float64(botP50)/float64(floorP50), "p50/floor")
	b.ReportMetric(float64(botP99)/float64(floorP99), "p99/floor")
}

func isPublicIn(channel string) func(fakeslack.Message) bool {
	return func(m fakeslack.Message) bool { return m.Channel == channel && !m.Ephemeral }
}

// BenchmarkAckLatencySlowAWS: the same burst while CodeDeploy takes 2 s to
// answer anything and 100 earlier requests are waiting for it: acks must not
// wait for AWS.
func BenchmarkAckLatencySlowAWS(b *testing.B) {
	const n, c, waiting = 200, 50, 100
	var acks []time.Duration
	for b.Loop() {
		b.StopTimer()
		w := benchWorld(b, 0)
		w.cd.SetDelay(2 * time.Second)
		w.start("bot", nil)
		burst(b, w, waiting, c, func(int) string { return running })
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		if err := w.cd.WaitDelayed(ctx, waiting); err != nil {
			b.Fatal(err)
		}
		cancel()
		b.StartTimer()
		acks = append(acks, burst(b, w, n, c, func(int) string { return running })...)
	}
	reportLatency(b, "ack", acks)
}

// BenchmarkConcurrentRequests: 100 commands while every GetDeployment takes
// 500 ms, then 100 Stop clicks while every StopDeployment takes 500 ms. Done
// one after another, this would take 50 s each.
func BenchmarkConcurrentRequests(b *testing.B) {
	const n = 100
	var commandsAll, stopsAll []time.Duration
	for b.Loop() {
		b.StopTimer()
		w := benchWorld(b, n)
		w.cd.SetDelay(500 * time.Millisecond)
		// Follow-ups would add reads of their own; this measures the stops.
		w.start("bot", map[string]string{"STOPDEPLOY_FOLLOW_INTERVAL": "10m"})
		b.StartTimer()

		start := time.Now()
		burst(b, w, n, n, benchID)
		waitCount(b, w, "confirmations", n, func(m fakeslack.Message) bool { return len(m.Buttons()) == 2 })
		commandsAll = append(commandsAll, time.Since(start))

		var confs []fakeslack.Message
		for _, m := range w.publicMessages(deploys) {
			if len(m.Buttons()) == 2 {
				confs = append(confs, m)
			}
		}
		start = time.Now()
		var wg sync.WaitGroup
		for _, conf := range confs {
			wg.Go(func() { w.click(alice, conf, "stop") })
		}
		wg.Wait()
		waitCount(b, w, "stop results", n, func(m fakeslack.Message) bool { return strings.Contains(m.Text, "CodeDeploy answered") })
		stopsAll = append(stopsAll, time.Since(start))
	}
	b.ReportMetric(float64(slices.Max(commandsAll).Milliseconds()), "100-commands-ms")
	b.ReportMetric(float64(slices.Max(stopsAll).Milliseconds()), "100-stops-ms")
}

// BenchmarkEndToEnd: the bot's own overhead with fakes that answer at once,
// one flow at a time: command → confirmation posted, and click →
// StopDeployment received → result in the thread. The same flows then go
// to floorBot, the loopback floor of those paths, measured the same way:
// the floor-ratio figures are what the bot adds, in one run.
func BenchmarkEndToEnd(b *testing.B) {
	const flows = 100
	w := benchWorld(b, 0)
	p := w.start("bot", map[string]string{"STOPDEPLOY_FOLLOW_INTERVAL": "10m"})
	waitConnections(b, w, 1)
	floor := floorBot(b, w)
	var bot, lean idleTimes
	n := 0
	var cpu time.Duration
	for b.Loop() {
		before := cpuTime(b, p.cmd.Process.Pid)
		for range flows {
			n++
			bot.flow(w, fmt.Sprintf("d-E2E%06d", n), fakeslack.ToConnection(0))
		}
		cpu += cpuTime(b, p.cmd.Process.Pid) - before
		for range flows {
			n++
			lean.flow(w, fmt.Sprintf("d-E2E%06d", n), fakeslack.ToConnection(floor))
		}
	}
	reportLatency(b, "cmd-to-confirmation", bot.toConfirmation)
	reportLatency(b, "click-to-stop", bot.toStop)
	reportLatency(b, "click-to-reply", bot.toReply)
	reportLatency(b, "floor-cmd-to-confirmation", lean.toConfirmation)
	reportLatency(b, "floor-click-to-stop", lean.toStop)
	p50 := func(s []time.Duration) float64 { m, _, _ := percentiles(s); return float64(m) }
	b.ReportMetric(p50(bot.toConfirmation)/p50(lean.toConfirmation), "cmd-p50/floor")
	b.ReportMetric(p50(bot.toStop)/p50(lean.toStop), "click-p50/floor")
	// The bot's own CPU (user + system) per complete flow: a cost, not a wait.
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(bot.toStop)), "cpu-µs/flow")
}

// idleTimes are the times of flows sent one at a time.
type idleTimes struct{ toConfirmation, toStop, toReply []time.Duration }

// flow sends a command for a new deployment id, waits for its
// confirmation, presses Stop and waits for StopDeployment and the reply.
func (t *idleTimes) flow(w *world, id string, to fakeslack.DeliveryOption) {
	w.cd.Put(fakecodedeploy.Deployment{ID: id, Application: "checkout", Group: "production", Status: "InProgress"})
	sent := time.Now()
	w.command(alice, deploys, id, to)
	conf := w.confirmation(deploys, id)
	t.toConfirmation = append(t.toConfirmation, time.Since(sent))

	clicked := time.Now()
	w.click(alice, conf, "stop", to)
	calls := w.waitCalls("StopDeployment", id, 1)
	w.threadReply(conf, "CodeDeploy answered")
	t.toStop = append(t.toStop, calls[0].At.Sub(clicked))
	t.toReply = append(t.toReply, time.Since(clicked))
}

// cpuTime is the user and system CPU time a process has used so far
// (/proc/<pid>/stat fields 14 and 15, in clock ticks of 1/100 s on Linux).
func cpuTime(tb testing.TB, pid int) time.Duration {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	// The command name (field 2) may hold spaces: count from its ")".
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// BenchmarkMemory: peak resident memory of the built bot through 1,000
// complete flows (command, confirmation, stop, follow-up to Stopped).
func BenchmarkMemory(b *testing.B) {
	const flows, parallel = 1000, 20
	for b.Loop() {
		b.StopTimer()
		w := benchWorld(b, flows)
		p := w.start("bot", map[string]string{"STOPDEPLOY_FOLLOW_INTERVAL": "20ms"})
		b.StartTimer()
		runFlows(b, w, flows, parallel, benchID)
		b.ReportMetric(float64(peakRSS(b, p.cmd.Process.Pid))/(1<<20), "peak-RSS-MB")
	}
}

// BenchmarkStartup: process start to Socket Mode connected (hello), median of 9.
func BenchmarkStartup(b *testing.B) {
	const runs = 9
	var took []time.Duration
	for b.Loop() {
		for range runs {
			b.StopTimer()
			w := benchWorld(b, 0)
			b.StartTimer()
			start := time.Now()
			p := w.spawn("bot", nil)
			waitConnections(b, w, 1)
			took = append(took, time.Since(start))
			b.StopTimer()
			p.signal(syscall.SIGTERM)
			b.StartTimer()
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "start-to-hello-ms")
}

// runFlows runs flows complete flows, parallel at a time, each on its own
// deployment, and waits for every final state.
func runFlows(tb testing.TB, w *world, flows, parallel int, id func(int) string) {
	tb.Helper()
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range flows {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			w.command(alice, deploys, id(i))
			conf := w.confirmation(deploys, id(i))
			w.click(bob, conf, "stop")
			w.threadReply(conf, "is now *Stopped*")
		})
	}
	wg.Wait()
}

// waitCount waits until n messages match.
func waitCount(tb testing.TB, w *world, desc string, n int, match func(fakeslack.Message) bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.slack.WaitUntil(ctx, desc, func() bool { return w.slack.CountMessages(match) >= n }); err != nil {
		tb.Fatal(err)
	}
}

// peakRSS reads the high-water mark of a process's resident memory, in bytes.
func peakRSS(tb testing.TB, pid int) int64 {
	tb.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}

	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmHWM in /proc status")
	return 0
}

// percentiles returns p50, p99 and the maximum of samples.
func percentiles(samples []time.Duration) (p50, p99, worst time.Duration) {
	s := slices.Clone(samples)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.50), at(0.99), s[len(s)-1]
}

func reportLatency(b *testing.B, prefix string, samples []time.Duration) {
	p50, p99, worst := percentiles(samples)
	b.ReportMetric(float64(p50.Microseconds()), prefix+"-p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), prefix+"-p99-µs")
	b.ReportMetric(float64(worst.Microseconds()), prefix+"-max-µs")
}
