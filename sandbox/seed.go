package sandbox

import (
	"time"

	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

// The simulated workspace and region.
const (
	Alice   = "U0ALICE"   // production by name (asks, approves); staging through @engineering
	Bob     = "U0BOB"     // production through @oncall (asks, approves); staging through @engineering
	Carol   = "U0CAROL"   // staging only, through @engineering
	Mallory = "U0MALLORY" // in no rule: may do nothing

	OnCall      = "S0ONCALL" // user group "@oncall": Bob
	Engineering = "S0ENG"    // user group "@engineering": Alice, Bob and Carol

	Deploys = "C0DEPLOYS" // where people type the command
	Audit   = "C0AUDIT"   // STOPDEPLOY_AUDIT_CHANNEL

	// Running is in progress on checkout / production: the one to stop.
	Running = "d-LGUMS25CC"
	// The other seeded deployments.
	ECSBlueGreen = "d-7ECSBG4QX"
	Lambda       = "d-LMBDA8K2Z"
	Succeeded    = "d-B7N4T2XQ1"
	// Staging is in progress on checkout / staging: one any engineer
	// stops alone.
	Staging = "d-STG7K3M2P"

	// stopTakes is how long a simulated stop stays Pending before Stopped
	// (and how long a rollback deployment then runs).
	stopTakes = 5 * time.Second
	// progressEvery is how often Running moves one instance along.
	progressEvery = 4 * time.Second
)

// policyYAML is the bot's STOPDEPLOY_POLICY_FILE (see policy.example.yaml):
// production needs a second person, staging does not, and Mallory is in no
// rule. people's roles say the same in words.
const policyYAML = `# The sandbox's policy: who may stop which deployment.
rules:
  # Production: Alice and @oncall may ask, and another of them must approve.
  - name: production
    deployment_groups: ["production", "*-live", "*-bluegreen"]
    requesters:
      users: [` + Alice + `]      # Alice
      groups: [` + OnCall + `]   # @oncall (Bob)
    approvers:
      users: [` + Alice + `]
      groups: [` + OnCall + `]
    approvals: 1               # the requester's own press never counts

  # Staging: any engineer stops it alone.
  - name: staging
    deployment_groups: ["staging", "staging-*"]
    requesters:
      groups: [` + Engineering + `]      # @engineering (Alice, Bob, Carol)
    approvals: 0

  # Everything else matches no rule and cannot be stopped from Slack.
`

// person is a seeded user and what the policy lets them do.
type person struct {
	fakeslack.User
	Role string
}

var people = []person{
	{fakeslack.User{ID: Alice, Name: "alice", RealName: "Alice Chen"}, "production: asks or approves; staging: stops alone"},
	{fakeslack.User{ID: Bob, Name: "bob", RealName: "Bob Okafor"}, "@oncall: asks or approves production; staging: stops alone"},
	{fakeslack.User{ID: Carol, Name: "carol", RealName: "Carol Diaz"}, "@engineering: stops staging alone, not production"},
	{fakeslack.User{ID: Mallory, Name: "mallory", RealName: "Mallory Reyes"}, "in no rule: may stop nothing"},
}

// groupNames are the handles of the seeded user groups, groupMembers who
// is in them.
var (
	groupNames   = map[string]string{OnCall: "oncall", Engineering: "engineering"}
	groupMembers = map[string][]string{OnCall: {Bob}, Engineering: {Alice, Bob, Carol}}
)

func seedSlack(s *fakeslack.Server) {
	everyone := make([]string, 0, len(people))
	for _, p := range people {
		s.AddUser(p.User)
		everyone = append(everyone, p.ID)
	}
	s.AddChannel(fakeslack.Channel{ID: Deploys, Name: "deploys", Members: everyone, BotIsMember: true})
	s.AddChannel(fakeslack.Channel{ID: Audit, Name: "audit", Members: everyone, BotIsMember: true})
	for id, members := range groupMembers {
		s.AddUserGroup(id, members...)
	}
}

func seedCodeDeploy(cd *fakecodedeploy.Server, now time.Time) {
	for _, d := range []fakecodedeploy.Deployment{
		{
			ID: Succeeded, Application: "checkout", Group: "staging", Status: fakecodedeploy.StatusSucceeded,
			Creator: "user", Description: "checkout v2.41.0 (commit 9f3c2ab) to staging",
			CreateTime: now.Add(-2 * time.Hour), CompleteTime: now.Add(-110 * time.Minute),
			Overview: fakecodedeploy.Overview{Succeeded: 4},
		},
		{
			ID: Staging, Application: "checkout", Group: "staging", Creator: "user",
			Description: "checkout v2.42.0-rc.1 (commit 4d1e7b0) to staging",
			CreateTime:  now.Add(-5 * time.Minute),
			Overview:    fakecodedeploy.Overview{Succeeded: 1, InProgress: 1, Pending: 2},
			StopTakes:   stopTakes,
		},
		{
			ID: Lambda, Application: "image-resizer", Group: "image-resizer-live", ComputePlatform: "Lambda",
			DeploymentConfigName: "CodeDeployDefault.LambdaCanary10Percent5Minutes",
			Description:          "image-resizer version 118, canary 10% for 5 minutes",
			CreateTime:           now.Add(-3 * time.Minute), Overview: fakecodedeploy.Overview{InProgress: 1},
			StopTakes: stopTakes,
		},
		{
			ID: ECSBlueGreen, Application: "payments-api", Group: "payments-api-bluegreen", ComputePlatform: "ECS",
			Description: "payments-api task definition :57, shifting traffic to green",
			CreateTime:  now.Add(-4 * time.Minute), Overview: fakecodedeploy.Overview{Succeeded: 1, InProgress: 1},
			StopTakes: stopTakes,
		},
		{
			ID: Running, Application: "checkout", Group: "production", Creator: "user",
			Description: "checkout v2.41.0 (commit 9f3c2ab) to production",
			CreateTime:  now.Add(-6 * time.Minute),
			Overview:    fakecodedeploy.Overview{Succeeded: 3, InProgress: 1, Pending: 8},
			StopTakes:   stopTakes,
		},
	} {
		cd.Put(d)
	}
}

// progress moves Running one instance along, as a real deployment would,
// until only one instance is left in progress: the deployment hangs there,
// which is the kind of deployment one stops.
func progress(cd *fakecodedeploy.Server) {
	moving := func(d fakecodedeploy.Deployment) bool {
		return d.Status == fakecodedeploy.StatusInProgress && d.StopRequestedAt.IsZero() && d.Overview.Pending > 0
	}
	if d, ok := cd.Deployment(Running); !ok || !moving(d) {
		return // Update would announce a change even when there is none
	}
	cd.Update(Running, func(d *fakecodedeploy.Deployment) {
		if moving(*d) {
			d.Overview.Succeeded++
			d.Overview.Pending--
		}
	})
}
