package sandbox

import (
	"encoding/json"
	"html/template"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

var testDir = directory{
	users:    map[string]string{"U0ALICE": "alice", "UBOTSTOPD": "stopdeploy"},
	channels: map[string]string{"C0DEPLOYS": "deploys"},
	groups:   map[string]string{"S0ONCALL": "oncall"},
}

func TestMrkdwn(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string // substrings of the HTML
		not  []string // must not appear
	}{
		{"bold", "*Status*\nInProgress", []string{"<b>Status</b><br>InProgress"}, nil},
		{"italic", "it is _gone_ now", []string{"it is <i>gone</i> now"}, nil},
		{"strike", "~old~ new", []string{"<s>old</s> new"}, nil},
		{"nested", "*bold _and italic_*", []string{"<b>bold <i>and italic</i></b>"}, nil},
		{"no marks inside words", "stopdeploy_request_id and 2*3*4", []string{"stopdeploy_request_id and 2*3*4"}, []string{"<i>", "<b>"}},
		{"no marks around spaces", "a * b * c", []string{"a * b * c"}, []string{"<b>"}},
		{"unclosed", "*not bold", []string{"*not bold"}, []string{"<b>"}},
		{"code", "deployment `d-LGUMS25CC`.", []string{`deployment <code class="sk-code">d-LGUMS25CC</code>.`}, nil},
		{"no marks in code", "`*x* _y_`", []string{`<code class="sk-code">*x* _y_</code>`}, []string{"<b>", "<i>"}},
		{"bold around code", "*see `x`*", []string{`<b>see <code class="sk-code">x</code></b>`}, nil},
		{"pre", "```line 1\n<b> &amp; more```", []string{"<code class=\"sk-pre\">line 1\n&lt;b&gt; &amp; more</code>"}, []string{"<br>"}},
		{"link with label", "<https://console.aws.amazon.com/codesuite?a=1&amp;b=2|the console>",
			[]string{`<a class="sk-link" href="https://console.aws.amazon.com/codesuite?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">the console</a>`}, nil},
		{"bare link", "<https://example.com/x>", []string{`href="https://example.com/x"`, `>https://example.com/x</a>`}, nil},
		{"mailto", "<mailto:oncall@example.com|mail us>", []string{`href="mailto:oncall@example.com"`, ">mail us</a>"}, nil},
		{"javascript link is text", "<javascript:alert(1)|click>", []string{"&lt;javascript:alert(1)|click&gt;"}, []string{"<a"}},
		{"quote in a link", `<https://x.example/"onmouseover="alert(1)|x>`, []string{`href="https://x.example/&#34;onmouseover=&#34;alert(1)"`}, []string{`"onmouseover`}},
		{"mention", "<@U0ALICE> asks", []string{`<span class="sk-mention" data-user="U0ALICE">@alice</span> asks`}, []string{"U0ALICE&gt;"}},
		{"mention of the bot", "<@UBOTSTOPD>", []string{">@stopdeploy</span>"}, nil},
		{"unknown mention", "<@U0NOBODY>", []string{">@U0NOBODY</span>"}, nil},
		{"mention with label", "<@U0NEW|newbie>", []string{">@newbie</span>"}, nil},
		{"channel", "in <#C0DEPLOYS>", []string{`<a class="sk-channel-link" href="?channel=C0DEPLOYS" data-channel="C0DEPLOYS">#deploys</a>`}, nil},
		{"channel with label", "<#C0OTHER|other>", []string{">#other</a>"}, nil},
		{"user group", "<!subteam^S0ONCALL> and <!subteam^S0X|@ops>", []string{">@oncall</span>", ">@ops</span>"}, nil},
		{"here", "<!here>", []string{`<span class="sk-mention">@here</span>`}, nil},
		{"date", "before <!date^1764198000^{date_short_pretty} {time}|2025-11-26 23:00 UTC>.",
			[]string{`<time class="sk-date" datetime="2025-11-26T23:00:00Z"`, `>2025-11-26 23:00 UTC</time>.`}, []string{"date^", "{time}"}},
		{"emoji", ":octagonal_sign: Stop :hourglass_flowing_sand:", []string{`<span class="sk-emoji" title=":octagonal_sign:">🛑</span> Stop`, "⏳"}, []string{":octagonal_sign: Stop"}},
		{"every emoji the bot uses", ":white_check_mark: :x: :grey_question: :no_entry_sign: :hourglass:", []string{"✅", "❌", "❔", "🚫", "⌛"}, nil},
		{"unknown emoji", "at 15:04:05 :not_an_emoji:", []string{"at 15:04:05 :not_an_emoji:"}, nil},
		{"entities", "AT&amp;T &lt;b&gt;", []string{"AT&amp;T &lt;b&gt;"}, []string{"<b>", "&amp;amp;"}},
		{"raw script", "<script>alert(1)</script>", []string{"&lt;script&gt;alert(1)&lt;/script&gt;"}, []string{"<script"}},
		{"escaped script", "&lt;script&gt;alert(1)&lt;/script&gt;", []string{"&lt;script&gt;alert(1)&lt;/script&gt;"}, []string{"<script"}},
		{"html in bold", "*<img src=x onerror=alert(1)>*", []string{"&lt;img src=x onerror=alert(1)&gt;"}, []string{"<img"}},
		{"atom markers in the text", "<@U0ALICE> \uE0000\uE001", []string{"@alice</span> \uFFFD0\uFFFD"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(testDir.mrkdwn(tc.in))
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("mrkdwn(%q) =\n%s\nwant it to contain\n%s", tc.in, got, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("mrkdwn(%q) =\n%s\nwant no %q", tc.in, got, n)
				}
			}
		})
	}
}

// renderBlocks renders Block Kit JSON with the page's own templates.
func renderBlocks(t *testing.T, raw string) string {
	t.Helper()
	tmpl, err := template.ParseFS(webFS, "web/*.html")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := testDir.blocks(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := tmpl.ExecuteTemplate(&b, "blocks", blocks); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestBlocks(t *testing.T) {
	// The confirmation as bot/messages.go builds it, serialized by slack-go.
	confirmation, err := json.Marshal([]slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, ":octagonal_sign: <@U0ALICE> asks to stop deployment `d-LGUMS25CC`.", false, false),
			nil, nil, slack.SectionBlockOptionBlockID("stopdeploy_request")),
		slack.NewSectionBlock(nil, []*slack.TextBlockObject{
			slack.NewTextBlockObject(slack.MarkdownType, "*Application*\ncheckout", false, false),
			slack.NewTextBlockObject(slack.MarkdownType, "*Status*\nInProgress", false, false),
		}, nil, slack.SectionBlockOptionBlockID("stopdeploy_deployment")),
		slack.NewContextBlock("stopdeploy_expiry", slack.NewTextBlockObject(slack.MarkdownType, "Confirm before <!date^1764198000^{time}|23:00 UTC>.", false, false)),
		slack.NewActionBlock("stopdeploy_actions",
			slack.NewButtonBlockElement("stop", "v1.xyz", slack.NewTextBlockObject(slack.PlainTextType, "Stop and roll back", false, false)).
				WithStyle(slack.StyleDanger).
				WithConfirm(slack.NewConfirmationBlockObject(
					slack.NewTextBlockObject(slack.PlainTextType, "Stop d-LGUMS25CC?", false, false),
					slack.NewTextBlockObject(slack.PlainTextType, "CodeDeploy will stop d-LGUMS25CC (checkout / production).", false, false),
					slack.NewTextBlockObject(slack.PlainTextType, "Stop it", false, false),
					slack.NewTextBlockObject(slack.PlainTextType, "Keep it running", false, false),
				).WithStyle(slack.StyleDanger)),
			slack.NewButtonBlockElement("cancel", "v1.xyz", slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false)),
		),
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		json string
		want []string
		not  []string
	}{
		{"section text", `[{"type":"section","block_id":"b1","text":{"type":"mrkdwn","text":"*hi* <@U0ALICE>"}}]`,
			[]string{`<div class="sk-section" data-block-id="b1">`, `<div class="sk-text"><b>hi</b> <span class="sk-mention" data-user="U0ALICE">@alice</span></div>`}, nil},
		{"section plain text", `[{"type":"section","text":{"type":"plain_text","text":"*not bold* :tada:","emoji":true}}]`,
			[]string{"*not bold* <span", "🎉"}, []string{"<b>"}},
		{"plain text without emoji", `[{"type":"section","text":{"type":"plain_text","text":":tada:","emoji":false}}]`,
			[]string{":tada:"}, []string{"🎉"}},
		{"section fields", `[{"type":"section","fields":[{"type":"mrkdwn","text":"*Application*\ncheckout"},{"type":"plain_text","text":"Group"}]}]`,
			[]string{`<div class="sk-fields"><div class="sk-field"><b>Application</b><br>checkout</div><div class="sk-field">Group</div></div>`}, nil},
		{"section accessory", `[{"type":"section","block_id":"b2","text":{"type":"mrkdwn","text":"x"},"accessory":{"type":"button","action_id":"go","text":{"type":"plain_text","text":"Go"}}}]`,
			[]string{`<div class="sk-accessory">`, `data-action-id="go" data-block-id="b2">Go</button>`}, nil},
		{"context", `[{"type":"context","block_id":"c","elements":[{"type":"mrkdwn","text":"_small_"},{"type":"plain_text","text":"words"},{"type":"image","image_url":"https://example.com/x.png","alt_text":"a chart"}]}]`,
			[]string{`<div class="sk-context" data-block-id="c">`, "<i>small</i>", ">words</span>", "a chart"}, []string{"<img", "example.com"}},
		{"divider", `[{"type":"divider"}]`, []string{`<hr class="sk-divider">`}, nil},
		{"header", `[{"type":"header","text":{"type":"plain_text","text":"Deploys <today>"}}]`,
			[]string{`<h3 class="sk-header"`, "Deploys &lt;today&gt;</h3>"}, nil},
		{"actions and styles", `[{"type":"actions","block_id":"a","elements":[
			{"type":"button","action_id":"ok","text":{"type":"plain_text","text":"OK"},"style":"primary"},
			{"type":"button","action_id":"no","text":{"type":"plain_text","text":"No"},"style":"danger"},
			{"type":"button","action_id":"meh","text":{"type":"plain_text","text":"Meh"}},
			{"type":"button","action_id":"x","text":{"type":"plain_text","text":"X"},"style":"evil\" onclick=\"alert(1)"}]}]`,
			[]string{`<div class="sk-actions" data-block-id="a">`,
				`<button type="button" class="sk-button sk-primary" data-action-id="ok" data-block-id="a">OK</button>`,
				`<button type="button" class="sk-button sk-danger" data-action-id="no" data-block-id="a">No</button>`,
				`<button type="button" class="sk-button" data-action-id="meh" data-block-id="a">Meh</button>`,
				`<button type="button" class="sk-button" data-action-id="x" data-block-id="a">X</button>`},
			[]string{"onclick", "sk-confirm"}},
		{"link button", `[{"type":"actions","elements":[{"type":"button","action_id":"l","text":{"type":"plain_text","text":"Console"},"url":"https://console.aws.amazon.com/"},{"type":"button","action_id":"j","text":{"type":"plain_text","text":"Bad"},"url":"javascript:alert(1)"}]}]`,
			[]string{`<a class="sk-button" href="https://console.aws.amazon.com/" target="_blank" rel="noopener noreferrer">Console</a>`, `data-action-id="j"`},
			[]string{"javascript:"}},
		{"button label is escaped", `[{"type":"actions","elements":[{"type":"button","action_id":"<b>","text":{"type":"plain_text","text":"<img src=x onerror=alert(1)>"}}]}]`,
			[]string{`data-action-id="&lt;b&gt;"`, "&lt;img src=x onerror=alert(1)&gt;</button>"}, []string{"<img"}},
		{"unknown block", `[{"type":"video","title":{"type":"plain_text","text":"x"}}]`, []string{"[unsupported block: video]"}, nil},
		{"the bot's confirmation", string(confirmation), []string{
			`<div class="sk-section" data-block-id="stopdeploy_request">`,
			`<div class="sk-text"><span class="sk-emoji" title=":octagonal_sign:">🛑</span> <span class="sk-mention" data-user="U0ALICE">@alice</span> asks to stop deployment <code class="sk-code">d-LGUMS25CC</code>.</div>`,
			`<div class="sk-field"><b>Status</b><br>InProgress</div>`,
			`<div class="sk-context" data-block-id="stopdeploy_expiry"><span class="sk-element sk-text">Confirm before <time class="sk-date"`,
			`<button type="button" class="sk-button sk-danger" data-action-id="stop" data-block-id="stopdeploy_actions">Stop and roll back</button>`,
			`<template class="sk-confirm" data-style="danger"><span class="sk-confirm-title">Stop d-LGUMS25CC?</span><div class="sk-confirm-text">CodeDeploy will stop d-LGUMS25CC (checkout / production).</div><span class="sk-confirm-ok">Stop it</span><span class="sk-confirm-deny">Keep it running</span></template>`,
			`<button type="button" class="sk-button" data-action-id="cancel" data-block-id="stopdeploy_actions">Cancel</button>`,
		}, []string{"v1.xyz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := renderBlocks(t, tc.json)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("rendered\n%s\nwant it to contain\n%s", got, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("rendered\n%s\nwant no %q", got, n)
				}
			}
		})
	}
}

func TestBlocksBadJSON(t *testing.T) {
	if _, err := testDir.blocks(json.RawMessage(`{"not":"a list"}`)); err == nil {
		t.Error("blocks accepted an object")
	}
}
