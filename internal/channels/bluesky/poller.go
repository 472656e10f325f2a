package bluesky

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// pageLimit is the most notifications one listNotifications call returns.
const pageLimit = 100

// Poller fetches an account's mentions and replies with
// listNotifications, and its direct messages with chat.bsky.convo.getLog.
//
// Bluesky lists notifications newest first, and its own cursor pages
// backwards, towards older ones: it cannot say "what came since". So the
// stored cursor is a position of our own, the indexedAt time of the
// newest notification taken and the URIs of those taken with that same
// time (several may share it). A poll pages from the newest notification
// back until it reaches that position, takes what is newer than it (or
// as new and not taken), and returns it oldest first with the new
// position. The first poll, with no cursor, takes the newest page only.
//
// The chat log is made for "what came since": its own cursor, kept in the
// same stored cursor after the notifications' position, pages forward. A
// poll without it (the first, or one from a cursor stored before direct
// messages were polled) takes the log's first page only, and goes on
// from its cursor at the next poll. When the app password
// does not allow direct messages, notifications are polled all the same:
// the poller says so once in the log, and tries the chat service again
// every ChatRetry. A 429 of the chat service leaves it alone until its
// ratelimit-reset.
type Poller struct {
	Client *Client
	Slug   string
	// Log notes notifications skipped; nil discards.
	Log *slog.Logger
	// ChatRetry is how long the poller leaves the chat service alone
	// after it refused the app password (DefaultChatRetry when zero).
	ChatRetry time.Duration

	mu       sync.Mutex
	noChat   time.Time // when the chat service last refused; zero when it takes the app password
	chatWait time.Time // when a 429 of the chat service lifts
}

// DefaultChatRetry is how long a poller leaves the chat service alone
// after it refused the app password.
const DefaultChatRetry = 10 * time.Minute

// maxLogPages caps the chat log pages one poll reads; the next poll reads
// on from where it stopped.
const maxLogPages = 20

var _ channels.Poller = (*Poller)(nil)

// Position is where a poll stopped: the newest indexedAt taken, and the
// URIs of the notifications taken with exactly that time; and the chat
// log's cursor.
type Position struct {
	At   time.Time
	URIs []string
	// Chat is getLog's cursor; empty before the first direct messages
	// were polled.
	Chat string
}

// chatField starts the chat log's cursor in a stored cursor.
const chatField = "chat="

// ParsePosition reads a cursor Poll returned ("" is no position): the
// notifications' indexedAt and URIs, then "chat=" and the chat log's
// cursor, query-escaped, when there is one. A cursor without the chat
// part (stored before direct messages were polled) is read as it was.
func ParsePosition(cursor string) (Position, error) {
	var p Position
	if cursor == "" {
		return p, nil
	}
	fields := strings.Split(cursor, " ")
	if last := fields[len(fields)-1]; strings.HasPrefix(last, chatField) {
		chat, err := url.QueryUnescape(strings.TrimPrefix(last, chatField))
		if err != nil || chat == "" {
			return Position{}, fmt.Errorf("bluesky: cursor %q holds an unreadable chat log cursor", cursor)
		}
		p.Chat = chat
		fields = fields[:len(fields)-1]
		if len(fields) == 0 {
			return p, nil
		}
	}
	at, err := time.Parse(time.RFC3339Nano, fields[0])
	if err != nil {
		return Position{}, fmt.Errorf("bluesky: cursor %q does not start with an indexedAt time", cursor)
	}
	p.At = at.UTC()
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
	var fields []string
	if !p.At.IsZero() {
		fields = append([]string{p.At.UTC().Format(time.RFC3339Nano)}, p.URIs...)
	}
	if p.Chat != "" {
		fields = append(fields, chatField+url.QueryEscape(p.Chat))
	}
	return strings.Join(fields, " ")
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
	next := Position{At: pos.At, URIs: slices.Clone(pos.URIs), Chat: pos.Chat}
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
	dms, chat := p.pollChat(ctx, did, pos.Chat, receivedAt)
	next.Chat = chat
	return append(msgs, dms...), next.String(), nil
}

type logPage struct {
	Cursor string            `json:"cursor"`
	Logs   []json.RawMessage `json:"logs"`
}

// pollChat fetches the direct messages after the chat log's cursor, in
// the log's order, and the cursor after them. A chat service that fails
// leaves the cursor where it was, and the notifications polled all the
// same.
func (p *Poller) pollChat(ctx context.Context, did, cursor string, receivedAt time.Time) ([]channels.Inbound, string) {
	if !p.chatDue() {
		return nil, cursor
	}
	var msgs []channels.Inbound
	var skipped []error
	seen := map[string]bool{}
	next := cursor
	for range maxLogPages {
		q := url.Values{}
		if next != "" {
			q.Set("cursor", next)
		}
		var doc logPage
		if _, err := p.Client.callVia(ctx, ChatProxy, http.MethodGet, "chat.bsky.convo.getLog", q, nil, &doc); err != nil {
			p.chatFailed(chatError(err))
			return nil, cursor
		}
		for _, raw := range doc.Logs {
			in, err := FromChatLog(raw, did, receivedAt)
			switch {
			case errors.Is(err, errNotAMessage):
			case err != nil:
				skipped = append(skipped, err)
			case !seen[in.DedupeKey]:
				seen[in.DedupeKey] = true
				in.Account = p.Slug
				msgs = append(msgs, *in)
			}
		}
		asked := next
		if doc.Cursor != "" {
			next = doc.Cursor
		}
		if cursor == "" || next == asked || len(doc.Logs) == 0 {
			break // from no cursor, the first page only
		}
	}
	p.chatWorks()
	if p.Log != nil && len(skipped) > 0 {
		p.Log.Warn("bluesky: unreadable chat log entries skipped", "account", p.Slug, "err", errors.Join(skipped...))
	}
	p.authors(ctx, msgs)
	return msgs, next
}

// authors fills in the handles and names of the residents who wrote
// msgs; a resident whose profile cannot be read keeps their DID only.
func (p *Poller) authors(ctx context.Context, msgs []channels.Inbound) {
	var dids []string
	for _, m := range msgs {
		if !slices.Contains(dids, m.Author.ExternalID) {
			dids = append(dids, m.Author.ExternalID)
		}
	}
	profiles := map[string]Profile{}
	for chunk := range slices.Chunk(dids, 25) {
		got, err := p.Client.Profiles(ctx, chunk)
		if err != nil {
			if p.Log != nil {
				p.Log.Warn("bluesky: residents' profiles unavailable: their direct messages carry DIDs only", "account", p.Slug, "err", err)
			}
			break
		}
		maps.Copy(profiles, got)
	}
	for i := range msgs {
		if pr, ok := profiles[msgs[i].Author.ExternalID]; ok {
			msgs[i].Author.Handle, msgs[i].Author.DisplayName = pr.Handle, pr.DisplayName
		}
	}
}

// chatDue says whether to poll the chat service: it takes the app
// password, or refused it more than ChatRetry ago.
func (p *Poller) chatDue() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	retry := p.ChatRetry
	if retry <= 0 {
		retry = DefaultChatRetry
	}
	if time.Now().Before(p.chatWait) {
		return false
	}
	return p.noChat.IsZero() || time.Since(p.noChat) >= retry
}

// chatFailed notes a failed getLog: a refused app password is logged the
// first time only.
func (p *Poller) chatFailed(err error) {
	var e *APIError
	if errors.As(err, &e) && e.Status == http.StatusTooManyRequests {
		// Leave the chat service alone until its ratelimit-reset.
		p.mu.Lock()
		p.chatWait = e.Reset
		if p.chatWait.IsZero() {
			p.chatWait = time.Now().Add(defaultRetryAfter)
		}
		p.mu.Unlock()
	}
	if !errors.Is(err, ErrNoChat) {
		if p.Log != nil {
			p.Log.Warn("bluesky: chat log unavailable, direct messages will be fetched at a later poll", "account", p.Slug, "err", err)
		}
		return
	}
	p.mu.Lock()
	first := p.noChat.IsZero()
	p.noChat = time.Now()
	p.mu.Unlock()
	if first && p.Log != nil {
		p.Log.Warn("bluesky: direct messages unavailable: the app password does not allow them; mentions and replies are still polled",
			"account", p.Slug, "err", err)
	}
}

// chatWorks notes a getLog that succeeded, saying so when the chat
// service had refused the app password until now.
func (p *Poller) chatWorks() {
	p.mu.Lock()
	was := p.noChat
	p.noChat = time.Time{}
	p.mu.Unlock()
	if !was.IsZero() && p.Log != nil {
		p.Log.Info("bluesky: direct messages available again", "account", p.Slug)
	}
}

// explain says what a refused poll means.
func (p *Poller) explain(err error) error {
	var e *APIError
	if errors.As(err, &e) && e.refused() {
		return fmt.Errorf("bluesky: the service refused the handle and app password of account %s (replace the app password; %w): %w", p.Slug, channels.ErrCredentialRefused, err)
	}
	return fmt.Errorf("bluesky: listNotifications: %w", err)
}
