package main

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/mastodon"
	"github.com/citizeninbox/inbox/internal/channels/mastodon/mastodonfake"
)

const testMastodonToken = "test-mastodon-token"

func testMastodonNetwork(t *testing.T) *mastodonfake.Simulation {
	t.Helper()
	n := mastodonfake.NewSimulation()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	n.Flags(fs)
	if err := fs.Parse([]string{"-access-token", testMastodonToken}); err != nil {
		t.Fatal(err)
	}
	if err := n.Check(); err != nil {
		t.Fatal(err)
	}
	return n
}

// mastodonInbox is the inbox's side of Mastodon: the driver's poller and
// client against the fake instance, the poller keeping its cursor as the
// poll runner does.
type mastodonInbox struct {
	t      *testing.T
	client *mastodon.Client
	poller *mastodon.Poller
	cursor string
}

func newMastodonInbox(t *testing.T, api string) *mastodonInbox {
	c := &mastodon.Client{BaseURL: api, Token: testMastodonToken, Slug: "council-mastodon"}
	return &mastodonInbox{t: t, client: c,
		poller: &mastodon.Poller{Client: c, Account: mastodon.Account{Slug: "council-mastodon", ID: mastodonfake.AccountID}}}
}

// poll polls until n messages came, and no more.
func (in *mastodonInbox) poll(n int) []channels.Inbound {
	in.t.Helper()
	var msgs []channels.Inbound
	for deadline := time.Now().Add(patience); ; {
		got, next, err := in.poller.Poll(in.t.Context(), in.cursor)
		if err != nil {
			in.t.Fatal(err)
		}
		in.cursor = next
		msgs = append(msgs, got...)
		if len(msgs) >= n {
			break
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("%d messages polled, want %d: %+v", len(msgs), n, msgs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(msgs) > n {
		in.t.Fatalf("%d messages polled, want %d: %+v", len(msgs), n, msgs)
	}
	return msgs
}

func (in *mastodonInbox) send(out channels.Outbound) string {
	in.t.Helper()
	ids, err := in.client.Send(in.t.Context(), out, nil)
	if err != nil || len(ids) != 1 {
		in.t.Fatalf("send %+v: %v %v", out, ids, err)
	}
	return ids[0]
}

// The player plays Mastodon through the fake instance: its residents'
// mentions and direct messages are what the driver's poller finds, and
// they answer the council's replies, public ones in the thread.
func TestPlayMastodon(t *testing.T) {
	n := testMastodonNetwork(t)
	var out bytes.Buffer
	hook := &webhook{network: n, http: &http.Client{Timeout: patience}, tries: 1}
	p := newPlayer(hook, &out)
	p.interval = 10 * time.Millisecond
	p.answerDelay = 10 * time.Millisecond
	p.count = 3
	api := httptest.NewServer(n.API(p.councilSent))
	t.Cleanup(api.Close)
	in := newMastodonInbox(t, api.URL)

	// The inbox's first poll is the handshake's proof.
	in.poll(0)
	if err := start(t.Context(), hook, "", 0, &out); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.play(ctx) }()

	msgs := in.poll(3)
	mention, dm, followUp := msgs[0], msgs[1], msgs[2]
	if mention.Visibility != channels.Public || !strings.HasPrefix(mention.Text, "@ExampleCouncil ") || mention.InReplyTo != "" {
		t.Errorf("mention %s", describe(mention))
	}
	if dm.Visibility != channels.Private || followUp.Visibility != channels.Private || followUp.Author.ExternalID != dm.Author.ExternalID {
		t.Errorf("direct messages %s, %s", describe(dm), describe(followUp))
	}

	// A public reply: the resident answers it in the thread.
	reply := in.send(channels.Outbound{MessageID: 1, Visibility: channels.Public, Text: "Sorry to hear that, the crew is coming back.", InReplyTo: mention.ExternalID})
	answer := in.poll(1)[0]
	if answer.Visibility != channels.Public || answer.InReplyTo != reply || answer.Author.ExternalID != mention.Author.ExternalID {
		t.Errorf("want @%s to answer status %s in public, got %s", mention.Author.Handle, reply, describe(answer))
	}
	// A direct reply: the resident answers it directly.
	in.send(channels.Outbound{MessageID: 2, Visibility: channels.Private, Text: "Thanks, we've logged it.", Recipient: dm.Author.ExternalID, InReplyTo: followUp.ExternalID})
	if got := in.poll(1)[0]; got.Visibility != channels.Private || got.Author.ExternalID != dm.Author.ExternalID {
		t.Errorf("want @%s to answer directly, got %s", dm.Author.Handle, describe(got))
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("play: %v", err)
		}
	case <-time.After(patience):
		t.Fatal("play did not stop")
	}
	printed := out.String()
	for _, line := range []string{
		"token check OK: the inbox polls the fake instance with the account's token",
		"→ mention from @" + mention.Author.Handle + ": @ExampleCouncil ",
		"→ follow-up DM from @" + dm.Author.Handle + ": ",
		"← council replied to @" + mention.Author.Handle + " in thread " + mention.ExternalID + ": @" + mention.Author.Handle + " Sorry to hear that",
		"→ reply from @" + mention.Author.Handle + " to " + reply + ": @ExampleCouncil ",
		"← council DMed @" + dm.Author.Handle + ": @" + dm.Author.Handle + " Thanks",
		"[waiting for the inbox's poll]",
	} {
		if !strings.Contains(printed, line) {
			t.Errorf("output lacks %q:\n%s", line, printed)
		}
	}
}

// Mastodon has no webhook: netsim takes no -webhook for it, and send
// points to the simulation instead.
func TestMastodonHasNoWebhook(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"-network", "mastodon", "-webhook", "http://127.0.0.1:8080/x", "-listen", "127.0.0.1:0"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "-webhook") {
		t.Errorf("-webhook for Mastodon: %v", err)
	}
	err = run(t.Context(), []string{"send", "-network", "mastodon", "-from", "sarahjenkins", "-text", "hi"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "polls Mastodon") {
		t.Errorf("send to Mastodon: %v", err)
	}
}

// netsim -network mastodon serves the fake instance and waits for the
// inbox's poll with the account's token; one with another token stops it
// with a message naming the flag.
func TestRunMastodonRefusesAnotherToken(t *testing.T) {
	var out, errOut bytes.Buffer
	addr := freeAddr(t)
	done := make(chan error, 1)
	go func() {
		done <- run(t.Context(), []string{"-network", "mastodon", "-listen", addr, "-wait", "0", "-access-token", testMastodonToken}, &out, &errOut)
	}()
	c := &mastodon.Client{BaseURL: "http://" + addr, Token: "another"}
	for deadline := time.Now().Add(patience); ; {
		_, err := c.Notifications(t.Context(), "", 1)
		if err != nil && strings.Contains(err.Error(), "401") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fake instance did not answer: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "-access-token (or MASTODON_ACCESS_TOKEN)") {
			t.Errorf("another token: %v\n%s", err, out.String())
		}
	case <-time.After(patience):
		t.Fatal("netsim went on after another token")
	}
}
