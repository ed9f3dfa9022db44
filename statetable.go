package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/stopdeploy/stopdeploy/state"
)

// openStateTable opens STOPDEPLOY_STATE_TABLE through the bot's AWS
// configuration (AWS_ENDPOINT_URL_DYNAMODB honoured by the SDK), in the
// first region the bot searches. A missing table or a wrong key schema is
// an error naming the variable.
func openStateTable(ctx context.Context, cfg config, awsCfg aws.Config) (*state.Store, error) {
	region := awsCfg.Region
	if len(cfg.Regions) > 0 && region == "" {
		region = cfg.Regions[0]
	}
	client := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if o.Region == "" {
			o.Region = region
		}
	})
	host, _ := os.Hostname()
	st, err := state.Open(ctx, client, cfg.StateTable, state.Options{
		Owner: host + "-" + strconv.Itoa(os.Getpid()),
		// A lease outlives a few missed renewals (one per follow-up
		// interval), and another process takes over within a lease and an
		// interval once its holder is gone.
		LeaseTTL: max(3*cfg.FollowInterval, 2*time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("STOPDEPLOY_STATE_TABLE: %w", err)
	}
	return st, nil
}

// runAudit is `stopdeploy audit <deployment-id> [-account NAME] [-region R]`:
// a deployment's history from the state table, in order.
func runAudit(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("audit: name a deployment ID (stopdeploy audit d-LGUMS25CC [-account NAME] [-region R])")
	}
	id := args[0]
	account, region := defaultAccount, ""
	for i := 1; i+1 < len(args); i += 2 {
		switch args[i] {
		case "-account":
			account = args[i+1]
		case "-region":
			region = args[i+1]
		default:
			return fmt.Errorf("audit: unknown flag %q", args[i])
		}
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	if cfg.StateTable == "" {
		return &configError{"STOPDEPLOY_STATE_TABLE", "is not set: the audit history is kept only in the state table (and in the log)"}
	}
	awsCfg, err := loadAWSConfig(ctx)
	if err != nil {
		return err
	}
	if region == "" {
		region = awsCfg.Region
		if len(cfg.Regions) > 0 {
			region = cfg.Regions[0]
		}
	}
	st, err := openStateTable(ctx, cfg, awsCfg)
	if err != nil {
		return err
	}
	d := state.Deployment{Account: account, Region: region, ID: id}
	records, err := st.History(ctx, d)
	if err != nil {
		return fmt.Errorf("audit %s: %w", d, err)
	}
	if len(records) == 0 {
		fmt.Fprintf(stdout, "%s: no audit history in %s\n", d, cfg.StateTable)
		return nil
	}
	fmt.Fprintf(stdout, "%s (%d events)\n", d, len(records))
	for _, r := range records {
		line := fmt.Sprintf("%s  %-12s %-10s %-10s %s", r.At.UTC().Format(time.RFC3339), r.Event, r.User, r.Channel, r.Outcome)
		if r.Detail != "" {
			line += ": " + r.Detail
		}
		fmt.Fprintln(stdout, line)
	}
	return nil
}
