package sandbox

import (
	"bytes"
	"encoding/json"
	"sync"
	"time"
)

const (
	maxLogLines = 1000    // the page shows the most recent lines
	maxLogLine  = 1 << 20 // a longer line without a newline is cut
)

// logLine is one line the bot wrote: a zerolog JSON object, or raw text.
type logLine struct {
	Raw     string
	Time    time.Time
	Level   string
	Message string
	Audit   *auditLine // nil unless "audit":true
}

// auditLine is the bot's audit record (bot/audit.go), as /api/audit serves it.
type auditLine struct {
	Time       string `json:"time"`
	Event      string `json:"event"`
	User       string `json:"user"`
	Channel    string `json:"channel"`
	Deployment string `json:"deployment"`
	Outcome    string `json:"outcome"`
	Detail     string `json:"detail,omitempty"`
	MessageTS  string `json:"message_ts,omitempty"`
}

// logSink collects the bot's log output line by line and wakes watchers.
type logSink struct {
	mu      sync.Mutex
	partial []byte
	lines   []logLine
	changed chan struct{} // closed and replaced when lines are added
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

// Write never fails: the log must not stop the bot.
func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		if line := bytes.TrimSpace(l.partial[:i]); len(line) > 0 {
			l.addLocked(line)
			added = true
		}
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) > maxLogLine {
		l.addLocked(l.partial)
		l.partial = nil
		added = true
	}
	l.partial = bytes.Clone(l.partial)
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

func (l *logSink) addLocked(raw []byte) {
	line := logLine{Raw: string(raw)}
	var f struct {
		Level   string `json:"level"`
		Time    string `json:"time"`
		Message string `json:"message"`
		Audit   bool   `json:"audit"`
		auditLine
	}
	if json.Unmarshal(raw, &f) == nil {
		line.Level, line.Message = f.Level, f.Message
		line.Time, _ = time.Parse(time.RFC3339Nano, f.Time)
		if f.Audit {
			a := f.auditLine
			a.Time = f.Time
			line.Audit = &a
		}
	}
	l.lines = append(l.lines, line)
	if over := len(l.lines) - maxLogLines; over > 0 {
		l.lines = append(l.lines[:0:0], l.lines[over:]...)
	}
}

// snapshot returns the lines so far and a channel closed at the next line.
func (l *logSink) snapshot() ([]logLine, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]logLine(nil), l.lines...), l.changed
}

// watch returns a channel closed at the next line.
func (l *logSink) watch() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// audits returns the audit records so far, oldest first.
func (l *logSink) audits() []auditLine {
	lines, _ := l.snapshot()
	out := []auditLine{}
	for _, line := range lines {
		if line.Audit != nil {
			out = append(out, *line.Audit)
		}
	}
	return out
}
