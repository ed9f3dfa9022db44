package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// openSocket opens one more Socket Mode connection on w's fake Slack, as
// a client other than the bot, and returns it with its index.
func openSocket(b *testing.B, w *world) (*websocket.Conn, int) {
	b.Helper()
	req, _ := http.NewRequest(http.MethodPost, w.slack.APIURL()+"apps.connections.open", nil)
	req.Header.Set("Authorization", "Bearer "+appToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	var open struct {
		OK  bool   `json:"ok"`
		URL string `json:"url"`
	}
	err = json.NewDecoder(resp.Body).Decode(&open)
	resp.Body.Close()
	if err != nil || !open.OK {
		b.Fatalf("apps.connections.open: %v %+v", err, open)
	}
	conn, _, err := websocket.DefaultDialer.Dial(open.URL, http.Header{"Origin": {"https://api.slack.com"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	conns := w.slack.Connections()
	return conn, conns[len(conns)-1].Index
}

// floorBot is the loopback floor of the bot's two paths for one person: a
// client in the test process that does only their wire work, with the
// standard library and gorilla/websocket. A command: ack, GetDeployment,
// chat.postMessage of a card with a Stop button. A click: ack,
// StopDeployment, a thread reply. No policy, no AWS SDK (a SigV4 header of
// the right shape, unsigned), no slack-go. BenchmarkEndToEnd measures it
// exactly as it measures the bot, so the ratio is what the bot adds.
func floorBot(b *testing.B, w *world) int {
	conn, index := openSocket(b, w)
	client := &http.Client{}
	call := func(req *http.Request) {
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		_, _ = new(bytes.Buffer).ReadFrom(resp.Body)
		resp.Body.Close()
	}
	codedeploy := func(op, id string) {
		body, _ := json.Marshal(map[string]string{"deploymentId": id})
		req, _ := http.NewRequest(http.MethodPost, w.cd.URL(), bytes.NewReader(body))
		now := time.Now().UTC()
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "CodeDeploy_20141006."+op)
		req.Header.Set("X-Amz-Date", now.Format("20060102T150405Z"))
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAE2ETESTKEY/"+now.Format("20060102")+
			"/us-east-1/codedeploy/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
		call(req)
	}
	post := func(form url.Values) {
		req, _ := http.NewRequest(http.MethodPost, w.slack.APIURL()+"chat.postMessage", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+botToken)
		call(req)
	}
	go func() {
		for {
			_, frame, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var env struct {
				EnvelopeID string `json:"envelope_id"`
				Type       string `json:"type"`
				Payload    struct {
					Text      string `json:"text"`
					ChannelID string `json:"channel_id"`
					Channel   struct {
						ID string `json:"id"`
					} `json:"channel"`
					Message struct {
						TS string `json:"ts"`
					} `json:"message"`
					Actions []struct {
						Value string `json:"value"`
					} `json:"actions"`
				} `json:"payload"`
			}
			if json.Unmarshal(frame, &env) != nil || env.EnvelopeID == "" {
				continue
			}
			ack, _ := json.Marshal(map[string]string{"envelope_id": env.EnvelopeID})
			_ = conn.WriteMessage(websocket.TextMessage, ack)
			p := env.Payload
			switch env.Type {
			case "slash_commands":
				id, _, _ := strings.Cut(p.Text, " ")
				codedeploy("GetDeployment", id)
				blocks := `[{"type":"section","text":{"type":"mrkdwn","text":"Stop *` + id + `*?"}},` +
					`{"type":"actions","elements":[{"type":"button","action_id":"stop","text":{"type":"plain_text","text":"Stop"},"value":"` + id + `"}]}]`
				post(url.Values{"channel": {p.ChannelID}, "text": {"Stop " + id + "?"}, "blocks": {blocks}})
			case "interactive":
				if len(p.Actions) == 0 {
					continue
				}
				codedeploy("StopDeployment", p.Actions[0].Value)
				post(url.Values{"channel": {p.Channel.ID}, "thread_ts": {p.Message.TS}, "text": {"CodeDeploy answered"}})
			}
		}
	}()
	return index
}
