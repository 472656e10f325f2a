package loadtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// dataset describes cases generated straight in PostgreSQL with set-based
// SQL (generate_series), not through the case service: a million cases
// take about a minute that way.
type dataset struct {
	Cases    int
	Contacts int
	// Team is an SQL expression in g (the case's number, from 1) giving the
	// case's team as an index from 0 into the teams by id.
	Team string
	// Kind is an SQL expression in g: 'waiting' (new or open, nobody's),
	// 'held' (open, a former adviser's), 'awaiting' (awaiting the
	// resident) or 'done' (resolved or closed).
	Kind string
	// AllMessages gives every case its resident's message; otherwise only
	// the cases that are not done have one.
	AllMessages bool
	// Former is how many former advisers hold the assigned cases.
	Former int
}

// generate fills a migrated database that already has its teams and
// channel accounts with d's contacts, cases and messages. Secondary
// indexes of cases and messages are dropped for the load and rebuilt after
// it; the tables are then vacuumed and analysed.
func generate(ctx context.Context, b *testing.B, conn *pgx.Conn, d dataset) {
	b.Helper()
	start := time.Now()
	exec := func(what, sql string, args ...any) {
		b.Helper()
		t := time.Now()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			b.Fatalf("generate %s: %v", what, err)
		}
		if testing.Verbose() {
			fmt.Printf("  generate %s: %v\n", what, time.Since(t).Round(time.Millisecond))
		}
	}
	// The secondary indexes, kept to rebuild after the load.
	rows, err := conn.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes
		WHERE schemaname = 'public' AND tablename IN ('cases', 'messages')
		AND indexname NOT IN (SELECT conname FROM pg_constraint)`)
	if err != nil {
		b.Fatal(err)
	}
	var names, defs []string
	for rows.Next() {
		var n, def string
		if err := rows.Scan(&n, &def); err != nil {
			b.Fatal(err)
		}
		names, defs = append(names, n), append(defs, def)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	for _, n := range names {
		exec("drop index", `DROP INDEX `+pgx.Identifier{n}.Sanitize())
	}
	exec("settings", `SET maintenance_work_mem = '256MB'; SET work_mem = '64MB'; SET synchronous_commit = off`)
	exec("former advisers", `INSERT INTO users (email, name, role)
		SELECT 'former-' || g || '@example.gov.uk', 'Former adviser ' || g, 'adviser' FROM generate_series(1, $1) g`, d.Former)
	exec("contacts", `INSERT INTO contacts (display_name) SELECT 'Resident ' || g FROM generate_series(1, $1) g`, d.Contacts)
	exec("identities", `INSERT INTO contact_identities (contact_id, channel, external_id, handle, display_name)
		SELECT id, 'x', 'r' || id, 'resident' || id, display_name FROM contacts ORDER BY id`)
	// Waiting cases came in over the last two days, done ones over the
	// month before; first-response targets by priority, resolution in five
	// days, about one in fifty under no SLA policy. Deadlines already passed
	// count as announced (alerted 2), so no breach monitor has a backlog.
	exec("cases", fmt.Sprintf(`WITH t AS (SELECT array_agg(id ORDER BY id) AS ids FROM teams),
		a AS (SELECT array_agg(id ORDER BY id) AS ids FROM channel_accounts),
		u AS (SELECT array_agg(id ORDER BY id) AS ids FROM users WHERE email LIKE 'former-%%'),
		ci AS (SELECT min(id) AS lo, min(contact_id) AS clo FROM contact_identities),
		s AS (
			SELECT g, kind, ti, prio, nosla,
				now() - CASE WHEN kind = 'done' THEN interval '2 days' + ((g * 7919) %% 2592000) * interval '1 second'
					ELSE ((g * 7919) %% 172800) * interval '1 second' END AS fma
			FROM (SELECT g, (%s) AS kind, (%s) AS ti,
				CASE g %% 7 WHEN 0 THEN 'urgent' WHEN 1 THEN 'high' WHEN 2 THEN 'high' WHEN 6 THEN 'low' ELSE 'normal' END AS prio,
				g %% 53 = 0 AS nosla
				FROM generate_series(1::bigint, $1) g) k
		),
		v AS (
			SELECT s.*,
				CASE WHEN nosla THEN NULL ELSE fma + CASE prio WHEN 'urgent' THEN interval '1 hour' WHEN 'high' THEN interval '4 hours'
					WHEN 'normal' THEN interval '8 hours' ELSE interval '24 hours' END END AS frd,
				CASE WHEN nosla THEN NULL ELSE fma + interval '5 days' END AS rd,
				CASE WHEN kind = 'waiting' THEN NULL ELSE fma + interval '25 minutes' END AS fra
			FROM s
		)
		INSERT INTO cases (status, channel, channel_account_id, contact_id, contact_identity_id, team_id, assignee_id,
			subject, first_message_at, last_message_at, first_response_at, resolved_at, closed_at, priority,
			first_response_due, first_response_alerted, resolution_started_at, resolution_due, resolution_alerted,
			resolution_paused_at, created_at, updated_at)
		SELECT CASE kind WHEN 'waiting' THEN CASE WHEN g %% 3 = 0 THEN 'new' ELSE 'open' END
				WHEN 'held' THEN 'open' WHEN 'awaiting' THEN 'awaiting_resident'
				ELSE CASE WHEN g %% 4 = 0 THEN 'resolved' ELSE 'closed' END END,
			'x', a.ids[1 + ti %% array_length(a.ids, 1)], ci.clo + g %% $2, ci.lo + g %% $2, t.ids[1 + ti],
			CASE WHEN kind = 'waiting' THEN NULL ELSE u.ids[1 + g %% array_length(u.ids, 1)] END,
			'Case ' || g, fma, fma, fra,
			CASE WHEN kind = 'done' THEN fma + interval '1 day' END,
			CASE WHEN kind = 'done' AND g %% 4 <> 0 THEN fma + interval '2 days' END,
			prio, frd, CASE WHEN frd < now() THEN 2 ELSE 1 END, fma, rd, CASE WHEN rd < now() THEN 2 ELSE 1 END,
			CASE WHEN kind = 'awaiting' THEN now() - interval '1 hour' END, fma, fma
		FROM v, t, a, u, ci ORDER BY g`, d.Kind, d.Team), d.Cases, d.Contacts)
	scope := `WHERE status <> 'resolved' AND status <> 'closed'`
	if d.AllMessages {
		scope = ""
	}
	exec("messages", `INSERT INTO messages (case_id, channel_account_id, direction, visibility, body, dedupe_key,
			external_id, contact_identity_id, received_at, network_sent_at)
		SELECT id, channel_account_id, 'inbound', CASE WHEN id % 2 = 0 THEN 'public' ELSE 'private' END,
			'Hello, the bins on our road were missed again this week and the street is a mess, case ' || id,
			'x:b' || id, 'b' || id, contact_identity_id, first_message_at, first_message_at
		FROM cases `+scope+` ORDER BY id`)
	for i, def := range defs {
		exec("index "+names[i], def)
	}
	exec("vacuum", `VACUUM ANALYZE cases, messages, contacts, contact_identities, users`)
	fmt.Printf("  generated %d cases in %v\n", d.Cases, time.Since(start).Round(100*time.Millisecond))
}

// pctMS is the p-th percentile (0–100) of sorted durations, in ms.
func pctMS(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return float64(sorted[i]) / float64(time.Millisecond)
}

// met words whether a target was met.
func met(ok bool) string {
	if ok {
		return "target met"
	}
	return "target missed"
}
