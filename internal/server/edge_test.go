package server_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/ingest"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/testenv"
)

// The public edge: webhooks as an attacker, a slow network or a very large
// delivery would send them.

// withIngest sets the webhook intake limits.
func withIngest(o ingest.Options) harnessOption {
	return func(opts *server.Options, _ *harness) { opts.Ingest = o }
}

// fakeSignature has the shape of an X signature and signs nothing.
var fakeSignature = "sha256=" + base64.StdEncoding.EncodeToString(make([]byte, sha256.Size))

// metricValue reads one series from /metrics as a number; 0 when absent.
func metricValue(t *testing.T, h *harness, series string) float64 {
	t.Helper()
	v := metric(t, h, series)
	if v == "" {
		return 0
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", series, v, err)
	}
	return f
}

const unverifiedGauge = "inbox_webhook_unverified_bytes"

// openDelivery opens a connection and sends a webhook's headers and the
// first part of its body, leaving the rest unsent.
func openDelivery(t *testing.T, h *harness, signature string, contentLength int, first []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", h.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var head strings.Builder
	fmt.Fprintf(&head, "POST /webhooks/x/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n",
		accountSlug, h.srv.Addr(), contentLength)
	if signature != "" {
		fmt.Fprintf(&head, "%s: %s\r\n", webhookHeader, signature)
	}
	head.WriteString("\r\n")
	if _, err := conn.Write(append([]byte(head.String()), first...)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// answer reads the response on conn, waiting at most 15 s.
func answer(t *testing.T, conn net.Conn) *http.Response {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// unanswered reports whether nothing has come back on conn.
func unanswered(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	n, err := conn.Read(make([]byte, 1))
	var ne net.Error
	return n == 0 && errors.As(err, &ne) && ne.Timeout()
}

// lockedBuffer collects log lines from every goroutine of a server.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// withLogCapture sends the server's logs, at every level, to w.
func withLogWriter(w io.Writer) harnessOption {
	return func(o *server.Options, _ *harness) {
		o.Log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// The CRC endpoint signs with the key that signs deliveries: it must not
// sign a token that is anything but a CRC token, or anyone could get a
// valid signature for a forged delivery.
func TestCRCEndpointIsNoSignatureOracle(t *testing.T) {
	h := newHarness(t)
	forged := mention(nextID(), alice, "@ExampleCouncil forged through the CRC endpoint", "")
	for _, token := range []string{string(forged), "token with spaces", strings.Repeat("a", 129), "a.b"} {
		resp, err := http.Get(h.srv.URL() + "/webhooks/x/" + accountSlug + "?crc_token=" + url.QueryEscape(token))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("crc_token of %d bytes answered %d, want 400", len(token), resp.StatusCode)
		}
		if bytes.Contains(body, []byte("response_token")) || bytes.Contains(body, []byte(x.CRCResponse(consumerKey, token)[len("sha256="):])) {
			t.Errorf("crc_token of %d bytes was signed: %s", len(token), body)
		}
	}
	// Two tokens: which one would be signed is not for the caller to pick.
	resp, err := http.Get(h.srv.URL() + "/webhooks/x/" + accountSlug + "?crc_token=abc&crc_token=def")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("two crc_tokens answered %d, want 400", resp.StatusCode)
	}
	if got := metric(t, h, `inbox_webhooks_total{channel="x",result="bad_challenge"}`); got != "5" {
		t.Errorf("refused challenges counted %q, want 5", got)
	}
	// The forged delivery, had it been signed through the endpoint, is refused.
	if code := h.webhook(forged, fakeSignature); code != http.StatusUnauthorized {
		t.Errorf("forged delivery answered %d, want 401", code)
	}
}

// A request that cannot be genuine by its headers is refused before its
// body is read: the sender gets 401 without sending a byte of it.
func TestUnsignedWebhookIsRefusedBeforeItsBodyIsRead(t *testing.T) {
	h := newHarness(t)
	for _, sig := range []string{"", "sha256=", "sha256=not base64", "sha1=" + fakeSignature[len("sha256="):]} {
		conn := openDelivery(t, h, sig, 1000, nil)
		if resp := answer(t, conn); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("signature %q with the body unsent answered %d, want 401", sig, resp.StatusCode)
		}
	}
	if got := metric(t, h, `inbox_webhooks_total{channel="x",result="forged"}`); got != "4" {
		t.Errorf("refused webhooks counted %q, want 4", got)
	}
}

// 300 senders trickling bodies under a fake signature do not stop genuine
// webhooks: bodies are charged by the bytes they hold, not by slots.
func TestSlowUnsignedSendersDoNotBlockSignedWebhooks(t *testing.T) {
	// The body deadline is long here so that the slow senders stay open
	// for the whole test; TestSlowBodyIsCutOff checks the deadline.
	h := newHarness(t, withIngest(ingest.Options{BodyTimeout: 5 * time.Minute}))
	const slow, bodyLen = 300, 4096
	conns := make([]net.Conn, slow)
	for i := range conns {
		conns[i] = openDelivery(t, h, fakeSignature, bodyLen, []byte(`{"for_user_id":`))
	}
	// Keep trickling: one byte per connection every 100 ms.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, c := range conns {
					_, _ = c.Write([]byte(" "))
				}
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	waitFor(t, "every slow body is being read", 30*time.Second, func() bool {
		return metricValue(t, h, unverifiedGauge) == slow*bodyLen
	})

	var ids []string
	for i := range 20 {
		id := nextID()
		ids = append(ids, id)
		h.signed(mention(id, alice, fmt.Sprintf("@ExampleCouncil report %d while the slow senders wait", i), ""))
	}
	for _, id := range ids {
		h.waitCaseOf(id)
	}
	for i, c := range conns {
		if !unanswered(c) {
			t.Fatalf("slow connection %d was answered or closed while its body was still arriving", i)
		}
	}
	for _, c := range conns {
		_ = c.Close()
	}
	waitFor(t, "the slow bodies' memory is given back", 15*time.Second, func() bool {
		return metricValue(t, h, unverifiedGauge) == 0
	})
}

// A body that does not arrive within the body deadline is cut off with 408.
func TestSlowBodyIsCutOff(t *testing.T) {
	h := newHarness(t, withIngest(ingest.Options{BodyTimeout: 500 * time.Millisecond}))
	conn := openDelivery(t, h, fakeSignature, 1000, []byte(`{"for_user_id":`))
	if resp := answer(t, conn); resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("a body that never arrives answered %d, want 408", resp.StatusCode)
	}
	if got := metric(t, h, `inbox_webhooks_total{channel="x",result="slow"}`); got != "1" {
		t.Errorf("slow bodies counted %q, want 1", got)
	}
	h.signed(mention(nextID(), alice, "@ExampleCouncil after the slow one", ""))
}

// Memory held by bodies whose signatures are not checked yet is capped:
// past the cap, senders get 503 with Retry-After and nothing is read.
func TestUnverifiedBodiesPastTheMemoryCapGet503(t *testing.T) {
	const capBytes, maxBody = 1 << 20, 512 << 10
	h := newHarness(t, withIngest(ingest.Options{MaxBody: maxBody, UnverifiedBytes: capBytes, BodyTimeout: 5 * time.Minute}))
	// Three large unsigned bodies, most of each sent: 768 KiB held.
	const holders, holderLen = 3, 256 << 10
	conns := make([]net.Conn, holders)
	for i := range conns {
		conns[i] = openDelivery(t, h, fakeSignature, holderLen, bytes.Repeat([]byte(" "), 200<<10))
	}
	waitFor(t, "the large bodies are held", 30*time.Second, func() bool {
		return metricValue(t, h, unverifiedGauge) == holders*holderLen
	})

	// A sender that asks before sending its body is refused before it
	// sends a byte of it.
	conn, err := net.Dial("tcp", h.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	fmt.Fprintf(conn, "POST /webhooks/x/%s HTTP/1.1\r\nHost: inbox\r\nContent-Length: %d\r\nExpect: 100-continue\r\n%s: %s\r\n\r\n",
		accountSlug, 300<<10, webhookHeader, fakeSignature)
	if resp := answer(t, conn); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a body that cannot fit was answered %d (Retry-After %q) before it was sent, want 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	// Many more at once: none fits in what is left.
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	const senders = 20
	statuses := make(chan string, senders)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL()+"/webhooks/x/"+accountSlug,
				bytes.NewReader(bytes.Repeat([]byte(" "), 300<<10)))
			req.Header.Set("Expect", "100-continue")
			req.Header.Set(webhookHeader, fakeSignature)
			resp, err := client.Do(req)
			if err != nil {
				statuses <- err.Error()
				return
			}
			resp.Body.Close()
			statuses <- fmt.Sprintf("%d Retry-After=%s", resp.StatusCode, resp.Header.Get("Retry-After"))
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != "503 Retry-After=5" {
			t.Errorf("a body past the memory cap answered %s, want 503 with Retry-After", s)
		}
	}
	if got := metric(t, h, `inbox_webhooks_total{channel="x",result="busy"}`); got != strconv.Itoa(senders+1) {
		t.Errorf("refused bodies counted %q, want %d", got, senders+1)
	}

	// Once the held bodies go, the memory is back for genuine deliveries.
	for _, c := range conns {
		_ = c.Close()
	}
	waitFor(t, "the held bodies' memory is given back", 15*time.Second, func() bool {
		return metricValue(t, h, unverifiedGauge) == 0
	})
	h.signed(mention(nextID(), alice, "@ExampleCouncil after the flood", ""))
}

// A delivery over the size cap is refused with 413, as the README says.
func TestDeliveryOverTheSizeCapIs413(t *testing.T) {
	h := newHarness(t)
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL()+"/webhooks/x/"+accountSlug,
		bytes.NewReader(make([]byte, ingest.DefaultMaxBody+1)))
	req.Header.Set("Expect", "100-continue")
	req.Header.Set(webhookHeader, fakeSignature)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the cap answered %d, want 413", resp.StatusCode)
	}
}

// dmEvent is one Account Activity direct message event.
func dmEvent(id string, from resident, text string) map[string]any {
	return map[string]any{
		"type": "message_create", "id": id,
		"created_timestamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
		"message_create": map[string]any{
			"target":       map[string]any{"recipient_id": councilID},
			"sender_id":    from.ID,
			"message_data": map[string]any{"text": text},
		},
	}
}

// mentionEvent is one Account Activity tweet_create_events entry.
func mentionEvent(id string, from resident, text string) map[string]any {
	return map[string]any{
		"id_str": id, "created_at": time.Now().UTC().Format(time.RubyDate), "text": text,
		"user": map[string]any{"id_str": from.ID, "screen_name": from.Handle, "name": from.Name},
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withEmbeddedNATS runs the server on its own embedded NATS, as a single
// machine install does: every write is synced to disk before JetStream
// acknowledges it.
func withEmbeddedNATS(t *testing.T) harnessOption {
	return func(o *server.Options, _ *harness) {
		o.Env.NATSURL = ""
		o.Env.NATSDir = t.TempDir()
	}
}

// A delivery of 10,000 events is answered 200 and every event becomes a
// message: publishing goes in windows the NATS client never stalls on,
// even when every acknowledgement waits for the disk.
func TestDeliveryOfTenThousandEventsIsStoredWhole(t *testing.T) {
	// How fast the disk takes 10,000 synced writes is not the question
	// here (under the race detector on a shared machine it can be
	// slower than the networks' deadline): whether the client stalls is.
	h := newHarness(t, withEmbeddedNATS(t), withIngest(ingest.Options{PublishTimeout: time.Minute}))
	const n = 10000
	events := make([]any, n)
	for i := range events {
		events[i] = dmEvent(nextID(), alice, fmt.Sprintf("message %d of a long conversation", i))
	}
	body := mustJSON(t, map[string]any{
		"for_user_id":           councilID,
		"direct_message_events": events,
		"users":                 map[string]any{alice.ID: map[string]any{"id": alice.ID, "name": alice.Name, "screen_name": alice.Handle}},
	})
	if len(body) > ingest.DefaultMaxBody {
		t.Fatalf("the delivery is %d bytes, over the cap: make the events smaller", len(body))
	}
	h.signed(body)
	waitFor(t, "every event is a message", 3*time.Minute, func() bool {
		return h.count(`SELECT count(*) FROM messages`) == n
	})
	if got := metric(t, h, `inbox_inbound_messages_total{channel="x"}`); got != strconv.Itoa(n) {
		t.Errorf("published messages counted %q, want %d", got, n)
	}
}

type rejectedRow struct {
	Subject string
	Data    []byte
	Reason  string
}

func (h *harness) rejected() []rejectedRow {
	h.t.Helper()
	var rows []rejectedRow
	if err := h.direct.Raw(`SELECT subject, data, reason FROM inbound_rejected ORDER BY id`).Scan(&rows).Error; err != nil {
		h.t.Fatal(err)
	}
	return rows
}

// An event too large for the bus is not lost: with one small and one 2 MB
// event in a delivery, the small one becomes a case and the large one is
// kept whole in inbound_rejected with the reason. An event that is large
// only by its raw copy becomes a case without it.
func TestEventOverTheBusLimitIsKept(t *testing.T) {
	h := newHarness(t)
	limit := int(h.srv.Bus.Conn.MaxPayload())
	small, large, padded := nextID(), nextID(), nextID()
	largeText := strings.Repeat("The drain on Mill Lane is blocked again. ", 2<<20/41)
	body := mustJSON(t, map[string]any{"for_user_id": councilID, "tweet_create_events": []any{
		mentionEvent(small, alice, "@ExampleCouncil a small report"),
		mentionEvent(large, bob, "@ExampleCouncil "+largeText),
	}})
	if len(largeText) <= limit {
		t.Fatalf("the large event's text (%d bytes) is not over the bus limit (%d)", len(largeText), limit)
	}
	h.signed(body)
	c := h.caseDetail(h.waitCaseOf(small))
	if c.Messages[0].Body != "@ExampleCouncil a small report" {
		t.Errorf("small event stored as %q", c.Messages[0].Body)
	}

	rows := h.rejected()
	if len(rows) != 1 {
		t.Fatalf("%d rows in inbound_rejected, want the large event", len(rows))
	}
	var kept channels.Inbound
	if err := json.Unmarshal(rows[0].Data, &kept); err != nil {
		t.Fatalf("kept data is not an inbound message: %v", err)
	}
	if rows[0].Subject != h.opts.Names.InboundSubject("x", accountSlug) || kept.ExternalID != large ||
		kept.Text != "@ExampleCouncil "+largeText || len(kept.Raw) == 0 {
		t.Errorf("kept %s %s text %d bytes raw %d bytes", rows[0].Subject, kept.ExternalID, len(kept.Text), len(kept.Raw))
	}
	if !strings.Contains(rows[0].Reason, "payload limit") {
		t.Errorf("reason %q does not say why", rows[0].Reason)
	}
	if got := h.caseOf(large); got != 0 {
		t.Errorf("the large event made case %d", got)
	}

	// Large only by the network's own JSON around a short text.
	ev := mentionEvent(padded, carol, "@ExampleCouncil short text, long envelope")
	ev["extended_entities"] = map[string]any{"padding": strings.Repeat("x", 2<<20)}
	h.signed(mustJSON(t, map[string]any{"for_user_id": councilID, "tweet_create_events": []any{ev}}))
	c = h.caseDetail(h.waitCaseOf(padded))
	if c.Messages[0].Body != "@ExampleCouncil short text, long envelope" {
		t.Errorf("padded event stored as %q", c.Messages[0].Body)
	}
	if got := h.count(`SELECT count(*) FROM messages WHERE external_id = ? AND raw IS NULL`, padded); got != 1 {
		t.Errorf("the padded event's raw copy was stored (%d rows without it)", got)
	}
	if got := metric(t, h, `inbox_webhooks_total{channel="x",result="oversized"}`); got != "2" {
		t.Errorf("oversized deliveries counted %q, want 2", got)
	}
}

// When what cannot be published cannot be kept either, the answer is 503,
// so the network delivers again; the redelivery is kept once.
func TestEventThatCannotBeKeptIsRefusedForRedelivery(t *testing.T) {
	proxy := testenv.NewProxy(t, testenv.DatabaseAddr())
	h := newHarness(t, withDatabaseProxy(proxy))
	large := nextID()
	body := mustJSON(t, map[string]any{"for_user_id": councilID, "tweet_create_events": []any{
		mentionEvent(large, bob, "@ExampleCouncil "+strings.Repeat("flooding ", 2<<20/9)),
	}})
	proxy.Block()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL()+"/webhooks/x/"+accountSlug, bytes.NewReader(body))
	req.Header.Set(webhookHeader, x.Sign(consumerKey, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("unkeepable event answered %d (Retry-After %q), want 503 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	proxy.Unblock()
	h.signed(body)
	if rows := h.rejected(); len(rows) != 1 {
		t.Errorf("%d rows in inbound_rejected, want 1", len(rows))
	}
}

// A signed delivery with a key twice in one object is refused: a decoder
// would keep one value and silently drop the other.
func TestDuplicateKeysAreRefused(t *testing.T) {
	h := newHarness(t)
	first, second := nextID(), nextID()
	ev := func(id string) string {
		return fmt.Sprintf(`{"id_str":%q,"text":"@ExampleCouncil report","user":{"id_str":%q,"screen_name":"alice_resident"}}`, id, alice.ID)
	}
	bodies := []string{
		// The second array would replace the first.
		fmt.Sprintf(`{"for_user_id":%q,"tweet_create_events":[%s],"tweet_create_events":[%s]}`, councilID, ev(first), ev(second)),
		// The second account id would change the dedupe key.
		fmt.Sprintf(`{"for_user_id":%q,"tweet_create_events":[%s],"for_user_id":"999"}`, councilID, ev(first)),
		// Deep inside an event.
		fmt.Sprintf(`{"for_user_id":%q,"tweet_create_events":[{"id_str":%q,"text":"a","user":{"id_str":%q,"id_str":"1"}}]}`, councilID, first, alice.ID),
		// Spelled differently, matched to one field all the same.
		fmt.Sprintf(`{"for_user_id":%q,"For_User_ID":"999","tweet_create_events":[%s]}`, councilID, ev(first)),
		// Escaped.
		fmt.Sprintf(`{"for_user_id":%q,"\u0066or_user_id":"999","tweet_create_events":[%s]}`, councilID, ev(first)),
	}
	for _, b := range bodies {
		if code := h.webhook([]byte(b), x.Sign(consumerKey, []byte(b))); code != http.StatusBadRequest {
			t.Errorf("duplicate keys answered %d, want 400: %s", code, b)
		}
	}
	if got := metric(t, h, `inbox_webhooks_total{channel="x",result="duplicate_keys"}`); got != strconv.Itoa(len(bodies)) {
		t.Errorf("duplicate-key deliveries counted %q, want %d", got, len(bodies))
	}
	// Kept, not lost, and nothing of them became a message.
	if rows := h.rejected(); len(rows) != len(bodies) || rows[0].Subject != "/webhooks/x/"+accountSlug {
		t.Errorf("inbound_rejected holds %d rows, want each delivery whole", len(rows))
	}
	marker := nextID()
	h.signed(mention(marker, bob, "@ExampleCouncil a genuine one", ""))
	h.waitCaseOf(marker)
	if got := h.count(`SELECT count(*) FROM messages`); got != 1 {
		t.Errorf("%d messages, want only the genuine one", got)
	}
}

// Nothing a resident wrote reaches the logs, whatever is wrong with the
// delivery that carried it.
func TestIngestLogsCarryNoResidentText(t *testing.T) {
	var logs lockedBuffer
	proxy := testenv.NewProxy(t, testenv.DatabaseAddr())
	h := newHarness(t, withDatabaseProxy(proxy), withLogWriter(&logs))
	const secret = "Flat 4b, my son Jamie is unwell"
	handle, name := "resident_handle_zq", "Resident Name Zq"
	who := resident{ID: "2200000000000000099", Handle: handle, Name: name}
	good := nextID()
	deliveries := [][]byte{
		// Not JSON.
		[]byte(`{"for_user_id":"` + councilID + `","tweet_create_events":[{"text":"` + secret + `"`),
		// Neither payload family.
		mustJSON(t, map[string]any{"note": secret}),
		// Events that cannot be read, beside one that can.
		mustJSON(t, map[string]any{"for_user_id": councilID, "tweet_create_events": []any{
			map[string]any{"id_str": nextID(), "text": secret, "user": map[string]any{"screen_name": handle, "name": name}},
			map[string]any{"id_str": nextID(), "text": []string{secret}, "user": map[string]any{"id_str": who.ID}},
			map[string]any{"id_str": map[string]any{"x": secret}, "text": secret, "user": map[string]any{"id_str": who.ID}},
			mentionEvent(good, who, "@ExampleCouncil "+secret),
		}}),
		// X Activity events that cannot be read.
		mustJSON(t, map[string]any{"data": []any{
			map[string]any{"event_type": "post.mention.create", "payload": map[string]any{"text": secret, "id": []string{secret}}},
			map[string]any{"event_type": "dm.received", "payload": secret},
		}}),
		// Duplicate keys.
		[]byte(`{"for_user_id":"` + councilID + `","tweet_create_events":[{"text":"` + secret + `","text":"` + secret + `"}]}`),
		// Over the bus's limit.
		mustJSON(t, map[string]any{"for_user_id": councilID, "tweet_create_events": []any{
			mentionEvent(nextID(), who, secret+strings.Repeat(" "+secret, 2<<20/len(secret))),
		}}),
	}
	for _, b := range deliveries {
		h.webhook(b, x.Sign(consumerKey, b))
		h.webhook(b, fakeSignature)
	}
	// And with the database away, so that keeping fails too.
	proxy.Block()
	for _, b := range deliveries {
		h.webhook(b, x.Sign(consumerKey, b))
	}
	proxy.Unblock()
	h.waitCaseOf(good)
	h.stop()

	lines := strings.Split(logs.String(), "\n")
	var ingestLines int
	for _, line := range lines {
		if strings.Contains(line, "role=ingest") {
			ingestLines++
		}
	}
	if ingestLines < len(deliveries) {
		t.Fatalf("%d ingest log lines captured, want one at least for each delivery", ingestLines)
	}
	// No line at all, at debug level, carries what the resident wrote.
	for _, line := range lines {
		for _, banned := range []string{secret, "Jamie", handle, name} {
			if strings.Contains(line, banned) {
				t.Errorf("a log line carries %q: %.300s", banned, line)
			}
		}
	}
}

// The tests run on the NATS server of the machine (Debian's 2.9); the
// product embeds a newer one. The whole path, streams, consumers and the
// rate-limit bucket included, also runs on the embedded server.
func TestWholePathOnTheEmbeddedNATS(t *testing.T) {
	h := newHarness(t, withEmbeddedNATS(t))
	post, caseID := h.mentionCase(alice, "@ExampleCouncil the streetlight on Park Row is out")
	_, dmCase := h.dmCase(bob, "My recycling was not collected")
	for _, r := range []struct {
		caseID     int64
		visibility string
	}{{caseID, "public"}, {dmCase, "private"}} {
		m := h.reply(r.caseID, r.visibility, "Thank you, we have passed this to the team.")
		if sent := h.waitDelivery(r.caseID, m.ID); sent.DeliveryStatus != "sent" {
			t.Fatalf("%s reply %q: %s", r.visibility, sent.DeliveryStatus, sent.FailureReason)
		}
	}
	if got := h.fake.Sent(); len(got) != 2 || got[0].InReplyTo != post {
		t.Errorf("fake X recorded %+v", got)
	}
}
