package fakeslack

// ChangeKind says what changed; see Change.
type ChangeKind string

// Kinds of Change.
const (
	ChangeMessagePosted  ChangeKind = "message_posted"
	ChangeMessageUpdated ChangeKind = "message_updated"
	ChangeMessageDeleted ChangeKind = "message_deleted"
	ChangeEnvelope       ChangeKind = "envelope"        // an envelope was sent on a connection
	ChangeAck            ChangeKind = "ack"             // an ack arrived
	ChangeConnectionUp   ChangeKind = "connection_up"   // a connection was sent hello
	ChangeConnectionDown ChangeKind = "connection_down" // a connection closed
	ChangePong           ChangeKind = "pong"            // a PONG arrived
	ChangeCall           ChangeKind = "call"            // a request was recorded
	ChangeWorkspace      ChangeKind = "workspace"       // users, channels or groups changed
	ChangeClosed         ChangeKind = "closed"          // the server is closing
)

// Change is one state change, small enough to fan out to every subscriber. Read the state
// itself (Message, Acks, …) for details.
type Change struct {
	Kind       ChangeKind
	Channel    string // message changes
	TS         string // message changes
	EnvelopeID string // envelope and ack
	Conn       int    // envelope, ack and connection changes: the connection index
	Method     string // call
	// Missed is true when older changes were dropped because this subscriber fell behind;
	// re-read the whole state.
	Missed bool
}

// subscriberBuffer is how many changes a subscriber may fall behind before the oldest are dropped.
const subscriberBuffer = 256

type subscriber struct {
	ch     chan Change
	missed bool
}

// Subscribe returns a channel of every later state change and a function that unsubscribes
// (and closes the channel; safe to call twice). The server never blocks on a slow subscriber:
// when its buffer is full the oldest change is dropped and the next one has Missed set.
// Close also closes the channel.
func (s *Server) Subscribe() (<-chan Change, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := &subscriber{ch: make(chan Change, subscriberBuffer)}
	if s.closed {
		close(sub.ch)
		return sub.ch, func() {}
	}
	id := s.nextSub
	s.nextSub++
	s.subs[id] = sub
	return sub.ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[id]; ok {
			delete(s.subs, id)
			close(sub.ch)
		}
	}
}

// notifyLocked wakes every waiter and fans c out to subscribers. Sends happen under s.mu, so
// a subscriber channel is never closed while being sent to.
func (s *Server) notifyLocked(c Change) {
	close(s.changed)
	s.changed = make(chan struct{})
	for _, sub := range s.subs {
		c := c
		c.Missed = sub.missed
		select {
		case sub.ch <- c:
			sub.missed = false
			continue
		default:
		}
		// Full: drop the oldest (the receiver may have taken it meanwhile) and retry once.
		select {
		case <-sub.ch:
		default:
		}
		c.Missed = true
		select {
		case sub.ch <- c:
			sub.missed = false
		default:
			sub.missed = true
		}
	}
}
