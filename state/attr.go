package state

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// item is one DynamoDB item.
type item = map[string]types.AttributeValue

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// epoch is t in epoch seconds, the unit of expires_at and of the
// confirmation's expiry (a button value holds seconds too).
func epoch(t time.Time) types.AttributeValue { return num(t.Unix()) }

// millis is t in epoch milliseconds, the unit of leases and event times.
func millis(t time.Time) types.AttributeValue { return num(t.UnixMilli()) }

func strList(v []string) types.AttributeValue {
	l := make([]types.AttributeValue, len(v))
	for i, s := range v {
		l[i] = str(s)
	}
	return &types.AttributeValueMemberL{Value: l}
}

func key(pk string) item { return item{PartitionKey: str(pk)} }

// setIf sets it[name] to v unless v is empty (empty strings are left out).
func setIf(it item, name, v string) {
	if v != "" {
		it[name] = str(v)
	}
}

func getS(it item, name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(it item, name string) int64 {
	if v, ok := it[name].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

func getSeconds(it item, name string) time.Time {
	if _, ok := it[name]; !ok {
		return time.Time{}
	}
	return time.Unix(getN(it, name), 0).UTC()
}

func getMillis(it item, name string) time.Time {
	if _, ok := it[name]; !ok {
		return time.Time{}
	}
	return time.UnixMilli(getN(it, name)).UTC()
}

func getList(it item, name string) []string {
	l, ok := it[name].(*types.AttributeValueMemberL)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(l.Value))
	for _, v := range l.Value {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			out = append(out, s.Value)
		}
	}
	return out
}

// get reads an item with a consistent read; a missing item is nil, nil.
func (s *Store) get(ctx context.Context, pk string) (item, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            key(pk),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, s.storeErr("GetItem", pk, err)
	}
	return out.Item, nil
}

// update is one UpdateItem. It returns (false, nil) when the condition did not
// hold, and a *StoreError for any other failure.
func (s *Store) update(ctx context.Context, in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, bool, error) {
	in.TableName = aws.String(s.table)
	out, err := s.api.UpdateItem(ctx, in)
	if conditionFailed(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, s.storeErr("UpdateItem", getS(in.Key, PartitionKey), err)
	}
	return out, true, nil
}

// put is one conditional PutItem, reporting a failed condition as false.
func (s *Store) put(ctx context.Context, it item, condition string, names map[string]string, values item) (bool, error) {
	in := &dynamodb.PutItemInput{
		TableName:           aws.String(s.table),
		Item:                it,
		ConditionExpression: aws.String(condition),
	}
	if len(names) > 0 {
		in.ExpressionAttributeNames = names
	}
	if len(values) > 0 {
		in.ExpressionAttributeValues = values
	}
	_, err := s.api.PutItem(ctx, in)
	if conditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, s.storeErr("PutItem", getS(it, PartitionKey), err)
	}
	return true, nil
}

// del is one conditional DeleteItem, reporting a failed condition as false.
func (s *Store) del(ctx context.Context, pk, condition string, names map[string]string, values item) (bool, error) {
	in := &dynamodb.DeleteItemInput{
		TableName:           aws.String(s.table),
		Key:                 key(pk),
		ConditionExpression: aws.String(condition),
	}
	if len(names) > 0 {
		in.ExpressionAttributeNames = names
	}
	if len(values) > 0 {
		in.ExpressionAttributeValues = values
	}
	_, err := s.api.DeleteItem(ctx, in)
	if conditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, s.storeErr("DeleteItem", pk, err)
	}
	return true, nil
}
