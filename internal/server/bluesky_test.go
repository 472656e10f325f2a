package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels/bluesky"
	"github.com/citizeninbox/inbox/internal/channels/bluesky/blueskyfake"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/poll"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/testenv"
)

// The Bluesky driver on the whole server: the council's account, its
// service faked.
const bskyAccount = "council-bluesky"

var (
	bskyAlice = blueskyfake.Resident{DID: "did:plc:alice0000000000000000", Handle: "alice.bsky.social", DisplayName: "Alice Example"}
	bskyBob   = blueskyfake.Resident{DID: "did:plc:bob00000000000000000", Handle: "bob.bsky.social"}
)

// withBluesky adds the council's account, signing in with password, polled
// from fake.
func withBluesky(fake *blueskyfake.Server, password string) harnessOption {
	return func(o *server.Options, h *harness) {
		srv := httptest.NewServer(fake)
		h.t.Cleanup(srv.Close)
		o.Drivers = drivers(h.t, bluesky.Driver{})
		s := bluesky.Settings{Handle: blueskyfake.Handle, AppPassword: password}
		file := *o.File
		file.ChannelAccounts = append(append([]config.ChannelAccount(nil), file.ChannelAccounts...), config.ChannelAccount{
			Slug: bskyAccount, Channel: "bluesky", Name: "@" + blueskyfake.Handle, Team: "contact-centre", APIBaseURL: srv.URL, Settings: s})
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

func bskyMention(fake *blueskyfake.Server, from blueskyfake.Resident, text string) string {
	return fake.Post(from, "@"+blueskyfake.Handle+" "+text, "", time.Time{})
}

// Mentions and replies polled from notifications become public cases; a
// repeated poll makes nothing new; a restart between two polls neither
// skips nor repeats; a second replica never polls while the first does.
func TestBlueskyPolling(t *testing.T) {
	fake := blueskyfake.New()
	h := newHarness(t, withBluesky(fake, blueskyfake.AppPassword))

	first := bskyMention(fake, bskyAlice, "the bins on Elm Road were not collected")
	fake.Post(bskyBob, "lovely day in town", "", time.Time{}) // not addressed to the council
	firstCase := h.waitCaseOf(first)
	c := h.caseDetail(firstCase)
	if c.Messages[0].Visibility != "public" || c.Contact.ExternalID != bskyAlice.DID || c.Contact.Handle != bskyAlice.Handle {
		t.Errorf("case %+v", c)
	}
	// Several polls later: still one message.
	polls := func() int {
		n := 0
		for _, r := range fake.Requests() {
			if r.Method == "app.bsky.notification.listNotifications" {
				n++
			}
		}
		return n
	}
	at := polls()
	h.eventually("two more polls", func() bool { return polls() >= at+2 })
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != 1 {
		t.Errorf("%d inbound messages after repeated polls, want 1", n)
	}

	// Restart between two polls, with mentions arriving while stopped.
	h.stop()
	second := bskyMention(fake, bskyBob, "the bus shelter on Mill Lane is smashed")
	third := bskyMention(fake, bskyAlice, "also the street light outside number 4")
	h.start()
	secondCase := h.waitCaseOf(second)
	if secondCase == firstCase {
		t.Error("Bob's mention joined Alice's case")
	}
	h.waitCaseOf(third)
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != 3 {
		t.Errorf("%d inbound messages after the restart, want 3", n)
	}

	// A second replica on the same database and NATS; polls made slow so
	// that two at once would meet in the fake.
	fake.SetPollDelay(400 * time.Millisecond)
	h.replica(nil)
	var posts []string
	for i := range 4 {
		posts = append(posts, bskyMention(fake, bskyBob, fmt.Sprintf("bins missed, week %d", i+1)))
		time.Sleep(300 * time.Millisecond)
	}
	for _, p := range posts {
		h.waitCaseOf(p)
	}
	time.Sleep(3 * time.Second)
	h.stop() // the replica holding the lease hands it back, or it expires
	later := bskyMention(fake, bskyAlice, "graffiti on the bridge")
	h.eventually("the other replica polls the account", func() bool {
		return h.count(`SELECT count(*) FROM messages WHERE external_id = ?`, later) == 1
	})
	if n := fake.Overlaps(); n != 0 {
		t.Errorf("%d listNotifications calls while another was running", n)
	}
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != 8 {
		t.Errorf("%d inbound messages, want 8", n)
	}
}

// Replies answer the resident's post under the thread's root, with both
// references' cids; a resident's answer to the council joins the case; an
// over-long reply is a numbered thread under the same root; a 429 waits
// for ratelimit-reset.
func TestBlueskyReplies(t *testing.T) {
	fake := blueskyfake.New()
	h := newHarness(t, withBluesky(fake, blueskyfake.AppPassword))
	mention := bskyMention(fake, bskyAlice, "pothole on Station Road")
	caseID := h.waitCaseOf(mention)

	reply := h.reply(caseID, "public", "Thanks Alice, reported to highways.")
	if got := h.waitDelivery(caseID, reply.ID); got.DeliveryStatus != "sent" || len(got.ExternalIDs) != 1 {
		t.Fatalf("reply %+v", got)
	}
	sent := fake.Sent()
	if len(sent) != 1 || sent[0].Reply == nil || sent[0].Reply.Root.URI != mention || sent[0].Reply.Parent.URI != mention ||
		sent[0].Reply.Root.CID == "" || sent[0].Reply.Parent.CID != sent[0].Reply.Root.CID || sent[0].Text != "Thanks Alice, reported to highways." {
		t.Fatalf("reply reached Bluesky as %+v", sent)
	}

	// Alice answers the council's reply: a reply notification, same case.
	answer := fake.Post(bskyAlice, "When will it be fixed?", sent[0].URI, time.Time{})
	if got := h.waitCaseOf(answer); got != caseID {
		t.Fatalf("Alice's answer went to case %d, not %d", got, caseID)
	}

	// A long reply after a 429: a thread under the same root, each part
	// answering the one before, the first answering Alice's answer.
	fake.FailNext(1, 1)
	long := strings.Repeat("The highways team will fill the pothole this week. ", 14)
	n := len(bluesky.Split(long, bluesky.MaxPostLength))
	longReply := h.reply(caseID, "public", long)
	if got := h.waitDelivery(caseID, longReply.ID); got.DeliveryStatus != "sent" || len(got.ExternalIDs) != n || n < 3 {
		t.Fatalf("long reply %+v, want %d parts", got, n)
	}
	parts := fake.Sent()[1:]
	if len(parts) != n {
		t.Fatalf("%d parts posted, want %d", len(parts), n)
	}
	for i, p := range parts {
		parent := answer
		if i > 0 {
			parent = parts[i-1].URI
		}
		if p.Reply == nil || p.Reply.Root.URI != mention || p.Reply.Root.CID != sent[0].Reply.Root.CID || p.Reply.Parent.URI != parent ||
			p.Reply.Parent.CID == "" || bluesky.Graphemes(p.Text) > bluesky.MaxPostLength || !strings.HasSuffix(p.Text, fmt.Sprintf("(%d/%d)", i+1, n)) {
			t.Errorf("part %d: %+v %q", i+1, p.Reply, p.Text)
		}
	}
	var limited, ok time.Time
	for _, r := range fake.Requests() {
		if r.Method == "com.atproto.repo.createRecord" && r.Status == http.StatusTooManyRequests {
			limited = r.At
		} else if r.Method == "com.atproto.repo.createRecord" && r.Status == http.StatusOK && !limited.IsZero() && ok.IsZero() {
			ok = r.At
		}
	}
	if limited.IsZero() || ok.Sub(limited) < 500*time.Millisecond {
		t.Errorf("posted again %v after the 429, want after its ratelimit-reset", ok.Sub(limited))
	}
}

// A direct message becomes a private case; repeated polls make nothing
// new; the council's private reply reaches sendMessage in the resident's
// conversation, an over-long one as numbered messages of 1,000
// graphemes, after a 429's ratelimit-reset, and the council's own
// messages in the chat log make nothing; a restart between two polls
// neither repeats nor skips a message, and the resident's next one joins
// their case.
func TestBlueskyDirectMessages(t *testing.T) {
	fake := blueskyfake.New()
	h := newHarness(t, withBluesky(fake, blueskyfake.AppPassword))
	dm := fake.Message(bskyAlice, "my green bin was missed at 4 Elm Road")
	caseID := h.waitCaseOf(dm)
	c := h.caseDetail(caseID)
	if len(c.Messages) != 1 || c.Messages[0].Visibility != "private" || c.Contact.ExternalID != bskyAlice.DID || c.Contact.Handle != bskyAlice.Handle {
		t.Errorf("case %+v", c)
	}
	logPolls := func() int {
		n := 0
		for _, r := range fake.Requests() {
			if r.Method == "chat.bsky.convo.getLog" && r.Status == http.StatusOK {
				n++
			}
		}
		return n
	}
	at := logPolls()
	h.eventually("two more polls of the chat log", func() bool { return logPolls() >= at+2 })
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != 1 {
		t.Errorf("%d inbound messages after repeated polls, want 1", n)
	}

	reply := h.reply(caseID, "private", "Thanks Alice, the crew will come back tomorrow.")
	if got := h.waitDelivery(caseID, reply.ID); got.DeliveryStatus != "sent" || len(got.ExternalIDs) != 1 {
		t.Fatalf("reply %+v", got)
	}
	sent := fake.SentMessages()
	if len(sent) != 1 || sent[0].ConvoID != fake.ConvoOf(bskyAlice.DID) || sent[0].To != bskyAlice.DID ||
		sent[0].Text != "Thanks Alice, the crew will come back tomorrow." {
		t.Fatalf("the reply reached Bluesky as %+v", sent)
	}

	// An over-long reply, after a 429: numbered messages in the same
	// conversation.
	fake.FailMessagesNext(1, http.StatusTooManyRequests, "RateLimitExceeded", time.Now().Add(time.Second))
	long := strings.Repeat("The crew will collect the green bins on Elm Road tomorrow morning. ", 40)
	n := len(bluesky.SplitMessage(long))
	longReply := h.reply(caseID, "private", long)
	if got := h.waitDelivery(caseID, longReply.ID); got.DeliveryStatus != "sent" || len(got.ExternalIDs) != n || n < 3 {
		t.Fatalf("long reply %+v, want %d parts", got, n)
	}
	parts := fake.SentMessages()[1:]
	if len(parts) != n {
		t.Fatalf("%d messages sent, want %d", len(parts), n)
	}
	for i, p := range parts {
		if p.ConvoID != sent[0].ConvoID || bluesky.Graphemes(p.Text) > bluesky.MaxMessageLength || !strings.HasSuffix(p.Text, fmt.Sprintf("(%d/%d)", i+1, n)) {
			t.Errorf("part %d: %s %d graphemes", i+1, p.ConvoID, bluesky.Graphemes(p.Text))
		}
	}
	// The council's own messages are in the chat log too: no new messages.
	at = logPolls()
	h.eventually("two more polls of the chat log", func() bool { return logPolls() >= at+2 })
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != 1 {
		t.Errorf("%d inbound messages after the council's replies, want 1", n)
	}

	// Restart between two polls, with messages arriving while stopped.
	h.stop()
	followUp := fake.Message(bskyAlice, "numbers 2 and 6 too")
	other := fake.Message(bskyBob, "when is the tip open on Sunday?")
	h.start()
	if got := h.waitCaseOf(followUp); got != caseID {
		t.Errorf("Alice's second message went to case %d, not %d", got, caseID)
	}
	if got := h.waitCaseOf(other); got == caseID {
		t.Error("Bob's message joined Alice's case")
	}
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != 3 {
		t.Errorf("%d inbound messages after the restart, want 3", n)
	}
}

// An app password made without access to direct messages: mentions are
// polled all the same and the account stays healthy; the poller says so
// once, without residents' words; a private reply fails with that reason.
func TestBlueskyWithoutChatAccess(t *testing.T) {
	var logs lockedBuffer
	fake := blueskyfake.New()
	fake.SetChatAccess(false)
	h := newHarness(t, withLogWriter(&logs), withBluesky(fake, blueskyfake.AppPassword))
	fake.Message(bskyBob, "a private question about council tax")
	mention := bskyMention(fake, bskyAlice, "the bins on Elm Road were not collected")
	caseID := h.waitCaseOf(mention)
	later := bskyMention(fake, bskyAlice, "and the recycling")
	h.waitCaseOf(later)
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != 2 {
		t.Errorf("%d inbound messages, want the two mentions", n)
	}
	if got := strings.Count(logs.String(), "direct messages unavailable"); got != 1 || strings.Contains(logs.String(), "council tax") {
		t.Errorf("logged the missing chat access %d times (want 1), or the resident's words", got)
	}
	reply := h.reply(caseID, "private", "Could you send us your address?")
	if got := h.waitDelivery(caseID, reply.ID); got.DeliveryStatus != "failed" || !strings.Contains(got.FailureReason, "direct messages") {
		t.Errorf("private reply %+v, want failed for the app password's missing permission", got)
	}
	if a := h.accountHealth(bskyAccount); !a.Healthy {
		t.Errorf("account %+v, want healthy: its posts go out", a)
	}
}

// An app password the service refuses marks the account unhealthy: the
// reply waits, and the poll failure is logged.
func TestBlueskyRefusedPasswordMakesTheAccountUnhealthy(t *testing.T) {
	var logs lockedBuffer
	fake := blueskyfake.New()
	h := newHarness(t, withLogWriter(&logs), withBluesky(fake, blueskyfake.AppPassword))
	mention := bskyMention(fake, bskyBob, "fly-tipping behind the shops")
	caseID := h.waitCaseOf(mention)
	fake.SetPassword("revoked")
	reply := h.reply(caseID, "public", "Thanks, reported.")
	h.eventually("the account marked unhealthy", func() bool { return !h.accountHealth(bskyAccount).Healthy })
	if a := h.accountHealth(bskyAccount); !strings.Contains(a.Reason, "AuthenticationRequired") || a.RepliesWaiting != 1 {
		t.Errorf("unhealthy account %+v, want Bluesky's reason and one reply waiting", a)
	}
	var status string
	h.direct.Raw(`SELECT delivery_status FROM messages WHERE id = ?`, reply.ID).Scan(&status)
	if status != "queued" {
		t.Errorf("the reply is %q while the password is refused, want queued", status)
	}
	waitFor(t, "the refused poll is logged", 15*time.Second, func() bool {
		return strings.Contains(logs.String(), "refused the handle and app password")
	})
}
