package state

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// AuditEvent is one line of a deployment's history. Empty fields are not
// stored.
type AuditEvent struct {
	At        time.Time // default: the Store's clock
	Event     string
	User      string
	Channel   string
	MessageTS string
	Outcome   string
	Detail    string
}

// AuditRecord is an AuditEvent as stored, with its place in the history.
type AuditRecord struct {
	Seq        int64 // 1, 2, … in the order AppendAudit numbered them
	Deployment Deployment
	AuditEvent
}

// MaxHistory is how many of a deployment's latest events History returns.
const MaxHistory = 1000

// historyReaders bounds History's concurrent GetItem calls.
const historyReaders = 8

func auditCounterKey(d Deployment) string { return "audit#" + d.String() }
func auditEventKey(d Deployment, seq int64) string {
	return auditCounterKey(d) + "#" + strconv.FormatInt(seq, 10)
}

// AppendAudit numbers ev in d's history (an atomic counter, ADD seq :1) and
// writes it as its own item, kept for Retention. It returns the number. A
// crash between the two writes leaves a gap, which History skips.
func (s *Store) AppendAudit(ctx context.Context, d Deployment, ev AuditEvent) (int64, error) {
	if ev.At.IsZero() {
		ev.At = s.now()
	}
	ttl := epoch(ev.At.Add(s.retention))
	counter := auditCounterKey(d)
	out, _, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(counter),
		UpdateExpression:          aws.String("ADD seq :one SET expires_at = :ttl"),
		ExpressionAttributeValues: item{":one": num(1), ":ttl": ttl},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, err
	}
	seq := getN(out.Attributes, "seq")
	it := item{
		PartitionKey: str(auditEventKey(d, seq)),
		"seq":        num(seq),
		"at":         millis(ev.At),
		TTLAttribute: ttl,
	}
	setIf(it, "account", d.Account)
	setIf(it, "region", d.Region)
	setIf(it, "deployment", d.ID)
	setIf(it, "event", ev.Event)
	setIf(it, "user", ev.User)
	setIf(it, "channel", ev.Channel)
	setIf(it, "message_ts", ev.MessageTS)
	setIf(it, "outcome", ev.Outcome)
	setIf(it, "detail", ev.Detail)
	if _, err := s.put(ctx, it, "attribute_not_exists(pk)", nil, nil); err != nil {
		return 0, err
	}
	return seq, nil
}

// History returns d's audit events in order (at most the last MaxHistory),
// read with GetItem: the counter, then each event. Events removed by TTL or
// never written are skipped.
func (s *Store) History(ctx context.Context, d Deployment) ([]AuditRecord, error) {
	counter, err := s.get(ctx, auditCounterKey(d))
	if err != nil {
		return nil, err
	}
	last := getN(counter, "seq")
	first := max(1, last-MaxHistory+1)
	if last < first {
		return nil, nil
	}
	items := make([]item, last-first+1)
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	sem := make(chan struct{}, historyReaders)
	for i := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			items[i], errs[i] = s.get(ctx, auditEventKey(d, first+int64(i)))
		})
	}
	wg.Wait()
	var recs []AuditRecord
	for i, it := range items {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if it == nil {
			continue
		}
		recs = append(recs, AuditRecord{
			Seq:        getN(it, "seq"),
			Deployment: d,
			AuditEvent: AuditEvent{
				At:        getMillis(it, "at"),
				Event:     getS(it, "event"),
				User:      getS(it, "user"),
				Channel:   getS(it, "channel"),
				MessageTS: getS(it, "message_ts"),
				Outcome:   getS(it, "outcome"),
				Detail:    getS(it, "detail"),
			},
		})
	}
	return recs, nil
}
