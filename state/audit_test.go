package state_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/state"
)

func TestHistory_InOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p1, p2 := e.process(t, "p1"), e.process(t, "p2")
	d := dep("d-1")
	events := []state.AuditEvent{
		{Event: "stop_requested", User: "UREQ", Channel: "C1", Outcome: "confirmation_posted"},
		{Event: "confirmed", User: "U1", Channel: "C1", MessageTS: "1.1", Outcome: "stopping", Detail: "rollback no"},
		{Event: "stop_result", User: "U1", Channel: "C1", MessageTS: "1.1", Outcome: "Pending"},
		{Event: "final_state", Channel: "C1", MessageTS: "1.1", Outcome: "Stopped"},
	}
	for i, ev := range events {
		e.clock.Advance(time.Second)
		ev.At = e.clock.Now()
		events[i] = ev
		seq, err := []*state.Store{p1, p2}[i%2].AppendAudit(t.Context(), d, ev)
		if err != nil || seq != int64(i+1) {
			t.Fatalf("AppendAudit %d = %d, %v; want %d", i, seq, err, i+1)
		}
	}
	// Another deployment of the same ID elsewhere has its own history.
	if _, err := p1.AppendAudit(t.Context(), state.Deployment{Account: d.Account, Region: "us-east-1", ID: d.ID},
		state.AuditEvent{Event: "stop_requested"}); err != nil {
		t.Fatal(err)
	}

	recs, err := p2.History(t.Context(), d)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if len(recs) != len(events) {
		t.Fatalf("History has %d records, want %d: %+v", len(recs), len(events), recs)
	}
	for i, r := range recs {
		want := state.AuditRecord{Seq: int64(i + 1), Deployment: d, AuditEvent: events[i]}
		if r != want {
			t.Errorf("record %d = %+v, want %+v", i, r, want)
		}
	}
	if recs, err := p1.History(t.Context(), dep("d-none")); err != nil || len(recs) != 0 {
		t.Errorf("History of a deployment without events = %v, %v; want none", recs, err)
	}
}

// TestHistory_ConcurrentAppends: events appended at once from two processes
// get distinct numbers and none is lost; a missing event is skipped.
func TestHistory_ConcurrentAppends(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	procs := []*state.Store{e.process(t, "p1"), e.process(t, "p2")}
	d := dep("d-1")
	const n = 20
	var fs []func()
	for i := range n {
		fs = append(fs, func() {
			if _, err := procs[i%2].AppendAudit(t.Context(), d, state.AuditEvent{Event: "click", User: fmt.Sprintf("U%d", i)}); err != nil {
				t.Errorf("AppendAudit: %v", err)
			}
		})
	}
	start(fs...)
	if _, err := e.client.DeleteItem(t.Context(), deleteInput("audit#"+d.String()+"#7")); err != nil {
		t.Fatal(err)
	}
	recs, err := procs[0].History(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	var users []string
	for _, r := range recs {
		seqs = append(seqs, r.Seq)
		users = append(users, r.User)
	}
	var want []int64
	for i := int64(1); i <= n; i++ {
		if i != 7 {
			want = append(want, i)
		}
	}
	if !slices.Equal(seqs, want) {
		t.Errorf("History seqs = %v, want %v", seqs, want)
	}
	if slices.Sort(users); len(slices.Compact(users)) != n-1 {
		t.Errorf("History users = %v, want %d distinct", users, n-1)
	}
}
