// Package channels holds what every network adapter shares: the normalised
// inbound message that ingest publishes to INBOUND, the outbound reply that
// the sender hands to an adapter, and the error an adapter returns when a
// network refuses a send. Adapters live in sub-packages, one per network; they
// know their network and nothing of the database or the bus.
package channels

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Visibility says where a message lives on the network.
type Visibility string

const (
	// Public is a post or reply visible in the thread.
	Public Visibility = "public"
	// Private is a direct message.
	Private Visibility = "private"
)

// Valid reports whether v is one of the known visibilities.
func (v Visibility) Valid() bool { return v == Public || v == Private }

// Identity is how a resident appears on one network.
type Identity struct {
	ExternalID  string `json:"external_id"`
	Handle      string `json:"handle,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
}

// Inbound is one resident message, normalised by an adapter. It is the body
// of every message on the INBOUND stream.
type Inbound struct {
	Channel string `json:"channel"`
	// Account is the slug of the channel account that received the message.
	Account string `json:"account"`
	// DedupeKey is unique per channel account for one resident message; it is
	// the JetStream message id and a unique key in the database.
	DedupeKey      string     `json:"dedupe_key"`
	ExternalID     string     `json:"external_id"`
	Visibility     Visibility `json:"visibility"`
	Text           string     `json:"text"`
	Author         Identity   `json:"author"`
	ConversationID string     `json:"conversation_id,omitempty"`
	// InReplyTo is the network id of the message this one answers, if any.
	InReplyTo string `json:"in_reply_to,omitempty"`
	// CaseReference is a case reference the resident names ("C-2026-000123"
	// in an email's subject): the message joins that case when it is the
	// resident's and not closed, unless the message it answers has one.
	CaseReference string    `json:"case_reference,omitempty"`
	SentAt        time.Time `json:"sent_at"`
	// ReceivedAt is when our webhook accepted the delivery.
	ReceivedAt time.Time `json:"received_at"`
	// Raw is the network's own event, kept with the message.
	Raw json.RawMessage `json:"raw,omitempty"`
	// Receipt, when set, makes this no resident message but the network's
	// word on one of ours (ExternalID, sent to Author): it updates that
	// message's delivery status and never makes or touches a case.
	Receipt *Receipt `json:"receipt,omitempty"`
	// Change, when set, makes this no new message but an edit or removal
	// of the resident's message ExternalID (Text is the new text): it is
	// recorded on that message, never a new one or a new case.
	Change *Change `json:"change,omitempty"`
}

// Change is a resident's edit or removal of a message they sent.
type Change struct {
	// Kind is edited or removed.
	Kind string `json:"kind"`
}

// Change kinds.
const (
	Edited  = "edited"
	Removed = "removed"
)

// Receipt is a network's delivery receipt for a message we sent.
type Receipt struct {
	// Status is sent, delivered, read or failed.
	Status string `json:"status"`
	// Error is the network's reason when it failed.
	Error string `json:"error,omitempty"`
}

// Receipt statuses, in the order a message goes through them.
var ReceiptStatuses = []string{"sent", "delivered", "read", "failed"}

// Validate reports the first missing field of an inbound message.
func (m Inbound) Validate() error {
	switch {
	case m.Channel == "":
		return errors.New("inbound: channel is empty")
	case m.Account == "":
		return errors.New("inbound: account is empty")
	case m.DedupeKey == "":
		return errors.New("inbound: dedupe_key is empty")
	case m.ExternalID == "":
		return errors.New("inbound: external_id is empty")
	case !m.Visibility.Valid():
		return fmt.Errorf("inbound: visibility %q is not public or private", m.Visibility)
	case m.Author.ExternalID == "":
		return errors.New("inbound: author.external_id is empty")
	case m.Change != nil && m.Change.Kind != Edited && m.Change.Kind != Removed:
		return fmt.Errorf("inbound: change kind %q is not edited or removed", m.Change.Kind)
	case m.Change != nil && m.Receipt != nil:
		return errors.New("inbound: a change and a receipt at once")
	case m.Receipt != nil && !slices.Contains(ReceiptStatuses, m.Receipt.Status):
		return fmt.Errorf("inbound: receipt status %q is not sent, delivered, read or failed", m.Receipt.Status)
	}
	return nil
}

// Outbound is one reply for a driver to send. It carries what every
// network needs to address a reply; what only one network needs goes in
// Extra, which only that network's driver reads.
type Outbound struct {
	MessageID  int64      `json:"message_id"`
	Channel    string     `json:"channel"`
	Account    string     `json:"account"`
	Visibility Visibility `json:"visibility"`
	Text       string     `json:"text"`
	// Conversation is the network's thread or chat the reply belongs to
	// (X conversation id, Telegram chat id, Meta thread), when it has one.
	Conversation string `json:"conversation,omitempty"`
	// InReplyTo is the network id of the message the reply answers.
	InReplyTo string `json:"in_reply_to,omitempty"`
	// Recipient is the resident's network id, for private messages.
	Recipient string `json:"recipient,omitempty"`
	// Extra is a per-network block, written and read by the driver only.
	Extra json.RawMessage `json:"extra,omitempty"`
	// SentParts holds the network ids of parts already posted by an earlier
	// attempt, so a retried thread continues where it stopped.
	SentParts []string `json:"sent_parts,omitempty"`
	// ToPublicPost makes a private reply answer the resident's public post
	// InReplyTo (see Capabilities.PrivateReplyToPublic) rather than a
	// conversation.
	ToPublicPost bool `json:"to_public_post,omitempty"`
	// Template, when set, is the approved template the reply sends, Text
	// being its rendering for the record.
	Template *TemplateReply `json:"template,omitempty"`
	// Automatic is the kind of an automatic reply ("acknowledgement",
	// "emergency"), "" for one an adviser wrote.
	Automatic string `json:"automatic,omitempty"`
}

// SendErrorKind classifies a failed send.
type SendErrorKind int

const (
	// Retryable: a 5xx, a timeout or a broken connection; try again later.
	Retryable SendErrorKind = iota + 1
	// RateLimited: the network asked us to wait until RetryAt.
	RateLimited
	// Permanent: the network refused the message (4xx); do not retry.
	Permanent
	// Unauthorised: the network refused the account's credential (expired
	// or revoked). The reply is not at fault: it waits, with every other
	// reply of the account, until the credential is replaced.
	Unauthorised
)

func (k SendErrorKind) String() string {
	switch k {
	case Retryable:
		return "retryable"
	case RateLimited:
		return "rate_limited"
	case Permanent:
		return "permanent"
	case Unauthorised:
		return "unauthorised"
	}
	return "unknown"
}

// SendError is what an adapter returns when a send did not succeed.
type SendError struct {
	Kind SendErrorKind
	// Reason is the network's own explanation, shown to advisers.
	Reason string
	// RetryAt is set for RateLimited errors.
	RetryAt time.Time
	// Ambiguous is true when the request may have reached the network but
	// its answer was lost (a timeout after the request was written). A retry
	// may then post the message twice.
	Ambiguous bool
	// Status is the HTTP status the network answered, 0 if none.
	Status int
}

func (e *SendError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("send %s (HTTP %d): %s", e.Kind, e.Status, e.Reason)
	}
	return fmt.Sprintf("send %s: %s", e.Kind, e.Reason)
}

// AsSendError unwraps err into a *SendError. Errors that are not SendErrors
// are treated as retryable.
func AsSendError(err error) *SendError {
	var se *SendError
	if errors.As(err, &se) {
		return se
	}
	return &SendError{Kind: Retryable, Reason: err.Error()}
}

// ErrNotAChallenge is what Webhook.Challenge returns for a GET that is not
// a verification request.
var ErrNotAChallenge = errors.New("not a verification request")
