package telegram_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/telegram"
	"github.com/citizeninbox/inbox/internal/channels/telegram/telegramfake"
)

func fakeAPI(t *testing.T) (*telegramfake.Server, *telegram.Client) {
	t.Helper()
	fake := telegramfake.New()
	fake.SetMaxWait(200 * time.Millisecond)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, &telegram.Client{BaseURL: srv.URL, Token: telegramfake.Token, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

func TestSendReplies(t *testing.T) {
	fake, c := fakeAPI(t)
	ctx := t.Context()
	// A group reply answers the resident's message in its group.
	ids, err := c.Send(ctx, channels.Outbound{Visibility: channels.Public, Text: "Reported.", InReplyTo: "-1001234567890:8"}, nil)
	if err != nil || len(ids) != 1 || !strings.HasPrefix(ids[0], "-1001234567890:") {
		t.Fatalf("group reply: %v %v", ids, err)
	}
	// A private reply goes to the resident's chat, quoting their message.
	if _, err := c.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: "On it.", Recipient: "5100000001", InReplyTo: "5100000001:7"}, nil); err != nil {
		t.Fatal(err)
	}
	// A long one in numbered parts of 4,096 characters, each recorded.
	long := strings.Repeat("We have asked the crew to come back tomorrow morning. ", 160)
	var recorded []string
	ids, err = c.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: long, Recipient: "5100000001"},
		func(_ int, id string) error { recorded = append(recorded, id); return nil })
	if err != nil || len(ids) != 3 || len(recorded) != 3 {
		t.Fatalf("long reply: %v %v (recorded %v)", ids, err, recorded)
	}
	sent := fake.Sent()
	if len(sent) != 5 {
		t.Fatalf("%d messages sent, want 5", len(sent))
	}
	if s := sent[0]; s.ChatID != -1001234567890 || s.ReplyTo != 8 || !s.AllowWithoutReply || s.Text != "Reported." {
		t.Errorf("group reply %+v", s)
	}
	if s := sent[1]; s.ChatID != 5100000001 || s.ReplyTo != 7 {
		t.Errorf("private reply %+v", s)
	}
	for i, s := range sent[2:] {
		if utf8.RuneCountInString(s.Text) > telegram.MaxMessageLength || !strings.HasSuffix(s.Text, fmt.Sprintf("(%d/3)", i+1)) || s.ReplyTo != 0 {
			t.Errorf("part %d: %d characters, ends %q, replies to %d", i+1, utf8.RuneCountInString(s.Text), s.Text[len(s.Text)-8:], s.ReplyTo)
		}
	}
	// A retry after two parts sends only the third.
	ids, err = c.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: long, Recipient: "5100000001", SentParts: ids[:2]}, nil)
	if err != nil || len(ids) != 3 || len(fake.Sent()) != 6 {
		t.Errorf("retry: %v %v, %d sent", ids, err, len(fake.Sent()))
	}
	// Refusals before anything goes out.
	for _, out := range []channels.Outbound{
		{Visibility: channels.Public, Text: "x"},
		{Visibility: channels.Private, Text: "x", Recipient: "alice"},
		{Visibility: channels.Private, Text: " ", Recipient: "5"},
		{Visibility: channels.Private, Text: "x", Recipient: "5", Template: &channels.TemplateReply{Name: "t"}},
	} {
		if _, err := c.Send(ctx, out, nil); channels.AsSendError(err).Kind != channels.Permanent {
			t.Errorf("%+v: %v, want permanent", out, err)
		}
	}
}

func TestSendFailures(t *testing.T) {
	fake, c := fakeAPI(t)
	ctx := t.Context()
	out := channels.Outbound{Visibility: channels.Private, Text: "Hello", Recipient: "5100000001"}

	fake.FailNext(1, 17)
	before := time.Now()
	_, err := c.Send(ctx, out, nil)
	se := channels.AsSendError(err)
	if se.Kind != channels.RateLimited || se.RetryAt.Before(before.Add(17*time.Second)) || se.RetryAt.After(time.Now().Add(17*time.Second)) {
		t.Errorf("429: %+v, want rate limited for retry_after 17 s", se)
	}

	fake.Block(5100000001)
	_, err = c.Send(ctx, out, nil)
	if se := channels.AsSendError(err); se.Kind != channels.Permanent || !strings.Contains(se.Reason, "bot was blocked by the user") || se.Status != 403 {
		t.Errorf("blocked: %+v", se)
	}

	fake.FailNextWith(1, 502, "Bad Gateway", 0)
	_, err = c.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: "x", Recipient: "6"}, nil)
	if se := channels.AsSendError(err); se.Kind != channels.Retryable || !se.Ambiguous {
		t.Errorf("502: %+v", se)
	}

	fake.Revoke()
	_, err = c.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: "x", Recipient: "6"}, nil)
	if se := channels.AsSendError(err); se.Kind != channels.Unauthorised || se.Status != 401 || strings.Contains(se.Reason, telegramfake.Token) {
		t.Errorf("401: %+v", se)
	}

	down := &telegram.Client{BaseURL: "http://127.0.0.1:1", Token: telegramfake.Token}
	_, err = down.Send(ctx, out, nil)
	if se := channels.AsSendError(err); se.Kind != channels.Retryable || se.Ambiguous || strings.Contains(se.Reason, telegramfake.Token) {
		t.Errorf("no answer: %+v", se)
	}
}

func TestPoller(t *testing.T) {
	fake, c := fakeAPI(t)
	p := &telegram.Poller{Client: c, Account: bot}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	msgs, next, err := p.Poll(ctx, "")
	if err != nil || len(msgs) != 0 || next != "" {
		t.Fatalf("empty queue: %v %q %v", msgs, next, err)
	}
	first := fake.Enqueue(telegramfake.Update(0, telegramfake.Message{ID: 1, Chat: telegramfake.PrivateChat(alice), From: alice, Text: "Bins"}))
	fake.Enqueue(telegramfake.Update(0, telegramfake.Message{ID: 2, Chat: group, From: alice, Text: "not for the council"}))
	third := fake.Enqueue(telegramfake.Update(0, telegramfake.Message{ID: 3, Chat: group, From: alice, Text: "@ExampleCouncilBot lamp out"}))
	msgs, next, err = p.Poll(ctx, "")
	if err != nil || len(msgs) != 2 || next != fmt.Sprint(third+1) {
		t.Fatalf("poll: %d messages, next %q, %v", len(msgs), next, err)
	}
	if msgs[0].ExternalID != fmt.Sprintf("%d:1", alice.ID) || msgs[1].Visibility != channels.Public {
		t.Errorf("messages %+v", msgs)
	}
	// Not committed: polling from the old cursor fetches them again, and
	// the group chatter not addressed to the bot is counted as such.
	again, _, ignored, err := p.PollCounting(ctx, "")
	if len(again) != 2 || err != nil {
		t.Errorf("the uncommitted updates came back as %d messages (%v), want 2", len(again), err)
	}
	if want := map[string]int{telegram.IgnoredNotAddressed: 1}; !maps.Equal(ignored, want) {
		t.Errorf("ignored %v, want %v", ignored, want)
	}
	// From the new cursor, nothing (the fake waits, then answers empty).
	msgs, after, err := p.Poll(ctx, next)
	if err != nil || len(msgs) != 0 || after != next {
		t.Errorf("after the cursor: %v %q %v", msgs, after, err)
	}
	reqs := fake.Requests()
	if last := reqs[len(reqs)-1]; last.Offset != third+1 || last.Timeout < 1 {
		t.Errorf("getUpdates %+v, want offset %d and a long poll", last, third+1)
	}
	_ = first

	fake.SetWebhook("https://inbox.example.gov.uk/webhooks/telegram/council-telegram")
	if _, cur, err := p.Poll(ctx, next); !errors.Is(err, telegram.ErrWebhookSet) || cur != next || !strings.Contains(err.Error(), "deleteWebhook") {
		t.Errorf("with a webhook set: %v (cursor %q)", err, cur)
	}
	fake.SetWebhook("")
	fake.Revoke()
	if _, _, err := p.Poll(ctx, next); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Errorf("revoked token: %v", err)
	}
}

func TestSplit(t *testing.T) {
	for _, tt := range []struct {
		text  string
		limit int
		parts int
	}{
		{"short", 20, 1},
		{strings.Repeat("a", 20), 20, 1},
		{"One sentence here. Another sentence there. And a third one.", 30, 3},
		{strings.Repeat("x", 100), 30, 5},
		{"Para one.\n\nPara two is here.", 20, 3},
		{strings.Repeat("é🙂", 50), 16, 13},
	} {
		parts := channels.SplitNumbered(tt.text, tt.limit)
		if len(parts) != tt.parts {
			t.Errorf("%q in %d: %d parts %q, want %d", tt.text, tt.limit, len(parts), parts, tt.parts)
		}
		for _, p := range parts {
			if n := utf8.RuneCountInString(p); n > tt.limit || !utf8.ValidString(p) {
				t.Errorf("part %q: %d characters over %d", p, n, tt.limit)
			}
		}
	}
}
