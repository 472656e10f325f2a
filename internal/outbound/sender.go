package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/metrics"
	"github.com/citizeninbox/inbox/internal/store"
)

// Adapter sends one reply through a network. onPart is called after each
// post of a reply that goes out in several parts, so progress survives a
// crash; it returns every part's network id.
type Adapter interface {
	Send(ctx context.Context, out channels.Outbound, onPart func(index int, id string) error) ([]string, error)
}

// SenderConfig tunes retries.
type SenderConfig struct {
	// MaxAttempts is how many times a retryable failure is tried before the
	// message is marked failed.
	MaxAttempts int
	// BaseBackoff is the first wait after a retryable failure; it doubles
	// per attempt up to MaxBackoff.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// SendTimeout bounds one call to a network (the adapters' HTTP client
	// is built with it); a claim on a reply lasts this long plus a margin,
	// and is renewed after every part of a thread.
	SendTimeout time.Duration
}

func (c *SenderConfig) defaults() {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.BaseBackoff <= 0 {
		c.BaseBackoff = 2 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Minute
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 15 * time.Second
	}
}

// ConsumerName is the durable consumer the sender reads OUTBOUND with.
const ConsumerName = "sender"

// Sender delivers replies from OUTBOUND.
type Sender struct {
	db       *gorm.DB
	adapters map[string]Adapter // "channel/account"
	metrics  *metrics.Metrics
	log      *slog.Logger
	cfg      SenderConfig
	now      func() time.Time

	mu         sync.Mutex
	blocked    map[string]time.Time // account → rate limit lifts at
	unrecorded map[int64][]string   // message → parts sent, not yet in the database

	// ctx is the base context: start-up values, never cancelled, so a send
	// in flight at shutdown is recorded.
	ctx  context.Context
	iter jetstream.MessagesContext
	done chan struct{}
}

// NewSender builds a sender with one adapter per "channel/account".
func NewSender(db *gorm.DB, adapters map[string]Adapter, m *metrics.Metrics, log *slog.Logger, cfg SenderConfig) *Sender {
	cfg.defaults()
	return &Sender{db: db, adapters: adapters, metrics: m, log: log, cfg: cfg, now: time.Now,
		blocked: map[string]time.Time{}, unrecorded: map[int64][]string{}, done: make(chan struct{})}
}

// Start creates the durable consumer and starts sending.
func (s *Sender) Start(ctx context.Context, b *bus.Bus) error {
	cons, err := b.Consumer(ctx, bus.Outbound, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "Sends advisers' replies to the networks",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       2 * time.Minute,
		MaxDeliver:    -1,
		MaxAckPending: 1000,
	})
	if err != nil {
		return err
	}
	s.ctx = context.WithoutCancel(ctx)
	// Fetch one at a time: a reply waiting in a local buffer while others
	// are sent would run down its ack wait and be offered elsewhere.
	s.iter, err = cons.Messages(jetstream.PullMaxMessages(1))
	if err != nil {
		return err
	}
	go s.run()
	return nil
}

// Drain stops fetching and waits for the reply being sent, if any, to be
// sent and recorded: a send cut short would be sent again. That wait is
// bounded by the network and database timeouts, not by ctx, which only
// stops further fetching early.
func (s *Sender) Drain(ctx context.Context) error {
	if s.iter == nil {
		return nil
	}
	s.iter.Drain()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.iter.Stop()
		<-s.done
		return ctx.Err()
	}
}

// dbTimeout bounds each database call the sender makes, so a database that
// stops answering cannot hold a reply past its claim.
const dbTimeout = 10 * time.Second

func (s *Sender) dbCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, dbTimeout)
}

func (s *Sender) run() {
	defer close(s.done)
	for {
		m, err := s.iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			s.log.Warn("outbound consumer", "err", err)
			continue
		}
		s.handle(m)
	}
}

func (s *Sender) handle(m jetstream.Msg) {
	var out channels.Outbound
	if err := json.Unmarshal(m.Data(), &out); err != nil || out.MessageID == 0 {
		// The relay only publishes what the case service wrote; the row
		// itself is still in the database and shows as queued.
		s.log.Error("outbound message unreadable", "subject", m.Subject(), "bytes", len(m.Data()), "message_id", out.MessageID, "err_type", fmt.Sprintf("%T", err))
		_ = m.Term()
		return
	}
	key := out.Channel + "/" + out.Account
	adapter, ok := s.adapters[key]
	if !ok {
		s.fail(m, out, fmt.Sprintf("channel account %s is not configured for sending", key))
		return
	}
	if wait := s.rateLimitWait(key); wait > 0 {
		_ = m.NakWithDelay(wait)
		return
	}

	claim, err := s.claim(out.MessageID)
	if err != nil {
		s.log.Warn("outbound: database unavailable, will retry", "message_id", out.MessageID, "err", err)
		_ = m.NakWithDelay(s.cfg.BaseBackoff)
		return
	}
	switch claim.state {
	case claimDone:
		_ = m.Ack() // a redelivery after the ack was lost
		return
	case claimMissing:
		s.log.Error("outbound message has no row", "message_id", out.MessageID)
		_ = m.Term()
		return
	case claimHeld:
		// Another sender holds it; look again when its lease ends.
		_ = m.NakWithDelay(s.lease())
		return
	}
	out.SentParts = s.knownParts(out.MessageID, claim.parts)
	_ = m.InProgress()

	// Each network call is bounded by the adapter's HTTP client; a thread
	// takes as long as its parts need, renewing the claim after each.
	ids, err := adapter.Send(s.ctx, out, func(_ int, id string) error {
		s.remember(out.MessageID, id)
		_ = m.InProgress()
		if err := s.recordPart(out.MessageID, id); err != nil {
			// Keep going: the part is remembered here and recorded with
			// the rest when the reply is marked sent.
			s.log.Warn("outbound: part sent but not recorded yet", "message_id", out.MessageID, "id", id, "err", err)
		}
		return nil
	})
	if err == nil {
		if dbErr := s.markSent(out.MessageID, ids); dbErr != nil {
			// The network has it all; the next delivery sends nothing more
			// and only records it.
			s.log.Warn("outbound: sent but not recorded, will retry the record", "message_id", out.MessageID, "err", dbErr)
			_ = m.NakWithDelay(s.cfg.BaseBackoff)
			return
		}
		s.forget(out.MessageID)
		s.metrics.Outbound.WithLabelValues(out.Channel, "sent").Inc()
		_ = m.Ack()
		return
	}

	se := channels.AsSendError(err)
	if se.Ambiguous {
		s.metrics.Outbound.WithLabelValues(out.Channel, "ambiguous").Inc()
	}
	switch se.Kind {
	case channels.RateLimited:
		s.metrics.Outbound.WithLabelValues(out.Channel, "rate_limited").Inc()
		wait := max(se.RetryAt.Sub(s.now()), 100*time.Millisecond)
		s.blockUntil(key, s.now().Add(wait))
		s.log.Info("outbound rate limited", "account", key, "message_id", out.MessageID, "retry_in", wait)
		s.release(m, out.MessageID, se.Reason, wait)
	case channels.Permanent:
		s.fail(m, out, se.Reason)
	default:
		failures, dbErr := s.countFailure(out.MessageID, se.Reason)
		if dbErr != nil {
			_ = m.NakWithDelay(s.cfg.BaseBackoff)
			return
		}
		if failures >= s.cfg.MaxAttempts {
			s.fail(m, out, fmt.Sprintf("gave up after %d failed attempts: %s", failures, se.Reason))
			return
		}
		s.metrics.Outbound.WithLabelValues(out.Channel, "retried").Inc()
		s.log.Warn("outbound send failed, will retry", "message_id", out.MessageID, "failures", failures, "err", err)
		_ = m.NakWithDelay(s.backoff(failures))
	}
}

type claimState int

const (
	claimTaken claimState = iota
	claimDone
	claimHeld
	claimMissing
)

type claimResult struct {
	state claimState
	parts []string
}

// lease is how long a claim keeps other senders off a reply.
func (s *Sender) lease() time.Duration { return s.cfg.SendTimeout + 30*time.Second }

func (s *Sender) leaseInterval() string {
	return fmt.Sprintf("%d milliseconds", s.lease().Milliseconds())
}

// claim marks a reply as being sent by this sender, for one lease, and
// counts the attempt. A reply already sent or failed, or held by another
// sender whose lease has not run out, is not claimed.
func (s *Sender) claim(id int64) (claimResult, error) {
	ctx, cancel := s.dbCtx()
	defer cancel()
	var row struct {
		ID          int64
		ExternalIDs store.Strings `gorm:"type:text[]"`
	}
	err := s.db.WithContext(ctx).Raw(`UPDATE messages
		SET delivery_status = 'sending', sending_until = now() + ?::interval, send_attempts = send_attempts + 1
		WHERE id = ? AND direction = 'outbound'
		  AND (delivery_status = 'queued' OR (delivery_status = 'sending' AND sending_until < now()))
		RETURNING id, external_ids`, s.leaseInterval(), id).Scan(&row).Error
	if err != nil {
		return claimResult{}, err
	}
	if row.ID != 0 {
		return claimResult{state: claimTaken, parts: row.ExternalIDs}, nil
	}
	var status string
	if err := s.db.WithContext(ctx).Raw(`SELECT delivery_status FROM messages WHERE id = ?`, id).Scan(&status).Error; err != nil {
		return claimResult{}, err
	}
	switch status {
	case "":
		return claimResult{state: claimMissing}, nil
	case "sending":
		return claimResult{state: claimHeld}, nil
	}
	return claimResult{state: claimDone}, nil
}

// recordPart stores one sent part's id on the message, and as a post that
// residents' replies thread onto, and renews the claim.
func (s *Sender) recordPart(id int64, part string) error {
	ctx, cancel := s.dbCtx()
	defer cancel()
	return store.Write(ctx, s.db, func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE messages SET external_ids = array_append(external_ids, ?),
			sending_until = now() + ?::interval
			WHERE id = ? AND NOT (? = ANY(external_ids))`, part, s.leaseInterval(), id, part).Error; err != nil {
			return err
		}
		return insertPosts(tx, id, []string{part})
	})
}

func insertPosts(tx *gorm.DB, id int64, parts []string) error {
	return tx.Exec(`INSERT INTO message_posts (channel_account_id, external_id, message_id, case_id)
		SELECT m.channel_account_id, p, m.id, m.case_id FROM messages m, unnest(?::text[]) AS p
		WHERE m.id = ? ON CONFLICT DO NOTHING`, store.Strings(parts), id).Error
}

func (s *Sender) markSent(id int64, ids []string) error {
	ctx, cancel := s.dbCtx()
	defer cancel()
	return store.Write(ctx, s.db, func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE messages SET delivery_status = 'sent', external_id = ?, external_ids = ?,
			sent_at = ?, failure_reason = '', sending_until = NULL WHERE id = ?`,
			ids[0], store.Strings(ids), s.now().UTC(), id).Error; err != nil {
			return err
		}
		return insertPosts(tx, id, ids)
	})
}

// release hands a reply back to the queue after a send that may succeed
// later, and offers it again after wait.
func (s *Sender) release(m jetstream.Msg, id int64, reason string, wait time.Duration) {
	ctx, cancel := s.dbCtx()
	defer cancel()
	_ = s.db.WithContext(ctx).Exec(`UPDATE messages SET delivery_status = 'queued', sending_until = NULL,
		failure_reason = ? WHERE id = ?`, reason, id).Error
	_ = m.NakWithDelay(wait)
}

// countFailure records a retryable failure and returns how many there were.
func (s *Sender) countFailure(id int64, reason string) (int, error) {
	ctx, cancel := s.dbCtx()
	defer cancel()
	var failures int
	err := s.db.WithContext(ctx).Raw(`UPDATE messages SET delivery_status = 'queued', sending_until = NULL,
		send_failures = send_failures + 1, failure_reason = ? WHERE id = ? RETURNING send_failures`,
		reason, id).Scan(&failures).Error
	return failures, err
}

// fail marks a reply failed with the network's reason.
func (s *Sender) fail(m jetstream.Msg, out channels.Outbound, reason string) {
	ctx, cancel := s.dbCtx()
	defer cancel()
	if err := s.db.WithContext(ctx).Exec(`UPDATE messages SET delivery_status = 'failed', failure_reason = ?,
		sending_until = NULL WHERE id = ? AND delivery_status IN ('queued', 'sending')`, reason, out.MessageID).Error; err != nil {
		_ = m.NakWithDelay(s.cfg.BaseBackoff)
		return
	}
	s.forget(out.MessageID)
	s.metrics.Outbound.WithLabelValues(out.Channel, "failed").Inc()
	s.log.Warn("outbound message failed", "message_id", out.MessageID, "reason", reason)
	_ = m.Ack()
}

// Parts sent but not yet recorded in the database (it was unavailable) are
// remembered here, so a retry by this sender does not post them again.

func (s *Sender) remember(id int64, part string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unrecorded[id] = append(s.unrecorded[id], part)
}

func (s *Sender) forget(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.unrecorded, id)
}

// knownParts is the longer of what the database and this sender know was
// sent: parts are posted in order, so the longer list includes the other.
func (s *Sender) knownParts(id int64, recorded []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mem := s.unrecorded[id]; len(mem) > len(recorded) {
		return append([]string(nil), mem...)
	}
	return recorded
}

func (s *Sender) backoff(attempt int) time.Duration {
	d := s.cfg.BaseBackoff
	for i := 1; i < attempt && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, s.cfg.MaxBackoff)
}

func (s *Sender) rateLimitWait(key string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.blocked[key]
	if !ok {
		return 0
	}
	if wait := until.Sub(s.now()); wait > 0 {
		return wait
	}
	delete(s.blocked, key)
	return 0
}

func (s *Sender) blockUntil(key string, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until.After(s.blocked[key]) {
		s.blocked[key] = until
	}
}
