package bot

import (
	"encoding/json"
	"sync"

	"github.com/slack-go/slack"
)

// interaction is what the bot reads of a button press: slack-go's
// InteractionCallback decodes everything a press can carry, and the blocks
// of its message by type, block by block and element by element: most of
// the CPU between a click's ack and its StopDeployment. The blocks are
// needed only to rewrite the card, after the stop, so they stay undecoded
// (card) until then.
type interaction struct {
	Type slack.InteractionType `json:"type"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	Channel struct {
		ID string `json:"id"`
	} `json:"channel"`
	Container struct {
		ChannelID string `json:"channel_id"`
		MessageTs string `json:"message_ts"`
	} `json:"container"`
	Message struct {
		Text      string          `json:"text"`
		Timestamp string          `json:"ts"`
		Blocks    json.RawMessage `json:"blocks"`
	} `json:"message"`
	ResponseURL string `json:"response_url"`
	Team        struct {
		Domain string `json:"domain"`
	} `json:"team"`
	Actions []*slack.BlockAction `json:"actions"`
}

// callback is the press as the InteractionCallback fields the bot reads,
// and its message's blocks as written.
func (p interaction) callback() (slack.InteractionCallback, []byte) {
	cb := slack.InteractionCallback{Type: p.Type, ResponseURL: p.ResponseURL}
	cb.User.ID = p.User.ID
	cb.Channel.ID = p.Channel.ID
	cb.Container = slack.Container{ChannelID: p.Container.ChannelID, MessageTs: p.Container.MessageTs}
	cb.Message.Text, cb.Message.Timestamp = p.Message.Text, p.Message.Timestamp
	cb.Team.Domain = p.Team.Domain
	cb.ActionCallback.BlockActions = p.Actions
	return cb, p.Message.Blocks
}

// card is a confirmation's blocks as the click saw them, decoded when
// first needed.
type card struct {
	raw     []byte
	once    sync.Once
	decoded []slack.Block
}

// newCard is the card of decoded blocks, or of raw ones when raw is not nil.
func newCard(decoded []slack.Block, raw []byte) *card {
	return &card{raw: raw, decoded: decoded}
}

// blocks are the card's blocks; a nil card has none.
func (c *card) blocks() []slack.Block {
	if c == nil {
		return nil
	}
	c.once.Do(func() {
		var bs slack.Blocks
		if c.raw != nil && json.Unmarshal(c.raw, &bs) == nil {
			c.decoded = bs.BlockSet
		}
	})
	return c.decoded
}

// hasButtons reports whether the card still has its buttons (an actions
// block with the bot's block ID), without decoding the blocks.
func (c *card) hasButtons() bool {
	if c == nil {
		return false
	}
	if c.raw == nil {
		return hasButtons(c.decoded)
	}
	var ids []struct {
		BlockID string `json:"block_id"`
	}
	if err := json.Unmarshal(c.raw, &ids); err != nil {
		return hasButtons(c.blocks())
	}
	for _, b := range ids {
		if b.BlockID == blockActions {
			return true
		}
	}
	return false
}
