package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
	"github.com/citizeninbox/inbox/internal/testenv"
)

func TestSignedMentionBecomesOneCase(t *testing.T) {
	h := newHarness(t)
	id := nextID()
	h.signed(mention(id, alice, "@ExampleCouncil the streetlight on Mill Lane is out", ""))

	caseID := h.waitCaseOf(id)
	c := h.caseDetail(caseID)
	if c.Status != "new" || c.Team != "contact-centre" {
		t.Errorf("case status %q team %q, want new in contact-centre", c.Status, c.Team)
	}
	if !strings.HasPrefix(c.Reference, "C-20") || len(c.Reference) != len("C-2026-000001") {
		t.Errorf("reference %q is not like C-2026-000001", c.Reference)
	}
	if c.Contact.ExternalID != alice.ID || c.Contact.Handle != alice.Handle {
		t.Errorf("contact %+v, want alice", c.Contact)
	}
	if len(c.Messages) != 1 || c.Messages[0].Body != "@ExampleCouncil the streetlight on Mill Lane is out" ||
		c.Messages[0].Visibility != "public" || c.Messages[0].Direction != "inbound" {
		t.Errorf("messages %+v", c.Messages)
	}
	if got := h.cases(); got != 1 {
		t.Errorf("%d cases, want 1", got)
	}
}

func TestRedeliveredWebhookMakesOneCase(t *testing.T) {
	h := newHarness(t)
	id := nextID()
	body := mention(id, alice, "@ExampleCouncil bins not collected on Oak Road", "")
	for range 3 {
		h.signed(body)
	}
	h.waitCaseOf(id)
	// A later message proves the consumer got past all three deliveries.
	later := nextID()
	h.signed(mention(later, bob, "@ExampleCouncil pothole on the High Street", ""))
	h.waitCaseOf(later)
	h.eventually("every delivery is handled", func() bool {
		return h.count(`SELECT count(*) FROM messages`) == 2
	})
	if got := h.count(`SELECT count(*) FROM messages WHERE external_id = ?`, id); got != 1 {
		t.Errorf("%d messages for the redelivered post, want 1", got)
	}
	if got := h.cases(); got != 2 {
		t.Errorf("%d cases, want 2", got)
	}
}

// Networks redeliver for days, long after JetStream's duplicate window:
// the database's unique key keeps such a copy from making anything new.
func TestRedeliveryAfterTheDuplicateWindowMakesNothingNew(t *testing.T) {
	h := newHarness(t)
	id := nextID()
	h.signed(mention(id, alice, "@ExampleCouncil dog fouling on the green", ""))
	h.waitCaseOf(id)

	msgs, err := x.Parse(mention(id, alice, "@ExampleCouncil dog fouling on the green", ""),
		x.Account{Slug: accountSlug, UserID: councilID}, time.Now())
	if err != nil || len(msgs) != 1 {
		t.Fatalf("parse: %v", err)
	}
	data, _ := json.Marshal(msgs[0])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A different JetStream message id, as a copy arriving after the
	// window would have.
	if _, err := h.srv.Bus.JS.Publish(ctx, h.opts.Names.InboundSubject("x", accountSlug), data,
		jetstream.WithMsgID(msgs[0].DedupeKey+"-days-later")); err != nil {
		t.Fatal(err)
	}
	h.eventually("the copy is handled", func() bool {
		return metric(t, h, `inbox_inbound_processed_total{result="duplicate"}`) == "1"
	})
	if got := h.count(`SELECT count(*) FROM messages`); got != 1 {
		t.Errorf("%d messages, want 1", got)
	}
	if got := h.cases(); got != 1 {
		t.Errorf("%d cases, want 1", got)
	}
}

func TestForgedSignatureIsRejected(t *testing.T) {
	h := newHarness(t)
	forged := mention(nextID(), alice, "@ExampleCouncil forged", "")
	if code := h.webhook(forged, x.Sign("not-the-secret", forged)); code != http.StatusUnauthorized {
		t.Errorf("forged signature answered %d, want 401", code)
	}
	if code := h.webhook(forged, ""); code != http.StatusUnauthorized {
		t.Errorf("missing signature answered %d, want 401", code)
	}
	tampered := mention(nextID(), alice, "@ExampleCouncil original", "")
	sig := x.Sign(consumerKey, tampered)
	tampered = []byte(strings.Replace(string(tampered), "original", "tampered", 1))
	if code := h.webhook(tampered, sig); code != http.StatusUnauthorized {
		t.Errorf("tampered body answered %d, want 401", code)
	}

	// Then a genuine one, so we know the consumer had its chance.
	ok := nextID()
	h.signed(mention(ok, bob, "@ExampleCouncil genuine", ""))
	h.waitCaseOf(ok)
	if got := h.cases(); got != 1 {
		t.Errorf("%d cases, want only the genuine one", got)
	}
	if got := metric(t, h, `inbox_webhooks_total{channel="x",result="forged"}`); got != "3" {
		t.Errorf("forged webhooks counted %q, want 3", got)
	}
}

func TestMalformedWebhookIsRejected(t *testing.T) {
	h := newHarness(t)
	for _, body := range []string{`{"not":"x"}`, `not json`, `{"tweet_create_events":[{"text":"no id"}]}`} {
		if code := h.webhook([]byte(body), x.Sign(consumerKey, []byte(body))); code != http.StatusBadRequest {
			t.Errorf("%s answered %d, want 400", body, code)
		}
	}
	if got := metric(t, h, `inbox_webhooks_total{channel="x",result="malformed"}`); got != "3" {
		t.Errorf("malformed webhooks counted %q, want 3", got)
	}
	// One unreadable event in a delivery costs only itself.
	good := nextID()
	partial := fmt.Sprintf(`{"for_user_id":%q,"tweet_create_events":[{"user":{"id_str":"5"}},{"id_str":%q,"text":"@ExampleCouncil hi","user":{"id_str":%q,"screen_name":"alice_resident"}}]}`,
		councilID, good, alice.ID)
	if code := h.webhook([]byte(partial), x.Sign(consumerKey, []byte(partial))); code != http.StatusOK {
		t.Errorf("partly readable delivery answered %d, want 200", code)
	}
	h.waitCaseOf(good)
	if got := metric(t, h, `inbox_webhooks_total{channel="x",result="partly_malformed"}`); got != "1" {
		t.Errorf("partly malformed webhooks counted %q, want 1", got)
	}
	// Genuine deliveries are kept whole for what could not be read.
	if got := h.count(`SELECT count(*) FROM inbound_rejected WHERE subject = ?`, "/webhooks/x/"+accountSlug); got != 4 {
		t.Errorf("%d deliveries kept in inbound_rejected, want the 3 malformed and the partly malformed one", got)
	}
	resp, err := http.Post(h.srv.URL()+"/webhooks/x/no-such-account", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown account answered %d, want 404", resp.StatusCode)
	}
}

func TestCRCChallenge(t *testing.T) {
	h := newHarness(t)
	resp, err := http.Get(h.srv.URL() + "/webhooks/x/" + accountSlug + "?crc_token=challenge-123")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		ResponseToken string `json:"response_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || got.ResponseToken != x.CRCResponse(consumerKey, "challenge-123") ||
		!strings.HasPrefix(got.ResponseToken, "sha256=") {
		t.Errorf("CRC answered %d %q", resp.StatusCode, got.ResponseToken)
	}
	resp2, err := http.Get(h.srv.URL() + "/webhooks/x/" + accountSlug)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusBadRequest {
		t.Errorf("GET without crc_token answered %d, want 400", resp2.StatusCode)
	}
}

func TestDirectMessagesFromOneResidentShareACase(t *testing.T) {
	h := newHarness(t)
	first, second := nextID(), nextID()
	h.signed(directMessage(first, alice, "Hello, my council tax bill is wrong"))
	c1 := h.waitCaseOf(first)
	h.signed(directMessage(second, alice, "My account number is 12345"))
	c2 := h.waitCaseOf(second)
	if c1 != c2 {
		t.Errorf("second DM made case %d, want it on case %d", c2, c1)
	}
	// Another resident's DM is another case.
	other := nextID()
	h.signed(directMessage(other, bob, "Hi"))
	if c3 := h.waitCaseOf(other); c3 == c1 {
		t.Errorf("bob's DM joined alice's case")
	}
	c := h.caseDetail(c1)
	if len(c.Messages) != 2 || c.Messages[0].Visibility != "private" {
		t.Errorf("case messages %+v", c.Messages)
	}
	// The council's own DMs come back through the webhook too; they are skipped.
	own := nextID()
	h.signed(directMessage(own, council, "our own reply"))
	marker := nextID()
	h.signed(directMessage(marker, bob, "marker"))
	h.waitCaseOf(marker)
	if got := h.caseOf(own); got != 0 {
		t.Errorf("the council's own DM was stored on case %d", got)
	}
}

func TestDirectMessageAfterResolutionOpensANewCase(t *testing.T) {
	h := newHarness(t)
	_, c1 := h.dmCase(alice, "Is the tip open on Sunday?")
	if code, raw := h.api(http.MethodPut, "/cases/"+itoa(c1)+"/status", map[string]string{"status": "closed"}); code != 200 {
		t.Fatalf("close: %d %s", code, raw)
	}
	second := nextID()
	h.signed(directMessage(second, alice, "Another question"))
	if c2 := h.waitCaseOf(second); c2 == c1 {
		t.Errorf("a DM after the case closed joined the closed case")
	}
}

func TestXActivityEnvelopeBecomesACase(t *testing.T) {
	h := newHarness(t)
	id := nextID()
	body := xfake.ActivityMention(council, "0f9b6c1e-1", id, alice, "@ExampleCouncil graffiti on the bridge", time.Now())
	h.signed(body)
	c := h.caseDetail(h.waitCaseOf(id))
	if c.Contact.Handle != alice.Handle || c.Messages[0].Body != "@ExampleCouncil graffiti on the bridge" {
		t.Errorf("case %+v", c)
	}
}

func TestLongPostUsesFullText(t *testing.T) {
	h := newHarness(t)
	id := nextID()
	full := "@ExampleCouncil " + strings.Repeat("The hedge on Station Road blocks the pavement. ", 8)
	body, _ := json.Marshal(map[string]any{"for_user_id": councilID, "tweet_create_events": []any{map[string]any{
		"id_str": id, "created_at": time.Now().UTC().Format("Mon Jan 02 15:04:05 +0000 2006"),
		"text": full[:140] + "…", "truncated": true, "extended_tweet": map[string]any{"full_text": full},
		"user": map[string]any{"id_str": alice.ID, "screen_name": alice.Handle, "name": alice.Name},
	}}})
	h.signed(body)
	c := h.caseDetail(h.waitCaseOf(id))
	if c.Messages[0].Body != full {
		t.Errorf("stored %q, want the full text", c.Messages[0].Body)
	}
}

func TestWebhookAcceptedWhilePostgreSQLIsStoppedBecomesACase(t *testing.T) {
	pg := testenv.StartPostgres(t)
	h := newHarness(t, withDatabase(pg.CreateDatabase("inbox")))
	before := nextID()
	h.signed(mention(before, bob, "@ExampleCouncil before the outage", ""))
	h.waitCaseOf(before)

	pg.Stop()
	id := nextID()
	h.signed(mention(id, alice, "@ExampleCouncil flooding on Bridge Street", ""))
	dm := nextID()
	h.signed(directMessage(dm, carol, "Water is coming into the house"))
	if code, body := readyz(t, h); code != http.StatusOK || !strings.Contains(body, `"database":"unavailable"`) {
		t.Errorf("/readyz answered %d %s while PostgreSQL was stopped, want 200 with the database unavailable", code, body)
	}
	// The API says plainly that it cannot answer now.
	for _, op := range []string{"listCases", "getCase", "replyToCase", "addCaseNote", "setCaseStatus", "assignCase", "setCasePriority", "claimNextCase",
		"listChannelAccounts", "getContact", "linkContactIdentity", "unlinkContactIdentity", "listContactSuggestions", "measureReply",
		"exportCases", "exportMessages"} {
		method, path := operationPath(t, op)
		var body any
		if b, ok := sampleBodies[op]; ok {
			body = b
		}
		path = strings.NewReplacer("{case}", "1", "{contact}", "1", "{identity}", "1").Replace(path)
		if code, raw := h.api(method, path, body); code != http.StatusServiceUnavailable {
			t.Errorf("%s while PostgreSQL was stopped: %d %s, want 503", op, code, raw)
		}
	}
	h.eventually("the case service tries, and fails", func() bool {
		return metricValue(t, h, `inbox_inbound_processed_total{result="failed"}`) > 0
	})
	pg.Start()

	h.waitCaseOf(id)
	h.waitCaseOf(dm)
	if got := h.cases(); got != 3 {
		t.Errorf("%d cases, want 3", got)
	}
}

func TestWebhookAcceptedWhileDatabaseIsUnreachableBecomesACase(t *testing.T) {
	proxy := testenv.NewProxy(t, testenv.DatabaseAddr())
	h := newHarness(t, withDatabaseProxy(proxy))

	proxy.Block()
	id := nextID()
	h.signed(mention(id, alice, "@ExampleCouncil flooding on Bridge Street", ""))
	// The case service cannot reach PostgreSQL: the message waits in JetStream.
	h.eventually("the case service tries, and fails", func() bool {
		return metricValue(t, h, `inbox_inbound_processed_total{result="failed"}`) > 0
	})
	if got := h.caseOf(id); got != 0 {
		t.Fatalf("case %d exists while the database was unreachable", got)
	}
	// Still ready: webhooks must keep coming while the database is away.
	if code, body := readyz(t, h); code != http.StatusOK || !strings.Contains(body, `"database":"unavailable"`) {
		t.Errorf("/readyz answered %d %s while the database was unreachable, want 200 with the database unavailable", code, body)
	}
	proxy.Unblock()
	h.waitCaseOf(id)
	if got := h.cases(); got != 1 {
		t.Errorf("%d cases, want 1", got)
	}
}

func TestNothingIsLostOrDuplicatedAcrossARestart(t *testing.T) {
	h := newHarness(t)
	const n = 60
	ids := make([]string, n)
	for i := range ids {
		ids[i] = nextID()
		if i%2 == 0 {
			h.signed(mention(ids[i], alice, fmt.Sprintf("@ExampleCouncil report %d", i), ""))
		} else {
			h.signed(directMessage(ids[i], bob, fmt.Sprintf("message %d", i)))
		}
	}
	// Stop (gracefully) with messages still in flight, then start again.
	h.stop()
	h.start()
	// A redelivery after the restart still makes nothing new.
	h.signed(mention(ids[0], alice, "@ExampleCouncil report 0", ""))
	h.eventually("every message is stored", func() bool {
		return h.count(`SELECT count(*) FROM messages`) == n
	})
	h.settled(bus.Inbound, cases.ConsumerName)
	if got := h.count(`SELECT count(*) FROM messages`); got != n {
		t.Errorf("%d messages, want %d", got, n)
	}
	// Alice's mentions are separate cases; Bob's DMs share one.
	if got := h.cases(); got != n/2+1 {
		t.Errorf("%d cases, want %d", got, n/2+1)
	}
}

func readyz(t *testing.T, h *harness) (int, string) {
	resp, err := http.Get(h.srv.OpsURL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metric reads one series' value from /metrics.
func metric(t *testing.T, h *harness, series string) string {
	t.Helper()
	resp, err := http.Get(h.srv.OpsURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

func TestCaseEventsArePublished(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cons, err := h.srv.Bus.JS.OrderedConsumer(ctx, h.opts.Names.Stream(bus.CaseEvents), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	_, caseID := h.mentionCase(alice, "@ExampleCouncil broken bench in the park")

	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("no case event: %v", err)
	}
	var ev cases.Event
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		t.Fatal(err)
	}
	want := h.opts.Names.CaseEventSubject(cases.EventCreated, "contact-centre")
	if msg.Subject() != want || ev.Kind != cases.EventCreated || ev.CaseID != caseID || ev.Team != "contact-centre" {
		t.Errorf("event %s %+v, want %s for case %d", msg.Subject(), ev, want, caseID)
	}
}
