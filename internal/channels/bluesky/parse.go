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
