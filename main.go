// Command stopdeploy is a Slack bot that stops AWS CodeDeploy deployments
// from a slash command, after a public confirmation.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/auth"
	"github.com/stopdeploy/stopdeploy/bot"
	"github.com/stopdeploy/stopdeploy/deploy"
	"github.com/stopdeploy/stopdeploy/metrics"
	"github.com/stopdeploy/stopdeploy/policy"
	"github.com/stopdeploy/stopdeploy/sandbox"
	"github.com/stopdeploy/stopdeploy/socket"
	"github.com/stopdeploy/stopdeploy/state"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process at once
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(newRedactor(os.Stderr), "stopdeploy:", err)
		os.Exit(1)
	}
}

// run is the whole program; main only adds signals and the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return runBot(ctx, stdout)
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return printHelp(stdout)
	case "version", "-version", "--version":
		return printVersion(stdout)
	case "sandbox":
		return runSandbox(ctx, args[1:], stdout, stderr)
	case "check":
		return runCheck(ctx, stdout)
	case "policy":
		return runPolicy(ctx, args[1:], stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout)
	}
	if err := printHelp(stderr); err != nil {
		return err
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func printHelp(w io.Writer) error {
	fmt.Fprint(w, `stopdeploy: stop AWS CodeDeploy deployments from Slack, after a public confirmation.

Usage:
  stopdeploy           run the bot (Socket Mode), configured by the environment below
  stopdeploy check     check the configuration, the Slack tokens and scopes, the user
                       groups and the AWS credentials, changing nothing; exits 1 on a failure.
                       It proves codedeploy:StopDeployment by reading a random deployment ID
                       and, only once CodeDeploy says it does not exist, stopping that same ID
  stopdeploy policy check [FILE]
                       validate a policy file (default STOPDEPLOY_POLICY_FILE) and print
                       its rules in order, in plain words; exits 1 on an error
  stopdeploy policy explain -user U… -application A -group G [-account NAME]
                       [-region R] [-channel C] [-member S0X=U1,U2]…
                       which rule applies, whether the user may request and approve, and
                       how many approvals it needs; offline when -member gives every group
  stopdeploy audit d-… [-account NAME] [-region R]
                       a deployment's history from STOPDEPLOY_STATE_TABLE, in order
  stopdeploy sandbox   try the bot in a browser against loopback fakes (-addr host:port)
  stopdeploy version   print the module version and VCS revision it was built from
  stopdeploy help      show this help

AWS settings come from the SDK's default chain: AWS_REGION, credentials, profiles,
roles, and AWS_ENDPOINT_URL_CODEDEPLOY (AWS_ENDPOINT_URL_STS for the roles of
STOPDEPLOY_ACCOUNTS) for a non-default endpoint. Several accounts: docs/accounts.md.

Environment:
`)
	return printConfigUsage(w)
}

// printVersion prints what the build info says: the module version (a
// tag with go install, "(devel)" in a checkout) and the VCS revision and
// time when built from a git checkout.
func printVersion(w io.Writer) error {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		_, err := fmt.Fprintln(w, "stopdeploy: no build information in this binary")
		return err
	}
	line := "stopdeploy " + cmp.Or(info.Main.Version, "(devel)")
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		line += " revision " + rev
		if settings["vcs.modified"] == "true" {
			line += " (modified)"
		}
		if at := settings["vcs.time"]; at != "" {
			line += " " + at
		}
	}
	_, err := fmt.Fprintln(w, line+" "+info.GoVersion)
	return err
}

// runSandbox runs the unmodified bot against the offline sandbox: the
// loopback Slack and CodeDeploy fakes and a page that shows a channel. The
// sandbox's environment replaces the developer's, so the bot reads it
// through the same loadConfig and LoadDefaultConfig as in production and
// reaches nothing beyond loopback.
func runSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stopdeploy sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", sandbox.DefaultAddr, "`host:port` of the page; the host must be loopback (port 0 picks a free one)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sandbox: unexpected argument %q", fs.Arg(0))
	}
	sb, err := sandbox.Start(ctx, sandbox.Options{Addr: *addr})
	if err != nil {
		return fmt.Errorf("sandbox.Start: %w", err)
	}
	defer sb.Close()
	for k, v := range sb.Env() {
		if v == "" {
			err = os.Unsetenv(k)
		} else {
			err = os.Setenv(k, v)
		}
		if err != nil {
			return fmt.Errorf("sandbox: setting %s: %w", k, err)
		}
	}
	fmt.Fprintf(stderr, "stopdeploy sandbox: open %s\n", sb.URL())
	fmt.Fprintf(stderr, "stopdeploy sandbox: as Alice, type /stopdeploy %s rollback; production needs a second person, so switch to Bob, click Approve and watch the thread. "+
		"Staging stops with one click: try /stopdeploy %s as Carol. Ctrl-C quits\n", sandbox.Running, sandbox.Staging)
	return runBot(ctx, io.MultiWriter(stdout, sb.LogSink()))
}

// runBot reads the configuration, wires Slack and AWS, and runs the bot
// until ctx ends.
func runBot(ctx context.Context, stdout io.Writer) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	level, _ := parseLevel(cfg.LogLevel) // validated by loadConfig
	logger := newLogger(stdout, level, cfg.LogFormat, cfg.AppToken.reveal(), cfg.BotToken.reveal())

	pol, err := cfg.loadPolicy()
	if err != nil {
		return err
	}
	awsCfg, err := loadAWSConfig(ctx)
	if err != nil {
		return err
	}
	places, err := newPlaces(ctx, cfg, awsCfg)
	if err != nil {
		return err
	}
	var store *state.Store
	if cfg.StateTable != "" {
		if store, err = openStateTable(ctx, cfg, awsCfg); err != nil {
			return err
		}
	}

	var obs bot.Observer
	var serveMetrics func(context.Context) error
	if cfg.HTTPAddr != "" {
		m := metrics.New()
		srv, err := metrics.Listen(cfg.HTTPAddr, m.Handler())
		if err != nil {
			return &configError{"STOPDEPLOY_HTTP_ADDR", "cannot be listened on: " + err.Error()}
		}
		logger.Info().Str("addr", srv.Addr()).Msg("serving health and metrics")
		obs, serveMetrics = m, srv.Serve
	}

	b := newBot(cfg, pol, places, store, logger, obs)
	logger.Info().
		Str("places", placesText(places.Places())).
		Str("policy", cmp.Or(cfg.PolicyFile, "allow-list variables")).
		Int("rules", len(pol.Rules)).
		Msg("starting")
	metricsDone := make(chan struct{})
	go func() {
		defer close(metricsDone)
		if serveMetrics == nil {
			return
		}
		// The bot keeps working without its health endpoint; say so at once.
		if err := serveMetrics(ctx); err != nil {
			logger.Error().Err(err).Msg("health and metrics server failed")
		}
	}()
	if err := b.Run(ctx); err != nil {
		return fmt.Errorf("bot.Run: %w", err)
	}
	<-metricsDone
	logger.Info().Msg("stopped")
	return nil
}

// loadAWSConfig reads the SDK's default chain (environment, shared files,
// roles, AWS_ENDPOINT_URL_CODEDEPLOY).
func loadAWSConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(
		// Keep a connection for every call that may be in flight: a burst
		// during an incident would otherwise dial and drop connections.
		func(t *http.Transport) { t.MaxIdleConnsPerHost = deploy.DefaultMaxInFlight })))
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	return cfg, nil
}

// newSlackAPI is the Web API client of the bot token.
func newSlackAPI(cfg config, logger zerolog.Logger, opts ...slack.Option) *slack.Client {
	return slack.New(cfg.BotToken.reveal(), append([]slack.Option{
		slack.OptionAPIURL(cfg.APIURL),
		slack.OptionAppLevelToken(cfg.AppToken.reveal()),
		slack.OptionHTTPClient(slackHTTPClient()),
		// After OptionHTTPClient, which it wraps: wait out HTTP 429 with its
		// Retry-After, and retry connection errors.
		slack.OptionRetryConfig(slackRetryConfig()),
		slack.OptionLog(slackLogger(logger)),
		slack.OptionDebug(logger.GetLevel() <= zerolog.DebugLevel),
	}, opts...)...)
}

// newBot wires the production dependencies. obs may be nil.
func newBot(cfg config, pol *policy.Policy, places *deploy.Places, store *state.Store, logger zerolog.Logger, obs bot.Observer) *bot.Bot {
	api := newSlackAPI(cfg, logger)
	deps := bot.Deps{
		Socket: socket.New(api),
		Slack:  api,
		// Its own connections: answers to a flood of requests cannot make
		// a stop's thread reply and card wait for a connection.
		Reports:  newSlackAPI(cfg, logger),
		Policy:   pol,
		Members:  auth.NewGroups(api).Member,
		Deploy:   places,
		Log:      logger,
		Observer: obs,
	}
	if store != nil { // a nil *state.Store in the interface would not be nil
		deps.Store = store
	}
	return bot.New(bot.Config{
		ConfirmTimeout: cfg.ConfirmTimeout,
		FollowInterval: cfg.FollowInterval,
		FollowTimeout:  cfg.FollowTimeout,
		AuditChannel:   cfg.AuditChannel,
		SigningKey:     cfg.signingKey(),
	}, deps)
}

var _ bot.Observer = (*metrics.Metrics)(nil)

func placesText(places []deploy.Place) string {
	names := make([]string, len(places))
	for i, p := range places {
		names[i] = p.String()
	}
	return strings.Join(names, ",")
}

// newCodeDeploy is a CodeDeploy client with its own bounded connections,
// whose answers are refused past deploy.MaxAnswerBytes.
func newCodeDeploy(awsCfg aws.Config) *codedeploy.Client {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		// Keep a connection for every call that may be in flight (a burst
		// during an incident would otherwise dial and drop them), and no more.
		t.MaxIdleConnsPerHost = deploy.DefaultMaxInFlight
		t.MaxConnsPerHost = deploy.DefaultMaxInFlight
	})
	return codedeploy.NewFromConfig(awsCfg, func(o *codedeploy.Options) {
		o.HTTPClient = deploy.LimitAnswers(httpClient, deploy.MaxAnswerBytes)
	})
}

// slackHTTPClient reuses connections across a burst of requests (the
// default transport keeps two idle connections per host), and opens at
// most slackMaxConns: with Slack slow, more work waits for a connection
// instead of opening sockets until the process runs out of descriptors.
const slackMaxConns = 64

func slackHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = slackMaxConns
	t.MaxConnsPerHost = slackMaxConns
	return &http.Client{Timeout: 30 * time.Second, Transport: leanAnswers{t}}
}

// slackRetryConfig is slack-go's default policy (3 retries) for rate limits
// and connection errors, with less jitter added to Slack's Retry-After.
func slackRetryConfig() slack.RetryConfig {
	c := slack.DefaultRetryConfig()
	c.RetryAfterJitter = 250 * time.Millisecond
	c.Handlers = slack.AllBuiltinRetryHandlers(c)
	return c
}
