package server_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/poll"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/testenv"
)

// timeline is a network without webhooks, as its API would answer: every
// post since a cursor (the count of posts already read).
type timeline struct {
	mu    sync.Mutex
	posts []channels.Inbound
	// polls counts polls per replica; inFlight and overlap catch two
	// polls of the account at once.
	polls    map[string]int
	inFlight atomic.Int32
	overlap  atomic.Bool
}

func (tl *timeline) post(from resident, text string) string {
	id := nextID()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.posts = append(tl.posts, channels.Inbound{
		DedupeKey: "feed:" + id, ExternalID: id, Visibility: channels.Public, Text: text,
		Author: channels.Identity{ExternalID: from.ID, Handle: from.Handle, DisplayName: from.Name},
		SentAt: time.Now().UTC(),
	})
	return id
}

func (tl *timeline) pollsBy(replica string) int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.polls[replica]
}

// feedDriver serves a channel from a timeline (it takes Mastodon's
// channel name, one the API knows); replica names the server it runs in.
type feedDriver struct {
	timeline *timeline
	replica  string
}

type feedPoller feedDriver

func (p feedPoller) Poll(_ context.Context, cursor string) ([]channels.Inbound, string, error) {
	tl := p.timeline
	if tl.inFlight.Add(1) > 1 {
		tl.overlap.Store(true)
	}
	defer tl.inFlight.Add(-1)
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.polls == nil {
		tl.polls = map[string]int{}
	}
	tl.polls[p.replica]++
	read := 0
	if cursor != "" {
		var err error
		if read, err = strconv.Atoi(cursor); err != nil {
			return nil, "", err
		}
	}
	return append([]channels.Inbound(nil), tl.posts[read:]...), strconv.Itoa(len(tl.posts)), nil
}

func (feedDriver) Name() string { return "feed" }

func (feedDriver) Channels() map[string]channels.Capabilities {
	return map[string]channels.Capabilities{"mastodon": {Text: map[channels.Visibility]channels.TextRule{
		channels.Public: {Unit: "characters", Limit: 500},
	}}}
}

func (feedDriver) Decode(channels.AccountConfig, func(any) error) (any, error) { return nil, nil }

func (d feedDriver) Open(channels.AccountConfig, channels.Deps) (channels.Account, error) {
	return channels.Account{ExternalID: "feed-council", Poller: feedPoller(d), PollEvery: 20 * time.Millisecond}, nil
}

// withFeed adds a polled account on the timeline, read by replica "a".
func withFeed(tl *timeline) harnessOption {
	return func(o *server.Options, h *harness) {
		o.Drivers = drivers(h.t, feedDriver{timeline: tl, replica: "a"})
		o.File.ChannelAccounts = append(o.File.ChannelAccounts, config.ChannelAccount{
			Slug: "council-feed", Channel: "mastodon", Name: "Council's feed", Team: "highways", APIBaseURL: "http://127.0.0.1:1",
		})
		o.Poll = poll.Config{Lease: time.Second}
		h.t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			b, err := bus.Connect(ctx, testenv.NATSURL(), o.Names)
			if err != nil {
				return
			}
			poll.DeleteBuckets(ctx, b)
			_ = b.Close()
		})
	}
}

// A polled account's posts become cases in its team through INBOUND and
// the case service, as webhook deliveries do.
func TestPolledPostsBecomeCases(t *testing.T) {
	tl := &timeline{}
	first := tl.post(alice, "Pothole on Mill Lane")
	h := newHarness(t, withFeed(tl))
	caseID := h.waitCaseOf(first)
	c := h.caseDetail(caseID)
	if c.Team != "highways" || c.Contact.ExternalID != alice.ID || len(c.Messages) != 1 || c.Messages[0].Body != "Pothole on Mill Lane" {
		t.Errorf("case %+v", c)
	}
	if got := h.count(`SELECT count(*) FROM cases WHERE channel = 'mastodon'`); got != 1 {
		t.Errorf("%d cases on the polled channel, want 1", got)
	}
	if got := h.count(`SELECT count(*) FROM channel_accounts WHERE slug = 'council-feed' AND external_id = 'feed-council'`); got != 1 {
		t.Error("the polled account is not in the database with its driver's external id")
	}

	// Later posts are fetched from the committed cursor: one message each.
	second := tl.post(bob, "Streetlight out on Park Avenue")
	h.waitCaseOf(second)
	polls := tl.pollsBy("a")
	h.eventually("the poller has polled again since", func() bool { return tl.pollsBy("a") > polls+2 })
	if got := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); got != 2 {
		t.Errorf("%d inbound messages, want 2", got)
	}
}

// Two replicas of the server poll one account one at a time; when the one
// polling stops, the other goes on, and nothing is stored twice.
func TestOneReplicaPollsAnAccount(t *testing.T) {
	tl := &timeline{}
	h := newHarness(t, withFeed(tl))
	second := h.opts
	second.Drivers = drivers(t, feedDriver{timeline: tl, replica: "b"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := server.Start(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = b.Shutdown(ctx)
	})

	var posts []string
	for i := range 5 {
		posts = append(posts, tl.post(alice, fmt.Sprintf("Bins missed, report %d", i)))
	}
	for _, p := range posts {
		h.waitCaseOf(p)
	}
	h.eventually("both replicas ran while one polled", func() bool { return tl.pollsBy("a") >= 10 })
	if n := tl.pollsBy("b"); n != 0 {
		t.Fatalf("replica b polled %d times while a held the account", n)
	}

	h.stop() // replica a
	later := tl.post(bob, "Graffiti on the bridge")
	h.eventually("replica b takes over", func() bool { return tl.pollsBy("b") > 0 })
	h.eventually("the post polled by b is stored", func() bool {
		return h.count(`SELECT count(*) FROM messages WHERE external_id = ?`, later) == 1
	})
	if got := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); got != 6 {
		t.Errorf("%d inbound messages, want 6", got)
	}
	if tl.overlap.Load() {
		t.Error("two polls of one account ran at once")
	}
}
