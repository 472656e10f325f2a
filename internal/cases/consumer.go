package cases

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
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

// AckWait is how long JetStream waits for the case service to settle a
// message it handed out before offering it again, to this replica or
// another. It is short so that messages held by a process that died come
// back within seconds; a batch that takes longer keeps its messages by
// telling JetStream, every AckWait/4, that they are in progress.
const AckWait = 5 * time.Second

// idleWait is how long one wait for a new message lasts before it is
// asked for again.
const idleWait = 5 * time.Second

// Consumer feeds INBOUND into the case service. It holds no more than the
// batch it is storing: every message it was handed is in that batch and
// kept in progress until settled.
type Consumer struct {
	// ctx is the service's base context: values of the start-up context,
	// never cancelled, so a batch in flight at shutdown still commits.
	ctx  context.Context
	svc  *Service
	cons jetstream.Consumer
	// halt ends waiting for new messages; done is closed once the
	// consumer has stopped.
	halted context.Context
	halt   context.CancelFunc
	done   chan struct{}
	log    *slog.Logger
	// retryDelay is the first wait before a failed message is offered
	// again; it doubles per delivery up to maxRetryDelay.
	retryDelay time.Duration
	ackWait    time.Duration
}

// ConsumerOption changes how the consumer reads.
type ConsumerOption func(*Consumer)

// WithAckWait sets the consumer's ack wait instead of AckWait.
func WithAckWait(d time.Duration) ConsumerOption {
	return func(c *Consumer) {
		if d > 0 {
			c.ackWait = d
		}
	}
}

// maxRetryDelay caps the wait between deliveries of a message the database
// could not take (for instance while PostgreSQL is down).
const maxRetryDelay = 30 * time.Second

// StartConsumer creates the durable consumer and starts reading. Messages
// are acknowledged only after their transaction committed; a message the
// database cannot take is offered again later, without limit, so nothing a
// resident sent is lost while PostgreSQL is away. Every replica reads the
// same durable consumer, so each message goes to one of them at a time.
func (s *Service) StartConsumer(ctx context.Context, b *bus.Bus, retryDelay time.Duration, opts ...ConsumerOption) (*Consumer, error) {
	if retryDelay <= 0 {
		retryDelay = time.Second
	}
	c := &Consumer{ctx: context.WithoutCancel(ctx), svc: s, done: make(chan struct{}), log: s.log,
		retryDelay: retryDelay, ackWait: AckWait}
	for _, opt := range opts {
		opt(c)
	}
	cons, err := b.Consumer(ctx, bus.Inbound, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "Case service: threads resident messages into cases",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.ackWait,
		MaxDeliver:    -1,
		MaxAckPending: 4 * batchSize,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, err
	}
	c.cons = cons
	c.halted, c.halt = context.WithCancel(c.ctx)
	go c.run()
	return c, nil
}

// Drain stops fetching, finishes the batch in hand and returns once the
// consumer has stopped. When ctx ends first, it still waits for the batch
// in hand (bounded by the database timeout), so the database is never
// closed under it.
func (c *Consumer) Drain(ctx context.Context) error {
	c.halt()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		<-c.done
		return ctx.Err()
	}
}

// dbTimeout bounds one batch's transaction.
const dbTimeout = 60 * time.Second

func (c *Consumer) run() {
	defer close(c.done)
	for c.halted.Err() == nil {
		batch, err := c.fetch()
		if err != nil && c.halted.Err() == nil {
			c.log.Warn("inbound consumer", "err", err)
			select { // NATS is away: do not spin
			case <-c.halted.Done():
			case <-time.After(time.Second):
			}
		}
		if len(batch) > 0 {
			c.handle(batch)
		}
	}
}

// fetch returns the next batch: what is waiting, up to batchSize, or else
// the next message to arrive with whatever arrived with it.
func (c *Consumer) fetch() ([]jetstream.Msg, error) {
	batch, err := c.fetchNoWait(batchSize)
	if len(batch) > 0 || err != nil {
		return batch, err
	}
	ctx, cancel := context.WithTimeout(c.halted, idleWait)
	defer cancel()
	first, err := c.cons.Next(jetstream.FetchContext(ctx))
	switch {
	case errors.Is(err, nats.ErrTimeout), ctx.Err() != nil:
		return nil, nil
	case err != nil:
		return nil, err
	}
	rest, err := c.fetchNoWait(batchSize - 1)
	return append([]jetstream.Msg{first}, rest...), err
}

func (c *Consumer) fetchNoWait(n int) ([]jetstream.Msg, error) {
	res, err := c.cons.FetchNoWait(n)
	if err != nil {
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range res.Messages() {
		msgs = append(msgs, m)
	}
	return msgs, res.Error()
}

// inProgress tells JetStream, until stopped, that the messages of a batch
// not yet settled are still being worked on, so a batch that takes longer
// than the ack wait (waiting for another replica's locks, a slow
// database) keeps them instead of seeing them handed to another replica.
type inProgress struct {
	mu      sync.Mutex
	settled map[jetstream.Msg]bool
	stop    chan struct{}
	done    chan struct{}
}

func (c *Consumer) keepInProgress(batch []jetstream.Msg) *inProgress {
	p := &inProgress{settled: make(map[jetstream.Msg]bool, len(batch)), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(c.ackWait / 4)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			p.mu.Lock()
			for _, m := range batch {
				if !p.settled[m] {
					_ = m.InProgress()
				}
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// settle acks or naks m (through f) and stops keeping it in progress.
func (p *inProgress) settle(m jetstream.Msg, f func() error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.settled[m] = true
	_ = f()
}

// end stops the ticker and waits for it.
func (p *inProgress) end() {
	close(p.stop)
	<-p.done
}

type pending struct {
	msg jetstream.Msg
	in  channels.Inbound
}

func (c *Consumer) handle(batch []jetstream.Msg) {
	ctx := c.ctx
	p := c.keepInProgress(batch)
	defer p.end()
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
			c.reject(ctx, p, m, err)
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
			c.done1(p, items, results)
			return
		case !unstorable(err) && !store.IsSerializationFailure(err):
			// The database is unavailable: one message at a time would
			// only fail slower. Offer the whole batch again later.
			for _, it := range items {
				c.retry(p, it, err)
			}
			return
		}
	}
	for _, it := range items {
		results, err := c.svc.storeBatch(ctx, []pending{it})
		switch {
		case err == nil:
			c.done1(p, []pending{it}, results)
		case unstorable(err):
			c.reject(ctx, p, it.msg, err)
		default:
			c.retry(p, it, err)
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
func (c *Consumer) reject(ctx context.Context, p *inProgress, m jetstream.Msg, reason error) {
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	err := c.svc.db.WithContext(ctx).Exec(`INSERT INTO inbound_rejected (subject, data, reason) VALUES (?, ?, ?)`,
		m.Subject(), m.Data(), reason.Error()).Error
	if err != nil {
		c.log.Warn("inbound message could not be set aside, will retry", "subject", m.Subject(), "err", err)
		p.settle(m, func() error { return m.NakWithDelay(maxRetryDelay) })
		return
	}
	c.log.Error("inbound message rejected and kept in inbound_rejected", "subject", m.Subject(), "reason", reason)
	c.svc.metrics.InboundProcessed.WithLabelValues("rejected").Inc()
	p.settle(m, m.Ack)
}

func (c *Consumer) done1(p *inProgress, items []pending, results []Stored) {
	for i, it := range items {
		p.settle(it.msg, it.msg.Ack)
		r := results[i]
		switch {
		case r.Receipt:
			c.svc.metrics.InboundProcessed.WithLabelValues("receipt").Inc()
		case r.Change:
			c.svc.metrics.InboundProcessed.WithLabelValues("change").Inc()
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

func (c *Consumer) retry(p *inProgress, it pending, err error) {
	delay := c.retryDelay
	if md, mdErr := it.msg.Metadata(); mdErr == nil {
		for i := uint64(1); i < md.NumDelivered && delay < maxRetryDelay; i++ {
			delay *= 2
		}
	}
	delay = min(delay, maxRetryDelay)
	c.log.Warn("inbound message not stored, will retry", "dedupe_key", it.in.DedupeKey, "in", delay, "err", err)
	c.svc.metrics.InboundProcessed.WithLabelValues("failed").Inc()
	p.settle(it.msg, func() error { return it.msg.NakWithDelay(delay) })
}

// storeBatch stores messages in one transaction, in order; delivery
// receipts and residents' edits and removals among them update the
// messages they name in the same transaction.
func (s *Service) storeBatch(ctx context.Context, items []pending) ([]Stored, error) {
	var ins, receipts, changes []channels.Inbound
	for _, it := range items {
		switch {
		case it.in.Receipt != nil:
			receipts = append(receipts, it.in)
		case it.in.Change != nil:
			changes = append(changes, it.in)
		default:
			ins = append(ins, it.in)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	var stored []Stored
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		if err := s.ApplyReceipts(tx, receipts); err != nil {
			return err
		}
		if err := s.ApplyChanges(tx, changes); err != nil {
			return err
		}
		if len(ins) == 0 {
			return nil
		}
		var err error
		stored, err = s.StoreBatch(tx, ins)
		return err
	})
	if err != nil {
		return nil, err
	}
	// Results in the items' order; a receipt's is a receipt.
	results := make([]Stored, len(items))
	for i, it := range items {
		if it.in.Receipt != nil || it.in.Change != nil {
			results[i] = Stored{Receipt: it.in.Receipt != nil, Change: it.in.Change != nil, Channel: it.in.Channel}
			continue
		}
		results[i], stored = stored[0], stored[1:]
	}
	return results, nil
}
