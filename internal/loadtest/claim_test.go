package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/metrics"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/testenv"
)

const (
	// claimDB is kept between runs: generating it takes about a minute.
	claimDB = "inbox_bench_claim"
	// claimData marks a database holding this generation of the data.
	claimData     = "v2 cases=1000000 waiting=100000 teams=8 advisers=16"
	claimTeams    = 8
	claimAdvisers = 16
	// claims is how many cases each phase claims, all advisers together.
	// claims is how many cases each path claims in each of claimRounds
	// rounds; the rounds alternate which path runs first, so that neither
	// gains from running on a fresher table or a quieter machine.
	claims      = 8000
	claimRounds = 3
	// ceilingOrder is the case service's queue order (cases.queueOrder).
	ceilingOrder = `c.sla_due_at ASC NULLS LAST,
	CASE c.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END,
	c.first_message_at, c.id`
	// ceilingClaim is the bare claim: no cap, no audit, no event, no
	// transaction around it.
	ceilingClaim = `UPDATE cases SET assignee_id = $1 WHERE id = (
		SELECT c.id FROM cases c WHERE c.team_id = ANY($2) AND c.status IN ('new', 'open') AND c.assignee_id IS NULL
		ORDER BY ` + ceilingOrder + ` LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id`
)

func databaseURL(name string) string {
	u, err := url.Parse(testenv.AdminURL())
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

// claimDatabase returns the URL of the claim benchmark's database, made
// and filled unless a previous run left it with the same data; it is
// migrated either way, so a new migration (an index) applies to it.
func claimDatabase(ctx context.Context, b *testing.B) string {
	b.Helper()
	dbURL := databaseURL(claimDB)
	admin, err := pgx.Connect(ctx, testenv.AdminURL())
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, claimDB).Scan(&exists); err != nil {
		b.Fatal(err)
	}
	if exists {
		if err := store.Migrate(ctx, dbURL); err == nil {
			conn, err := pgx.Connect(ctx, dbURL)
			if err != nil {
				b.Fatal(err)
			}
			var mark string
			_ = conn.QueryRow(ctx, `SELECT value FROM settings WHERE name = 'loadtest.claim_data'`).Scan(&mark)
			conn.Close(ctx)
			if mark == claimData {
				fmt.Printf("  reusing database %s\n", claimDB)
				return dbURL
			}
		}
		if _, err := admin.Exec(ctx, `DROP DATABASE `+claimDB+` WITH (FORCE)`); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+claimDB); err != nil {
		b.Fatal(err)
	}
	if err := store.Migrate(ctx, dbURL); err != nil {
		b.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	setup := []string{
		`INSERT INTO teams (slug, name) SELECT 'team-' || g, 'Team ' || g FROM generate_series(1, 8) g ORDER BY g`,
		`INSERT INTO channel_accounts (slug, channel, name, team_id) SELECT 'x-' || id, 'x', 'Council on X ' || id, id FROM teams ORDER BY id`,
		// Sixteen advisers, each in one to three of the eight teams.
		`INSERT INTO users (email, name, role) SELECT 'bench-adviser-' || g || '@example.gov.uk', 'Adviser ' || g, 'adviser'
			FROM generate_series(0, 15) g ORDER BY g`,
		`INSERT INTO user_teams (user_id, team_id)
			SELECT u.id, t.ids[1 + (n + k * 3) % 8]
			FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM users WHERE email LIKE 'bench-adviser-%') u,
				(SELECT array_agg(id ORDER BY id) AS ids FROM teams) t, generate_series(0, 2) k
			WHERE k <= u.n % 3`,
	}
	for _, s := range setup {
		if _, err := conn.Exec(ctx, s); err != nil {
			b.Fatalf("setup: %v", err)
		}
	}
	// One case in ten waiting (new or open, nobody's), one in fifty held
	// open and one in fifty awaiting the resident, the rest done.
	generate(ctx, b, conn, dataset{
		Cases: 1000000, Contacts: 300000, Former: 40,
		Team: `(g / 10) % 8`,
		Kind: `CASE WHEN g % 10 = 0 THEN 'waiting' WHEN g % 50 = 1 THEN 'held' WHEN g % 50 = 11 THEN 'awaiting' ELSE 'done' END`,
	})
	if _, err := conn.Exec(ctx, `INSERT INTO settings (name, value) VALUES ('loadtest.claim_data', $1)`, claimData); err != nil {
		b.Fatal(err)
	}
	return dbURL
}

// benchAdvisers reads the sixteen advisers with their teams.
func benchAdvisers(ctx context.Context, b *testing.B, conn *pgx.Conn) []cases.Actor {
	b.Helper()
	rows, err := conn.Query(ctx, `SELECT u.id, array_agg(ut.team_id ORDER BY ut.team_id) FROM users u
		JOIN user_teams ut ON ut.user_id = u.id WHERE u.email LIKE 'bench-adviser-%' GROUP BY u.id ORDER BY u.id`)
	if err != nil {
		b.Fatal(err)
	}
	var out []cases.Actor
	for rows.Next() {
		a := cases.Actor{Role: "adviser"}
		if err := rows.Scan(&a.UserID, &a.TeamIDs); err != nil {
			b.Fatal(err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(out) != claimAdvisers {
		b.Fatalf("%d advisers, want %d", len(out), claimAdvisers)
	}
	return out
}

// resetClaims gives back every case the advisers hold, forgets the
// audit and events of earlier claims, and vacuums.
func resetClaims(ctx context.Context, b *testing.B, conn *pgx.Conn, advisers []cases.Actor) {
	b.Helper()
	ids := make([]int64, len(advisers))
	for i, a := range advisers {
		ids[i] = a.UserID
	}
	for _, s := range []string{
		`UPDATE cases SET assignee_id = NULL, updated_at = first_message_at WHERE assignee_id = ANY($1)`,
		`TRUNCATE audit_events, outbox`,
		`UPDATE teams SET max_open_per_adviser = NULL`,
		`VACUUM ANALYZE cases`,
	} {
		var args []any
		if strings.Contains(s, "$1") {
			args = append(args, ids)
		}
		if _, err := conn.Exec(ctx, s, args...); err != nil {
			b.Fatalf("reset: %v", err)
		}
	}
}

// claimResult is what one phase measured.
type claimResult struct {
	perSec   float64
	p50, p99 float64
	doubles  int
	wrong    int
	errs     int
	firstErr error
	// claimed, elapsed and lat are the raw figures, for adding rounds up.
	claimed int
	elapsed time.Duration
	lat     []time.Duration
}

// add sums two results of one path.
func (r claimResult) add(o claimResult) claimResult {
	r.claimed += o.claimed
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
	slices.Sort(r.lat)
	r.perSec = float64(r.claimed) / r.elapsed.Seconds()
	r.p50, r.p99 = pctMS(r.lat, 50), pctMS(r.lat, 99)
	r.doubles += o.doubles
	r.wrong += o.wrong
	r.errs += o.errs
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
	return r
}

// runClaims has each adviser claim, one at a time, until n cases are
// claimed in all, with claim answering the claimed case's id.
func runClaims(ctx context.Context, b *testing.B, conn *pgx.Conn, advisers []cases.Actor, n int64,
	claim func(ctx context.Context, a cases.Actor) (int64, error)) claimResult {
	b.Helper()
	var (
		left    atomic.Int64
		claimed sync.Map
		doubles atomic.Int64
		errs    atomic.Int64
		errOnce sync.Once
		res     claimResult
	)
	left.Store(n)
	lat := make([][]time.Duration, len(advisers))
	ids := make([][]int64, len(advisers))
	var wg sync.WaitGroup
	start := time.Now()
	for g, a := range advisers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				t := time.Now()
				id, err := claim(ctx, a)
				lat[g] = append(lat[g], time.Since(t))
				if err != nil {
					errs.Add(1)
					errOnce.Do(func() { res.firstErr = err })
					continue
				}
				if _, dup := claimed.LoadOrStore(id, a.UserID); dup {
					doubles.Add(1)
				}
				ids[g] = append(ids[g], id)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	var caseIDs, userIDs []int64
	for g := range advisers {
		all = append(all, lat[g]...)
		for _, id := range ids[g] {
			caseIDs, userIDs = append(caseIDs, id), append(userIDs, advisers[g].UserID)
		}
	}
	slices.Sort(all)
	res.errs = int(errs.Load())
	res.doubles = int(doubles.Load())
	res.perSec = float64(len(caseIDs)) / elapsed.Seconds()
	res.p50, res.p99 = pctMS(all, 50), pctMS(all, 99)
	res.claimed, res.elapsed, res.lat = len(caseIDs), elapsed, all
	// Every case a call returned is the caller's in the database, and the
	// advisers hold no case no call returned.
	var wrong, held int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM unnest($1::bigint[], $2::bigint[]) AS x(id, uid)
		JOIN cases c ON c.id = x.id WHERE c.assignee_id IS DISTINCT FROM x.uid`, caseIDs, userIDs).Scan(&wrong); err != nil {
		b.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM cases WHERE assignee_id = ANY($1)`,
		slices.Compact(slices.Sorted(slices.Values(userIDs)))).Scan(&held); err != nil {
		b.Fatal(err)
	}
	distinct := 0
	claimed.Range(func(_, _ any) bool { distinct++; return true })
	res.wrong = wrong + abs(held-distinct)
	return res
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// BenchmarkClaimNext has 16 advisers take the next case at once, over a
// million cases of which 100,000 wait unassigned in 8 teams (caps
// lifted), through the case service's Next (the claim with its audit
// entry and assigned event) and, on the same data reset, through the bare
// claim statement alone: the ceiling Next is measured against. The two
// alternate over three rounds. Run it with -benchtime=1x.
func BenchmarkClaimNext(b *testing.B) {
	ctx := context.Background()
	dbURL := claimDatabase(ctx, b)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	advisers := benchAdvisers(ctx, b, conn)

	db, err := store.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = store.Close(db) }()
	svc := cases.New(db, bus.Names{}, metrics.New(), slog.New(slog.DiscardHandler), nil)

	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		b.Fatal(err)
	}
	pcfg.MaxConns = claimAdvisers
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()

	if testing.Verbose() {
		explainClaim(ctx, b, conn, advisers[len(advisers)-1])
	}

	b.ResetTimer()
	runNext := func() claimResult {
		resetClaims(ctx, b, conn, advisers)
		return runClaims(ctx, b, conn, advisers, claims, func(ctx context.Context, a cases.Actor) (int64, error) {
			c, err := svc.Next(ctx, a, "")
			return c.ID, err
		})
	}
	runCeiling := func() claimResult {
		resetClaims(ctx, b, conn, advisers)
		return runClaims(ctx, b, conn, advisers, claims, func(ctx context.Context, a cases.Actor) (int64, error) {
			var id int64
			err := pool.QueryRow(ctx, ceilingClaim, a.UserID, a.TeamIDs).Scan(&id)
			return id, err
		})
	}
	var next, ceiling claimResult
	for round := range claimRounds {
		if round%2 == 0 {
			next = next.add(runNext())
			ceiling = ceiling.add(runCeiling())
		} else {
			ceiling = ceiling.add(runCeiling())
			next = next.add(runNext())
		}
	}
	b.StopTimer()
	resetClaims(ctx, b, conn, advisers)

	ratio := 100 * next.perSec / ceiling.perSec
	b.ReportMetric(next.perSec, "claims/s")
	b.ReportMetric(next.p50, "p50-ms")
	b.ReportMetric(next.p99, "p99-ms")
	b.ReportMetric(float64(next.doubles+next.wrong), "double-claims")
	b.ReportMetric(ceiling.perSec, "ceiling-claims/s")
	b.ReportMetric(ratio, "%-of-ceiling")
	b.ReportMetric(0, "ns/op")
	fmt.Printf("ClaimNext, 16 advisers, 1,000,000 cases, 100,000 waiting in 8 teams; %d rounds of %d claims per path, alternating which runs first:\n",
		claimRounds, claims)
	fmt.Printf("  Next:    %7.0f claims/s  p50 %6.2f ms  p99 %6.2f ms  double claims %d  wrong assignee %d  errors %d\n",
		next.perSec, next.p50, next.p99, next.doubles, next.wrong, next.errs)
	fmt.Printf("  ceiling: %7.0f claims/s  p50 %6.2f ms  p99 %6.2f ms  double claims %d  wrong assignee %d  errors %d\n",
		ceiling.perSec, ceiling.p50, ceiling.p99, ceiling.doubles, ceiling.wrong, ceiling.errs)
	fmt.Printf("  Next at %.0f%% of the ceiling (target >= 70%%: %s); p99 %.2f ms (target <= 50 ms: %s)\n",
		ratio, met(ratio >= 70), next.p99, met(next.p99 <= 50))
	for _, r := range []claimResult{next, ceiling} {
		if r.doubles != 0 || r.wrong != 0 {
			b.Errorf("%d double claims, %d cases with the wrong assignee", r.doubles, r.wrong)
		}
		if r.errs != 0 && !errors.Is(r.firstErr, cases.ErrNothingToClaim) {
			b.Errorf("%d claims failed, the first: %v", r.errs, r.firstErr)
		}
	}
}

// explainClaim prints the plan of the bare claim for one adviser, run and
// rolled back.
func explainClaim(ctx context.Context, b *testing.B, conn *pgx.Conn, a cases.Actor) {
	b.Helper()
	tx, err := conn.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	rows, err := tx.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS) `+ceilingClaim, a.UserID, a.TeamIDs)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	fmt.Println("  plan of the bare claim:")
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			b.Fatal(err)
		}
		fmt.Println("    " + line)
	}
}
