// Package poll runs the pollers of channel accounts whose networks have no
// webhooks. For each account one replica at a time holds a lease and
// polls: it fetches what arrived since the account's cursor, publishes it
// to INBOUND as a webhook delivery is published, and commits the new
// cursor only once JetStream has stored all of it. Leases live in
// JetStream KV and cursors in PostgreSQL (poll_cursors), so any replica
// can take over an account; a cursor moves on only from the revision the
// poll read, so a replica whose lease ran out cannot move it back.
package poll

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/metrics"
)

// Publisher stores resident messages on INBOUND, returning nil only once
// JetStream has stored every one.
type Publisher interface {
	Publish(ctx context.Context, msgs []channels.Inbound) error
}

// LeaseBucket names the leases' bucket, before the namespace.
const LeaseBucket = "POLL_LEASES"

// LegacyCursorBucket names the bucket earlier versions kept the cursors in,
// before the namespace: Start carries its cursors over to poll_cursors.
const LegacyCursorBucket = "POLL_CURSORS"

// DefaultLease is how long a replica holds an account without renewing.
const DefaultLease = 30 * time.Second

// Config tunes the runner.
type Config struct {
	// Lease is how long a replica's hold on an account lasts unless
	// renewed; it is renewed every third of it, and a poll is cut short
	// before it runs out. DefaultLease when zero.
	Lease time.Duration
	// Metrics, when set, count the updates polls fetched that made no
	// message (channels.IgnoringPoller).
	Metrics *metrics.Metrics
}

// Runner polls the accounts it was started with.
type Runner struct {
	log     *slog.Logger
	pub     Publisher
	lease   time.Duration
	owner   string
	db      *gorm.DB
	metrics *metrics.Metrics
	leases  jetstream.KeyValue
	now     func() time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start creates the leases' bucket (when there is an account to poll) and
// starts one loop per account, its cursor in db.
func Start(ctx context.Context, b *bus.Bus, db *gorm.DB, accounts []channels.PolledAccount, pub Publisher, cfg Config, log *slog.Logger) (*Runner, error) {
	r := &Runner{log: log, pub: pub, db: db, metrics: cfg.Metrics, lease: cfg.Lease, now: time.Now}
	if r.lease <= 0 {
		r.lease = DefaultLease
	}
	if len(accounts) == 0 {
		return r, nil
	}
	owner := make([]byte, 8)
	_, _ = rand.Read(owner)
	r.owner = hex.EncodeToString(owner)
	if err := r.carryOver(ctx, b, accounts); err != nil {
		return nil, fmt.Errorf("poll cursors: %w", err)
	}
	var err error
	r.leases, err = b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.Stream(LeaseBucket),
		Description: "Which replica polls each polled channel account",
		History:     1,
		TTL:         r.lease,
		Storage:     jetstream.FileStorage,
		Replicas:    max(b.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("poll leases: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	for _, pa := range accounts {
		r.wg.Go(func() { r.run(runCtx, pa) })
	}
	return r, nil
}

// carryOver copies the cursors an earlier version kept in JetStream KV into
// poll_cursors, for the accounts that have none there yet, so that an
// upgrade neither skips nor repeats what was polled.
func (r *Runner) carryOver(ctx context.Context, b *bus.Bus, accounts []channels.PolledAccount) error {
	kv, err := b.JS.KeyValue(ctx, b.Stream(LegacyCursorBucket))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, pa := range accounts {
		e, err := kv.Get(ctx, pa.Account)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		res := r.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).
			Create(&pollCursor{Account: pa.Account, Cursor: string(e.Value()), Revision: 1, UpdatedAt: r.now().UTC()})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected > 0 {
			r.log.Info("poll: cursor carried over from JetStream to PostgreSQL", "account", pa.Account)
		}
	}
	return nil
}

// Stop ends every loop, cutting a poll in flight short (its cursor is not
// committed, so the next holder fetches it again), and hands the leases
// back so another replica takes over at once.
func (r *Runner) Stop(ctx context.Context) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DeleteBuckets removes a namespace's buckets (tests clean up with it).
func DeleteBuckets(ctx context.Context, b *bus.Bus) {
	_ = b.JS.DeleteKeyValue(ctx, b.Stream(LeaseBucket))
	_ = b.JS.DeleteKeyValue(ctx, b.Stream(LegacyCursorBucket))
}

// run keeps the account's lease while it can, polling every pa.Every
// while it holds it, and straight away again while polls bring messages.
func (r *Runner) run(ctx context.Context, pa channels.PolledAccount) {
	l := &lease{kv: r.leases, key: pa.Account, owner: r.owner, ttl: r.lease}
	defer l.release(ctx, r.log)
	renewEvery := r.lease / 3
	var next time.Time // when the next poll is due
	for {
		wait := renewEvery
		if l.hold(ctx, r.now()) {
			if !r.now().Before(next) {
				more := r.pollOnce(ctx, pa, l.until)
				next = r.now().Add(pa.Every)
				if more {
					next = r.now()
				}
			}
			wait = min(wait, max(next.Sub(r.now()), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// pollOnce polls one account once, before the lease runs out. It reports
// whether the poll moved the cursor on with messages, so there may be more.
func (r *Runner) pollOnce(ctx context.Context, pa channels.PolledAccount, until time.Time) (more bool) {
	ctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	log := r.log.With("channel", pa.Channel, "account", pa.Account)
	cursor, rev, err := r.cursor(ctx, pa.Account)
	if err != nil {
		log.Warn("poll: cursor unavailable", "err", err)
		return false
	}
	msgs, next, err := r.poll(ctx, pa, cursor)
	if err != nil {
		if ctx.Err() == nil {
			if errors.Is(err, channels.ErrCredentialRefused) {
				r.refused(ctx, log, pa.Account, err)
			} else {
				log.Warn("poll failed", "err", err)
			}
		}
		return false
	}
	r.accepted(ctx, log, pa.Account)
	msgs, skipped := r.stamp(pa, msgs)
	if skipped != nil {
		log.Warn("poll: messages skipped", "err", skipped)
	}
	if len(msgs) > 0 {
		if err := r.pub.Publish(ctx, msgs); err != nil {
			// Not committed: the next poll fetches them again, and their
			// dedupe keys make that safe.
			log.Warn("poll: messages not stored, will fetch them again", "messages", len(msgs), "err", err)
			return false
		}
	}
	if next == cursor {
		return false
	}
	if err := r.commit(ctx, pa.Account, next, rev); err != nil {
		log.Warn("poll: cursor not committed, will fetch again", "err", err)
		return false
	}
	log.Debug("polled", "messages", len(msgs))
	return len(msgs) > 0
}

// stamp names the account on its messages, and keeps those that are
// complete and its own.
func (r *Runner) stamp(pa channels.PolledAccount, msgs []channels.Inbound) ([]channels.Inbound, error) {
	var errs []error
	kept := msgs[:0:0]
	receivedAt := r.now().UTC()
	for _, m := range msgs {
		if m.Channel == "" {
			m.Channel = pa.Channel
		}
		if m.Account == "" {
			m.Account = pa.Account
		}
		if m.ReceivedAt.IsZero() {
			m.ReceivedAt = receivedAt
		}
		if m.Channel != pa.Channel || m.Account != pa.Account {
			errs = append(errs, fmt.Errorf("poll: a message of %s/%s came from the poller of %s/%s", m.Channel, m.Account, pa.Channel, pa.Account))
			continue
		}
		if err := m.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		kept = append(kept, m)
	}
	return kept, errors.Join(errs...)
}

// poll polls pa once, counting what its poller says made no message.
func (r *Runner) poll(ctx context.Context, pa channels.PolledAccount, cursor string) ([]channels.Inbound, string, error) {
	counting, ok := pa.Poller.(channels.IgnoringPoller)
	if !ok {
		return pa.Poller.Poll(ctx, cursor)
	}
	msgs, next, ignored, err := counting.PollCounting(ctx, cursor)
	if r.metrics != nil && err == nil {
		for kind, n := range ignored {
			r.metrics.InboundIgnored.WithLabelValues(pa.Driver, kind).Add(float64(n))
		}
	}
	return msgs, next, err
}

// refused marks the account unhealthy after the network refused its
// credential to a poll, for the API, /metrics and every replica; logged
// once, by the replica that found it healthy. A refused send's mark is
// left as it is.
func (r *Runner) refused(ctx context.Context, log *slog.Logger, account string, err error) {
	res := r.db.WithContext(ctx).Exec(`UPDATE channel_accounts SET credential_refused_at = now(), credential_reason = ?,
			credential_refused_by = 'poll'
		WHERE slug = ? AND credential_refused_at IS NULL`, err.Error(), account)
	switch {
	case res.Error != nil:
		log.Warn("poll refused the credential, and the account could not be marked unhealthy", "err", err, "db_err", res.Error)
	case res.RowsAffected > 0:
		log.Error("channel account unhealthy: the network refused its credential to a poll; polls go on, and the first that goes through marks it healthy", "err", err)
	default:
		log.Debug("poll refused the credential", "err", err)
	}
}

// accepted clears a poll's refusal once a poll went through. It writes
// nothing while the account is healthy.
func (r *Runner) accepted(ctx context.Context, log *slog.Logger, account string) {
	res := r.db.WithContext(ctx).Exec(`UPDATE channel_accounts SET credential_refused_at = NULL, credential_reason = '',
			credential_refused_by = ''
		WHERE slug = ? AND credential_refused_by = 'poll'`, account)
	switch {
	case res.Error != nil:
		log.Warn("poll: could not record the account healthy again", "err", res.Error)
	case res.RowsAffected > 0:
		log.Info("channel account healthy again: the network took its credential to a poll")
	}
}

// pollCursor is a row of poll_cursors.
type pollCursor struct {
	Account   string `gorm:"primaryKey"`
	Cursor    string
	Revision  uint64
	UpdatedAt time.Time
}

func (pollCursor) TableName() string { return "poll_cursors" }

// errMoved says the cursor moved on since the poll read it: another
// replica polled the account meanwhile, and its commit stands.
var errMoved = errors.New("the cursor moved on since this poll read it")

// cursor reads an account's cursor and its revision (0 when it has none).
func (r *Runner) cursor(ctx context.Context, account string) (string, uint64, error) {
	var row pollCursor
	err := r.db.WithContext(ctx).Where("account = ?", account).Take(&row).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return "", 0, nil
	case err != nil:
		return "", 0, err
	}
	return row.Cursor, row.Revision, nil
}

// commit moves the cursor on, only from the revision the poll started at.
func (r *Runner) commit(ctx context.Context, account, cursor string, rev uint64) error {
	db := r.db.WithContext(ctx)
	var res *gorm.DB
	if rev == 0 {
		res = db.Clauses(clause.OnConflict{DoNothing: true}).
			Create(&pollCursor{Account: account, Cursor: cursor, Revision: 1, UpdatedAt: r.now().UTC()})
	} else {
		res = db.Model(&pollCursor{}).Where("account = ? AND revision = ?", account, rev).
			Updates(map[string]any{"cursor": cursor, "revision": rev + 1, "updated_at": r.now().UTC()})
	}
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return errMoved
	}
	return nil
}

// lease is one replica's hold on one account, kept as a key in a bucket
// whose entries expire after ttl unless renewed.
type lease struct {
	kv    jetstream.KeyValue
	key   string
	owner string
	ttl   time.Duration
	rev   uint64    // of our entry; 0 when not held
	until time.Time // when a poll must be over
}

// hold renews the lease, or takes it when it is free. It reports whether
// this replica holds it.
func (l *lease) hold(ctx context.Context, now time.Time) bool {
	ctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	defer cancel()
	if l.rev != 0 {
		if rev, err := l.kv.Update(ctx, l.key, []byte(l.owner), l.rev); err == nil {
			l.rev, l.until = rev, now.Add(l.margin())
			return true
		}
		l.rev = 0
	}
	rev, err := l.kv.Create(ctx, l.key, []byte(l.owner))
	if err != nil {
		return false // another replica holds it, or NATS is away
	}
	l.rev, l.until = rev, now.Add(l.margin())
	return true
}

// margin is how long after a renewal a poll may still run: well inside
// the lease, so it ends before another replica can take over.
func (l *lease) margin() time.Duration { return l.ttl * 2 / 3 }

// release hands the lease back, if this replica still holds it.
func (l *lease) release(ctx context.Context, log *slog.Logger) {
	if l.rev == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev)); err != nil {
		log.Debug("poll: lease not handed back; it expires", "account", l.key, "err", err)
	}
	l.rev = 0
}
