// Package commands turns the text of a /stopdeploy slash command into a
// Request, and back. It does no I/O: everything the user can get wrong is
// decided here, before anything reaches Slack's Web API or AWS.
package commands

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
)

// Name is the slash command the bot answers to.
const Name = "/stopdeploy"

// Request is a well-formed /stopdeploy command. It names a deployment by
// ID, or by application and deployment group (its active deployment), or
// asks for the list of active deployments.
type Request struct {
	DeploymentID string // canonical form: "d-" and nine upper-case letters or digits
	Rollback     bool   // sent to StopDeployment as autoRollbackEnabled
	// Region is set when a console link names the region: the deployment
	// is looked for there only.
	Region string
	// Application and Group name a deployment group instead of an ID, or
	// narrow a list.
	Application, Group string
	List               bool // /stopdeploy list [application [group]]
}

// Command is the canonical command text for r, the inverse of Parse (a
// console link's region aside).
func (r Request) Command() string {
	switch {
	case r.List:
		return strings.TrimSpace(strings.Join([]string{Name, listWord, r.Application, r.Group}, " "))
	case r.DeploymentID == "":
		return Name + " " + r.Application + " " + r.Group + " " + rollbackWord(r.Rollback)
	}
	return Name + " " + r.DeploymentID + " " + rollbackWord(r.Rollback)
}

// listWord asks for the active deployments.
const listWord = "list"

// namePattern is what CodeDeploy accepts in application and deployment
// group names (letters, digits, and . _ - + = , @; at most 100 characters,
// per the CreateApplication and CreateDeploymentGroup API references).
var namePattern = regexp.MustCompile(`^[A-Za-z0-9._+=,@-]{1,100}$`)

// ErrHelp means the user asked for help (or sent nothing): answer with Usage.
var ErrHelp = errors.New("help requested")

// UsageError is a command the bot cannot act on. Reason is written for the
// user who typed it.
type UsageError struct {
	Reason string
}

func (e *UsageError) Error() string { return e.Reason }

// choice is one optional word after the deployment. Usage is generated from
// this table so help text and parser cannot drift apart.
type choice struct {
	word     string
	rollback bool
	meaning  string
}

var choices = []choice{
	{"rollback", true, "stop it, and CodeDeploy rolls back to the last successful revision"},
	{"no-rollback", false, "stop it and leave the instances as they are (the default)"},
}

// The patterns are anchored: an ID must be the whole token, so "d-LGUMS25CCX"
// or "xd-LGUMS25CC" are refused rather than truncated. They spell out ASCII
// instead of using (?i), which would also accept the Kelvin sign for "k".
var (
	deploymentIDPattern = regexp.MustCompile(`^[dD]-[A-Za-z0-9]{9}$`)
	canonicalIDPattern  = regexp.MustCompile(`^d-[A-Z0-9]{9}$`)
	consoleHosts        = []string{"console.aws.amazon.com", "console.amazonaws.cn", "console.amazonaws-us-gov.com"}
)

// ValidDeploymentID reports whether id is a deployment ID in canonical form.
func ValidDeploymentID(id string) bool {
	return canonicalIDPattern.MatchString(id)
}

// canonicalID spells an ID as AWS does; the caller has matched deploymentIDPattern.
func canonicalID(id string) string {
	return "d-" + strings.ToUpper(id[2:])
}

// Parse reads the text after the command name. It returns ErrHelp for help or
// empty text and a *UsageError for anything else it cannot act on.
func Parse(text string) (Request, error) {
	fields := words(strings.ReplaceAll(text, "`", " "))
	if len(fields) == 0 || (len(fields) == 1 && strings.EqualFold(fields[0], "help")) {
		return Request{}, ErrHelp
	}
	if strings.EqualFold(fields[0], listWord) {
		return parseList(fields[1:])
	}
	if !looksLikeID(fields[0]) && len(fields) >= 2 {
		return parseGroup(fields)
	}
	if len(fields) > 2 {
		return Request{}, &UsageError{Reason: fmt.Sprintf("Too many words: expected a deployment and at most one of %s.", choiceList())}
	}
	id, region, err := deploymentID(fields[0])
	if err != nil {
		return Request{}, err
	}
	req := Request{DeploymentID: id, Region: region}
	if len(fields) == 2 {
		c, ok := lookupChoice(fields[1])
		if !ok {
			return Request{}, &UsageError{Reason: fmt.Sprintf("%q is not an option: use %s.", fields[1], choiceList())}
		}
		req.Rollback = c.rollback
	}
	return req, nil
}

// looksLikeID reports whether token is meant as a deployment (an ID, a
// near-miss of one, or a link), not an application name.
func looksLikeID(token string) bool {
	return strings.HasPrefix(strings.ToLower(token), "d-") || strings.HasPrefix(token, "<") || strings.Contains(token, "://")
}

// parseGroup reads "<application> <deployment-group> [rollback|no-rollback]".
func parseGroup(fields []string) (Request, error) {
	if len(fields) > 3 {
		return Request{}, &UsageError{Reason: fmt.Sprintf("Too many words: expected an application, a deployment group and at most one of %s.", choiceList())}
	}
	app, group := fields[0], fields[1]
	if _, isChoice := lookupChoice(app); isChoice || looksLikeID(group) {
		// "rollback d-…": the words are out of order, not names.
		_, _, err := deploymentID(app)
		return Request{}, err
	}
	if _, isChoice := lookupChoice(group); isChoice {
		return Request{}, &UsageError{Reason: fmt.Sprintf("%q is not a deployment ID, and %q is an option, not a deployment group: give the deployment ID, or the application and its deployment group.", app, group)}
	}
	if err := checkNames(app, group); err != nil {
		return Request{}, err
	}
	req := Request{Application: app, Group: group}
	if len(fields) == 3 {
		c, ok := lookupChoice(fields[2])
		if !ok {
			return Request{}, &UsageError{Reason: fmt.Sprintf("%q is not an option: use %s.", fields[2], choiceList())}
		}
		req.Rollback = c.rollback
	}
	return req, nil
}

// parseList reads "list [application [deployment-group]]".
func parseList(names []string) (Request, error) {
	if len(names) > 2 {
		return Request{}, &UsageError{Reason: "Too many words: `" + Name + " list` takes at most an application and a deployment group."}
	}
	if err := checkNames(names...); err != nil {
		return Request{}, err
	}
	req := Request{List: true}
	if len(names) > 0 {
		req.Application = names[0]
	}
	if len(names) > 1 {
		req.Group = names[1]
	}
	return req, nil
}

func checkNames(names ...string) error {
	for _, n := range names {
		if !namePattern.MatchString(n) {
			return &UsageError{Reason: fmt.Sprintf("%q is not a CodeDeploy application or deployment group name (letters, digits and . _ - + = , @).", n)}
		}
	}
	return nil
}

// Syntax is the one-line syntax, in Slack mrkdwn.
func Syntax() string {
	return fmt.Sprintf("*Usage:* `%s <deployment> [%s]` · `%s <application> <deployment-group> [%s]` · `%s list [application [deployment-group]]`",
		Name, choiceList(), Name, choiceList(), Name)
}

// Short is the answer to a command that cannot be read: what is wrong, the
// syntax, and where to find more. Only help (or nothing) gets Usage.
func (e *UsageError) Short() string {
	return e.Reason + "\n" + Syntax() + " · `" + Name + " help` for more"
}

// Usage is the help text shown to a user, in Slack mrkdwn.
func Usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", Syntax())
	fmt.Fprintf(&b, "• `<deployment>`: a CodeDeploy deployment ID such as `d-LGUMS25CC`, or a console link to it; it is looked for in every account and region the bot knows\n")
	fmt.Fprintf(&b, "• `<application> <deployment-group>`: the group's active deployment (several: a list to pick from)\n")
	fmt.Fprintf(&b, "• `list [application [deployment-group]]`: active deployments you may stop, newest first, each with a *Stop…* button\n")
	for _, c := range choices {
		fmt.Fprintf(&b, "• `%s`: %s\n", c.word, c.meaning)
	}
	fmt.Fprintf(&b, "The bot asks for confirmation in the channel before it stops anything.\n")
	fmt.Fprintf(&b, "Example: `%s`", Request{DeploymentID: "d-LGUMS25CC", Rollback: true}.Command())
	return b.String()
}

// deploymentID accepts a bare ID or a console link, as Slack sends links:
// <https://…> or <https://…|label>.
func deploymentID(token string) (id, region string, err error) {
	if deploymentIDPattern.MatchString(token) {
		return canonicalID(token), "", nil
	}
	link := strings.TrimSuffix(strings.TrimPrefix(token, "<"), ">")
	if target, _, found := strings.Cut(link, "|"); found {
		link = target
	}
	if !strings.HasPrefix(strings.ToLower(link), "https://") {
		return "", "", &UsageError{Reason: fmt.Sprintf("%q is not a deployment ID: expected `d-` followed by 9 letters or digits, like `d-LGUMS25CC`.", token)}
	}
	return deploymentIDFromURL(link)
}

// consoleRegion is the region a console link names: its region= parameter
// (in the query or after "#"), else its host (eu-west-1.console.aws.amazon.com).
func consoleRegion(u *url.URL) string {
	for _, q := range []string{u.RawQuery, after(u.Fragment, "?")} {
		if v, err := url.ParseQuery(q); err == nil && regionPattern.MatchString(v.Get("region")) {
			return v.Get("region")
		}
	}
	if first, _, ok := strings.Cut(strings.ToLower(u.Hostname()), "."); ok && regionPattern.MatchString(first) {
		return first
	}
	return ""
}

func after(s, sep string) string {
	_, rest, _ := strings.Cut(s, sep)
	return rest
}

// deploymentIDFromURL finds the one deployment ID in a CodeDeploy console
// link. Other hosts are refused: a link elsewhere is not evidence of which
// deployment the user meant.
func deploymentIDFromURL(link string) (string, string, error) {
	u, err := url.Parse(link)
	if err != nil || !consoleHost(u.Hostname()) {
		return "", "", &UsageError{Reason: "That link is not an AWS CodeDeploy console link: paste the deployment ID (`d-…`) instead."}
	}
	var found string
	// The console is a single-page app; the ID may be in the path or after "#".
	for _, part := range []string{u.Path, u.Fragment} {
		for seg := range strings.SplitSeq(part, "/") {
			seg, _, _ = strings.Cut(seg, "?")
			if !deploymentIDPattern.MatchString(seg) {
				continue
			}
			if found != "" && found != canonicalID(seg) {
				return "", "", &UsageError{Reason: "That console link names more than one deployment: paste the deployment ID instead."}
			}
			found = canonicalID(seg)
		}
	}
	if found == "" {
		return "", "", &UsageError{Reason: "That console link names no deployment (`d-…`): open the deployment's page and copy its link, or paste the ID."}
	}
	return found, consoleRegion(u), nil
}

// words splits text on white space, keeping a Slack link such as
// <https://…|the deploy> in one piece even when its label has spaces.
func words(text string) []string {
	var out []string
	for {
		text = strings.TrimLeftFunc(text, unicode.IsSpace)
		if text == "" {
			return out
		}
		end := strings.IndexFunc(text, unicode.IsSpace)
		if text[0] == '<' {
			if i := strings.IndexByte(text, '>'); i > 0 {
				end = i + 1
			}
		}
		if end < 0 {
			end = len(text)
		}
		out = append(out, text[:end])
		text = text[end:]
	}
}

func consoleHost(host string) bool {
	host = strings.ToLower(host)
	for _, h := range consoleHosts {
		if host == h || strings.HasSuffix(host, "."+h) {
			return true
		}
	}
	return false
}

func lookupChoice(word string) (choice, bool) {
	for _, c := range choices {
		if strings.EqualFold(word, c.word) {
			return c, true
		}
	}
	return choice{}, false
}

func rollbackWord(rollback bool) string {
	for _, c := range choices {
		if c.rollback == rollback {
			return c.word
		}
	}
	panic("commands: no word for rollback choice") // unreachable: choices covers both values
}

func choiceList() string {
	words := make([]string, len(choices))
	for i, c := range choices {
		words[i] = c.word
	}
	return strings.Join(words, "|")
}
