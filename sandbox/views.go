package sandbox

import (
	"fmt"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

// Views: what the templates in web/ render. Plain strings are escaped by
// html/template; template.HTML values come from the mrkdwn and Block Kit
// renderers, which escape every piece of text themselves.
type (
	userView struct {
		ID, Name, RealName, Role string
		Initial                  string
		Avatar                   string // CSS class
	}
	channelView struct{ ID, Name string }

	messageView struct {
		Channel, TS  string
		Author       string
		Initial      string
		Avatar       string
		Bot          bool
		Time         string
		ISO          string
		Text         template.HTML // when there are no blocks
		Blocks       []blockView
		Ephemeral    bool
		Edited       bool
		Replies      int
		LastReply    string
		Confirmation bool // has the bot's Stop/Cancel buttons (for tests and styling)
	}
	channelData struct {
		User     userView
		Channel  channelView
		Messages []messageView
	}
	threadData struct {
		Channel channelView
		Parent  messageView
		Replies []messageView
	}

	deploymentView struct {
		ID, Application, Group, Platform, Config string
		Status, StatusClass                      string
		Creator, Description                     string
		Started, Completed                       string
		Overview                                 fakecodedeploy.Overview
		Total                                    int64
		Stopping                                 bool
		AutoRollback                             bool
		RollbackID, RollbackOf                   string
	}

	logView struct {
		Time, Level, Message, Raw string
		Audit                     *auditView
	}
	auditView struct {
		Event, Outcome, User, Channel, Deployment, Detail string
	}

	pageData struct {
		Users       []userView
		User        userView
		Channels    []channelView
		Channel     channelView
		Online      bool
		Messages    channelData
		Deployments []deploymentView
		Log         []logView
		Try         []string // commands offered under the composer
	}
)

// viewer renders state for one reader, with names from the workspace.
type viewer struct {
	dir      directory
	users    map[string]fakeslack.User
	botID    string
	avatars  map[string]string
	channels map[string]string
}

func newViewer(sl *fakeslack.Server) viewer {
	v := viewer{
		dir:      directory{users: map[string]string{}, channels: map[string]string{}, groups: groupNames},
		users:    map[string]fakeslack.User{},
		avatars:  map[string]string{},
		channels: map[string]string{},
		botID:    fakeslack.DefaultBotUserID,
	}
	v.dir.users[v.botID] = fakeslack.BotName
	for i, u := range sl.Users() {
		v.users[u.ID] = u
		v.dir.users[u.ID] = u.Name
		v.avatars[u.ID] = "avatar-" + strconv.Itoa(i%6)
	}
	for _, c := range sl.Channels() {
		v.dir.channels[c.ID] = c.Name
		v.channels[c.ID] = c.Name
	}
	return v
}

func initial(name string) string {
	for _, r := range name {
		return strings.ToUpper(string(r))
	}
	return "?"
}

func userViews() []userView {
	out := make([]userView, len(people))
	for i, p := range people {
		out[i] = userView{
			ID: p.ID, Name: p.Name, RealName: p.RealName, Role: p.Role,
			Initial: initial(p.RealName), Avatar: "avatar-" + strconv.Itoa(i%6),
		}
	}
	return out
}

func findUser(id string) (userView, bool) {
	for _, u := range userViews() {
		if u.ID == id {
			return u, true
		}
	}
	return userView{}, false
}

func (v viewer) channel(id string) (channelView, bool) {
	name, ok := v.channels[id]
	return channelView{ID: id, Name: name}, ok
}

// tsTime reads a Slack ts ("1764198000.000100") as a time.
func tsTime(ts string) time.Time {
	sec, _, _ := strings.Cut(ts, ".")
	n, _ := strconv.ParseInt(sec, 10, 64)
	return time.Unix(n, 0)
}

func (v viewer) message(m fakeslack.Message) messageView {
	t := tsTime(m.TS)
	mv := messageView{
		Channel: m.Channel, TS: m.TS, Time: t.Format("15:04:05"), ISO: t.UTC().Format(time.RFC3339),
		Ephemeral: m.Ephemeral, Edited: m.Edits > 0,
	}
	if m.User == v.botID {
		mv.Author, mv.Initial, mv.Avatar, mv.Bot = fakeslack.BotName, "S", "avatar-bot", true
	} else {
		u, ok := v.users[m.User]
		mv.Author, mv.Avatar = m.User, "avatar-0"
		if ok {
			mv.Author, mv.Avatar = u.RealName, v.avatars[u.ID]
		}
		mv.Initial = initial(mv.Author)
	}
	blocks, err := v.dir.blocks(m.Blocks)
	switch {
	case err != nil:
		mv.Text = plainText(fmt.Sprintf("[cannot render blocks: %v] ", err), false) + v.dir.mrkdwn(m.Text)
	case len(blocks) > 0:
		mv.Blocks = blocks
	default:
		mv.Text = v.dir.mrkdwn(m.Text)
	}
	for _, b := range blocks {
		for _, e := range b.Elements {
			mv.Confirmation = mv.Confirmation || e.Kind == "button"
		}
	}
	return mv
}

// visible reports whether user sees m in channel: not deleted, and not
// someone else's ephemeral message.
func visible(m fakeslack.Message, user, channel string) bool {
	return m.Channel == channel && !m.Deleted && (!m.Ephemeral || m.VisibleTo == user)
}

func isReply(m fakeslack.Message) bool { return m.ThreadTS != "" && m.ThreadTS != m.TS }

// channelMessages is the channel as user sees it: top-level messages in
// post order, each with its reply count.
func (v viewer) channelMessages(msgs []fakeslack.Message, user userView, ch channelView) channelData {
	type thread struct {
		n    int
		last string
	}
	threads := map[string]*thread{}
	for _, m := range msgs {
		if visible(m, user.ID, ch.ID) && isReply(m) {
			th := threads[m.ThreadTS]
			if th == nil {
				th = &thread{}
				threads[m.ThreadTS] = th
			}
			th.n++
			th.last = tsTime(m.TS).Format("15:04:05")
		}
	}
	data := channelData{User: user, Channel: ch, Messages: []messageView{}}
	for _, m := range msgs {
		if !visible(m, user.ID, ch.ID) || isReply(m) {
			continue
		}
		mv := v.message(m)
		if th := threads[m.TS]; th != nil {
			mv.Replies, mv.LastReply = th.n, th.last
		}
		data.Messages = append(data.Messages, mv)
	}
	return data
}

// thread is one message and its replies as user sees them.
func (v viewer) thread(msgs []fakeslack.Message, user string, ch channelView, ts string) (threadData, bool) {
	i := slices.IndexFunc(msgs, func(m fakeslack.Message) bool {
		return m.TS == ts && visible(m, user, ch.ID) && !isReply(m)
	})
	if i < 0 {
		return threadData{}, false
	}
	data := threadData{Channel: ch, Parent: v.message(msgs[i]), Replies: []messageView{}}
	for _, m := range msgs {
		if visible(m, user, ch.ID) && isReply(m) && m.ThreadTS == ts {
			data.Replies = append(data.Replies, v.message(m))
		}
	}
	return data, true
}

// deployments are the simulated deployments, newest first.
func deployments(ds []fakecodedeploy.Deployment) []deploymentView {
	out := make([]deploymentView, 0, len(ds))
	for _, d := range slices.Backward(ds) {
		o := d.Overview
		dv := deploymentView{
			ID: d.ID, Application: d.Application, Group: d.Group, Platform: d.ComputePlatform,
			Config: d.DeploymentConfigName, Status: d.Status, StatusClass: "status-" + strings.ToLower(d.Status),
			Creator: d.Creator, Description: d.Description, Started: clock(d.CreateTime), Completed: clock(d.CompleteTime),
			Overview: o, Total: o.Pending + o.InProgress + o.Succeeded + o.Failed + o.Skipped + o.Ready,
			Stopping:     !d.StopRequestedAt.IsZero() && !fakecodedeploy.Final(d.Status),
			AutoRollback: d.StopAutoRollback, RollbackID: d.RollbackDeploymentID, RollbackOf: d.RollbackTriggeringDeploymentID,
		}
		out = append(out, dv)
	}
	return out
}

func clock(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("15:04:05")
}

// logViews are the bot's log lines, newest first.
func (v viewer) logViews(lines []logLine) []logView {
	out := make([]logView, 0, len(lines))
	for _, l := range slices.Backward(lines) {
		lv := logView{Time: clock(l.Time), Level: l.Level, Message: l.Message, Raw: l.Raw}
		if a := l.Audit; a != nil {
			lv.Audit = &auditView{
				Event: a.Event, Outcome: a.Outcome, User: "@" + v.dir.name(a.User), Deployment: a.Deployment, Detail: a.Detail,
			}
			if a.Channel != "" {
				lv.Audit.Channel = "#" + v.dir.channelName(a.Channel)
			}
		}
		out = append(out, lv)
	}
	return out
}

func (d directory) name(userID string) string {
	if n := d.users[userID]; n != "" {
		return n
	}
	return userID
}

func (d directory) channelName(id string) string {
	if n := d.channels[id]; n != "" {
		return n
	}
	return id
}
