package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Deployment identifies a CodeDeploy deployment: an ID is unique only within
// its account and region.
type Deployment struct {
	Account, Region, ID string
}

// String is "account/region/id", the form used in item keys.
func (d Deployment) String() string { return d.Account + "/" + d.Region + "/" + d.ID }

// Message identifies a posted confirmation: its channel and message ts.
type Message struct {
	Channel, TS string
}

// String is "channel/ts", the form used in item keys.
func (m Message) String() string { return m.Channel + "/" + m.TS }

// Status is where a confirmation is in its state machine.
type Status string

const (
	StatusOpen      Status = "open"
	StatusStopping  Status = "stopping"
	StatusStopped   Status = "stopped"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
	StatusExpired   Status = "expired"
)

// Final reports whether no transition leaves s.
func (s Status) Final() bool {
	switch s {
	case StatusStopped, StatusFailed, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// Action is the transition that took a confirmation out of open.
type Action string

const (
	ActionStop    Action = "stop"    // open → stopping, one press (Needed ≤ 1)
	ActionApprove Action = "approve" // open → stopping, by the approval that completed Needed
	ActionCancel  Action = "cancel"  // open → cancelled
	ActionExpire  Action = "expire"  // open → expired, once past ExpiresAt
)

// Request is a new confirmation, before it is posted.
type Request struct {
	Deployment Deployment
	Requester  string // Slack user ID
	Channel    string // where the confirmation will be posted
	ExpiresAt  time.Time
	// Needed is how many distinct approvals stop the deployment; 0 and 1
	// both mean one Stop press.
	Needed int
	// Payload is kept as is and returned in Confirmation (for example the
	// button value, so that a process taking a follow-up over knows it all).
	Payload string
}

// Pending is a Request that holds its deployment's open lock, waiting for
// Posted (or Abandon).
type Pending struct {
	Request
	Token     string // the lock's owner token
	CreatedAt time.Time
}

// OpenError is Begin refused: the deployment has a confirmation already.
type OpenError struct {
	Deployment Deployment
	Requester  string    // who asked for it
	Channel    string    // where
	MessageTS  string    // its message; "" while it is being posted
	At         time.Time // when it was asked for
	ExpiresAt  time.Time
	Status     Status // StatusOpen or StatusStopping; "" while being posted
}

func (e *OpenError) Error() string {
	where := "being posted in " + e.Channel
	if e.MessageTS != "" {
		where = "in " + e.Channel + " (message " + e.MessageTS + ")"
	}
	return fmt.Sprintf("state: deployment %s already has a confirmation %s, requested by %s at %s",
		e.Deployment, where, e.Requester, e.At.UTC().Format(time.RFC3339))
}

// ErrDuplicatePost is Posted for a second message of one Pending: the lock is
// bound to the first. The duplicate has no confirmation item, so a click on
// it is ErrNotFound and cannot act.
var ErrDuplicatePost = errors.New("state: the confirmation is already bound to another message")

// Winner is the transition that took a confirmation out of open.
type Winner struct {
	Action Action
	User   string // "" for ActionExpire
	At     time.Time
	Status Status // the confirmation's status now
}

// Confirmation is a confirmation item as read.
type Confirmation struct {
	Message    Message
	Deployment Deployment
	Requester  string
	Payload    string
	Status     Status
	Needed     int
	Approvers  []string // in the order they approved
	CreatedAt  time.Time
	ExpiresAt  time.Time
	Winner     Winner // zero while open
	FinishedAt time.Time
	LeaseOwner string
	LeaseUntil time.Time
}

// Approval is the outcome of Approve.
type Approval struct {
	Added     bool     // this press added an approval
	Already   bool     // the user had approved before; nothing changed
	Complete  bool     // this press completed the approvals and won open → stopping: stop now
	Approvers []string // the approvers after the press
	Needed    int
	// Winner is set when the confirmation had left open (Added is false).
	Winner Winner
}

func lockKey(d Deployment) string { return "open#" + d.String() }
func confKey(m Message) string    { return "conf#" + m.String() }

// maxAttempts bounds the optimistic loops (Begin, Approve); each lost round
// means another writer won one.
const maxAttempts = 25

var errContention = errors.New("state: too many concurrent writers, try again")

// Begin takes the deployment's open lock for a new confirmation. If the
// deployment has a confirmation that is open (unexpired) or stopping, or being
// posted, it returns an *OpenError saying who asked, where and when. A lock
// left by a confirmation that has ended, expired or was never posted is taken
// over. Post the message, then call Posted, or Abandon if the post failed.
func (s *Store) Begin(ctx context.Context, r Request) (Pending, error) {
	now := s.now()
	switch {
	case r.Deployment.ID == "" || r.Requester == "" || r.Channel == "":
		return Pending{}, fmt.Errorf("state.Begin: deployment ID, requester and channel are required (got %+v)", r)
	case !r.ExpiresAt.After(now):
		return Pending{}, fmt.Errorf("state.Begin: ExpiresAt %s is not after now", r.ExpiresAt.UTC().Format(time.RFC3339))
	}
	r.Needed = max(r.Needed, 1)
	p := Pending{Request: r, Token: nonce(), CreatedAt: now}
	pk := lockKey(r.Deployment)
	lock := item{
		PartitionKey: str(pk),
		"token":      str(p.Token),
		"requester":  str(r.Requester),
		"channel":    str(r.Channel),
		"created_at": epoch(now),
		"hold_until": epoch(r.ExpiresAt),
		TTLAttribute: epoch(r.ExpiresAt.Add(s.retention)),
	}
	cond, names, values := "attribute_not_exists(pk)", map[string]string(nil), item(nil)
	for range maxAttempts {
		ok, err := s.put(ctx, lock, cond, names, values)
		if err != nil {
			return Pending{}, err
		}
		if ok {
			return p, nil
		}
		cur, err := s.get(ctx, pk)
		if err != nil {
			return Pending{}, err
		}
		if cur == nil {
			cond, names, values = "attribute_not_exists(pk)", nil, nil
			continue
		}
		if getS(cur, "token") == p.Token {
			return p, nil // our put landed; the SDK retried it
		}
		status, free, err := s.lockFree(ctx, cur, now)
		if err != nil {
			return Pending{}, err
		}
		if !free {
			return Pending{}, &OpenError{
				Deployment: r.Deployment,
				Requester:  getS(cur, "requester"),
				Channel:    getS(cur, "channel"),
				MessageTS:  getS(cur, "ts"),
				At:         getSeconds(cur, "created_at"),
				ExpiresAt:  getSeconds(cur, "hold_until"),
				Status:     status,
			}
		}
		cond, names, values = "#token = :old", map[string]string{"#token": "token"}, item{":old": str(getS(cur, "token"))}
	}
	return Pending{}, errContention
}

// lockFree says whether the lock cur no longer guards a live confirmation,
// and the status of the one it guards.
func (s *Store) lockFree(ctx context.Context, cur item, now time.Time) (Status, bool, error) {
	lapsed := !getSeconds(cur, "hold_until").After(now)
	ts := getS(cur, "ts")
	if ts == "" {
		return "", lapsed, nil // never posted: free once its expiry passed
	}
	conf, err := s.get(ctx, confKey(Message{Channel: getS(cur, "channel"), TS: ts}))
	if err != nil {
		return "", false, err
	}
	if conf == nil || getS(conf, "token") != getS(cur, "token") {
		return "", lapsed, nil // crashed before its item was written
	}
	st := Status(getS(conf, "status"))
	switch {
	case st == StatusOpen:
		return st, !getSeconds(conf, "conf_expires").After(now), nil
	case st == StatusStopping:
		return st, false, nil // a stop is under way: held until Finish
	default:
		return st, true, nil
	}
}

// Posted binds a Pending to the message that was posted for it and creates
// the confirmation item; clicks on that message can act from now on. A second
// message for the same Pending gets ErrDuplicatePost and stays inert; a lock
// lost meanwhile is ErrLockLost. Posted is idempotent for the same ts.
func (s *Store) Posted(ctx context.Context, p Pending, ts string) (Message, error) {
	m := Message{Channel: p.Channel, TS: ts}
	if ts == "" {
		return m, errors.New("state.Posted: empty message ts")
	}
	pk := lockKey(p.Deployment)
	_, ok, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(pk),
		UpdateExpression:          aws.String("SET ts = :ts"),
		ConditionExpression:       aws.String("#token = :token AND (attribute_not_exists(ts) OR ts = :ts)"),
		ExpressionAttributeNames:  map[string]string{"#token": "token"},
		ExpressionAttributeValues: item{":ts": str(ts), ":token": str(p.Token)},
	})
	if err != nil {
		return m, err
	}
	if !ok {
		cur, err := s.get(ctx, pk)
		if err != nil {
			return m, err
		}
		if cur == nil || getS(cur, "token") != p.Token {
			return m, ErrLockLost
		}
		return m, fmt.Errorf("%w (message %s)", ErrDuplicatePost, getS(cur, "ts"))
	}
	// Registered before the item exists, so that no clickable confirmation is
	// missing from the registry Orphans reads.
	if err := s.register(ctx, m, p.ExpiresAt); err != nil {
		return m, err
	}
	conf := item{
		PartitionKey:   str(confKey(m)),
		"token":        str(p.Token),
		"account":      str(p.Deployment.Account),
		"region":       str(p.Deployment.Region),
		"deployment":   str(p.Deployment.ID),
		"channel":      str(m.Channel),
		"ts":           str(m.TS),
		"requester":    str(p.Requester),
		"status":       str(string(StatusOpen)),
		"needed":       num(int64(p.Needed)),
		"approvers":    strList(nil),
		"napprovals":   num(0),
		"created_at":   epoch(p.CreatedAt),
		"conf_expires": epoch(p.ExpiresAt),
		TTLAttribute:   epoch(p.ExpiresAt.Add(s.retention)),
	}
	setIf(conf, "payload", p.Payload)
	ok, err = s.put(ctx, conf, "attribute_not_exists(pk)", nil, nil)
	if err != nil {
		return m, err
	}
	if !ok {
		cur, err := s.get(ctx, confKey(m))
		if err != nil {
			return m, err
		}
		if getS(cur, "token") != p.Token {
			return m, fmt.Errorf("%w: %s holds another confirmation", ErrDuplicatePost, m)
		}
	}
	return m, nil
}

// Abandon releases the lock of a Pending whose message could not be posted.
// A lock that is no longer this Pending's is left alone.
func (s *Store) Abandon(ctx context.Context, p Pending) error {
	_, err := s.del(ctx, lockKey(p.Deployment), "#token = :token",
		map[string]string{"#token": "token"}, item{":token": str(p.Token)})
	return err
}

// Get reads a confirmation; ErrNotFound if there is none for m.
func (s *Store) Get(ctx context.Context, m Message) (Confirmation, error) {
	it, err := s.get(ctx, confKey(m))
	if err != nil {
		return Confirmation{}, err
	}
	if it == nil {
		return Confirmation{}, ErrNotFound
	}
	return confirmationOf(it), nil
}

func confirmationOf(it item) Confirmation {
	return Confirmation{
		Message:    Message{Channel: getS(it, "channel"), TS: getS(it, "ts")},
		Deployment: Deployment{Account: getS(it, "account"), Region: getS(it, "region"), ID: getS(it, "deployment")},
		Requester:  getS(it, "requester"),
		Payload:    getS(it, "payload"),
		Status:     Status(getS(it, "status")),
		Needed:     int(getN(it, "needed")),
		Approvers:  getList(it, "approvers"),
		CreatedAt:  getSeconds(it, "created_at"),
		ExpiresAt:  getSeconds(it, "conf_expires"),
		Winner:     winnerOf(it),
		FinishedAt: getMillis(it, "finished_at"),
		LeaseOwner: getS(it, "lease_owner"),
		LeaseUntil: getMillis(it, "lease_until"),
	}
}

func winnerOf(it item) Winner {
	return Winner{
		Action: Action(getS(it, "won_action")),
		User:   getS(it, "won_by"),
		At:     getMillis(it, "won_at"),
		Status: Status(getS(it, "status")),
	}
}

// Claim is a press of Stop or Cancel, or the expiry sweep (ActionExpire, user
// ""): one conditional write from open. Of any number of concurrent claims and
// approvals on any number of processes exactly one wins; the others get
// won == false and the winner. A claim that cannot apply to an open
// confirmation returns ErrExpired, ErrNotExpired or ErrApprovalsNeeded; an
// unknown message ErrNotFound.
//
// A won ActionStop also gives this Store the follow-up lease, so that a
// crash right after it is taken over. A won cancel or expiry releases the
// deployment's lock.
func (s *Store) Claim(ctx context.Context, m Message, a Action, user string) (won bool, w Winner, err error) {
	for range maxAttempts {
		var again bool
		if won, w, again, err = s.claim(ctx, m, a, user); !again {
			return won, w, err
		}
	}
	return false, Winner{}, errContention
}

// claim is one attempt of Claim. again is true when the write failed on an
// item that is open and claimable now: it did not exist yet when the write
// was evaluated (Posted creates it a moment after the message is on screen).
func (s *Store) claim(ctx context.Context, m Message, a Action, user string) (won bool, w Winner, again bool, err error) {
	now := s.now()
	op := nonce()
	values := item{":open": str(string(StatusOpen)), ":now": epoch(now), ":a": str(string(a)), ":at": millis(now), ":op": str(op)}
	set := "#status = :to, won_action = :a, won_at = :at, op = :op"
	var cond string
	switch a {
	case ActionStop:
		cond = "#status = :open AND conf_expires > :now AND needed <= :one"
		values[":to"], values[":one"] = str(string(StatusStopping)), num(1)
		set += ", lease_owner = :me, lease_until = :until"
		values[":me"], values[":until"] = str(s.owner), millis(now.Add(s.leaseTTL))
	case ActionCancel:
		cond = "#status = :open AND conf_expires > :now"
		values[":to"] = str(string(StatusCancelled))
		set += ", finished_at = :at"
	case ActionExpire:
		cond = "#status = :open AND conf_expires <= :now"
		values[":to"] = str(string(StatusExpired))
		set += ", finished_at = :at"
	default:
		return false, Winner{}, false, fmt.Errorf("state.Claim: unknown action %q", a)
	}
	if user != "" {
		set += ", won_by = :by"
		values[":by"] = str(user)
	}
	out, ok, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(confKey(m)),
		UpdateExpression:          aws.String("SET " + set),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  map[string]string{"#status": "status"},
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return false, Winner{}, false, err
	}
	cur := item(nil)
	if ok {
		cur = out.Attributes
	} else {
		// dynalite (and DynamoDB without ReturnValuesOnConditionCheckFailure)
		// says nothing about the item: read the winner.
		if cur, err = s.get(ctx, confKey(m)); err != nil {
			return false, Winner{}, false, err
		}
		if cur == nil {
			return false, Winner{}, false, ErrNotFound
		}
		ok = getS(cur, "op") == op // our write landed and an SDK retry lost to it
	}
	if !ok {
		if Status(getS(cur, "status")) != StatusOpen {
			return false, winnerOf(cur), false, nil
		}
		expired := !getSeconds(cur, "conf_expires").After(time.Unix(now.Unix(), 0))
		switch {
		case a == ActionExpire && !expired:
			return false, Winner{}, false, ErrNotExpired
		case a != ActionExpire && expired:
			return false, Winner{}, false, ErrExpired
		case a == ActionStop && getN(cur, "needed") > 1:
			return false, Winner{}, false, ErrApprovalsNeeded
		}
		return false, Winner{}, true, nil // created meanwhile: try again
	}
	if a != ActionStop {
		s.release(ctx, cur)
	}
	return true, winnerOf(cur), false, nil
}

// Approve adds user's approval to an open confirmation, one distinct person
// at a time: a second press by the same user changes nothing (Already). The
// approval that makes Needed also moves the confirmation to stopping in the
// same write (Complete) and takes the follow-up lease, so exactly one press
// completes it, and it races Stop and Cancel like any claim. A confirmation
// no longer open returns its Winner.
func (s *Store) Approve(ctx context.Context, m Message, user string) (Approval, error) {
	if user == "" {
		return Approval{}, errors.New("state.Approve: empty user")
	}
	var sent struct {
		op        string
		approvers []string
		complete  bool
	}
	for range maxAttempts {
		cur, err := s.get(ctx, confKey(m))
		if err != nil {
			return Approval{}, err
		}
		if cur == nil {
			return Approval{}, ErrNotFound
		}
		needed := int(max(getN(cur, "needed"), 1))
		if sent.op != "" && getS(cur, "op") == sent.op { // our write landed; an SDK retry lost to it
			return Approval{Added: true, Complete: sent.complete, Approvers: sent.approvers, Needed: needed}, nil
		}
		approvers := getList(cur, "approvers")
		if st := Status(getS(cur, "status")); st != StatusOpen {
			return Approval{Approvers: approvers, Needed: needed, Winner: winnerOf(cur)}, nil
		}
		now := s.now()
		if !getSeconds(cur, "conf_expires").After(time.Unix(now.Unix(), 0)) {
			return Approval{}, ErrExpired
		}
		if slices.Contains(approvers, user) {
			return Approval{Already: true, Approvers: approvers, Needed: needed}, nil
		}
		sent.op = nonce()
		sent.approvers = append(slices.Clip(approvers), user)
		sent.complete = len(sent.approvers) >= needed
		values := item{
			":open": str(string(StatusOpen)), ":now": epoch(now), ":u": strList([]string{user}),
			":k": num(getN(cur, "napprovals")), ":k1": num(getN(cur, "napprovals") + 1), ":op": str(sent.op),
		}
		set := "approvers = list_append(approvers, :u), napprovals = :k1, op = :op"
		if sent.complete {
			set += ", #status = :to, won_action = :a, won_by = :by, won_at = :at, lease_owner = :me, lease_until = :until"
			values[":to"], values[":a"], values[":by"], values[":at"] = str(string(StatusStopping)), str(string(ActionApprove)), str(user), millis(now)
			values[":me"], values[":until"] = str(s.owner), millis(now.Add(s.leaseTTL))
		}
		_, ok, err := s.update(ctx, &dynamodb.UpdateItemInput{
			Key:                       key(confKey(m)),
			UpdateExpression:          aws.String("SET " + set),
			ConditionExpression:       aws.String("#status = :open AND napprovals = :k AND conf_expires > :now"),
			ExpressionAttributeNames:  map[string]string{"#status": "status"},
			ExpressionAttributeValues: values,
		})
		if err != nil {
			return Approval{}, err
		}
		if ok {
			return Approval{Added: true, Complete: sent.complete, Approvers: sent.approvers, Needed: needed}, nil
		}
	}
	return Approval{}, errContention
}

// Finish ends a stopping confirmation in its final status (StatusStopped or
// StatusFailed), whoever holds the lease. Only one Finish wins: the caller
// that gets true posts the final state, the others post nothing. It releases
// the deployment's lock.
func (s *Store) Finish(ctx context.Context, m Message, final Status) (bool, error) {
	if final != StatusStopped && final != StatusFailed {
		return false, fmt.Errorf("state.Finish: %q is not a final status of a stop", final)
	}
	op := nonce()
	out, ok, err := s.update(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(confKey(m)),
		UpdateExpression:          aws.String("SET #status = :to, finished_at = :at, op = :op REMOVE lease_owner, lease_until"),
		ConditionExpression:       aws.String("#status = :stopping"),
		ExpressionAttributeNames:  map[string]string{"#status": "status"},
		ExpressionAttributeValues: item{":to": str(string(final)), ":at": millis(s.now()), ":op": str(op), ":stopping": str(string(StatusStopping))},
		ReturnValues:              types.ReturnValueAllNew,
	})
	if err != nil {
		return false, err
	}
	cur := item(nil)
	if ok {
		cur = out.Attributes
	} else {
		if cur, err = s.get(ctx, confKey(m)); err != nil {
			return false, err
		}
		if cur == nil {
			return false, ErrNotFound
		}
		if getS(cur, "op") != op {
			return false, nil
		}
	}
	s.release(ctx, cur)
	return true, nil
}

// release is the best-effort cleanup after a confirmation has ended: its
// deployment's lock (if still its own) and its registry entry. A leftover is
// harmless: Begin takes over a lock whose confirmation has ended, and Orphans
// prunes the registry.
func (s *Store) release(ctx context.Context, conf item) {
	d := Deployment{Account: getS(conf, "account"), Region: getS(conf, "region"), ID: getS(conf, "deployment")}
	if _, err := s.del(ctx, lockKey(d), "#token = :token",
		map[string]string{"#token": "token"}, item{":token": str(getS(conf, "token"))}); err != nil {
		s.onCleanup("release lock "+lockKey(d), err)
	}
	m := Message{Channel: getS(conf, "channel"), TS: getS(conf, "ts")}
	if err := s.unregister(ctx, m); err != nil {
		s.onCleanup("unregister "+m.String(), err)
	}
}
