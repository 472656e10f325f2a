package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"net/http/httptest"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels/mastodon"
	"github.com/citizeninbox/inbox/internal/channels/mastodon/mastodonfake"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/poll"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/testenv"
)

// The Mastodon driver on the whole server: the council's account, its
// instance faked.
const mdAccount = "council-mastodon"

var (
	mdAlice = mastodonfake.Resident{ID: "110000000000000001", Acct: "alice@town.example", DisplayName: "Alice Example"}
	mdBob   = mastodonfake.Resident{ID: "110000000000000002", Acct: "bob", DisplayName: "Bob"}
)

// withMastodon adds the council's account, polled every 200 ms, talking
// to fake.
func withMastodon(fake *mastodonfake.Server) harnessOption {
	return func(o *server.Options, h *harness) {
		srv := httptest.NewServer(fake)
		h.t.Cleanup(srv.Close)
		o.Drivers = drivers(h.t, mastodon.Driver{})
		s := mastodon.Settings{AccessToken: mastodonfake.Token, AccountID: mastodonfake.AccountID, PollEvery: 200 * time.Millisecond}
		file := *o.File
		file.ChannelAccounts = append(append([]config.ChannelAccount(nil), file.ChannelAccounts...), config.ChannelAccount{
			Slug: mdAccount, Channel: "mastodon", Name: "@ExampleCouncil on Mastodon", Team: "contact-centre", APIBaseURL: srv.URL, Settings: s})
		o.File = &file
		o.Poll = poll.Config{Lease: 3 * time.Second}
		h.t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if b, err := bus.Connect(ctx, testenv.NATSURL(), o.Names); err == nil {
				poll.DeleteBuckets(ctx, b)
				_ = b.Close()
			}
		})
	}
}

func (h *harness) inbound() int64 {
	return h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`)
}

// A public mention and a direct message each make a case, with the
// status's HTML as text; other notifications and repeated polls make
// nothing; public and direct replies reach the instance answering the
// resident's status with their @acct, the visibility, and an
// Idempotency-Key, a long one as a numbered thread; a restart between two
// polls neither skips nor repeats.
func TestMastodonEndToEnd(t *testing.T) {
	fake := mastodonfake.New()
	fake.SetMaxCharacters(300)
	h := newHarness(t, withMastodon(fake))

	pub := fake.MentionHTML(mdAlice, `<p><span class="h-card"><a href="https://social.example/@ExampleCouncil" class="u-url mention">@<span>ExampleCouncil</span></a></span> the bins on Elm Road<br>were missed &amp; <a href="https://photos.example/bins">here is a photo</a></p>`, "public", "")
	fake.Notify("favourite", mdBob)
	dm := fake.Mention(mdBob, "Private: my neighbour's dog is loose", "direct", "")
	pubCase, dmCase := h.waitCaseOf(pub), h.waitCaseOf(dm)
	if pubCase == dmCase {
		t.Fatal("two residents' statuses made one case")
	}
	c := h.caseDetail(pubCase)
	if m := c.Messages[0]; m.Visibility != "public" || m.Body != "@ExampleCouncil the bins on Elm Road\nwere missed & here is a photo (https://photos.example/bins)" {
		t.Errorf("public mention %q (%s)", m.Body, m.Visibility)
	}
	if c.Contact.ExternalID != mdAlice.ID || c.Contact.Handle != mdAlice.Acct {
		t.Errorf("public mention's resident %+v", c.Contact)
	}
	if m := h.caseDetail(dmCase).Messages[0]; m.Visibility != "private" {
		t.Errorf("direct message is %s", m.Visibility)
	}
	// Polls go on: nothing new.
	polls := len(fake.Requests())
	h.eventually("more polls", func() bool { return len(fake.Requests()) > polls+3 })
	if n := h.inbound(); n != 2 {
		t.Errorf("%d inbound messages after repeated polls, want 2", n)
	}

	// A public reply: in Alice's thread, @mentioning her, with the
	// visibility she used and an Idempotency-Key.
	reply := h.reply(pubCase, "public", "Thanks Alice, the crew is on its way.")
	if got := h.waitDelivery(pubCase, reply.ID); got.DeliveryStatus != "sent" || len(got.ExternalIDs) != 1 {
		t.Fatalf("public reply %+v", got)
	}
	sent := fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d statuses posted, want 1", len(sent))
	}
	if s := sent[0]; !strings.HasPrefix(s.Text, "@alice@town.example ") || s.Visibility != "public" || s.Key == "" || s.InReplyTo != pub {
		t.Errorf("public reply reached the instance as %+v", s)
	}

	// A long direct reply: a thread of numbered direct parts, each
	// answering the one before, each with its own key.
	long := strings.Repeat("We have asked the dog warden to visit your street today. ", 12)
	longReply := h.reply(dmCase, "private", long)
	got := h.waitDelivery(dmCase, longReply.ID)
	if got.DeliveryStatus != "sent" || len(got.ExternalIDs) < 3 {
		t.Fatalf("long reply %+v", got)
	}
	parts := fake.Sent()[1:]
	if len(parts) != len(got.ExternalIDs) {
		t.Fatalf("%d statuses posted for %d parts", len(parts), len(got.ExternalIDs))
	}
	keys := map[string]bool{}
	for i, s := range parts {
		if !strings.HasPrefix(s.Text, "@bob ") || s.Visibility != "direct" || utf8.RuneCountInString(s.Text) > 300 ||
			!strings.HasSuffix(s.Text, fmt.Sprintf("(%d/%d)", i+1, len(parts))) || s.Key == "" || keys[s.Key] {
			t.Errorf("part %d: %+v", i+1, s)
		}
		keys[s.Key] = true
		want := dm
		if i > 0 {
			want = parts[i-1].ID
		}
		if s.InReplyTo != want && (i != 0 || s.InReplyTo != "") {
			t.Errorf("part %d answers %q, want %q", i+1, s.InReplyTo, want)
		}
	}

	// Restart between two polls: from the committed cursor, none skipped
	// or taken twice.
	h.stop()
	before, handed := len(fake.Requests()), fake.Handed()
	later := fake.Mention(mdAlice, "also the recycling", "public", pub)
	h.start()
	if got := h.waitCaseOf(later); got != pubCase {
		t.Errorf("Alice's answer in her thread went to case %d, not %d", got, pubCase)
	}
	for _, r := range fake.Requests()[before:] {
		if r.Path == "/api/v1/notifications" && len(r.Query["min_id"]) == 0 {
			t.Errorf("after the restart a poll without the cursor: %v", r.Query)
		}
	}
	if n := h.inbound(); n != 3 {
		t.Errorf("%d inbound messages after the restart, want 3", n)
	}
	if n := fake.Handed() - handed; n != 1 {
		t.Errorf("the restarted server fetched %d notifications, want the 1 new one", n)
	}
}

// Two replicas never poll the account at once, and the second takes over
// when the first stops.
func TestMastodonPollingTwoReplicas(t *testing.T) {
	fake := mastodonfake.New()
	fake.SetPollDelay(150 * time.Millisecond)
	h := newHarness(t, withMastodon(fake))
	first := fake.Mention(mdAlice, "Fly-tipping behind the shops", "public", "")
	h.waitCaseOf(first)

	h.replica(nil)
	var ids []string
	for i := range 4 {
		ids = append(ids, fake.Mention(mdBob, fmt.Sprintf("Bins missed, week %d", i+1), "direct", ""))
		time.Sleep(300 * time.Millisecond)
	}
	for _, id := range ids {
		h.waitCaseOf(id)
	}
	time.Sleep(2 * time.Second)
	h.stop()
	later := fake.Mention(mdAlice, "Graffiti on the bridge", "public", "")
	h.eventually("the other replica polls the account", func() bool {
		return h.count(`SELECT count(*) FROM messages WHERE external_id = ?`, later) == 1
	})
	if n := fake.Overlaps(); n != 0 {
		t.Errorf("%d notifications requests while another was running", n)
	}
	if n := h.inbound(); n != 6 {
		t.Errorf("%d inbound messages, want 6", n)
	}
}

// An access token the instance refuses (401) makes the account unhealthy:
// the reply waits, neither failed nor retried.
func TestMastodonRevokedTokenMakesTheAccountUnhealthy(t *testing.T) {
	fake := mastodonfake.New()
	h := newHarness(t, withMastodon(fake))
	id := fake.Mention(mdAlice, "Pothole on Station Road", "public", "")
	caseID := h.waitCaseOf(id)
	if a := h.accountHealth(mdAccount); !a.Healthy {
		t.Fatalf("before: %+v", a)
	}
	fake.Revoke()
	reply := h.reply(caseID, "public", "Thanks, reported.")
	h.eventually("the account marked unhealthy", func() bool { return !h.accountHealth(mdAccount).Healthy })
	if a := h.accountHealth(mdAccount); !strings.Contains(a.Reason, "access token") || a.RepliesWaiting != 1 {
		t.Errorf("unhealthy account %+v, want the instance's reason and one reply waiting", a)
	}
	var status string
	h.direct.Raw(`SELECT delivery_status FROM messages WHERE id = ?`, reply.ID).Scan(&status)
	if status != "queued" {
		t.Errorf("the reply is %q while the token is refused, want queued", status)
	}
}
