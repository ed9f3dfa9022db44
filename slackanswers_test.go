package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

// TestLeanAnswers: slack-go still gets what the bot reads from a trimmed
// chat.postMessage answer (the channel and ts, or the error), and the
// message and its blocks are gone before it decodes them.
func TestLeanAnswers(t *testing.T) {
	var answer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	var seen string
	spy := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := leanAnswers{http.DefaultTransport}.RoundTrip(r)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			seen = string(b)
			resp.Body = io.NopCloser(strings.NewReader(seen))
		}
		return resp, err
	})
	api := slack.New("xoxb-test", slack.OptionAPIURL(srv.URL+"/"), slack.OptionHTTPClient(&http.Client{Transport: spy}))

	answer = `{"ok":true,"channel":"C0DEPLOYS","ts":"1795734000.000100","message":{"type":"message","text":"hi","blocks":[{"type":"section","block_id":"b","text":{"type":"mrkdwn","text":"` + strings.Repeat("x", 5000) + `"}}]}}`
	ch, ts, err := api.PostMessageContext(context.Background(), "C0DEPLOYS", slack.MsgOptionText("hi", false))
	if err != nil || ch != "C0DEPLOYS" || ts != "1795734000.000100" {
		t.Errorf("PostMessage = %q, %q, %v", ch, ts, err)
	}
	if strings.Contains(seen, "blocks") || len(seen) > 200 {
		t.Errorf("slack-go decoded %d bytes: %s", len(seen), seen)
	}

	answer = `{"ok":false,"error":"not_in_channel"}`
	_, _, err = api.PostMessageContext(context.Background(), "C0NOBOT", slack.MsgOptionText("hi", false))
	if !slackErrorIs(err, "not_in_channel") {
		t.Errorf("error = %v, want not_in_channel", err)
	}

	answer = `{"ok":true,"channel":"C0DEPLOYS","ts":"1795734000.000100","text":"updated","message":{"blocks":[]}}`
	if _, _, text, err := api.UpdateMessageContext(context.Background(), "C0DEPLOYS", "1795734000.000100", slack.MsgOptionText("updated", false)); err != nil || text != "updated" {
		t.Errorf("UpdateMessage = %q, %v", text, err)
	}

	answer = `not json`
	if _, _, err := api.PostMessageContext(context.Background(), "C0DEPLOYS", slack.MsgOptionText("hi", false)); err == nil {
		t.Error("an unreadable answer was accepted")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func slackErrorIs(err error, code string) bool {
	var se slack.SlackErrorResponse
	return errors.As(err, &se) && se.Err == code
}
