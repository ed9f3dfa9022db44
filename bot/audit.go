package bot

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// Audit events: each is logged, posted and counted in one place (audit).
const (
	evRequested  = "requested"
	evRefused    = "refused"
	evApproved   = "approved" // one approval of several a rule needs
	evConfirmed  = "confirmed"
	evCancelled  = "cancelled"
	evExpired    = "expired"
	evStopResult = "stop_result"
	evStopError  = "stop_error"
	evFinalState = "final_state"
)

// auditEvent is one step of a request. Each becomes one JSON log line and,
// when configured, a line in the audit channel.
type auditEvent struct {
	Event      string
	User       string
	Channel    string
	Deployment string
	Account    string // where the deployment is, once known
	Region     string
	Outcome    string
	Detail     string // plain words
	MessageTS  string // the confirmation, once there is one
}

// audit records ev: the JSON log line at once, whatever Slack does, and a
// post to the audit channel through its pacer.
func (b *Bot) audit(ev auditEvent) {
	b.auditLog(ev)
	b.auditPost(ev)
}

func (b *Bot) auditLog(ev auditEvent) {
	b.log.Info().
		Bool("audit", true).
		Str("event", ev.Event).
		Str("user", ev.User).
		Str("channel", ev.Channel).
		Str("deployment", ev.Deployment).
		Str("account", ev.Account).
		Str("region", ev.Region).
		Str("outcome", ev.Outcome).
		Str("message_ts", ev.MessageTS).
		Str("detail", ev.Detail).
		Msg("audit " + ev.Event)
	b.auditStored(ev)
}

func (b *Bot) auditPost(ev auditEvent) {
	if b.auditQ == nil {
		return
	}
	b.auditQ.add(ev)
}

// auditText is ev as a sentence for the audit channel, with a link to the
// confirmation when there is one.
func (b *Bot) auditText(ev auditEvent) string {
	who, dep, where := mention(ev.User), code(ev.Deployment), "<#"+ev.Channel+">"
	if ev.Account != "" {
		dep += " (" + awsText(ev.Account+"/"+ev.Region) + ")"
	}
	detail := awsText(ev.Detail)
	var s string
	switch ev.Event {
	case evRequested:
		s = fmt.Sprintf("%s asked to stop %s in %s", who, dep, where)
		if ev.Outcome != "confirmation_posted" {
			s += ": " + words(ev.Outcome) + "."
		} else if ev.Detail != "" {
			s += " · " + detail
		}
	case evRefused:
		s = fmt.Sprintf("%s was refused for %s in %s: %s.", who, dep, where, refusalWords(ev.Outcome))
	case evApproved:
		s = fmt.Sprintf("%s approved the stop of %s in %s · %s", who, dep, where, detail)
	case evConfirmed:
		s = fmt.Sprintf("%s confirmed the stop of %s in %s · %s", who, dep, where, detail)
	case evCancelled:
		s = fmt.Sprintf("%s cancelled the request to stop %s in %s. Nothing was stopped.", who, dep, where)
	case evExpired:
		s = fmt.Sprintf("The request to stop %s in %s expired (%s). Nothing was stopped.", dep, where, detail)
	case evStopResult:
		s = fmt.Sprintf("CodeDeploy answered *%s* to the stop of %s confirmed by %s", words(ev.Outcome), dep, who)
		if ev.Detail != "" {
			s += ": " + detail
		}
	case evStopError:
		if ev.Outcome == "unknown" {
			s = fmt.Sprintf("CodeDeploy did not confirm the stop of %s confirmed by %s: %s", dep, who, detail)
		} else {
			s = fmt.Sprintf("The stop of %s confirmed by %s failed (%s): %s", dep, who, words(ev.Outcome), detail)
		}
	case evFinalState:
		s = fmt.Sprintf("%s is now *%s*", dep, words(ev.Outcome))
		if ev.Detail != "" {
			s += " · " + detail
		}
	default:
		s = fmt.Sprintf("%s %s by %s in %s: *%s* · %s", dep, ev.Event, who, where, words(ev.Outcome), detail)
	}
	if link := b.permalink(ev.Channel, ev.MessageTS); link != "" {
		s += " · <" + link + "|confirmation>"
	}
	return s
}

// refusalWords says why someone was refused, in words.
func refusalWords(code string) string {
	switch code {
	case "user_not_allowed":
		return "not allowed to stop deployments"
	case "channel_not_allowed":
		return "the command is not enabled in that channel"
	case "lookup_failed", "auth_error", "group_lookup_failed":
		return "the bot could not check their permissions"
	case "second_approver_required":
		return "a second approver must confirm, not the requester"
	case "wrong_channel":
		return "the button belongs to a confirmation in another channel"
	case "bad_signature":
		return "the button's value is not one this bot signed for that message"
	case "own_request":
		return "they asked for the stop, so their approval does not count"
	case "already_approved":
		return "they had already approved"
	case "not_approver":
		return "not an approver of the deployment's rule"
	case "no_rule":
		return "no rule lets anyone stop that deployment from Slack"
	case "rule_gone":
		return "the confirmation's rule is no longer in the policy"
	}
	return words(code)
}

// words turns an outcome code into words: "follow_timeout" → "follow timeout".
func words(code string) string { return awsText(strings.ReplaceAll(code, "_", " ")) }

// permalink links to a message. Slack's message links have the form
// https://<workspace>.slack.com/archives/<channel>/p<ts without the dot>;
// the workspace domain comes from the payloads (team_domain, team.domain).
func (b *Bot) permalink(channel, ts string) string {
	domain, _ := b.teamDomain.Load().(string)
	if domain == "" || channel == "" || ts == "" {
		return ""
	}
	return "https://" + domain + ".slack.com/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", "")
}

// Slack allows about one message per second per channel, with short bursts
// ("chat.postMessage" method page, rate limits). The audit channel is one
// channel: the bot paces its own posts to it, so that a flood of refusals
// cannot make Slack drop the events that matter, and coalesces refusals to
// one line per user per minute with a count. The JSON log keeps every event.
const (
	auditBurst     = 3
	auditEvery     = time.Second
	auditCoalesce  = time.Minute
	auditMaxQueued = 5000 // refusal lines beyond it are dropped; other events never are
	auditAttempts  = 3
)

// auditQueue is the audit channel's pacer.
type auditQueue struct {
	b       *Bot
	channel string
	now     func() time.Time

	mu       sync.Mutex
	lines    []string
	refusals map[string]*refusals // user → this window's refusals
	closing  bool
	wake     chan struct{}
}

type refusals struct {
	since time.Time
	more  int // refusals after the first, not yet posted
}

func newAuditQueue(b *Bot, channel string) *auditQueue {
	return &auditQueue{b: b, channel: channel, now: b.now, refusals: map[string]*refusals{}, wake: make(chan struct{}, 1)}
}

func (q *auditQueue) add(ev auditEvent) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if ev.Event == evRefused {
		now := q.now()
		q.flushRefusalsLocked(now, false)
		if r, ok := q.refusals[ev.User]; ok {
			r.more++
			return
		}
		q.refusals[ev.User] = &refusals{since: now}
		if len(q.lines) >= auditMaxQueued {
			q.b.log.Warn().Str("user", ev.User).Msg("audit channel queue full: refusal not posted (it is in the log)")
			return
		}
	}
	q.lines = append(q.lines, q.b.auditText(ev))
	q.signal()
}

// flushRefusalsLocked queues a count line for every refusal window that has
// ended (every window when all is set).
func (q *auditQueue) flushRefusalsLocked(now time.Time, all bool) {
	for user, r := range q.refusals {
		if !all && now.Sub(r.since) < auditCoalesce {
			continue
		}
		delete(q.refusals, user)
		if r.more > 0 {
			q.lines = append(q.lines, fmt.Sprintf("%s was refused %d more times since %s (each is in the bot's log).",
				mention(user), r.more, slackTime(r.since)))
		}
	}
	q.signal()
}

func (q *auditQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// close flushes the refusal counts; run then posts what is queued and ends.
func (q *auditQueue) close() {
	q.mu.Lock()
	q.closing = true
	q.flushRefusalsLocked(q.now(), true)
	q.mu.Unlock()
}

func (q *auditQueue) take() (line string, ok, closing bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.flushRefusalsLocked(q.now(), false)
	if len(q.lines) == 0 {
		return "", false, q.closing
	}
	line = q.lines[0]
	q.lines = q.lines[1:]
	return line, true, q.closing
}

// run posts queued lines, at most auditBurst at once and then one per
// auditEvery, until close and an empty queue, or until ctx ends.
func (q *auditQueue) run(ctx context.Context) {
	tokens := auditBurst
	refill := time.NewTicker(auditEvery)
	defer refill.Stop()
	for {
		line, ok, closing := q.take()
		if !ok {
			if closing {
				return
			}
			select {
			case <-q.wake:
			case <-refill.C:
				tokens = min(tokens+1, auditBurst)
			case <-ctx.Done():
				return
			}
			continue
		}
		for tokens == 0 {
			select {
			case <-refill.C:
				tokens++
			case <-ctx.Done():
				q.b.log.Warn().Msg("shutting down: audit channel lines left unposted (they are in the log)")
				return
			}
		}
		tokens--
		q.post(ctx, line)
	}
}

func (q *auditQueue) post(ctx context.Context, line string) {
	wait := reportBackoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, reportAttempt)
		_, _, err := q.b.reportSlack.PostMessageContext(actx, q.channel, slack.MsgOptionText(limit(line, maxText), false))
		cancel()
		if err == nil {
			return
		}
		if attempt == auditAttempts || permanentSlackError(err) || ctx.Err() != nil {
			q.b.log.Error().Err(err).Str("audit_channel", q.channel).Msg("could not post to the audit channel")
			return
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait *= 2
	}
}
