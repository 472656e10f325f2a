package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
	"github.com/citizeninbox/inbox/internal/outbound"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestPublicReplyGoesToTheResidentsThread(t *testing.T) {
	h := newHarness(t)
	post, caseID := h.mentionCase(alice, "@ExampleCouncil when is the garden waste collection?")

	m := h.reply(caseID, "public", "Hi Alice, garden waste is collected every other Tuesday.")
	if m.DeliveryStatus != "queued" {
		t.Errorf("new reply is %q, want queued", m.DeliveryStatus)
	}
	sent := h.waitDelivery(caseID, m.ID)
	if sent.DeliveryStatus != "sent" {
		t.Fatalf("reply %q: %s", sent.DeliveryStatus, sent.FailureReason)
	}
	got := h.fake.Sent()
	if len(got) != 1 || got[0].Kind != "post" || got[0].InReplyTo != post ||
		got[0].Text != "Hi Alice, garden waste is collected every other Tuesday." {
		t.Fatalf("fake X recorded %+v", got)
	}
	if sent.ExternalID != got[0].ID {
		t.Errorf("message external id %q, want the network's %q", sent.ExternalID, got[0].ID)
	}
	c := h.caseDetail(caseID)
	if c.Status != "open" {
		t.Errorf("case status after first reply %q, want open", c.Status)
	}
}

func TestResidentsReplyToTheCouncilJoinsTheCase(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.mentionCase(alice, "@ExampleCouncil is the library open today?")
	m := h.reply(caseID, "public", "Yes, until 6pm.")
	ourPost := h.waitDelivery(caseID, m.ID).ExternalID

	answer := nextID()
	h.signed(mention(answer, alice, "@ExampleCouncil thanks! and on Saturday?", ourPost))
	if got := h.waitCaseOf(answer); got != caseID {
		t.Fatalf("reply to the council's post made case %d, want %d", got, caseID)
	}

	// A reply to a resolved case reopens it.
	if code, raw := h.api(http.MethodPut, "/cases/"+itoa(caseID)+"/status", map[string]string{"status": "resolved"}); code != 200 {
		t.Fatalf("resolve: %d %s", code, raw)
	}
	again := nextID()
	h.signed(mention(again, alice, "@ExampleCouncil sorry, one more thing", answer))
	if got := h.waitCaseOf(again); got != caseID {
		t.Fatalf("reply to a resolved case made case %d, want %d", got, caseID)
	}
	if c := h.caseDetail(caseID); c.Status != "open" {
		t.Errorf("resolved case after the resident's reply is %q, want open", c.Status)
	}
	if got := h.cases(); got != 1 {
		t.Errorf("%d cases, want 1", got)
	}

	// The supervisors' read model followed: the reply made the case's
	// first response, the resolution was recorded, and the resident's
	// message marked it reopened.
	var resp struct {
		Target, Outcome string
		ResponderID     *int64
		WorkingMS       int64
		CalendarMS      int64
		N               int64
	}
	h.direct.Raw(`SELECT target, outcome, responder_id, working_ms, calendar_ms, count(*) OVER () AS n
		FROM case_responses WHERE case_id = ?`, caseID).Scan(&resp)
	if resp.N != 1 || resp.Target != "first_response" || resp.Outcome == "" || resp.ResponderID == nil || resp.CalendarMS < 0 {
		t.Errorf("responses recorded: %+v, want the one first response, by its adviser", resp)
	}
	var res struct {
		N        int64
		Reopened int64
	}
	h.direct.Raw(`SELECT count(*) AS n, count(reopened_at) AS reopened FROM case_resolutions WHERE case_id = ?`, caseID).Scan(&res)
	if res.N != 1 || res.Reopened != 1 {
		t.Errorf("resolutions recorded: %+v, want one, reopened", res)
	}
}

func TestPrivateReplyGoesToTheResidentsConversation(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.dmCase(bob, "My parking permit has not arrived")
	m := h.reply(caseID, "private", "Sorry Bob, we are sending a new one today.")
	if sent := h.waitDelivery(caseID, m.ID); sent.DeliveryStatus != "sent" {
		t.Fatalf("reply %q: %s", sent.DeliveryStatus, sent.FailureReason)
	}
	got := h.fake.Sent()
	if len(got) != 1 || got[0].Kind != "dm" || got[0].Participant != bob.ID ||
		got[0].Text != "Sorry Bob, we are sending a new one today." {
		t.Fatalf("fake X recorded %+v", got)
	}
}

func TestLongPublicReplyBecomesAThread(t *testing.T) {
	h := newHarness(t)
	post, caseID := h.mentionCase(alice, "@ExampleCouncil how do I apply for a blue badge?")

	words := strings.Fields(strings.Repeat("You can apply online at https://www.gov.uk/apply-blue-badge or by phone. ", 9))
	text := strings.Join(words, " ")
	if len([]rune(text)) < 600 {
		t.Fatalf("test text is only %d characters", len([]rune(text)))
	}
	m := h.reply(caseID, "public", text)
	sent := h.waitDelivery(caseID, m.ID)
	if sent.DeliveryStatus != "sent" {
		t.Fatalf("reply %q: %s", sent.DeliveryStatus, sent.FailureReason)
	}
	parts := h.fake.Sent()
	if len(parts) < 3 {
		t.Fatalf("%d posts, want a thread of at least 3", len(parts))
	}
	var rejoined []string
	for i, p := range parts {
		if w := x.WeightedLength(p.Text); w > 280 {
			t.Errorf("part %d weighs %d, over 280", i+1, w)
		}
		want := post
		if i > 0 {
			want = parts[i-1].ID
		}
		if p.InReplyTo != want {
			t.Errorf("part %d replies to %q, want %q", i+1, p.InReplyTo, want)
		}
		suffix := " (" + strconv.Itoa(i+1) + "/" + strconv.Itoa(len(parts)) + ")"
		body, ok := strings.CutSuffix(p.Text, suffix)
		if !ok {
			t.Errorf("part %d %q does not end with %q", i+1, p.Text, suffix)
		}
		rejoined = append(rejoined, strings.Fields(body)...)
	}
	if strings.Join(rejoined, " ") != text {
		t.Errorf("thread does not carry the reply's words in order")
	}
	if len(sent.ExternalIDs) != len(parts) || sent.ExternalID != parts[0].ID {
		t.Errorf("message ids %v / %q, want every part's id", sent.ExternalIDs, sent.ExternalID)
	}
}

func TestRateLimitedReplyIsSentExactlyOnce(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.mentionCase(alice, "@ExampleCouncil recycling bin lid broken")

	h.fake.FailNext(xfake.RateLimited(time.Now().Add(time.Second)))
	m := h.reply(caseID, "public", "We will bring a new lid on Friday.")
	sent := h.waitDelivery(caseID, m.ID)
	if sent.DeliveryStatus != "sent" {
		t.Fatalf("reply %q: %s", sent.DeliveryStatus, sent.FailureReason)
	}
	// Once the reply's message is acknowledged nothing can send it again.
	h.settled(bus.Outbound, outbound.ConsumerName(accountSlug))
	if got := h.fake.Sent(); len(got) != 1 {
		t.Fatalf("fake X accepted %d posts, want exactly 1: %+v", len(got), got)
	}
	if got := metric(t, h, `inbox_outbound_total{channel="x",result="rate_limited"}`); got != "1" {
		t.Errorf("rate limited sends counted %q, want 1", got)
	}
}

func TestServerErrorsAreRetriedAndClientErrorsFail(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.mentionCase(alice, "@ExampleCouncil noise complaint")

	h.fake.FailNext(xfake.Failure{Status: http.StatusServiceUnavailable, Body: `{"title":"Service Unavailable"}`})
	h.fake.FailNext(xfake.Failure{Status: http.StatusBadGateway})
	m := h.reply(caseID, "public", "We have passed this to the noise team.")
	if sent := h.waitDelivery(caseID, m.ID); sent.DeliveryStatus != "sent" {
		t.Fatalf("reply after two 5xx %q: %s", sent.DeliveryStatus, sent.FailureReason)
	}
	if got := len(h.fake.Sent()); got != 1 {
		t.Errorf("fake X accepted %d posts, want 1", got)
	}

	h.fake.FailNext(xfake.Failure{Status: http.StatusForbidden,
		Body: `{"errors":[{"type":"about:blank","title":"Forbidden","detail":"You are not allowed to reply to this post.","status":403}]}`})
	m2 := h.reply(caseID, "public", "A second answer.")
	failed := h.waitDelivery(caseID, m2.ID)
	if failed.DeliveryStatus != "failed" || !strings.Contains(failed.FailureReason, "not allowed to reply") {
		t.Errorf("reply after 403 is %q with reason %q, want failed with X's reason", failed.DeliveryStatus, failed.FailureReason)
	}
	if got := len(h.fake.Sent()); got != 1 {
		t.Errorf("fake X accepted %d posts, want still 1", got)
	}
}

func TestLostAnswerIsRetriedAndCounted(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.mentionCase(alice, "@ExampleCouncil overgrown hedge")

	// X publishes the post but its answer never arrives.
	h.fake.FailNext(xfake.Failure{DropAfterSend: true})
	m := h.reply(caseID, "public", "We will cut it back next week.")
	if sent := h.waitDelivery(caseID, m.ID); sent.DeliveryStatus != "sent" {
		t.Fatalf("reply %q: %s", sent.DeliveryStatus, sent.FailureReason)
	}
	// The retry posts again: that is the one case a reply goes out twice,
	// and it is counted.
	if got := len(h.fake.Sent()); got != 2 {
		t.Errorf("fake X recorded %d posts, want 2", got)
	}
	if got := metric(t, h, `inbox_outbound_total{channel="x",result="ambiguous"}`); got != "1" {
		t.Errorf("ambiguous sends counted %q, want 1", got)
	}
	// Both are counted just after the commit the test saw.
	h.eventually("the send is counted", func() bool {
		return metric(t, h, `inbox_outbound_total{channel="x",result="sent"}`) == "1" &&
			metric(t, h, `inbox_cases_created_total{channel="x"}`) == "1"
	})
}

func TestRateLimitsDoNotCountTowardsGivingUp(t *testing.T) {
	h := newHarness(t) // gives up after 5 failed attempts
	_, caseID := h.dmCase(bob, "When is my bin day?")

	for range 3 {
		h.fake.FailNext(xfake.RateLimited(time.Now()))
	}
	for range 4 {
		h.fake.FailNext(xfake.Failure{Status: http.StatusServiceUnavailable})
	}
	m := h.reply(caseID, "private", "Your bin day is Thursday.")
	sent := h.waitDelivery(caseID, m.ID)
	if sent.DeliveryStatus != "sent" {
		t.Fatalf("reply after 3 rate limits and 4 outages is %q: %s", sent.DeliveryStatus, sent.FailureReason)
	}
	if got := len(h.fake.Sent()); got != 1 {
		t.Errorf("fake X accepted %d DMs, want 1", got)
	}
	if got := h.count(`SELECT send_attempts FROM messages WHERE id = ?`, m.ID); got != 8 {
		t.Errorf("%d attempts recorded, want 8", got)
	}

	// Five outages in a row are too many: the reply fails, with the reason.
	for range 5 {
		h.fake.FailNext(xfake.Failure{Status: http.StatusServiceUnavailable})
	}
	m2 := h.reply(caseID, "private", "And garden waste is every other Monday.")
	failed := h.waitDelivery(caseID, m2.ID)
	if failed.DeliveryStatus != "failed" || !strings.Contains(failed.FailureReason, "gave up after 5 failed attempts") {
		t.Errorf("reply after 5 outages is %q: %q", failed.DeliveryStatus, failed.FailureReason)
	}
}

func TestRepeatedReplyWithAnIdempotencyKeySendsOnce(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.dmCase(alice, "Can I book a bulky waste collection?")

	post := func(key, text string) (int, messageJSON) {
		t.Helper()
		req := h.keyedReply(caseID, key, text)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		h.checkContract(req, nil, resp, raw)
		var m messageJSON
		_ = json.Unmarshal(raw, &m)
		return resp.StatusCode, m
	}
	code1, first := post("8f0c7a52-key", "Yes, book online.")
	code2, second := post("8f0c7a52-key", "Yes, book online.")
	if code1 != http.StatusAccepted || code2 != http.StatusAccepted || first.ID == 0 || first.ID != second.ID {
		t.Fatalf("two posts with one key: %d %d, messages %d and %d", code1, code2, first.ID, second.ID)
	}
	if code, _ := post("8f0c7a52-key", "Something else"); code != http.StatusConflict {
		t.Errorf("the key with other text answered %d, want 409", code)
	}
	h.waitDelivery(caseID, first.ID)
	if got := len(h.fake.Sent()); got != 1 {
		t.Errorf("fake X accepted %d DMs, want 1", got)
	}
}

func TestThreadInterruptedByAnOutageResumesWhereItStopped(t *testing.T) {
	h := newHarness(t)
	post, caseID := h.mentionCase(alice, "@ExampleCouncil what can go in the blue bin?")

	h.fake.FailNext(xfake.Failure{})                                      // part 1 goes out
	h.fake.FailNext(xfake.Failure{Status: http.StatusServiceUnavailable}) // part 2 does not
	text := strings.TrimSpace(strings.Repeat("Paper, card, cans, tins and plastic bottles go in the blue bin. ", 10))
	m := h.reply(caseID, "public", text)
	sent := h.waitDelivery(caseID, m.ID)
	if sent.DeliveryStatus != "sent" {
		t.Fatalf("reply %q: %s", sent.DeliveryStatus, sent.FailureReason)
	}
	parts := h.fake.Sent()
	n := len(x.SplitThread(text, x.MaxPostWeight))
	if len(parts) != n {
		t.Fatalf("fake X recorded %d posts, want the thread's %d parts once each", len(parts), n)
	}
	for i, p := range parts {
		want := post
		if i > 0 {
			want = parts[i-1].ID
		}
		if p.InReplyTo != want || !strings.HasSuffix(p.Text, fmt.Sprintf("(%d/%d)", i+1, n)) {
			t.Errorf("part %d: %q in reply to %s, want (%d/%d) in reply to %s", i+1, p.Text, p.InReplyTo, i+1, n, want)
		}
	}
	if len(sent.ExternalIDs) != n {
		t.Errorf("message has %d ids, want %d", len(sent.ExternalIDs), n)
	}
}

func TestConcurrentRepeatsOfAnIdempotentReplySendOnce(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.dmCase(bob, "Is the leisure centre open on Boxing Day?")

	const n = 8
	ids := make(chan int64, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := http.DefaultClient.Do(h.keyedReply(caseID, "boxing-day-1", "Yes, 10am to 4pm."))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var m messageJSON
			_ = json.NewDecoder(resp.Body).Decode(&m)
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("answered %d", resp.StatusCode)
			}
			ids <- m.ID
		})
	}
	wg.Wait()
	close(ids)
	first := int64(0)
	for id := range ids {
		if first == 0 {
			first = id
		}
		if id == 0 || id != first {
			t.Errorf("replies %d and %d, want one", first, id)
		}
	}
	h.waitDelivery(caseID, first)
	if got := h.count(`SELECT count(*) FROM messages WHERE direction = 'outbound'`); got != 1 {
		t.Errorf("%d replies stored, want 1", got)
	}
	if got := len(h.fake.Sent()); got != 1 {
		t.Errorf("fake X accepted %d DMs, want 1", got)
	}
}

// One key used at the same moment on two cases makes one reply; the other
// request is told the key is taken.
func TestOneIdempotencyKeyOnTwoCasesAtOnce(t *testing.T) {
	h := newHarness(t)
	_, caseA := h.dmCase(alice, "Question one")
	_, caseB := h.dmCase(bob, "Question two")

	codes := make(chan int, 2)
	var wg sync.WaitGroup
	for _, id := range []int64{caseA, caseB} {
		wg.Go(func() {
			resp, err := http.DefaultClient.Do(h.keyedReply(id, "shared-key", "Answer"))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[http.StatusAccepted] != 1 || got[http.StatusConflict] != 1 {
		t.Errorf("answers %v, want one 202 and one 409", got)
	}
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'outbound'`); n != 1 {
		t.Errorf("%d replies stored, want 1", n)
	}
}

// keyedReply is the adviser's private reply request with an Idempotency-Key.
func (h *harness) keyedReply(caseID int64, key, text string) *http.Request {
	body, _ := json.Marshal(map[string]string{"visibility": "private", "text": text})
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL()+"/api/v1/cases/"+itoa(caseID)+"/replies", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Idempotency-Key", key)
	return req
}

// A case's first response is when the network accepted the first reply,
// not when an adviser queued it; a reply that fails is no response.
func TestFirstResponseIsWhenTheNetworkAcceptedTheReply(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.mentionCase(alice, "@ExampleCouncil pothole on Mill Lane")
	firstResponse := func() int64 {
		return h.count(`SELECT count(*) FROM cases WHERE id = ? AND first_response_at IS NOT NULL`, caseID)
	}

	h.fake.FailNext(xfake.Failure{Status: http.StatusForbidden})
	refused := h.reply(caseID, "public", "We will look at it.")
	if got := h.waitDelivery(caseID, refused.ID); got.DeliveryStatus != "failed" {
		t.Fatalf("reply after 403 is %q", got.DeliveryStatus)
	}
	if firstResponse() != 0 {
		t.Errorf("a reply X refused counts as the first response")
	}

	stall := make(chan struct{})
	h.fake.FailNext(xfake.Failure{Stall: stall})
	m := h.reply(caseID, "public", "Thanks Alice, it is on the list for this week.")
	h.eventually("the reply reaches X", func() bool { return h.fake.InFlight() == 1 })
	if firstResponse() != 0 {
		t.Errorf("a reply not yet accepted by X counts as the first response")
	}
	close(stall)
	if got := h.waitDelivery(caseID, m.ID); got.DeliveryStatus != "sent" {
		t.Fatalf("reply %q: %s", got.DeliveryStatus, got.FailureReason)
	}
	if got := h.count(`SELECT count(*) FROM cases c JOIN messages m ON m.case_id = c.id
		WHERE m.id = ? AND c.first_response_at = m.sent_at`, m.ID); got != 1 {
		t.Errorf("the first response is not the time the reply was sent")
	}
}
