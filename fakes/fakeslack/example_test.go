package fakeslack_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

// A test seeds the workspace, points slack-go at the fake, and reads back what the bot posted.
// With socketmode.New(api) and RunContext the same client also receives SendSlashCommand and
// ClickButton envelopes.
func Example() {
	s, err := fakeslack.New(fakeslack.Options{AppToken: "xapp-1-test", BotToken: "xoxb-test"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	s.AddUser(fakeslack.User{ID: "U0ALICE", Name: "alice"})
	s.AddChannel(fakeslack.Channel{ID: "C0DEPLOYS", Name: "deploys", Members: []string{"U0ALICE"}, BotIsMember: true})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	api := slack.New("xoxb-test", slack.OptionAPIURL(s.APIURL()), slack.OptionAppLevelToken("xapp-1-test"))
	stop := slack.NewButtonBlockElement("stop", "d-ABC", slack.NewTextBlockObject(slack.PlainTextType, "Stop", false, false)).
		WithStyle(slack.StyleDanger)
	_, ts, err := api.PostMessageContext(ctx, "C0DEPLOYS",
		slack.MsgOptionText("Stop d-ABC?", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("confirm", stop)))
	if err != nil {
		log.Fatal(err)
	}

	m, _ := s.Message("C0DEPLOYS", ts)
	fmt.Println(m.Text, m.Via)
	for _, b := range m.Buttons() {
		fmt.Printf("button %s %q style=%s value=%s\n", b.ActionID, b.Text, b.Style, b.Value)
	}
	_, _, err = api.PostMessageContext(ctx, "C0NOPE", slack.MsgOptionText("hi", false))
	fmt.Println(err)
	fmt.Println(s.Calls())
	// Output:
	// Stop d-ABC? chat.postMessage
	// button stop "Stop" style=danger value=d-ABC
	// channel_not_found
	// [chat.postMessage C0DEPLOYS chat.postMessage C0NOPE]
}
