package main

import (
	"bytes"
	"io"
	"log"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// newLogger returns the bot's logger: JSON lines or console text on w, which
// is wrapped so that no token can reach it.
func newLogger(w io.Writer, level zerolog.Level, format string, secrets ...string) zerolog.Logger {
	out := io.Writer(newRedactor(w, secrets...))
	if format == "console" {
		out = zerolog.ConsoleWriter{Out: out, NoColor: true, TimeFormat: time.RFC3339}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Str("service", "stopdeploy").Logger()
}

// slackLogger routes slack-go's own logging into zerolog at debug level.
func slackLogger(l zerolog.Logger) *log.Logger {
	return log.New(debugWriter{l}, "", 0)
}

type debugWriter struct{ l zerolog.Logger }

func (d debugWriter) Write(p []byte) (int, error) {
	d.l.Debug().Str("component", "slack-go").Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// secretPattern matches Slack tokens of every kind (bot, user, app-level,
// refresh, config) and response_urls (hooks.slack.com/commands/T…/n/secret
// and /actions/…: anyone holding one may post for 30 minutes; slack-go's
// debug log prints them when a retry follows a connection error). The
// redactor is the last line of defence: code never logs either on purpose.
var secretPattern = regexp.MustCompile(`\b(xox[abposre]|xapp)-[A-Za-z0-9.-]+|https?://[^\s"'<>\\]+/(commands|actions)/T[A-Z0-9]+/[0-9]+/[A-Za-z0-9]+`)

// redactor replaces tokens, response_urls and the exact configured secrets
// in every write.
// zerolog writes each event in one call, so a token is never split.
type redactor struct {
	mu      sync.Mutex
	w       io.Writer
	secrets [][]byte
}

func newRedactor(w io.Writer, secrets ...string) *redactor {
	r := &redactor{w: w}
	for _, s := range secrets {
		if s != "" {
			r.secrets = append(r.secrets, []byte(s))
		}
	}
	return r
}

var redacted = []byte("[redacted]")

func (r *redactor) Write(p []byte) (int, error) {
	clean := secretPattern.ReplaceAll(p, redacted)
	for _, s := range r.secrets {
		clean = bytes.ReplaceAll(clean, s, redacted)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.w.Write(clean); err != nil {
		return 0, err
	}
	return len(p), nil
}
