package mastodon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// PageSize is the most notifications one poll fetches (Mastodon's most).
const PageSize = 40

// Poller fetches an account's mentions from its notifications. The
// cursor is the id of the newest notification taken; each poll asks for
// the page just after it (min_id), oldest first, so a backlog larger
// than a page comes over several polls, none skipped. A first poll
// without a cursor takes the newest page.
type Poller struct {
	Client  *Client
	Account Account
	// Log notes notifications that made no message; nil discards.
	Log *slog.Logger
}

var _ channels.IgnoringPoller = (*Poller)(nil)

// Poll fetches the notifications after cursor and returns their resident
// messages and the greatest notification id seen (cursor itself when
// none came). Notifications that make no message move the cursor on all
// the same.
func (p *Poller) Poll(ctx context.Context, cursor string) ([]channels.Inbound, string, error) {
	msgs, next, _, err := p.PollCounting(ctx, cursor)
	return msgs, next, err
}

// PollCounting polls as Poll does, and counts the notifications that made
// no message by kind, for the operators' metrics.
func (p *Poller) PollCounting(ctx context.Context, cursor string) ([]channels.Inbound, string, map[string]int, error) {
	if cursor != "" && !numeric(cursor) {
		return nil, cursor, nil, fmt.Errorf("mastodon: cursor %q is not a notification id", cursor)
	}
	body, err := p.Client.Notifications(ctx, cursor, PageSize)
	if err != nil {
		var e *APIError
		if errors.As(err, &e) && (e.Status == 401 || e.Status == 403) {
			return nil, cursor, nil, fmt.Errorf("mastodon: the instance refused the access token (%w): %w", channels.ErrCredentialRefused, err)
		}
		return nil, cursor, nil, fmt.Errorf("mastodon: notifications: %w", err)
	}
	notes, raws, err := ParseNotifications(body)
	if err != nil {
		return nil, cursor, nil, err
	}
	receivedAt := time.Now().UTC()
	next := cursor
	var msgs []channels.Inbound
	var skipped []error
	ignored := map[string]int{}
	// Mastodon answers newest first: the messages go out oldest first.
	for i := len(notes) - 1; i >= 0; i-- {
		n := notes[i]
		if cursor != "" && !Less(cursor, n.ID) {
			continue // at or before the cursor: taken already
		}
		if next == "" || Less(next, n.ID) {
			next = n.ID
		}
		in, kind, err := FromNotification(n, raws[i], p.Account, receivedAt)
		switch {
		case err != nil:
			skipped = append(skipped, err)
		case in == nil:
			ignored[kind]++
		default:
			msgs = append(msgs, *in)
		}
	}
	if len(ignored) > 0 && p.Log != nil {
		p.Log.Debug("mastodon: notifications that made no message", "account", p.Account.Slug, "ignored", ignored)
	}
	if len(skipped) > 0 && p.Log != nil {
		p.Log.Warn("mastodon: unreadable notifications skipped", "account", p.Account.Slug, "err", errors.Join(skipped...))
	}
	return msgs, next, ignored, nil
}
