package commands

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Confirmation is everything a click on a confirmation relies on. It
// travels in the button's value, signed, so a click works on any bot
// process, before or after a restart: no process has to remember the
// request, and approvals given so far travel with it.
type Confirmation struct {
	// Where the deployment is: the bot's name for the AWS account and the
	// region. A stop goes exactly there.
	Account, Region string
	DeploymentID    string
	Rollback        bool
	RequesterID     string
	// ChannelID is where the confirmation was posted. A click is acted on
	// only in that channel: a payload naming another one is not this
	// confirmation's.
	ChannelID string
	ExpiresAt time.Time // second precision: the wire form holds Unix seconds

	// Rule is the policy rule that decided the request; Needed is how many
	// approvals it asked for when the confirmation was posted, and
	// Approvers who approved so far, in order.
	Rule      string
	Needed    int
	Approvers []string
	// MessageTS binds the value to its message once the bot knows it: the
	// first post cannot, but every value an update writes does, so a value
	// copied into another message is refused.
	MessageTS string
}

// Request is the command the confirmation was made for.
func (c Confirmation) Request() Request {
	return Request{DeploymentID: c.DeploymentID, Rollback: c.Rollback}
}

// Expired reports whether the confirmation can no longer be confirmed at now.
func (c Confirmation) Expired(now time.Time) bool {
	return !now.Before(c.ExpiresAt)
}

// confirmationVersion is the wire form's version. v3 is signed and carries
// the place, the rule and the approvals; v1 and v2 values (from before, and
// unsigned) are refused like any value that fails verification.
const confirmationVersion = "v3"

// userIDPattern matches Slack user IDs (U… and, on Enterprise Grid, W…).
var userIDPattern = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)

// channelIDPattern matches Slack conversation IDs: public (C…), private and
// group DMs (G…), and DMs (D…).
var channelIDPattern = regexp.MustCompile(`^[CGD][A-Z0-9]{2,20}$`)

var (
	accountPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	tsPattern      = regexp.MustCompile(`^[0-9]{1,12}\.[0-9]{1,9}$`)
)

// MaxApprovers bounds the approvers a value carries (policy.MaxApprovals
// and a margin): a value must stay below Slack's 2,000 characters.
const MaxApprovers = 12

// Key signs and verifies confirmation values with HMAC-SHA256.
type Key struct{ k []byte }

// MinSecretLen is the shortest STOPDEPLOY_SIGNING_SECRET accepted: 32 bytes,
// the size of an HMAC-SHA256 key.
const MinSecretLen = 32

// NewKey returns the key for a configured secret of at least MinSecretLen bytes.
func NewKey(secret []byte) (Key, error) {
	if len(secret) < MinSecretLen {
		return Key{}, fmt.Errorf("a signing secret must be at least %d bytes (got %d)", MinSecretLen, len(secret))
	}
	return Key{derive(secret, "stopdeploy confirmation signing secret")}, nil
}

// DeriveKey returns the key derived from the app-level token, for when no
// signing secret is configured. Every replica has the same token, so they
// agree; rotating the token invalidates open confirmations.
func DeriveKey(appToken string) Key {
	return Key{derive([]byte(appToken), "stopdeploy confirmation signing from the app token")}
}

// RandomKey is a key nobody else has: confirmations it signs work in this
// process only. For tests and the sandbox.
func RandomKey() Key {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails (crypto/rand's documented contract)
	return Key{k}
}

func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Valid reports whether k can sign: the zero Key cannot.
func (k Key) Valid() bool { return len(k.k) > 0 }

func (k Key) mac(body string) string {
	m := hmac.New(sha256.New, k.k)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ErrBadValue is what every value that does not verify wraps: forged,
// tampered with, signed with another key, unsigned (v1, v2), or malformed.
var ErrBadValue = errors.New("not a confirmation value signed by this bot")

// Encode returns the signed button value for c, for example
// "v3 default us-east-1 d-LGUMS25CC rollback U0ALICE C0DEPLOYS 1764198000 production 1 U0BOB - <signature>".
// Fields are separated by spaces; the rule name is URL-escaped.
func (k Key) Encode(c Confirmation) string {
	body := strings.Join([]string{
		confirmationVersion,
		c.Account,
		c.Region,
		c.DeploymentID,
		rollbackWord(c.Rollback),
		c.RequesterID,
		c.ChannelID,
		strconv.FormatInt(c.ExpiresAt.Unix(), 10),
		url.PathEscape(c.Rule),
		strconv.Itoa(c.Needed),
		orDash(strings.Join(c.Approvers, ",")),
		orDash(c.MessageTS),
	}, " ")
	return body + " " + k.mac(body)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func undash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// Decode verifies and reads a button value written by Encode. The value
// comes from a message anyone with the bot token could have written, so it
// is checked as strictly as user input, and the signature first: a value
// that does not verify must never lead to a CodeDeploy call. Errors wrap
// ErrBadValue.
func (k Key) Decode(value string) (Confirmation, error) {
	bad := func(why string) (Confirmation, error) {
		return Confirmation{}, fmt.Errorf("%w: %s", ErrBadValue, why)
	}
	if !k.Valid() {
		return bad("no key to verify it with")
	}
	i := strings.LastIndexByte(value, ' ')
	if i < 0 {
		return bad("no signature")
	}
	body, sig := value[:i], value[i+1:]
	if !hmac.Equal([]byte(sig), []byte(k.mac(body))) {
		if !strings.HasPrefix(value, confirmationVersion+" ") {
			return bad("unsigned value from an older version")
		}
		return bad("the signature does not match")
	}
	parts := strings.Split(body, " ")
	if len(parts) != 12 || parts[0] != confirmationVersion {
		return bad("not a " + confirmationVersion + " value")
	}
	if slices.Contains(parts, "") {
		return bad("an empty field") // Encode writes "-" for nothing
	}
	c := Confirmation{Account: parts[1], Region: parts[2], DeploymentID: parts[3], RequesterID: parts[5], ChannelID: parts[6],
		MessageTS: undash(parts[11])}
	switch {
	case !accountPattern.MatchString(c.Account):
		return bad("bad account")
	case !regionPattern.MatchString(c.Region):
		return bad("bad region")
	case !ValidDeploymentID(c.DeploymentID):
		return bad("bad deployment ID")
	case !userIDPattern.MatchString(c.RequesterID):
		return bad("bad requester")
	case !channelIDPattern.MatchString(c.ChannelID):
		return bad("bad channel")
	case c.MessageTS != "" && !tsPattern.MatchString(c.MessageTS):
		return bad("bad message")
	}
	switch parts[4] {
	case rollbackWord(true):
		c.Rollback = true
	case rollbackWord(false):
	default:
		return bad("bad rollback choice")
	}
	secs, err := strconv.ParseInt(parts[7], 10, 64)
	if err != nil || secs <= 0 || strconv.FormatInt(secs, 10) != parts[7] {
		return bad("bad expiry")
	}
	c.ExpiresAt = time.Unix(secs, 0).UTC()
	if c.Rule, err = url.PathUnescape(parts[8]); err != nil || c.Rule == "" || url.PathEscape(c.Rule) != parts[8] {
		return bad("bad rule")
	}
	if c.Needed, err = strconv.Atoi(parts[9]); err != nil || c.Needed < 0 || c.Needed > MaxApprovers || strconv.Itoa(c.Needed) != parts[9] {
		return bad("bad approvals count")
	}
	if a := undash(parts[10]); a != "" {
		c.Approvers = strings.Split(a, ",")
	}
	if len(c.Approvers) > MaxApprovers {
		return bad("too many approvers")
	}
	for i, a := range c.Approvers {
		if !userIDPattern.MatchString(a) || slices.Contains(c.Approvers[:i], a) || a == c.RequesterID {
			return bad("bad approver")
		}
	}
	return c, nil
}
