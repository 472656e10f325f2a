package bluesky

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Notification is one entry of listNotifications, as far as the driver
// reads it.
type Notification struct {
	URI       string          `json:"uri"`
	CID       string          `json:"cid"`
	Author    Profile         `json:"author"`
	Reason    string          `json:"reason"`
	Record    json.RawMessage `json:"record"`
	IndexedAt string          `json:"indexedAt"`
}

// Profile is a post's author.
type Profile struct {
	DID         string `json:"did"`
	Handle      string `json:"handle"`
	DisplayName string `json:"displayName,omitempty"`
}

// Ref is a strong reference to a record: its URI and the CID of the
// version referred to.
type Ref struct {
	URI string `json:"uri"`
	CID string `json:"cid"`
}

// ReplyRef is a post's place in a thread.
type ReplyRef struct {
	Root   Ref `json:"root"`
	Parent Ref `json:"parent"`
}

// Post is an app.bsky.feed.post record.
type Post struct {
	Type      string    `json:"$type,omitempty"`
	Text      string    `json:"text"`
	CreatedAt string    `json:"createdAt"`
	Reply     *ReplyRef `json:"reply,omitempty"`
	Langs     []string  `json:"langs,omitempty"`
}

// Reasons are the notifications that make messages.
var Reasons = []string{"mention", "reply"}

// DedupeKey is a post's dedupe key.
func DedupeKey(uri string) string { return "bluesky:" + uri }

// errNotAMessage marks a notification that makes no message (a like, a
// follow, our own post).
var errNotAMessage = errors.New("not a message")

// FromNotification makes the resident message of a mention or reply
// notification raw; ownDID is the council's account, whose own posts are
// no messages. It returns errNotAMessage, wrapped with the reason, for
// a notification that makes none.
func FromNotification(raw []byte, ownDID string, receivedAt time.Time) (*channels.Inbound, Notification, error) {
	var n Notification
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, n, fmt.Errorf("bluesky: unreadable notification: %w", err)
	}
	if n.Reason != "mention" && n.Reason != "reply" {
		return nil, n, fmt.Errorf("%w: reason %q", errNotAMessage, n.Reason)
	}
	if !strings.HasPrefix(n.URI, "at://") || n.Author.DID == "" {
		return nil, n, fmt.Errorf("bluesky: notification %q without a post uri or an author", n.URI)
	}
	if ownDID != "" && n.Author.DID == ownDID {
		return nil, n, fmt.Errorf("%w: the account's own post", errNotAMessage)
	}
	var p Post
	if err := json.Unmarshal(n.Record, &p); err != nil {
		return nil, n, fmt.Errorf("bluesky: notification %s: unreadable record: %w", n.URI, err)
	}
	if p.Type != "" && p.Type != PostCollection {
		return nil, n, fmt.Errorf("%w: record of type %q", errNotAMessage, p.Type)
	}
	in := &channels.Inbound{
		Channel:        Channel,
		DedupeKey:      DedupeKey(n.URI),
		ExternalID:     n.URI,
		Visibility:     channels.Public,
		Text:           strings.ToValidUTF8(p.Text, "\uFFFD"),
		Author:         channels.Identity{ExternalID: n.Author.DID, Handle: n.Author.Handle, DisplayName: n.Author.DisplayName},
		ConversationID: n.URI,
		ReceivedAt:     receivedAt,
		Raw:            json.RawMessage(raw),
	}
	if p.Reply != nil && p.Reply.Root.URI != "" {
		in.ConversationID = p.Reply.Root.URI
		in.InReplyTo = p.Reply.Parent.URI
	}
	for _, s := range []string{p.CreatedAt, n.IndexedAt} {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			in.SentAt = t.UTC()
			break
		}
	}
	if in.SentAt.IsZero() {
		in.SentAt = receivedAt
	}
	return in, n, nil
}

// LogEntry is one event of chat.bsky.convo.getLog, as far as the driver
// reads it.
type LogEntry struct {
	Type    string          `json:"$type"`
	Rev     string          `json:"rev"`
	ConvoID string          `json:"convoId"`
	Message json.RawMessage `json:"message"`
}

// MessageDedupeKey is a direct message's dedupe key.
func MessageDedupeKey(id string) string { return "bluesky:dm:" + id }

// FromChatLog makes the resident message of a getLog event raw, a
// logCreateMessage; ownDID is the council's account, whose own messages
// are no resident's. It returns errNotAMessage, wrapped with the reason,
// for an event that makes none (a read receipt, a deleted message, a
// reaction, the account's own message). The author's handle is left for
// the poller to fill in.
func FromChatLog(raw []byte, ownDID string, receivedAt time.Time) (*channels.Inbound, error) {
	var e LogEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, fmt.Errorf("bluesky: unreadable chat log entry: %w", err)
	}
	if e.Type != LogCreateMessageType {
		return nil, fmt.Errorf("%w: chat log entry %q", errNotAMessage, e.Type)
	}
	var m MessageView
	if err := json.Unmarshal(e.Message, &m); err != nil {
		return nil, fmt.Errorf("bluesky: chat log entry %s: unreadable message: %w", e.Rev, err)
	}
	switch {
	case m.Type != "" && m.Type != MessageViewType:
		return nil, fmt.Errorf("%w: message of type %q", errNotAMessage, m.Type)
	case m.ID == "" || e.ConvoID == "" || !strings.HasPrefix(m.Sender.DID, "did:"):
		return nil, fmt.Errorf("bluesky: chat log entry %s without a message id, conversation or sender", e.Rev)
	case ownDID != "" && m.Sender.DID == ownDID:
		return nil, fmt.Errorf("%w: the account's own message", errNotAMessage)
	}
	in := &channels.Inbound{
		Channel:        Channel,
		DedupeKey:      MessageDedupeKey(m.ID),
		ExternalID:     m.ID,
		Visibility:     channels.Private,
		Text:           strings.ToValidUTF8(m.Text, "\uFFFD"),
		Author:         channels.Identity{ExternalID: m.Sender.DID},
		ConversationID: e.ConvoID,
		ReceivedAt:     receivedAt,
		Raw:            json.RawMessage(raw),
	}
	if t, err := time.Parse(time.RFC3339Nano, m.SentAt); err == nil {
		in.SentAt = t.UTC()
	} else {
		in.SentAt = receivedAt
	}
	return in, nil
}
