// Package state keeps stopdeploy's shared state in one DynamoDB table, so that
// any number of bot processes agree on every confirmation (issue #12).
//
// The operator creates the table once: partition key pk (S) and nothing else,
// with TTL on the number attribute expires_at (epoch seconds). The bot never
// creates or alters it. Every item written here carries expires_at.
//
// Items, by pk:
//
//	open#<account>/<region>/<id>   the one open confirmation of a deployment (lock)
//	conf#<channel>/<message ts>    a confirmation and its state machine
//	follows                        registry of live confirmations, for takeover
//	audit#<account>/<region>/<id>  the deployment's audit counter (seq)
//	audit#<deployment>#<seq>       one audit event
//	check#<owner>#<nonce>          written and deleted by Check
//
// A confirmation moves only by conditional writes:
//
//	open → stopping → stopped | failed
//	open → cancelled
//	open → expired
//	open → open (one more approval, one distinct person at a time)
//
// Every method returns either an outcome (won or lost, and who won), a
// sentinel of this package (ErrNotFound, ErrExpired, …, *OpenError), or a
// *StoreError when the table could not be used: errors.Is(err,
// ErrUnavailable) then holds and the caller must refuse the click.
//
// The package calls DescribeTable (Open), GetItem, PutItem, UpdateItem and
// DeleteItem, and no Query, Scan, BatchGetItem or transactions (dynalite, the
// test server, has no transactions): the IAM statement needs exactly those five
// actions on arn:aws:dynamodb:*:*:table/stopdeploy*. A loser of a conditional
// write reads the winner with a consistent GetItem, since
// ReturnValuesOnConditionCheckFailure is not honoured by dynalite.
//
// Typical use by the bot:
//
//	p, err := st.Begin(ctx, state.Request{…})   // *OpenError: point at the open one
//	ts := post the card                          // failed: st.Abandon(ctx, p)
//	m, err := st.Posted(ctx, p, ts)              // ErrDuplicatePost: the card is inert
//	won, w, err := st.Claim(ctx, m, state.ActionStop, user) // !won: tell user w
//	StopDeployment; follow, st.RenewLease(ctx, m) each interval
//	won, err := st.Finish(ctx, m, state.StatusStopped)      // won: post the final state
//	every follow-up interval, on every process: st.Orphans(ctx) → AcquireLease / Claim(ActionExpire)
package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// API is the part of the DynamoDB client this package calls, with the SDK's
// exact signatures.
type API interface {
	DescribeTable(ctx context.Context, params *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	GetItem(ctx context.Context, params *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, params *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, params *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, params *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ API = (*dynamodb.Client)(nil)

// PartitionKey is the table's only key attribute, a string.
const PartitionKey = "pk"

// TTLAttribute is the number attribute (epoch seconds) the table's TTL is on.
const TTLAttribute = "expires_at"

// Defaults for Options.
const (
	DefaultRetention = 90 * 24 * time.Hour
	DefaultLeaseTTL  = 45 * time.Second
)

// Options tune a Store; the zero value is usable.
type Options struct {
	// Owner names this process in follow-up leases. Default: host-pid-random.
	Owner string
	// LeaseTTL is how long a follow-up lease lasts unless renewed. It must be
	// longer than the follow-up interval. Default DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Retention is how long an item stays after its confirmation expires or
	// ends, or after its audit event (TTL). Default DefaultRetention.
	Retention time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// OnCleanupError is told when a best-effort write after a won transition
	// fails (releasing the deployment's lock, pruning the registry). Such
	// leftovers are repaired by the next Begin or Orphans; this is for logs.
	OnCleanupError func(op string, err error)
}

// Store is the state table. It is safe for concurrent use.
type Store struct {
	api       API
	table     string
	owner     string
	leaseTTL  time.Duration
	retention time.Duration
	now       func() time.Time
	onCleanup func(op string, err error)
}

// Open checks that table exists and is keyed by pk (S) alone, and returns a
// Store on it. A missing or misshapen table is a *TableError naming it; a
// table that cannot be described is a *StoreError.
func Open(ctx context.Context, api API, table string, opts Options) (*Store, error) {
	if table == "" {
		return nil, &TableError{Table: table, Problem: "no table name given"}
	}
	out, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) {
		return nil, &TableError{Table: table, Problem: "table not found (create it with partition key pk of type S and TTL on expires_at)", Err: err}
	}
	if err != nil {
		return nil, &StoreError{Op: "DescribeTable", Table: table, Err: err}
	}
	if err := checkSchema(out.Table); err != nil {
		return nil, &TableError{Table: table, Problem: err.Error()}
	}
	s := &Store{
		api:       api,
		table:     table,
		owner:     opts.Owner,
		leaseTTL:  opts.LeaseTTL,
		retention: opts.Retention,
		now:       opts.Now,
		onCleanup: opts.OnCleanupError,
	}
	if s.owner == "" {
		s.owner = defaultOwner()
	}
	if s.leaseTTL <= 0 {
		s.leaseTTL = DefaultLeaseTTL
	}
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.onCleanup == nil {
		s.onCleanup = func(string, error) {}
	}
	return s, nil
}

// checkSchema says what is wrong with a table's key schema and status.
func checkSchema(t *types.TableDescription) error {
	if t == nil {
		return errors.New("DescribeTable returned no table description")
	}
	var keys []string
	for _, k := range t.KeySchema {
		keys = append(keys, aws.ToString(k.AttributeName)+" ("+string(k.KeyType)+")")
	}
	if len(t.KeySchema) != 1 || aws.ToString(t.KeySchema[0].AttributeName) != PartitionKey || t.KeySchema[0].KeyType != types.KeyTypeHash {
		return fmt.Errorf("key schema is %v, want exactly the partition key pk (HASH) and no sort key", keys)
	}
	for _, d := range t.AttributeDefinitions {
		if aws.ToString(d.AttributeName) == PartitionKey && d.AttributeType != types.ScalarAttributeTypeS {
			return fmt.Errorf("partition key pk is of type %s, want S (string)", d.AttributeType)
		}
	}
	switch t.TableStatus {
	case types.TableStatusActive, types.TableStatusUpdating, "":
		return nil
	default:
		return fmt.Errorf("table status is %s, want ACTIVE", t.TableStatus)
	}
}

func defaultOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + nonce()[:8]
}

// Table is the table's name.
func (s *Store) Table() string { return s.table }

// Owner is this Store's name in follow-up leases.
func (s *Store) Owner() string { return s.owner }

// Check proves the table can be written: a conditional put of a fresh check
// item, then a conditional delete of it (for `stopdeploy check`).
func (s *Store) Check(ctx context.Context) error {
	pk := "check#" + s.owner + "#" + nonce()
	token := nonce()
	_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			PartitionKey: str(pk),
			"token":      str(token),
			TTLAttribute: epoch(s.now().Add(time.Hour)),
		},
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if err != nil {
		return s.storeErr("PutItem", pk, err)
	}
	_, err = s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(pk),
		ConditionExpression:       aws.String("#token = :token"),
		ExpressionAttributeNames:  map[string]string{"#token": "token"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":token": str(token)},
	})
	if err != nil {
		return s.storeErr("DeleteItem", pk, err)
	}
	return nil
}

// ErrUnavailable is matched (errors.Is) by every *StoreError: the table could
// not be used, so nothing guarded by it may happen.
var ErrUnavailable = errors.New("state table unavailable")

// StoreError is a DynamoDB call that failed other than by its condition:
// unreachable, throttled, denied, cancelled.
type StoreError struct {
	Op    string // DynamoDB operation, e.g. "UpdateItem"
	Table string
	Key   string // pk of the item, if any
	Err   error
}

func (e *StoreError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("state: %s on table %q: %v", e.Op, e.Table, e.Err)
	}
	return fmt.Sprintf("state: %s %s on table %q: %v", e.Op, e.Key, e.Table, e.Err)
}

func (e *StoreError) Unwrap() error        { return e.Err }
func (e *StoreError) Is(target error) bool { return target == ErrUnavailable }

// TableError is a table the bot cannot use: missing, or keyed otherwise.
type TableError struct {
	Table   string
	Problem string // what is wrong, for the operator
	Err     error  // the SDK error, if any
}

func (e *TableError) Error() string {
	return fmt.Sprintf("state table %q: %s", e.Table, e.Problem)
}

func (e *TableError) Unwrap() error { return e.Err }

// Sentinels for outcomes that are neither a win nor a store failure.
var (
	// ErrNotFound: no such confirmation item (never posted through this
	// store, a duplicate post, or removed by TTL). Refuse the click.
	ErrNotFound = errors.New("state: no such confirmation")
	// ErrExpired: the confirmation is open but past its expiry; only
	// ActionExpire can move it now.
	ErrExpired = errors.New("state: confirmation expired")
	// ErrNotExpired: ActionExpire before the confirmation's expiry.
	ErrNotExpired = errors.New("state: confirmation has not expired")
	// ErrApprovalsNeeded: ActionStop on a confirmation that needs more than
	// one approval; use Approve.
	ErrApprovalsNeeded = errors.New("state: confirmation needs approvals, not a single stop")
	// ErrLockLost: the deployment's lock no longer belongs to this Pending
	// (it lapsed and another request took it).
	ErrLockLost = errors.New("state: the deployment's open lock was lost")
	// ErrLeaseLost: the follow-up lease is held by another owner, or the
	// confirmation is no longer stopping.
	ErrLeaseLost = errors.New("state: follow-up lease lost")
)

// conditionFailed reports whether err is DynamoDB refusing a condition.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func (s *Store) storeErr(op, pk string, err error) error {
	return &StoreError{Op: op, Table: s.table, Key: pk, Err: err}
}

// nonce is 16 random bytes in hex.
func nonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
