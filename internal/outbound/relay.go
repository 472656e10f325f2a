// Package outbound moves what the database decided onto the bus and out to
// the networks: the outbox relay publishes outbox rows to JetStream, and the
// sender delivers replies through each channel's adapter, recording delivery
// status on the message.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/metrics"
	"github.com/citizeninbox/inbox/internal/store"
)

// relayBatch is how many outbox rows one pass publishes.
const relayBatch = 500

// RelayWindow is how many outbox rows the relay has waiting for
// JetStream's acknowledgement at once.
const RelayWindow = 256

// publishTimeout bounds the wait for JetStream to store one pass's rows.
const publishTimeout = 10 * time.Second

// Relay publishes outbox rows to JetStream and deletes them once stored.
// Rows are locked with SKIP LOCKED, so any number of relays can run. A row
// published but not deleted (a crash in between) is published again; the
// JetStream message id and idempotent consumers make that harmless.
type Relay struct {
	db       *gorm.DB
	pub      *bus.Publisher
	metrics  *metrics.Metrics
	log      *slog.Logger
	interval time.Duration
	kick     chan struct{}
	done     chan struct{}
	cancel   context.CancelFunc
}

// NewRelay builds a relay that polls every interval and whenever Wake is
// called. pub is the relay's own publisher (see RelayWindow).
func NewRelay(db *gorm.DB, pub *bus.Publisher, m *metrics.Metrics, log *slog.Logger, interval time.Duration) *Relay {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	return &Relay{db: db, pub: pub, metrics: m, log: log, interval: interval,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// Wake asks the relay to look at the outbox now.
func (r *Relay) Wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Start runs the relay until Stop.
func (r *Relay) Start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			for {
				n, err := r.publishOnce(ctx)
				if err != nil {
					if ctx.Err() == nil {
						r.log.Warn("outbox relay", "err", err)
					}
					break
				}
				if n < relayBatch {
					break
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-r.kick:
			}
		}
	}()
}

// Stop ends the relay after its current pass.
func (r *Relay) Stop(ctx context.Context) error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// publishOnce publishes one batch of outbox rows and deletes them.
func (r *Relay) publishOnce(ctx context.Context) (int, error) {
	var n int
	err := store.Write(ctx, r.db, func(tx *gorm.DB) error {
		var rows []store.OutboxEntry
		if err := tx.Raw(`SELECT * FROM outbox ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`, relayBatch).
			Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		// The relay's publisher has its own window, so a large outbox
		// never holds up the webhooks' publishes on the shared connection.
		msgs := make([]bus.Message, len(rows))
		for i, row := range rows {
			msgs[i] = bus.Message{Subject: row.Subject, Data: row.Payload, ID: row.MsgID}
		}
		pubCtx, cancel := context.WithTimeout(ctx, publishTimeout)
		defer cancel()
		// Rows JetStream stored are deleted; one it refused stays for the
		// next pass without holding up the others.
		ids := make([]int64, 0, len(rows))
		var failed []error
		for i, err := range r.pub.PublishAll(pubCtx, msgs) {
			if err != nil {
				failed = append(failed, fmt.Errorf("outbox row %d (%s): %w", rows[i].ID, rows[i].Subject, err))
				continue
			}
			ids = append(ids, rows[i].ID)
		}
		if len(failed) > 0 {
			r.log.Warn("outbox rows not published, will retry", "count", len(failed), "first_err", failed[0])
		}
		if len(ids) == 0 {
			return errors.Join(failed...)
		}
		if err := tx.Exec(`DELETE FROM outbox WHERE id IN ?`, ids).Error; err != nil {
			return err
		}
		n = len(ids)
		return nil
	})
	if err == nil && n > 0 {
		r.metrics.OutboxPublished.Add(float64(n))
	}
	return n, err
}
