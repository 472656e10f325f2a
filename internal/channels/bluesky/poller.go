package bluesky

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// pageLimit is the most notifications one listNotifications call returns.
const pageLimit = 100

// Poller fetches an account's mentions and replies with
// listNotifications.
//
// Bluesky lists notifications newest first, and its own cursor pages
// backwards, towards older ones: it cannot say "what came since". So the
// stored cursor is a position of our own, the indexedAt time of the
// newest notification taken and the URIs of those taken with that same
// time (several may share it). A poll pages from the newest notification
// back until it reaches that position, takes what is newer than it (or
// as new and not taken), and returns it oldest first with the new
// position. The first poll, with no cursor, takes the newest page only.
type Poller struct {
	Client *Client
	Slug   string
	// Log notes notifications skipped; nil discards.
	Log *slog.Logger
}

var _ channels.Poller = (*Poller)(nil)

// Position is where a poll stopped: the newest indexedAt taken, and the
// URIs of the notifications taken with exactly that time.
type Position struct {
	At   time.Time
	URIs []string
}

// ParsePosition reads a cursor Poll returned ("" is no position).
func ParsePosition(cursor string) (Position, error) {
	if cursor == "" {
		return Position{}, nil
	}
	fields := strings.Split(cursor, " ")
	at, err := time.Parse(time.RFC3339Nano, fields[0])
	if err != nil {
		return Position{}, fmt.Errorf("bluesky: cursor %q does not start with an indexedAt time", cursor)
	}
	p := Position{At: at.UTC()}
	for _, u := range fields[1:] {
		if !strings.HasPrefix(u, "at://") {
			return Position{}, fmt.Errorf("bluesky: cursor %q holds %q, not a post uri", cursor, u)
		}
		p.URIs = append(p.URIs, u)
	}
	return p, nil
}

// String is the position as a cursor.
func (p Position) String() string {
	if p.At.IsZero() {
		return ""
	}
	return strings.Join(append([]string{p.At.UTC().Format(time.RFC3339Nano)}, p.URIs...), " ")
}

// seen says whether the notification at t with uri is at or before p.
func (p Position) seen(t time.Time, uri string) bool {
	if p.At.IsZero() {
		return false
	}
	return t.Before(p.At) || (t.Equal(p.At) && slices.Contains(p.URIs, uri))
}

// advance moves p on to include the notification at t with uri.
func (p *Position) advance(t time.Time, uri string) {
	switch {
	case t.After(p.At):
		p.At, p.URIs = t, []string{uri}
	case t.Equal(p.At) && !slices.Contains(p.URIs, uri):
		p.URIs = append(p.URIs, uri)
	}
}

type notificationsPage struct {
	Cursor        string            `json:"cursor"`
	Notifications []json.RawMessage `json:"notifications"`
}

// Poll fetches the mentions and replies after cursor, oldest first, and
// the position after them (cursor itself when none came).
func (p *Poller) Poll(ctx context.Context, cursor string) ([]channels.Inbound, string, error) {
	pos, err := ParsePosition(cursor)
	if err != nil {
		return nil, cursor, err
	}
	did, err := p.Client.DID(ctx)
	if err != nil {
		return nil, cursor, p.explain(err)
	}
	receivedAt := time.Now().UTC()
	next := Position{At: pos.At, URIs: slices.Clone(pos.URIs)}
	var msgs []channels.Inbound // newest first until reversed
	var skipped []error
	ignored := 0
	page := ""
	for {
		q := url.Values{"reasons": Reasons, "limit": {strconv.Itoa(pageLimit)}}
		if page != "" {
			q.Set("cursor", page)
		}
		var doc notificationsPage
		if _, err := p.Client.call(ctx, http.MethodGet, "app.bsky.notification.listNotifications", q, nil, &doc); err != nil {
			return nil, cursor, p.explain(err)
		}
		reached := false
		for _, raw := range doc.Notifications {
			var head struct {
				URI       string `json:"uri"`
				IndexedAt string `json:"indexedAt"`
			}
			_ = json.Unmarshal(raw, &head)
			at, err := time.Parse(time.RFC3339Nano, head.IndexedAt)
			if err != nil || head.URI == "" {
				skipped = append(skipped, fmt.Errorf("bluesky: notification %q without indexedAt", head.URI))
				continue
			}
			at = at.UTC()
			if !pos.At.IsZero() && at.Before(pos.At) {
				reached = true
				break
			}
			if pos.seen(at, head.URI) {
				continue
			}
			next.advance(at, head.URI)
			in, _, err := FromNotification(raw, did, receivedAt)
			switch {
			case errors.Is(err, errNotAMessage):
				ignored++
			case err != nil:
				skipped = append(skipped, err)
			default:
				in.Account = p.Slug
				msgs = append(msgs, *in)
			}
		}
		if reached || pos.At.IsZero() || doc.Cursor == "" || len(doc.Notifications) == 0 || doc.Cursor == page {
			break
		}
		page = doc.Cursor
	}
	if p.Log != nil && ignored > 0 {
		p.Log.Debug("bluesky: notifications that made no message", "account", p.Slug, "ignored", ignored)
	}
	if p.Log != nil && len(skipped) > 0 {
		p.Log.Warn("bluesky: unreadable notifications skipped", "account", p.Slug, "err", errors.Join(skipped...))
	}
	slices.Reverse(msgs)
	return msgs, next.String(), nil
}

// explain says what a refused poll means.
func (p *Poller) explain(err error) error {
	var e *APIError
	if errors.As(err, &e) && e.refused() {
		return fmt.Errorf("bluesky: the service refused the handle and app password of account %s (replace the app password): %w", p.Slug, err)
	}
	return fmt.Errorf("bluesky: listNotifications: %w", err)
}
