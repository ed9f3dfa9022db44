package dynalite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableAPI is what CreateTable calls, with the SDK's signatures.
type TableAPI interface {
	CreateTable(ctx context.Context, params *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, params *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

var _ TableAPI = (*dynamodb.Client)(nil)

// PartitionKey is the bot's table key: one string attribute, pk, and no sort key.
const PartitionKey = "pk"

// Key is one key attribute of a table CreateTableWithKeys makes.
type Key struct {
	Name string
	Type types.ScalarAttributeType // S, N or B
}

// activeTimeout bounds the wait for ACTIVE: with CreateTableMs 0 the first DescribeTable
// nearly always sees it.
const activeTimeout = 10 * time.Second

// CreateTable creates the bot's table, name, keyed by pk (S) alone, on demand billing,
// and returns once it is ACTIVE.
func CreateTable(tb testing.TB, client TableAPI, name string) *types.TableDescription {
	tb.Helper()
	return CreateTableWithKeys(tb, client, name, Key{Name: PartitionKey, Type: types.ScalarAttributeTypeS})
}

// CreateTableWithKeys creates a table keyed by keys[0] (HASH) and, if given, keys[1]
// (RANGE), for tests of the bot refusing a table it cannot use (for example
// Key{"id", "S"}, or pk with a sort key), and returns once it is ACTIVE.
func CreateTableWithKeys(tb testing.TB, client TableAPI, name string, keys ...Key) *types.TableDescription {
	tb.Helper()
	if len(keys) < 1 || len(keys) > 2 {
		tb.Fatalf("dynalite.CreateTableWithKeys(%q): want a partition key and at most a sort key, got %d keys", name, len(keys))
	}
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
	}
	for i, k := range keys {
		keyType := types.KeyTypeHash
		if i == 1 {
			keyType = types.KeyTypeRange
		}
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(k.Name), KeyType: keyType})
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(k.Name), AttributeType: k.Type})
	}
	ctx, cancel := context.WithTimeout(tb.Context(), activeTimeout)
	defer cancel()
	if _, err := client.CreateTable(ctx, in); err != nil {
		tb.Fatalf("CreateTable(%q): %v", name, err)
	}
	desc, err := waitActive(ctx, client, name)
	if err != nil {
		tb.Fatalf("dynalite: table %q: %v", name, err)
	}
	return desc
}

// waitActive polls DescribeTable until the table is ACTIVE or ctx is done. (The SDK's
// TableExistsWaiter waits at least 20 s between tries.)
func waitActive(ctx context.Context, client TableAPI, name string) (*types.TableDescription, error) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("DescribeTable: %w", err)
		}
		if out.Table.TableStatus == types.TableStatusActive {
			return out.Table, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("still %s: %w", out.Table.TableStatus, context.Cause(ctx))
		case <-tick.C:
		}
	}
}
