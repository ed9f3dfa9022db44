package state_test

import (
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stopdeploy/stopdeploy/internal/dynalite"
	"github.com/stopdeploy/stopdeploy/state"
)

const (
	table    = "stopdeploy"
	leaseTTL = 30 * time.Second
	lifetime = 10 * time.Minute // of a confirmation
)

// clock is a clock the test moves; every Store of an env shares it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one dynalite with the bot's table: one DynamoDB, any number of
// processes (Stores, each with its own client).
type env struct {
	srv    *dynalite.Server
	client *dynamodb.Client
	clock  *clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := dynalite.Start(t)
	client := srv.Client(t)
	dynalite.CreateTable(t, client, table)
	return &env{srv: srv, client: client, clock: &clock{t: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)}}
}

// process opens a Store as one bot process named owner would.
func (e *env) process(t *testing.T, owner string) *state.Store {
	t.Helper()
	s, err := state.Open(t.Context(), e.srv.Client(t), table, state.Options{Owner: owner, Now: e.clock.Now, LeaseTTL: leaseTTL})
	if err != nil {
		t.Fatalf("state.Open: %v", err)
	}
	return s
}

func dep(id string) state.Deployment {
	return state.Deployment{Account: "111122223333", Region: "eu-west-1", ID: id}
}

// post makes a posted confirmation for d in channel C1 at message ts.
func (e *env) post(t *testing.T, s *state.Store, d state.Deployment, ts string, needed int) state.Message {
	t.Helper()
	p, err := s.Begin(t.Context(), state.Request{
		Deployment: d, Requester: "UREQ", Channel: "C1",
		ExpiresAt: e.clock.Now().Add(lifetime), Needed: needed, Payload: "v3|" + d.ID,
	})
	if err != nil {
		t.Fatalf("Begin(%s): %v", d, err)
	}
	m, err := s.Posted(t.Context(), p, ts)
	if err != nil {
		t.Fatalf("Posted(%s, %s): %v", d, ts, err)
	}
	return m
}

func get(t *testing.T, s *state.Store, m state.Message) state.Confirmation {
	t.Helper()
	c, err := s.Get(t.Context(), m)
	if err != nil {
		t.Fatalf("Get(%s): %v", m, err)
	}
	return c
}

// items is every item in the table (a test may Scan; the package never does).
func (e *env) items(t *testing.T) []map[string]types.AttributeValue {
	t.Helper()
	out, err := e.client.Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out.Items
}

// start runs each f in its own goroutine, all released at once, and waits.
func start(fs ...func()) {
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	for _, f := range fs {
		ready.Add(1)
		done.Go(func() {
			ready.Done()
			<-gate
			f()
		})
	}
	ready.Wait()
	close(gate)
	done.Wait()
}

func deleteInput(pk string) *dynamodb.DeleteItemInput {
	return &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}}
}

// registry is the entries of the follows item.
func registry(t *testing.T, e *env) []string {
	t.Helper()
	out, err := e.client.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "follows"}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatalf("GetItem follows: %v", err)
	}
	m, _ := out.Item["confs"].(*types.AttributeValueMemberM)
	if m == nil {
		t.Fatalf("follows has no confs map: %v", out.Item)
	}
	var names []string
	for name := range m.Value {
		names = append(names, name)
	}
	return names
}
