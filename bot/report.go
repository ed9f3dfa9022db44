package bot

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

// A stop's record in Slack (its thread replies and the confirmation card)
// must survive Slack being slow or down, and must never hold up the stop.
// A reporter owns that record for one confirmation: replies are posted in
// order, the card is set to its latest state, each on a lane of its own so
// that a slow chat.update cannot delay a thread reply, and every failed
// write is retried with backoff until it lands or the reporter gives up.
//
// Reporters run on the bot's report context, not on a handler's: a report
// must still be made while the bot shuts down (Run cancels it only when the
// exit budget runs out). The JSON audit log has every outcome whatever
// Slack does.

const (
	// reportGiveUp is how long a write is retried: long enough to outlast
	// a Slack incident of a few minutes.
	reportGiveUp = 5 * time.Minute
	// reportAttempt bounds one attempt, slack-go's own 429 retries included.
	reportAttempt = 20 * time.Second
	reportBackoff = time.Second
	reportMaxWait = 30 * time.Second
)

const (
	laneReplies = iota
	laneCard
)

// reporter is the Slack record of one confirmation.
type reporter struct {
	b       *Bot
	channel string
	ts      string
	text    string // the card's fallback text
	log     zerolog.Logger

	mu      sync.Mutex
	replies []string      // not yet posted, in order
	card    []slack.Block // the latest card not yet written; nil when written
	running [2]bool       // a lane goroutine is running
}

// reporterFor returns the reporter of the confirmation c clicked, creating
// it on first use. Reporters are forgotten once they have nothing left to do.
func (b *Bot) reporterFor(c click) *reporter {
	b.reportersMu.Lock()
	defer b.reportersMu.Unlock()
	k := c.channel + "/" + c.ts
	if r, ok := b.reporters[k]; ok {
		return r
	}
	r := &reporter{b: b, channel: c.channel, ts: c.ts, text: c.text, log: c.log}
	if b.reporters == nil {
		b.reporters = make(map[string]*reporter)
	}
	b.reporters[k] = r
	return r
}

// reply queues a thread reply.
func (r *reporter) reply(text string) {
	r.mu.Lock()
	r.replies = append(r.replies, text)
	r.startLocked(laneReplies)
	r.mu.Unlock()
}

// setCard queues the card's new blocks, replacing any not yet written.
func (r *reporter) setCard(blocks []slack.Block) {
	r.mu.Lock()
	r.card = blocks
	r.startLocked(laneCard)
	r.mu.Unlock()
}

func (r *reporter) startLocked(lane int) {
	if r.running[lane] {
		return
	}
	r.running[lane] = true
	r.b.reports.Go(func() {
		defer r.b.recoverGoroutine("report")
		r.run(lane)
	})
}

// next takes the lane's next write, or stops the lane (under the same lock
// as the check, so a write queued meanwhile starts a new lane).
func (r *reporter) next(lane int) (write func(context.Context) error, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch lane {
	case laneReplies:
		if len(r.replies) > 0 {
			text := r.replies[0]
			return func(ctx context.Context) error {
				if _, _, err := r.b.reportSlack.PostMessageContext(ctx, r.channel,
					slack.MsgOptionText(limit(text, maxText), false), slack.MsgOptionTS(r.ts)); err != nil {
					return err
				}
				r.mu.Lock()
				r.replies = r.replies[1:]
				r.mu.Unlock()
				return nil
			}, true
		}
	case laneCard:
		if r.card != nil {
			blocks := r.card
			return func(ctx context.Context) error {
				// Blocks are always sent: chat.update without them would
				// keep the old ones, buttons included.
				if _, _, _, err := r.b.reportSlack.UpdateMessageContext(ctx, r.channel, r.ts,
					slack.MsgOptionText(limit(r.text, maxText), false), slack.MsgOptionBlocks(blocks...)); err != nil {
					return err
				}
				r.mu.Lock()
				if sameBlocks(r.card, blocks) {
					r.card = nil
				}
				r.mu.Unlock()
				return nil
			}, true
		}
	}
	r.running[lane] = false
	r.forgetIfIdleLocked()
	return nil, false
}

func (r *reporter) forgetIfIdleLocked() {
	if r.running[laneReplies] || r.running[laneCard] {
		return
	}
	r.b.reportersMu.Lock()
	if r.b.reporters[r.channel+"/"+r.ts] == r {
		delete(r.b.reporters, r.channel+"/"+r.ts)
	}
	r.b.reportersMu.Unlock()
}

// run writes the lane's queue until it is empty, retrying each write.
func (r *reporter) run(lane int) {
	what := [...]string{"thread reply", "card update"}[lane]
	for {
		write, ok := r.next(lane)
		if !ok {
			return
		}
		if err := r.retry(write); err != nil {
			r.log.Error().Err(err).Str("report", what).Msg("gave up writing the stop's record to Slack; the audit log has it")
			r.drop(lane)
		}
	}
}

// drop discards the lane's head after retries failed for good.
func (r *reporter) drop(lane int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if lane == laneReplies && len(r.replies) > 0 {
		r.replies = r.replies[1:]
	} else if lane == laneCard {
		r.card = nil
	}
}

func (r *reporter) retry(write func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(r.b.reportCtx, reportGiveUp)
	defer cancel()
	wait := reportBackoff
	for attempt := 1; ; attempt++ {
		actx, acancel := context.WithTimeout(ctx, reportAttempt)
		err := write(actx)
		acancel()
		if err == nil {
			return nil
		}
		if permanentSlackError(err) {
			return err
		}
		r.log.Warn().Err(err).Int("attempt", attempt).Dur("retry_in", wait).Msg("could not write to Slack; retrying")
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		}
		wait = min(2*wait, reportMaxWait)
	}
}

// permanentSlackError reports whether retrying cannot help: Slack answered
// that the request itself is wrong (not rate limits, outages or timeouts).
func permanentSlackError(err error) bool {
	return slackError(err, "channel_not_found", "not_in_channel", "is_archived", "message_not_found",
		"cant_update_message", "edit_window_closed", "invalid_blocks", "msg_too_long", "no_text",
		"invalid_auth", "not_authed", "account_inactive", "token_revoked", "missing_scope", "restricted_action")
}

func sameBlocks(a, b []slack.Block) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
