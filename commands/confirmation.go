package commands

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Confirmation is what a Stop or Cancel click needs to finish a request. It
// travels in the button's value, so a click works on any bot process, before
// or after a restart: no process has to remember the request.
type Confirmation struct {
	DeploymentID string
	Rollback     bool
	RequesterID  string
	// ChannelID is where the confirmation was posted. A click is acted on
	// only in that channel: a payload naming another one is not this
	// confirmation's.
	ChannelID string
	ExpiresAt time.Time // second precision: the wire form holds Unix seconds
}

// Request is the command the confirmation was made for.
func (c Confirmation) Request() Request {
	return Request{DeploymentID: c.DeploymentID, Rollback: c.Rollback}
}

// Expired reports whether the confirmation can no longer be confirmed at now.
func (c Confirmation) Expired(now time.Time) bool {
	return !now.Before(c.ExpiresAt)
}

// confirmationVersion is the wire form's version. v2 added the channel;
// a v1 value (from before) is refused like any value that does not decode.
const confirmationVersion = "v2"

// userIDPattern matches Slack user IDs (U… and, on Enterprise Grid, W…).
var userIDPattern = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)

// channelIDPattern matches Slack conversation IDs: public (C…), private and
// group DMs (G…), and DMs (D…).
var channelIDPattern = regexp.MustCompile(`^[CGD][A-Z0-9]{2,20}$`)

// Encode returns the button value for c, for example
// "v2 d-LGUMS25CC rollback U0ALICE C0DEPLOYS 1764198000". It stays far below Slack's
// 2,000-character limit for button values.
func (c Confirmation) Encode() string {
	return strings.Join([]string{
		confirmationVersion,
		c.DeploymentID,
		rollbackWord(c.Rollback),
		c.RequesterID,
		c.ChannelID,
		strconv.FormatInt(c.ExpiresAt.Unix(), 10),
	}, " ")
}

// DecodeConfirmation reads a button value written by Encode. The value comes
// from the bot's own message, but it is checked as strictly as user input:
// a value that does not decode must never lead to a StopDeployment call.
func DecodeConfirmation(value string) (Confirmation, error) {
	parts := strings.Split(value, " ")
	if len(parts) != 6 || parts[0] != confirmationVersion {
		return Confirmation{}, fmt.Errorf("confirmation %q: not a %s value", value, confirmationVersion)
	}
	c := Confirmation{DeploymentID: parts[1], RequesterID: parts[3], ChannelID: parts[4]}
	if !ValidDeploymentID(c.DeploymentID) {
		return Confirmation{}, fmt.Errorf("confirmation %q: bad deployment ID", value)
	}
	switch parts[2] {
	case rollbackWord(true):
		c.Rollback = true
	case rollbackWord(false):
	default:
		return Confirmation{}, fmt.Errorf("confirmation %q: bad rollback choice", value)
	}
	if !userIDPattern.MatchString(c.RequesterID) {
		return Confirmation{}, fmt.Errorf("confirmation %q: bad requester", value)
	}
	if !channelIDPattern.MatchString(c.ChannelID) {
		return Confirmation{}, fmt.Errorf("confirmation %q: bad channel", value)
	}
	secs, err := strconv.ParseInt(parts[5], 10, 64)
	if err != nil || secs <= 0 || strconv.FormatInt(secs, 10) != parts[5] {
		return Confirmation{}, fmt.Errorf("confirmation %q: bad expiry", value)
	}
	c.ExpiresAt = time.Unix(secs, 0).UTC()
	return c, nil
}
