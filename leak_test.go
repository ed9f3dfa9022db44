package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
)

// TestNoLeakAfterManyFlows runs 1,000 complete flows through one bot
// process and checks that its goroutines and live heap come back to where
// they were after a warm-up: nothing is kept per request except the click
// claims, which are bounded by the confirmation timeout.
func TestNoLeakAfterManyFlows(t *testing.T) {
	const warmup, flows = 50, 1000
	w := newWorld(t)
	for i := range warmup + flows {
		w.cd.Put(fakecodedeploy.Deployment{ID: leakID(i), Application: "checkout", Group: "production", Status: "InProgress"})
	}
	p := w.start("bot", map[string]string{statsEnv: "1", "LOG_LEVEL": "info"})

	runFlows(t, w, warmup, 10, leakID)
	settled(t, p, warmup)
	before := stats(t, p, 1)
	runFlows(t, w, flows, 10, func(i int) string { return leakID(warmup + i) })
	settled(t, p, warmup+flows)
	after := stats(t, p, 2)
	t.Logf("after %d flows: goroutines %d → %d, live heap %d → %d bytes", flows, before.goroutines, after.goroutines, before.heap, after.heap)

	if after.goroutines > before.goroutines {
		t.Errorf("goroutines grew from %d to %d over %d flows", before.goroutines, after.goroutines, flows)
	}
	// A click claim (about 100 bytes) lives until its confirmation expires,
	// and idle connections keep their buffers (8 KiB each); a leaked message,
	// payload or deployment would be kilobytes per flow.
	if grew := after.heap - before.heap; grew > 512*flows {
		t.Errorf("live heap grew by %d bytes over %d flows (%d per flow)", grew, flows, grew/flows)
	}
}

// settled waits until the follow-ups of n flows have written their final
// audit line: a follow-up still finishing is not a leak.
func settled(t *testing.T, p *proc, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := p.out.until(ctx, func() bool { return strings.Count(p.out.text(), `"event":"final_state"`) >= n })
	if err != nil {
		t.Fatalf("waiting for %d final states: %v", n, err)
	}
}

func leakID(i int) string { return fmt.Sprintf("d-LEAK%05d", i) }

type procStats struct{ goroutines, heap int }

var statsLine = regexp.MustCompile(`STATS goroutines=(\d+) heap=(\d+)`)

// stats asks the child for its nth report (see reportStatsOnSignal).
func stats(t *testing.T, p *proc, nth int) procStats {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for {
		p.errOut.mu.Lock()
		changed := p.errOut.changed
		p.errOut.mu.Unlock()
		if m := statsLine.FindAllStringSubmatch(p.errOut.text(), -1); len(m) >= nth {
			g, _ := strconv.Atoi(m[nth-1][1])
			h, _ := strconv.Atoi(m[nth-1][2])
			return procStats{goroutines: g, heap: h}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("no stats report %d from the bot", nth)
		case <-time.After(waitTimeout):
		}
	}
}
