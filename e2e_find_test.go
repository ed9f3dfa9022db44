package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/fakes/fakecodedeploy"
	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

// twoRegions is the bot searching us-east-1 and eu-west-1 of its own account.
var twoRegions = map[string]string{"STOPDEPLOY_REGIONS": "us-east-1,eu-west-1"}

// pickRow presses the Stop… of the row of msg that names want.
func (w *world) pickRow(user string, msg fakeslack.Message, want string) {
	w.t.Helper()
	for _, b := range msg.Buttons() {
		if strings.HasPrefix(b.ActionID, "pick") && strings.Contains(b.Value, want) {
			w.click(user, msg, b.ActionID)
			return
		}
	}
	w.t.Fatalf("no Stop… row with %q in %s", want, msg.Blocks)
}

// TestE2E_Find_SameIDInTwoRegions: an ID found in two places is never
// guessed: the requester picks, and the stop goes exactly there.
func TestE2E_Find_SameIDInTwoRegions(t *testing.T) {
	w := newWorld(t)
	const twin = "d-TWIN00001"
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		w.cd.Put(fakecodedeploy.Deployment{ID: twin, Region: region, Application: "checkout", Group: "production-" + region, Status: "InProgress"})
	}
	bot := w.start("bot", twoRegions)
	w.command(alice, deploys, twin)
	list := w.ephemeral(alice, deploys, "`d-TWIN00001` exists in 2 places. Which one do you mean? Nothing was stopped.")
	for _, want := range []string{"default / us-east-1", "default / eu-west-1"} {
		if !strings.Contains(string(list.Blocks), want) {
			t.Errorf("pick list lacks %q: %s", want, list.Blocks)
		}
	}
	if got := bot.auditLine("requested", twin).str("outcome"); got != "ambiguous" {
		t.Errorf("requested outcome = %q, want ambiguous", got)
	}
	w.noStop(twin)

	w.pickRow(alice, list, "eu-west-1")
	conf := w.confirmation(deploys, twin)
	if !strings.Contains(string(conf.Blocks), "default / eu-west-1") {
		t.Errorf("confirmation does not say where: %s", conf.Blocks)
	}
	w.click(carol, conf, "stop")
	calls := w.waitCalls("StopDeployment", twin, 1)
	if calls[0].Region != "eu-west-1" {
		t.Errorf("stopped in %s, want eu-west-1", calls[0].Region)
	}
	if got := bot.auditLine("confirmed", twin).str("region"); got != "eu-west-1" {
		t.Errorf("confirmed audit region = %q", got)
	}
	w.threadReply(conf, "CodeDeploy answered")
	if d, _ := w.cd.DeploymentAt("", "us-east-1", twin); d.Status != "InProgress" {
		t.Errorf("the us-east-1 twin is %s: the wrong one was stopped", d.Status)
	}
}

// TestE2E_Find_ConsoleLinkForcesTheRegion: a console link's region decides.
func TestE2E_Find_ConsoleLinkForcesTheRegion(t *testing.T) {
	w := newWorld(t)
	const twin = "d-TWIN00002"
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		w.cd.Put(fakecodedeploy.Deployment{ID: twin, Region: region, Application: "checkout", Group: "production", Status: "InProgress"})
	}
	w.start("bot", twoRegions)
	w.command(alice, deploys, "<https://eu-west-1.console.aws.amazon.com/codesuite/codedeploy/deployments/"+twin+"?region=eu-west-1>")
	conf := w.confirmation(deploys, twin)
	if !strings.Contains(string(conf.Blocks), "default / eu-west-1") {
		t.Errorf("confirmation is not for eu-west-1: %s", conf.Blocks)
	}
	w.command(alice, random, "<https://console.aws.amazon.com/codesuite/codedeploy/deployments/"+twin+"?region=ap-south-1>")
	w.ephemeral(alice, random, "That link is for region `ap-south-1`, which I am not configured to search")
}

// TestE2E_Find_List: /stopdeploy list across places and pages, newest
// first, at most 20 rows, what the user may not stop counted, and a row's
// Stop… starting the same request as typing the ID.
func TestE2E_Find_List(t *testing.T) {
	w, env := policyWorld(t)
	env["STOPDEPLOY_REGIONS"] = "us-east-1,eu-west-1"
	start := time.Now().Add(-time.Hour)
	for i := range 30 {
		region := []string{"us-east-1", "eu-west-1"}[i%2]
		w.cd.Put(fakecodedeploy.Deployment{ID: fmt.Sprintf("d-LIST%05d", i), Region: region, Application: "shop", Group: "staging-" + region,
			Status: "InProgress", CreateTime: start.Add(time.Duration(i) * time.Minute)})
	}
	bot := w.start("bot", env)

	w.command(alice, deploys, "list")
	list := w.ephemeral(alice, deploys, "you may stop, newest first")
	blocks := string(list.Blocks)
	// 33 active that Alice may stop (30 shop, production, critical, staging), 1 she may not (dev).
	for _, want := range []string{"33 active deployments you may stop", "…and 13 more: narrow the list", "1 more you may not stop."} {
		if !strings.Contains(blocks, want) && !strings.Contains(list.Text, want) {
			t.Errorf("list lacks %q: %s", want, blocks)
		}
	}
	rows := 0
	for _, b := range list.Buttons() {
		if strings.HasPrefix(b.ActionID, "pick") {
			rows++
		}
	}
	if rows != 20 {
		t.Errorf("rows = %d, want 20", rows)
	}
	if i, j := strings.Index(blocks, "d-LIST00029"), strings.Index(blocks, "d-LIST00028"); i < 0 || j < 0 || i > j {
		t.Errorf("not newest first (d-LIST00029 at %d, d-LIST00028 at %d)", i, j)
	}
	batches, pages := 0, 0
	for _, c := range w.cd.Calls() {
		if c.Target == fakecodedeploy.OpListDeployments {
			pages = max(pages, c.Page)
		}
		if c.Target == fakecodedeploy.OpBatchGetDeployments {
			batches++
			if len(c.IDs) > 25 {
				t.Errorf("BatchGetDeployments with %d IDs, CodeDeploy allows 25", len(c.IDs))
			}
		}
	}
	if pages < 2 {
		t.Errorf("ListDeployments read at most page %d: the nextToken was not followed", pages)
	}
	if batches < 2 {
		t.Errorf("BatchGetDeployments calls = %d, want the 34 active split in batches", batches)
	}

	w.command(alice, deploys, "list shop staging-eu-west-1")
	narrow := w.ephemeral(alice, deploys, "15 active deployments of shop / staging-eu-west-1 you may stop")
	w.pickRow(alice, narrow, "d-LIST00029")
	conf := w.confirmation(deploys, "d-LIST00029")
	w.click(alice, conf, "stop")
	calls := w.waitCalls("StopDeployment", "d-LIST00029", 1)
	if calls[0].Region != "eu-west-1" {
		t.Errorf("stopped in %s", calls[0].Region)
	}
	bot.auditLine("confirmed", "d-LIST00029")
}

// TestE2E_Find_ByGroup: /stopdeploy <application> <group> with zero, one
// and two active deployments.
func TestE2E_Find_ByGroup(t *testing.T) {
	w := newWorld(t)
	w.cd.Put(fakecodedeploy.Deployment{ID: "d-GROUP0001", Application: "shop", Group: "one", Status: "InProgress"})
	w.cd.Put(fakecodedeploy.Deployment{ID: "d-GROUP0002", Application: "shop", Group: "two", Status: "InProgress"})
	w.cd.Put(fakecodedeploy.Deployment{ID: "d-GROUP0003", Application: "shop", Group: "two", Status: "Created"})
	w.cd.Put(fakecodedeploy.Deployment{ID: "d-GROUP0004", Application: "shop", Group: "none", Status: "Succeeded"})
	w.start("bot", nil)

	w.command(alice, deploys, "shop none")
	w.ephemeral(alice, deploys, "No active deployment of shop / none. Nothing was stopped.")

	w.command(alice, deploys, "shop one rollback")
	conf := w.confirmation(deploys, "d-GROUP0001")
	if !strings.Contains(string(conf.Blocks), "*Rollback:* yes") {
		t.Errorf("rollback lost on the way: %s", conf.Blocks)
	}

	w.command(alice, deploys, "shop two")
	list := w.ephemeral(alice, deploys, "shop / two has 2 active deployments. Which one do you mean?")
	for _, id := range []string{"d-GROUP0002", "d-GROUP0003"} {
		if !strings.Contains(string(list.Blocks), id) {
			t.Errorf("list lacks %s", id)
		}
	}
	w.noStop("d-GROUP0002")
	w.noStop("d-GROUP0003")
}

// TestE2E_Find_AcrossAccounts: accounts reached through assumed roles; one
// account denying access while another answers; the stop made in a role
// session named after the person who confirmed.
func TestE2E_Find_AcrossAccounts(t *testing.T) {
	w := newWorld(t)
	st := newFakeSTS(t, w.cd)
	w.cd.Put(fakecodedeploy.Deployment{ID: "d-ACCOUNT01", Account: prodAccountID, Application: "checkout", Group: "production", Status: "InProgress"})
	w.cd.Deny(stagingAccountID, "us-east-1", fakecodedeploy.OpGetDeployment)
	bot := w.start("bot", map[string]string{"STOPDEPLOY_ACCOUNTS": twoAccounts, "AWS_ENDPOINT_URL_STS": st.URL()})

	w.command(alice, deploys, "d-ACCOUNT01")
	conf := w.confirmation(deploys, "d-ACCOUNT01")
	if !strings.Contains(string(conf.Blocks), "prod / us-east-1") {
		t.Errorf("confirmation does not name the account: %s", conf.Blocks)
	}
	w.click(bob, conf, "stop")
	calls := w.waitCalls("StopDeployment", "d-ACCOUNT01", 1)
	if calls[0].Account != prodAccountID || calls[0].SessionName != "stopdeploy-"+bob {
		t.Errorf("stopped in account %s as session %q, want %s as stopdeploy-%s", calls[0].Account, calls[0].SessionName, prodAccountID, bob)
	}
	if got := bot.auditLine("confirmed", "d-ACCOUNT01").str("account"); got != "prod" {
		t.Errorf("confirmed audit account = %q", got)
	}

	w.command(alice, deploys, "d-NOWHERE01")
	nf := w.ephemeral(alice, deploys, "I did not find `d-NOWHERE01` in the places I could search, and I could not search 1 of them")
	if !strings.Contains(nf.Text, "staging/us-east-1: AWS refused access") {
		t.Errorf("not-found answer does not name the place that refused: %q", nf.Text)
	}
}

// TestE2E_Find_SlowRegion: one region that does not answer delays neither
// the ack nor, past its deadline, the answer.
func TestE2E_Find_SlowRegion(t *testing.T) {
	w := newWorld(t)
	w.cd.SetPlaceDelay("", "eu-west-1", time.Minute)
	bot := w.start("bot", twoRegions)
	ack := w.command(alice, deploys, running)
	if d := ack.AckedAt.Sub(ack.SentAt); d > time.Second {
		t.Errorf("ack took %v", d)
	}
	sent := time.Now()
	w.confirmation(deploys, running)
	if d := time.Since(sent); d > 12*time.Second {
		t.Errorf("confirmation took %v with one region silent, want within ~10 s", d)
	}
	if got := bot.auditLine("requested", running).str("region"); got != "us-east-1" {
		t.Errorf("requested region = %q", got)
	}
}
