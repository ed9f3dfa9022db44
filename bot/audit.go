package bot

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
)

// auditEvent is one step of a request: requested, refused, confirmed,
// cancelled, expired, stop_result, stop_error or final_state. Each becomes
// one JSON log line and, when configured, a message in the audit channel.
type auditEvent struct {
	Event      string
	User       string
	Channel    string
	Deployment string
	Outcome    string
	Detail     string // plain words
	MessageTS  string // the confirmation, once there is one
}

// audit records ev. ctx must be the work context (a handler's own), not a
// short-lived one: the audit channel post outlives the call, until the
// shutdown grace period ends.
func (b *Bot) audit(ctx context.Context, log zerolog.Logger, ev auditEvent) {
	b.log.Info().
		Bool("audit", true).
		Str("event", ev.Event).
		Str("user", ev.User).
		Str("channel", ev.Channel).
		Str("deployment", ev.Deployment).
		Str("outcome", ev.Outcome).
		Str("message_ts", ev.MessageTS).
		Str("detail", ev.Detail).
		Msg("audit " + ev.Event)
	if b.cfg.AuditChannel == "" {
		return
	}
	// The audit channel is a copy for the record: posting it must not delay
	// the flow, but shutdown waits for it (within the grace period).
	text := fmt.Sprintf("`%s` %s by %s in <#%s>: *%s*", ev.Deployment, ev.Event, mention(ev.User), ev.Channel, escape(ev.Outcome))
	if ev.Detail != "" {
		text += " · " + escape(ev.Detail)
	}
	b.auditPosts.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, _, err := b.slack.PostMessageContext(ctx, b.cfg.AuditChannel, slack.MsgOptionText(text, false)); err != nil {
			log.Error().Err(err).Str("audit_channel", b.cfg.AuditChannel).Msg("could not post to the audit channel")
		}
	})
}
