package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/testenv"
)

// A second X account of the council, with its own X API.
const (
	northSlug = "council-x-north"
	northID   = "1500000000000000002"
)

var northCouncil = xfake.User{ID: northID, Handle: "ExampleCouncilNorth", Name: "Example Council North"}

// withLease makes claims on replies short, so a takeover fits in a test.
func withLease(d time.Duration) harnessOption {
	return func(o *server.Options, _ *harness) { o.Sender.Lease = d }
}

// withAccount adds an X account whose API is fake.
func withAccount(slug, userID string, fake *xfake.Server) harnessOption {
	return func(o *server.Options, h *harness) {
		api := httptest.NewServer(fake)
		h.t.Cleanup(api.Close)
		o.File.ChannelAccounts = append(o.File.ChannelAccounts, config.ChannelAccount{
			Slug: slug, Channel: "x", Name: "Council on X (" + slug + ")", Team: "contact-centre",
			APIBaseURL: api.URL,
			Settings:   x.Settings{UserID: userID, ConsumerSecret: consumerKey, AccessToken: accessToken + "-" + slug},
		})
	}
}

// replica starts another server on the harness's database (directly, not
// through any proxy) and NATS namespace, with the options changed by mod.
// It returns the server and a function that stops it, which the test's
// end also calls.
func (h *harness) replica(mod func(*server.Options)) (*server.Server, func()) {
	h.t.Helper()
	o := h.opts
	file := *o.File
	file.ChannelAccounts = slices.Clone(file.ChannelAccounts)
	o.File = &file
	o.Env.DatabaseURL = h.dbURL
	o.Listener = nil
	if mod != nil {
		mod(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, o)
	if err != nil {
		h.t.Fatalf("start replica: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				h.t.Errorf("replica shutdown: %v", err)
			}
		})
	}
	h.t.Cleanup(stop)
	return srv, stop
}

// signedTo posts a signed webhook to an account's endpoint on srv.
func (h *harness) signedTo(srv *server.Server, slug string, body []byte) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/webhooks/x/"+slug, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhookHeader, x.Sign(consumerKey, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("webhook to %s answered %d", slug, resp.StatusCode)
	}
}

// northCase opens a case on the north account through srv.
func (h *harness) northCase(srv *server.Server, from resident, text string) int64 {
	h.t.Helper()
	post := nextID()
	h.signedTo(srv, northSlug, xfake.Mention(northCouncil, post, from, text, "", time.Now()))
	return h.waitCaseOf(post)
}

// queueReply queues the adviser's reply through srv's case service.
func (h *harness) queueReply(srv *server.Server, caseID int64, visibility channels.Visibility, text string) int64 {
	h.t.Helper()
	adviser := h.count(`SELECT id FROM users WHERE email = 'adviser@example.gov.uk'`)
	m, err := srv.Cases.Reply(context.Background(), cases.Actor{UserID: adviser, Role: cases.RoleAdmin}, itoa(caseID),
		cases.ReplyInput{Text: text, Visibility: visibility})
	if err != nil {
		h.t.Fatalf("reply: %v", err)
	}
	return m.ID
}

// status is a reply's delivery status, read from the database directly.
func (h *harness) status(messageID int64) string {
	h.t.Helper()
	var s string
	if err := h.direct.Raw(`SELECT delivery_status FROM messages WHERE id = ?`, messageID).Scan(&s).Error; err != nil {
		h.t.Fatal(err)
	}
	return s
}

// waitSent waits until every reply is sent, failing at once if one fails.
func (h *harness) waitSent(messageIDs ...int64) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("replies %v are sent", messageIDs), func() bool {
		for _, id := range messageIDs {
			switch st := h.status(id); st {
			case "failed":
				h.t.Fatalf("reply %d failed", id)
			case "sent":
			default:
				return false
			}
		}
		return true
	})
}

// externalIDs is what the database recorded of a reply's posts.
func (h *harness) externalIDs(messageID int64) []string {
	h.t.Helper()
	var ids []string
	if err := h.direct.Raw(`SELECT unnest(external_ids) FROM messages WHERE id = ?`, messageID).Scan(&ids).Error; err != nil {
		h.t.Fatal(err)
	}
	return ids
}

// checkThread checks that X holds the reply's thread once: n parts, each
// answering the one before, the first answering post, all recorded.
func (h *harness) checkThread(messageID int64, post, text string) {
	h.t.Helper()
	n := len(x.SplitThread(text, x.MaxPostWeight))
	parts := h.fake.Sent()
	if len(parts) != n {
		h.t.Fatalf("X holds %d posts, want the thread's %d parts once each: %+v", len(parts), n, parts)
	}
	for i, p := range parts {
		want := post
		if i > 0 {
			want = parts[i-1].ID
		}
		if p.InReplyTo != want || !strings.HasSuffix(p.Text, fmt.Sprintf("(%d/%d)", i+1, n)) {
			h.t.Errorf("post %d: %q in reply to %s, want part %d/%d in reply to %s", i+1, p.Text, p.InReplyTo, i+1, n, want)
		}
	}
	if got := h.externalIDs(messageID); len(got) != n || got[0] != parts[0].ID || got[n-1] != parts[n-1].ID {
		h.t.Errorf("the reply records posts %v, want the %d on X", got, n)
	}
}

var threadText = strings.TrimSpace(strings.Repeat("Garden waste, grass cuttings, leaves and small branches go in the green bin. ", 10))

// A replica stuck on a slow part, cut off from the database so it cannot
// renew its claim, gives the reply up; the other replica finishes the
// thread from the parts recorded, and no part is posted twice.
func TestReplyWhoseSenderLostItsLeaseIsFinishedByAnotherReplica(t *testing.T) {
	proxy := testenv.NewProxy(t, testenv.DatabaseAddr())
	h := newHarness(t, withDatabaseProxy(proxy), withLease(2*time.Second))
	post, caseID := h.mentionCase(alice, "@ExampleCouncil what goes in the green bin?")
	if n := len(x.SplitThread(threadText, x.MaxPostWeight)); n < 3 {
		t.Fatalf("the reply makes %d parts, want at least 3", n)
	}

	// Replica A posts part 1; X stalls on part 2, and while A waits for it
	// A loses the database.
	// (Part 1 waits for the API's answer, which needs the database.)
	first, stall := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stall) })
	h.fake.FailNext(xfake.Failure{Stall: first})
	h.fake.FailNext(xfake.Failure{Stall: stall})
	var requests atomic.Int32
	h.fake.OnRequest(func(xfake.Request) {
		if requests.Add(1) == 2 {
			proxy.Block()
		}
	})
	m := h.reply(caseID, "public", threadText)
	close(first)
	h.eventually("replica A abandons the stalled part as its claim runs out", func() bool {
		return requests.Load() >= 2 && h.fake.InFlight() == 0
	})
	if got := len(h.fake.Sent()); got != 1 {
		t.Fatalf("X accepted %d posts before the takeover, want part 1 only", got)
	}

	// Replica B, on the same database and NATS, takes the reply over.
	h.replica(nil)
	h.waitSent(m.ID)
	if got := metric(t, h, `inbox_outbound_total{channel="x",result="abandoned"}`); got != "1" {
		t.Errorf("replica A counted %q abandoned sends, want 1", got)
	}
	proxy.Unblock()
	h.stop() // replica A finishes whatever it still had in hand

	if st := h.status(m.ID); st != "sent" {
		t.Fatalf("after replica A stopped the reply is %q, want sent", st)
	}
	h.checkThread(m.ID, post, threadText)
	if got := h.count(`SELECT count(*) FROM cases c JOIN messages m ON m.case_id = c.id
		WHERE m.id = ? AND c.first_response_at = m.sent_at`, m.ID); got != 1 {
		t.Errorf("the case's first response is not when the reply was sent")
	}
}

// A part X accepted but the database could not take yet is recorded before
// anything else happens: no further part goes out meanwhile, and the reply
// stays with its sender even past its lease, so the other replica never
// posts the part again.
func TestSentPartIsRecordedBeforeAnythingElse(t *testing.T) {
	proxy := testenv.NewProxy(t, testenv.DatabaseAddr())
	h := newHarness(t, withDatabaseProxy(proxy), withLease(2*time.Second))
	post, caseID := h.mentionCase(alice, "@ExampleCouncil what goes in the green bin?")

	// X accepts part 1; replica A loses the database before it can record
	// it. (Part 1 waits for the API's answer, which needs the database.)
	first := make(chan struct{})
	h.fake.FailNext(xfake.Failure{Stall: first})
	var once sync.Once
	h.fake.OnSent(func(xfake.Sent) { once.Do(proxy.Block) })
	m := h.reply(caseID, "public", threadText)
	close(first)
	h.eventually("part 1 is posted", func() bool { return len(h.fake.Sent()) > 0 })
	h.replica(nil) // a replica that could take the reply over

	// Well past the lease on the database's clock, and past JetStream's ack
	// wait: a reply A had let go would be the other replica's by now.
	h.eventually("replica A's lease has long run out, or another part went out", func() bool {
		return len(h.fake.Sent()) > 1 ||
			h.count(`SELECT count(*) FROM messages WHERE id = ? AND sending_until < now() - interval '3 seconds'`, m.ID) == 1
	})
	if got := len(h.fake.Sent()); got != 1 {
		t.Fatalf("while part 1 was not recorded X received %d posts, want part 1 only", got)
	}
	if got := metric(t, h, `inbox_outbound_total{channel="x",result="record_retried"}`); got == "" {
		t.Errorf("replica A counted no retried record")
	}

	proxy.Unblock()
	h.waitSent(m.ID)
	h.checkThread(m.ID, post, threadText)
}

// Each channel account has its own sender: replies on one account go out
// while another account's network hangs.
func TestSlowAccountDoesNotHoldUpAnother(t *testing.T) {
	north := xfake.New()
	h := newHarness(t, withAccount(northSlug, northID, north))
	northCase := h.northCase(h.srv, bob, "@ExampleCouncilNorth the bus shelter glass is smashed")
	_, caseID := h.mentionCase(alice, "@ExampleCouncil is the tip open on Sunday?")

	stall := make(chan struct{})
	var closeStall sync.Once
	release := func() { closeStall.Do(func() { close(stall) }) }
	t.Cleanup(release)
	north.FailNext(xfake.Failure{Stall: stall})
	slow := h.reply(northCase, "public", "Thanks Bob, we will make it safe today.")
	h.eventually("the north account's reply reaches its X", func() bool { return north.InFlight() == 1 })

	fast := h.reply(caseID, "public", "Yes, 9am to 4pm.")
	if got := h.waitDelivery(caseID, fast.ID); got.DeliveryStatus != "sent" {
		t.Fatalf("the other account's reply is %q: %s", got.DeliveryStatus, got.FailureReason)
	}
	if north.InFlight() != 1 {
		t.Fatalf("the north account's reply is no longer in flight: the other reply waited for it")
	}
	release()
	if got := h.waitDelivery(northCase, slow.ID); got.DeliveryStatus != "sent" {
		t.Fatalf("the slow account's reply is %q: %s", got.DeliveryStatus, got.FailureReason)
	}
	if got := len(north.Sent()); got != 1 {
		t.Errorf("the north account's X holds %d posts, want 1", got)
	}
}

// A 429 one replica gets holds every replica back until X's reset.
func TestRateLimitMetByOneReplicaHoldsBackTheOther(t *testing.T) {
	h := newHarness(t)
	h.replica(nil)
	_, caseID := h.dmCase(bob, "When is my bin day?")

	reset := time.Now().Add(4 * time.Second).Truncate(time.Second)
	h.fake.SetRateLimit(0, reset)
	first := h.reply(caseID, "private", "Your bin day is Thursday.")

	limits := h.rateLimits()
	h.eventually("the rate limit is shared between replicas", func() bool {
		_, err := limits.Get(context.Background(), accountSlug)
		return err == nil
	})
	if reqs := h.fake.Requests(); len(reqs) != 1 || reqs[0].Status != http.StatusTooManyRequests {
		t.Fatalf("X's requests before the reset %+v, want one answered 429", reqs)
	}

	ids := []int64{first.ID}
	for i := range 8 {
		ids = append(ids, h.reply(caseID, "private", fmt.Sprintf("And one more thing, number %d.", i+1)).ID)
	}
	h.waitSent(ids...)
	reqs := h.fake.Requests()
	for _, r := range reqs[1:] {
		if r.At.Before(reset) {
			t.Errorf("a request reached X %v before the reset", reset.Sub(r.At))
		}
	}
	if got := len(h.fake.Sent()); got != len(ids) {
		t.Errorf("X accepted %d DMs, want %d", got, len(ids))
	}
	if got := len(reqs); got != len(ids)+1 {
		t.Errorf("X received %d requests, want %d (one refused, then each reply once)", got, len(ids)+1)
	}
}

// rateLimits opens the shared rate-limit bucket of the harness's namespace.
func (h *harness) rateLimits() jetstream.KeyValue {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := bus.Connect(ctx, testenv.NATSURL(), h.opts.Names)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = b.Close() })
	kv, err := b.RateLimitBucket(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return kv
}

// During a rolling configuration change a replica that lacks an account's
// driver leaves that account's replies for one that has it.
func TestReplicaWithoutTheAccountsDriverLeavesItsReplies(t *testing.T) {
	north := xfake.New()
	h := newHarness(t, withAccount(northSlug, northID, north))
	northCase := h.northCase(h.srv, bob, "@ExampleCouncilNorth the streetlight outside number 4 is out")
	_, caseID := h.mentionCase(alice, "@ExampleCouncil when does the library open?")
	h.stop()

	// The only replica running has not been given the north account yet.
	older, _ := h.replica(func(o *server.Options) {
		o.File.ChannelAccounts = slices.DeleteFunc(o.File.ChannelAccounts, func(a config.ChannelAccount) bool {
			return a.Slug == northSlug
		})
	})
	left := h.queueReply(older, northCase, channels.Public, "Thanks Bob, we have reported it.")
	sent := h.queueReply(older, caseID, channels.Public, "At 9am.")
	h.waitSent(sent)
	if st := h.status(left); st != "queued" {
		t.Fatalf("the north account's reply is %q on a replica without its driver, want queued", st)
	}

	// A replica that has the account sends it.
	h.replica(nil)
	h.waitSent(left)
	if got := len(north.Sent()); got != 1 {
		t.Errorf("the north account's X holds %d posts, want 1", got)
	}
}
