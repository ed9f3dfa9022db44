package fakeslack

import (
	"errors"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func TestChannelRate_RefusesPostsOverTheBurst(t *testing.T) {
	t.Parallel()
	s := newFake(t, func(o *Options) { o.ChannelRate = ChannelRate{PerSecond: 1, Burst: 2} })
	ctx := timeout(t, 10*time.Second)
	// No retries: see each answer.
	a := slack.New(botTok, slack.OptionAPIURL(s.APIURL()))
	post := func(channel string) error {
		_, _, err := a.PostMessageContext(ctx, channel, slack.MsgOptionText("hi", false))
		return err
	}
	for i := range 2 {
		if err := post(deploys); err != nil {
			t.Fatalf("post %d within the burst: %v", i, err)
		}
	}
	var rl *slack.RateLimitedError
	if err := post(deploys); !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Errorf("post over the burst: %v, want 429 with Retry-After 1", err)
	}
	if n := s.RateLimited(deploys); n != 1 {
		t.Errorf("RateLimited = %d, want 1", n)
	}
	if n := len(s.Messages()); n != 2 {
		t.Errorf("%d messages stored, want the 2 allowed", n)
	}
}
