package store

// MessageEvents ends a statement whose CTE "updated" returned messages
// (id, case_id) it changed: it writes one case event per message to the
// outbox, for open case pages. Its parameters are the event subject
// without the team, and the event kind twice.
const MessageEvents = `INSERT INTO outbox (subject, msg_id, payload)
		SELECT ? || t.slug, 'case-' || c.id || '-' || ?::text || '-' || u.id || '-' || (extract(epoch FROM now()) * 1000000000)::bigint,
			jsonb_build_object('kind', ?::text, 'case_id', c.id, 'reference', c.reference, 'team', t.slug,
				'channel', c.channel, 'status', c.status, 'message_id', u.id, 'at', now())
		FROM updated u JOIN cases c ON c.id = u.case_id JOIN teams t ON t.id = c.team_id`
