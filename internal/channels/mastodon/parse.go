package mastodon

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Account is what parsing needs to know of the council's account.
type Account struct {
	// Slug is the channel account's slug.
	Slug string
	// ID is the council's own account id: its own statuses are skipped.
	ID string
}

// Kinds of notification that make no message, as counted for operators.
const (
	// IgnoredOwn is a status the council's account wrote itself.
	IgnoredOwn = "own"
	// IgnoredUnsupported is a notification other than a mention, or a
	// mention without a status or text.
	IgnoredUnsupported = "unsupported"
)

// Notification is one entry of GET /api/v1/notifications: only the
// fields read.
type Notification struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	Account   *Profile  `json:"account"`
	Status    *Status   `json:"status"`
}

// Profile is a Mastodon account.
type Profile struct {
	ID          string `json:"id"`
	Acct        string `json:"acct"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
}

// Status is a Mastodon status (post).
type Status struct {
	ID          string    `json:"id"`
	CreatedAt   time.Time `json:"created_at"`
	InReplyToID string    `json:"in_reply_to_id"`
	Visibility  string    `json:"visibility"`
	Content     string    `json:"content"`
	SpoilerText string    `json:"spoiler_text"`
	Account     *Profile  `json:"account"`
}

// ErrNotNotifications is a body that is not a list of notifications.
var ErrNotNotifications = errors.New("mastodon: the body is not a list of notifications")

// ParseNotifications reads an answer of GET /api/v1/notifications: each
// notification, raw and decoded. An entry that is not a notification with
// a numeric id is an error.
func ParseNotifications(body []byte) ([]Notification, []json.RawMessage, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNotNotifications, err)
	}
	out := make([]Notification, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return nil, nil, fmt.Errorf("%w: entry %d: %w", ErrNotNotifications, i, err)
		}
		if !numeric(out[i].ID) {
			return nil, nil, fmt.Errorf("%w: entry %d has id %q, not a number", ErrNotNotifications, i, out[i].ID)
		}
	}
	return out, raws, nil
}

// FromNotification makes the resident's message of one notification, or
// says which kind of notification it ignored (one of the Ignored… kinds).
func FromNotification(n Notification, raw []byte, acct Account, receivedAt time.Time) (*channels.Inbound, string, error) {
	if n.Type != "mention" || n.Status == nil {
		return nil, IgnoredUnsupported, nil
	}
	st := n.Status
	from := st.Account
	if from == nil {
		from = n.Account
	}
	if from == nil || from.ID == "" || st.ID == "" {
		return nil, "", fmt.Errorf("mastodon: notification %s: the status has no id or account", n.ID)
	}
	if from.ID == acct.ID {
		return nil, IgnoredOwn, nil
	}
	text := Text(st.Content)
	if cw := strings.TrimSpace(st.SpoilerText); cw != "" {
		text = "CW: " + cw + "\n\n" + text
	}
	if strings.TrimSpace(text) == "" {
		return nil, IgnoredUnsupported, nil
	}
	vis := channels.Public
	if st.Visibility == "direct" {
		vis = channels.Private
	}
	sentAt := st.CreatedAt
	if sentAt.IsZero() {
		sentAt = n.CreatedAt
	}
	name := from.DisplayName
	if name == "" {
		name = from.Username
	}
	return &channels.Inbound{
		Channel:    Channel,
		Account:    acct.Slug,
		DedupeKey:  Channel + ":" + st.ID,
		ExternalID: st.ID,
		Visibility: vis,
		Text:       text,
		Author:     channels.Identity{ExternalID: from.ID, Handle: from.Acct, DisplayName: name},
		InReplyTo:  st.InReplyToID,
		SentAt:     sentAt.UTC(),
		ReceivedAt: receivedAt,
		Raw:        json.RawMessage(raw),
	}, "", nil
}

// numeric says whether id is a Mastodon id: a non-empty string of digits.
func numeric(id string) bool {
	if id == "" || len(id) > 40 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

// Less says whether numeric id a is before b, comparing them as numbers
// (Mastodon ids are decimal strings of any length).
func Less(a, b string) bool {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}
