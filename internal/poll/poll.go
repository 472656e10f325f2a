// Package poll runs the pollers of channel accounts whose networks have no
// webhooks. For each account one replica at a time holds a lease and
// polls: it fetches what arrived since the account's cursor, publishes it
// to INBOUND as a webhook delivery is published, and commits the new
// cursor only once JetStream has stored all of it. Leases and cursors live
// in JetStream KV, so any replica can take over an account, and no
// database is on this path.
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

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels"
)

// Publisher stores resident messages on INBOUND, returning nil only once
// JetStream has stored every one.
type Publisher interface {
	Publish(ctx context.Context, msgs []channels.Inbound) error
}

// Bucket names, before the namespace.
const (
	CursorBucket = "POLL_CURSORS"
	LeaseBucket  = "POLL_LEASES"
)

// DefaultLease is how long a replica holds an account without renewing.
const DefaultLease = 30 * time.Second

// Config tunes the runner.
type Config struct {
	// Lease is how long a replica's hold on an account lasts unless
	// renewed; it is renewed every third of it, and a poll is cut short
	// before it runs out. DefaultLease when zero.
	Lease time.Duration
}

// Runner polls the accounts it was started with.
type Runner struct {
	log     *slog.Logger
	pub     Publisher
	lease   time.Duration
	owner   string
	cursors jetstream.KeyValue
	leases  jetstream.KeyValue
	now     func() time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start creates the buckets (when there is an account to poll) and starts
// one loop per account.
func Start(ctx context.Context, b *bus.Bus, accounts []channels.PolledAccount, pub Publisher, cfg Config, log *slog.Logger) (*Runner, error) {
	r := &Runner{log: log, pub: pub, lease: cfg.Lease, now: time.Now}
	if r.lease <= 0 {
		r.lease = DefaultLease
	}
	if len(accounts) == 0 {
		return r, nil
	}
	owner := make([]byte, 8)
	_, _ = rand.Read(owner)
	r.owner = hex.EncodeToString(owner)
	var err error
	r.cursors, err = b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.Stream(CursorBucket),
		Description: "Where each polled channel account's next poll starts",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(b.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("poll cursors: %w", err)
	}
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
	for _, name := range []string{CursorBucket, LeaseBucket} {
		_ = b.JS.DeleteKeyValue(ctx, b.Stream(name))
	}
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
	msgs, next, err := pa.Poller.Poll(ctx, cursor)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("poll failed", "err", err)
		}
		return false
	}
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

// cursor reads an account's cursor and its revision (0 when it has none).
func (r *Runner) cursor(ctx context.Context, account string) (string, uint64, error) {
	e, err := r.cursors.Get(ctx, account)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return "", 0, nil
	case err != nil:
		return "", 0, err
	}
	return string(e.Value()), e.Revision(), nil
}

// commit moves the cursor on, only from the revision the poll started at.
func (r *Runner) commit(ctx context.Context, account, cursor string, rev uint64) error {
	var err error
	if rev == 0 {
		_, err = r.cursors.Create(ctx, account, []byte(cursor))
	} else {
		_, err = r.cursors.Update(ctx, account, []byte(cursor), rev)
	}
	return err
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
