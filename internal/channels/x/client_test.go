package x_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
)

// residentPost is the resident's post the council answers.
const residentPost = "1876000000000000001"

// newFake starts a fake X API and a client pointed at it.
func newFake(t *testing.T) (*xfake.Server, *x.Client) {
	t.Helper()
	fake := xfake.New()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, &x.Client{BaseURL: srv.URL, BearerToken: "user-access-token", HTTP: srv.Client()}
}

// sendError asserts that err is a *channels.SendError and returns it.
func sendError(t *testing.T, err error) *channels.SendError {
	t.Helper()
	var se *channels.SendError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *channels.SendError", err, err)
	}
	return se
}

func TestPostReply(t *testing.T) {
	fake, client := newFake(t)

	// The request X receives.
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		fake.ServeHTTP(w, r)
	}))
	defer srv.Close()
	client.BaseURL = srv.URL + "/"

	id, err := client.PostReply(t.Context(), "We've logged this, thank you.", residentPost)
	if err != nil {
		t.Fatalf("PostReply: %v", err)
	}
	sent := fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("fake recorded %d sends, want 1", len(sent))
	}
	want := xfake.Sent{Kind: "post", ID: id, Text: "We've logged this, thank you.", InReplyTo: residentPost}
	if s := sent[0]; s.Kind != want.Kind || s.ID != want.ID || s.Text != want.Text || s.InReplyTo != want.InReplyTo {
		t.Errorf("sent %+v, want %+v", s, want)
	}
	for h, v := range map[string]string{
		"Authorization": "Bearer user-access-token",
		"Content-Type":  "application/json",
		"User-Agent":    "citizen-inbox",
	} {
		if got.Header.Get(h) != v {
			t.Errorf("header %s = %q, want %q", h, got.Header.Get(h), v)
		}
	}
	if got.Method != http.MethodPost || got.URL.Path != "/2/tweets" {
		t.Errorf("request %s %s, want POST /2/tweets", got.Method, got.URL.Path)
	}

	// Without a post to answer, a new post.
	if _, err := client.PostReply(t.Context(), "Bins are back to normal this week.", ""); err != nil {
		t.Fatalf("PostReply: %v", err)
	}
	if s := fake.Sent()[1]; s.InReplyTo != "" {
		t.Errorf("new post sent in reply to %q", s.InReplyTo)
	}
}

func TestSendDM(t *testing.T) {
	fake, client := newFake(t)
	var parts []string
	ids, err := client.Send(t.Context(), channels.Outbound{
		Visibility: channels.Private,
		Recipient:  "2244994945",
		Text:       "Yes, you can pay in 12 instalments. " + residentAnswer(400),
	}, func(i int, id string) error {
		parts = append(parts, id)
		return nil
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	sent := fake.Sent()
	if len(sent) != 1 || len(ids) != 1 {
		t.Fatalf("sent %d direct messages, returned %d ids; want one, not split", len(sent), len(ids))
	}
	if s := sent[0]; s.Kind != "dm" || s.Participant != "2244994945" || s.ID != ids[0] || !strings.HasPrefix(s.Text, "Yes, you can") {
		t.Errorf("sent %+v", s)
	}
	if len(parts) != 1 || parts[0] != ids[0] {
		t.Errorf("onPart saw %q, want %q", parts, ids)
	}

	// A direct message already sent is not sent again.
	again, err := client.Send(t.Context(), channels.Outbound{
		Visibility: channels.Private, Recipient: "2244994945", Text: "Yes", SentParts: ids,
	}, nil)
	if err != nil || len(again) != 1 || again[0] != ids[0] || len(fake.Sent()) != 1 {
		t.Errorf("resent a delivered message: ids %q, err %v, %d sends", again, err, len(fake.Sent()))
	}
}

func TestSendThread(t *testing.T) {
	fake, client := newFake(t)
	text := residentAnswer(600)
	type part struct {
		index int
		id    string
	}
	var recorded []part
	ids, err := client.Send(t.Context(), channels.Outbound{
		Visibility: channels.Public,
		InReplyTo:  residentPost,
		Text:       text,
	}, func(i int, id string) error {
		recorded = append(recorded, part{i, id})
		return nil
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	sent := fake.Sent()
	if len(sent) != 3 || len(ids) != 3 {
		t.Fatalf("sent %d posts, returned %d ids; want 3", len(sent), len(ids))
	}
	replyTo := residentPost
	for i, s := range sent {
		if s.ID != ids[i] {
			t.Errorf("part %d: id %s, returned %s", i+1, s.ID, ids[i])
		}
		if s.InReplyTo != replyTo {
			t.Errorf("part %d replies to %s, want %s", i+1, s.InReplyTo, replyTo)
		}
		if !strings.HasSuffix(s.Text, " ("+string(rune('1'+i))+"/3)") {
			t.Errorf("part %d is not numbered: %q", i+1, s.Text)
		}
		if recorded[i] != (part{i, s.ID}) {
			t.Errorf("onPart call %d = %+v, want {%d %s}", i, recorded[i], i, s.ID)
		}
		replyTo = s.ID
	}
}

func TestSendThreadResumes(t *testing.T) {
	fake, client := newFake(t)
	text := residentAnswer(600)
	out := channels.Outbound{Visibility: channels.Public, InReplyTo: residentPost, Text: text}

	// The second part fails; the first is kept.
	fake.FailNext(xfake.Failure{})
	fake.FailNext(xfake.Failure{Status: http.StatusServiceUnavailable})
	var recorded []string
	onPart := func(_ int, id string) error {
		recorded = append(recorded, id)
		return nil
	}
	ids, err := client.Send(t.Context(), out, onPart)
	if se := sendError(t, err); se.Kind != channels.Retryable {
		t.Fatalf("error kind %s, want retryable", se.Kind)
	}
	if len(ids) != 1 || len(recorded) != 1 || ids[0] != recorded[0] {
		t.Fatalf("after a failed second part: ids %q, recorded %q; want the first part's id", ids, recorded)
	}

	// The retry posts only the remaining parts, continuing the thread.
	out.SentParts = ids
	all, err := client.Send(t.Context(), out, onPart)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	sent := fake.Sent()
	if len(sent) != 3 {
		t.Fatalf("fake has %d posts, want 3 (1 + 2 resumed)", len(sent))
	}
	if sent[1].InReplyTo != ids[0] || sent[2].InReplyTo != sent[1].ID {
		t.Errorf("resumed parts reply to %s and %s, want %s and %s", sent[1].InReplyTo, sent[2].InReplyTo, ids[0], sent[1].ID)
	}
	if !strings.HasSuffix(sent[1].Text, "(2/3)") {
		t.Errorf("first resumed part is %q, want part 2", sent[1].Text)
	}
	if len(all) != 3 || all[0] != ids[0] || all[2] != sent[2].ID {
		t.Errorf("Send returned %q, want all three ids", all)
	}
	if len(recorded) != 3 {
		t.Errorf("onPart called %d times, want 3", len(recorded))
	}
}

func TestSendStopsWhenProgressCannotBeRecorded(t *testing.T) {
	fake, client := newFake(t)
	dbDown := errors.New("database unavailable")
	ids, err := client.Send(t.Context(), channels.Outbound{
		Visibility: channels.Public, InReplyTo: residentPost, Text: residentAnswer(600),
	}, func(int, string) error { return dbDown })
	if !errors.Is(err, dbDown) {
		t.Fatalf("error %v, want the onPart error", err)
	}
	if len(ids) != 1 || len(fake.Sent()) != 1 {
		t.Errorf("ids %q and %d sends, want exactly the first part", ids, len(fake.Sent()))
	}
}

func TestSendErrors(t *testing.T) {
	reset := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	tests := []struct {
		name          string
		failure       xfake.Failure
		kind          channels.SendErrorKind
		status        int
		reason        string
		ambiguous     bool
		retryAt       time.Time
		retryAtWithin time.Duration // when retryAt is relative to now
	}{
		{
			name:    "rate limited",
			failure: xfake.RateLimited(reset),
			kind:    channels.RateLimited, status: 429, reason: "Too Many Requests",
			retryAt: reset,
		},
		{
			name:    "rate limited without reset",
			failure: xfake.Failure{Status: 429},
			kind:    channels.RateLimited, status: 429, reason: "Too Many Requests",
			retryAt: time.Now().Add(time.Minute), retryAtWithin: 5 * time.Second,
		},
		{
			name: "rate limited with a reset in the past",
			failure: xfake.Failure{Status: 429, Header: http.Header{
				"X-Rate-Limit-Reset": {"1700000000"},
			}},
			kind: channels.RateLimited, status: 429, reason: "Too Many Requests",
			retryAt: time.Now().Add(time.Second), retryAtWithin: 2 * time.Second,
		},
		{
			name:    "server error",
			failure: xfake.Failure{Status: 500},
			kind:    channels.Retryable, status: 500, reason: "Internal Server Error", ambiguous: true,
		},
		{
			name:    "answer lost after the post was made",
			failure: xfake.Failure{DropAfterSend: true},
			kind:    channels.Retryable, status: 503, reason: "Service Unavailable", ambiguous: true,
		},
		{
			name: "duplicate refused",
			failure: xfake.Failure{Status: 403, Body: `{"detail":"You are not allowed to create a Tweet with duplicate content.",` +
				`"type":"about:blank","title":"Forbidden","status":403}`},
			kind: channels.Permanent, status: 403, reason: "You are not allowed to create a Tweet with duplicate content.",
		},
		{
			name: "error list",
			failure: xfake.Failure{Status: 403, Body: `{"errors":[{"type":"https://api.twitter.com/2/problems/not-authorized-for-resource",` +
				`"title":"Forbidden","detail":"You cannot reply to this post.","status":403}]}`},
			kind: channels.Permanent, status: 403, reason: "You cannot reply to this post.",
		},
		{
			name:    "error without detail",
			failure: xfake.Failure{Status: 404, Body: `{"errors":[{"title":"Not Found Error"}]}`},
			kind:    channels.Permanent, status: 404, reason: "Not Found Error",
		},
		{
			name:    "error that is not JSON",
			failure: xfake.Failure{Status: 400, Body: `<html>Bad Request</html>`},
			kind:    channels.Permanent, status: 400, reason: "Bad Request",
		},
		{
			name:    "success without an id",
			failure: xfake.Failure{Status: 201, Body: `{"data":{}}`},
			kind:    channels.Permanent, status: 201, reason: "unreadable answer from X", ambiguous: true,
		},
		{
			name:    "success that is not JSON",
			failure: xfake.Failure{Status: 200, Body: `OK`},
			kind:    channels.Permanent, status: 200, reason: "unreadable answer from X", ambiguous: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, client := newFake(t)
			fake.FailNext(tt.failure)
			ids, err := client.Send(t.Context(), channels.Outbound{
				Visibility: channels.Public, InReplyTo: residentPost, Text: "Thanks, we're on it.",
			}, nil)
			if len(ids) != 0 {
				t.Errorf("returned ids %q on failure", ids)
			}
			se := sendError(t, err)
			if se.Kind != tt.kind || se.Status != tt.status || se.Reason != tt.reason || se.Ambiguous != tt.ambiguous {
				t.Errorf("got {%s %d %q ambiguous=%v}, want {%s %d %q ambiguous=%v}",
					se.Kind, se.Status, se.Reason, se.Ambiguous, tt.kind, tt.status, tt.reason, tt.ambiguous)
			}
			switch {
			case tt.retryAt.IsZero():
				if !se.RetryAt.IsZero() {
					t.Errorf("RetryAt = %v, want none", se.RetryAt)
				}
			case tt.retryAtWithin == 0:
				if !se.RetryAt.Equal(tt.retryAt) {
					t.Errorf("RetryAt = %v, want %v", se.RetryAt, tt.retryAt)
				}
			default:
				if d := se.RetryAt.Sub(tt.retryAt); d < -tt.retryAtWithin || d > tt.retryAtWithin {
					t.Errorf("RetryAt = %v, want about %v", se.RetryAt, tt.retryAt)
				}
			}
		})
	}
}

func TestSendRefusedBeforeSending(t *testing.T) {
	fake, client := newFake(t)
	tests := []struct {
		name string
		out  channels.Outbound
	}{
		{"empty reply", channels.Outbound{Visibility: channels.Public, InReplyTo: residentPost, Text: "  \n "}},
		{"empty message", channels.Outbound{Visibility: channels.Private, Recipient: "2244994945", Text: ""}},
		{"no recipient", channels.Outbound{Visibility: channels.Private, Text: "Hello"}},
		{"message too long", channels.Outbound{Visibility: channels.Private, Recipient: "2244994945", Text: strings.Repeat("a", x.MaxDMLength+1)}},
		{"unknown visibility", channels.Outbound{Visibility: "internal", Text: "Hello"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.Send(t.Context(), tt.out, nil)
			if se := sendError(t, err); se.Kind != channels.Permanent || se.Reason == "" {
				t.Errorf("got %+v, want a permanent error with a reason", se)
			}
		})
	}
	if n := len(fake.Sent()); n != 0 {
		t.Errorf("fake recorded %d sends, want none", n)
	}
}

func TestSendUnauthorized(t *testing.T) {
	_, client := newFake(t)
	client.BearerToken = ""
	_, err := client.PostReply(t.Context(), "Hello", residentPost)
	if se := sendError(t, err); se.Kind != channels.Unauthorised || se.Status != http.StatusUnauthorized {
		t.Errorf("got %+v, want unauthorised 401", se)
	}
}

func TestSendNetworkErrors(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		addr := srv.URL
		srv.Close()
		client := &x.Client{BaseURL: addr, BearerToken: "t"}
		_, err := client.PostReply(t.Context(), "Hello", residentPost)
		if se := sendError(t, err); se.Kind != channels.Retryable || se.Ambiguous || se.Status != 0 {
			t.Errorf("got %+v, want retryable, not ambiguous", se)
		}
	})

	t.Run("no answer in time", func(t *testing.T) {
		fake, client := newFake(t)
		client.HTTP = &http.Client{Timeout: 100 * time.Millisecond}
		fake.FailNext(xfake.Failure{Delay: 5 * time.Second})
		_, err := client.PostReply(t.Context(), "Hello", residentPost)
		se := sendError(t, err)
		if se.Kind != channels.Retryable || !se.Ambiguous {
			t.Errorf("got %+v, want retryable and ambiguous", se)
		}
	})

	t.Run("cancelled before sending", func(t *testing.T) {
		_, client := newFake(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := client.PostReply(ctx, "Hello", residentPost)
		if se := sendError(t, err); se.Kind != channels.Retryable || se.Ambiguous {
			t.Errorf("got %+v, want retryable, not ambiguous", se)
		}
	})
}

func TestClientIsSafeForConcurrentUse(t *testing.T) {
	fake, client := newFake(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := client.PostReply(t.Context(), "Thanks", residentPost); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := make(map[string]bool)
	for _, s := range fake.Sent() {
		if seen[s.ID] {
			t.Errorf("id %s handed out twice", s.ID)
		}
		seen[s.ID] = true
	}
	if len(seen) != 20 {
		t.Errorf("fake recorded %d posts, want 20", len(seen))
	}
}
