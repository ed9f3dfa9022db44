// Package bot runs the /stopdeploy Slack bot: the Socket Mode event loop,
// the request → confirmation → stop → follow-up flow, and its audit trail.
package bot

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/commands"
	"github.com/stopdeploy/stopdeploy/deploy"
	"github.com/stopdeploy/stopdeploy/policy"
	"github.com/stopdeploy/stopdeploy/socket"
)

// Config holds the bot's behaviour settings.
type Config struct {
	ConfirmTimeout time.Duration // after this a confirmation can no longer be confirmed
	FollowInterval time.Duration // how often a stopped deployment is read again
	FollowTimeout  time.Duration // how long it is followed
	AuditChannel   string        // optional channel that also receives every audit event
	// SigningKey signs and verifies the confirmation buttons' values. Every
	// process of one app must have the same key. Default: a random key,
	// which only this process knows (tests).
	SigningKey commands.Key
	// ShutdownGrace is how long in-flight work may run after Run's context
	// ends before its own context is cancelled. Default 7s, well inside the 10s a
	// platform gives a process between SIGTERM and SIGKILL.
	ShutdownGrace time.Duration
	// AWSCallTimeout bounds one CodeDeploy call including the SDK's retries.
	// Default 30s.
	AWSCallTimeout time.Duration
}

// socketConn is the Socket Mode connection: *socket.Client, which has
// acknowledged every envelope before the bot sees it, and calls handle from
// the goroutine that reads the socket.
type socketConn interface {
	Run(ctx context.Context, handle func(socket.Event)) error
}

// slackAPI is the Web API the flow calls: *slack.Client.
type slackAPI interface {
	PostMessageContext(ctx context.Context, channelID string, options ...slack.MsgOption) (string, string, error)
	UpdateMessageContext(ctx context.Context, channelID, timestamp string, options ...slack.MsgOption) (string, string, string, error)
	PostEphemeralContext(ctx context.Context, channelID, userID string, options ...slack.MsgOption) (string, error)
}

// stopper finds, reads and stops deployments in the accounts and regions
// the bot is configured for: *deploy.Places. Stops name the person whose
// press made them, for the role session CloudTrail shows.
type stopper interface {
	Get(ctx context.Context, place deploy.Place, id string) (deploy.Deployment, error)
	Stop(ctx context.Context, place deploy.Place, id string, rollback bool, userID string) (deploy.StopResult, error)
	Find(ctx context.Context, id string) (found []deploy.Deployment, failed []deploy.PlaceFailure)
	Active(ctx context.Context, application, group string) (active []deploy.Deployment, failed []deploy.PlaceFailure)
	Places() []deploy.Place
}

var (
	_ socketConn = (*socket.Client)(nil)
	_ slackAPI   = (*slack.Client)(nil)
	_ stopper    = (*deploy.Places)(nil)
)

// Deps are the bot's collaborators.
type Deps struct {
	Socket socketConn
	Slack  slackAPI
	// Reports, optional, is the client for a stop's record (thread, card,
	// audit channel). Give it connections of its own, and no flood of
	// answers to other requests can hold a stop's report back. Default Slack.
	Reports slackAPI
	// Policy decides who may stop what, where, and who must approve; Members
	// answers its user-group questions (auth.Checker.Member, cached).
	Policy  *policy.Policy
	Members policy.Membership
	Deploy  stopper
	// Store, optional, is the state table shared by every process of the
	// app (*state.Store). Leave it nil without one: a nil *state.Store in
	// it would not be nil.
	Store    stateStore
	Log      zerolog.Logger
	Now      func() time.Time // default time.Now
	Observer Observer         // optional, for metrics
}

// Bot is one bot process's view of the app. Everything a request needs
// travels in Slack messages, so several Bots may share one app.
type Bot struct {
	cfg    Config
	socket socketConn
	slack  slackAPI
	// reportSlack writes the record of what was done: thread replies, card
	// updates and the audit channel.
	reportSlack      slackAPI
	policy           *policy.Policy
	members          policy.Membership
	deploy           stopper
	store            stateStore      // nil without a state table
	auditTable       chan auditEvent // events waiting for the state table
	auditTableMu     sync.RWMutex
	auditTableClosed bool
	log              zerolog.Logger
	now              func() time.Time
	obs              Observer

	claims     claims
	commands   *admission     // slash commands in flight
	clicks     *admission     // button presses in flight
	work       sync.WaitGroup // handlers of acknowledged envelopes, started or queued
	gate       gate           // handler slots (gate.go)
	follows    sync.WaitGroup // follow-ups of stopped deployments
	reports    sync.WaitGroup // reporters' lanes
	auditPosts sync.WaitGroup // the audit channel's pacer

	// reportCtx outlives Run's context and the work context: reports of
	// what was done must still be made while the bot shuts down.
	reportCtx   context.Context
	runCtx      context.Context // Run's own, set before any handler starts
	expiryMu    sync.Mutex
	expiries    map[string]*time.Timer // confirmations posted here, until acted on or expired
	approvalsMu sync.Mutex
	approvals   map[string]*approvalState // confirmations with presses under way or approvals recorded here
	reportersMu sync.Mutex
	reporters   map[string]*reporter
	auditQ      *auditQueue  // nil without an audit channel
	teamDomain  atomic.Value // string: the workspace domain, from payloads, for links
}

// Defaults for zero durations in Config, as documented in the README.
const (
	defaultConfirmTimeout = 10 * time.Minute
	defaultFollowInterval = 10 * time.Second
	defaultFollowTimeout  = 15 * time.Minute
	defaultShutdownGrace  = 7 * time.Second
	defaultAWSCallTimeout = 30 * time.Second
	// reportGrace is how long reports may still run once the work context
	// is cancelled; with ShutdownGrace it stays inside the 10 s a platform
	// gives between SIGTERM and SIGKILL.
	reportGrace = 1500 * time.Millisecond
)

// New returns a Bot. Zero durations in cfg get their documented defaults.
func New(cfg Config, deps Deps) *Bot {
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&cfg.ConfirmTimeout, defaultConfirmTimeout},
		{&cfg.FollowInterval, defaultFollowInterval},
		{&cfg.FollowTimeout, defaultFollowTimeout},
		{&cfg.ShutdownGrace, defaultShutdownGrace},
		{&cfg.AWSCallTimeout, defaultAWSCallTimeout},
	} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	obs := deps.Observer
	if obs == nil {
		obs = noObserver{}
	}
	b := &Bot{
		cfg:         cfg,
		slack:       observedSlack{deps.Slack, obs},
		reportSlack: observedSlack{cmp.Or[slackAPI](deps.Reports, deps.Slack), obs},
		policy:      deps.Policy,
		members:     gatedMembers(deps.Members),
		deploy:      observedStopper{deps.Deploy, obs},
		store:       deps.Store,
		log:         deps.Log,
		now:         deps.Now,
		obs:         obs,
		// Until Run replaces it: reports made outside Run (unit tests) are
		// bounded by their own deadlines.
		reportCtx: context.Background(),
	}
	if deps.Socket != nil {
		b.socket = deps.Socket
	}
	if b.now == nil {
		b.now = time.Now
	}
	if !b.cfg.SigningKey.Valid() {
		b.cfg.SigningKey = commands.RandomKey()
	}
	if b.policy == nil {
		b.policy = &policy.Policy{} // no rule: nobody may stop anything
	}
	b.claims.now = b.now
	b.gate.slots = handlerSlots
	b.commands = newAdmission(maxCommandsInFlight, maxCommandsPerUser, b.now)
	b.clicks = newAdmission(maxClicksInFlight, maxClicksPerUser, b.now)
	if cfg.AuditChannel != "" {
		b.auditQ = newAuditQueue(b, cfg.AuditChannel)
	}
	if b.store != nil {
		b.auditTable = make(chan auditEvent, auditTableQueue)
	}
	return b
}

// recoverGoroutine ends a goroutine's panic with a log line: one bad
// request must not take the bot down. Use it deferred, first.
func (b *Bot) recoverGoroutine(what string) {
	if r := recover(); r != nil {
		b.log.Error().Str("goroutine", what).Interface("panic", r).Bytes("stack", debug.Stack()).Msg("goroutine panicked")
	}
}

// Run connects to Slack and handles envelopes until ctx ends, then lets
// in-flight work finish (for at most Config.ShutdownGrace) and returns nil.
// It returns an error early only if Slack refuses the connection for good,
// for example when the app token is revoked.
func (b *Bot) Run(ctx context.Context) error {
	// Work started before shutdown is allowed to finish: its context is cut
	// loose from ctx and cancelled only when the grace period runs out.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	reportCtx, cancelReports := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReports()
	b.reportCtx, b.runCtx = reportCtx, ctx
	if b.auditQ != nil {
		b.auditPosts.Go(func() {
			defer b.recoverGoroutine("audit channel")
			b.auditQ.run(reportCtx)
		})
	}
	if b.store != nil {
		b.auditPosts.Go(func() {
			defer b.recoverGoroutine("audit table")
			b.writeAudits(reportCtx)
		})
		b.follows.Go(func() {
			defer b.recoverGoroutine("follow-up takeover")
			b.adopt(ctx)
		})
	}

	socketCtx, stopSocket := context.WithCancel(ctx)
	defer stopSocket()
	socketDone := make(chan error, 1)
	go func() {
		socketDone <- b.socket.Run(socketCtx, func(evt socket.Event) {
			// The socket's reader: one envelope's panic must not stop it.
			defer b.recoverGoroutine("socket reader")
			if j := b.dispatch(ctx, workCtx, evt); j.handle != nil {
				b.start(workCtx, j)
			}
		})
	}()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-socketDone:
		if ctx.Err() == nil {
			runErr = fmt.Errorf("socket mode: %w", err)
		}
		socketDone = nil
	}
	// Queued work still runs at shutdown (drain waits for it): its users
	// were told it would.
	stopSocket()
	if socketDone != nil {
		<-socketDone
	}
	b.drain(cancelWork, cancelReports)
	return runErr
}

// drain waits for handlers, follow-ups, reports and the audit channel. Work
// outlasting the grace period is cancelled; reports of it (a stop that
// CodeDeploy did not confirm in time, say) get reportGrace more.
func (b *Bot) drain(cancelWork, cancelReports context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		defer b.recoverGoroutine("drain")
		// Handlers start follow-ups and reports, follow-ups start reports:
		// wait in that order so nothing is added to a finished group.
		b.work.Wait()
		b.follows.Wait()
		b.reports.Wait()
		if b.auditQ != nil {
			b.auditQ.close()
		}
		b.closeAuditTable()
		b.auditPosts.Wait()
		close(done)
	}()
	timer := time.NewTimer(b.cfg.ShutdownGrace)
	defer timer.Stop()
	select {
	case <-done:
		return
	case <-timer.C:
		b.log.Warn().Dur("grace", b.cfg.ShutdownGrace).Msg("in-flight work outlasted the shutdown grace period: cancelling it")
		cancelWork()
	}
	select {
	case <-done:
		return
	case <-time.After(reportGrace):
		b.log.Warn().Msg("reports to Slack outlasted the exit budget: giving up on them (the audit log has every outcome)")
		cancelReports()
	}
	// Cancelled work returns at once unless something ignores its context;
	// the process must still exit in time.
	select {
	case <-done:
	case <-time.After(500 * time.Millisecond):
		b.log.Error().Msg("in-flight work ignored cancellation: exiting without it")
	}
}

// job is the work for one acknowledged envelope, and whom to tell if it fails.
type job struct {
	what   string
	handle func(context.Context)
	to     recipient
}

// dispatch runs in the socket's reader, so it only decodes and returns the
// work to do: slow work here would delay every other envelope and its ack. The socket client
// has acknowledged each envelope already (socket.go says why there).
func (b *Bot) dispatch(runCtx, workCtx context.Context, evt socket.Event) job {
	switch evt.Kind {
	case socket.Envelope:
		b.acked(evt)
		b.gate.arrived(evt.Received)
		var (
			caps   *admission
			what   string
			handle func(context.Context)
		)
		switch evt.Type {
		case socket.TypeSlashCommands:
			caps, what, handle = b.commands, "slash_command", func(ctx context.Context) {
				var cmd slack.SlashCommand
				if b.decode(evt, &cmd) {
					b.handleCommand(ctx, cmd)
				}
			}
		case socket.TypeInteractive:
			caps, what, handle = b.clicks, "interactive", func(ctx context.Context) {
				var p interaction
				if b.decode(evt, &p) {
					cb, rawBlocks := p.callback()
					b.handleInteraction(runCtx, ctx, cb, rawBlocks)
				}
			}
		case socket.TypeEventsAPI:
			b.log.Debug().Msg("skipped Events API envelope: the bot subscribes to no events")
			return job{}
		default:
			// Acknowledged all the same: Slack would resend it.
			b.log.Warn().Str("envelope_type", evt.Type).Msg("skipped malformed or unknown envelope")
			return job{}
		}
		r, ok := b.route(evt)
		if !ok {
			return job{}
		}
		return b.admit(caps, what, recipient{channel: r.channel, user: r.user, responseURL: r.responseURL}, handle)
	case socket.Malformed:
		b.log.Warn().Err(evt.Err).Msg("skipped malformed envelope")
	case socket.Connecting:
		b.obs.Connection(false)
		b.log.Debug().Int("attempt", evt.Attempt).Msg("connecting to Slack")
	case socket.ConnectFailed:
		b.obs.Connection(false)
		b.log.Warn().Err(evt.Err).Int("attempt", evt.Attempt).Dur("backoff", evt.Backoff).Msg("could not connect to Slack; retrying")
	case socket.Connected:
		b.log.Debug().Msg("socket connected; waiting for hello")
	case socket.Hello:
		n := evt.NumConnections
		if n > 1 && b.store == nil {
			b.log.Warn().Int("num_connections", n).Msg("several processes share this app but STOPDEPLOY_STATE_TABLE is not set: " +
				"two presses on two processes at the same instant can both act (a Stop and a Cancel, two Stops), " +
				"two approvals at once can lose one, and a follow-up dies with its process")
		}
		// After the warning, so that whoever waits for this line sees both.
		b.log.Info().Int("num_connections", n).Msg("connected to Slack")
		b.obs.Connection(true)
	case socket.Disconnect:
		b.obs.Connection(false)
		b.log.Info().Str("reason", evt.Reason).Msg("Slack asked for a new connection; reconnecting")
	case socket.Dropped:
		b.obs.Connection(false)
		b.log.Warn().Err(evt.Err).Msg("lost the connection to Slack; reconnecting")
	case socket.Refused:
		b.obs.Connection(false)
		b.log.Error().Err(evt.Err).Msg("Slack refused the app token")
	}
	return job{}
}

// route is what the socket's reader takes from a payload to admit its
// work: who sent it, where, and where to answer. It steps over the payload
// (socket.Fields) instead of decoding it: every microsecond spent here is
// paid by every envelope behind it in a burst. The job decodes the whole
// payload (decode), after its ack and off the reader.
type route struct {
	user, channel, responseURL string
}

// route finds user_id, channel_id and response_url (a slash command) or
// user.id, channel.id and response_url (an interaction).
func (b *Bot) route(evt socket.Event) (route, bool) {
	var r route
	id := func(obj []byte) (s string) {
		socket.Fields(obj, func(k, v []byte) bool {
			if string(k) == "id" {
				s, _ = socket.String(v)
			}
			return true
		})
		return s
	}
	ok := socket.Fields(evt.Payload, func(k, v []byte) bool {
		switch string(k) {
		case "user_id":
			r.user, _ = socket.String(v)
		case "channel_id":
			r.channel, _ = socket.String(v)
		case "user":
			r.user = id(v)
		case "channel":
			r.channel = id(v)
		case "response_url":
			r.responseURL, _ = socket.String(v)
		}
		return true
	})
	if !ok {
		b.log.Warn().Str("envelope_type", evt.Type).Str("why", "its payload is not a JSON object").Msg("skipped malformed or unknown envelope")
	}
	return r, ok
}

// decode decodes evt's payload into v, or logs why it cannot.
func (b *Bot) decode(evt socket.Event, v any) bool {
	if err := json.Unmarshal(evt.Payload, v); err != nil {
		b.log.Warn().Err(err).Str("envelope_type", evt.Type).Msg("skipped malformed or unknown envelope")
		return false
	}
	return true
}

// acked records an envelope's acknowledgement: Slack shows the user an
// error if it waits more than 3 seconds. The time observed runs from the
// frame being read to its ack being written.
func (b *Bot) acked(evt socket.Event) {
	if evt.EnvelopeID == "" {
		return
	}
	if evt.AckErr != nil {
		b.log.Error().Err(evt.AckErr).Str("envelope_id", evt.EnvelopeID).Msg("could not acknowledge envelope")
		return
	}
	b.obs.Acked(evt.Acked)
}

// admit returns the job for an acknowledged envelope if its caps allow it.
// Dropped work is logged, and its user told to slow down once a minute.
func (b *Bot) admit(a *admission, what string, to recipient, handle func(context.Context)) job {
	leave, warn := a.enter(to.user)
	if leave == nil {
		b.log.Warn().Str("user", to.user).Str("channel", to.channel).Str("handler", what).
			Msg("dropped: too many requests in flight (acknowledged, not handled)")
		b.obs.Refused("overloaded")
		if !warn {
			return job{}
		}
		return job{what + "_slow_down", func(ctx context.Context) {
			b.tell(ctx, b.log, to, "You are sending requests faster than I can handle them, so I am skipping some. "+
				"Wait a moment, then send the one you need once.")
		}, to}
	}
	return job{what, func(ctx context.Context) {
		defer leave()
		handle(ctx)
	}, to}
}

// start runs each job in its own goroutine once it has a handler slot
// (gate.go: at once, unless a burst has taken them all), counted for
// shutdown and guarded against panics: one bad request must not take the
// bot down, and its user must not be left wondering.
func (b *Bot) start(ctx context.Context, jobs ...job) {
	for _, j := range jobs {
		b.work.Add(1)
		b.gate.enter(j, func(s *slot) {
			defer b.work.Done()
			defer s.leave()
			b.run(context.WithValue(ctx, slotKey{}, s), j)
		})
	}
}

// run runs one job, recovering a panic and telling its user.
func (b *Bot) run(ctx context.Context, j job) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error().Str("handler", j.what).Interface("panic", r).Bytes("stack", debug.Stack()).Msg("handler panicked")
			if j.to.user != "" {
				b.tell(ctx, b.log, j.to, "Something went wrong inside stopdeploy: this is a bug, and it is logged. "+
					"Check the confirmation's thread and the AWS console before you try again.")
			}
		}
	}()
	j.handle(ctx)
}

// claims makes the first click on a confirmation win in this process, so
// StopDeployment is called once per confirmation however many clicks
// arrive, and a later click can be told who won. A claim is kept until a
// minute after the confirmation expires, which bounds the map: by then any
// click is refused as expired, and a confirmation already acted on has no
// buttons left to click.
type claims struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]claim // key → the winning click
}

// claim is the click that won a confirmation.
type claim struct {
	user   string
	action string // actionStop or actionCancel
	at     time.Time
	forget time.Time // when the claim may be dropped
}

const claimMargin = time.Minute

// claim records a click by user on key; if an earlier click won, it
// returns that one and false.
func (c *claims) claim(key string, expires time.Time, user, action string) (claim, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.m == nil {
		c.m = make(map[string]claim)
	}
	for k, cl := range c.m {
		if now.After(cl.forget) {
			delete(c.m, k)
		}
	}
	if won, taken := c.m[key]; taken {
		return won, false
	}
	won := claim{user: user, action: action, at: now, forget: expires.Add(claimMargin)}
	c.m[key] = won
	return won, true
}

// winner returns the click that won key, if one has.
func (c *claims) winner(key string) (claim, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	won, ok := c.m[key]
	return won, ok
}

// taken reports whether a click won key.
func (c *claims) taken(key string) bool {
	_, ok := c.winner(key)
	return ok
}

func (c *claims) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
