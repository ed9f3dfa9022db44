package fakecodedeploy

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Call is one recorded request.
type Call struct {
	// Target is the operation (one of the Op* names), or for a request
	// rejected before that was known, its X-Amz-Target without the
	// "CodeDeploy_20141006." prefix (may be empty).
	Target string
	// DeploymentID is the deploymentId sent (empty if none or not parsed).
	DeploymentID string
	// AutoRollbackEnabled is StopDeployment's autoRollbackEnabled (nil if omitted).
	AutoRollbackEnabled *bool
	// At is when the request arrived (Options.Now).
	At time.Time
	// Result is "ok", the error code answered ("ThrottlingException",
	// "network", "InternalFailure", "garbled", "oversized", …), or "canceled"
	// if the client gave up (or the server closed) during the answer delay;
	// nothing was processed then.
	Result string
	// After reports that the operation was processed before the failure in
	// Result was answered (Failure.After): a stop was accepted even though the
	// client saw an error.
	After bool

	// Account and Region are the place the request acted in: the account of
	// its access key and the region of its credential scope (empty if the
	// request was rejected before they were known).
	Account, Region string
	// AccessKeyID is the access key ID of the SigV4 credential scope, and
	// SessionName the role session name registered for it (RegisterKey).
	AccessKeyID, SessionName string

	// IDs are BatchGetDeployments' deploymentIds.
	IDs []string
	// Application, Group, Statuses and NextToken are ListDeployments'
	// applicationName, deploymentGroupName, includeOnlyStatuses and nextToken.
	Application, Group string
	Statuses           []string
	NextToken          string
	// Page is the 1-based ListDeployments page asked for: 1 without a
	// nextToken, 0 if the token was not one the fake handed out for this query.
	Page int
}

// String renders c like "StopDeployment d-LGUMS25CC autoRollbackEnabled=true",
// "ListDeployments checkout/production [InProgress,Ready] page 2" or
// "BatchGetDeployments d-A,d-B", with " => Result" appended when Result is
// not "ok" (" => Result after processing" for Failure.After).
func (c Call) String() string {
	var b strings.Builder
	if c.Target == "" {
		b.WriteString("(no target)")
	}
	b.WriteString(c.Target)
	switch c.Target {
	case OpListDeployments:
		if c.Application != "" || c.Group != "" {
			b.WriteString(" " + c.Application + "/" + c.Group)
		}
		if len(c.Statuses) > 0 {
			b.WriteString(" [" + strings.Join(c.Statuses, ",") + "]")
		}
		if c.NextToken != "" {
			page := "?"
			if c.Page > 0 {
				page = strconv.Itoa(c.Page)
			}
			b.WriteString(" page " + page)
		}
	case OpBatchGetDeployments:
		if len(c.IDs) > 0 {
			b.WriteString(" " + strings.Join(c.IDs, ","))
		} else {
			b.WriteString(" (no deploymentIds)")
		}
	default:
		if c.DeploymentID != "" {
			b.WriteString(" " + c.DeploymentID)
		} else {
			b.WriteString(" (no deploymentId)")
		}
		if c.AutoRollbackEnabled != nil {
			fmt.Fprintf(&b, " autoRollbackEnabled=%t", *c.AutoRollbackEnabled)
		}
	}
	if c.Result != "ok" {
		b.WriteString(" => " + c.Result)
		if c.After {
			b.WriteString(" after processing")
		}
	}
	return b.String()
}

// Calls returns a copy of all recorded calls in arrival order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.callsLocked()
}

func (s *Server) callsLocked() []Call {
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = cloneCall(c)
	}
	return out
}

// Count returns how many recorded calls have this target and deployment ID
// (an empty target or id matches any), whatever their result. A
// BatchGetDeployments call matches every ID it asked for.
func (s *Server) Count(target, id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if (target == "" || c.Target == target) && (id == "" || c.DeploymentID == id || slices.Contains(c.IDs, id)) {
			n++
		}
	}
	return n
}

// WaitCalls blocks until at least n recorded calls satisfy match (nil matches
// all) and returns all matching calls, or returns those seen so far with an
// error when ctx is done or the server is closed.
func (s *Server) WaitCalls(ctx context.Context, match func(Call) bool, n int) ([]Call, error) {
	for {
		s.mu.Lock()
		all := s.callsLocked()
		ch, closed := s.changed, s.closed
		s.mu.Unlock()
		var got []Call
		for _, c := range all {
			if match == nil || match(c) {
				got = append(got, c)
			}
		}
		if len(got) >= n {
			return got, nil
		}
		if closed {
			return got, fmt.Errorf("fakecodedeploy: waiting for %d matching calls, saw %d: server closed", n, len(got))
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return got, fmt.Errorf("fakecodedeploy: waiting for %d matching calls, saw %d: %w", n, len(got), ctx.Err())
		}
	}
}

// WaitDelayed blocks until at least n requests are waiting out their answer
// delay (SetDelay, SetPlaceDelay, GetDelay, StopDelay): calls the client has
// made and is still waiting for.
func (s *Server) WaitDelayed(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, ch, closed := s.delayed, s.changed, s.closed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		if closed {
			return fmt.Errorf("fakecodedeploy: waiting for %d delayed requests, saw %d: server closed", n, got)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakecodedeploy: waiting for %d delayed requests, saw %d: %w", n, got, ctx.Err())
		}
	}
}

// Subscribe returns a channel that receives (without blocking the fake, so
// signals coalesce) after every state change: a call, Put, Update, a
// transition or a change of the fake's configuration (RegisterKey, Deny, …).
// cancel unsubscribes and closes the channel; Close closes it too.
func (s *Server) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(ch)
		return ch, func() {}
	}
	id := s.nextSub
	s.nextSub++
	s.subs[id] = ch
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c, ok := s.subs[id]; ok {
			delete(s.subs, id)
			close(c)
		}
	}
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
	for _, ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// record stores a call that was not recorded under the lock yet, and logs it.
func (s *Server) record(c Call) {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.notifyLocked()
	s.mu.Unlock()
	s.logf(c)
}

// logf logs one call. Call holds no secret: the secret key never reaches the
// fake, and the session token is not part of Call.
func (s *Server) logf(c Call) {
	if s.opts.Logf == nil {
		return
	}
	var who string
	if c.Account != "" || c.AccessKeyID != "" {
		who = " [" + c.Account + " " + c.Region + " key=" + c.AccessKeyID
		if c.SessionName != "" {
			who += " session=" + c.SessionName
		}
		who += "]"
	}
	if c.Result == "ok" {
		s.opts.Logf("fakecodedeploy: %s => ok%s", c, who)
	} else {
		s.opts.Logf("fakecodedeploy: %s%s", c, who)
	}
}

func cloneCall(c Call) Call {
	if c.AutoRollbackEnabled != nil {
		b := *c.AutoRollbackEnabled
		c.AutoRollbackEnabled = &b
	}
	c.IDs = slices.Clone(c.IDs)
	c.Statuses = slices.Clone(c.Statuses)
	return c
}
