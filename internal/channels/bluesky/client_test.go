package bluesky_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/bluesky"
	"github.com/citizeninbox/inbox/internal/channels/bluesky/blueskyfake"
)

var (
	alice = blueskyfake.Resident{DID: "did:plc:alice", Handle: "alice.bsky.social", DisplayName: "Alice"}
	bob   = blueskyfake.Resident{DID: "did:plc:bob", Handle: "bob.bsky.social"}
)

func newClient(t *testing.T, fake *blueskyfake.Server) *bluesky.Client {
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &bluesky.Client{BaseURL: srv.URL, Handle: blueskyfake.Handle, AppPassword: blueskyfake.AppPassword}
}

func uris(msgs []channels.Inbound) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.ExternalID)
	}
	return out
}

// Polls page back to the stored position, whatever the page size, take
// ties at one indexedAt once each, and return messages oldest first.
func TestPollFromPosition(t *testing.T) {
	ctx := context.Background()
	fake := blueskyfake.New()
	p := &bluesky.Poller{Client: newClient(t, fake), Slug: "council"}
	mention := func(from blueskyfake.Resident, n int) string {
		return fake.Post(from, fmt.Sprintf("@%s bins %d", blueskyfake.Handle, n), "", time.Time{})
	}
	first := mention(alice, 1)
	fake.Post(bob, "no mention here", "", time.Time{})
	msgs, cursor, err := p.Poll(ctx, "")
	if err != nil || len(msgs) != 1 || msgs[0].ExternalID != first || msgs[0].Account != "council" {
		t.Fatalf("first poll %v %v", uris(msgs), err)
	}
	if again, next, err := p.Poll(ctx, cursor); err != nil || len(again) != 0 || next != cursor {
		t.Fatalf("a repeated poll: %v %q→%q %v", uris(again), cursor, next, err)
	}
	// 250 new ones: three pages of 100.
	var want []string
	for i := range 250 {
		want = append(want, mention(bob, i))
	}
	msgs, cursor, err = p.Poll(ctx, cursor)
	if err != nil || strings.Join(uris(msgs), ",") != strings.Join(want, ",") {
		t.Fatalf("after 250 mentions: %d messages, err %v", len(msgs), err)
	}
	// Ties: two notifications indexed at once, the second arriving after a
	// poll took the first.
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	tie1 := fake.Post(alice, "@"+blueskyfake.Handle+" tie one", "", at)
	msgs, cursor, err = p.Poll(ctx, cursor)
	if err != nil || len(msgs) != 1 || msgs[0].ExternalID != tie1 {
		t.Fatalf("tie one: %v %v", uris(msgs), err)
	}
	tie2 := fake.Post(bob, "@"+blueskyfake.Handle+" tie two", "", at)
	msgs, cursor, err = p.Poll(ctx, cursor)
	if err != nil || len(msgs) != 1 || msgs[0].ExternalID != tie2 {
		t.Fatalf("tie two: %v %v", uris(msgs), err)
	}
	if msgs, _, _ := p.Poll(ctx, cursor); len(msgs) != 0 {
		t.Errorf("after the ties: %v", uris(msgs))
	}
	// A replica with a fresh client, from the same cursor: nothing again.
	other := &bluesky.Poller{Client: newClient(t, fake), Slug: "council"}
	if msgs, _, err := other.Poll(ctx, cursor); err != nil || len(msgs) != 0 {
		t.Errorf("another client from the cursor: %v %v", uris(msgs), err)
	}
}

// An expired access token is refreshed; a refused app password is
// Unauthorised; a 429 is RateLimited until ratelimit-reset.
func TestSessionAndErrors(t *testing.T) {
	ctx := context.Background()
	fake := blueskyfake.New()
	c := newClient(t, fake)
	root := fake.Post(alice, "@"+blueskyfake.Handle+" hello", "", time.Time{})
	out := channels.Outbound{Visibility: channels.Public, Text: "Hello Alice", InReplyTo: root}
	if _, err := c.Send(ctx, out, nil); err != nil {
		t.Fatal(err)
	}
	fake.ExpireTokens()
	if _, err := c.Send(ctx, out, nil); err != nil {
		t.Fatalf("after the token expired: %v", err)
	}
	var refreshed bool
	for _, r := range fake.Requests() {
		refreshed = refreshed || (r.Method == "com.atproto.server.refreshSession" && r.Status == http.StatusOK)
	}
	if !refreshed {
		t.Error("the session was not refreshed")
	}
	fake.FailNext(1, 3)
	_, err := c.Send(ctx, out, nil)
	var se *channels.SendError
	if !errors.As(err, &se) || se.Kind != channels.RateLimited || time.Until(se.RetryAt) < time.Second {
		t.Errorf("429: %v", err)
	}
	fake.SetPassword("another")
	_, err = c.Send(ctx, out, nil)
	if !errors.As(err, &se) || se.Kind != channels.Unauthorised || !strings.Contains(se.Reason, "AuthenticationRequired") {
		t.Errorf("refused password: %#v", err)
	}
	if _, err := c.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: "hi", Recipient: alice.DID}, nil); !errors.As(err, &se) || se.Kind != channels.Unauthorised {
		t.Errorf("a DM with a refused password: %v", err)
	}
}

// A reply to a reply keeps the thread's root; a long one is a thread of
// numbered parts, each answering the one before, and a retry continues
// after the parts already posted.
func TestSendThreads(t *testing.T) {
	ctx := context.Background()
	fake := blueskyfake.New()
	c := newClient(t, fake)
	root := fake.Post(alice, "@"+blueskyfake.Handle+" pothole", "", time.Time{})
	ids, err := c.Send(ctx, channels.Outbound{Visibility: channels.Public, Text: "Reported.", InReplyTo: root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	answer := fake.Post(alice, "thanks, when?", ids[0], time.Time{})
	long := strings.Repeat("The crew will fill it this week. ", 25)
	var recorded []string
	ids, err = c.Send(ctx, channels.Outbound{Visibility: channels.Public, Text: long, InReplyTo: answer},
		func(i int, id string) error { recorded = append(recorded, id); return nil })
	if err != nil {
		t.Fatal(err)
	}
	sent := fake.Sent()[1:]
	n := len(bluesky.Split(long, bluesky.MaxPostLength))
	if n < 3 || len(sent) != n || len(ids) != n || len(recorded) != n {
		t.Fatalf("%d parts sent, %d ids", len(sent), len(ids))
	}
	for i, s := range sent {
		if s.Reply == nil || s.Reply.Root.URI != root || s.Reply.Root.CID == "" {
			t.Errorf("part %d root %+v, want %s", i+1, s.Reply, root)
		}
		wantParent := answer
		if i > 0 {
			wantParent = sent[i-1].URI
		}
		if s.Reply.Parent.URI != wantParent {
			t.Errorf("part %d answers %s, want %s", i+1, s.Reply.Parent.URI, wantParent)
		}
		if !strings.HasSuffix(s.Text, fmt.Sprintf("(%d/%d)", i+1, n)) || bluesky.Graphemes(s.Text) > 300 {
			t.Errorf("part %d: %q", i+1, s.Text)
		}
	}
	// Retried after part 1: parts 2 and 3 again, answering part 1.
	before := len(fake.Sent())
	ids, err = c.Send(ctx, channels.Outbound{Visibility: channels.Public, Text: long, InReplyTo: answer, SentParts: ids[:1]}, nil)
	if err != nil || len(ids) != n {
		t.Fatal(ids, err)
	}
	again := fake.Sent()[before:]
	if len(again) != n-1 || again[0].Reply.Parent.URI != sent[0].URI || again[0].Reply.Root.URI != root {
		t.Errorf("retry posted %+v", again)
	}
}
