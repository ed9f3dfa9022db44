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
	ExpiresAt    time.Time // second precision: the wire form holds Unix seconds
}

// Request is the command the confirmation was made for.
func (c Confirmation) Request() Request {
	return Request{DeploymentID: c.DeploymentID, Rollback: c.Rollback}
}

// Expired reports whether the confirmation can no longer be confirmed at now.
func (c Confirmation) Expired(now time.Time) bool {
	return !now.Before(c.ExpiresAt)
}

const confirmationVersion = "v1"

// userIDPattern matches Slack user IDs (U… and, on Enterprise Grid, W…).
var userIDPattern = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)

// Encode returns the button value for c, for example
// "v1 d-LGUMS25CC rollback U0ALICE 1764198000". It stays far below Slack's
// 2,000-character limit for button values.
func (c Confirmation) Encode() string {
	return strings.Join([]string{
		confirmationVersion,
		c.DeploymentID,
		rollbackWord(c.Rollback),
		c.RequesterID,
		strconv.FormatInt(c.ExpiresAt.Unix(), 10),
	}, " ")
}

// DecodeConfirmation reads a button value written by Encode. The value comes
// from the bot's own message, but it is checked as strictly as user input:
// a value that does not decode must never lead to a StopDeployment call.
func DecodeConfirmation(value string) (Confirmation, error) {
	parts := strings.Split(value, " ")
	if len(parts) != 5 || parts[0] != confirmationVersion {
		return Confirmation{}, fmt.Errorf("confirmation %q: not a %s value", value, confirmationVersion)
	}
	c := Confirmation{DeploymentID: parts[1], RequesterID: parts[3]}
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
	secs, err := strconv.ParseInt(parts[4], 10, 64)
	if err != nil || secs <= 0 || strconv.FormatInt(secs, 10) != parts[4] {
		return Confirmation{}, fmt.Errorf("confirmation %q: bad expiry", value)
	}
	c.ExpiresAt = time.Unix(secs, 0).UTC()
	return c, nil
}
