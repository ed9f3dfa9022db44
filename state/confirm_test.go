package state_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/state"
)

// TestClaim_ConcurrentOneWinner presses Stop and Cancel 20 times at the same
// instant on one confirmation, from two processes, round after round.
func TestClaim_ConcurrentOneWinner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	procs := []*state.Store{e.process(t, "p1"), e.process(t, "p2")}
	const rounds, presses = 10, 20
	for round := range rounds {
		m := e.post(t, procs[0], dep(fmt.Sprintf("d-%d", round)), fmt.Sprintf("1.%d", round), 1)
		type press struct {
			user   string
			action state.Action
			won    bool
			winner state.Winner
			err    error
		}
		results := make([]press, presses)
		var fs []func()
		for i := range results {
			results[i].user = fmt.Sprintf("U%d", i)
			results[i].action = []state.Action{state.ActionStop, state.ActionCancel}[(i+round)%2]
			fs = append(fs, func() {
				r := &results[i]
				r.won, r.winner, r.err = procs[i%2].Claim(t.Context(), m, r.action, r.user)
			})
		}
		start(fs...)

		var winners []press
		for _, r := range results {
			if r.err != nil {
				t.Fatalf("round %d: %s %s: %v", round, r.user, r.action, r.err)
			}
			if r.won {
				winners = append(winners, r)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d winners %v, want exactly one", round, len(winners), winners)
		}
		w := winners[0]
		if w.winner.User != w.user || w.winner.Action != w.action {
			t.Errorf("round %d: the winner %s %s was told %+v", round, w.user, w.action, w.winner)
		}
		for _, r := range results {
			if r.winner != w.winner {
				t.Errorf("round %d: %s was told winner %+v, want %+v", round, r.user, r.winner, w.winner)
			}
		}
		wantStatus := map[state.Action]state.Status{state.ActionStop: state.StatusStopping, state.ActionCancel: state.StatusCancelled}[w.action]
		if c := get(t, procs[1], m); c.Status != wantStatus || c.Winner != w.winner {
			t.Errorf("round %d: item is %s won by %+v, want %s won by %+v", round, c.Status, c.Winner, wantStatus, w.winner)
		}
	}
}

func TestClaim_Refused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		needed  int
		advance time.Duration
		action  state.Action
		ts      string // "" for the posted message
		want    error
	}{
		{"stop after expiry", 1, lifetime, state.ActionStop, "", state.ErrExpired},
		{"cancel after expiry", 1, lifetime + time.Second, state.ActionCancel, "", state.ErrExpired},
		{"expire before expiry", 1, lifetime - time.Second, state.ActionExpire, "", state.ErrNotExpired},
		{"stop of a 2-of-3", 2, 0, state.ActionStop, "", state.ErrApprovalsNeeded},
		{"unknown message", 1, 0, state.ActionStop, "9.9", state.ErrNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.process(t, "p1")
			m := e.post(t, s, dep("d-1"), "1.1", c.needed)
			e.clock.Advance(c.advance)
			if c.ts != "" {
				m.TS = c.ts
			}
			won, w, err := s.Claim(t.Context(), m, c.action, "U1")
			if !errors.Is(err, c.want) || won {
				t.Errorf("Claim = %v, %+v, %v; want %v", won, w, err, c.want)
			}
			if c.ts == "" {
				if got := get(t, s, m).Status; got != state.StatusOpen {
					t.Errorf("status after a refused claim = %s, want open", got)
				}
			}
		})
	}
}

func TestClaim_Expire(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p1, p2 := e.process(t, "p1"), e.process(t, "p2")
	m := e.post(t, p1, dep("d-1"), "1.1", 1)
	e.clock.Advance(lifetime)
	won, w, err := p1.Claim(t.Context(), m, state.ActionExpire, "")
	if !won || err != nil || w.Status != state.StatusExpired || w.Action != state.ActionExpire {
		t.Fatalf("Claim expire = %v, %+v, %v; want won, expired", won, w, err)
	}
	// A late Stop elsewhere learns it expired.
	won, w, err = p2.Claim(t.Context(), m, state.ActionStop, "U1")
	if won || err != nil || w.Status != state.StatusExpired {
		t.Errorf("Stop after the expiry won = %v, %+v, %v; want lost to the expiry", won, w, err)
	}
}

// TestApprove_Concurrent has every approver press at the same instant, from
// two processes: no approval is lost and exactly one completes.
func TestApprove_Concurrent(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		needed, approvers, rounds int
	}{
		{2, 3, 10},
		{3, 3, 5},
		{3, 6, 3},
	} {
		t.Run(fmt.Sprintf("%d-of-%d", c.needed, c.approvers), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			procs := []*state.Store{e.process(t, "p1"), e.process(t, "p2")}
			for round := range c.rounds {
				m := e.post(t, procs[0], dep(fmt.Sprintf("d-%d", round)), fmt.Sprintf("1.%d", round), c.needed)
				results := make([]state.Approval, c.approvers)
				errs := make([]error, c.approvers)
				var fs []func()
				for i := range results {
					fs = append(fs, func() {
						results[i], errs[i] = procs[i%2].Approve(t.Context(), m, fmt.Sprintf("U%d", i))
					})
				}
				start(fs...)

				var added, complete []string
				for i, r := range results {
					user := fmt.Sprintf("U%d", i)
					if errs[i] != nil {
						t.Fatalf("round %d: Approve %s: %v", round, user, errs[i])
					}
					if r.Added {
						added = append(added, user)
					} else if r.Winner.Status != state.StatusStopping {
						t.Errorf("round %d: %s neither added nor told the winner: %+v", round, user, r)
					}
					if r.Complete {
						complete = append(complete, user)
					}
				}
				if len(added) != c.needed || len(complete) != 1 {
					t.Fatalf("round %d: added %v, completed by %v; want %d added, exactly one completing", round, added, complete, c.needed)
				}
				got := get(t, procs[1], m)
				slices.Sort(added)
				approvers := slices.Sorted(slices.Values(got.Approvers))
				if !slices.Equal(approvers, added) {
					t.Errorf("round %d: stored approvers %v, want the added %v", round, got.Approvers, added)
				}
				if got.Status != state.StatusStopping || got.Winner.Action != state.ActionApprove || got.Winner.User != complete[0] {
					t.Errorf("round %d: item %s won by %+v, want stopping, approve by %s", round, got.Status, got.Winner, complete[0])
				}
				if last := got.Approvers[len(got.Approvers)-1]; last != complete[0] {
					t.Errorf("round %d: the last approver is %s, but %s completed", round, last, complete[0])
				}
			}
		})
	}
}

func TestApprove_DistinctPeople(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p1, p2 := e.process(t, "p1"), e.process(t, "p2")
	m := e.post(t, p1, dep("d-1"), "1.1", 2)
	for _, c := range []struct {
		s    *state.Store
		user string
		want state.Approval
	}{
		{p1, "U1", state.Approval{Added: true, Approvers: []string{"U1"}, Needed: 2}},
		{p2, "U1", state.Approval{Already: true, Approvers: []string{"U1"}, Needed: 2}},
		{p1, "U1", state.Approval{Already: true, Approvers: []string{"U1"}, Needed: 2}},
		{p2, "U2", state.Approval{Added: true, Complete: true, Approvers: []string{"U1", "U2"}, Needed: 2}},
	} {
		got, err := c.s.Approve(t.Context(), m, c.user)
		if err != nil {
			t.Fatalf("Approve %s: %v", c.user, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("Approve %s = %+v, want %+v", c.user, got, c.want)
		}
	}
	got, err := p1.Approve(t.Context(), m, "U3")
	if err != nil || got.Added || got.Winner.User != "U2" || got.Winner.Action != state.ActionApprove {
		t.Errorf("Approve after completion = %+v, %v; want told U2 completed it", got, err)
	}
	// Cancel and Stop lose to the completed approval as well.
	if won, w, err := p2.Claim(t.Context(), m, state.ActionCancel, "UREQ"); won || err != nil || w.User != "U2" {
		t.Errorf("Cancel after completion = %v, %+v, %v; want lost to U2", won, w, err)
	}
}

func TestApprove_RacesCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	procs := []*state.Store{e.process(t, "p1"), e.process(t, "p2")}
	for round := range 10 {
		m := e.post(t, procs[0], dep(fmt.Sprintf("d-%d", round)), fmt.Sprintf("1.%d", round), 1)
		var approval state.Approval
		var cancelled bool
		var errA, errC error
		start(
			func() { approval, errA = procs[0].Approve(t.Context(), m, "U1") },
			func() { cancelled, _, errC = procs[1].Claim(t.Context(), m, state.ActionCancel, "UREQ") },
		)
		if errA != nil || errC != nil {
			t.Fatalf("round %d: Approve: %v; Cancel: %v", round, errA, errC)
		}
		if approval.Complete == cancelled {
			t.Errorf("round %d: approval complete %v, cancel won %v; want exactly one", round, approval.Complete, cancelled)
		}
	}
}

func TestBegin_OneOpenPerDeployment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p1, p2 := e.process(t, "p1"), e.process(t, "p2")
	d := dep("d-1")
	req := func(user, channel string) state.Request {
		return state.Request{Deployment: d, Requester: user, Channel: channel, ExpiresAt: e.clock.Now().Add(lifetime)}
	}
	asked := e.clock.Now()
	p, err := p1.Begin(t.Context(), req("U1", "C1"))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)

	// While the first is being posted.
	_, err = p2.Begin(t.Context(), req("U2", "C2"))
	var oe *state.OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("second Begin while posting = %v, want an *OpenError", err)
	}
	want := state.OpenError{Deployment: d, Requester: "U1", Channel: "C1", At: asked, ExpiresAt: asked.Add(lifetime)}
	if *oe != want {
		t.Errorf("OpenError = %+v, want %+v", *oe, want)
	}

	if _, err := p1.Posted(t.Context(), p, "1.1"); err != nil {
		t.Fatal(err)
	}
	_, err = p2.Begin(t.Context(), req("U2", "C2"))
	want.MessageTS, want.Status = "1.1", state.StatusOpen
	if !errors.As(err, &oe) || *oe != want {
		t.Fatalf("second Begin while open = %v, want %+v", err, want)
	}
	t.Logf("the second request is told: %v", err)

	// Another region's deployment of the same ID is another deployment.
	other := state.Request{Deployment: state.Deployment{Account: d.Account, Region: "us-east-1", ID: d.ID},
		Requester: "U2", Channel: "C2", ExpiresAt: e.clock.Now().Add(lifetime)}
	if _, err := p2.Begin(t.Context(), other); err != nil {
		t.Errorf("Begin for %s in another region: %v", d.ID, err)
	}
}

// TestBegin_AfterEnd: a deployment's next confirmation may begin once the last
// one has ended, whichever way, and not while a stop is under way.
func TestBegin_AfterEnd(t *testing.T) {
	t.Parallel()
	type step func(t *testing.T, e *env, s *state.Store, m state.Message)
	claim := func(a state.Action) step {
		return func(t *testing.T, e *env, s *state.Store, m state.Message) {
			if won, _, err := s.Claim(t.Context(), m, a, "U1"); !won || err != nil {
				t.Fatalf("Claim %s: %v, %v", a, won, err)
			}
		}
	}
	finish := func(st state.Status) step {
		return func(t *testing.T, e *env, s *state.Store, m state.Message) {
			claim(state.ActionStop)(t, e, s, m)
			if won, err := s.Finish(t.Context(), m, st); !won || err != nil {
				t.Fatalf("Finish %s: %v, %v", st, won, err)
			}
		}
	}
	advance := func(d time.Duration) step {
		return func(t *testing.T, e *env, s *state.Store, m state.Message) { e.clock.Advance(d) }
	}
	for _, c := range []struct {
		name  string
		steps []step
		open  bool // the second Begin is refused
	}{
		{"cancelled", []step{claim(state.ActionCancel)}, false},
		{"stopped", []step{finish(state.StatusStopped)}, false},
		{"failed", []step{finish(state.StatusFailed)}, false},
		{"expired", []step{advance(lifetime), claim(state.ActionExpire)}, false},
		{"expired, nobody marked it", []step{advance(lifetime)}, false},
		{"open", []step{advance(lifetime - time.Second)}, true},
		{"stopping", []step{claim(state.ActionStop)}, true},
		{"stopping past its expiry", []step{claim(state.ActionStop), advance(2 * lifetime)}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			p1, p2 := e.process(t, "p1"), e.process(t, "p2")
			m := e.post(t, p1, dep("d-1"), "1.1", 1)
			for _, st := range c.steps {
				st(t, e, p1, m)
			}
			_, err := p2.Begin(t.Context(), state.Request{Deployment: dep("d-1"), Requester: "U2", Channel: "C2",
				ExpiresAt: e.clock.Now().Add(lifetime)})
			var oe *state.OpenError
			if c.open != errors.As(err, &oe) || (!c.open && err != nil) {
				t.Fatalf("second Begin = %v, want refused %v", err, c.open)
			}
		})
	}
}

func TestBegin_Abandon(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		abandon bool
		advance time.Duration
	}{
		{"abandoned", true, 0},
		{"never posted, lapsed", false, lifetime},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := e.process(t, "p1")
			req := state.Request{Deployment: dep("d-1"), Requester: "U1", Channel: "C1", ExpiresAt: e.clock.Now().Add(lifetime)}
			p, err := s.Begin(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if c.abandon {
				if err := s.Abandon(t.Context(), p); err != nil {
					t.Fatal(err)
				}
			}
			e.clock.Advance(c.advance)
			req.ExpiresAt = e.clock.Now().Add(lifetime)
			p2, err := s.Begin(t.Context(), req)
			if err != nil {
				t.Fatalf("Begin after %s: %v", c.name, err)
			}
			// The first Pending lost its lock: it can no longer be posted.
			if _, err := s.Posted(t.Context(), p, "1.1"); !errors.Is(err, state.ErrLockLost) {
				t.Errorf("Posted of the first Pending = %v, want ErrLockLost", err)
			}
			if _, err := s.Posted(t.Context(), p2, "1.2"); err != nil {
				t.Errorf("Posted of the second Pending: %v", err)
			}
		})
	}
}

// TestPosted_Duplicate: a confirmation posted twice binds the first message;
// the second cannot act.
func TestPosted_Duplicate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.process(t, "p1")
	p, err := s.Begin(t.Context(), state.Request{Deployment: dep("d-1"), Requester: "U1", Channel: "C1", ExpiresAt: e.clock.Now().Add(lifetime)})
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Posted(t.Context(), p, "1.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Posted(t.Context(), p, "1.1"); err != nil {
		t.Errorf("Posted again with the same ts: %v, want idempotent", err)
	}
	dup, err := s.Posted(t.Context(), p, "1.2")
	if !errors.Is(err, state.ErrDuplicatePost) {
		t.Fatalf("Posted with a second ts = %v, want ErrDuplicatePost", err)
	}
	if _, _, err := s.Claim(t.Context(), dup, state.ActionStop, "U2"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Stop on the duplicate = %v, want ErrNotFound", err)
	}
	if _, err := s.Approve(t.Context(), dup, "U2"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Approve on the duplicate = %v, want ErrNotFound", err)
	}
	if won, _, err := s.Claim(t.Context(), first, state.ActionStop, "U2"); !won || err != nil {
		t.Errorf("Stop on the first = %v, %v; want it to win", won, err)
	}
	c := get(t, s, first)
	if c.Deployment != dep("d-1") || c.Requester != "U1" || c.Message != first || c.Needed != 1 {
		t.Errorf("Get = %+v", c)
	}
}

// TestFinish_Once: several processes decide the final state; one posts it.
func TestFinish_Once(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	procs := []*state.Store{e.process(t, "p1"), e.process(t, "p2")}
	for round := range 5 {
		m := e.post(t, procs[0], dep(fmt.Sprintf("d-%d", round)), fmt.Sprintf("1.%d", round), 1)
		if won, _, err := procs[0].Claim(t.Context(), m, state.ActionStop, "U1"); !won || err != nil {
			t.Fatalf("Claim: %v %v", won, err)
		}
		var mu sync.Mutex
		wins := 0
		var fs []func()
		for i := range 6 {
			fs = append(fs, func() {
				won, err := procs[i%2].Finish(t.Context(), m, state.StatusStopped)
				if err != nil {
					t.Errorf("Finish: %v", err)
				}
				if won {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		start(fs...)
		if wins != 1 {
			t.Errorf("round %d: %d Finish calls won, want 1", round, wins)
		}
		if c := get(t, procs[1], m); c.Status != state.StatusStopped || c.LeaseOwner != "" || c.FinishedAt.IsZero() {
			t.Errorf("round %d: after Finish %+v", round, c)
		}
	}
	if _, err := procs[0].Finish(t.Context(), state.Message{Channel: "C1", TS: "1.0"}, state.StatusCancelled); err == nil {
		t.Error("Finish(cancelled) succeeded; only stopped and failed end a stop")
	}
}
