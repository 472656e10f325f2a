package store

import "gorm.io/gorm"

// MessageEvents ends a statement whose CTE "updated" returned messages
// (id, case_id) it changed: it writes one case event per message to the
// outbox, for open case pages. Its parameters are the event subject
// without the team, and the event kind twice.
const MessageEvents = `INSERT INTO outbox (subject, msg_id, payload)
		SELECT ? || t.slug, 'case-' || c.id || '-' || ?::text || '-' || u.id || '-' || (extract(epoch FROM now()) * 1000000000)::bigint,
			jsonb_build_object('kind', ?::text, 'case_id', c.id, 'reference', c.reference, 'team', t.slug,
				'channel', c.channel, 'status', c.status, 'message_id', u.id, 'at', now())
		FROM updated u JOIN cases c ON c.id = u.case_id JOIN teams t ON t.id = c.team_id`

// ReceiptRank orders the receipts of one message, the strongest first
// (failed, read, delivered, sent), for a DISTINCT ON over a CTE aliased r.
const ReceiptRank = `CASE r.status WHEN 'failed' THEN 4 WHEN 'read' THEN 3 WHEN 'delivered' THEN 2 ELSE 1 END`

// ReceiptsApplied is the CTE "updated" that applies delivery receipts,
// from a CTE "receipt" (message_id, status, reason) of one receipt per
// message, to our messages: a status only moves on (sent, delivered,
// read; failed from anything but read), so receipts arriving late or twice
// change nothing. It returns (id, case_id) for MessageEvents.
const ReceiptsApplied = `updated AS (
			UPDATE messages m SET delivery_status = r.status,
				failure_reason = CASE WHEN r.status = 'failed' THEN left('the network could not deliver it: ' || r.reason, 500) ELSE m.failure_reason END
			FROM receipt r
			WHERE m.id = r.message_id AND m.direction = 'outbound'
			AND CASE m.delivery_status WHEN 'read' THEN 3 WHEN 'delivered' THEN 2 WHEN 'sent' THEN 1 WHEN 'failed' THEN 5 ELSE 0 END
				< CASE r.status WHEN 'read' THEN 3 WHEN 'delivered' THEN 2 WHEN 'sent' THEN 1 ELSE 4 END
			AND NOT (m.delivery_status = 'read' AND r.status = 'failed')
			AND m.delivery_status NOT IN ('queued', 'sending')
			RETURNING m.id, m.case_id
		)`

// LockReceiptKeys serialises, until the transaction ends, the delivery
// receipts of the network ids named by a query of (channel_account_id,
// external_id) rows with the recording of those ids, so a receipt is
// either applied or parked where the sender finds it, never lost between
// them. Keys are taken in order, so two such transactions do not deadlock.
func LockReceiptKeys(tx *gorm.DB, keys string, args ...any) error {
	return tx.Exec(`SELECT count(pg_advisory_xact_lock(k)) FROM (
			SELECT DISTINCT hashtextextended(q.channel_account_id::text || ':' || q.external_id, 0) AS k
			FROM (`+keys+`) AS q(channel_account_id, external_id) ORDER BY k) t`, args...).Error
}

// PendingReceiptsKept is how long a receipt for a message we have not
// recorded as sent waits for it: the network may report delivery before
// the sender has recorded the id it answered with, or between the parts
// of a reply. Receipts for messages
// another system sent are dropped after it.
const PendingReceiptsKept = "1 day"
