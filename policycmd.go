package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/stopdeploy/stopdeploy/auth"
	"github.com/stopdeploy/stopdeploy/policy"
)

// runPolicy is `stopdeploy policy check|explain`: questions about a policy
// file answered without Slack or AWS (explain asks Slack only for the user
// groups -member does not give).
func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("policy: say check or explain (stopdeploy help)")
	}
	switch args[0] {
	case "check":
		return policyCheck(args[1:], stdout)
	case "explain":
		return policyExplain(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("policy: unknown command %q: say check or explain", args[0])
}

// policyFile is the file named on the command line, else STOPDEPLOY_POLICY_FILE.
func policyFile(arg string) (string, error) {
	if arg != "" {
		return arg, nil
	}
	if f := os.Getenv("STOPDEPLOY_POLICY_FILE"); f != "" {
		return f, nil
	}
	return "", errors.New("policy: name a file, or set STOPDEPLOY_POLICY_FILE")
}

// policyCheck validates a file and prints its rules in plain words.
func policyCheck(args []string, stdout io.Writer) error {
	if len(args) > 1 {
		return errors.New("policy check: at most one file")
	}
	file, err := policyFile(strings.Join(args, ""))
	if err != nil {
		return err
	}
	p, err := policy.Load(file)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK\n%s", p.Describe())
	return nil
}

// members is the repeated -member S0X=U1,U2 flag.
type members map[string][]string

func (m members) String() string { return fmt.Sprint(map[string][]string(m)) }

func (m members) Set(v string) error {
	group, users, ok := strings.Cut(v, "=")
	if !ok || !groupIDPattern.MatchString(group) {
		return fmt.Errorf("want S0GROUP=U1,U2, got %q", v)
	}
	m[group] = nil // a group given with nobody in it is known to be empty
	for _, u := range strings.Split(users, ",") {
		if u = strings.TrimSpace(u); u != "" {
			if !userIDPattern.MatchString(u) {
				return fmt.Errorf("%q is not a user ID", u)
			}
			m[group] = append(m[group], u)
		}
	}
	return nil
}

// policyExplain says which rule applies to a deployment and what one user
// may do under it.
func policyExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "policy file (default STOPDEPLOY_POLICY_FILE)")
	user := fs.String("user", "", "Slack user ID (U…)")
	t := policy.Target{}
	fs.StringVar(&t.Application, "application", "", "CodeDeploy application")
	fs.StringVar(&t.Group, "group", "", "deployment group")
	fs.StringVar(&t.Account, "account", defaultAccount, "the bot's name for the account")
	fs.StringVar(&t.Region, "region", "", "AWS region (default AWS_REGION)")
	channel := fs.String("channel", "", "channel ID where it is asked (default: not checked)")
	given := members{}
	fs.Var(given, "member", "S0GROUP=U1,U2: a user group's members, so no Slack call is needed (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if t.Region == "" {
		t.Region = os.Getenv("AWS_REGION")
	}
	switch {
	case !userIDPattern.MatchString(*user):
		return errors.New("policy explain: -user must be a Slack user ID such as U0123ABCD")
	case t.Application == "" || t.Group == "":
		return errors.New("policy explain: -application and -group are required")
	}
	path, err := policyFile(*file)
	if err != nil {
		return err
	}
	p, err := policy.Load(path)
	if err != nil {
		return err
	}
	lookup, err := explainMembership(p, t, given)
	if err != nil {
		return err
	}
	e, err := policy.Explain(ctx, p, t, *user, *channel, lookup)
	fmt.Fprint(stdout, e.String())
	if err != nil {
		return fmt.Errorf("policy explain: %w", err)
	}
	return nil
}

// explainMembership answers from -member alone when it names every group
// of the deciding rule; otherwise it asks Slack (usergroups.users.list,
// with SLACK_BOT_TOKEN) for the others.
func explainMembership(p *policy.Policy, t policy.Target, given members) (policy.Membership, error) {
	offline := func(_ context.Context, group, user string) (bool, error) {
		users, ok := given[group]
		if !ok {
			return false, fmt.Errorf("user group %s: not given with -member", group)
		}
		return slices.Contains(users, user), nil
	}
	r, ok := p.RuleFor(t)
	if !ok {
		return offline, nil
	}
	var missing []string
	for _, g := range r.Groups() {
		if _, ok := given[g]; !ok {
			missing = append(missing, g)
		}
	}
	if len(missing) == 0 {
		return offline, nil
	}
	cfg, err := loadSlackOnly()
	if err != nil {
		return nil, fmt.Errorf("policy explain: rule %q names %s, not given with -member, so Slack must be asked: %w", r.Name, strings.Join(missing, ", "), err)
	}
	groups := auth.NewGroups(newSlackAPI(cfg, zerolog.Nop()))
	return func(ctx context.Context, group, user string) (bool, error) {
		if _, ok := given[group]; ok {
			return offline(ctx, group, user)
		}
		return groups.Member(ctx, group, user)
	}, nil
}

// loadSlackOnly is the configuration explain needs to list user groups:
// the bot token and the API URL.
func loadSlackOnly() (config, error) {
	cfg := config{BotToken: secret(os.Getenv("SLACK_BOT_TOKEN")), APIURL: cmp.Or(os.Getenv("SLACK_API_URL"), "https://slack.com/api/")}
	if !cfg.BotToken.hasPrefix("xoxb-") {
		return cfg, &configError{"SLACK_BOT_TOKEN", "must be a bot token starting with xoxb- (or give every group with -member)"}
	}
	if !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/"
	}
	return cfg, nil
}
