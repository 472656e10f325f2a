package cases

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/store"
)

// ConsumerName is the durable consumer the case service reads INBOUND with.
const ConsumerName = "cases"

// batchSize is how many inbound messages share one database transaction.
// One commit per batch is what lets the case service keep up with bursts.
const batchSize = 200

// Consumer feeds INBOUND into the case service.
type Consumer struct {
	// ctx is the service's base context: values of the start-up context,
	// never cancelled, so a batch in flight at shutdown still commits.
	ctx  context.Context
	svc  *Service
	iter jetstream.MessagesContext
	done chan struct{}
	log  *slog.Logger
	// retryDelay is the first wait before a failed message is offered
	// again; it doubles per delivery up to maxRetryDelay.
	retryDelay time.Duration
}

// maxRetryDelay caps the wait between deliveries of a message the database
// could not take (for instance while PostgreSQL is down).
const maxRetryDelay = 30 * time.Second

// StartConsumer creates the durable consumer and starts reading. Messages
// are acknowledged only after their transaction committed; a message the
// database cannot take is offered again later, without limit, so nothing a
// resident sent is lost while PostgreSQL is away.
func (s *Service) StartConsumer(ctx context.Context, b *bus.Bus, retryDelay time.Duration) (*Consumer, error) {
	cons, err := b.Consumer(ctx, bus.Inbound, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "Case service: threads resident messages into cases",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       60 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 4 * batchSize,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, err
	}
	iter, err := cons.Messages(jetstream.PullMaxMessages(2 * batchSize))
	if err != nil {
		return nil, err
	}
	if retryDelay <= 0 {
		retryDelay = time.Second
	}
	c := &Consumer{ctx: context.WithoutCancel(ctx), svc: s, iter: iter, done: make(chan struct{}), log: s.log, retryDelay: retryDelay}
	go c.run()
	return c, nil
}

// Drain stops fetching, finishes what was already fetched and returns once
// the consumer has stopped. When ctx ends first, messages not yet started
// are left for redelivery, and the batch in hand (bounded by the database
// timeout) still completes.
func (c *Consumer) Drain(ctx context.Context) error {
	c.iter.Drain()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.iter.Stop()
		<-c.done
		return ctx.Err()
	}
}

// dbTimeout bounds one batch's transaction.
const dbTimeout = 60 * time.Second

func (c *Consumer) run() {
	defer close(c.done)
	for {
		first, err := c.iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			c.log.Warn("inbound consumer", "err", err)
			continue
		}
		batch := []jetstream.Msg{first}
		for len(batch) < batchSize {
			m, err := c.iter.Next(jetstream.NextMaxWait(2 * time.Millisecond))
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		c.handle(batch)
	}
}

type pending struct {
	msg jetstream.Msg
	in  channels.Inbound
}

func (c *Consumer) handle(batch []jetstream.Msg) {
	ctx := c.ctx
	items := make([]pending, 0, len(batch))
	for _, m := range batch {
		var in channels.Inbound
		err := json.Unmarshal(m.Data(), &in)
		if err == nil {
			err = in.Validate()
		}
		if err != nil {
			// Ingest only publishes valid messages, and no retry can mend
			// this one: keep it aside, whole.
			c.reject(ctx, m, err)
			continue
		}
		items = append(items, pending{msg: m, in: in})
	}
	if len(items) == 0 {
		return
	}
	// Happy path: the whole batch in one transaction, tried again once if
	// it lost a deadlock to a concurrent batch. If it still fails, each
	// message gets its own, so one bad message cannot hold up the others.
	if len(items) > 1 {
		results, err := c.svc.storeBatch(ctx, items)
		if store.IsSerializationFailure(err) {
			results, err = c.svc.storeBatch(ctx, items)
		}
		switch {
		case err == nil:
			c.done1(items, results)
			return
		case !unstorable(err) && !store.IsSerializationFailure(err):
			// The database is unavailable: one message at a time would
			// only fail slower. Offer the whole batch again later.
			for _, it := range items {
				c.retry(it, err)
			}
			return
		}
	}
	for _, it := range items {
		results, err := c.svc.storeBatch(ctx, []pending{it})
		switch {
		case err == nil:
			c.done1([]pending{it}, results)
		case unstorable(err):
			c.reject(ctx, it.msg, err)
		default:
			c.retry(it, err)
		}
	}
}

// unstorable reports whether a message failed for what it holds, or for a
// channel account no longer configured, rather than for the database being
// unavailable: trying it again cannot help.
func unstorable(err error) bool {
	return errors.Is(err, ErrUnknownAccount) || store.IsDataError(err)
}

// reject keeps a message the case service cannot store in inbound_rejected,
// with the reason, and only then takes it off the stream. If even that
// fails, the message stays in the stream for later.
func (c *Consumer) reject(ctx context.Context, m jetstream.Msg, reason error) {
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	err := c.svc.db.WithContext(ctx).Exec(`INSERT INTO inbound_rejected (subject, data, reason) VALUES (?, ?, ?)`,
		m.Subject(), m.Data(), reason.Error()).Error
	if err != nil {
		c.log.Warn("inbound message could not be set aside, will retry", "subject", m.Subject(), "err", err)
		_ = m.NakWithDelay(maxRetryDelay)
		return
	}
	c.log.Error("inbound message rejected and kept in inbound_rejected", "subject", m.Subject(), "reason", reason)
	c.svc.metrics.InboundProcessed.WithLabelValues("rejected").Inc()
	_ = m.Ack()
}

func (c *Consumer) done1(items []pending, results []Stored) {
	for i, it := range items {
		_ = it.msg.Ack()
		r := results[i]
		switch {
		case r.Duplicate:
			c.svc.metrics.InboundProcessed.WithLabelValues("duplicate").Inc()
		default:
			c.svc.metrics.InboundProcessed.WithLabelValues("stored").Inc()
			if r.Created {
				c.svc.metrics.CasesCreated.WithLabelValues(r.Channel).Inc()
			}
		}
	}
	c.svc.wake()
}

func (c *Consumer) retry(it pending, err error) {
	delay := c.retryDelay
	if md, mdErr := it.msg.Metadata(); mdErr == nil {
		for i := uint64(1); i < md.NumDelivered && delay < maxRetryDelay; i++ {
			delay *= 2
		}
	}
	delay = min(delay, maxRetryDelay)
	c.log.Warn("inbound message not stored, will retry", "dedupe_key", it.in.DedupeKey, "in", delay, "err", err)
	c.svc.metrics.InboundProcessed.WithLabelValues("failed").Inc()
	_ = it.msg.NakWithDelay(delay)
}

// storeBatch stores messages in one transaction, in order.
func (s *Service) storeBatch(ctx context.Context, items []pending) ([]Stored, error) {
	ins := make([]channels.Inbound, len(items))
	for i, it := range items {
		ins[i] = it.in
	}
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	var results []Stored
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		var err error
		results, err = s.StoreBatch(tx, ins)
		return err
	})
	return results, err
}
