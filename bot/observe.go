package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/deploy"
)

// Observer is told what the bot does, for metrics. It must be fast and safe
// for concurrent use.
type Observer interface {
	Command(outcome string)              // each slash command, once, by how it ended
	Stop(result, account, region string) // each StopDeployment call: its status, or "error", and where
	Refused(reason string)               // each refusal, of a command or a click
	Acked(took time.Duration)            // each envelope acknowledgement
	Connection(up bool)                  // the Socket Mode connection came up or went down
	APIError(api, method, code string)   // each failed Slack ("slack") or CodeDeploy ("aws") call
	StoreError()                         // a state-table call failed (not a lost conditional write)
	StoreOK()                            // a state-table call worked
}

type noObserver struct{}

func (noObserver) Command(string)                  {}
func (noObserver) Stop(string, string, string)     {}
func (noObserver) Refused(string)                  {}
func (noObserver) Acked(time.Duration)             {}
func (noObserver) Connection(bool)                 {}
func (noObserver) APIError(string, string, string) {}
func (noObserver) StoreError()                     {}
func (noObserver) StoreOK()                        {}

// observedSlack reports every failed Slack call to the Observer, so no call
// site can forget to, and gives the handler's slot up while a call waits
// (gate.go).
type observedSlack struct {
	slackAPI
	obs Observer
}

func (s observedSlack) PostMessageContext(ctx context.Context, channel string, opts ...slack.MsgOption) (string, string, error) {
	defer waiting(ctx)()
	ch, ts, err := s.slackAPI.PostMessageContext(ctx, channel, opts...)
	method := "chat.postMessage"
	if channel == "" {
		method = "response_url" // the flow posts to a response_url with no channel
	}
	s.failed(method, err)
	return ch, ts, err
}

func (s observedSlack) UpdateMessageContext(ctx context.Context, channel, ts string, opts ...slack.MsgOption) (string, string, string, error) {
	defer waiting(ctx)()
	ch, newTS, text, err := s.slackAPI.UpdateMessageContext(ctx, channel, ts, opts...)
	s.failed("chat.update", err)
	return ch, newTS, text, err
}

func (s observedSlack) PostEphemeralContext(ctx context.Context, channel, user string, opts ...slack.MsgOption) (string, error) {
	defer waiting(ctx)()
	ts, err := s.slackAPI.PostEphemeralContext(ctx, channel, user, opts...)
	s.failed("chat.postEphemeral", err)
	return ts, err
}

func (s observedSlack) failed(method string, err error) {
	if err != nil {
		s.obs.APIError("slack", method, slackErrorCode(err))
	}
}

// slackErrorCode names a Slack failure with a short, bounded label.
func slackErrorCode(err error) string {
	var (
		se   slack.SlackErrorResponse
		rate *slack.RateLimitedError
		sc   slack.StatusCodeError
	)
	switch {
	case errors.As(err, &se):
		return se.Err
	case errors.As(err, &rate):
		return "ratelimited"
	case errors.As(err, &sc):
		return fmt.Sprintf("http_%d", sc.Code)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "network"
}

// observedStopper reports every failed CodeDeploy call to the Observer.
type observedStopper struct {
	stopper
	obs Observer
}

func (s observedStopper) Get(ctx context.Context, place deploy.Place, id string) (deploy.Deployment, error) {
	defer waiting(ctx)()
	d, err := s.stopper.Get(ctx, place, id)
	s.failed("GetDeployment", err)
	return d, err
}

func (s observedStopper) Stop(ctx context.Context, place deploy.Place, id string, rollback bool, userID string) (deploy.StopResult, error) {
	defer waiting(ctx)()
	r, err := s.stopper.Stop(ctx, place, id, rollback, userID)
	s.failed("StopDeployment", err)
	return r, err
}

func (s observedStopper) Find(ctx context.Context, id string) ([]deploy.Deployment, []deploy.PlaceFailure) {
	defer waiting(ctx)()
	found, failed := s.stopper.Find(ctx, id)
	for _, f := range failed {
		if f.Err != nil { // a nil *Error in an error would not be nil
			s.failed("GetDeployment", f.Err)
		}
	}
	return found, failed
}

func (s observedStopper) Active(ctx context.Context, application, group string) ([]deploy.Deployment, []deploy.PlaceFailure) {
	defer waiting(ctx)()
	active, failed := s.stopper.Active(ctx, application, group)
	for _, f := range failed {
		if f.Err != nil {
			s.failed("ListDeployments", f.Err)
		}
	}
	return active, failed
}

func (s observedStopper) failed(op string, err error) {
	if err == nil {
		return
	}
	code := "error"
	var de *deploy.Error
	if errors.As(err, &de) {
		code = de.Kind.String()
	}
	s.obs.APIError("aws", op, code)
}
