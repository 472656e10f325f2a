package loadtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
)

// BenchmarkEmergencyReply measures how long a resident who posts an
// emergency waits for the reply pointing to 999: from the webhook accepted
// to the reply arriving at X's API (the fake), through ingest, routing,
// the outbox and the sender, with the example council's configuration.
// Posts arrive at 20 a second, between ordinary ones; it reports p50 and
// p99.
func BenchmarkEmergencyReply(b *testing.B) {
	fake := xfake.New()
	var mu sync.Mutex
	accepted := map[string]time.Time{}
	var waits []time.Duration
	done := make(chan struct{}, b.N)
	fake.OnSent(func(s xfake.Sent) {
		if !strings.Contains(s.Text, "999") {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if t, ok := accepted[s.InReplyTo]; ok {
			waits = append(waits, time.Since(t))
			delete(accepted, s.InReplyTo)
			done <- struct{}{}
		}
	})
	srv, _, _ := startServerWith(b, fake)
	url := srv.URL() + "/webhooks/x/" + account
	post := func(id string, from int, text string) {
		body := xfake.Mention(council, id, resident(fmt.Sprint(2300000000000000000+from)), text, "", time.Now())
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("x-twitter-webhooks-signature", x.Sign(secret, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("webhook answered %d", resp.StatusCode)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprint(1800000000000000000 + int64(i))
		mu.Lock()
		accepted[id] = time.Now()
		mu.Unlock()
		post(id, 2*i, "@ExampleCouncil please help someone has been stabbed outside the shop on the high street")
		post(fmt.Sprint(1810000000000000000+int64(i)), 2*i+1, "@ExampleCouncil the bin on my road was missed again")
		time.Sleep(50 * time.Millisecond)
	}
	timeout := time.After(2 * time.Minute)
	for range b.N {
		select {
		case <-done:
		case <-timeout:
			b.Fatalf("only %d of %d emergency replies arrived", len(waits), b.N)
		}
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(waits)
	b.ReportMetric(ms(percentile(waits, 0.50)), "reply-p50-ms")
	b.ReportMetric(ms(percentile(waits, 0.99)), "reply-p99-ms")
	b.ReportMetric(0, "ns/op")
}
