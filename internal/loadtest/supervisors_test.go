package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/demodata"
	"github.com/citizeninbox/inbox/internal/networks"
	"github.com/citizeninbox/inbox/internal/reports"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/testenv"
)

const (
	// supervisorsDB is kept between runs: generating it takes minutes.
	supervisorsDB = "inbox_bench_supervisors"
	// figureLoads is how many times each set of figures is computed.
	figureLoads = 20
	// figureTarget is the supervisors' target for a page's median.
	figureTarget = 300 * time.Millisecond
)

// supervisorsYear is the benchmark's year: a million cases and five
// million messages of the example council, ending on a fixed date so that
// the database is kept whatever day the benchmark runs.
var supervisorsYear = demodata.Params{Cases: 1000000, Messages: 5000000, YearEnd: "2026-12-01", Seed: 1}

// exampleCouncil is the example configuration with made-up credentials;
// nothing is sent with them.
func exampleCouncil(b *testing.B) (*config.File, *channels.Registry) {
	b.Helper()
	drivers, err := networks.Registry()
	if err != nil {
		b.Fatal(err)
	}
	vars := map[string]string{"X_API_BASE_URL": "http://127.0.0.1:1", "X_CONSUMER_SECRET": secret, "X_ACCESS_TOKEN": "t",
		"META_API_BASE_URL": "http://127.0.0.1:1", "META_APP_SECRET": "s", "META_VERIFY_TOKEN": "v", "META_ACCESS_TOKEN": "t",
		"TWILIO_API_BASE_URL": "http://127.0.0.1:1", "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000", "TWILIO_AUTH_TOKEN": "t",
		"TELEGRAM_API_BASE_URL": "http://127.0.0.1:1", "TELEGRAM_BOT_TOKEN": "7000000001:t", "TELEGRAM_SECRET_TOKEN": "s",
		"BLUESKY_SERVICE_URL": "http://127.0.0.1:1", "BLUESKY_HANDLE": "examplecouncil.bsky.social", "BLUESKY_APP_PASSWORD": "p",
		"MASTODON_BASE_URL": "http://127.0.0.1:1", "MASTODON_ACCESS_TOKEN": "t",
		"IMAP_URL": "imap+plain://127.0.0.1:1", "SMTP_URL": "smtp+plain://127.0.0.1:1", "EMAIL_USERNAME": "contact@example-council.gov.uk", "EMAIL_PASSWORD": "p"}
	file, err := config.Load(exampleConfig(b), func(k string) string { return vars[k] }, drivers)
	if err != nil {
		b.Fatal(err)
	}
	return file, drivers
}

// supervisorsDatabase returns the URL of the benchmark's database, made
// and filled by the demo-data generator unless a previous run left it
// holding the same year; it is migrated either way, so a new migration (an
// index) applies to it.
func supervisorsDatabase(ctx context.Context, b *testing.B, file *config.File, drivers *channels.Registry) string {
	b.Helper()
	dbURL := databaseURL(supervisorsDB)
	admin, err := pgx.Connect(ctx, testenv.AdminURL())
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	fill := func() error {
		if err := store.Migrate(ctx, dbURL); err != nil {
			return err
		}
		db, err := store.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer func() { _ = store.Close(db) }()
		accts, err := server.SyncConfig(ctx, db, file, drivers, "http://127.0.0.1")
		if err != nil {
			return err
		}
		res, err := demodata.Generate(ctx, db, file, supervisorsYear, demodata.Options{Progress: os.Stdout, Replies: accts})
		if err != nil {
			return err
		}
		if res.Skipped {
			fmt.Printf("  reusing database %s (%s)\n", supervisorsDB, supervisorsYear.Marker())
			return nil
		}
		fmt.Printf("  generated %d cases, %d messages, %d rows in all in %.1f s: %.0f rows/s\n",
			res.Cases, res.Messages, res.Rows(), res.Elapsed.Seconds(), float64(res.Rows())/res.Elapsed.Seconds())
		return nil
	}
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, supervisorsDB).Scan(&exists); err != nil {
		b.Fatal(err)
	}
	if exists {
		err := fill()
		if err == nil {
			return dbURL
		}
		if !errors.Is(err, demodata.ErrOtherData) {
			b.Fatal(err)
		}
		fmt.Printf("  database %s holds another year: making it again\n", supervisorsDB)
		if _, err := admin.Exec(ctx, `DROP DATABASE `+supervisorsDB+` WITH (FORCE)`); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+supervisorsDB); err != nil {
		b.Fatal(err)
	}
	if err := fill(); err != nil {
		b.Fatal(err)
	}
	return dbURL
}

// BenchmarkSupervisorFigures times the supervisors' figures
// (reports.Compute: response and resolution percentiles, attainment,
// volumes by hour and day, reopen rate) on a year of a million cases and
// five million messages: the last full month, that month for one team,
// the whole year, and the month for one channel, each computed 20 times.
// The target is a median of at most 300 ms for every page on the 2-core
// machine. Run it with -benchtime=1x.
func BenchmarkSupervisorFigures(b *testing.B) {
	ctx := context.Background()
	file, drivers := exampleCouncil(b)
	dbURL := supervisorsDatabase(ctx, b, file, drivers)
	db, err := store.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = store.Close(db) }()
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		b.Fatal(err)
	}
	end, err := time.ParseInLocation(time.DateOnly, supervisorsYear.YearEnd, london)
	if err != nil {
		b.Fatal(err)
	}
	var highways int64
	if err := db.Raw(`SELECT id FROM teams WHERE slug = 'highways'`).Scan(&highways).Error; err != nil || highways == 0 {
		b.Fatalf("no highways team: %v", err)
	}
	month := end.AddDate(0, -1, 0)
	sets := []struct {
		name, what string
		filter     reports.Filter
	}{
		{"month", "the last full month", reports.Filter{From: month, To: end}},
		{"month-team", "the month, one team (highways)", reports.Filter{From: month, To: end, Teams: []int64{highways}}},
		{"year", "the whole year", reports.Filter{From: end.AddDate(-1, 0, 0), To: end}},
		{"month-channel", "the month, one channel (X)", reports.Filter{From: month, To: end, Channels: []string{"x"}}},
	}
	type result struct {
		median, p90 time.Duration
		cases       int64
	}
	results := make([]result, len(sets))
	b.ResetTimer()
	for i, s := range sets {
		times := make([]time.Duration, 0, figureLoads)
		var fig reports.Figures
		for range figureLoads {
			start := time.Now()
			if fig, err = reports.Compute(ctx, db, s.filter, end, london); err != nil {
				b.Fatal(err)
			}
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		results[i] = result{median: (times[len(times)/2-1] + times[len(times)/2]) / 2, p90: times[(len(times)*9+9)/10-1], cases: fig.Cases}
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	fmt.Printf("SupervisorFigures, reports.Compute on a year of %d cases and %d messages, %d times each:\n",
		supervisorsYear.Cases, supervisorsYear.Messages, figureLoads)
	fmt.Printf("  %-32s %9s %10s %10s  %s\n", "figures for", "cases", "median", "p90", "median ≤ 300 ms")
	for i, s := range sets {
		r := results[i]
		b.ReportMetric(ms(r.median), s.name+"-median-ms")
		b.ReportMetric(ms(r.p90), s.name+"-p90-ms")
		fmt.Printf("  %-32s %9d %7.1f ms %7.1f ms  %s\n", s.what, r.cases, ms(r.median), ms(r.p90), metWord(r.median <= figureTarget))
	}
}
