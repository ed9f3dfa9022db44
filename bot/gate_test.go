package bot

import (
	"context"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// wait fails t unless ch delivers within a deadline.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not within 5 s", what)
	}
	var zero T
	return zero
}

func TestGate_IdleStartsAtOnceABurstQueuesClicksFirst(t *testing.T) {
	g := &gate{slots: 2}
	started := make(chan string, 8)
	release := map[string]chan struct{}{}
	enter := func(what, name string) {
		r := make(chan struct{})
		release[name] = r
		g.enter(job{what: what}, func(s *slot) {
			defer s.leave()
			started <- name
			<-r
		})
	}
	enter("slash_command", "first")
	enter("slash_command", "second")
	wait(t, started, "the first job, with a slot free")
	wait(t, started, "the second job, with a slot free")

	enter("slash_command", "third")
	enter("interactive", "click")
	g.mu.Lock()
	queued := len(g.clicks) + len(g.commands)
	g.mu.Unlock()
	if queued != 2 {
		t.Fatalf("%d jobs queued with both slots taken, want 2", queued)
	}
	close(release["first"])
	if got := wait(t, started, "a queued job once a slot is free"); got != "click" {
		t.Errorf("started %s first, want the click ahead of the command queued before it", got)
	}
	close(release["click"])
	if got := wait(t, started, "the queued command"); got != "third" {
		t.Errorf("started %s, want third", got)
	}
	close(release["second"])
	close(release["third"])
}

// slowSlack answers U0ALICE's ephemeral messages only when told to, as
// Slack taking 10 s would.
type slowSlack struct {
	*fakeSlack
	answer chan struct{}
}

func (s slowSlack) PostEphemeralContext(ctx context.Context, channel, user string, opts ...slack.MsgOption) (string, error) {
	if user == "U0ALICE" {
		<-s.answer
	}
	return s.fakeSlack.PostEphemeralContext(ctx, channel, user, opts...)
}

func TestGate_ASlowCallDoesNotDelayOtherUsers(t *testing.T) {
	b, sl, _ := newTestBot(t, Config{}, fakeStopper{}, time.Now)
	slow := slowSlack{sl, make(chan struct{})}
	b.slack = observedSlack{slow, noObserver{}}
	// Every slot is taken by a handler waiting on Slack.
	for range handlerSlots {
		to := recipient{channel: "C0DEPLOYS", user: "U0ALICE"}
		b.start(context.Background(), job{"slash_command", func(ctx context.Context) { b.tell(ctx, b.log, to, "slow") }, to})
	}
	told := make(chan struct{})
	bob := recipient{channel: "C0DEPLOYS", user: "U0BOB"}
	b.start(context.Background(), job{"slash_command", func(ctx context.Context) {
		b.tell(ctx, b.log, bob, "fast")
		close(told)
	}, bob})
	wait(t, told, "Bob's answer while Alice's calls wait on Slack")
	close(slow.answer)
	b.work.Wait()
	if got := sl.matching("ephemeral:U0ALICE", "slow"); len(got) != handlerSlots {
		t.Errorf("Alice's answers = %q", got)
	}
}

func TestGate_AJobBackFromASlowCallDoesNotWait(t *testing.T) {
	g := &gate{slots: 1}
	back := make(chan struct{})
	answer := make(chan struct{})
	hold := make(chan struct{})
	g.enter(job{what: "slash_command"}, func(s *slot) {
		defer s.leave()
		ctx := context.WithValue(context.Background(), slotKey{}, s)
		func() {
			defer waiting(ctx)()
			<-answer
		}()
		close(back)
	})
	// Once the slow call has given its slot up, a second job takes it and
	// keeps it.
	second := make(chan struct{})
	g.enter(job{what: "slash_command"}, func(s *slot) {
		defer s.leave()
		close(second)
		<-hold
	})
	wait(t, second, "the second job, on the slot the slow call gave up")
	close(answer)
	wait(t, back, "the first job's return from its call, with no slot free")
	close(hold)
}

func TestGate_ABurstHoldsWorkUntilTheSocketIsQuiet(t *testing.T) {
	t.Run("envelopes apart start at once", func(t *testing.T) {
		g := &gate{slots: 2}
		t0 := time.Now()
		g.arrived(t0)
		g.arrived(t0.Add(burstGap))
		g.arrived(t0.Add(3 * burstGap))
		if g.holding {
			t.Fatal("holding work for envelopes burstGap apart, want a lone request to start at once")
		}
	})
	// The clock is the test's, and the test calls check as the timer would.
	clocked := func() (*gate, *time.Time) {
		now := time.Now()
		return &gate{slots: 2, now: func() time.Time { return now }}, &now
	}
	queued := func(g *gate) int {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.clicks) + len(g.commands)
	}
	t.Run("held until quiet", func(t *testing.T) {
		g, now := clocked()
		started := make(chan string, 2)
		run := func(name string) func(s *slot) {
			return func(s *slot) { defer s.leave(); started <- name }
		}
		g.arrived(*now)
		g.enter(job{what: "slash_command"}, run("alone"))
		wait(t, started, "the first envelope's job, which came alone")
		*now = now.Add(burstGap / 2)
		g.arrived(*now)
		g.enter(job{what: "slash_command"}, run("second"))
		*now = now.Add(quietGap - time.Nanosecond)
		g.check()
		if n := queued(g); n != 1 {
			t.Fatalf("%d jobs queued before the socket was quiet for quietGap, want 1", n)
		}
		*now = now.Add(time.Nanosecond)
		g.check()
		if got := wait(t, started, "the second job, once the socket is quiet"); got != "second" {
			t.Errorf("started %s", got)
		}
	})
	t.Run("held for at most maxHold while envelopes keep coming", func(t *testing.T) {
		g, now := clocked()
		started := make(chan struct{}, 1)
		g.arrived(*now)
		g.arrived(*now)
		since := *now
		g.enter(job{what: "interactive"}, func(s *slot) { defer s.leave(); started <- struct{}{} })
		for now.Sub(since) < maxHold {
			if n := queued(g); n != 1 {
				t.Fatalf("the job left the queue after %v of envelopes, before maxHold", now.Sub(since))
			}
			*now = now.Add(burstGap / 5)
			g.arrived(*now)
			g.check()
		}
		wait(t, started, "the job, after maxHold")
	})
}
