package state_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/state"
)

// orphans returns the messages Orphans lists, as strings.
func orphans(t *testing.T, s *state.Store) []string {
	t.Helper()
	list, err := s.Orphans(t.Context())
	if err != nil {
		t.Fatalf("Orphans: %v", err)
	}
	var out []string
	for _, c := range list {
		out = append(out, string(c.Status)+" "+c.Message.String())
	}
	return out
}

// TestLease_TakeOver: the process that stopped dies (no Release, no Finish);
// another takes the follow-up over once the lease has run out, not before,
// and exactly one of them posts the final state.
func TestLease_TakeOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p1, p2 := e.process(t, "p1"), e.process(t, "p2")
	m := e.post(t, p1, dep("d-1"), "1.1", 1)
	if won, _, err := p1.Claim(t.Context(), m, state.ActionStop, "U1"); !won || err != nil {
		t.Fatalf("Claim: %v, %v", won, err)
	}
	if c := get(t, p2, m); c.LeaseOwner != "p1" || !c.LeaseUntil.Equal(e.clock.Now().Add(leaseTTL)) {
		t.Fatalf("after the stop the lease is %s until %s, want p1's for %v", c.LeaseOwner, c.LeaseUntil, leaseTTL)
	}

	// p1 renews each interval while it lives.
	const interval = 10 * time.Second
	for range 5 {
		e.clock.Advance(interval)
		if err := p1.RenewLease(t.Context(), m); err != nil {
			t.Fatalf("RenewLease by the holder: %v", err)
		}
		if got := orphans(t, p2); got != nil {
			t.Fatalf("Orphans while p1 renews = %v, want none", got)
		}
		if ok, err := p2.AcquireLease(t.Context(), m); ok || err != nil {
			t.Fatalf("AcquireLease by p2 while p1 renews = %v, %v; want false", ok, err)
		}
	}

	// p1 dies. Just before its lease runs out, nothing moves.
	e.clock.Advance(leaseTTL - time.Millisecond)
	if got := orphans(t, p2); got != nil {
		t.Fatalf("Orphans 1 ms before the lease runs out = %v, want none", got)
	}
	if ok, _ := p2.AcquireLease(t.Context(), m); ok {
		t.Fatal("p2 took the lease 1 ms before it ran out")
	}
	e.clock.Advance(time.Millisecond)
	if got, want := fmt.Sprint(orphans(t, p2)), "[stopping C1/1.1]"; got != want {
		t.Fatalf("Orphans once the lease ran out = %s, want %s", got, want)
	}
	if ok, err := p2.AcquireLease(t.Context(), m); !ok || err != nil {
		t.Fatalf("AcquireLease by p2 after expiry = %v, %v; want true", ok, err)
	}
	if ok, err := p2.AcquireLease(t.Context(), m); !ok || err != nil {
		t.Errorf("AcquireLease again by its holder = %v, %v; want true", ok, err)
	}
	if got := orphans(t, p1); got != nil {
		t.Errorf("Orphans after the takeover = %v, want none", got)
	}

	// p1 was only paused: it learns it lost the lease.
	if err := p1.RenewLease(t.Context(), m); !errors.Is(err, state.ErrLeaseLost) {
		t.Errorf("RenewLease by the old holder = %v, want ErrLeaseLost", err)
	}
	if err := p1.ReleaseLease(t.Context(), m); err != nil {
		t.Errorf("ReleaseLease of a lease not held: %v", err)
	}
	if c := get(t, p1, m); c.LeaseOwner != "p2" {
		t.Errorf("lease owner = %q after p1's release of a lease it lost, want p2", c.LeaseOwner)
	}

	if won, err := p2.Finish(t.Context(), m, state.StatusStopped); !won || err != nil {
		t.Fatalf("Finish by p2 = %v, %v", won, err)
	}
	if won, err := p1.Finish(t.Context(), m, state.StatusStopped); won || err != nil {
		t.Errorf("Finish by p1 after p2's = %v, %v; want false (post nothing)", won, err)
	}
	if err := p2.RenewLease(t.Context(), m); !errors.Is(err, state.ErrLeaseLost) {
		t.Errorf("RenewLease after Finish = %v, want ErrLeaseLost", err)
	}
	if got := orphans(t, p1); got != nil {
		t.Errorf("Orphans after Finish = %v, want none", got)
	}
}

// TestLease_Release: a process shutting down releases its lease, and another
// takes the follow-up over at once.
func TestLease_Release(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p1, p2 := e.process(t, "p1"), e.process(t, "p2")
	m := e.post(t, p1, dep("d-1"), "1.1", 2)
	for _, u := range []string{"U1", "U2"} {
		if _, err := p1.Approve(t.Context(), m, u); err != nil {
			t.Fatal(err)
		}
	}
	if c := get(t, p2, m); c.Status != state.StatusStopping || c.LeaseOwner != "p1" {
		t.Fatalf("after the completing approval: %s, lease %q; want stopping, held by p1", c.Status, c.LeaseOwner)
	}
	if err := p1.ReleaseLease(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(orphans(t, p2)), "[stopping C1/1.1]"; got != want {
		t.Errorf("Orphans after the release = %s, want %s", got, want)
	}
	if ok, err := p2.AcquireLease(t.Context(), m); !ok || err != nil {
		t.Errorf("AcquireLease after the release = %v, %v", ok, err)
	}
}

func TestLease_NotStopping(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.process(t, "p1")
	m := e.post(t, s, dep("d-1"), "1.1", 1)
	if ok, err := s.AcquireLease(t.Context(), m); ok || err != nil {
		t.Errorf("AcquireLease of an open confirmation = %v, %v; want false", ok, err)
	}
	if err := s.RenewLease(t.Context(), m); !errors.Is(err, state.ErrLeaseLost) {
		t.Errorf("RenewLease of an open confirmation = %v, want ErrLeaseLost", err)
	}
	if ok, err := s.AcquireLease(t.Context(), state.Message{Channel: "C1", TS: "9.9"}); ok || err != nil {
		t.Errorf("AcquireLease of no confirmation = %v, %v; want false", ok, err)
	}
}

// TestOrphans_Registry: the registry lists what may need a process and
// forgets what has ended.
func TestOrphans_Registry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.process(t, "p1")
	if got := orphans(t, s); got != nil {
		t.Fatalf("Orphans of an empty table = %v", got)
	}
	open := e.post(t, s, dep("d-open"), "1.1", 1)
	cancelled := e.post(t, s, dep("d-cancelled"), "1.2", 1)
	stopping := e.post(t, s, dep("d-stopping"), "1.3", 1)
	if won, _, err := s.Claim(t.Context(), cancelled, state.ActionCancel, "U1"); !won || err != nil {
		t.Fatal(won, err)
	}
	if won, _, err := s.Claim(t.Context(), stopping, state.ActionStop, "U1"); !won || err != nil {
		t.Fatal(won, err)
	}
	// A Posted that crashed between registering and writing its item.
	p, err := s.Begin(t.Context(), state.Request{Deployment: dep("d-crashed"), Requester: "U1", Channel: "C1", ExpiresAt: e.clock.Now().Add(lifetime)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Posted(t.Context(), p, "1.4"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.DeleteItem(t.Context(), deleteInput("conf#C1/1.4")); err != nil {
		t.Fatal(err)
	}

	if got := orphans(t, s); got != nil {
		t.Fatalf("Orphans with live confirmations = %v, want none", got)
	}
	e.clock.Advance(lifetime)
	if got, want := fmt.Sprint(orphans(t, s)), "[open C1/1.1 stopping C1/1.3]"; got != want {
		t.Fatalf("Orphans once expired and the lease ran out = %s, want %s", got, want)
	}
	if won, _, err := s.Claim(t.Context(), open, state.ActionExpire, ""); !won || err != nil {
		t.Fatal(won, err)
	}
	if won, err := s.Finish(t.Context(), stopping, state.StatusFailed); !won || err != nil {
		t.Fatal(won, err)
	}
	e.clock.Advance(2 * time.Minute)
	if got := orphans(t, s); got != nil {
		t.Errorf("Orphans after all ended = %v, want none", got)
	}
	reg := registry(t, e)
	if len(reg) != 0 {
		t.Errorf("registry still lists %v", reg)
	}
}
