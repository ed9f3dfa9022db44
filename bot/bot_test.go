package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/commands"
	"github.com/stopdeploy/stopdeploy/deploy"
	"github.com/stopdeploy/stopdeploy/policy"
)

// fakeSlack records Web API calls as readable strings. Blocks are not
// visible here (slack-go encodes them when it sends); the end-to-end tests
// check them.
type fakeSlack struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeSlack) record(method, channel string, opts []slack.MsgOption) {
	_, v, _ := slack.UnsafeApplyMsgOptions("xoxb-test", channel, "https://slack.invalid/api/", opts...)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("%s %s thread=%s text=%s", method, channel, v.Get("thread_ts"), v.Get("text")))
}

func (f *fakeSlack) PostMessageContext(_ context.Context, channel string, opts ...slack.MsgOption) (string, string, error) {
	f.record("post", channel, opts)
	return channel, "1795734000.000200", nil
}

func (f *fakeSlack) UpdateMessageContext(_ context.Context, channel, ts string, opts ...slack.MsgOption) (string, string, string, error) {
	f.record("update", channel, opts)
	return channel, ts, "", nil
}

func (f *fakeSlack) PostEphemeralContext(_ context.Context, channel, user string, opts ...slack.MsgOption) (string, error) {
	f.record("ephemeral:"+user, channel, opts)
	return "1795734000.000300", nil
}

func (f *fakeSlack) matching(prefix, text string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) && strings.Contains(c, text) {
			out = append(out, c)
		}
	}
	return out
}

// everyone is a policy under which anyone may request and confirm: a
// member of S0EVERYONE, which everyone is.
var everyone = policy.Flat(nil, []string{"S0EVERYONE"}, nil, false)

func memberOfAll(context.Context, string, string) (bool, error) { return true, nil }

// testKey signs the values clickOn puts on buttons.
var testKey = commands.DeriveKey("xapp-1-unit-test")

var testPlace = deploy.Place{Account: "default", Region: "us-east-1"}

// fakeStopper is a function-type fake of the stopper, in one place.
type fakeStopper struct {
	get  func(ctx context.Context, id string) (deploy.Deployment, error)
	stop func(ctx context.Context, id string, rollback bool) (deploy.StopResult, error)
}

func (f fakeStopper) Get(ctx context.Context, _ deploy.Place, id string) (deploy.Deployment, error) {
	d, err := f.get(ctx, id)
	d.Place = testPlace
	return d, err
}

func (f fakeStopper) Stop(ctx context.Context, _ deploy.Place, id string, rollback bool, _ string) (deploy.StopResult, error) {
	return f.stop(ctx, id, rollback)
}

func (f fakeStopper) Find(ctx context.Context, id string) ([]deploy.Deployment, []deploy.PlaceFailure) {
	d, err := f.Get(ctx, testPlace, id)
	if err != nil {
		return nil, []deploy.PlaceFailure{{Place: testPlace, Reason: err.Error()}}
	}
	return []deploy.Deployment{d}, nil
}

func (fakeStopper) Places() []deploy.Place { return []deploy.Place{testPlace} }

func (fakeStopper) Active(context.Context, string, string) ([]deploy.Deployment, []deploy.PlaceFailure) {
	return nil, nil
}

// clickOn builds the interaction Slack sends when user presses action on a
// fresh confirmation of c, signed with testKey under the everyone policy.
func clickOn(c commands.Confirmation, user, action string) slack.InteractionCallback {
	if c.Account == "" {
		c.Account, c.Region = testPlace.Account, testPlace.Region
	}
	if c.Rule == "" {
		c.Rule = everyone.Rules[0].Name
	}
	_, blocks := confirmationMessage(testKey, deploy.Deployment{ID: c.DeploymentID, Application: "checkout", Group: "production"}, c, &everyone.Rules[0])
	cb := slack.InteractionCallback{Type: slack.InteractionTypeBlockActions, User: slack.User{ID: user}}
	cb.Channel.ID = "C0DEPLOYS"
	cb.Container = slack.Container{ChannelID: "C0DEPLOYS", MessageTs: "1795734000.000100"}
	cb.Message.Blocks = slack.Blocks{BlockSet: blocks}
	cb.ActionCallback.BlockActions = []*slack.BlockAction{{ActionID: action, BlockID: blockActions, Value: testKey.Encode(c)}}
	return cb
}

func newTestBot(t *testing.T, cfg Config, s stopper, now func() time.Time) (*Bot, *fakeSlack, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	sl := &fakeSlack{}
	if cfg.FollowInterval == 0 {
		cfg.FollowInterval, cfg.FollowTimeout = time.Millisecond, time.Minute
	}
	cfg.SigningKey = testKey
	b := New(cfg, Deps{Slack: sl, Policy: everyone, Members: memberOfAll, Deploy: s, Log: zerolog.New(zerolog.SyncWriter(&logs)), Now: now})
	return b, sl, &logs
}

func TestClaims_FirstWinsUntilLongAfterExpiry(t *testing.T) {
	now := time.Unix(1795734000, 0)
	c := claims{now: func() time.Time { return now }}
	expires := now.Add(10 * time.Minute)
	if _, ok := c.claim("C1/1.1", expires, "U1", actionStop); !ok {
		t.Fatal("first claim lost")
	}
	if won, ok := c.claim("C1/1.1", expires, "U2", actionCancel); ok || won.user != "U1" || won.action != actionStop {
		t.Fatalf("second claim: won %t, winner %+v; want the first click named as the winner", ok, won)
	}
	if _, ok := c.claim("C1/2.2", expires, "U2", actionStop); !ok {
		t.Fatal("a claim on another confirmation lost")
	}
	now = expires.Add(claimMargin + time.Second)
	c.claim("C1/3.3", now.Add(time.Minute), "U1", actionStop)
	if n := c.len(); n != 1 {
		t.Errorf("claims kept = %d after the first two expired, want 1", n)
	}
}

func TestHandleStop_ConcurrentClicksStopOnce(t *testing.T) {
	var (
		mu    sync.Mutex
		stops int
	)
	s := fakeStopper{
		stop: func(context.Context, string, bool) (deploy.StopResult, error) {
			mu.Lock()
			stops++
			mu.Unlock()
			return deploy.StopResult{Status: "Pending"}, nil
		},
		get: func(_ context.Context, id string) (deploy.Deployment, error) {
			return deploy.Deployment{ID: id, Status: deploy.StatusStopped}, nil
		},
	}
	now := time.Unix(1795734000, 0)
	b, sl, _ := newTestBot(t, Config{}, s, func() time.Time { return now })
	c := commands.Confirmation{DeploymentID: "d-LGUMS25CC", RequesterID: "U0ALICE", ChannelID: "C0DEPLOYS", ExpiresAt: now.Add(time.Minute)}

	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { b.handleInteraction(ctx, ctx, clickOn(c, fmt.Sprintf("U0USER%d", i), actionStop), nil) })
	}
	wg.Wait()
	b.follows.Wait()
	b.reports.Wait()
	if stops != 1 {
		t.Errorf("StopDeployment calls = %d for 20 clicks, want 1", stops)
	}
	if got := sl.matching("post C0DEPLOYS thread=1795734000.000100", "CodeDeploy answered *Pending*"); len(got) != 1 {
		t.Errorf("result replies = %d, want 1", len(got))
	}
}

func TestHandleStop_ExpiredCallsNothing(t *testing.T) {
	now := time.Unix(1795734000, 0)
	s := fakeStopper{stop: func(context.Context, string, bool) (deploy.StopResult, error) {
		t.Error("StopDeployment called after expiry")
		return deploy.StopResult{}, nil
	}}
	b, sl, logs := newTestBot(t, Config{}, s, func() time.Time { return now })
	c := commands.Confirmation{DeploymentID: "d-LGUMS25CC", RequesterID: "U0ALICE", ChannelID: "C0DEPLOYS", ExpiresAt: now}
	b.handleInteraction(context.Background(), context.Background(), clickOn(c, "U0BOB", actionStop), nil)
	b.reports.Wait()
	if got := sl.matching("update C0DEPLOYS", ""); len(got) != 1 {
		t.Errorf("updates = %q, want one", got)
	}
	if got := sl.matching("post C0DEPLOYS thread=1795734000.000100", "This confirmation expired"); len(got) != 1 {
		t.Errorf("thread replies = %q, want the expiry", sl.calls)
	}
	if !strings.Contains(logs.String(), `"event":"expired"`) {
		t.Errorf("no expired audit line in %s", logs)
	}
}

func TestFollow_SaysSoWhenTheBotShutsDown(t *testing.T) {
	reading := make(chan struct{}, 1)
	s := fakeStopper{get: func(_ context.Context, id string) (deploy.Deployment, error) {
		select {
		case reading <- struct{}{}:
		default:
		}
		return deploy.Deployment{ID: id, Status: deploy.StatusInProgress}, nil
	}}
	b, sl, logs := newTestBot(t, Config{}, s, time.Now)
	runCtx, shutdown := context.WithCancel(context.Background())
	c := click{conf: commands.Confirmation{DeploymentID: "d-LGUMS25CC"}, channel: "C0DEPLOYS", ts: "1795734000.000100", log: b.log}
	done := make(chan struct{})
	go func() {
		b.follow(runCtx, c, b.reporterFor(c), nil)
		close(done)
	}()
	<-reading
	shutdown()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end after shutdown")
	}
	b.reports.Wait()
	if got := sl.matching("post C0DEPLOYS thread=1795734000.000100", "The bot is shutting down and stopped following `d-LGUMS25CC` (last seen *InProgress*)"); len(got) != 1 {
		t.Errorf("shutdown notes = %q", sl.calls)
	}
	if !strings.Contains(logs.String(), `"outcome":"follow_interrupted"`) {
		t.Errorf("no follow_interrupted audit line in %s", logs)
	}
}

func TestSpawn_RecoversFromPanics(t *testing.T) {
	b, sl, logs := newTestBot(t, Config{}, fakeStopper{}, time.Now)
	to := recipient{channel: "C0DEPLOYS", user: "U0ALICE"}
	b.start(context.Background(), job{"test", func(context.Context) { panic("boom") }, to})
	b.work.Wait()
	if !strings.Contains(logs.String(), `"panic":"boom"`) || !strings.Contains(logs.String(), "handler panicked") {
		t.Errorf("panic not logged: %s", logs)
	}
	if got := sl.matching("ephemeral:U0ALICE C0DEPLOYS", "this is a bug"); len(got) != 1 {
		t.Errorf("the user was not told: %q", sl.calls)
	}
}

func TestCeilSecond(t *testing.T) {
	whole := time.Unix(1795734000, 0)
	for _, tt := range []struct{ in, want time.Time }{
		{whole, whole},
		{whole.Add(time.Nanosecond), whole.Add(time.Second)},
		{whole.Add(999 * time.Millisecond), whole.Add(time.Second)},
	} {
		if got := ceilSecond(tt.in); !got.Equal(tt.want) {
			t.Errorf("ceilSecond(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestNew_GivesZeroDurationsTheirDefaults(t *testing.T) {
	b := New(Config{}, Deps{Slack: &fakeSlack{}, Policy: everyone, Members: memberOfAll, Deploy: fakeStopper{}, Log: zerolog.Nop()})
	for name, got := range map[string]time.Duration{
		"ConfirmTimeout": b.cfg.ConfirmTimeout, "FollowInterval": b.cfg.FollowInterval, "FollowTimeout": b.cfg.FollowTimeout,
		"ShutdownGrace": b.cfg.ShutdownGrace, "AWSCallTimeout": b.cfg.AWSCallTimeout,
	} {
		if got <= 0 {
			t.Errorf("%s = %v after New, want its default", name, got)
		}
	}
	// The follow-up's ticker panics on a zero interval.
	c := click{conf: commands.Confirmation{DeploymentID: "d-LGUMS25CC"}, channel: "C0DEPLOYS", ts: "1795734000.000100", log: b.log}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.follow(ctx, c, b.reporterFor(c), nil)
	b.reports.Wait()
}

func TestFollow_APanicIsRecovered(t *testing.T) {
	s := fakeStopper{get: func(context.Context, string) (deploy.Deployment, error) { panic("boom in GetDeployment") }}
	b, _, logs := newTestBot(t, Config{}, s, time.Now)
	c := click{conf: commands.Confirmation{DeploymentID: "d-LGUMS25CC"}, channel: "C0DEPLOYS", ts: "1795734000.000100", log: b.log}
	b.startFollow(context.Background(), c, b.reporterFor(c), nil)
	b.follows.Wait() // the process is still here
	if !strings.Contains(logs.String(), `"goroutine":"follow-up"`) || !strings.Contains(logs.String(), "boom in GetDeployment") {
		t.Errorf("panic not logged: %s", logs)
	}
}

func TestReporter_APanicIsRecovered(t *testing.T) {
	b, _, logs := newTestBot(t, Config{}, fakeStopper{}, time.Now)
	b.reportSlack = &panickySlack{}
	c := click{channel: "C0DEPLOYS", ts: "1795734000.000100", log: b.log}
	b.reporterFor(c).reply("hello")
	b.reports.Wait()
	if !strings.Contains(logs.String(), `"goroutine":"report"`) {
		t.Errorf("panic not logged: %s", logs)
	}
}

type panickySlack struct{ fakeSlack }

func (*panickySlack) PostMessageContext(context.Context, string, ...slack.MsgOption) (string, string, error) {
	panic("boom in chat.postMessage")
}

func TestAdmission_CapsTotalAndPerUserAndWarnsOnceAMinute(t *testing.T) {
	now := time.Unix(1795734000, 0)
	a := newAdmission(3, 2, func() time.Time { return now })
	var leaves []func()
	for _, u := range []string{"U1", "U1", "U2"} {
		leave, _ := a.enter(u)
		if leave == nil {
			t.Fatalf("%s refused under the caps", u)
		}
		leaves = append(leaves, leave)
	}
	if leave, warn := a.enter("U3"); leave != nil || !warn {
		t.Errorf("over the total cap: admitted %t, warn %t; want refused with a warning", leave != nil, warn)
	}
	if _, warn := a.enter("U3"); warn {
		t.Error("warned twice within a minute")
	}
	leaves[2]()
	if leave, _ := a.enter("U1"); leave != nil {
		t.Error("U1 admitted over its share")
	}
	if leave, _ := a.enter("U3"); leave == nil {
		t.Error("U3 refused although a slot is free")
	}
	now = now.Add(slowDownEvery)
	leaves[0]()
	leaves[1]()
	if leave, _ := a.enter("U1"); leave == nil {
		t.Error("U1 refused after its handlers ended")
	}
}

// A press is decoded without its message's blocks; they are decoded, the
// same as slack-go decodes them, only when the card is rewritten.
func TestDecodeInteraction_BlocksLater(t *testing.T) {
	c := commands.Confirmation{DeploymentID: "d-LGUMS25CC", ExpiresAt: time.Now().Add(time.Hour)}
	want := clickOn(c, "U0BOB", actionStop)
	want.Message.Text = "Stop d-LGUMS25CC?"
	payload, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var p interaction
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	cb, raw := p.callback()
	if len(cb.Message.Blocks.BlockSet) != 0 || raw == nil {
		t.Fatalf("decoded %d blocks and kept %d bytes, want none decoded and the raw blocks kept", len(cb.Message.Blocks.BlockSet), len(raw))
	}
	if cb.User.ID != "U0BOB" || cb.Message.Text != want.Message.Text || cb.Container.MessageTs != want.Container.MessageTs ||
		len(cb.ActionCallback.BlockActions) != 1 || cb.ActionCallback.BlockActions[0].Value != want.ActionCallback.BlockActions[0].Value {
		t.Errorf("decoded %+v, want the rest of the press", cb)
	}
	later := newCard(nil, raw)
	if !later.hasButtons() {
		t.Error("the card's buttons were not found in its raw blocks")
	}
	got, _ := json.Marshal(later.blocks())
	wantBlocks, _ := json.Marshal(want.Message.Blocks.BlockSet)
	if string(got) != string(wantBlocks) {
		t.Errorf("blocks decoded later = %s, want %s", got, wantBlocks)
	}
	noButtons := newCard(nil, []byte(`[{"type":"section","block_id":"x","text":{"type":"mrkdwn","text":"done"}}]`))
	if noButtons.hasButtons() {
		t.Error("a card without its actions block has buttons")
	}
	var none *card
	if none.hasButtons() || none.blocks() != nil {
		t.Error("a click without a card has buttons or blocks")
	}
}
