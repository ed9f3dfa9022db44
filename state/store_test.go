package state_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/stopdeploy/stopdeploy/internal/dynalite"
	"github.com/stopdeploy/stopdeploy/state"
)

func TestOpen_Table(t *testing.T) {
	t.Parallel()
	srv := dynalite.Start(t)
	client := srv.Client(t)
	dynalite.CreateTable(t, client, "stopdeploy-good")
	dynalite.CreateTableWithKeys(t, client, "stopdeploy-by-id", dynalite.Key{Name: "id", Type: types.ScalarAttributeTypeS})
	dynalite.CreateTableWithKeys(t, client, "stopdeploy-sorted",
		dynalite.Key{Name: "pk", Type: types.ScalarAttributeTypeS}, dynalite.Key{Name: "sk", Type: types.ScalarAttributeTypeS})
	dynalite.CreateTableWithKeys(t, client, "stopdeploy-number", dynalite.Key{Name: "pk", Type: types.ScalarAttributeTypeN})

	for _, c := range []struct {
		table string
		want  string // in the error; "" for success
	}{
		{"stopdeploy-good", ""},
		{"stopdeploy-missing", "not found"},
		{"stopdeploy-by-id", "key schema is [id (HASH)], want exactly the partition key pk (HASH) and no sort key"},
		{"stopdeploy-sorted", "key schema is [pk (HASH) sk (RANGE)]"},
		{"stopdeploy-number", "partition key pk is of type N, want S"},
		{"", "no table name"},
	} {
		t.Run(c.table, func(t *testing.T) {
			s, err := state.Open(t.Context(), client, c.table, state.Options{})
			if c.want == "" {
				if err != nil || s.Table() != c.table {
					t.Fatalf("Open(%q) = %v, %v; want the store", c.table, s, err)
				}
				return
			}
			var te *state.TableError
			if !errors.As(err, &te) || te.Table != c.table {
				t.Fatalf("Open(%q) error = %v, want a *state.TableError for it", c.table, err)
			}
			if !strings.Contains(err.Error(), `"`+c.table+`"`) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open(%q) error = %q, want the table name and %q", c.table, err, c.want)
			}
			if errors.Is(err, state.ErrUnavailable) {
				t.Errorf("Open(%q): a misshapen table is not ErrUnavailable", c.table)
			}
		})
	}
}

func TestOpen_Unreachable(t *testing.T) {
	t.Parallel()
	cfg := dynalite.Config(t, config.WithRetryMaxAttempts(1))
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String("http://127.0.0.1:1") })
	_, err := state.Open(t.Context(), client, table, state.Options{})
	var se *state.StoreError
	if !errors.Is(err, state.ErrUnavailable) || !errors.As(err, &se) || se.Op != "DescribeTable" {
		t.Fatalf("Open on a closed port = %v, want a *state.StoreError from DescribeTable, matching ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), `"`+table+`"`) {
		t.Errorf("error %q does not name the table", err)
	}
}

// TestUnavailable is the table going away under a running bot: every call
// fails with ErrUnavailable, so a click is refused rather than acted on.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.process(t, "p1")
	m := e.post(t, s, dep("d-1"), "1.1", 1)
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Claim(t.Context(), m, state.ActionStop, "U1")
	var se *state.StoreError
	if !errors.Is(err, state.ErrUnavailable) || !errors.As(err, &se) || se.Op != "UpdateItem" {
		t.Errorf("Claim with the table gone = %v, want a *state.StoreError (UpdateItem) matching ErrUnavailable", err)
	}
	if _, err := s.Approve(t.Context(), m, "U1"); !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("Approve with the table gone = %v, want ErrUnavailable", err)
	}
	if err := s.Check(t.Context()); !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("Check with the table gone = %v, want ErrUnavailable", err)
	}
	if _, err := s.Begin(t.Context(), state.Request{Deployment: dep("d-2"), Requester: "U1", Channel: "C1",
		ExpiresAt: e.clock.Now().Add(lifetime)}); !errors.Is(err, state.ErrUnavailable) {
		t.Errorf("Begin with the table gone = %v, want ErrUnavailable", err)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.process(t, "p1")
	for range 2 {
		if err := s.Check(t.Context()); err != nil {
			t.Fatalf("Check: %v", err)
		}
	}
	if items := e.items(t); len(items) != 0 {
		t.Errorf("after Check the table holds %d items, want none", len(items))
	}
}

// TestItems_HaveTTL runs every kind of write and checks that each item left
// carries expires_at, so the table's TTL removes it in the end.
func TestItems_HaveTTL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.process(t, "p1")
	stopped := e.post(t, s, dep("d-1"), "1.1", 1)
	if won, _, err := s.Claim(t.Context(), stopped, state.ActionStop, "U1"); !won || err != nil {
		t.Fatalf("Claim: %v, %v", won, err)
	}
	approved := e.post(t, s, dep("d-2"), "1.2", 2)
	if _, err := s.Approve(t.Context(), approved, "U1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Begin(t.Context(), state.Request{Deployment: dep("d-3"), Requester: "U1", Channel: "C1",
		ExpiresAt: e.clock.Now().Add(lifetime)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(t.Context(), dep("d-1"), state.AuditEvent{Event: "stop_requested", User: "U1"}); err != nil {
		t.Fatal(err)
	}
	items := e.items(t)
	if len(items) < 7 { // 3 locks, 2 confirmations, registry, counter, event
		t.Errorf("table holds %d items, want at least 7", len(items))
	}
	for _, it := range items {
		pk := it["pk"].(*types.AttributeValueMemberS).Value
		if _, ok := it[state.TTLAttribute].(*types.AttributeValueMemberN); !ok {
			t.Errorf("item %s has no number attribute %s", pk, state.TTLAttribute)
		}
	}
}
