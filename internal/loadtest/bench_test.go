package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/channels/mastodon/mastodonfake"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/networks"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var council = xfake.User{ID: "1500000000000000001", Handle: "ExampleCouncil", Name: "Example Council"}

const (
	secret  = "bench-consumer-secret"
	account = "council-x"
	// concurrency is how many webhook deliveries are in flight at once,
	// as when X delivers a burst.
	concurrency = 32
)

func startServer(b *testing.B) (*server.Server, *gorm.DB) {
	srv, direct, _ := startServerWith(b, xfake.New())
	return srv, direct
}

// startServerWith starts a server with the example council's
// configuration (deploy/config.example.yaml: its teams, routing rules, SLA
// policy and acknowledgements), its X account's API being fake.
func startServerWith(b *testing.B, fakeX *xfake.Server) (*server.Server, *gorm.DB, *config.File) {
	b.Helper()
	fake := httptest.NewServer(fakeX)
	b.Cleanup(fake.Close)
	// The Mastodon account is polled: its instance answers the polls, with
	// nothing to take.
	fakeMastodon := httptest.NewServer(mastodonfake.New())
	b.Cleanup(fakeMastodon.Close)
	dbURL := testenv.Database(b)
	drivers, err := networks.Registry()
	if err != nil {
		b.Fatal(err)
	}
	vars := map[string]string{"X_API_BASE_URL": fake.URL, "X_CONSUMER_SECRET": secret, "X_ACCESS_TOKEN": "t",
		"META_API_BASE_URL": fake.URL, "META_APP_SECRET": "s", "META_VERIFY_TOKEN": "v", "META_ACCESS_TOKEN": "t",
		"TWILIO_API_BASE_URL": fake.URL, "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000", "TWILIO_AUTH_TOKEN": "t",
		"TELEGRAM_API_BASE_URL": fake.URL, "TELEGRAM_BOT_TOKEN": "7000000001:t", "TELEGRAM_SECRET_TOKEN": "s",
		"BLUESKY_SERVICE_URL": fake.URL, "BLUESKY_HANDLE": "examplecouncil.bsky.social", "BLUESKY_APP_PASSWORD": "p",
		"MASTODON_BASE_URL": fakeMastodon.URL, "MASTODON_ACCESS_TOKEN": mastodonfake.Token,
		"IMAP_URL": "imap+plain://127.0.0.1:1", "SMTP_URL": "smtp+plain://127.0.0.1:1", "EMAIL_USERNAME": "contact@example-council.gov.uk", "EMAIL_PASSWORD": "p"}
	file, err := config.Load(exampleConfig(b), func(k string) string { return vars[k] }, drivers)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, server.Options{
		Env:     config.Env{DatabaseURL: dbURL, NATSURL: testenv.NATSURL(), HTTPAddr: "127.0.0.1:0", PublicURL: "http://127.0.0.1"},
		File:    file,
		Drivers: drivers,
		Log:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Names:   testenv.Namespace(b),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	direct, err := store.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close(direct) })
	return srv, direct, file
}

// exampleConfig is the path of the example council configuration.
func exampleConfig(b *testing.B) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "config.example.yaml")
}

// workload builds n signed deliveries: new mentions, replies to earlier
// posts, first DMs and follow-up DMs from residents who wrote before.
func workload(n int) [][]byte {
	bodies := make([][]byte, 0, n)
	var posts []string
	var dmResidents []string
	now := time.Now().UTC()
	for i := range n {
		id := fmt.Sprint(1700000000000000000 + int64(i))
		from := fmt.Sprint(2200000000000000000 + int64(i))
		var body []byte
		switch {
		case i%10 < 4 || len(posts) == 0: // a new public mention
			posts = append(posts, id)
			body = xfake.Mention(council, id, resident(from), "@ExampleCouncil the bin on my road was missed again", "", now)
		case i%10 < 6: // a reply in an earlier thread
			body = xfake.Mention(council, id, resident(from), "@ExampleCouncil same problem here", posts[i%len(posts)], now)
		case i%10 < 9 || len(dmResidents) == 0: // a resident's first DM
			dmResidents = append(dmResidents, from)
			body = xfake.DirectMessage(council, id, resident(from), "Hello, I need help with my council tax", now)
		default: // a follow-up DM that joins the resident's open case
			body = xfake.DirectMessage(council, id, resident(dmResidents[i%len(dmResidents)]), "Here is my account number", now)
		}
		bodies = append(bodies, body)
	}
	return bodies
}

func resident(id string) xfake.User {
	return xfake.User{ID: id, Handle: "resident" + id[len(id)-6:], Name: "Resident"}
}

// BenchmarkXWebhooks drives the server with b.N signed webhooks and reports
// sustained webhooks per second, the webhook answer latency, and the
// latency from webhook accepted to case committed. "burst" sends as fast as
// 32 concurrent senders can (throughput); "steady" sends at a fixed rate
// well inside capacity (latency as residents see it). Run it with a fixed
// count: -benchtime=10000x.
func BenchmarkXWebhooks(b *testing.B) {
	b.Run("burst", func(b *testing.B) { driveWebhooks(b, 0) })
	b.Run("steady-400rps", func(b *testing.B) { driveWebhooks(b, 400) })
}

// driveWebhooks sends b.N webhooks, at rate per second (0: as fast as
// possible), and waits until every message is committed.
func driveWebhooks(b *testing.B, rate int) {
	srv, direct := startServer(b)
	bodies := workload(b.N)
	sigs := make([]string, len(bodies))
	for i, body := range bodies {
		sigs[i] = x.Sign(secret, body)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency}}
	url := srv.URL() + "/webhooks/x/" + account

	answers := make([]time.Duration, len(bodies))
	var failed atomic.Int64
	var wg sync.WaitGroup
	work := make(chan int, len(bodies))
	b.ResetTimer()
	start := time.Now()
	go func() {
		defer close(work)
		if rate <= 0 {
			for i := range bodies {
				work <- i
			}
			return
		}
		interval := time.Second / time.Duration(rate)
		for i := range bodies {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
			work <- i
		}
	}()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("x-twitter-webhooks-signature", sigs[i])
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answers[i] = time.Since(t0)
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	sendTime := time.Since(start)

	// Wait for every message to be committed.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var n int64
		direct.Raw(`SELECT count(*) FROM messages WHERE direction = 'inbound'`).Scan(&n)
		if n == int64(len(bodies)) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d messages committed after 5 minutes", n, len(bodies))
		}
		time.Sleep(20 * time.Millisecond)
	}
	allTime := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d webhooks were not answered 200", f)
	}

	var commit struct{ P50, P99 float64 }
	direct.Raw(`SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
		percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99
		FROM (SELECT extract(epoch FROM committed_at - received_at) * 1000 AS ms FROM messages
			WHERE direction = 'inbound') t`).Scan(&commit)

	slices.Sort(answers)
	b.ReportMetric(float64(len(bodies))/sendTime.Seconds(), "webhooks/s")
	b.ReportMetric(float64(len(bodies))/allTime.Seconds(), "committed/s")
	b.ReportMetric(ms(percentile(answers, 0.50)), "answer-p50-ms")
	b.ReportMetric(ms(percentile(answers, 0.99)), "answer-p99-ms")
	b.ReportMetric(commit.P50, "commit-p50-ms")
	b.ReportMetric(commit.P99, "commit-p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPostgresCasePlusMessage measures this machine's PostgreSQL
// ceiling for one case-plus-message transaction: contact, identity, case
// and message inserted and committed, the least a message-per-transaction
// design must do, with 16 concurrent connections and no application logic.
// The case service batches many messages per transaction to beat it.
func BenchmarkPostgresCasePlusMessage(b *testing.B) {
	ctx := context.Background()
	dbURL := testenv.Database(b)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `INSERT INTO teams (slug, name) VALUES ('t', 'T');
		INSERT INTO channel_accounts (slug, channel, name, team_id) VALUES ('a', 'x', 'A', (SELECT id FROM teams))`); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := caseTx(ctx, pool, fmt.Sprint(i), now); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx/s")
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(float64(len(sorted)-1)*p)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// caseTx is one case-plus-message transaction.
func caseTx(ctx context.Context, pool *pgxpool.Pool, id string, now time.Time) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var contact, identity, caseID int64
		if err := tx.QueryRow(ctx, `INSERT INTO contacts (display_name) VALUES ($1) RETURNING id`, "r"+id).Scan(&contact); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO contact_identities (contact_id, channel, external_id) VALUES ($1, 'x', $2) RETURNING id`,
			contact, "r"+id).Scan(&identity); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO cases (channel, channel_account_id, contact_id, contact_identity_id, team_id,
			subject, first_message_at, last_message_at)
			VALUES ('x', (SELECT id FROM channel_accounts), $1, $2, (SELECT id FROM teams), 'bench', $3, $3) RETURNING id`,
			contact, identity, now).Scan(&caseID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO messages (case_id, channel_account_id, direction, visibility, body, dedupe_key,
			external_id, external_ids, contact_identity_id, received_at)
			VALUES ($1, (SELECT id FROM channel_accounts), 'inbound', 'public', 'bench', $2, $2, ARRAY[$2], $3, $4)`,
			caseID, id, identity, now)
		return err
	})
}
