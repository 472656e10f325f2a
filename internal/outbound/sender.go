package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/metrics"
)

// SenderConfig tunes retries and claims.
type SenderConfig struct {
	// MaxAttempts is how many times a retryable failure is tried before the
	// message is marked failed.
	MaxAttempts int
	// BaseBackoff is the first wait after a retryable failure; it grows
	// exponentially per failure, with jitter, up to about MaxBackoff.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// SendTimeout bounds one call to a network (the drivers' HTTP client is
	// built with it).
	SendTimeout time.Duration
	// Lease is how long a claim on a reply keeps other senders off it
	// without being renewed. The sender renews it, and tells JetStream the
	// reply is in progress, every third of a lease while it works on the
	// reply; a sender that stops renewing (it stopped, or lost the
	// database) leaves the reply to another after one lease.
	Lease time.Duration
	// Responses records, in the transaction that marks a reply sent, the
	// response it makes for the supervisors' figures; nil records none.
	Responses ResponseRecorder
}

// ResponseRecorder records the response a reply the network accepted at
// at makes on its case (the case service): in tx, before the case records
// the reply as its first or latest response.
type ResponseRecorder interface {
	RecordResponse(tx *gorm.DB, caseID int64, responder *int64, at time.Time) error
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
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
}

// ConsumerName is the durable consumer the sender reads one channel
// account's replies with. Every replica that can send for the account
// reads from it; a replica without the account's driver does not, so the
// account's replies wait for one that has it.
func ConsumerName(account string) string { return "sender-" + account }

// legacyConsumer read every account's replies through one consumer; it
// would overlap the per-account ones on the work-queue stream.
const legacyConsumer = "sender"

// fetchWait bounds one wait for the next reply of an account.
const fetchWait = 10 * time.Second

// Sender delivers replies from OUTBOUND: one worker per channel account,
// so a slow network or account never holds up another's replies.
type Sender struct {
	db      *gorm.DB
	metrics *metrics.Metrics
	log     *slog.Logger
	cfg     SenderConfig
	limits  *rateLimits

	// base carries start-up values and is never cancelled, so a send in
	// flight at shutdown is recorded; hard is cancelled when a drain runs
	// out of time; stopped ends fetching.
	base    context.Context
	hard    context.Context
	abort   context.CancelFunc
	stopped context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup

	bus     *bus.Bus
	mu      sync.Mutex
	senders map[string]channels.Sender // by channel account slug
	workers map[string]*worker         // by channel account slug
}

// NewSender builds a sender with one driver per channel account slug.
func NewSender(db *gorm.DB, senders map[string]channels.Sender, m *metrics.Metrics, log *slog.Logger, cfg SenderConfig) *Sender {
	cfg.defaults()
	return &Sender{db: db, senders: senders, metrics: m, log: log, cfg: cfg}
}

// worker sends one channel account's replies, one at a time.
type worker struct {
	account string
	cons    jetstream.Consumer
	// stopped ends this worker alone, when its account leaves the
	// configuration.
	stopped context.Context
	stop    context.CancelFunc
	// refusal pauses the worker while the network refuses the account's
	// credential.
	refusal refusal
}

// Start creates the shared rate-limit bucket and one durable consumer per
// account this replica can send for, and starts sending.
func (s *Sender) Start(ctx context.Context, b *bus.Bus) error {
	kv, err := b.RateLimitBucket(ctx)
	if err != nil {
		return err
	}
	s.limits = newRateLimits(kv, s.log)
	if err := b.JS.DeleteConsumer(ctx, b.Stream(bus.Outbound), legacyConsumer); err != nil &&
		!errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	s.bus = b
	s.base = context.WithoutCancel(ctx)
	s.hard, s.abort = context.WithCancel(s.base)
	s.stopped, s.stop = context.WithCancel(s.base)
	s.workers = map[string]*worker{}
	s.mu.Lock()
	senders := s.senders
	s.mu.Unlock()
	return s.Use(ctx, senders)
}

// Use makes the sender send for exactly these accounts, as a configuration
// reload leaves them: a worker starts for each new account, the worker of
// an account no longer configured stops after the reply in hand (its
// replies wait for a replica that has the account), and accounts that stay
// are sent with their new driver from the next reply on.
func (s *Sender) Use(ctx context.Context, senders map[string]channels.Sender) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, account := range slices.Sorted(maps.Keys(senders)) {
		if w, running := s.workers[account]; running {
			// Opened again with what may be a new credential: an account
			// whose credential was refused tries its waiting replies.
			w.refusal.lift()
			continue
		}
		cons, err := s.bus.Consumer(ctx, bus.Outbound, jetstream.ConsumerConfig{
			Durable:       ConsumerName(account),
			Description:   "Sends advisers' replies on channel account " + account,
			FilterSubject: s.bus.OutboundSubject("*", account),
			AckPolicy:     jetstream.AckExplicitPolicy,
			// The sender says a reply is in progress every third of a
			// lease; one held by a sender that stopped comes back after one.
			AckWait:       s.cfg.Lease,
			MaxDeliver:    -1,
			MaxAckPending: 1000,
		})
		if err != nil {
			return err
		}
		w := &worker{account: account, cons: cons}
		w.stopped, w.stop = context.WithCancel(s.stopped)
		s.workers[account] = w
		s.wg.Go(func() { s.work(w) })
	}
	for account, w := range s.workers {
		if _, ok := senders[account]; !ok {
			w.stop()
			delete(s.workers, account)
		}
	}
	s.senders = senders
	return nil
}

// driver returns the account's sender, nil when the account has left the
// configuration.
func (s *Sender) driver(account string) channels.Sender {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.senders[account]
}

// Drain stops fetching and waits for the replies being sent, if any, to be
// sent and recorded: a send cut short would be sent again. When ctx ends
// first, sends in flight and retried records are abandoned.
func (s *Sender) Drain(ctx context.Context) error {
	if s.stop == nil {
		return nil
	}
	s.stop()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.abort()
		return nil
	case <-ctx.Done():
		s.abort()
		<-done
		return ctx.Err()
	}
}

// dbTimeout bounds each database call the sender makes, so a database that
// stops answering cannot hold a reply past its claim.
const dbTimeout = 10 * time.Second

func (s *Sender) dbCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.base, dbTimeout)
}

// work fetches one account's replies one at a time (none waits in a local
// buffer while another is sent, running down its ack wait), and fetches
// nothing while the account is rate limited.
func (s *Sender) work(w *worker) {
	for w.stopped.Err() == nil {
		w.refusal.waitLifted(w.stopped)
		if w.stopped.Err() != nil {
			return
		}
		if wait := s.limits.wait(w.stopped, w.account); wait > 0 {
			s.pause(w, wait)
			continue
		}
		ctx, cancel := context.WithTimeout(w.stopped, fetchWait)
		m, err := w.cons.Next(jetstream.FetchContext(ctx))
		cancel()
		switch {
		case w.stopped.Err() != nil:
			if m != nil {
				_ = m.Nak()
			}
			return
		case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
			continue
		case err != nil:
			s.log.Warn("outbound consumer", "account", w.account, "err", err)
			s.pause(w, time.Second)
			continue
		}
		s.handle(w, m)
	}
}

// pause waits for d, or until the worker stops.
func (s *Sender) pause(w *worker, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.stopped.Done():
	}
}

func (s *Sender) handle(w *worker, m jetstream.Msg) {
	var out channels.Outbound
	if err := json.Unmarshal(m.Data(), &out); err != nil || out.MessageID == 0 {
		// The relay only publishes what the case service wrote; the row
		// itself is still in the database and shows as queued.
		s.log.Error("outbound message unreadable", "subject", m.Subject(), "bytes", len(m.Data()), "message_id", out.MessageID, "err_type", fmt.Sprintf("%T", err))
		_ = m.Term()
		return
	}
	// Another replica may have met the account's rate limit since the fetch.
	if wait := s.limits.wait(s.base, w.account); wait > 0 {
		_ = m.NakWithDelay(wait)
		return
	}

	driver := s.driver(w.account)
	if driver == nil {
		// The account left this replica's configuration since the fetch.
		_ = m.NakWithDelay(s.cfg.BaseBackoff)
		return
	}

	claimedAt := time.Now()
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
		_ = m.NakWithDelay(claim.heldFor + 100*time.Millisecond)
		return
	}
	out.SentParts = claim.parts
	_ = m.InProgress()

	sendCtx, cancelSend := context.WithCancelCause(s.hard)
	defer cancelSend(nil)
	l := s.newLease(m, out, claim.owner, claimedAt, cancelSend)
	l.keepAlive()
	// Each part is recorded before the next goes out; a part the database
	// cannot take yet is retried, the reply held here meanwhile, so no
	// replica ever posts it again.
	ids, err := driver.Send(sendCtx, out, func(_ int, id string) error {
		return l.durably("sent part", func(ctx context.Context) (bool, error) { return l.recordPart(ctx, id) })
	})
	if err == nil && len(ids) == 0 {
		err = &channels.SendError{Kind: channels.Permanent, Reason: "the network accepted the reply without an id"}
	}
	if err == nil {
		err = l.durably("sent reply", func(ctx context.Context) (bool, error) { return l.markSent(ctx, ids) })
		if err == nil {
			l.end()
			s.metrics.Outbound.WithLabelValues(out.Channel, "sent").Inc()
			_ = m.Ack()
			s.markAccepted(w.account)
			return
		}
	}
	l.end()
	s.failed(w, l, out, err, context.Cause(sendCtx))
}

// failed handles a send that did not go through: err is what the driver
// (or recording) returned, cause why the send was cancelled, if it was.
func (s *Sender) failed(w *worker, l *lease, out channels.Outbound, err, cause error) {
	m := l.msg
	switch {
	case errors.Is(err, errClaimLost) || errors.Is(cause, errClaimLost):
		s.lostClaim(out)
		return
	case errors.Is(cause, errLeaseLapsing):
		// Unacknowledged, the reply comes back after its lease, to any
		// sender.
		s.metrics.Outbound.WithLabelValues(out.Channel, "abandoned").Inc()
		s.log.Warn("outbound: claim could not be renewed, reply left for another sender", "message_id", out.MessageID)
		return
	case s.hard.Err() != nil:
		s.log.Error("outbound: stopped before the send was recorded; it will be tried again", "message_id", out.MessageID, "err", err)
		return
	}

	se := channels.AsSendError(err)
	if se.Ambiguous {
		s.metrics.Outbound.WithLabelValues(out.Channel, "ambiguous").Inc()
	}
	ctx, cancel := s.dbCtx()
	defer cancel()
	var owned bool
	var dbErr error
	switch se.Kind {
	case channels.RateLimited:
		s.metrics.Outbound.WithLabelValues(out.Channel, "rate_limited").Inc()
		until := se.RetryAt
		if minimum := time.Now().Add(100 * time.Millisecond); until.Before(minimum) {
			until = minimum
		}
		s.limits.block(s.base, out.Account, until)
		s.log.Info("outbound rate limited", "account", out.Account, "message_id", out.MessageID, "retry_in", time.Until(until))
		if owned, dbErr = l.release(ctx, se.Reason); dbErr == nil && owned {
			_ = m.NakWithDelay(time.Until(until))
		}
	case channels.Unauthorised:
		// The reply waits, not failed, and so does every other reply of the
		// account: this worker fetches nothing more until a reload opens
		// the account again.
		s.metrics.Outbound.WithLabelValues(out.Channel, "unauthorised").Inc()
		w.refusal.refuse()
		var first bool
		if first, dbErr = s.markRefused(ctx, out.Account, se.Reason); dbErr == nil && first {
			s.log.Error("channel account unhealthy: the network refused its credential; its replies wait until the configuration is reloaded with a new one",
				"account", out.Account, "channel", out.Channel, "reason", se.Reason)
		}
		if dbErr == nil {
			if owned, dbErr = l.release(ctx, "waiting: the network refused the account's credential ("+se.Reason+")"); dbErr == nil && owned {
				_ = m.NakWithDelay(s.cfg.BaseBackoff)
			}
		}
	case channels.Permanent:
		if owned, dbErr = l.fail(ctx, se.Reason); dbErr == nil && owned {
			s.metrics.Outbound.WithLabelValues(out.Channel, "failed").Inc()
			s.log.Warn("outbound message failed", "message_id", out.MessageID, "reason", se.Reason)
			_ = m.Ack()
		}
	default:
		var failures int
		var gaveUp bool
		failures, gaveUp, owned, dbErr = l.countFailure(ctx, se.Reason)
		switch {
		case dbErr != nil || !owned:
		case gaveUp:
			s.metrics.Outbound.WithLabelValues(out.Channel, "failed").Inc()
			s.log.Warn("outbound message failed", "message_id", out.MessageID, "failures", failures, "reason", se.Reason)
			_ = m.Ack()
		default:
			s.metrics.Outbound.WithLabelValues(out.Channel, "retried").Inc()
			s.log.Warn("outbound send failed, will retry", "message_id", out.MessageID, "failures", failures, "err", err)
			_ = m.NakWithDelay(s.retryDelay(failures))
		}
	}
	switch {
	case dbErr != nil:
		// The claim stays ours until its lease ends; the redelivery waits
		// for that.
		s.log.Warn("outbound: database unavailable, will retry", "message_id", out.MessageID, "err", dbErr)
		_ = m.NakWithDelay(s.cfg.BaseBackoff)
	case !owned:
		s.lostClaim(out)
	}
}

// lostClaim stops work on a reply another sender took over: that sender
// records and acknowledges it.
func (s *Sender) lostClaim(out channels.Outbound) {
	s.metrics.Outbound.WithLabelValues(out.Channel, "lost_claim").Inc()
	s.log.Warn("outbound: another sender took the reply over, stopping", "message_id", out.MessageID)
}

// recordBackOff spaces the retries of a write that must happen before the
// sender does anything else: short, since the reply waits meanwhile.
func (s *Sender) recordBackOff() *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval: min(s.cfg.BaseBackoff, 500*time.Millisecond),
		// Jitter, so replicas that failed together do not retry together.
		RandomizationFactor: 0.25,
		Multiplier:          2,
		MaxInterval:         max(s.cfg.Lease/3, time.Millisecond),
	}
	b.Reset()
	return b
}

// retryDelay is the wait before the attempt after a reply's failures-th
// retryable failure: BaseBackoff, doubling per failure up to MaxBackoff,
// with jitter.
func (s *Sender) retryDelay(failures int) time.Duration {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     s.cfg.BaseBackoff,
		RandomizationFactor: 0.25,
		Multiplier:          2,
		MaxInterval:         s.cfg.MaxBackoff,
	}
	b.Reset()
	d := b.NextBackOff()
	for range failures - 1 {
		d = b.NextBackOff()
	}
	return d
}
