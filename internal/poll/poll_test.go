package poll_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/metrics"
	"github.com/citizeninbox/inbox/internal/poll"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// patience bounds every wait; polls themselves take milliseconds.
const patience = 15 * time.Second

func connect(t *testing.T, names bus.Names) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	b, err := bus.Connect(ctx, testenv.NATSURL(), names)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		poll.DeleteBuckets(ctx, b)
		_ = b.Close()
	})
	return b
}

// publisher publishes to the real INBOUND stream, and fails while told to.
type publisher struct {
	bus  *bus.Bus
	fail atomic.Bool
}

func (p *publisher) Publish(ctx context.Context, msgs []channels.Inbound) error {
	if p.fail.Load() {
		return errors.New("JetStream is away")
	}
	for _, m := range msgs {
		data, _ := json.Marshal(m)
		if _, err := p.bus.JS.PublishMsg(ctx, &nats.Msg{Subject: p.bus.InboundSubject(m.Channel, m.Account), Data: data},
			jetstream.WithMsgID(m.DedupeKey)); err != nil {
			return err
		}
	}
	return nil
}

// stored is how many messages INBOUND holds.
func stored(t *testing.T, b *bus.Bus) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	s, err := b.JS.Stream(ctx, b.Stream(bus.Inbound))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func message(id string) channels.Inbound {
	return channels.Inbound{DedupeKey: "feed:" + id, ExternalID: id, Visibility: channels.Public,
		Text: "the bins", Author: channels.Identity{ExternalID: "resident-1"}, SentAt: time.Now()}
}

// feed is a network's timeline: each poll from cursor "n" returns message
// n+1 and cursor "n+1", until limit messages.
type feed struct {
	limit int
	// onPoll runs at the start of each poll, with the cursor given.
	onPoll func(cursor string)

	mu      sync.Mutex
	cursors []string
}

func (f *feed) Poll(_ context.Context, cursor string) ([]channels.Inbound, string, error) {
	f.mu.Lock()
	f.cursors = append(f.cursors, cursor)
	f.mu.Unlock()
	if f.onPoll != nil {
		f.onPoll(cursor)
	}
	n := 0
	if cursor != "" {
		_, _ = fmt.Sscan(cursor, &n)
	}
	if n >= f.limit {
		return nil, cursor, nil
	}
	return []channels.Inbound{message(fmt.Sprint(n + 1))}, fmt.Sprint(n + 1), nil
}

func (f *feed) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cursors...)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// database opens a freshly migrated database for the test.
func database(t *testing.T) *gorm.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	db, err := store.Open(ctx, testenv.Database(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return db
}

func start(t *testing.T, b *bus.Bus, db *gorm.DB, pub poll.Publisher, lease time.Duration, accounts ...channels.PolledAccount) *poll.Runner {
	t.Helper()
	return startWith(t, b, db, pub, poll.Config{Lease: lease}, accounts...)
}

func startWith(t *testing.T, b *bus.Bus, db *gorm.DB, pub poll.Publisher, cfg poll.Config, accounts ...channels.PolledAccount) *poll.Runner {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	r, err := poll.Start(ctx, b, db, accounts, pub, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, r) })
	return r
}

func stop(t *testing.T, r *poll.Runner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := r.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// cursorOf reads an account's committed cursor from poll_cursors.
func cursorOf(t *testing.T, db *gorm.DB, account string) string {
	t.Helper()
	var cursors []string
	if err := db.Raw("SELECT cursor FROM poll_cursors WHERE account = ?", account).Scan(&cursors).Error; err != nil {
		t.Fatal(err)
	}
	if len(cursors) == 0 {
		return ""
	}
	return cursors[0]
}

// The cursor moves on only once what the poll brought is stored: while
// publishing fails the poller is asked from the old cursor again, and when
// it is asked from the new one the messages are already in INBOUND.
func TestCursorIsCommittedOnlyAfterStoring(t *testing.T) {
	b, db := connect(t, testenv.Namespace(t)), database(t)
	pub := &publisher{bus: b}
	pub.fail.Store(true)
	var storedAtCursor sync.Map // cursor → messages INBOUND held when it was polled from
	f := &feed{limit: 3}
	f.onPoll = func(cursor string) {
		if _, ok := storedAtCursor.Load(cursor); !ok {
			storedAtCursor.Store(cursor, stored(t, b))
		}
	}
	start(t, b, db, pub, time.Second, channels.PolledAccount{Channel: "feed", Account: "timeline", Poller: f, Every: 10 * time.Millisecond})

	eventually(t, "the poller is asked again after a failed publish", func() bool { return len(f.seen()) >= 3 })
	for _, c := range f.seen() {
		if c != "" {
			t.Fatalf("polled from %q although nothing was stored: %v", c, f.seen())
		}
	}
	if got := cursorOf(t, db, "timeline"); got != "" || stored(t, b) != 0 {
		t.Fatalf("cursor %q, %d stored while publishing fails", got, stored(t, b))
	}

	pub.fail.Store(false)
	// Read to its end: the cursor is 3 and the poller was asked from it
	// (the poll after the commit comes a moment later).
	eventually(t, "the feed is read to its end", func() bool {
		_, asked := storedAtCursor.Load("3")
		return asked && cursorOf(t, db, "timeline") == "3"
	})
	for cursor, want := range map[string]uint64{"1": 1, "2": 2, "3": 3} {
		got, ok := storedAtCursor.Load(cursor)
		if !ok || got.(uint64) < want {
			t.Errorf("polled from %s with %v messages stored, want %d", cursor, got, want)
		}
	}
	if n := stored(t, b); n != 3 {
		t.Errorf("%d messages stored, want 3", n)
	}
}

// Messages come out named after the account they were polled for;
// incomplete ones and another account's are skipped, the rest kept.
func TestPolledMessagesAreStamped(t *testing.T) {
	b, db := connect(t, testenv.Namespace(t)), database(t)
	var got []channels.Inbound
	var mu sync.Mutex
	pub := poll.Publisher(publishFunc(func(msgs []channels.Inbound) {
		mu.Lock()
		got = append(got, msgs...)
		mu.Unlock()
	}))
	other := message("3")
	other.Account = "elsewhere"
	incomplete := message("4")
	incomplete.Author.ExternalID = ""
	once := &onceFeed{msgs: []channels.Inbound{message("1"), message("2"), other, incomplete}}
	start(t, b, db, pub, time.Second, channels.PolledAccount{Channel: "feed", Account: "timeline", Poller: once, Every: 10 * time.Millisecond})
	eventually(t, "the poll is published", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) > 0 })
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("published %d messages, want 2: %+v", len(got), got)
	}
	for _, m := range got {
		if m.Channel != "feed" || m.Account != "timeline" || m.ReceivedAt.IsZero() {
			t.Errorf("message %s: channel %q, account %q, received %v", m.ExternalID, m.Channel, m.Account, m.ReceivedAt)
		}
	}
}

type publishFunc func([]channels.Inbound)

func (f publishFunc) Publish(_ context.Context, msgs []channels.Inbound) error { f(msgs); return nil }

// onceFeed returns its messages on the first poll, then nothing.
type onceFeed struct {
	msgs []channels.Inbound
	done atomic.Bool
}

func (f *onceFeed) Poll(_ context.Context, cursor string) ([]channels.Inbound, string, error) {
	if f.done.Swap(true) {
		return nil, cursor, nil
	}
	return f.msgs, "end", nil
}

// replicaFeed records, for every poll, which replica made it and whether
// another poll of the account was in flight.
type replicaFeed struct {
	replica  string
	inFlight *atomic.Int32
	overlap  *atomic.Bool
	polls    map[string]*atomic.Int32
}

func (f replicaFeed) Poll(_ context.Context, cursor string) ([]channels.Inbound, string, error) {
	if f.inFlight.Add(1) > 1 {
		f.overlap.Store(true)
	}
	defer f.inFlight.Add(-1)
	f.polls[f.replica].Add(1)
	time.Sleep(2 * time.Millisecond) // long enough for an overlap to show
	return nil, cursor, nil
}

// Two replicas poll one account: only one at a time, and when it stops the
// other takes over.
func TestOneReplicaPollsAnAccount(t *testing.T) {
	names := testenv.Namespace(t)
	var inFlight atomic.Int32
	var overlap atomic.Bool
	polls := map[string]*atomic.Int32{"a": {}, "b": {}}
	account := func(replica string) channels.PolledAccount {
		return channels.PolledAccount{Channel: "feed", Account: "timeline", Every: time.Millisecond,
			Poller: replicaFeed{replica: replica, inFlight: &inFlight, overlap: &overlap, polls: polls}}
	}
	ba, bb := connect(t, names), connect(t, names)
	db := database(t)
	ra := start(t, ba, db, &publisher{bus: ba}, 2*time.Second, account("a"))
	eventually(t, "replica a polls", func() bool { return polls["a"].Load() >= 5 })
	start(t, bb, db, &publisher{bus: bb}, 2*time.Second, account("b"))
	// b runs beside a for many of a's polls without polling once.
	before := polls["a"].Load()
	eventually(t, "replica a polls on beside b", func() bool { return polls["a"].Load() >= before+50 })
	if n := polls["b"].Load(); n != 0 {
		t.Fatalf("replica b polled %d times while a held the account", n)
	}

	stop(t, ra)
	eventually(t, "replica b takes over", func() bool { return polls["b"].Load() >= 5 })
	if overlap.Load() {
		t.Error("two polls of one account ran at once")
	}
}

// A replica that vanished without handing its lease back holds the
// account until the lease expires; then another replica polls it.
func TestAnExpiredLeaseIsTakenOver(t *testing.T) {
	b, db := connect(t, testenv.Namespace(t)), database(t)
	ctx := t.Context()
	const lease = time.Second
	leases, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b.Stream(poll.LeaseBucket), History: 1, TTL: lease})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leases.Create(ctx, "timeline", []byte("vanished-replica")); err != nil {
		t.Fatal(err)
	}
	holder := make(chan string, 100)
	f := &feed{limit: 1, onPoll: func(string) {
		e, err := leases.Get(ctx, "timeline")
		if err != nil {
			holder <- err.Error()
			return
		}
		holder <- string(e.Value())
	}}
	start(t, b, db, &publisher{bus: b}, lease, channels.PolledAccount{Channel: "feed", Account: "timeline", Poller: f, Every: 10 * time.Millisecond})
	select {
	case h := <-holder:
		if h == "vanished-replica" || h == "" {
			t.Fatalf("polled while the lease was held by %q", h)
		}
	case <-time.After(patience):
		t.Fatal("the expired lease was never taken over")
	}
}

// A cursor another replica moved on while a poll ran is not overwritten by
// that poll's commit: the next poll starts where the other replica left
// it.
func TestAMovedCursorIsNotOverwritten(t *testing.T) {
	b, db := connect(t, testenv.Namespace(t)), database(t)
	f := &feed{limit: 12}
	var once sync.Once
	f.onPoll = func(cursor string) {
		once.Do(func() {
			// Another replica polled up to 9 while this poll ran.
			if err := db.Exec("INSERT INTO poll_cursors (account, cursor) VALUES ('timeline', '9')").Error; err != nil {
				t.Error(err)
			}
		})
	}
	start(t, b, db, &publisher{bus: b}, time.Second, channels.PolledAccount{Channel: "feed", Account: "timeline", Poller: f, Every: 10 * time.Millisecond})
	eventually(t, "the feed is read to its end", func() bool { return cursorOf(t, db, "timeline") == "12" })
	seen := f.seen()
	if len(seen) < 2 || seen[0] != "" || seen[1] != "9" {
		t.Errorf("polled from %v, want \"\" then 9: the first poll's commit must not overwrite the moved cursor", seen)
	}
}

// countingFeed is a poller whose polls also bring updates that make no
// message.
type countingFeed struct{ onceFeed }

func (f *countingFeed) PollCounting(ctx context.Context, cursor string) ([]channels.Inbound, string, map[string]int, error) {
	msgs, next, err := f.Poll(ctx, cursor)
	if len(msgs) == 0 {
		return msgs, next, nil, err
	}
	return msgs, next, map[string]int{"member_update": 2}, err
}

// What a poll brings that makes no message is counted, by driver and kind.
func TestIgnoredUpdatesAreCounted(t *testing.T) {
	b, db := connect(t, testenv.Namespace(t)), database(t)
	m := metrics.New()
	f := &countingFeed{onceFeed{msgs: []channels.Inbound{message("1")}}}
	startWith(t, b, db, &publisher{bus: b}, poll.Config{Lease: time.Second, Metrics: m},
		channels.PolledAccount{Driver: "feedbot", Channel: "feed", Account: "timeline", Poller: f, Every: 10 * time.Millisecond})
	eventually(t, "the poll is committed", func() bool { return cursorOf(t, db, "timeline") == "end" })
	if got := testutil.ToFloat64(m.InboundIgnored.WithLabelValues("feedbot", "member_update")); got != 2 {
		t.Errorf("inbox_inbound_ignored_total{driver=feedbot,kind=member_update} = %v, want 2", got)
	}
}

// refusingFeed refuses the account's credential while told to.
type refusingFeed struct {
	refuse atomic.Bool
	polls  atomic.Int32
}

func (f *refusingFeed) Poll(_ context.Context, cursor string) ([]channels.Inbound, string, error) {
	f.polls.Add(1)
	if f.refuse.Load() {
		return nil, cursor, fmt.Errorf("feed: 401 Unauthorized (%w)", channels.ErrCredentialRefused)
	}
	return nil, cursor, nil
}

// A poll refused for the account's credential marks the account
// unhealthy with the network's reason; the first poll that goes through
// again marks it healthy. A refused send's mark is the sender's to clear.
func TestARefusedCredentialMarksTheAccountUnhealthy(t *testing.T) {
	b, db := connect(t, testenv.Namespace(t)), database(t)
	if err := db.Exec(`INSERT INTO teams (slug, name) VALUES ('general', 'General');
		INSERT INTO channel_accounts (slug, channel, name, team_id) VALUES ('timeline', 'feed', 'Feed', (SELECT id FROM teams))`).Error; err != nil {
		t.Fatal(err)
	}
	type health struct {
		Refused bool
		Reason  string
		By      string
	}
	healthOf := func() health {
		var h health
		db.Raw(`SELECT credential_refused_at IS NOT NULL AS refused, credential_reason AS reason, credential_refused_by AS by
			FROM channel_accounts WHERE slug = 'timeline'`).Scan(&h)
		return h
	}
	f := &refusingFeed{}
	f.refuse.Store(true)
	start(t, b, db, &publisher{bus: b}, time.Second, channels.PolledAccount{Channel: "feed", Account: "timeline", Poller: f, Every: 10 * time.Millisecond})
	eventually(t, "the account is marked unhealthy", func() bool { return healthOf().Refused })
	if h := healthOf(); h.By != "poll" || h.Reason != "feed: 401 Unauthorized (the network refused the account's credential)" {
		t.Errorf("unhealthy as %+v", h)
	}
	f.refuse.Store(false)
	eventually(t, "the account is healthy again", func() bool { return !healthOf().Refused })

	// A refused send is not cleared by polls that go through.
	if err := db.Exec(`UPDATE channel_accounts SET credential_refused_at = now(), credential_reason = 'send refused',
		credential_refused_by = 'send' WHERE slug = 'timeline'`).Error; err != nil {
		t.Fatal(err)
	}
	polled := f.polls.Load()
	eventually(t, "more polls", func() bool { return f.polls.Load() > polled+5 })
	if h := healthOf(); !h.Refused || h.By != "send" {
		t.Errorf("after polls that went through, a refused send shows %+v", h)
	}
}

// A cursor an earlier version kept in JetStream KV is carried over to
// PostgreSQL: the first poll after the upgrade starts from it; one already
// in PostgreSQL wins.
func TestACursorKeptInJetStreamIsCarriedOver(t *testing.T) {
	b, db := connect(t, testenv.Namespace(t)), database(t)
	kv, err := b.JS.CreateOrUpdateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: b.Stream(poll.LegacyCursorBucket), History: 1})
	if err != nil {
		t.Fatal(err)
	}
	for account, cursor := range map[string]string{"timeline": "7", "other": "3"} {
		if _, err := kv.Put(t.Context(), account, []byte(cursor)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Exec(`INSERT INTO poll_cursors (account, cursor) VALUES ('other', '5')`).Error; err != nil {
		t.Fatal(err)
	}
	timeline, other := &feed{limit: 8}, &feed{limit: 6}
	start(t, b, db, &publisher{bus: b}, time.Second,
		channels.PolledAccount{Channel: "feed", Account: "timeline", Poller: timeline, Every: 10 * time.Millisecond},
		channels.PolledAccount{Channel: "feed", Account: "other", Poller: other, Every: 10 * time.Millisecond})
	eventually(t, "both polled", func() bool { return len(timeline.seen()) > 0 && len(other.seen()) > 0 })
	if first := timeline.seen()[0]; first != "7" {
		t.Errorf("the first poll after the upgrade started from %q, want the carried-over 7", first)
	}
	if first := other.seen()[0]; first != "5" {
		t.Errorf("an account with a cursor in PostgreSQL started from %q, want its 5", first)
	}
}
