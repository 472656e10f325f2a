package outbound

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/metrics"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fixture is a database with one case and one queued reply on it.
type fixture struct {
	t      *testing.T
	db     *gorm.DB
	caseID int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := store.Open(t.Context(), testenv.Database(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(db) })
	f := &fixture{t: t, db: db}
	f.exec(`INSERT INTO teams (slug, name) VALUES ('contact-centre', 'Contact centre')`)
	f.exec(`INSERT INTO channel_accounts (slug, channel, name, team_id) VALUES ('council-x', 'x', 'Council on X', 1)`)
	f.exec(`INSERT INTO contacts (display_name) VALUES ('Alice')`)
	f.exec(`INSERT INTO contact_identities (contact_id, channel, external_id) VALUES (1, 'x', '2200000000000000001')`)
	f.caseID = f.scan(`INSERT INTO cases (channel, channel_account_id, contact_id, contact_identity_id, team_id,
		first_message_at, last_message_at) VALUES ('x', 1, 1, 1, 1, now(), now()) RETURNING id`)
	return f
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if err := f.db.Exec(sql, args...).Error; err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

func (f *fixture) scan(sql string, args ...any) int64 {
	f.t.Helper()
	var n int64
	if err := f.db.Raw(sql, args...).Scan(&n).Error; err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// queued stores a queued reply and returns its id.
func (f *fixture) queued() int64 {
	f.t.Helper()
	return f.scan(`INSERT INTO messages (case_id, channel_account_id, direction, visibility, body, delivery_status)
		VALUES (?, 1, 'outbound', 'public', 'Thanks', 'queued') RETURNING id`, f.caseID)
}

type row struct {
	DeliveryStatus string
	ExternalIDs    store.Strings `gorm:"type:text[]"`
	FailureReason  string
	SendFailures   int
	Owner          string
	SentAt         *time.Time
}

func (f *fixture) row(id int64) row {
	f.t.Helper()
	var r row
	if err := f.db.Raw(`SELECT delivery_status, external_ids, failure_reason, send_failures,
		coalesce(send_owner::text, '') AS owner, sent_at FROM messages WHERE id = ?`, id).Scan(&r).Error; err != nil {
		f.t.Fatal(err)
	}
	return r
}

// sender is a sender on the fixture's database that is not consuming.
func (f *fixture) sender(lease time.Duration) *Sender {
	s := NewSender(f.db, nil, metrics.New(), slog.New(slog.DiscardHandler),
		SenderConfig{Lease: lease, MaxAttempts: 3, BaseBackoff: 10 * time.Millisecond})
	s.base = context.WithoutCancel(f.t.Context())
	s.hard, s.abort = context.WithCancel(s.base)
	f.t.Cleanup(s.abort)
	return s
}

// fakeMsg counts what the sender tells JetStream about a message.
type fakeMsg struct {
	jetstream.Msg
	inProgress int
}

func (m *fakeMsg) InProgress() error { m.inProgress++; return nil }

// take claims reply id with s and returns the lease, the message it tells
// JetStream about, and the cause its send was cancelled with, if it was.
func take(t *testing.T, s *Sender, id int64) (*lease, *fakeMsg, func() error) {
	t.Helper()
	c, err := s.claim(id)
	if err != nil || c.state != claimTaken || c.owner == "" {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	return leaseFor(t, s, id, c)
}

// leaseFor builds the lease of a claim made.
func leaseFor(t *testing.T, s *Sender, id int64, c claimResult) (*lease, *fakeMsg, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	t.Cleanup(func() { cancel(nil) })
	m := &fakeMsg{}
	l := s.newLease(m, channels.Outbound{MessageID: id, Channel: "x", Account: "council-x"}, c.owner, time.Now(), cancel)
	return l, m, func() error { return context.Cause(ctx) }
}

// A sender whose lease lapsed (frozen, say, past it) and was taken over
// changes nothing with any write it makes afterwards, and learns it lost
// the reply; the new holder's record stands.
func TestWritesAfterTheLeaseWasTakenOverChangeNothing(t *testing.T) {
	f := newFixture(t)
	id := f.queued()
	a, b := f.sender(time.Minute), f.sender(time.Minute)
	ctx := t.Context()

	la, _, causeA := take(t, a, id)
	if owned, err := la.recordPart(ctx, "1900000000000000001"); err != nil || !owned {
		t.Fatalf("first holder records part 1: %v %v", owned, err)
	}
	// The first holder stops renewing; its lease runs out.
	f.exec(`UPDATE messages SET sending_until = now() - interval '1 second' WHERE id = ?`, id)

	c, err := b.claim(id)
	if err != nil || c.state != claimTaken || c.owner == la.owner {
		t.Fatalf("second claim: %+v, %v", c, err)
	}
	if len(c.parts) != 1 || c.parts[0] != "1900000000000000001" {
		t.Errorf("second holder starts from parts %v, want the recorded part 1", c.parts)
	}
	lb, _, _ := leaseFor(t, b, id, c)
	if owned, err := lb.recordPart(ctx, "1900000000000000002"); err != nil || !owned {
		t.Fatalf("second holder records part 2: %v %v", owned, err)
	}
	want := f.row(id)

	writes := map[string]func() (bool, error){
		"record a part": func() (bool, error) { return la.recordPart(ctx, "1900000000000000009") },
		"mark sent":     func() (bool, error) { return la.markSent(ctx, []string{"1900000000000000001", "1900000000000000009"}) },
		"release":       func() (bool, error) { return la.release(ctx, "rate limited") },
		"fail":          func() (bool, error) { return la.fail(ctx, "forbidden") },
		"count a failure": func() (bool, error) {
			_, _, owned, err := la.countFailure(ctx, "X answered 503")
			return owned, err
		},
	}
	for what, write := range writes {
		owned, err := write()
		if err != nil || owned {
			t.Errorf("%s by the holder whose lease lapsed: owned %v, err %v; want not owned", what, owned, err)
		}
	}
	if got := f.row(id); got.DeliveryStatus != "sending" || got.Owner != want.Owner ||
		len(got.ExternalIDs) != 2 || got.ExternalIDs[1] != "1900000000000000002" || got.SendFailures != 0 || got.FailureReason != "" {
		t.Errorf("after the old holder's writes the reply is %+v, want the new holder's %+v", got, want)
	}
	if got := f.scan(`SELECT count(*) FROM message_posts WHERE external_id = '1900000000000000009'`); got != 0 {
		t.Errorf("the old holder's part was recorded as a post")
	}
	if err := la.durably("sent part", func(ctx context.Context) (bool, error) { return la.recordPart(ctx, "1900000000000000009") }); !errors.Is(err, errClaimLost) {
		t.Errorf("retried record by the old holder: %v, want errClaimLost", err)
	}

	// Its heartbeat finds the claim gone and abandons the send.
	la.renew()
	if !errors.Is(causeA(), errClaimLost) {
		t.Errorf("old holder's send cancelled with %v, want errClaimLost", causeA())
	}

	if owned, err := lb.markSent(ctx, []string{"1900000000000000001", "1900000000000000002"}); err != nil || !owned {
		t.Fatalf("new holder marks sent: %v %v", owned, err)
	}
	if got := f.row(id); got.DeliveryStatus != "sent" || got.Owner != "" || got.SentAt == nil {
		t.Errorf("after the new holder marked it sent: %+v", got)
	}
}

func TestClaimHeldByAnotherSaysWhenItsLeaseEnds(t *testing.T) {
	f := newFixture(t)
	id := f.queued()
	a, b := f.sender(time.Minute), f.sender(time.Minute)
	la, m, cause := take(t, a, id)
	c, err := b.claim(id)
	if err != nil || c.state != claimHeld || c.heldFor <= 50*time.Second || c.heldFor > time.Minute {
		t.Fatalf("claim of a held reply: %+v, %v; want held for about a minute", c, err)
	}
	// A renewal by the holder keeps it, and tells JetStream.
	la.renew()
	if m.inProgress != 1 || cause() != nil {
		t.Errorf("after a renewal: %d in-progress, cancelled with %v", m.inProgress, cause())
	}
}

// The case's first response is the first reply the network accepted, at
// the moment it was marked sent, on the database's clock.
func TestFirstResponseIsTheFirstReplySent(t *testing.T) {
	f := newFixture(t)
	s := f.sender(time.Minute)
	first, second := f.queued(), f.queued()
	ctx := t.Context()

	l2, _, _ := take(t, s, second)
	if owned, err := l2.fail(ctx, "forbidden"); err != nil || !owned {
		t.Fatal(owned, err)
	}
	if got := f.scan(`SELECT count(*) FROM cases WHERE first_response_at IS NOT NULL`); got != 0 {
		t.Fatalf("a failed reply set the first response")
	}
	l1, _, _ := take(t, s, first)
	if owned, err := l1.markSent(ctx, []string{"1900000000000000001"}); err != nil || !owned {
		t.Fatal(owned, err)
	}
	if got := f.scan(`SELECT count(*) FROM cases c JOIN messages m ON m.case_id = c.id
		WHERE m.id = ? AND c.first_response_at = m.sent_at`, first); got != 1 {
		t.Errorf("first response is not the sent time of the first reply sent")
	}
	third := f.queued()
	l3, _, _ := take(t, s, third)
	if owned, err := l3.markSent(ctx, []string{"1900000000000000002"}); err != nil || !owned {
		t.Fatal(owned, err)
	}
	if got := f.scan(`SELECT count(*) FROM cases c JOIN messages m ON m.case_id = c.id
		WHERE m.id = ? AND c.first_response_at = m.sent_at`, first); got != 1 {
		t.Errorf("a later reply moved the first response")
	}
}

func TestRetryDelayGrowsToTheCap(t *testing.T) {
	s := NewSender(nil, nil, nil, nil, SenderConfig{BaseBackoff: time.Second, MaxBackoff: 10 * time.Second})
	for failures, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 20: 10 * time.Second} {
		for range 20 {
			got := s.retryDelay(failures)
			if lo, hi := time.Duration(float64(want)*0.75), time.Duration(float64(want)*1.25); got < lo || got > hi {
				t.Errorf("after %d failures waits %v, want %v ± 25%%", failures, got, want)
			}
		}
	}
}
