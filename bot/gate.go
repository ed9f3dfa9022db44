package bot

import (
	"context"
	"sync"
	"time"

	"github.com/stopdeploy/stopdeploy/policy"
)

// Go has no goroutine priorities: handlers started all at once in a burst
// take both cores from the goroutines that read the socket and write acks
// (ack p99 30–100 ms for 200 commands on 2 cores, against 3 ms without),
// and 200 handlers in flight together hold 200 HTTP connections and their
// buffers (peak RSS 45 MB against 28 idle).
//
// So a handler needs a slot to run, and there are handlerSlots of them. An
// idle bot has a free slot: its work starts at once, with no wait of any
// kind. In a burst, acknowledged jobs queue for a slot, clicks (a Stop, a
// Cancel) ahead of commands, while the event loop keeps acknowledging. A
// handler gives its slot up when it ends, or when one of its Slack or AWS
// calls has taken longer than ioGrace: a handler waiting on the network is
// not doing CPU work, and a slow call (Slack answering after 10 s) must not
// hold back anyone else's work. It returns from such a call without waiting
// for a slot, so nobody waits more than about ioGrace behind a slow call.
// (A fixed pool of 8 workers let one slow call delay everyone queued
// behind it.)
//
// Slots alone leave the acks of a burst sharing both cores with the work:
// with 50 envelopes in flight their ack p99 was 4 × what the same machine
// does with the bot idle. So while envelopes arrive back to back (two
// within burstGap of each other), queued jobs also wait until the socket
// has been quiet for quietGap, or for at most maxHold: the acks of a burst
// go first, the work right after. One person, or anyone whose envelope
// comes alone, never waits: only the second of two envelopes read within
// burstGap starts a hold. (An earlier hold made every envelope wait for
// 5 ms of quiet, so a lone request paid 5 ms; and acks then waited behind
// slack-go's four goroutines anyway, see the socket package.)
const (
	handlerSlots = 2
	ioGrace      = 2 * time.Millisecond

	burstGap = 500 * time.Microsecond
	quietGap = 3 * time.Millisecond
	maxHold  = 50 * time.Millisecond
)

// gate hands out the handler slots.
type gate struct {
	mu       sync.Mutex
	slots    int
	active   int     // slots held
	clicks   []gated // waiting for a slot, first served
	commands []gated // waiting behind clicks

	// A burst's hold: while holding, queued jobs wait for the socket's quiet.
	last      time.Time // when the latest envelope was read
	holding   bool
	holdSince time.Time
	release   *time.Timer
	now       func() time.Time // default time.Now (tests set it)
}

// gated is a job waiting for a slot, and how to run it.
type gated struct {
	j   job
	run func(s *slot)
}

// slot is one job's claim on the gate; it travels in the job's context, so
// the Slack and AWS wrappers can give it up while they wait.
type slot struct {
	g    *gate
	held bool // guarded by g.mu
	done bool // the job ended; guarded by g.mu
}

type slotKey struct{}

// arrived records that an envelope was read at t, before its job (if any)
// enters: the second of two envelopes within burstGap starts a hold.
func (g *gate) arrived(t time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.holding && !g.last.IsZero() && t.Sub(g.last) < burstGap {
		g.holding, g.holdSince = true, t
		if g.release == nil {
			g.release = time.AfterFunc(quietGap, g.check)
		} else {
			g.release.Reset(quietGap)
		}
	}
	g.last = t
}

// check ends the hold once the socket has been quiet for quietGap, or the
// hold has lasted maxHold, and starts what waits; otherwise it looks again
// when one of the two could be true.
func (g *gate) check() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.holding {
		return
	}
	now := time.Now()
	if g.now != nil {
		now = g.now()
	}
	quiet, held := now.Sub(g.last), now.Sub(g.holdSince)
	if quiet < quietGap && held < maxHold {
		g.release.Reset(min(quietGap-quiet, maxHold-held))
		return
	}
	g.holding = false
	g.startLocked()
}

// enter runs j through run at once if a slot is free, or queues it.
func (g *gate) enter(j job, run func(s *slot)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.holding && g.active < g.slots && len(g.clicks) == 0 && len(g.commands) == 0 {
		g.active++
		go run(&slot{g: g, held: true})
		return
	}
	if j.what == "interactive" {
		g.clicks = append(g.clicks, gated{j, run})
	} else {
		g.commands = append(g.commands, gated{j, run})
	}
}

// freeLocked gives one slot back and starts what waits for free slots.
func (g *gate) freeLocked() {
	g.active--
	g.startLocked()
}

// startLocked starts queued jobs while slots are free, unless a burst holds them.
func (g *gate) startLocked() {
	for !g.holding && g.active < g.slots {
		var next gated
		switch {
		case len(g.clicks) > 0:
			next, g.clicks = g.clicks[0], g.clicks[1:]
		case len(g.commands) > 0:
			next, g.commands = g.commands[0], g.commands[1:]
		default:
			return
		}
		g.active++
		go next.run(&slot{g: g, held: true})
	}
}

// leave ends s's job.
func (s *slot) leave() {
	s.g.mu.Lock()
	defer s.g.mu.Unlock()
	s.done = true
	if s.held {
		s.held = false
		s.g.freeLocked()
	}
}

// waiting is called as a Slack or AWS call begins, as
// defer waiting(ctx)(): if the call outlasts ioGrace, the job's slot goes
// to the next job, and when it returns the job goes on without waiting for
// one. Outside a job (follow-ups, reports) it does nothing.
func waiting(ctx context.Context) (returned func()) {
	s, _ := ctx.Value(slotKey{}).(*slot)
	if s == nil {
		return func() {}
	}
	g := s.g
	t := time.AfterFunc(ioGrace, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if s.held && !s.done {
			s.held = false
			g.freeLocked()
		}
	})
	return func() {
		if t.Stop() {
			return // a fast call: the slot was kept throughout
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		if !s.held && !s.done {
			// Over the bound for a moment, rather than wait behind others.
			s.held = true
			g.active++
		}
	}
}

// gatedMembers gives the job's slot up while a permission check waits on
// Slack (a user group lookup).
func gatedMembers(in policy.Membership) policy.Membership {
	if in == nil {
		return nil
	}
	return func(ctx context.Context, group, user string) (bool, error) {
		defer waiting(ctx)()
		return in(ctx, group, user)
	}
}
