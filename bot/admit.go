package bot

import (
	"sync"
	"time"
)

// Under a flood (one user hammering the command, a script, a loop) every
// envelope is still acknowledged at once, but the work behind it is
// bounded: at most so many handlers in flight, and at most a share of them
// per user. Work beyond a cap is dropped with a log line, and its user is
// told to slow down at most once a minute. Clicks have caps of their own,
// so no flood of commands can crowd out a Stop.
const (
	maxCommandsInFlight = 256
	maxCommandsPerUser  = 128
	maxClicksInFlight   = 256
	maxClicksPerUser    = 128
	slowDownEvery       = time.Minute
)

// admission counts handlers in flight, in total and per user.
type admission struct {
	total, perUser int
	now            func() time.Time

	mu      sync.Mutex
	running int
	byUser  map[string]int
	warned  map[string]time.Time // user → last "slow down"
}

func newAdmission(total, perUser int, now func() time.Time) *admission {
	return &admission{total: total, perUser: perUser, now: now, byUser: map[string]int{}, warned: map[string]time.Time{}}
}

// enter admits one handler for user. When it is admitted, leave must be
// called once it ends. When it is not, warn says whether to tell the user
// to slow down (once per slowDownEvery).
func (a *admission) enter(user string) (leave func(), warn bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running >= a.total || a.byUser[user] >= a.perUser {
		now := a.now()
		for u, at := range a.warned {
			if now.Sub(at) >= slowDownEvery {
				delete(a.warned, u)
			}
		}
		if _, recent := a.warned[user]; recent {
			return nil, false
		}
		a.warned[user] = now
		return nil, true
	}
	a.running++
	a.byUser[user]++
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.running--
		if a.byUser[user]--; a.byUser[user] <= 0 {
			delete(a.byUser, user)
		}
	}, false
}
