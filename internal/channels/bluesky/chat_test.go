package bluesky_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/bluesky"
	"github.com/citizeninbox/inbox/internal/channels/bluesky/blueskyfake"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Direct messages come from the chat log through the chat proxy, after
// the mentions, with the chat log's cursor in the stored cursor: the
// council's own messages are skipped, a repeated poll takes nothing, and
// a long log is read page by page.
func TestPollDirectMessages(t *testing.T) {
	ctx := context.Background()
	fake := blueskyfake.New()
	p := &bluesky.Poller{Client: newClient(t, fake), Slug: "council"}
	mention := fake.Post(bob, "@"+blueskyfake.Handle+" bins", "", time.Time{})
	dm := fake.Message(alice, "my bin was missed at 4 Elm Road")
	msgs, cursor, err := p.Poll(ctx, "")
	if err != nil || len(msgs) != 2 {
		t.Fatalf("first poll %v %v", uris(msgs), err)
	}
	if msgs[0].ExternalID != mention || msgs[1].ExternalID != dm {
		t.Errorf("polled %v, want the mention then the DM", uris(msgs))
	}
	m := msgs[1]
	if m.Visibility != channels.Private || m.ConversationID != fake.ConvoOf(alice.DID) || m.Author.ExternalID != alice.DID ||
		m.Author.Handle != alice.Handle || m.Author.DisplayName != alice.DisplayName || m.DedupeKey != "bluesky:dm:"+dm || m.Account != "council" {
		t.Errorf("DM %+v", m)
	}
	pos, err := bluesky.ParsePosition(cursor)
	if err != nil || pos.Chat == "" || pos.At.IsZero() {
		t.Fatalf("cursor %q: %+v %v", cursor, pos, err)
	}
	if again, next, err := p.Poll(ctx, cursor); err != nil || len(again) != 0 || next != cursor {
		t.Fatalf("a repeated poll: %v %q→%q %v", uris(again), cursor, next, err)
	}
	for _, r := range fake.Requests() {
		if strings.HasPrefix(r.Method, "chat.") && r.Proxy != bluesky.ChatProxy {
			t.Errorf("%s with atproto-proxy %q", r.Method, r.Proxy)
		}
	}

	// The council's answer is in the log too, and skipped; 120 more are
	// three pages.
	c := newClient(t, fake)
	if _, err := c.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: "Thanks", Recipient: alice.DID}, nil); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 120 {
		want = append(want, fake.Message(bob, fmt.Sprintf("message %d", i)))
	}
	msgs, cursor, err = p.Poll(ctx, cursor)
	if err != nil || fmt.Sprint(uris(msgs)) != fmt.Sprint(want) {
		t.Fatalf("after 120 more: %d messages %v", len(msgs), err)
	}
	// A cursor stored before direct messages were polled still reads: the
	// log's first page comes again, and its dedupe keys make that safe.
	old := bluesky.Position{At: pos.At, URIs: pos.URIs}
	if msgs, _, err := p.Poll(ctx, old.String()); err != nil || len(msgs) != blueskyfake.LogPage-1 {
		t.Errorf("from an old cursor: %d messages %v", len(msgs), err)
	}
	if again, _, err := p.Poll(ctx, cursor); err != nil || len(again) != 0 {
		t.Errorf("repeated: %v %v", uris(again), err)
	}
}

// A private reply is a direct message in the resident's conversation; a
// long one is numbered messages of 1,000 graphemes at most, and a retry
// continues after the parts already sent; a 429 waits.
func TestSendDirectMessages(t *testing.T) {
	ctx := context.Background()
	fake := blueskyfake.New()
	c := newClient(t, fake)
	fake.Message(alice, "hello")
	ids, err := c.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: "Thanks Alice.", Recipient: alice.DID}, nil)
	sent := fake.SentMessages()
	if err != nil || len(ids) != 1 || len(sent) != 1 || sent[0].ConvoID != fake.ConvoOf(alice.DID) || sent[0].ID != ids[0] || sent[0].Text != "Thanks Alice." {
		t.Fatalf("%v %v, sent %+v", ids, err, sent)
	}
	long := strings.Repeat("The crew will come back for the bin tomorrow morning. ", 50)
	n := len(bluesky.SplitMessage(long))
	var recorded []string
	ids, err = c.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: long, Recipient: alice.DID},
		func(_ int, id string) error { recorded = append(recorded, id); return nil })
	parts := fake.SentMessages()[1:]
	if err != nil || n < 3 || len(ids) != n || len(parts) != n || len(recorded) != n {
		t.Fatalf("long: %d ids, %d sent, want %d: %v", len(ids), len(parts), n, err)
	}
	for i, p := range parts {
		if bluesky.Graphemes(p.Text) > bluesky.MaxMessageLength || !strings.HasSuffix(p.Text, fmt.Sprintf("(%d/%d)", i+1, n)) || p.To != alice.DID {
			t.Errorf("part %d: %d graphemes %q…", i+1, bluesky.Graphemes(p.Text), p.Text[:20])
		}
	}
	before := len(fake.SentMessages())
	if ids, err := c.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: long, Recipient: alice.DID, SentParts: ids[:1]}, nil); err != nil || len(ids) != n {
		t.Fatal(ids, err)
	}
	if again := fake.SentMessages()[before:]; len(again) != n-1 {
		t.Errorf("retry sent %d, want %d", len(again), n-1)
	}
	// A resident who never wrote privately: their conversation is opened.
	if _, err := c.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: "Hi Bob", Recipient: bob.DID}, nil); err != nil || fake.ConvoOf(bob.DID) == "" {
		t.Errorf("to Bob: %v", err)
	}
	fake.FailMessagesNext(1, http.StatusTooManyRequests, "RateLimitExceeded", time.Now().Add(3*time.Second))
	_, err = c.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: "again", Recipient: alice.DID}, nil)
	var se *channels.SendError
	if !errors.As(err, &se) || se.Kind != channels.RateLimited || time.Until(se.RetryAt) < time.Second {
		t.Errorf("429: %v", err)
	}
	if _, err := c.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: "x", Recipient: "alice"}, nil); !errors.As(err, &se) || se.Kind != channels.Permanent {
		t.Errorf("not a DID: %v", err)
	}
}

// An app password without access to direct messages: mentions are still
// polled, the poller says so once, leaves the chat service alone for a
// while, and reads it again once it takes the password; a private reply
// fails for that reason, and the account is not refused.
func TestNoChatAccess(t *testing.T) {
	ctx := context.Background()
	fake := blueskyfake.New()
	fake.SetChatAccess(false)
	var logs syncBuffer
	p := &bluesky.Poller{Client: newClient(t, fake), Slug: "council", Log: slog.New(slog.NewTextHandler(&logs, nil)), ChatRetry: 300 * time.Millisecond}
	mention := fake.Post(alice, "@"+blueskyfake.Handle+" bins", "", time.Time{})
	dm := fake.Message(bob, "a private question")
	msgs, cursor, err := p.Poll(ctx, "")
	if err != nil || len(msgs) != 1 || msgs[0].ExternalID != mention {
		t.Fatalf("poll without chat access: %v %v", uris(msgs), err)
	}
	if _, _, err := p.Poll(ctx, cursor); err != nil {
		t.Fatal(err)
	}
	getLogs := func() int {
		n := 0
		for _, r := range fake.Requests() {
			if r.Method == "chat.bsky.convo.getLog" {
				n++
			}
		}
		return n
	}
	if n := getLogs(); n != 1 {
		t.Errorf("%d getLog calls in two polls, want 1 (then left alone)", n)
	}
	if got := strings.Count(logs.String(), "direct messages unavailable"); got != 1 || strings.Contains(logs.String(), "private question") {
		t.Errorf("logged %q, want one line without the resident's words", logs.String())
	}
	var se *channels.SendError
	if _, err := p.Client.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: "hi", Recipient: bob.DID}, nil); !errors.As(err, &se) ||
		se.Kind != channels.Permanent || !strings.Contains(se.Reason, "direct messages") {
		t.Errorf("a DM without chat access: %v", err)
	}

	fake.SetChatAccess(true)
	time.Sleep(350 * time.Millisecond)
	msgs, _, err = p.Poll(ctx, cursor)
	if err != nil || len(msgs) != 1 || msgs[0].ExternalID != dm {
		t.Fatalf("once allowed: %v %v", uris(msgs), err)
	}
	if !strings.Contains(logs.String(), "direct messages available again") {
		t.Errorf("logged %q", logs.String())
	}
}

// A 429 of the chat log leaves the notifications polled and the chat
// cursor where it was, and the chat service alone until ratelimit-reset.
func TestChatRateLimited(t *testing.T) {
	ctx := context.Background()
	fake := blueskyfake.New()
	p := &bluesky.Poller{Client: newClient(t, fake), Slug: "council"}
	_, cursor, err := p.Poll(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	dm := fake.Message(alice, "hello")
	mention := fake.Post(bob, "@"+blueskyfake.Handle+" bins", "", time.Time{})
	fake.FailLogNext(1, http.StatusTooManyRequests, "RateLimitExceeded", time.Now().Add(2*time.Second))
	msgs, next, err := p.Poll(ctx, cursor)
	if err != nil || len(msgs) != 1 || msgs[0].ExternalID != mention {
		t.Fatalf("rate limited: %v %v", uris(msgs), err)
	}
	before, _ := bluesky.ParsePosition(cursor)
	if pos, _ := bluesky.ParsePosition(next); pos.Chat != before.Chat {
		t.Errorf("chat cursor %q moved to %q", before.Chat, pos.Chat)
	}
	calls := func() int {
		n := 0
		for _, r := range fake.Requests() {
			if r.Method == "chat.bsky.convo.getLog" {
				n++
			}
		}
		return n
	}
	at := calls()
	if msgs, _, err := p.Poll(ctx, next); err != nil || len(msgs) != 0 || calls() != at {
		t.Errorf("before ratelimit-reset: %v %v, %d getLog calls", uris(msgs), err, calls()-at)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		msgs, next, err = p.Poll(ctx, next)
		if err == nil && len(msgs) == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(msgs) != 1 || msgs[0].ExternalID != dm {
		t.Errorf("after ratelimit-reset: %v %v", uris(msgs), err)
	}
}
