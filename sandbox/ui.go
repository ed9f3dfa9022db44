package sandbox

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

//go:embed web
var webFS embed.FS

const (
	// ackWait is how long a command or click waits for the bot's ack, as
	// Slack waits 3 s before it tells the user the app did not respond.
	ackWait = 3 * time.Second
	// keepAlive is how often an idle event stream gets a comment line.
	keepAlive = 15 * time.Second
	maxForm   = 64 << 10
	maxText   = 4000 // Slack's limit for a message typed in the composer
)

// tsPattern is a Slack message ts; actionPattern an action_id as Slack allows it.
var (
	tsPattern     = regexp.MustCompile(`^[0-9]{1,12}\.[0-9]{6}$`)
	actionPattern = regexp.MustCompile(`^[^\x00-\x1f]{1,255}$`)
)

// ui is the page's HTTP side. It reads the fakes' state and changes it
// only as a Slack user would: a slash command, a message, a click.
type ui struct {
	ctx    context.Context // ends at Close
	slack  *fakeslack.Server
	cd     *fakecodedeploy.Server
	logs   *logSink
	tmpl   *template.Template
	static fs.FS
}

func newUI(ctx context.Context, sl *fakeslack.Server, cd *fakecodedeploy.Server, logs *logSink) (*ui, error) {
	tmpl, err := template.ParseFS(webFS, "web/*.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	static, err := fs.Sub(webFS, "web/static")
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	return &ui{ctx: ctx, slack: sl, cd: cd, logs: logs, tmpl: tmpl, static: static}, nil
}

func (u *ui) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", u.page)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(u.static)))
	mux.HandleFunc("GET /fragment/messages", u.messagesFragment)
	mux.HandleFunc("GET /fragment/thread", u.threadFragment)
	mux.HandleFunc("GET /fragment/deployments", u.deploymentsFragment)
	mux.HandleFunc("GET /fragment/log", u.logFragment)
	mux.HandleFunc("GET /api/deployments", u.deploymentsJSON)
	mux.HandleFunc("GET /api/audit", u.auditJSON)
	mux.HandleFunc("GET /events", u.events)
	mux.HandleFunc("POST /api/command", u.command)
	mux.HandleFunc("POST /api/click", u.click)
	return guard(mux)
}

// guard answers only requests addressed to a loopback name (a web page
// elsewhere cannot reach the sandbox through DNS rebinding), refuses
// cross-origin POSTs, and sets a content policy that allows only the
// page's own scripts and styles.
func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			http.Error(w, "sandbox: this page answers only on 127.0.0.1, ::1 or localhost", http.StatusMisdirectedRequest)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
				http.Error(w, "sandbox: cross-origin request refused", http.StatusForbidden)
				return
			}
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// ---- pages and fragments ----

func (u *ui) page(w http.ResponseWriter, r *http.Request) {
	v := newViewer(u.slack)
	q := r.URL.Query()
	user, ok := findUser(q.Get("user"))
	if !ok {
		user = userViews()[0]
	}
	ch, ok := v.channel(q.Get("channel"))
	if !ok {
		ch, _ = v.channel(Deploys)
	}
	var channels []channelView
	for _, c := range u.slack.Channels() {
		channels = append(channels, channelView{ID: c.ID, Name: c.Name})
	}
	lines, _ := u.logs.snapshot()
	u.render(w, http.StatusOK, "page", pageData{
		Users: userViews(), User: user, Channels: channels, Channel: ch, Online: u.online(),
		Messages:    v.channelMessages(u.slack.Messages(), user, ch),
		Deployments: deployments(u.cd.Deployments()),
		Log:         v.logViews(lines),
		Try:         []string{"/stopdeploy " + Running + " rollback", "/stopdeploy " + Staging, "/stopdeploy help"},
	})
}

// reader reads the user and channel query parameters of a fragment.
func (u *ui) reader(w http.ResponseWriter, r *http.Request) (viewer, userView, channelView, bool) {
	v := newViewer(u.slack)
	user, ok := findUser(r.FormValue("user"))
	if !ok {
		httpError(w, http.StatusBadRequest, "unknown user %q", r.FormValue("user"))
		return v, user, channelView{}, false
	}
	ch, ok := v.channel(r.FormValue("channel"))
	if !ok {
		httpError(w, http.StatusBadRequest, "unknown channel %q", r.FormValue("channel"))
		return v, user, ch, false
	}
	return v, user, ch, true
}

func (u *ui) messagesFragment(w http.ResponseWriter, r *http.Request) {
	v, user, ch, ok := u.reader(w, r)
	if !ok {
		return
	}
	u.render(w, http.StatusOK, "messages", v.channelMessages(u.slack.Messages(), user, ch))
}

func (u *ui) threadFragment(w http.ResponseWriter, r *http.Request) {
	v, user, ch, ok := u.reader(w, r)
	if !ok {
		return
	}
	data, ok := v.thread(u.slack.Messages(), user.ID, ch, r.FormValue("ts"))
	if !ok {
		httpError(w, http.StatusNotFound, "no such message")
		return
	}
	u.render(w, http.StatusOK, "thread", data)
}

func (u *ui) deploymentsFragment(w http.ResponseWriter, r *http.Request) {
	u.render(w, http.StatusOK, "deployments", deployments(u.cd.Deployments()))
}

func (u *ui) logFragment(w http.ResponseWriter, r *http.Request) {
	lines, _ := u.logs.snapshot()
	u.render(w, http.StatusOK, "log", newViewer(u.slack).logViews(lines))
}

// render executes a template fully before writing, so an error is a clean 500.
func (u *ui) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := u.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		httpError(w, http.StatusInternalServerError, "rendering %s: %v", name, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// ---- JSON ----

type deploymentJSON struct {
	ID                   string                  `json:"deploymentId"`
	Application          string                  `json:"applicationName"`
	Group                string                  `json:"deploymentGroupName"`
	Status               string                  `json:"status"`
	ComputePlatform      string                  `json:"computePlatform"`
	Config               string                  `json:"deploymentConfigName"`
	Creator              string                  `json:"creator"`
	Description          string                  `json:"description,omitempty"`
	CreateTime           time.Time               `json:"createTime"`
	CompleteTime         *time.Time              `json:"completeTime,omitempty"`
	Overview             fakecodedeploy.Overview `json:"deploymentOverview"`
	StopRequested        bool                    `json:"stopRequested"`
	AutoRollbackEnabled  bool                    `json:"autoRollbackEnabled"`
	RollbackDeploymentID string                  `json:"rollbackDeploymentId,omitempty"`
	RollbackOf           string                  `json:"rollbackTriggeringDeploymentId,omitempty"`
}

func (u *ui) deploymentsJSON(w http.ResponseWriter, r *http.Request) {
	out := []deploymentJSON{}
	for _, d := range u.cd.Deployments() {
		j := deploymentJSON{
			ID: d.ID, Application: d.Application, Group: d.Group, Status: d.Status, ComputePlatform: d.ComputePlatform,
			Config: d.DeploymentConfigName, Creator: d.Creator, Description: d.Description, CreateTime: d.CreateTime,
			Overview: d.Overview, StopRequested: !d.StopRequestedAt.IsZero(), AutoRollbackEnabled: d.StopAutoRollback,
			RollbackDeploymentID: d.RollbackDeploymentID, RollbackOf: d.RollbackTriggeringDeploymentID,
		}
		if !d.CompleteTime.IsZero() {
			j.CompleteTime = &d.CompleteTime
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, out)
}

func (u *ui) auditJSON(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, u.logs.audits())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "encoding: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// httpError answers {"error": …}; the page shows the text to the user.
func httpError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// ---- acting as a user ----

// actor reads and checks the user and channel of a POST.
func (u *ui) actor(w http.ResponseWriter, r *http.Request) (userView, channelView, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		httpError(w, http.StatusBadRequest, "bad form: %v", err)
		return userView{}, channelView{}, false
	}
	user, ok := findUser(r.PostForm.Get("user"))
	if !ok {
		httpError(w, http.StatusBadRequest, "unknown user %q", r.PostForm.Get("user"))
		return user, channelView{}, false
	}
	ch, ok := newViewer(u.slack).channel(r.PostForm.Get("channel"))
	if !ok {
		httpError(w, http.StatusBadRequest, "unknown channel %q", r.PostForm.Get("channel"))
		return user, ch, false
	}
	return user, ch, true
}

// command is the composer: "/stopdeploy …" is sent to the bot as user's
// slash command, and other text is posted as user's message.
func (u *ui) command(w http.ResponseWriter, r *http.Request) {
	user, ch, ok := u.actor(w, r)
	if !ok {
		return
	}
	text := strings.TrimSpace(r.PostForm.Get("text"))
	switch {
	case text == "":
		httpError(w, http.StatusBadRequest, "type /stopdeploy and a deployment, or a message")
		return
	case len([]rune(text)) > maxText:
		httpError(w, http.StatusBadRequest, "a message can have at most %d characters", maxText)
		return
	case !strings.HasPrefix(text, "/"):
		ts, err := u.slack.PostAsUser(ch.ID, user.ID, text)
		if err != nil {
			httpError(w, http.StatusInternalServerError, "posting: %v", err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"ts": ts})
		return
	}
	name, args := text, ""
	if i := strings.IndexFunc(text, unicode.IsSpace); i >= 0 {
		name, args = text[:i], strings.TrimSpace(text[i:])
	}
	if name != "/stopdeploy" {
		httpError(w, http.StatusBadRequest, "%s is not a valid command. This workspace has one: /stopdeploy", name)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ackWait)
	defer cancel()
	id, err := u.slack.SendSlashCommand(ctx, fakeslack.SlashCommand{UserID: user.ID, ChannelID: ch.ID, Text: args})
	u.delivered(w, ctx, id, "/stopdeploy", err)
}

// click presses a button of a message as user.
func (u *ui) click(w http.ResponseWriter, r *http.Request) {
	user, ch, ok := u.actor(w, r)
	if !ok {
		return
	}
	ts, action := r.PostForm.Get("ts"), r.PostForm.Get("action")
	if !tsPattern.MatchString(ts) {
		httpError(w, http.StatusBadRequest, "bad message ts %q", ts)
		return
	}
	if !actionPattern.MatchString(action) {
		httpError(w, http.StatusBadRequest, "bad action_id %q", action)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ackWait)
	defer cancel()
	id, err := u.slack.ClickButton(ctx, fakeslack.Click{UserID: user.ID, ChannelID: ch.ID, MessageTS: ts, ActionID: action})
	u.delivered(w, ctx, id, "The button", err)
}

// delivered answers a command or click after the bot acked it, with the
// words Slack would use when it did not.
func (u *ui) delivered(w http.ResponseWriter, ctx context.Context, envelopeID, what string, err error) {
	switch {
	case errors.Is(err, fakeslack.ErrNoConnection):
		httpError(w, http.StatusServiceUnavailable, "%s failed with the error \"dispatch_failed\": the bot is not connected (yet)", what)
		return
	case errors.Is(err, fakeslack.ErrNoSuchMessage), errors.Is(err, fakeslack.ErrNoSuchButton),
		errors.Is(err, fakeslack.ErrNotVisible), errors.Is(err, fakeslack.ErrNoSuchChannel):
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	case err != nil:
		httpError(w, http.StatusBadGateway, "%v", err)
		return
	}
	if _, err := u.slack.WaitAck(ctx, envelopeID); err != nil {
		httpError(w, http.StatusGatewayTimeout, "%s failed with the error \"operation_timeout\": the bot did not answer within %v", what, ackWait)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"envelope_id": envelopeID})
}

// ---- live updates ----

// online reports whether the bot holds a Socket Mode connection.
func (u *ui) online() bool {
	for _, c := range u.slack.Connections() {
		if c.Live && c.Hello {
			return true
		}
	}
	return false
}

// events streams what changed, as server-sent events named messages,
// deployments, log and status; the page fetches the fragment again. The
// first event, hello, carries the status and tells the page to refresh
// everything (it may have missed changes while it was away).
func (u *ui) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	slackChanges, stopSlack := u.slack.Subscribe()
	defer stopSlack()
	cdChanges, stopCD := u.cd.Subscribe()
	defer stopCD()

	send := func(event string, data any) bool {
		b, _ := json.Marshal(data)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	status := func() map[string]bool { return map[string]bool{"online": u.online()} }
	if !send("hello", status()) {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	logChanged := u.logs.watch()
	for {
		ok := true
		select {
		case <-r.Context().Done():
			return
		case <-u.ctx.Done():
			return
		case c, open := <-slackChanges:
			if !open {
				return
			}
			switch {
			case c.Missed:
				ok = send("messages", struct{}{}) && send("status", status())
			case c.Kind == fakeslack.ChangeMessagePosted, c.Kind == fakeslack.ChangeMessageUpdated,
				c.Kind == fakeslack.ChangeMessageDeleted, c.Kind == fakeslack.ChangeWorkspace:
				ok = send("messages", map[string]string{"channel": c.Channel, "ts": c.TS})
			case c.Kind == fakeslack.ChangeConnectionUp, c.Kind == fakeslack.ChangeConnectionDown:
				ok = send("status", status())
			}
		case _, open := <-cdChanges:
			if !open {
				return
			}
			ok = send("deployments", struct{}{})
		case <-logChanged:
			logChanged = u.logs.watch()
			ok = send("log", struct{}{})
		case <-tick.C:
			_, err := fmt.Fprint(w, ": keep-alive\n\n")
			ok = err == nil && rc.Flush() == nil
		}
		if !ok {
			return
		}
	}
}
