package channels

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Webhook is the inbound side of a network that pushes deliveries to us.
// One webhook endpoint may serve several channel accounts: the messages
// Parse returns name their own channel and account.
type Webhook interface {
	// Challenge answers a GET verification request (X's CRC, Meta's
	// hub.challenge). It returns ErrNotAChallenge, or another error saying
	// what is wrong, for a request it will not answer.
	Challenge(r *http.Request) (contentType string, body []byte, err error)
	// Verify checks that a delivery is genuine, with the whole request
	// (URL, headers) and the raw body exactly as received, before anything
	// parses it. It returns nil only for a genuine delivery.
	Verify(r *http.Request, body []byte) error
	// Parse normalises a verified delivery into resident messages. It may
	// return messages together with an error naming events it skipped.
	Parse(body []byte, receivedAt time.Time) ([]Inbound, error)
}

// IgnoreCounter is implemented by webhooks whose deliveries carry updates
// that make no message (echoes, receipts of kinds not kept, unknown
// kinds): ParseCounting parses as Parse does and also counts those, by a
// kind from a short fixed list, for the operators' metrics.
type IgnoreCounter interface {
	ParseCounting(body []byte, receivedAt time.Time) ([]Inbound, map[string]int, error)
}

// Prechecker is implemented by webhooks that can refuse a request from its
// URL and headers alone (no signature header at all, say), so that ingest
// spends nothing reading the body of a request that cannot be genuine.
type Prechecker interface {
	Precheck(r *http.Request) error
}

// Sender sends replies for one channel account. onPart is called after
// each part of a reply that goes out in several parts, so progress is
// recorded before the next part goes out; Send returns every part's
// network id. Failures are *SendError.
type Sender interface {
	Send(ctx context.Context, out Outbound, onPart func(index int, id string) error) ([]string, error)
}

// Poller is the inbound side of a network without webhooks: it fetches
// what arrived since a cursor. The caller stores what Poll returns and
// only then commits the new cursor, and lets one replica at a time poll
// an account. A poll the network refused for the account's credential
// returns an error wrapping ErrCredentialRefused, which marks the account
// unhealthy until a poll goes through.
type Poller interface {
	Poll(ctx context.Context, cursor string) (msgs []Inbound, next string, err error)
}

// ErrCredentialRefused is wrapped by a poll's error when the network
// refused the account's credential (a revoked token, a changed password).
var ErrCredentialRefused = errors.New("the network refused the account's credential")

// IgnoringPoller is implemented by pollers whose fetches carry updates
// that make no message (a bot added to a group, a like): PollCounting
// polls as Poll does and also counts those, by a kind from a short fixed
// list, for the operators' metrics.
type IgnoringPoller interface {
	Poller
	PollCounting(ctx context.Context, cursor string) (msgs []Inbound, next string, ignored map[string]int, err error)
}

// RecordPart reports a sent part of a reply to the sender's onPart, which
// may be nil; an error from it names the part.
func RecordPart(onPart func(index int, id string) error, index int, id string) error {
	if onPart == nil {
		return nil
	}
	if err := onPart(index, id); err != nil {
		return fmt.Errorf("recording part %d (%s): %w", index+1, id, err)
	}
	return nil
}

// Answerer is implemented by webhooks whose network expects a body in the
// answer to an accepted delivery (Twilio's empty TwiML document): ingest
// answers 200 with it instead of an empty body.
type Answerer interface {
	Answer() (contentType string, body []byte)
}
