package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// leanAnswers trims the answers of chat.postMessage and chat.update to the
// fields slack-go returns to the bot (ok, error, warning, channel, ts, text,
// response_metadata) before slack-go decodes them. Slack answers with the
// whole message, blocks included, and decoding those into slack-go's types
// was about a third of the bot's CPU through a burst (README, Performance),
// for fields the bot never reads.
type leanAnswers struct{ next http.RoundTripper }

// leanMethods are the Web API methods whose answers are trimmed.
var leanMethods = []string{"/chat.postMessage", "/chat.update"}

// maxLeanAnswer is the largest answer trimmed; a larger one is passed on
// as it is (slack-go then decodes it in full).
const maxLeanAnswer = 1 << 20

func (l leanAnswers) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusOK || !lean(r.URL.Path) {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLeanAnswer+1))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var a struct {
		OK               bool            `json:"ok"`
		Error            string          `json:"error,omitempty"`
		Warning          string          `json:"warning,omitempty"`
		Channel          string          `json:"channel,omitempty"`
		TS               string          `json:"ts,omitempty"`
		Text             string          `json:"text,omitempty"`
		ResponseMetadata json.RawMessage `json:"response_metadata,omitempty"`
	}
	if len(body) > maxLeanAnswer || json.Unmarshal(body, &a) != nil {
		resp.Body = io.NopCloser(bytes.NewReader(body)) // not ours to judge: as it came
		return resp, nil
	}
	small, err := json.Marshal(a)
	if err != nil {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	}
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(small)), int64(len(small))
	resp.Header.Del("Content-Length")
	return resp, nil
}

func lean(path string) bool {
	for _, m := range leanMethods {
		if strings.HasSuffix(path, m) {
			return true
		}
	}
	return false
}
