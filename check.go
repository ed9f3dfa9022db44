package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/deploy"
)

// requiredScopes are the bot scopes of the Web API methods the bot calls,
// as in slack-app-manifest.yaml (a test keeps the two equal).
var requiredScopes = []struct {
	scope, why string
	needed     func(config) bool
}{
	{"commands", "the /stopdeploy slash command", always},
	{"chat:write", "chat.postMessage, chat.update and chat.postEphemeral", always},
	{"usergroups:read", "usergroups.users.list for STOPDEPLOY_ALLOWED_GROUPS", func(c config) bool { return len(c.AllowedGroups) > 0 }},
}

func always(config) bool { return true }

// probeID is a random, well-formed deployment ID. check reads it first;
// only when CodeDeploy answers that it does not exist does check also send
// StopDeployment for that same ID: a deployment that did not exist a moment
// ago cannot be stopped, so the probe proves the stop permission with no
// side effect. IDs are "d-" and nine upper-case letters or digits; a random
// one names a real deployment with probability about 36^-9 per deployment.
func probeID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := []byte("d-000000000")
	for i := 2; i < len(b); i++ {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}

var errChecksFailed = errors.New("some checks failed")

// checkResult is one line of `stopdeploy check`.
type checkResult struct {
	name   string
	ok     bool
	detail string
	fix    string
}

// runCheck validates the configuration and proves, without changing
// anything, that Slack and AWS accept the bot. It prints one line per check
// and fails if any check does.
func runCheck(ctx context.Context, stdout io.Writer) error {
	out := tabwriter.NewWriter(newRedactor(stdout), 0, 4, 2, ' ', 0)
	failed := false
	report := func(r checkResult) {
		status := "OK"
		if !r.ok {
			status, failed = "FAIL", true
		}
		line := r.detail
		if !r.ok && r.fix != "" {
			line += ". Fix: " + r.fix
		}
		fmt.Fprintf(out, "%s\t%s\t%s\n", status, r.name, line)
	}
	defer out.Flush()

	cfg, err := loadConfig()
	if err != nil {
		report(checkResult{name: "configuration", detail: err.Error(), fix: "see `stopdeploy help` for every variable"})
		return errChecksFailed
	}
	report(checkResult{name: "configuration", ok: true, detail: "environment is valid"})

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, r := range checkSlack(ctx, cfg) {
		report(r)
	}
	for _, r := range checkAWS(ctx, cfg) {
		report(r)
	}
	if cfg.StateTable != "" {
		report(checkStateTable(ctx, cfg))
	}

	if failed {
		return errChecksFailed
	}
	return nil
}

func checkSlack(ctx context.Context, cfg config) []checkResult {
	// Called within AuthTestContext, on this goroutine.
	var scopes string
	api := newSlackAPI(cfg, zerolog.Nop(), slack.OptionOnResponseHeaders(func(path string, h http.Header) {
		if path == "auth.test" {
			scopes = h.Get("X-OAuth-Scopes")
		}
	}))

	var results []checkResult
	resp, err := api.AuthTestContext(ctx)
	botOK := err == nil
	if !botOK {
		results = append(results, checkResult{name: "slack bot token", detail: "auth.test failed: " + err.Error(),
			fix: "copy the Bot User OAuth Token (xoxb-…) from OAuth & Permissions into SLACK_BOT_TOKEN, and check SLACK_API_URL"})
	} else {
		results = append(results, checkResult{name: "slack bot token", ok: true,
			detail: fmt.Sprintf("bot %s (%s) in team %s", resp.User, resp.UserID, resp.Team)})
		results = append(results, checkScopes(cfg, scopes))
	}

	app := slack.New(cfg.AppToken.reveal(), slack.OptionAPIURL(cfg.APIURL), slack.OptionHTTPClient(slackHTTPClient()))
	if appResp, err := app.AuthTestContext(ctx); err != nil {
		results = append(results, checkResult{name: "slack app token", detail: "auth.test failed: " + err.Error(),
			fix: "create an app-level token with connections:write under Basic Information → App-Level Tokens and put it in SLACK_APP_TOKEN"})
	} else {
		results = append(results, checkResult{name: "slack app token", ok: true, detail: "accepted" + when(appResp.TeamID != "", " for team "+appResp.TeamID)})
	}

	if !botOK {
		return results // user groups need a working bot token
	}
	for _, group := range cfg.AllowedGroups {
		members, err := api.GetUserGroupMembersContext(ctx, group)
		name := "user group " + group
		if err != nil {
			results = append(results, checkResult{name: name, detail: "usergroups.users.list failed: " + err.Error(),
				fix: "check the ID in STOPDEPLOY_ALLOWED_GROUPS (Slack → People → User groups → the group's ID, S…) and the usergroups:read scope"})
			continue
		}
		results = append(results, checkResult{name: name, ok: true, detail: fmt.Sprintf("%d members", len(members))})
	}
	return results
}

// checkScopes compares the bot token's granted scopes (auth.test's
// x-oauth-scopes header) with the ones the code needs.
func checkScopes(cfg config, header string) checkResult {
	granted := strings.Split(strings.ReplaceAll(header, " ", ""), ",")
	var missing []string
	for _, s := range requiredScopes {
		if s.needed(cfg) && !slices.Contains(granted, s.scope) {
			missing = append(missing, s.scope+" ("+s.why+")")
		}
	}
	if len(missing) > 0 {
		return checkResult{name: "slack bot scopes", detail: "missing " + strings.Join(missing, ", "),
			fix: "add them under OAuth & Permissions (or create the app from slack-app-manifest.yaml), then reinstall the app"}
	}
	return checkResult{name: "slack bot scopes", ok: true, detail: "granted: " + strings.Join(granted, ",")}
}

// checkAWS probes every account × region the bot acts in, one line each,
// after one line per account whose role cannot be assumed (its regions are
// then not probed).
func checkAWS(ctx context.Context, cfg config) []checkResult {
	const name = "aws codedeploy"
	awsCfg, err := loadAWSConfig(ctx)
	if err != nil {
		return []checkResult{{name: name, detail: err.Error(), fix: "set AWS_REGION and credentials (environment, profile or role)"}}
	}
	set, err := buildPlaces(ctx, cfg, awsCfg)
	if err != nil {
		return []checkResult{{name: name, detail: err.Error(), fix: "set AWS_REGION or STOPDEPLOY_REGIONS"}}
	}
	var results []checkResult
	for _, a := range set.accounts {
		if a.roleARN != "" {
			if _, err := a.lookups.Retrieve(ctx); err != nil {
				results = append(results, checkResult{name: "aws account " + a.name,
					detail: "sts:AssumeRole failed, so its regions were not probed: " + err.Error(),
					fix:    "the role's trust policy must name the bot's identity, and the bot's identity needs sts:AssumeRole on the role (docs/accounts.md); check the ARN in STOPDEPLOY_ACCOUNTS and AWS_ENDPOINT_URL_STS if set"})
				continue
			}
			results = append(results, checkResult{name: "aws account " + a.name, ok: true, detail: "assumed " + a.roleARN})
		}
		for _, region := range set.regions {
			results = append(results, probePlace(ctx, set.places, deploy.Place{Account: a.name, Region: region}))
		}
	}
	return results
}

// probePlace proves GetDeployment and StopDeployment in one place, with no
// side effect (see probeID).
func probePlace(ctx context.Context, places *deploy.Places, place deploy.Place) checkResult {
	name := "aws codedeploy " + place.String()
	id := probeID()
	_, err := places.Get(ctx, place, id)
	var de *deploy.Error
	switch {
	case err == nil:
		// Astronomically unlikely; never stop a deployment that exists.
		return checkResult{name: name, ok: true, detail: fmt.Sprintf("credentials work and codedeploy:GetDeployment is allowed in %s; "+
			"codedeploy:StopDeployment not probed (the random probe %s exists)", place, id)}
	case errors.As(err, &de) && de.Kind == deploy.KindNotFound:
	case errors.As(err, &de) && de.Kind == deploy.KindAccessDenied:
		return checkResult{name: name, detail: "AWS refused codedeploy:GetDeployment (" + de.Code + ")",
			fix: "attach iam-policy.json to the bot's role or user: GetDeployment on deploymentgroup ARNs, StopDeployment on \"*\""}
	default:
		return checkResult{name: name, detail: "GetDeployment failed: " + err.Error(),
			fix: "check AWS_REGION, the credentials, and network access to CodeDeploy (AWS_ENDPOINT_URL_CODEDEPLOY if set)"}
	}
	_, err = places.Stop(ctx, place, id, false, "")
	switch {
	case errors.As(err, &de) && de.Kind == deploy.KindNotFound:
		return checkResult{name: name, ok: true, detail: fmt.Sprintf("credentials work; codedeploy:GetDeployment and codedeploy:StopDeployment are allowed in %s "+
			"(probe %s does not exist, as expected)", place, id)}
	case errors.As(err, &de) && de.Kind == deploy.KindAccessDenied:
		return checkResult{name: name, detail: "AWS refused codedeploy:StopDeployment (" + de.Code + ")",
			fix: "IAM grants StopDeployment only with \"Resource\": \"*\" (it has no resource type): give it a statement of its own, as in iam-policy.json"}
	case err == nil:
		return checkResult{name: name, detail: fmt.Sprintf("StopDeployment of the probe %s, which GetDeployment said does not exist, was accepted", id),
			fix: "check AWS_ENDPOINT_URL_CODEDEPLOY: this is not how CodeDeploy answers"}
	}
	return checkResult{name: name, detail: "StopDeployment probe failed: " + err.Error(),
		fix: "check AWS_REGION, the credentials, and network access to CodeDeploy (AWS_ENDPOINT_URL_CODEDEPLOY if set)"}
}

func when(cond bool, s string) string {
	if cond {
		return s
	}
	return ""
}

// checkStateTable proves STOPDEPLOY_STATE_TABLE: DescribeTable (it exists,
// keyed by pk alone), then a conditional write and delete of a check item.
func checkStateTable(ctx context.Context, cfg config) checkResult {
	r := checkResult{name: "state table " + cfg.StateTable}
	awsCfg, err := loadAWSConfig(ctx)
	if err != nil {
		r.detail = err.Error()
		return r
	}
	st, err := openStateTable(ctx, cfg, awsCfg)
	if err != nil {
		r.detail, r.fix = err.Error(), "create the table as the README says (partition key pk, string; TTL on expires_at), or fix its name"
		return r
	}
	if err := st.Check(ctx); err != nil {
		r.detail, r.fix = "a conditional write and delete failed: "+err.Error(), "allow dynamodb:DescribeTable, GetItem, PutItem, UpdateItem and DeleteItem on the table (iam-policy.json)"
		return r
	}
	r.ok, r.detail = true, "exists with key pk; a conditional write and delete of a check item worked"
	return r
}
