package main

// The accounts and regions the bot acts in (STOPDEPLOY_ACCOUNTS ×
// STOPDEPLOY_REGIONS), wired as a deploy.Places.

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/stopdeploy/stopdeploy/deploy"
)

// defaultAccount is the name of the bot's own account when
// STOPDEPLOY_ACCOUNTS is not set.
const defaultAccount = "default"

// Role session names: lookups (Find, Active, Get, follow-ups) share one
// session per account; a stop has a session named after the Slack user who
// requested it, so the account's CloudTrail shows who stopped what.
const (
	lookupSessionName = "stopdeploy"
	stopSessionPrefix = "stopdeploy-"
)

// maxUserSessions bounds the per-user stop credentials kept; past it, one
// is dropped (and assumed again on that user's next stop).
const maxUserSessions = 256

// sessionUserPattern is what may follow stopSessionPrefix: a Slack user ID
// (IAM allows [\w+=,.@-] and 64 characters in a role session name).
var sessionUserPattern = regexp.MustCompile(`^[A-Z0-9]{2,53}$`)

// account is one AWS account the bot reaches.
type account struct {
	name    string
	roleARN string                  // empty: the bot's own credentials
	lookups aws.CredentialsProvider // the lookup session (or the bot's own credentials)
}

// placeSet is the wiring of newPlaces, with what `stopdeploy check` probes
// besides the places.
type placeSet struct {
	places   *deploy.Places
	accounts []account
	regions  []string
}

// newPlaces is one deploy.PlaceAPI per account × region (accounts in
// STOPDEPLOY_ACCOUNTS order, regions in STOPDEPLOY_REGIONS order), each
// with a CodeDeploy client for reads and one for stops. With
// STOPDEPLOY_ACCOUNTS set, each account is reached through its role
// (sts:AssumeRole by the bot's own identity, at the STS endpoint of awsCfg,
// which honours AWS_ENDPOINT_URL_STS): lookups as session "stopdeploy",
// stops as "stopdeploy-<Slack user ID>".
func newPlaces(ctx context.Context, cfg config, awsCfg aws.Config) (*deploy.Places, error) {
	set, err := buildPlaces(ctx, cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	return set.places, nil
}

func buildPlaces(_ context.Context, cfg config, awsCfg aws.Config) (*placeSet, error) {
	regions := cfg.Regions
	if len(regions) == 0 {
		if awsCfg.Region == "" {
			return nil, &configError{"AWS_REGION", "is not set (nor a region in the shared AWS config, nor STOPDEPLOY_REGIONS): the bot cannot know where your deployments are"}
		}
		regions = []string{awsCfg.Region}
	}
	set := &placeSet{regions: regions}
	var stsClient *sts.Client
	if len(cfg.accounts) > 0 {
		// From awsCfg, so AWS_ENDPOINT_URL_STS and the shared config's
		// endpoint settings apply (sts.NewFromConfig's resolveBaseEndpoint).
		stsClient = sts.NewFromConfig(awsCfg, func(o *sts.Options) {
			if o.Region == "" {
				o.Region = regions[0]
			}
		})
	}
	if len(cfg.accounts) == 0 {
		set.accounts = []account{{name: defaultAccount, lookups: awsCfg.Credentials}}
	}
	for _, a := range cfg.accounts {
		set.accounts = append(set.accounts, account{name: a.name, roleARN: a.roleARN,
			lookups: assumeRole(stsClient, a.roleARN, lookupSessionName)})
	}
	var apis []deploy.PlaceAPI
	for _, a := range set.accounts {
		var sessions *userSessions
		if a.roleARN != "" {
			sessions = &userSessions{sts: stsClient, roleARN: a.roleARN, byUser: map[string]aws.CredentialsProvider{}}
		}
		for _, region := range regions {
			placeCfg := awsCfg.Copy()
			placeCfg.Region = region
			placeCfg.Credentials = a.lookups
			// Stops have a client (and so connections) of their own, as in newBot.
			reads, stops := newCodeDeploy(placeCfg), newCodeDeploy(placeCfg)
			api := deploy.PlaceAPI{Place: deploy.Place{Account: a.name, Region: region}, Reads: reads, Stops: stops}
			if sessions != nil {
				api.StopsFor = func(userID string) deploy.StopAPI { return sessions.stopsFor(stops, userID) }
			}
			apis = append(apis, api)
		}
	}
	places, err := deploy.NewPlaces(apis, deploy.PlacesOptions{})
	if err != nil {
		return nil, fmt.Errorf("deploy.NewPlaces: %w", err)
	}
	set.places = places
	return set, nil
}

// assumeRole is the cached credentials of one role session (15 minutes,
// stscreds.DefaultDuration), renewed a minute before they expire so that a
// stop is never signed with keys about to lapse. Its errors are
// *deploy.CredentialsError naming the role.
func assumeRole(client *sts.Client, roleARN, session string) aws.CredentialsProvider {
	return aws.NewCredentialsCache(roleProvider{roleARN, stscreds.NewAssumeRoleProvider(client, roleARN,
		func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = session })},
		func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = time.Minute })
}

type roleProvider struct {
	roleARN string
	next    aws.CredentialsProvider
}

func (p roleProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := p.next.Retrieve(ctx)
	if err != nil {
		return creds, &deploy.CredentialsError{RoleARN: p.roleARN, Err: err}
	}
	return creds, nil
}

// userSessions caches one account's stop credentials per Slack user.
type userSessions struct {
	sts     *sts.Client
	roleARN string
	mu      sync.Mutex
	byUser  map[string]aws.CredentialsProvider
}

func (s *userSessions) credentials(userID string) aws.CredentialsProvider {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.byUser[userID]; ok {
		return p
	}
	if len(s.byUser) >= maxUserSessions {
		for u := range s.byUser { // drop any one
			delete(s.byUser, u)
			break
		}
	}
	p := assumeRole(s.sts, s.roleARN, stopSessionPrefix+userID)
	s.byUser[userID] = p
	return p
}

// stopsFor is the account's stops client (its connections) signing with
// the user's own role session.
func (s *userSessions) stopsFor(stops *codedeploy.Client, userID string) deploy.StopAPI {
	if !sessionUserPattern.MatchString(userID) {
		return refusedStops{&deploy.CredentialsError{RoleARN: s.roleARN,
			Err: fmt.Errorf("%q is not a Slack user ID, so no role session can be named after it", userID)}}
	}
	return userStops{stops, s.credentials(userID)}
}

type userStops struct {
	client *codedeploy.Client
	creds  aws.CredentialsProvider
}

func (u userStops) StopDeployment(ctx context.Context, in *codedeploy.StopDeploymentInput, optFns ...func(*codedeploy.Options)) (*codedeploy.StopDeploymentOutput, error) {
	return u.client.StopDeployment(ctx, in, append(optFns, func(o *codedeploy.Options) { o.Credentials = u.creds })...)
}

type refusedStops struct{ err error }

func (r refusedStops) StopDeployment(context.Context, *codedeploy.StopDeploymentInput, ...func(*codedeploy.Options)) (*codedeploy.StopDeploymentOutput, error) {
	return nil, r.err
}
