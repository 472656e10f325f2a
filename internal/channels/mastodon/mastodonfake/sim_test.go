package mastodonfake_test

import (
	"context"
	"flag"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/mastodon"
	"github.com/citizeninbox/inbox/internal/channels/mastodon/mastodonfake"
	"github.com/citizeninbox/inbox/internal/netsim"
)

func simulation(t *testing.T, args ...string) *mastodonfake.Simulation {
	t.Helper()
	n := mastodonfake.NewSimulation()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	n.Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := n.Check(); err != nil {
		t.Fatal(err)
	}
	return n
}

// sends collects what the fake API reports, from its request goroutines.
type sends struct {
	mu  sync.Mutex
	all []netsim.Sent
}

func (s *sends) add(sent netsim.Sent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, sent)
}

func (s *sends) get() []netsim.Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]netsim.Sent(nil), s.all...)
}

var sarah = netsim.Resident{ID: "2200000000000000001", Handle: "sarahjenkins", Name: "Sarah Jenkins"}

// What residents write is kept in the fake instance, where the driver's
// poller finds it with the simulator's ids; the council's replies
// through the driver's client come back as netsim sends: public ones
// answering the resident's status, direct ones to the resident; and the
// resident's answer in the thread answers the council's status.
func TestSimulation(t *testing.T) {
	t.Setenv(mastodonfake.TokenEnv, "")
	n := simulation(t)
	if n.Name() != "mastodon" || n.Title() != "Mastodon" || n.DefaultListen() != "127.0.0.1:8085" || n.DefaultWebhook() != "" {
		t.Errorf("%s %s %s %q", n.Name(), n.Title(), n.DefaultListen(), n.DefaultWebhook())
	}
	if err := n.Deliver(n.Post("", "1800001764669600000", sarah, n.Address("Bins"), "", nil)); err == nil {
		t.Error("a delivery was kept before the fake API served")
	}
	var sent sends
	api := httptest.NewServer(n.API(sent.add))
	defer api.Close()
	client := &mastodon.Client{BaseURL: api.URL, Token: mastodonfake.DefaultToken, Slug: "council-mastodon"}
	poller := &mastodon.Poller{Client: client, Account: mastodon.Account{Slug: "council-mastodon", ID: mastodonfake.AccountID}}

	deliver := func(body []byte) {
		t.Helper()
		if err := n.Deliver(body); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	}
	cursor := ""
	poll := func(want int) []channels.Inbound {
		t.Helper()
		msgs, next, err := poller.Poll(t.Context(), cursor)
		if err != nil || len(msgs) != want {
			t.Fatalf("poll from %q: %d messages (%+v), %v; want %d", cursor, len(msgs), msgs, err, want)
		}
		cursor = next
		return msgs
	}

	deliver(n.Post("", "1800001764669600000", sarah, n.Address("Bins not collected on Elm Road & Oak Lane"), "", nil))
	deliver(n.Message("1800001764669600001", sarah, "My address is 4 Elm Road"))
	msgs := poll(2)
	post, dm := msgs[0], msgs[1]
	if post.Visibility != channels.Public || post.ExternalID != "1800001764669600000" || post.Text != "@ExampleCouncil Bins not collected on Elm Road & Oak Lane" ||
		post.Author.ExternalID != sarah.ID || post.Author.Handle != "sarahjenkins" || post.Author.DisplayName != "Sarah Jenkins" {
		t.Errorf("post %+v", post)
	}
	if dm.Visibility != channels.Private || dm.ExternalID != "1800001764669600001" || !strings.HasSuffix(dm.Text, "My address is 4 Elm Road") {
		t.Errorf("direct message %+v", dm)
	}
	poll(0)
	if err := n.Deliver(n.Message("1800001764669600001", sarah, "again")); err == nil {
		t.Error("a status id was taken twice")
	}

	ids, err := client.Send(t.Context(), channels.Outbound{MessageID: 1, Visibility: channels.Public, Text: "Sorry, the crew is coming back.", InReplyTo: post.ExternalID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Send(t.Context(), channels.Outbound{MessageID: 2, Visibility: channels.Private, Text: "Thanks.", Recipient: dm.Author.ExternalID, InReplyTo: dm.ExternalID}, nil); err != nil {
		t.Fatal(err)
	}
	got := sent.get()
	if len(got) != 2 || got[0].Visibility != channels.Public || got[0].InReplyTo != post.ExternalID || got[0].ID != ids[0] ||
		!strings.HasPrefix(got[0].Text, "@sarahjenkins ") ||
		got[1].Visibility != channels.Private || got[1].Recipient != sarah.ID || got[1].InReplyTo != "" {
		t.Fatalf("sent %+v", got)
	}
	if !mastodon.Less("1900000000000000000", ids[0]) {
		t.Errorf("the council's status id %s is not past netsim's ids", ids[0])
	}

	deliver(n.Post("", "1800001764669600002", sarah, n.Address("Thank you"), got[0].ID, nil))
	if answer := poll(1)[0]; answer.InReplyTo != ids[0] || answer.Visibility != channels.Public {
		t.Errorf("the answer %+v replies to %q, want the council's %q", answer, answer.InReplyTo, ids[0])
	}
	if err := n.Deliver(n.Post("", "1800001764669600003", sarah, n.Address("?"), "42", nil)); err == nil {
		t.Error("an answer to a status the instance does not have was kept")
	}

	other := &mastodon.Client{BaseURL: api.URL, Token: "another"}
	if _, err := other.Send(t.Context(), channels.Outbound{Visibility: channels.Private, Text: "x", Recipient: sarah.ID}, nil); channels.AsSendError(err).Kind != channels.Unauthorised {
		t.Errorf("another token: %v", err)
	}
}

// A second run's ids are past the first's, so an inbox's cursor from the
// first never hides the second's notifications.
func TestSimulationIDsGrowAcrossRuns(t *testing.T) {
	t.Setenv(mastodonfake.TokenEnv, "")
	first := simulation(t)
	api := httptest.NewServer(first.API(func(netsim.Sent) {}))
	defer api.Close()
	client := &mastodon.Client{BaseURL: api.URL, Token: mastodonfake.DefaultToken}
	poller := &mastodon.Poller{Client: client, Account: mastodon.Account{Slug: "c", ID: mastodonfake.AccountID}}
	if err := first.Deliver(first.Post("", "1800001764669600000", sarah, first.Address("one"), "", nil)); err != nil {
		t.Fatal(err)
	}
	_, cursor, err := poller.Poll(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	second := simulation(t)
	api2 := httptest.NewServer(second.API(func(netsim.Sent) {}))
	defer api2.Close()
	client.BaseURL = api2.URL
	if err := second.Deliver(second.Post("", "1800001764669600001", sarah, second.Address("two"), "", nil)); err != nil {
		t.Fatal(err)
	}
	if msgs, _, err := poller.Poll(t.Context(), cursor); err != nil || len(msgs) != 1 {
		t.Errorf("the second run's mention after the first run's cursor %s: %+v %v", cursor, msgs, err)
	}
}

func TestSimulationHandshake(t *testing.T) {
	t.Setenv(mastodonfake.TokenEnv, "the-token")
	started := func(t *testing.T) (*mastodonfake.Simulation, string) {
		n := simulation(t)
		api := httptest.NewServer(n.API(func(netsim.Sent) {}))
		t.Cleanup(api.Close)
		return n, api.URL
	}
	callWith := func(t *testing.T, url, token string) {
		c := &mastodon.Client{BaseURL: url, Token: token}
		_, _ = c.Notifications(t.Context(), "", 1)
	}

	if _, err := simulation(t).Handshake(t.Context(), nil, ""); err == nil {
		t.Error("a handshake without the fake API")
	}
	n, url := started(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := n.Handshake(ctx, nil, ""); err == nil || !strings.Contains(err.Error(), "has not polled") {
		t.Errorf("no poll: %v", err)
	}
	callWith(t, url, "the-token")
	if line, err := n.Handshake(t.Context(), nil, ""); err != nil || line != "token check OK: the inbox polls the fake instance with the account's token" {
		t.Errorf("the right token: %q %v", line, err)
	}

	n, url = started(t)
	done := make(chan error, 1)
	go func() { _, err := n.Handshake(t.Context(), nil, ""); done <- err }()
	callWith(t, url, "demo-mastodon-access-token")
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "-access-token (or MASTODON_ACCESS_TOKEN)") {
			t.Errorf("another token: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handshake went on after another token")
	}

	m := mastodonfake.NewSimulation()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	m.Flags(fs)
	if err := fs.Parse([]string{"-account-id", "ExampleCouncil"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Check(); err == nil {
		t.Error("an account id that is not a number was taken")
	}
}
