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
// (An earlier hold that started work once the socket had been quiet for
// 5 ms cost a lone request nothing but a burst up to 50 ms, then started
// everything at once; a fixed pool of 8 workers let one slow call delay
// everyone queued behind it.)
const (
	handlerSlots = 2
	ioGrace      = 2 * time.Millisecond
)

// gate hands out the handler slots.
type gate struct {
	mu       sync.Mutex
	slots    int
	active   int     // slots held
	clicks   []gated // waiting for a slot, first served
	commands []gated // waiting behind clicks
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

// enter runs j through run at once if a slot is free, or queues it.
func (g *gate) enter(j job, run func(s *slot)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.active < g.slots && len(g.clicks) == 0 && len(g.commands) == 0 {
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
	for g.active < g.slots {
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
