package state

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// registryKey is the one item listing live confirmations, so that another
// process finds follow-ups to take over without Scan. Its attribute confs maps
// "channel/ts" to the confirmation's expiry (epoch seconds). Each entry is a
// few dozen bytes: the 400 KB item limit allows thousands of confirmations
// open or stopping at once.
const registryKey = "follows"

// registryGrace is how long after its expiry an entry whose confirmation item
// is missing is kept (Posted registers before it writes the item).
const registryGrace = time.Minute

// register adds m to the registry, creating the registry item if need be.
func (s *Store) register(ctx context.Context, m Message, expiresAt time.Time) error {
	in := func() *dynamodb.UpdateItemInput {
		return &dynamodb.UpdateItemInput{
			Key:                       key(registryKey),
			UpdateExpression:          aws.String("SET confs.#m = :exp, expires_at = :ttl"),
			ConditionExpression:       aws.String("attribute_exists(confs)"),
			ExpressionAttributeNames:  map[string]string{"#m": m.String()},
			ExpressionAttributeValues: item{":exp": epoch(expiresAt), ":ttl": epoch(s.now().Add(s.retention))},
		}
	}
	_, ok, err := s.update(ctx, in())
	if err != nil || ok {
		return err
	}
	// First confirmation ever (or after TTL): create the registry; a
	// concurrent creator may win, which is as good.
	if _, err := s.put(ctx, item{
		PartitionKey: str(registryKey),
		"confs":      &types.AttributeValueMemberM{Value: item{}},
		TTLAttribute: epoch(s.now().Add(s.retention)),
	}, "attribute_not_exists(pk)", nil, nil); err != nil {
		return err
	}
	_, ok, err = s.update(ctx, in())
	if err == nil && !ok {
		err = s.storeErr("UpdateItem", registryKey, errContention)
	}
	return err
}

// unregister removes m from the registry; an absent entry is no error.
func (s *Store) unregister(ctx context.Context, m Message) error {
	_, _, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                      key(registryKey),
		UpdateExpression:         aws.String("REMOVE confs.#m"),
		ConditionExpression:      aws.String("attribute_exists(confs)"),
		ExpressionAttributeNames: map[string]string{"#m": m.String()},
	})
	return err
}

// Orphans lists the confirmations no process is looking after: stopping with
// no live lease (take each over with AcquireLease, then follow it and
// Finish), and open past their expiry (Claim ActionExpire, then update the
// card). It reads the registry and each entry's item (GetItem only), and
// prunes entries of confirmations that have ended. Call it once per
// follow-up interval.
func (s *Store) Orphans(ctx context.Context) ([]Confirmation, error) {
	reg, err := s.get(ctx, registryKey)
	if err != nil {
		return nil, err
	}
	entries, _ := reg["confs"].(*types.AttributeValueMemberM)
	if entries == nil {
		return nil, nil
	}
	names := make([]string, 0, len(entries.Value))
	for name := range entries.Value {
		names = append(names, name)
	}
	slices.Sort(names)
	now := s.now()
	var orphans []Confirmation
	for _, name := range names {
		channel, ts, _ := strings.Cut(name, "/")
		m := Message{Channel: channel, TS: ts}
		it, err := s.get(ctx, confKey(m))
		if err != nil {
			return orphans, err
		}
		var gone bool
		switch {
		case it == nil:
			exp := getSeconds(item{"n": entries.Value[name]}, "n")
			gone = now.After(exp.Add(registryGrace))
		case Status(getS(it, "status")).Final():
			gone = true
		default:
			c := confirmationOf(it)
			if c.Status == StatusStopping && !c.LeaseUntil.After(now) ||
				c.Status == StatusOpen && !c.ExpiresAt.After(now) {
				orphans = append(orphans, c)
			}
		}
		if gone {
			if err := s.unregister(ctx, m); err != nil {
				return orphans, err
			}
		}
	}
	return orphans, nil
}

// AcquireLease takes the follow-up lease of a stopping confirmation for this
// Store's owner, for LeaseTTL. It succeeds if nobody holds it, this owner
// does, or the holder's lease has run out; false means another owner holds a
// live lease, or the confirmation is not stopping.
func (s *Store) AcquireLease(ctx context.Context, m Message) (bool, error) {
	now := s.now()
	_, ok, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                      key(confKey(m)),
		UpdateExpression:         aws.String("SET lease_owner = :me, lease_until = :until"),
		ConditionExpression:      aws.String("#status = :stopping AND (attribute_not_exists(lease_owner) OR lease_owner = :me OR lease_until <= :now)"),
		ExpressionAttributeNames: map[string]string{"#status": "status"},
		ExpressionAttributeValues: item{
			":stopping": str(string(StatusStopping)), ":me": str(s.owner),
			":now": millis(now), ":until": millis(now.Add(s.leaseTTL)),
		},
	})
	return ok, err
}

// RenewLease extends this owner's lease by LeaseTTL; call it every follow-up
// interval. ErrLeaseLost means another owner took it over (or the
// confirmation is no longer stopping): stop following, post nothing.
func (s *Store) RenewLease(ctx context.Context, m Message) error {
	_, ok, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(confKey(m)),
		UpdateExpression:          aws.String("SET lease_until = :until"),
		ConditionExpression:       aws.String("#status = :stopping AND lease_owner = :me"),
		ExpressionAttributeNames:  map[string]string{"#status": "status"},
		ExpressionAttributeValues: item{":stopping": str(string(StatusStopping)), ":me": str(s.owner), ":until": millis(s.now().Add(s.leaseTTL))},
	})
	if err == nil && !ok {
		err = ErrLeaseLost
	}
	return err
}

// ReleaseLease gives up this owner's lease (at shutdown), so another process
// takes the follow-up over at once. A lease not held is no error.
func (s *Store) ReleaseLease(ctx context.Context, m Message) error {
	_, _, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(confKey(m)),
		UpdateExpression:          aws.String("REMOVE lease_owner, lease_until"),
		ConditionExpression:       aws.String("lease_owner = :me"),
		ExpressionAttributeValues: item{":me": str(s.owner)},
	})
	return err
}
