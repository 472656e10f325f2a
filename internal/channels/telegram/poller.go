package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// PollTimeout is the longest a getUpdates call waits for an update
// (Telegram's long polling); a call is shortened to end before its
// context's deadline.
const PollTimeout = 10 * time.Second

// pollLimit is the most updates one getUpdates call returns.
const pollLimit = 100

// ErrWebhookSet is getUpdates refused with 409: Telegram delivers a bot's
// updates either to its webhook or to one poller, never both.
var ErrWebhookSet = errors.New("telegram: getUpdates refused with 409 Conflict: a webhook is set for this bot, " +
	"or another program polls it; polling mode needs no webhook (call deleteWebhook, " +
	"or set the account to mode: webhook), and only this inbox may poll the bot")

// Poller fetches a bot's updates with getUpdates, for installs without a
// public address. The cursor is the offset of the next update to fetch
// (the last update_id fetched, plus one); Telegram forgets the updates
// before the offset given, so only the committed cursor is ever sent.
type Poller struct {
	Client  *Client
	Account Account
	// Log notes updates that made no message; nil discards.
	Log *slog.Logger
}

var _ channels.IgnoringPoller = (*Poller)(nil)

// Poll fetches the updates from cursor on and returns their resident
// messages and the offset after the last update (cursor itself when none
// came). Updates that make no message move the cursor on all the same.
func (p *Poller) Poll(ctx context.Context, cursor string) ([]channels.Inbound, string, error) {
	msgs, next, _, err := p.PollCounting(ctx, cursor)
	return msgs, next, err
}

// PollCounting polls as Poll does, and counts the updates that made no
// message by kind, as the webhook counts them.
func (p *Poller) PollCounting(ctx context.Context, cursor string) ([]channels.Inbound, string, map[string]int, error) {
	req := getUpdatesRequest{Limit: pollLimit, Timeout: p.timeout(ctx), AllowedUpdates: []string{"message", "edited_message"}}
	if cursor != "" {
		offset, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil {
			return nil, cursor, nil, fmt.Errorf("telegram: cursor %q is not an update offset", cursor)
		}
		req.Offset = offset
	}
	var raws []json.RawMessage
	if _, err := p.Client.call(ctx, "getUpdates", req, &raws); err != nil {
		var e *APIError
		switch {
		case errors.As(err, &e) && e.Conflict():
			return nil, cursor, nil, fmt.Errorf("%w (%s)", ErrWebhookSet, e.Description)
		case errors.As(err, &e) && e.code() == 401:
			return nil, cursor, nil, fmt.Errorf("telegram: getUpdates refused the bot token (%w): %w", channels.ErrCredentialRefused, err)
		}
		return nil, cursor, nil, fmt.Errorf("telegram: getUpdates: %w", err)
	}
	receivedAt := time.Now().UTC()
	var msgs []channels.Inbound
	var skipped []error
	ignored := map[string]int{}
	next := req.Offset
	for _, raw := range raws {
		var u update
		if err := json.Unmarshal(raw, &u); err != nil {
			skipped = append(skipped, fmt.Errorf("telegram: an unreadable update: %w", err))
			continue
		}
		if u.UpdateID <= 0 {
			skipped = append(skipped, errors.New("telegram: an update without update_id"))
			continue
		}
		next = max(next, u.UpdateID+1)
		in, kind, err := fromUpdate(u, raw, p.Account, receivedAt)
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
		p.Log.Debug("telegram: updates that made no message", "account", p.Account.Slug, "ignored", ignored)
	}
	if len(skipped) > 0 && p.Log != nil {
		p.Log.Warn("telegram: unreadable updates skipped", "account", p.Account.Slug, "err", errors.Join(skipped...))
	}
	if next == 0 {
		return msgs, cursor, ignored, nil
	}
	return msgs, strconv.FormatInt(next, 10), ignored, nil
}

type getUpdatesRequest struct {
	Offset         int64    `json:"offset,omitempty"`
	Limit          int      `json:"limit"`
	Timeout        int      `json:"timeout"`
	AllowedUpdates []string `json:"allowed_updates"`
}

// timeout is how many whole seconds getUpdates may wait: PollTimeout,
// shortened to end a second before ctx's deadline and within the HTTP
// client's timeout.
func (p *Poller) timeout(ctx context.Context) int {
	wait := PollTimeout
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d)-time.Second)
	}
	if t := p.Client.httpClient().Timeout; t > 0 {
		wait = min(wait, t-time.Second)
	}
	return max(int(wait/time.Second), 0)
}
