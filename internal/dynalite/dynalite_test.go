package dynalite_test

// One test per DynamoDB feature the bot's design relies on, run with the real SDK client
// against dynalite. Where dynalite differs from DynamoDB the test pins what dynalite does
// and says so, so that an upgrade which changes it fails here first.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/stopdeploy/stopdeploy/internal/dynalite"
)

const table = "stopdeploy"

// newTable starts dynalite with the bot's table and returns a client for it.
func newTable(t *testing.T) *dynamodb.Client {
	t.Helper()
	client := dynalite.Start(t).Client(t)
	dynalite.CreateTable(t, client, table)
	return client
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}
func strs(v ...string) types.AttributeValue { return &types.AttributeValueMemberSS{Value: v} }

func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{dynalite.PartitionKey: str(pk)}
}

func put(t *testing.T, client *dynamodb.Client, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatalf("PutItem: %v", err)
	}
}

func get(t *testing.T, client *dynamodb.Client, pk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := client.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key(pk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	return out.Item
}

// conditionFailed asserts that err is a ConditionalCheckFailedException, found with
// errors.As through the SDK's OperationError, and returns it.
func conditionFailed(t *testing.T, err error) *types.ConditionalCheckFailedException {
	t.Helper()
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("err = %v (%T), want a *types.ConditionalCheckFailedException", err, err)
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ConditionalCheckFailedException" {
		t.Fatalf("smithy.APIError code = %v, want ConditionalCheckFailedException", apiErr)
	}
	return ccf
}

// show renders an item compactly, sorted, for comparisons and messages.
func show(item map[string]types.AttributeValue) string {
	var parts []string
	for name, v := range item {
		parts = append(parts, name+"="+showValue(v))
	}
	slices.Sort(parts)
	return fmt.Sprint(parts)
}

func showValue(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return strconv.Quote(v.Value)
	case *types.AttributeValueMemberN:
		return v.Value
	case *types.AttributeValueMemberSS:
		ss := slices.Clone(v.Value)
		slices.Sort(ss)
		return fmt.Sprintf("SS%q", ss)
	case *types.AttributeValueMemberL:
		var elems []string
		for _, e := range v.Value {
			elems = append(elems, showValue(e))
		}
		return fmt.Sprintf("L%v", elems)
	default:
		return fmt.Sprintf("%T", v)
	}
}

func TestConfig_EndpointFromEnvironment(t *testing.T) {
	srv := dynalite.Start(t)
	// The service's own variable wins over the general one, which points nowhere.
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", srv.Endpoint())
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false")

	client := dynamodb.NewFromConfig(dynalite.Config(t))
	dynalite.CreateTable(t, client, table)
	out, err := client.ListTables(t.Context(), &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatalf("ListTables: %v", err)
	}
	if want := []string{table}; !slices.Equal(out.TableNames, want) {
		t.Errorf("TableNames = %q, want %q", out.TableNames, want)
	}
}

func TestConfig_BaseEndpointWinsOverEnvironment(t *testing.T) {
	srv := dynalite.Start(t)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1")

	cfg := dynalite.Config(t, config.WithRetryMaxAttempts(1))
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(srv.Endpoint()) })
	if _, err := client.ListTables(t.Context(), &dynamodb.ListTablesInput{}); err != nil {
		t.Fatalf("ListTables: %v", err)
	}
}

func TestDescribeTable(t *testing.T) {
	t.Parallel()
	client := dynalite.Start(t).Client(t)
	dynalite.CreateTable(t, client, table)
	dynalite.CreateTableWithKeys(t, client, "by-id", dynalite.Key{Name: "id", Type: types.ScalarAttributeTypeS})
	dynalite.CreateTableWithKeys(t, client, "with-sort", dynalite.Key{Name: "pk", Type: types.ScalarAttributeTypeS}, dynalite.Key{Name: "sk", Type: types.ScalarAttributeTypeN})

	for name, want := range map[string]string{
		table:       "[pk:HASH:S]",
		"by-id":     "[id:HASH:S]",
		"with-sort": "[pk:HASH:S sk:RANGE:N]",
	} {
		out, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			t.Fatalf("DescribeTable(%q): %v", name, err)
		}
		attrTypes := map[string]types.ScalarAttributeType{}
		for _, d := range out.Table.AttributeDefinitions {
			attrTypes[*d.AttributeName] = d.AttributeType
		}
		var got []string
		for _, k := range out.Table.KeySchema {
			got = append(got, fmt.Sprintf("%s:%s:%s", *k.AttributeName, k.KeyType, attrTypes[*k.AttributeName]))
		}
		if fmt.Sprint(got) != want {
			t.Errorf("DescribeTable(%q) key schema = %v, want %s", name, got, want)
		}
		if out.Table.TableStatus != "ACTIVE" {
			t.Errorf("DescribeTable(%q) status = %s, want ACTIVE", name, out.Table.TableStatus)
		}
	}

	_, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String("missing")})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Fatalf("DescribeTable(missing): err = %v, want a *types.ResourceNotFoundException", err)
	}
	t.Logf("DescribeTable(missing): %s", notFound.ErrorMessage())
}

func TestPutItem_AttributeNotExists(t *testing.T) {
	t.Parallel()
	client := newTable(t)
	in := &dynamodb.PutItemInput{
		TableName:                           aws.String(table),
		Item:                                map[string]types.AttributeValue{"pk": str("d-1"), "state": str("requested")},
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if _, err := client.PutItem(t.Context(), in); err != nil {
		t.Fatalf("first PutItem: %v", err)
	}
	in.Item["state"] = str("other")
	_, err := client.PutItem(t.Context(), in)
	ccf := conditionFailed(t, err)
	t.Logf("second PutItem: %v", err)
	// DynamoDB returns the existing item here; dynalite 4.0.0 does not.
	if ccf.Item != nil {
		t.Errorf("ConditionalCheckFailedException.Item = %s; dynalite now returns it: update the notes", show(ccf.Item))
	}
	if got, want := show(get(t, client, "d-1")), `[pk="d-1" state="requested"]`; got != want {
		t.Errorf("item = %s, want %s", got, want)
	}
}

// transition is the bot's state change: SET #s = :to if #s = :from.
func transition(pk, from, to string) *dynamodb.UpdateItemInput {
	return &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       key(pk),
		UpdateExpression:          aws.String("SET #s = :to"),
		ConditionExpression:       aws.String("#s = :from"),
		ExpressionAttributeNames:  map[string]string{"#s": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":from": str(from), ":to": str(to)},
	}
}

func TestUpdateItem_StateTransition(t *testing.T) {
	t.Parallel()
	client := newTable(t)
	put(t, client, map[string]types.AttributeValue{"pk": str("d-1"), "state": str("requested")})

	in := transition("d-1", "requested", "approved")
	in.ReturnValues = types.ReturnValueAllNew
	out, err := client.UpdateItem(t.Context(), in)
	if err != nil {
		t.Fatalf("UpdateItem requested→approved: %v", err)
	}
	if got, want := show(out.Attributes), `[pk="d-1" state="approved"]`; got != want {
		t.Errorf("ALL_NEW = %s, want %s", got, want)
	}

	in = transition("d-1", "approved", "stopping")
	in.ReturnValues = types.ReturnValueAllOld
	out, err = client.UpdateItem(t.Context(), in)
	if err != nil {
		t.Fatalf("UpdateItem approved→stopping: %v", err)
	}
	if got, want := show(out.Attributes), `[pk="d-1" state="approved"]`; got != want {
		t.Errorf("ALL_OLD = %s, want %s", got, want)
	}

	// A loser: the state is no longer "approved".
	in = transition("d-1", "approved", "stopping")
	in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	_, err = client.UpdateItem(t.Context(), in)
	ccf := conditionFailed(t, err)
	t.Logf("losing UpdateItem: %v", err)
	// DynamoDB puts the current item in the exception; dynalite 4.0.0 accepts the
	// parameter and ignores it, so the loser must read the winner with GetItem.
	if ccf.Item != nil {
		t.Errorf("ConditionalCheckFailedException.Item = %s; dynalite now returns it: update the notes", show(ccf.Item))
	}

	// On a missing item the condition fails too (and nothing is created).
	_, err = client.UpdateItem(t.Context(), transition("d-missing", "requested", "approved"))
	conditionFailed(t, err)
	if item := get(t, client, "d-missing"); item != nil {
		t.Errorf("failed UpdateItem created %s", show(item))
	}
}

// approve is the bot's approval: ADD approvers :u if condition holds. The values
// :user and :n are sent only if condition uses them (DynamoDB and dynalite refuse
// unused ones).
func approve(pk, user string, n int64, condition string) *dynamodb.UpdateItemInput {
	values := map[string]types.AttributeValue{":u": strs(user)}
	if strings.Contains(condition, ":user") {
		values[":user"] = str(user)
	}
	if strings.Contains(condition, ":n") {
		values[":n"] = num(n)
	}
	return &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       key(pk),
		UpdateExpression:          aws.String("ADD approvers :u"),
		ConditionExpression:       aws.String(condition),
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	}
}

func TestUpdateItem_AddToStringSet(t *testing.T) {
	t.Parallel()
	client := newTable(t)
	const both = "NOT contains(approvers, :user) AND size(approvers) < :n"

	// With approvers absent: contains is false (so NOT contains is true) and size(...) < :n
	// is false, as in DynamoDB. The bot's condition must allow for the absent set.
	for i, c := range []struct {
		condition string
		holds     bool
	}{
		{"contains(approvers, :user)", false},
		{"NOT contains(approvers, :user)", true},
		{"size(approvers) < :n", false},
		{"NOT (size(approvers) < :n)", true},
		{both, false},
		{"attribute_not_exists(approvers) OR (" + both + ")", true},
	} {
		pk := fmt.Sprintf("d-probe-%d", i)
		put(t, client, map[string]types.AttributeValue{"pk": str(pk)})
		_, err := client.UpdateItem(t.Context(), approve(pk, "U1", 2, c.condition))
		if c.holds {
			if err != nil {
				t.Errorf("absent approvers: %q: %v, want it to hold", c.condition, err)
			}
			continue
		}
		conditionFailed(t, err)
	}

	const bot = "attribute_not_exists(approvers) OR (" + both + ")"
	put(t, client, map[string]types.AttributeValue{"pk": str("d-1")})
	for _, c := range []struct {
		user    string
		wantErr bool
		want    string
	}{
		{"U1", false, `[approvers=SS["U1"] pk="d-1"]`},
		{"U1", true, ""}, // already approved
		{"U2", false, `[approvers=SS["U1" "U2"] pk="d-1"]`},
		{"U3", true, ""}, // size 2 is not < 2
	} {
		out, err := client.UpdateItem(t.Context(), approve("d-1", c.user, 2, bot))
		if c.wantErr {
			conditionFailed(t, err)
			continue
		}
		if err != nil {
			t.Fatalf("approve %s: %v", c.user, err)
		}
		if got := show(out.Attributes); got != c.want {
			t.Errorf("approve %s: ALL_NEW = %s, want %s", c.user, got, c.want)
		}
	}
	if got, want := show(get(t, client, "d-1")), `[approvers=SS["U1" "U2"] pk="d-1"]`; got != want {
		t.Errorf("item = %s, want %s", got, want)
	}
}

func TestUpdateItem_AtomicCounter(t *testing.T) {
	t.Parallel()
	client := newTable(t)
	for want := 1; want <= 3; want++ {
		out, err := client.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{
			TableName:                 aws.String(table),
			Key:                       key("counter"), // absent at first: ADD creates it from 0
			UpdateExpression:          aws.String("ADD n :one"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)},
			ReturnValues:              types.ReturnValueUpdatedNew,
		})
		if err != nil {
			t.Fatalf("UpdateItem ADD n: %v", err)
		}
		if got, want := show(out.Attributes), fmt.Sprintf("[n=%d]", want); got != want {
			t.Errorf("UPDATED_NEW = %s, want %s", got, want)
		}
	}
}

func TestUpdateItem_ListAppend(t *testing.T) {
	t.Parallel()
	client := newTable(t)
	put(t, client, map[string]types.AttributeValue{"pk": str("d-1")})
	for _, ev := range []string{"requested", "approved"} {
		_, err := client.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{
			TableName:        aws.String(table),
			Key:              key("d-1"),
			UpdateExpression: aws.String("SET events = list_append(if_not_exists(events, :empty), :ev)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":empty": &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
				":ev":    &types.AttributeValueMemberL{Value: []types.AttributeValue{str(ev)}},
			},
		})
		if err != nil {
			t.Fatalf("UpdateItem list_append %s: %v", ev, err)
		}
	}
	if got, want := show(get(t, client, "d-1")), `[events=L["requested" "approved"] pk="d-1"]`; got != want {
		t.Errorf("item = %s, want %s", got, want)
	}
}

func TestUpdateItem_DeleteFromStringSet(t *testing.T) {
	t.Parallel()
	client := newTable(t)
	put(t, client, map[string]types.AttributeValue{"pk": str("locks"), "active": strs("d-1", "d-2")})
	for _, c := range []struct{ remove, want string }{
		{"d-1", `[active=SS["d-2"] pk="locks"]`},
		{"d-9", `[active=SS["d-2"] pk="locks"]`}, // not a member: no change, no error
		{"d-2", `[pk="locks"]`},                  // the last member: the attribute goes, as in DynamoDB
	} {
		_, err := client.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{
			TableName:                 aws.String(table),
			Key:                       key("locks"),
			UpdateExpression:          aws.String("DELETE active :x"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":x": strs(c.remove)},
		})
		if err != nil {
			t.Fatalf("DELETE active %s: %v", c.remove, err)
		}
		if got := show(get(t, client, "locks")); got != c.want {
			t.Errorf("after DELETE %s: item = %s, want %s", c.remove, got, c.want)
		}
	}
}

func TestDeleteItem_Condition(t *testing.T) {
	t.Parallel()
	client := newTable(t)
	put(t, client, map[string]types.AttributeValue{"pk": str("d-1"), "state": str("done")})
	del := func(state string) (*dynamodb.DeleteItemOutput, error) {
		return client.DeleteItem(t.Context(), &dynamodb.DeleteItemInput{
			TableName:                 aws.String(table),
			Key:                       key("d-1"),
			ConditionExpression:       aws.String("#s = :s"),
			ExpressionAttributeNames:  map[string]string{"#s": "state"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":s": str(state)},
			ReturnValues:              types.ReturnValueAllOld,
		})
	}
	_, err := del("stopping")
	conditionFailed(t, err)
	out, err := del("done")
	if err != nil {
		t.Fatalf("DeleteItem: %v", err)
	}
	if got, want := show(out.Attributes), `[pk="d-1" state="done"]`; got != want {
		t.Errorf("ALL_OLD = %s, want %s", got, want)
	}
	if item := get(t, client, "d-1"); item != nil {
		t.Errorf("item after DeleteItem = %s, want none", show(item))
	}
	_, err = del("done") // gone: the condition fails
	conditionFailed(t, err)
}

func TestUpdateItem_ConcurrentTransitionsOneWinner(t *testing.T) {
	t.Parallel()
	client := newTable(t)
	put(t, client, map[string]types.AttributeValue{"pk": str("d-1"), "state": str("approved"), "n": num(0)})

	const workers = 20
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range workers {
		wg.Go(func() {
			in := transition("d-1", "approved", "stopping")
			in.UpdateExpression = aws.String("SET #s = :to, winner = :me ADD n :one")
			in.ExpressionAttributeValues[":me"] = str(fmt.Sprintf("U%02d", i))
			in.ExpressionAttributeValues[":one"] = num(1)
			<-start
			_, errs[i] = client.UpdateItem(t.Context(), in)
		})
	}
	close(start)
	wg.Wait()

	var winners []string
	for i, err := range errs {
		if err == nil {
			winners = append(winners, fmt.Sprintf("U%02d", i))
			continue
		}
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			t.Errorf("worker %d: %v, want success or ConditionalCheckFailedException", i, err)
		}
	}
	if len(winners) != 1 {
		t.Fatalf("winners = %v, want exactly one", winners)
	}
	want := fmt.Sprintf(`[n=1 pk="d-1" state="stopping" winner=%q]`, winners[0])
	if got := show(get(t, client, "d-1")); got != want {
		t.Errorf("item = %s, want %s", got, want)
	}
}

func TestUpdateItem_ConcurrentCounterNoLostUpdates(t *testing.T) {
	t.Parallel()
	client := newTable(t)
	const workers, each = 10, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				_, err := client.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{
					TableName:                 aws.String(table),
					Key:                       key("counter"),
					UpdateExpression:          aws.String("ADD n :one"),
					ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)},
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("UpdateItem ADD n: %v", err)
	}
	if got, want := show(get(t, client, "counter")), fmt.Sprintf(`[n=%d pk="counter"]`, workers*each); got != want {
		t.Errorf("item = %s, want %s", got, want)
	}
}

func TestTimeToLive(t *testing.T) {
	t.Parallel()
	client := newTable(t)

	// dynalite 4.0.0 does not implement UpdateTimeToLive.
	_, err := client.UpdateTimeToLive(t.Context(), &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String("expires_at"), Enabled: aws.Bool(true),
		},
	})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("UpdateTimeToLive: err = %v; dynalite now supports it: update the notes", err)
	}
	t.Logf("UpdateTimeToLive: %s: %s", apiErr.ErrorCode(), apiErr.ErrorMessage())
	if got, want := apiErr.ErrorCode(), "UnknownOperationException"; got != want {
		t.Errorf("UpdateTimeToLive error code = %s, want %s", got, want)
	}

	// DescribeTimeToLive answers, always DISABLED.
	out, err := client.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatalf("DescribeTimeToLive: %v", err)
	}
	if got := out.TimeToLiveDescription.TimeToLiveStatus; got != types.TimeToLiveStatusDisabled {
		t.Errorf("TimeToLiveStatus = %s, want DISABLED", got)
	}
	_, err = client.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String("missing")})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("DescribeTimeToLive(missing): err = %v, want a *types.ResourceNotFoundException", err)
	}
}

func TestCondition_NumberComparison(t *testing.T) {
	t.Parallel()
	client := newTable(t)
	// 10000 > 9999 as numbers, though "10000" < "9999" as strings.
	put(t, client, map[string]types.AttributeValue{"pk": str("d-1"), "state": str("requested"), "expires_at": num(10000)})
	put(t, client, map[string]types.AttributeValue{"pk": str("d-none"), "state": str("requested")})
	for _, c := range []struct {
		pk    string
		now   int64
		holds bool
	}{
		{"d-1", 9999, true},
		{"d-1", 10000, false},
		{"d-1", 10001, false},
		{"d-none", 0, false}, // no expires_at: the comparison is false
	} {
		in := transition(c.pk, "requested", "requested")
		in.ConditionExpression = aws.String("#s = :from AND expires_at > :now")
		in.ExpressionAttributeValues[":now"] = num(c.now)
		_, err := client.UpdateItem(t.Context(), in)
		if c.holds {
			if err != nil {
				t.Errorf("%s: expires_at > %d: %v, want success", c.pk, c.now, err)
			}
			continue
		}
		conditionFailed(t, err)
	}
}

// TestTiming logs how long a start and a round trip take; it asserts nothing about time.
func TestTiming(t *testing.T) {
	begin := time.Now()
	srv := dynalite.Start(t)
	started := time.Since(begin)
	client := srv.Client(t)
	dynalite.CreateTable(t, client, table)
	put(t, client, map[string]types.AttributeValue{"pk": str("d-1")})
	get(t, client, "d-1") // warm the connection
	const n = 50
	begin = time.Now()
	for range n {
		get(t, client, "d-1")
	}
	t.Logf("start: %v; GetItem round trip: %v (mean of %d)", started, time.Since(begin)/n, n)
}

func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		srv, err := dynalite.StartContext(b.Context(), ".", dynalite.Options{})
		if errors.Is(err, dynalite.ErrNotInstalled) {
			dynalite.Start(b) // skips, or fails in CI, with how to install
		}
		if err != nil {
			b.Fatal(err)
		}
		if err := srv.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetItem(b *testing.B) {
	client := dynalite.Start(b).Client(b)
	dynalite.CreateTable(b, client, table)
	in := &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("d-1")}
	for b.Loop() {
		if _, err := client.GetItem(b.Context(), in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestServer_SurvivesAClientHangingUp: a client that closes its connection
// in the middle of a request body (a bot process being stopped) ends that
// request only; dynalite alone would crash (server.js says why).
func TestServer_SurvivesAClientHangingUp(t *testing.T) {
	srv := dynalite.Start(t)
	client := srv.Client(t)
	dynalite.CreateTable(t, client, table)
	for range 3 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.Endpoint(), "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: dynalite\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\nContent-Length: 1000\r\n\r\n{\"TableName\":")
		// Hang up before the body is complete.
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, conn) // dynalite answers or closes
		conn.Close()
	}
	if _, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(table)}); err != nil {
		t.Fatalf("dynalite did not survive clients hanging up: %v\n%s", err, srv.Output())
	}
}
