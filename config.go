package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/rs/zerolog"

	"github.com/stopdeploy/stopdeploy/commands"
	"github.com/stopdeploy/stopdeploy/policy"
)

// config is the bot's environment. AWS settings are not here: the SDK reads
// its own (AWS_REGION, credentials, AWS_ENDPOINT_URL_CODEDEPLOY…).
type config struct {
	AppToken              secret        `envconfig:"SLACK_APP_TOKEN" required:"true" desc:"app-level token (xapp-…) with connections:write, for Socket Mode"`
	BotToken              secret        `envconfig:"SLACK_BOT_TOKEN" required:"true" desc:"bot token (xoxb-…) for every other Web API call"`
	APIURL                string        `envconfig:"SLACK_API_URL" default:"https://slack.com/api/" desc:"Slack Web API base URL"`
	StateTable            string        `envconfig:"STOPDEPLOY_STATE_TABLE" desc:"optional DynamoDB table (key pk, TTL on expires_at) that replicas share: one outcome per confirmation across processes, follow-ups that survive their process, the audit history"`
	PolicyFile            string        `envconfig:"STOPDEPLOY_POLICY_FILE" desc:"YAML file of rules: who may stop which deployments, where, with how many approvals (see policy.example.yaml); replaces the four variables below"`
	SigningSecret         secret        `envconfig:"STOPDEPLOY_SIGNING_SECRET" desc:"at least 32 bytes that sign the confirmation buttons; default: derived from SLACK_APP_TOKEN (rotating it invalidates open confirmations)"`
	AllowedUsers          []string      `envconfig:"STOPDEPLOY_ALLOWED_USERS" desc:"Slack user IDs who may stop deployments"`
	AllowedGroups         []string      `envconfig:"STOPDEPLOY_ALLOWED_GROUPS" desc:"Slack user-group IDs (S…) whose members may stop deployments"`
	AllowedChannels       []string      `envconfig:"STOPDEPLOY_ALLOWED_CHANNELS" desc:"channel IDs where the command works; empty = any"`
	RequireSecondApprover bool          `envconfig:"STOPDEPLOY_REQUIRE_SECOND_APPROVER" default:"false" desc:"Stop must be pressed by an allowed user other than the requester"`
	ConfirmTimeout        time.Duration `envconfig:"STOPDEPLOY_CONFIRM_TIMEOUT" default:"10m" desc:"how long a confirmation can be confirmed"`
	FollowInterval        time.Duration `envconfig:"STOPDEPLOY_FOLLOW_INTERVAL" default:"10s" desc:"how often a stopped deployment is read again"`
	FollowTimeout         time.Duration `envconfig:"STOPDEPLOY_FOLLOW_TIMEOUT" default:"15m" desc:"how long a stopped deployment is followed"`
	AuditChannel          string        `envconfig:"STOPDEPLOY_AUDIT_CHANNEL" desc:"channel ID that also receives every audit event"`
	HTTPAddr              string        `envconfig:"STOPDEPLOY_HTTP_ADDR" desc:"optional address (e.g. :9090) serving GET /healthz and GET /metrics"`
	Regions               []string      `envconfig:"STOPDEPLOY_REGIONS" desc:"AWS regions to find deployments in, comma-separated (e.g. us-east-1,eu-west-1); default: the SDK's region (AWS_REGION)"`
	Accounts              []string      `envconfig:"STOPDEPLOY_ACCOUNTS" desc:"AWS accounts as name=role ARN, comma-separated (e.g. prod=arn:aws:iam::123456789012:role/stopdeploy); the bot assumes each role (docs/accounts.md). Default: one account, default, with the bot's own credentials"`
	LogLevel              string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat             string        `envconfig:"LOG_FORMAT" default:"json" desc:"json (one object per line) or console"`

	// accounts is Accounts parsed by validate; empty when Accounts is.
	accounts []accountRole
}

// accountRole is one entry of STOPDEPLOY_ACCOUNTS.
type accountRole struct {
	name    string // the bot's name for the account, as users see it
	roleARN string
}

// secret holds a token. It prints as [redacted] however it is formatted or
// logged, so a token cannot leak through a stray log field.
type secret string

func (secret) String() string                 { return "[redacted]" }
func (secret) GoString() string               { return "[redacted]" }
func (secret) MarshalText() ([]byte, error)   { return []byte("[redacted]"), nil }
func (s secret) reveal() string               { return string(s) }
func (s secret) hasPrefix(prefix string) bool { return strings.HasPrefix(string(s), prefix) }

var (
	userIDPattern    = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	groupIDPattern   = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
	channelIDPattern = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)
	// regionPattern is an AWS region's form: us-east-1, eu-central-2,
	// us-gov-west-1, cn-north-1, ap-southeast-4…
	regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	// accountNamePattern is the bot's name for an account.
	accountNamePattern = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)
	// roleARNPattern is an IAM role ARN in any partition: a 12-digit account
	// and a role name (with an optional path) of IAM's characters.
	roleARNPattern = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)
)

// configError names the variable at fault. It never repeats a value that
// failed to parse (someone may have pasted a token into the wrong variable);
// it does quote a list entry that is not an ID, and output is redacted anyway.
type configError struct {
	Key    string
	Reason string
}

func (e *configError) Error() string { return e.Key + ": " + e.Reason }

// loadConfig reads and checks the environment.
func loadConfig() (config, error) {
	var cfg config
	if err := envconfig.Process("", &cfg); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return cfg, &configError{Key: pe.KeyName, Reason: "is not a valid " + typeName(pe.TypeName)}
		}
		// "required key X missing value": carries no value.
		return cfg, fmt.Errorf("configuration: %w", err)
	}
	return cfg, cfg.validate()
}

func typeName(t string) string {
	switch t {
	case "time.Duration":
		return "Go duration such as 90s, 10m or 1h"
	case "bool":
		return "boolean (true or false)"
	}
	return t
}

// validate checks what envconfig cannot, and normalizes lists and the URL.
func (c *config) validate() error {
	switch {
	case c.AppToken == "":
		return &configError{"SLACK_APP_TOKEN", "is empty: set the app-level token (xapp-…)"}
	case !c.AppToken.hasPrefix("xapp-"):
		return &configError{"SLACK_APP_TOKEN", "must be an app-level token starting with xapp- (Basic Information → App-Level Tokens, scope connections:write)"}
	case c.BotToken == "":
		return &configError{"SLACK_BOT_TOKEN", "is empty: set the bot token (xoxb-…)"}
	case !c.BotToken.hasPrefix("xoxb-"):
		return &configError{"SLACK_BOT_TOKEN", "must be a bot token starting with xoxb- (OAuth & Permissions → Bot User OAuth Token)"}
	}
	u, err := url.Parse(c.APIURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return &configError{"SLACK_API_URL", "must be an http(s) URL such as https://slack.com/api/"}
	}
	if !strings.HasSuffix(c.APIURL, "/") {
		c.APIURL += "/" // slack-go appends method names to it
	}
	lists := []struct {
		key     string
		ids     *[]string
		pattern *regexp.Regexp
		example string
	}{
		{"STOPDEPLOY_ALLOWED_USERS", &c.AllowedUsers, userIDPattern, "U0123ABCD"},
		{"STOPDEPLOY_ALLOWED_GROUPS", &c.AllowedGroups, groupIDPattern, "S0123ABCD"},
		{"STOPDEPLOY_ALLOWED_CHANNELS", &c.AllowedChannels, channelIDPattern, "C0123ABCD"},
	}
	for _, l := range lists {
		cleaned, err := idList(l.key, *l.ids, l.pattern, l.example)
		if err != nil {
			return err
		}
		*l.ids = cleaned
	}
	if c.SigningSecret != "" && len(c.SigningSecret) < commands.MinSecretLen {
		return &configError{"STOPDEPLOY_SIGNING_SECRET", fmt.Sprintf("must be at least %d bytes (generate one with: openssl rand -base64 48)", commands.MinSecretLen)}
	}
	if c.PolicyFile != "" {
		// One source of truth: a policy file and the allow-list variables
		// would disagree sooner or later.
		for _, v := range []struct {
			key string
			set bool
		}{
			{"STOPDEPLOY_ALLOWED_USERS", len(c.AllowedUsers) > 0},
			{"STOPDEPLOY_ALLOWED_GROUPS", len(c.AllowedGroups) > 0},
			{"STOPDEPLOY_ALLOWED_CHANNELS", len(c.AllowedChannels) > 0},
			{"STOPDEPLOY_REQUIRE_SECOND_APPROVER", c.RequireSecondApprover},
		} {
			if v.set {
				return &configError{"STOPDEPLOY_POLICY_FILE", "is set together with " + v.key + ": use one or the other (put the rule in the policy file and unset " + v.key + ")"}
			}
		}
	} else if len(c.AllowedUsers) == 0 && len(c.AllowedGroups) == 0 {
		return &configError{"STOPDEPLOY_ALLOWED_USERS", "and STOPDEPLOY_ALLOWED_GROUPS are both empty (and there is no STOPDEPLOY_POLICY_FILE): nobody could stop a deployment; set at least one"}
	}
	if c.AuditChannel != "" && !channelIDPattern.MatchString(c.AuditChannel) {
		return &configError{"STOPDEPLOY_AUDIT_CHANNEL", "must be a channel ID such as C0123ABCD (not a #name)"}
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{
		{"STOPDEPLOY_CONFIRM_TIMEOUT", c.ConfirmTimeout},
		{"STOPDEPLOY_FOLLOW_INTERVAL", c.FollowInterval},
		{"STOPDEPLOY_FOLLOW_TIMEOUT", c.FollowTimeout},
	} {
		if d.val <= 0 {
			return &configError{d.key, "must be a positive duration such as 90s or 10m"}
		}
	}
	if c.ConfirmTimeout < time.Second {
		return &configError{"STOPDEPLOY_CONFIRM_TIMEOUT", "must be at least 1s (confirmations expire on whole seconds)"}
	}
	if c.FollowInterval > c.FollowTimeout {
		return &configError{"STOPDEPLOY_FOLLOW_INTERVAL", "is longer than STOPDEPLOY_FOLLOW_TIMEOUT: the deployment would never be read"}
	}
	if c.HTTPAddr != "" {
		if _, port, err := net.SplitHostPort(c.HTTPAddr); err != nil || port == "" {
			return &configError{"STOPDEPLOY_HTTP_ADDR", "must be host:port or :port, such as :9090"}
		}
	}
	if err := c.validatePlaces(); err != nil {
		return err
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		return &configError{"LOG_FORMAT", "must be json or console"}
	}
	return nil
}

// validatePlaces checks STOPDEPLOY_REGIONS and parses STOPDEPLOY_ACCOUNTS.
// Its errors name an entry by its position and quote only what passed
// validation: a value in the wrong variable may be a secret.
func (c *config) validatePlaces() error {
	var regions []string
	for i, r := range c.Regions {
		r = strings.TrimSpace(r)
		switch {
		case r == "":
			continue
		case !regionPattern.MatchString(r):
			return &configError{"STOPDEPLOY_REGIONS", fmt.Sprintf("entry %d is not an AWS region such as eu-west-1", i+1)}
		case slices.Contains(regions, r):
			return &configError{"STOPDEPLOY_REGIONS", fmt.Sprintf("lists %s twice", r)}
		}
		regions = append(regions, r)
	}
	c.Regions = regions
	c.accounts = nil
	for i, entry := range c.Accounts {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, arn, ok := strings.Cut(entry, "=")
		name, arn = strings.TrimSpace(name), strings.TrimSpace(arn)
		switch {
		case !ok:
			return &configError{"STOPDEPLOY_ACCOUNTS", fmt.Sprintf("entry %d is not name=arn:aws:iam::123456789012:role/NAME", i+1)}
		case !accountNamePattern.MatchString(name):
			return &configError{"STOPDEPLOY_ACCOUNTS", fmt.Sprintf("entry %d: the name must be 1 to 32 lower-case letters, digits, - or _", i+1)}
		case !roleARNPattern.MatchString(arn):
			return &configError{"STOPDEPLOY_ACCOUNTS", fmt.Sprintf("entry %d (%s): the role must be an IAM role ARN such as arn:aws:iam::123456789012:role/stopdeploy", i+1, name)}
		case slices.ContainsFunc(c.accounts, func(a accountRole) bool { return a.name == name }):
			return &configError{"STOPDEPLOY_ACCOUNTS", fmt.Sprintf("names the account %s twice", name)}
		}
		c.accounts = append(c.accounts, accountRole{name: name, roleARN: arn})
	}
	return nil
}

// idList trims the entries of a comma-separated list (envconfig does not)
// and checks each is an ID, not a name.
func idList(key string, ids []string, pattern *regexp.Regexp, example string) ([]string, error) {
	var out []string
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if !pattern.MatchString(id) {
			return nil, &configError{key, fmt.Sprintf("%q is not an ID like %s (use IDs, not names)", id, example)}
		}
		out = append(out, id)
	}
	return out, nil
}

func parseLevel(s string) (zerolog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return zerolog.DebugLevel, nil
	case "info":
		return zerolog.InfoLevel, nil
	case "warn":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.NoLevel, &configError{"LOG_LEVEL", "must be debug, info, warn or error"}
}

// printConfigUsage writes the configuration table, from the struct tags.
func printConfigUsage(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if err := envconfig.Usagef("", &config{}, tw, envconfig.DefaultTableFormat); err != nil {
		return err
	}
	return tw.Flush()
}

// loadPolicy is the policy file's rules, or the allow-list variables as one
// rule. A file's errors name the file, the line and the key.
func (c config) loadPolicy() (*policy.Policy, error) {
	if c.PolicyFile == "" {
		return policy.Flat(c.AllowedUsers, c.AllowedGroups, c.AllowedChannels, c.RequireSecondApprover), nil
	}
	p, err := policy.Load(c.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("STOPDEPLOY_POLICY_FILE: %w", err)
	}
	return p, nil
}

// signingKey is the key of the confirmation buttons.
func (c config) signingKey() commands.Key {
	if c.SigningSecret != "" {
		k, err := commands.NewKey([]byte(c.SigningSecret.reveal()))
		if err == nil { // validate checked the length
			return k
		}
	}
	return commands.DeriveKey(c.AppToken.reveal())
}
