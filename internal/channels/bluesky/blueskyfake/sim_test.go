package blueskyfake_test

import (
	"context"
	"flag"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/bluesky"
	"github.com/citizeninbox/inbox/internal/channels/bluesky/blueskyfake"
	"github.com/citizeninbox/inbox/internal/netsim"
)

func simulation(t *testing.T, args ...string) *blueskyfake.Simulation {
	t.Helper()
	n := blueskyfake.NewSimulation()
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

// Residents' posts and messages wait in the fake for the driver's poll;
// the council's replies and messages come back as netsim sends naming the
// netsim ids of the posts they answer and the cast's ids.
func TestSimulation(t *testing.T) {
	t.Setenv(blueskyfake.HandleEnv, "")
	t.Setenv(blueskyfake.AppPasswordEnv, "")
	n := simulation(t, "-signin-wait", "2s")
	if n.Name() != "bluesky" || n.Title() != "Bluesky" || n.DefaultListen() != "127.0.0.1:8086" || n.DefaultWebhook() != "" {
		t.Errorf("%s %s %s %q", n.Name(), n.Title(), n.DefaultListen(), n.DefaultWebhook())
	}
	if got := n.Address("bins"); got != "@examplecouncil.bsky.social bins" {
		t.Errorf("Address: %q", got)
	}
	var sent []netsim.Sent
	api := httptest.NewServer(n.API(func(s netsim.Sent) { sent = append(sent, s) }))
	defer api.Close()

	// Before the inbox signs in, and with a wrong password.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	if _, err := n.Handshake(ctx, nil, ""); err == nil {
		t.Error("a handshake before the inbox signed in passed")
	}
	cancel()
	c := &bluesky.Client{BaseURL: api.URL, Handle: blueskyfake.Handle, AppPassword: blueskyfake.DemoAppPassword}
	p := &bluesky.Poller{Client: c, Slug: "council-bluesky"}
	msgs, cursor, err := p.Poll(t.Context(), "")
	if err != nil || len(msgs) != 0 {
		t.Fatal(msgs, err)
	}
	if said, err := n.Handshake(t.Context(), nil, ""); err != nil || !strings.Contains(said, "examplecouncil.bsky.social") {
		t.Errorf("handshake: %q %v", said, err)
	}

	sarah := netsim.Resident{ID: "2200000000000000001", Handle: "sarahjenkins", Name: "Sarah Jenkins"}
	dave := netsim.Resident{ID: "2200000000000000002", Handle: "dave_okafor", Name: "Dave Okafor"}
	if err := n.Deliver(n.Post("", "1800001764669600000", sarah, n.Address("Bins not collected"), "", nil)); err != nil {
		t.Fatal(err)
	}
	if err := n.Deliver(n.Message("1800001764669600001", dave, "My address is 4 Elm Road")); err != nil {
		t.Fatal(err)
	}
	msgs, cursor, err = p.Poll(t.Context(), cursor)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("%+v %v", msgs, err)
	}
	post, dm := msgs[0], msgs[1]
	if post.Visibility != channels.Public || post.Author.Handle != "sarahjenkins.bsky.social" || post.Author.DisplayName != "Sarah Jenkins" ||
		!strings.HasPrefix(post.ExternalID, "at://") {
		t.Errorf("post %+v", post)
	}
	if dm.Visibility != channels.Private || dm.Author.Handle != "dave-okafor.bsky.social" || dm.Text != "My address is 4 Elm Road" {
		t.Errorf("DM %+v", dm)
	}

	ids, err := c.Send(t.Context(), channels.Outbound{Visibility: channels.Public, Text: "Sorry, the crew is coming back.", InReplyTo: post.ExternalID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(t.Context(), channels.Outbound{Visibility: channels.Private, Text: "Thanks, Dave.", Recipient: dm.Author.ExternalID}, nil); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 2 || sent[0].Visibility != channels.Public || sent[0].InReplyTo != "1800001764669600000" || sent[0].ID != ids[0] ||
		sent[1].Visibility != channels.Private || sent[1].Recipient != dave.ID || sent[1].Text != "Thanks, Dave." {
		t.Fatalf("sent %+v", sent)
	}

	// Sarah answers the council's reply in the thread.
	if err := n.Deliver(n.Post("", "1800001764669600002", sarah, n.Address("Thank you!"), sent[0].ID, nil)); err != nil {
		t.Fatal(err)
	}
	msgs, _, err = p.Poll(t.Context(), cursor)
	if err != nil || len(msgs) != 1 || msgs[0].InReplyTo != sent[0].ID || msgs[0].ConversationID != post.ExternalID {
		t.Fatalf("the answer %+v %v", msgs, err)
	}
	if _, err := c.Send(t.Context(), channels.Outbound{Visibility: channels.Public, Text: "You're welcome.", InReplyTo: msgs[0].ExternalID}, nil); err != nil {
		t.Fatal(err)
	}
	if last := sent[len(sent)-1]; last.InReplyTo != "1800001764669600002" {
		t.Errorf("the second reply answers %q", last.InReplyTo)
	}
	if err := n.Deliver(n.Post("", "1800001764669600003", sarah, "x", "1700000000000000000", nil)); err == nil {
		t.Error("an answer to an unknown post was kept")
	}
}

// The inbox signing in with another app password fails the handshake
// clearly; the flags and the environment set the credentials.
func TestSimulationWrongAppPassword(t *testing.T) {
	t.Setenv(blueskyfake.HandleEnv, "council.example.org")
	t.Setenv(blueskyfake.AppPasswordEnv, "from-the-environment")
	n := simulation(t)
	api := httptest.NewServer(n.API(func(netsim.Sent) {}))
	defer api.Close()
	c := &bluesky.Client{BaseURL: api.URL, Handle: "council.example.org", AppPassword: "another"}
	if _, _, err := (&bluesky.Poller{Client: c}).Poll(t.Context(), ""); err == nil {
		t.Fatal("signed in with another password")
	}
	if _, err := n.Handshake(t.Context(), nil, ""); err == nil || !strings.Contains(err.Error(), blueskyfake.AppPasswordEnv) {
		t.Errorf("handshake: %v", err)
	}
	if got := n.Address("hi"); got != "@council.example.org hi" {
		t.Errorf("Address: %q", got)
	}
	flagged := simulation(t, "-app-password", "flag", "-handle", "@flag.bsky.social")
	if got := flagged.Address("hi"); got != "@flag.bsky.social hi" {
		t.Errorf("Address: %q", got)
	}
}
