package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxApprovals is the most approvals a rule may ask for. The approvals so
// far travel in the confirmation button's value, which Slack limits to
// 2,000 characters beside the deployment, requester, rule and signature;
// and an incident rarely has more than a handful of people to ask.
const MaxApprovals = 10

// Error is one problem in a policy file. Load and Parse return one *Error,
// or several joined with errors.Join, first problem in the file first:
// errors.As finds that one.
type Error struct {
	File   string
	Line   int    // 1-based; 0 when the problem is the file as a whole
	Key    string // where in the file, such as rules[0].approvals; "" for the whole file
	Reason string
	Err    error // the OS or YAML error underneath, if any
}

// Error is "policy.yaml:7: rules[0].approvals: must be 0 or more (got -1)",
// the form editors and CI logs turn into a link to the line.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads and checks the policy file at path. Errors name path as given.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		reason := err.Error()
		// The PathError repeats the file name the Error already leads with.
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			reason = "cannot " + pe.Op + " the file: " + pe.Err.Error()
		}
		return nil, &Error{File: path, Reason: reason, Err: err}
	}
	return Parse(path, data)
}

// Parse checks a policy file's contents; file names it in errors. Nothing
// unknown, mistyped or unsatisfiable is accepted: a policy typo must fail
// at start-up or in `stopdeploy policy check`, not refuse someone during an
// incident.
func Parse(file string, data []byte) (*Policy, error) {
	root, err := decode(file, data)
	if err != nil {
		return nil, err
	}
	p := &parser{file: file}
	pol := p.policy(root)
	if err := p.result(); err != nil {
		return nil, err
	}
	pol.File = file
	return pol, nil
}

// decode returns the root node of the file's only document.
func decode(file string, data []byte) (root *yaml.Node, err error) {
	// yaml.v3 reports its own failures by panicking and recovering; anything
	// else that escapes is a bug in it, and a bad file must not take the bot
	// down with it.
	defer func() {
		if v := recover(); v != nil {
			root, err = nil, &Error{File: file, Reason: fmt.Sprintf("cannot be read as YAML (%v)", v)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, emptyFile(file)
		}
		return nil, yamlError(file, data, err)
	}
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, yamlError(file, data, err)
		}
		// A stray "---" at the end is harmless; a second set of rules is not,
		// because the bot would read only the first.
		if !emptyDoc(&next) {
			return nil, &Error{File: file, Line: next.Line,
				Reason: "a second YAML document starts here: put every rule in one document, under one rules: list"}
		}
	}
	if emptyDoc(&doc) {
		return nil, emptyFile(file)
	}
	return doc.Content[0], nil
}

func emptyFile(file string) *Error {
	return &Error{File: file, Reason: "the file is empty: a policy needs a rules: list (see policy.example.yaml)"}
}

func emptyDoc(doc *yaml.Node) bool {
	return len(doc.Content) == 0 || doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].ShortTag() == "!!null"
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlError(file string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := errorLine(data)
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		msg = m[2]
		if line == 0 {
			line, _ = strconv.Atoi(m[1])
		}
	}
	reason := "not valid YAML: " + msg
	if strings.Contains(msg, "alphabetic or numeric character") {
		reason += ` (quote globs that start with *, as in ["*"]: YAML reads a bare * as an alias)`
	}
	return &Error{File: file, Line: line, Reason: reason, Err: err}
}

// errorLine is the line a YAML error is on: the one after the longest run
// of whole lines that still parses. yaml.v3's own numbers point at the start
// of the enclosing list or mapping for many errors, one line early, and are
// missing on the first line and for bad characters. A parse stops at its
// error, so trying every prefix from the longest usually costs little; an
// error that only shows at the end (an unclosed list) costs a parse per
// line, so the search gives up, returning 0, past a few megabytes.
func errorLine(data []byte) int {
	const budget = 4 << 20
	lines := bytes.SplitAfter(data, []byte("\n"))
	end, spent := len(data), 0
	for k := len(lines) - 1; k >= 0 && spent < budget; k-- {
		end -= len(lines[k])
		spent += end
		if parses(data[:end]) {
			return k + 1
		}
	}
	return 0
}

func parses(data []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		switch err := dec.Decode(&n); {
		case errors.Is(err, io.EOF):
			return true
		case err != nil:
			return false
		}
	}
}

var (
	// The ID shapes the bot's configuration accepts (config.go).
	userPattern    = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	groupPattern   = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
	channelPattern = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)
	// Shapes the deploy package accepts, repeated so this package depends on
	// nothing but YAML.
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	accountPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	// A rule name is shown in bold in Slack and travels in button values:
	// nothing that ends the bold, starts a mention or needs escaping.
	namePattern = regexp.MustCompile(`^[\p{L}\p{N}](?:[\p{L}\p{N} ._()/'+#-]{0,62}[\p{L}\p{N}.)])?$`)
	// A mention pasted from Slack: <@U…>, <#C…|name>, <!subteam^S…|@name>.
	mentionPattern = regexp.MustCompile(`^<(?:[@#]|!subteam\^)([A-Z0-9]+)(?:\|[^>]*)?>$`)
)

var (
	topKeys       = []string{"rules"}
	ruleKeys      = []string{"name", "applications", "deployment_groups", "accounts", "regions", "channels", "requesters", "approvers", "approvals"}
	principalKeys = []string{"users", "groups"}
)

// parser collects every problem, so one `policy check` run shows them all.
type parser struct {
	file string
	errs []*Error
}

func (p *parser) errorf(n *yaml.Node, key, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Key: key, Reason: fmt.Sprintf(format, args...)})
}

// result is nil, the one error, or all of them in file order.
func (p *parser) result() error {
	sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
	switch len(p.errs) {
	case 0:
		return nil
	case 1:
		return p.errs[0]
	}
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

func (p *parser) policy(root *yaml.Node) *Policy {
	pol := &Policy{}
	root = resolve(root)
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "", "the file must be a mapping with a rules: list (got %s)", kind(root))
		return pol
	}
	f := p.fields(root, "", topKeys)
	rules, ok := f["rules"]
	if !ok {
		p.errorf(root, "rules", "missing: list the rules, the first to match a deployment deciding (see policy.example.yaml)")
		return pol
	}
	seq := resolve(rules.val)
	if seq.Kind == yaml.SequenceNode && len(seq.Content) == 0 || isNull(seq) {
		p.errorf(seq, "rules", "is empty: list at least one rule (a deployment no rule matches cannot be stopped, so an empty policy would refuse everything)")
		return pol
	}
	if seq.Kind != yaml.SequenceNode {
		p.errorf(seq, "rules", "must be a list of rules, each starting with \"- name:\" (got %s)", kind(seq))
		return pol
	}
	names := map[string]*yaml.Node{}
	for i, n := range seq.Content {
		pol.Rules = append(pol.Rules, p.rule(n, fmt.Sprintf("rules[%d]", i), names))
	}
	return pol
}

func (p *parser) rule(n *yaml.Node, at string, names map[string]*yaml.Node) Rule {
	n = resolve(n)
	r := Rule{Line: n.Line, Applications: []string{"*"}, Accounts: []string{"*"}, Regions: []string{"*"}}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, at, "must be a mapping with name:, deployment_groups: and requesters: (got %s)", kind(n))
		return r
	}
	f := p.fields(n, at, ruleKeys)
	valid := true // every part parsed, so whole-rule checks make sense

	if v, ok := f["name"]; ok {
		r.Name = p.name(v.val, at+".name", names)
	} else {
		p.errorf(n, at+".name", "missing: give every rule a name (confirmations refer to their rule by it)")
	}
	globs := []struct {
		key   string
		dst   *[]string
		check func(string) string
	}{
		{"applications", &r.Applications, nil},
		{"deployment_groups", &r.DeploymentGroups, nil},
		{"accounts", &r.Accounts, accountProblem},
		{"regions", &r.Regions, regionProblem},
	}
	for _, g := range globs {
		v, ok := f[g.key]
		if !ok {
			continue
		}
		list, ok := p.list(v.val, at+"."+g.key, `globs such as ["*"]`, func(s string) string {
			if problem := globProblem(s); problem != "" || g.check == nil {
				return problem
			}
			return g.check(s)
		})
		switch {
		case !ok:
			valid = false
		case len(list) == 0:
			p.errorf(v.key, at+"."+g.key, `is empty, so the rule would never match: list globs, or leave %s out to match any`, g.key)
			valid = false
		default:
			*g.dst = list
		}
	}
	// Groups have no default: a rule that forgot them would silently cover
	// production.
	if _, ok := f["deployment_groups"]; !ok {
		p.errorf(n, at+".deployment_groups", `missing: list the deployment groups this rule covers, or ["*"] for every group`)
		valid = false
	}

	if v, ok := f["channels"]; ok {
		list, ok := p.list(v.val, at+".channels", "channel IDs such as [C0123ABCD]", channelProblem)
		switch {
		case !ok:
			valid = false
		case len(list) == 0:
			p.errorf(v.key, at+".channels", "is empty, so nobody could use the rule: list channel IDs, or leave channels out to allow any channel")
			valid = false
		default:
			r.Channels = list
		}
	}

	if v, ok := f["requesters"]; ok {
		pr, ok := p.principals(v.val, at+".requesters")
		switch {
		case !ok:
			valid = false
		case pr.empty():
			p.errorf(v.key, at+".requesters", "names nobody, so nobody could satisfy the rule: add users or groups")
			valid = false
		}
		r.Requesters = pr
	} else {
		p.errorf(n, at+".requesters", "missing: name who may ask to stop these deployments, such as {groups: [S0123ABCD]}")
		valid = false
	}
	if v, ok := f["approvers"]; ok {
		pr, ok := p.principals(v.val, at+".approvers")
		switch {
		case !ok:
			valid = false
		case pr.empty():
			p.errorf(v.key, at+".approvers", "names nobody: add users or groups, or leave approvers out so the requesters approve")
			valid = false
		}
		r.Approvers, r.ApproversSet = pr, true
	}
	if v, ok := f["approvals"]; ok {
		count, ok := p.approvals(v.val, at+".approvals")
		r.Approvals, valid = count, valid && ok
		if valid {
			p.reachable(&r, resolve(v.val), at+".approvals")
		}
	}
	return r
}

// reachable refuses approvals that no requester could ever collect: when
// only named users approve, the requester among them does not count.
func (p *parser) reachable(r *Rule, n *yaml.Node, at string) {
	a := r.approvers()
	if r.Approvals == 0 || len(a.Groups) > 0 {
		return
	}
	approvers := union(a, Principals{}).Users
	most := len(approvers) // a requester from a group may be none of them, so all can count
	if len(r.Requesters.Groups) == 0 {
		most = 0
		for _, req := range r.Requesters.Users {
			others := len(approvers)
			if slices.Contains(approvers, req) {
				others--
			}
			most = max(most, others)
		}
	}
	if r.Approvals <= most {
		return
	}
	who := "users " + joinWords(approvers, "and")
	if len(approvers) == 1 {
		who = "user " + approvers[0]
	}
	p.errorf(n, at, "must be at most %d here (got %d): the approvers are only %s and no user groups, "+
		"and the requester's own approval never counts; add approvers or lower approvals", most, r.Approvals, who)
}

func (p *parser) name(n *yaml.Node, at string, seen map[string]*yaml.Node) string {
	s, ok := p.str(n, at)
	if !ok {
		return ""
	}
	n = resolve(n)
	switch {
	case s == "":
		p.errorf(n, at, "is empty: give every rule a name")
	case !namePattern.MatchString(s):
		p.errorf(n, at, "%q: use up to 64 letters, digits, spaces and . _ - ( ) / ' + #, starting with a letter or digit", s)
	default:
		// Case does not count: "Production" and "production" would read as
		// one rule in Slack.
		if prev, dup := seen[strings.ToLower(s)]; dup {
			p.errorf(n, at, "%q is already the name of the rule at line %d: rule names must be unique", s, prev.Line)
		} else {
			seen[strings.ToLower(s)] = n
		}
	}
	return s
}

func (p *parser) principals(n *yaml.Node, at string) (Principals, bool) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, at, "must be a mapping with users: and/or groups: lists, such as {groups: [S0123ABCD]} (got %s)", kind(n))
		return Principals{}, false
	}
	var pr Principals
	before := len(p.errs)
	f := p.fields(n, at, principalKeys)
	if v, ok := f["users"]; ok {
		pr.Users, _ = p.list(v.val, at+".users", "user IDs such as [U0123ABCD]", userProblem)
	}
	if v, ok := f["groups"]; ok {
		pr.Groups, _ = p.list(v.val, at+".groups", "user-group IDs such as [S0123ABCD]", groupProblem)
	}
	return pr, len(p.errs) == before
}

func (p *parser) approvals(n *yaml.Node, at string) (int, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		p.errorf(n, at, "must be a whole number from 0 to %d (got %s)", MaxApprovals, kind(n))
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	switch {
	case v < 0 || err != nil && strings.HasPrefix(n.Value, "-"):
		p.errorf(n, at, "must be 0 or more (got %s)", n.Value)
	case v > MaxApprovals || errors.Is(err, strconv.ErrRange):
		p.errorf(n, at, "must be %d or less (got %s): the approvals travel in the confirmation button, which Slack limits to 2,000 characters", MaxApprovals, n.Value)
	case err != nil:
		p.errorf(n, at, "must be a whole number from 0 to %d (got %s)", MaxApprovals, n.Value)
	default:
		return int(v), true
	}
	return 0, false
}

type field struct{ key, val *yaml.Node }

// fields returns m's keys, refusing unknown, repeated and merge keys:
// yaml.v3 checks none of them when decoding into a Node.
func (p *parser) fields(m *yaml.Node, at string, known []string) map[string]field {
	out := map[string]field{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), m.Content[i+1]
		key := k.Value
		if at != "" {
			key = at + "." + k.Value
		}
		switch {
		case k.Kind != yaml.ScalarNode || k.Value == "":
			p.errorf(k, at, "has a key that is %s: keys are words such as %s", kind(k), known[0])
		case k.ShortTag() == "!!merge":
			p.errorf(k, key, "merge keys are not supported: write the keys out in each rule")
		case !slices.Contains(known, k.Value):
			p.errorf(k, key, "unknown key (%s)", suggest(k.Value, known))
		default:
			if prev, dup := out[k.Value]; dup {
				p.errorf(k, key, "appears twice (first at line %d)", prev.key.Line)
				continue
			}
			out[k.Value] = field{k, v}
		}
	}
	return out
}

// suggest names the known key the unknown one was probably meant to be.
func suggest(key string, known []string) string {
	for _, k := range known {
		if len(key) >= 3 && distance(strings.ToLower(key), k) <= 2 {
			return "did you mean " + k + "?"
		}
	}
	return "known keys: " + strings.Join(known, ", ")
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// list checks that n is a list of strings that each pass check, which
// returns "" or the problem.
func (p *parser) list(n *yaml.Node, at, want string, check func(string) string) ([]string, bool) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		got := kind(n)
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
			got += fmt.Sprintf("; write [%q]", n.Value)
		}
		p.errorf(n, at, "must be a list of %s (got %s)", want, got)
		return nil, false
	}
	ok := true
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		key := fmt.Sprintf("%s[%d]", at, i)
		s, good := p.str(item, key)
		if good {
			if problem := check(s); problem != "" {
				p.errorf(resolve(item), key, "%s", problem)
				good = false
			}
		}
		if !good {
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}

func (p *parser) str(n *yaml.Node, at string) (string, bool) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		return n.Value, true
	}
	got := kind(n)
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		got += fmt.Sprintf("; quote it: %q", n.Value)
	}
	p.errorf(n, at, "must be a string (got %s)", got)
	return "", false
}

// resolve follows aliases, so anchors can share a list between rules. The
// walk is only as deep as the format, so aliases cannot make it explode.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// kind says what a node is, for "(got …)".
func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!bool":
			return n.Value
		case "!!null":
			return "nothing"
		}
		return "a " + n.ShortTag() + " value"
	}
	return "an alias"
}

func globProblem(g string) string {
	if g == "" {
		return `an empty glob matches nothing: use "*" to match anything`
	}
	// Match checks the whole pattern even when the name does not match.
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Sprintf("%q is not a valid glob (%v; see Go's path.Match)", g, err)
	}
	return ""
}

func isGlob(s string) bool { return strings.ContainsAny(s, `*?[\`) }

func regionProblem(s string) string {
	if isGlob(s) || regionPattern.MatchString(s) {
		return ""
	}
	return fmt.Sprintf(`%q is not an AWS region such as eu-west-1 (globs such as "eu-*" are allowed)`, s)
}

func accountProblem(s string) string {
	if isGlob(s) || accountPattern.MatchString(s) {
		return ""
	}
	return fmt.Sprintf(`%q is not an account name as configured in the bot, such as prod or default (letters, digits, ".", "_" and "-")`, s)
}

func userProblem(s string) string {
	switch {
	case userPattern.MatchString(s):
		return ""
	case strings.HasPrefix(s, "@"):
		return fmt.Sprintf("%q is a name: use the member ID such as U0123ABCD (in Slack: the profile's ⋮ menu → Copy member ID)", s)
	case groupPattern.MatchString(s):
		return fmt.Sprintf("%q is a user-group ID: put it under groups", s)
	}
	return idProblem(s, "a user ID such as U0123ABCD")
}

func groupProblem(s string) string {
	switch {
	case groupPattern.MatchString(s):
		return ""
	case strings.HasPrefix(s, "@"):
		return fmt.Sprintf("%q is a handle: use the user-group ID such as S0123ABCD (use IDs, not names)", s)
	case userPattern.MatchString(s):
		return fmt.Sprintf("%q is a user ID: put it under users", s)
	}
	return idProblem(s, "a user-group ID such as S0123ABCD")
}

func channelProblem(s string) string {
	switch {
	case channelPattern.MatchString(s):
		return ""
	case strings.HasPrefix(s, "#"):
		return fmt.Sprintf("%q is a channel name: use the channel ID such as C0123ABCD (in Slack: channel details, at the bottom)", s)
	case s == "*":
		return `"*" is not a channel ID: leave channels out to allow any channel`
	}
	return idProblem(s, "a channel ID such as C0123ABCD")
}

func idProblem(s, want string) string {
	if m := mentionPattern.FindStringSubmatch(s); m != nil {
		return fmt.Sprintf("%q is a Slack mention: write the bare ID %s", s, m[1])
	}
	return fmt.Sprintf("%q is not %s (use IDs, not names)", s, want)
}
