package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/metrics"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.DropTemplate()
	os.Exit(code)
}

const (
	councilID = "1500000000000000001"
	secret    = "bench-consumer-secret"
	account   = "council-x"
	// concurrency is how many webhook deliveries are in flight at once,
	// as when X delivers a burst.
	concurrency = 32
)

func startServer(b *testing.B) (*server.Server, *gorm.DB) {
	b.Helper()
	fake := httptest.NewServer(xfake.New())
	b.Cleanup(fake.Close)
	dbURL := testenv.Database(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, server.Options{
		Env: config.Env{DatabaseURL: dbURL, NATSURL: testenv.NATSURL(), HTTPAddr: "127.0.0.1:0", PublicURL: "http://127.0.0.1"},
		File: &config.File{
			Teams: []config.Team{{Slug: "contact-centre", Name: "Contact centre"}},
			ChannelAccounts: []config.ChannelAccount{{Slug: account, Channel: "x", Name: "Council", Team: "contact-centre",
				APIBaseURL: fake.URL, X: &config.X{UserID: councilID, ConsumerSecret: secret, AccessToken: "t"}}},
		},
		Log:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Names: testenv.Namespace(b),
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
	return srv, direct
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
		resident := fmt.Sprint(2200000000000000000 + int64(i))
		var payload map[string]any
		switch {
		case i%10 < 4 || len(posts) == 0: // a new public mention
			posts = append(posts, id)
			payload = tweet(id, resident, "@ExampleCouncil the bin on my road was missed again", "", now)
		case i%10 < 6: // a reply in an earlier thread
			payload = tweet(id, resident, "@ExampleCouncil same problem here", posts[i%len(posts)], now)
		case i%10 < 9 || len(dmResidents) == 0: // a resident's first DM
			dmResidents = append(dmResidents, resident)
			payload = dm(id, resident, "Hello, I need help with my council tax", now)
		default: // a follow-up DM that joins the resident's open case
			payload = dm(id, dmResidents[i%len(dmResidents)], "Here is my account number", now)
		}
		body, _ := json.Marshal(payload)
		bodies = append(bodies, body)
	}
	return bodies
}

func tweet(id, from, text, inReplyTo string, at time.Time) map[string]any {
	ev := map[string]any{
		"id_str": id, "created_at": at.Format("Mon Jan 02 15:04:05 +0000 2006"), "text": text,
		"user": map[string]any{"id_str": from, "screen_name": "resident" + from[len(from)-6:], "name": "Resident"},
	}
	if inReplyTo != "" {
		ev["in_reply_to_status_id_str"] = inReplyTo
	}
	return map[string]any{"for_user_id": councilID, "tweet_create_events": []any{ev}}
}

func dm(id, from, text string, at time.Time) map[string]any {
	return map[string]any{
		"for_user_id": councilID,
		"direct_message_events": []any{map[string]any{
			"type": "message_create", "id": id, "created_timestamp": fmt.Sprint(at.UnixMilli()),
			"message_create": map[string]any{"target": map[string]any{"recipient_id": councilID}, "sender_id": from,
				"message_data": map[string]any{"text": text}},
		}},
		"users": map[string]any{from: map[string]any{"id": from, "name": "Resident", "screen_name": "resident" + from[len(from)-6:]}},
	}
}

// BenchmarkXWebhooks drives the server with b.N signed webhooks from
// concurrent senders and reports sustained webhooks per second, the
// webhook answer latency, and the latency from webhook accepted to case
// committed. Run it with a fixed count: -benchtime=20000x.
func BenchmarkXWebhooks(b *testing.B) {
	srv, direct := startServer(b)
	bodies := workload(b.N)
	sigs := make([]string, len(bodies))
	for i, body := range bodies {
		sigs[i] = x.Sign(secret, body)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency}}
	url := srv.URL() + "/webhooks/x/" + account

	answers := make([]time.Duration, len(bodies))
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) {
					return
				}
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
		direct.Raw(`SELECT count(*) FROM messages`).Scan(&n)
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
		FROM (SELECT extract(epoch FROM committed_at - received_at) * 1000 AS ms FROM messages) t`).Scan(&commit)

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
// ceiling for the case service's unit of work done one message per
// transaction: contact, identity, case, message and case event, committed.
// The ingest path batches many messages per transaction to beat it.
func BenchmarkPostgresCasePlusMessage(b *testing.B) {
	ctx := context.Background()
	dbURL := testenv.Database(b)
	db, err := store.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close(db) })
	if err := db.Exec(`INSERT INTO teams (slug, name) VALUES ('t', 'T');
		INSERT INTO channel_accounts (slug, channel, name, team_id) VALUES ('a', 'x', 'A', (SELECT id FROM teams))`).Error; err != nil {
		b.Fatal(err)
	}
	svc := cases.New(db, bus.Names{}, metrics.New(), slog.New(slog.DiscardHandler), nil)
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
				id := fmt.Sprint(i)
				in := channels.Inbound{Channel: "x", Account: "a", DedupeKey: "k" + id, ExternalID: id,
					Visibility: channels.Public, Text: "bench", Author: channels.Identity{ExternalID: "r" + id},
					SentAt: now, ReceivedAt: now}
				if err := store.Write(ctx, db, func(tx *gorm.DB) error {
					_, err := svc.StoreInbound(tx, in)
					return err
				}); err != nil {
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
