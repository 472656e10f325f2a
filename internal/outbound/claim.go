package outbound

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go/jetstream"
	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/store"
)

// A reply is claimed before it is sent: its row moves to 'sending' with a
// new owner token and a lease (sending_until, on the database's clock).
// Every write the sender makes afterwards names the token, so a sender
// whose lease lapsed and was taken over can never overwrite what the new
// holder recorded: its writes change nothing, and it stops.

var (
	// errClaimLost: another sender claimed the reply after this one's
	// lease lapsed.
	errClaimLost = errors.New("the claim on the reply was taken over by another sender")
	// errLeaseLapsing: the claim could not be renewed (the database is
	// unreachable) and is about to lapse; the send in flight is abandoned
	// so it cannot land after another sender took over.
	errLeaseLapsing = errors.New("the claim on the reply could not be renewed")
)

type claimState int

const (
	claimTaken claimState = iota
	claimDone
	claimHeld
	claimMissing
)

type claimResult struct {
	state claimState
	owner string
	parts []string
	// heldFor is how long another sender's lease still runs (claimHeld).
	heldFor time.Duration
}

func (s *Sender) leaseInterval() string {
	return fmt.Sprintf("%d milliseconds", s.cfg.Lease.Milliseconds())
}

// claim marks a reply as being sent by a new owner, for one lease, and
// counts the attempt. A reply already sent or failed, or held by another
// sender whose lease has not run out, is not claimed.
func (s *Sender) claim(id int64) (claimResult, error) {
	ctx, cancel := s.dbCtx()
	defer cancel()
	var row struct {
		ID          int64
		Owner       string
		ExternalIDs store.Strings `gorm:"type:text[]"`
	}
	err := s.db.WithContext(ctx).Raw(`UPDATE messages
		SET delivery_status = 'sending', sending_until = now() + ?::interval, send_owner = gen_random_uuid(),
			send_attempts = send_attempts + 1
		WHERE id = ? AND direction = 'outbound'
		  AND (delivery_status = 'queued' OR (delivery_status = 'sending' AND sending_until < now()))
		RETURNING id, send_owner::text AS owner, external_ids`, s.leaseInterval(), id).Scan(&row).Error
	if err != nil {
		return claimResult{}, err
	}
	if row.ID != 0 {
		return claimResult{state: claimTaken, owner: row.Owner, parts: row.ExternalIDs}, nil
	}
	var cur struct {
		DeliveryStatus string
		Remaining      float64
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT delivery_status,
			coalesce(greatest(extract(epoch FROM sending_until - now()), 0), 0)::float8 AS remaining
		FROM messages WHERE id = ?`, id).Scan(&cur).Error; err != nil {
		return claimResult{}, err
	}
	switch cur.DeliveryStatus {
	case "":
		return claimResult{state: claimMissing}, nil
	case "sending":
		return claimResult{state: claimHeld, heldFor: time.Duration(cur.Remaining * float64(time.Second))}, nil
	}
	return claimResult{state: claimDone}, nil
}

// lease is a claim being worked on: its owner token, and a heartbeat that
// renews it and tells JetStream the reply is in progress, so neither the
// claim nor the JetStream message lapses while this sender is alive.
//
// When renewing fails (the database is unreachable from here) the
// heartbeat stops telling JetStream, so the reply can go to another
// replica once the lease lapses, and abandons the send in flight before it
// does. The exception is a part sent but not yet recorded: until it is
// recorded the reply stays here, or another sender would post it again.
type lease struct {
	s       *Sender
	id      int64
	channel string
	owner   string
	msg     jetstream.Msg
	// cancelSend abandons the network call in flight.
	cancelSend context.CancelCauseFunc

	mu sync.Mutex
	// validUntil is a time before which, by this machine's monotonic
	// clock, the claim cannot have lapsed in the database.
	validUntil time.Time
	// holding counts writes of sent parts still being retried.
	holding int

	stop chan struct{}
	done chan struct{}
}

func (s *Sender) newLease(m jetstream.Msg, out channels.Outbound, owner string, claimedAt time.Time, cancelSend context.CancelCauseFunc) *lease {
	return &lease{s: s, id: out.MessageID, channel: out.Channel, owner: owner, msg: m, cancelSend: cancelSend,
		validUntil: claimedAt.Add(s.cfg.Lease), stop: make(chan struct{}), done: make(chan struct{})}
}

// keepAlive renews the lease every third of its length until end.
func (l *lease) keepAlive() {
	go func() {
		defer close(l.done)
		t := time.NewTicker(l.s.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				l.renew()
			}
		}
	}()
}

// end stops the heartbeat and waits for it.
func (l *lease) end() {
	close(l.stop)
	<-l.done
}

func (l *lease) renew() {
	started := time.Now()
	ctx, cancel := context.WithTimeout(l.s.hard, l.s.cfg.Lease/3)
	res := l.s.db.WithContext(ctx).Exec(`UPDATE messages SET sending_until = now() + ?::interval
		WHERE id = ? AND send_owner = ?`, l.s.leaseInterval(), l.id, l.owner)
	cancel()
	switch {
	case res.Error == nil && res.RowsAffected > 0:
		l.renewed(started)
		_ = l.msg.InProgress()
	case res.Error == nil:
		l.cancelSend(errClaimLost)
	default:
		l.mu.Lock()
		holding, left := l.holding > 0, time.Until(l.validUntil)
		l.mu.Unlock()
		if holding {
			_ = l.msg.InProgress()
			return
		}
		if left < l.s.cfg.Lease/5 {
			l.cancelSend(errLeaseLapsing)
		}
	}
}

// renewed notes a write that renewed the claim; started is when it was
// sent, so the database's new deadline is no earlier than started+lease.
func (l *lease) renewed(started time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if v := started.Add(l.s.cfg.Lease); v.After(l.validUntil) {
		l.validUntil = v
	}
}

// durably runs write until it succeeds, the claim turns out to be lost
// (errClaimLost), or the sender is stopped hard. Meanwhile the reply is
// held here (see lease). write reports whether the row was still this
// claim's.
func (l *lease) durably(what string, write func(ctx context.Context) (owned bool, err error)) error {
	l.mu.Lock()
	l.holding++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.holding--
		l.mu.Unlock()
	}()
	_, err := backoff.Retry(l.s.hard, func() (struct{}, error) {
		ctx, cancel := l.s.dbCtx()
		defer cancel()
		started := time.Now()
		owned, err := write(ctx)
		switch {
		case err != nil && store.IsDataError(err):
			return struct{}{}, backoff.Permanent(err)
		case err != nil:
			return struct{}{}, err
		case !owned:
			return struct{}{}, backoff.Permanent(errClaimLost)
		}
		l.renewed(started)
		return struct{}{}, nil
	}, backoff.WithBackOff(l.s.recordBackOff()), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, next time.Duration) {
			l.s.metrics.Outbound.WithLabelValues(l.channel, "record_retried").Inc()
			l.s.log.Warn("outbound: "+what+" not recorded yet, retrying", "message_id", l.id, "retry_in", next, "err", err)
		}))
	return err
}

// recordPart stores one sent part's id on the message, and as a post that
// residents' replies thread onto, and renews the claim.
func (l *lease) recordPart(ctx context.Context, part string) (bool, error) {
	owned := false
	err := store.Write(ctx, l.s.db, func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE messages
			SET external_ids = CASE WHEN ? = ANY(external_ids) THEN external_ids ELSE array_append(external_ids, ?) END,
				sending_until = now() + ?::interval
			WHERE id = ? AND send_owner = ?`, part, part, l.s.leaseInterval(), l.id, l.owner)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		owned = true
		return l.insertPosts(tx, []string{part}, false)
	})
	return owned, err
}

// insertPosts records a reply's sent parts; once the whole reply is sent
// (drain), it applies the delivery receipts the network sent for them
// before that, which wait in pending_receipts.
func (l *lease) insertPosts(tx *gorm.DB, parts []string, drain bool) error {
	if drain {
		if err := store.LockReceiptKeys(tx, `SELECT m.channel_account_id, p FROM messages m, unnest(?::text[]) AS p WHERE m.id = ?`,
			store.Strings(parts), l.id); err != nil {
			return err
		}
	}
	if err := tx.Exec(`INSERT INTO message_posts (channel_account_id, external_id, message_id, case_id)
		SELECT m.channel_account_id, p, m.id, m.case_id FROM messages m, unnest(?::text[]) AS p
		WHERE m.id = ? ON CONFLICT DO NOTHING`, store.Strings(parts), l.id).Error; err != nil || !drain {
		return err
	}
	var subject string
	if l.s.bus != nil {
		subject = l.s.bus.CaseEventSubject(eventDelivery, "")
	}
	q := `WITH pending AS (
			DELETE FROM pending_receipts r USING messages m
			WHERE m.id = ? AND r.channel_account_id = m.channel_account_id AND r.external_id = ANY(?::text[])
			RETURNING m.id AS message_id, r.status, r.reason, r.id
		), receipt AS (
			SELECT DISTINCT ON (r.message_id) r.message_id, r.status, r.reason FROM pending r
			ORDER BY r.message_id, ` + store.ReceiptRank + ` DESC, r.id
		), ` + store.ReceiptsApplied
	if subject == "" {
		return tx.Exec(q+` SELECT count(*) FROM updated`, l.id, store.Strings(parts)).Error
	}
	return tx.Exec(q+` `+store.MessageEvents, l.id, store.Strings(parts), subject, eventDelivery, eventDelivery).Error
}

// markSent records the reply as accepted by the network, with every part's
// id, on the database's clock; the case's first response is the first
// reply of an adviser's the network accepted, set in the same transaction.
func (l *lease) markSent(ctx context.Context, ids []string) (bool, error) {
	owned := false
	err := store.Write(ctx, l.s.db, func(tx *gorm.DB) error {
		var row struct {
			CaseID       int64
			Automatic    string
			AuthorUserID *int64
			SentAt       time.Time
		}
		// A receipt may have come first: a reply already delivered, read or
		// failed keeps that.
		if err := tx.Raw(`UPDATE messages SET external_id = ?, external_ids = ?,
				delivery_status = CASE WHEN delivery_status IN ('delivered', 'read', 'failed') THEN delivery_status ELSE 'sent' END,
				failure_reason = CASE WHEN delivery_status = 'failed' THEN failure_reason ELSE '' END,
				sent_at = now(), sending_until = NULL, send_owner = NULL
			WHERE id = ? AND send_owner = ? RETURNING case_id, automatic, author_user_id, sent_at`,
			ids[0], store.Strings(ids), l.id, l.owner).Scan(&row).Error; err != nil || row.CaseID == 0 {
			return err
		}
		owned = true
		if err := l.insertPosts(tx, ids, true); err != nil {
			return err
		}
		if err := l.announce(tx); err != nil {
			return err
		}
		if row.Automatic != "" {
			return nil // acknowledgements and the emergency reply are not a response
		}
		if r := l.s.cfg.Responses; r != nil {
			if err := r.RecordResponse(tx, row.CaseID, row.AuthorUserID, row.SentAt); err != nil {
				return err
			}
		}
		// Our reply stops the first-response and next-response clocks.
		return tx.Exec(`UPDATE cases SET first_response_at = coalesce(first_response_at, now()), last_response_at = now()
			WHERE id = ?`, row.CaseID).Error
	})
	return owned, err
}

// release hands the reply back to the queue after a send that may succeed
// later (a rate limit), with the network's reason.
func (l *lease) release(ctx context.Context, reason string) (bool, error) {
	res := l.s.db.WithContext(ctx).Exec(`UPDATE messages SET delivery_status = 'queued', sending_until = NULL,
		send_owner = NULL, failure_reason = ? WHERE id = ? AND send_owner = ?`, reason, l.id, l.owner)
	return res.RowsAffected > 0, res.Error
}

// countFailure records a retryable failure and hands the reply back to the
// queue, or marks it failed when it has failed maxAttempts times. It
// returns the failures so far and whether the reply is now failed.
func (l *lease) countFailure(ctx context.Context, reason string) (failures int, failed bool, owned bool, err error) {
	var row struct {
		SendFailures   int
		DeliveryStatus string
	}
	maxAttempts := l.s.cfg.MaxAttempts
	err = l.s.db.WithContext(ctx).Raw(`UPDATE messages SET send_failures = send_failures + 1,
			delivery_status = CASE WHEN send_failures + 1 >= ? THEN 'failed' ELSE 'queued' END,
			failure_reason = CASE WHEN send_failures + 1 >= ?
				THEN 'gave up after ' || (send_failures + 1) || ' failed attempts: ' || ? ELSE ? END,
			sending_until = NULL, send_owner = NULL
		WHERE id = ? AND send_owner = ? RETURNING send_failures, delivery_status`,
		maxAttempts, maxAttempts, reason, reason, l.id, l.owner).Scan(&row).Error
	if err == nil && row.DeliveryStatus == "failed" {
		// The event is news for open pages, not a record: written after.
		err = l.announce(l.s.db.WithContext(ctx))
	}
	return row.SendFailures, row.DeliveryStatus == "failed", row.DeliveryStatus != "", err
}

// fail marks the reply failed with the network's reason.
func (l *lease) fail(ctx context.Context, reason string) (bool, error) {
	owned := false
	err := store.Write(ctx, l.s.db, func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE messages SET delivery_status = 'failed', failure_reason = ?,
			sending_until = NULL, send_owner = NULL WHERE id = ? AND send_owner = ?`, reason, l.id, l.owner)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		owned = true
		return l.announce(tx)
	})
	return owned, err
}

// eventDelivery is the kind of case event that says a reply's delivery
// status changed (cases.EventDelivery): open case pages show it.
const eventDelivery = "delivery"

// announce writes, in the caller's transaction, the case event that says
// the reply's delivery status changed.
func (l *lease) announce(tx *gorm.DB) error {
	if l.s.bus == nil {
		return nil
	}
	return tx.Exec(`WITH updated AS (SELECT id, case_id FROM messages WHERE id = ?) `+store.MessageEvents,
		l.id, l.s.bus.CaseEventSubject(eventDelivery, ""), eventDelivery, eventDelivery).Error
}
