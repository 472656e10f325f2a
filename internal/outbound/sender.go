package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lib/pq"
	"github.com/nats-io/nats.go/jetstream"
	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/metrics"
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
	// SendTimeout bounds one call to a network.
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
		c.SendTimeout = 30 * time.Second
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

	mu      sync.Mutex
	blocked map[string]time.Time // account → rate limit lifts at

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
		blocked: map[string]time.Time{}, done: make(chan struct{})}
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
	s.iter, err = cons.Messages(jetstream.PullMaxMessages(50))
	if err != nil {
		return err
	}
	go s.run()
	return nil
}

// Drain stops fetching, finishes the current send and waits.
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
		return ctx.Err()
	}
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
	ctx := s.ctx
	var out channels.Outbound
	if err := json.Unmarshal(m.Data(), &out); err != nil || out.MessageID == 0 {
		s.log.Error("outbound message rejected", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	key := out.Channel + "/" + out.Account
	attempt := uint64(1)
	if md, err := m.Metadata(); err == nil {
		attempt = md.NumDelivered
	}

	var state struct {
		DeliveryStatus string
		ExternalIDs    pq.StringArray `gorm:"type:text[]"`
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT delivery_status, external_ids
		FROM messages WHERE id = ?`, out.MessageID).Scan(&state).Error; err != nil {
		s.log.Warn("outbound: database unavailable, will retry", "message_id", out.MessageID, "err", err)
		_ = m.NakWithDelay(s.backoff(attempt))
		return
	}
	switch state.DeliveryStatus {
	case "":
		s.log.Error("outbound message has no row", "message_id", out.MessageID)
		_ = m.Term()
		return
	case "sent", "failed":
		// Already done: a redelivery after the ack was lost.
		_ = m.Ack()
		return
	}
	out.SentParts = state.ExternalIDs

	adapter, ok := s.adapters[key]
	if !ok {
		s.fail(ctx, m, out, fmt.Sprintf("channel account %s is not configured for sending", key))
		return
	}
	if wait := s.rateLimitWait(key); wait > 0 {
		_ = m.NakWithDelay(wait)
		return
	}

	sendCtx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	ids, err := adapter.Send(sendCtx, out, func(_ int, id string) error {
		return s.db.WithContext(ctx).Exec(`UPDATE messages SET external_ids = array_append(external_ids, ?),
			send_attempts = ? WHERE id = ?`, id, attempt, out.MessageID).Error
	})
	cancel()
	if err == nil {
		now := s.now().UTC()
		if dbErr := s.db.WithContext(ctx).Exec(`UPDATE messages SET delivery_status = 'sent', external_id = ?,
			external_ids = ?, sent_at = ?, failure_reason = '', send_attempts = ? WHERE id = ?`,
			ids[0], pq.StringArray(ids), now, attempt, out.MessageID).Error; dbErr != nil {
			// The network has it; record it on the next delivery, which
			// sends nothing more since every part is in external_ids.
			s.log.Warn("outbound: sent but not recorded, will retry the record", "message_id", out.MessageID, "err", dbErr)
			_ = m.NakWithDelay(s.backoff(attempt))
			return
		}
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
		s.recordAttempt(ctx, out.MessageID, attempt, se.Reason)
		_ = m.NakWithDelay(wait)
	case channels.Permanent:
		s.fail(ctx, m, out, se.Reason)
	default:
		if attempt >= uint64(s.cfg.MaxAttempts) {
			s.fail(ctx, m, out, fmt.Sprintf("gave up after %d attempts: %s", attempt, se.Reason))
			return
		}
		s.metrics.Outbound.WithLabelValues(out.Channel, "retried").Inc()
		s.log.Warn("outbound send failed, will retry", "message_id", out.MessageID, "attempt", attempt, "err", err)
		s.recordAttempt(ctx, out.MessageID, attempt, se.Reason)
		_ = m.NakWithDelay(s.backoff(attempt))
	}
}

func (s *Sender) recordAttempt(ctx context.Context, id int64, attempt uint64, reason string) {
	_ = s.db.WithContext(ctx).Exec(`UPDATE messages SET send_attempts = ?, failure_reason = ? WHERE id = ?`,
		attempt, reason, id).Error
}

func (s *Sender) fail(ctx context.Context, m jetstream.Msg, out channels.Outbound, reason string) {
	attempt := uint64(1)
	if md, err := m.Metadata(); err == nil {
		attempt = md.NumDelivered
	}
	if err := s.db.WithContext(ctx).Exec(`UPDATE messages SET delivery_status = 'failed', failure_reason = ?,
		send_attempts = ? WHERE id = ?`, reason, attempt, out.MessageID).Error; err != nil {
		_ = m.NakWithDelay(s.backoff(attempt))
		return
	}
	s.metrics.Outbound.WithLabelValues(out.Channel, "failed").Inc()
	s.log.Warn("outbound message failed", "message_id", out.MessageID, "reason", reason)
	_ = m.Ack()
}

func (s *Sender) backoff(attempt uint64) time.Duration {
	d := s.cfg.BaseBackoff
	for i := uint64(1); i < attempt && d < s.cfg.MaxBackoff; i++ {
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
