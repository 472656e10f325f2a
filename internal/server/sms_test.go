package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/citizeninbox/inbox/internal/channels/meta"
	"github.com/citizeninbox/inbox/internal/channels/meta/metafake"
	"github.com/citizeninbox/inbox/internal/channels/twilio"
	"github.com/citizeninbox/inbox/internal/channels/twilio/twiliofake"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/server"
)

// SMS through Twilio on the whole server: the council's number, the
// Messages API faked.
const (
	smsAccount   = "council-sms"
	smsSID       = twiliofake.DefaultAccountSID
	smsToken     = "test-twilio-auth-token"
	smsNumber    = "+447700900002"
	smsResident  = "+447700900123"
	smsResident2 = "+447700900456"
)

var smsSeq atomic.Int64

// nextSMSID is a fresh MessageSid.
// nextSMSID is a resident's message SID, apart from those the fake gives
// the council's (SM000…1 onwards).
func nextSMSID() string { return fmt.Sprintf("SMf%031d", smsSeq.Add(1)) }

func withSMS(fake *twiliofake.Server) harnessOption {
	return func(o *server.Options, h *harness) {
		srv := httptest.NewServer(fake)
		h.t.Cleanup(srv.Close)
		o.Drivers = drivers(h.t, twilio.Driver{})
		file := *o.File
		file.ChannelAccounts = append(append([]config.ChannelAccount(nil), file.ChannelAccounts...),
			config.ChannelAccount{Slug: smsAccount, Channel: "sms", Name: "Council by SMS", Team: "contact-centre",
				APIBaseURL: srv.URL, Settings: twilio.Settings{AccountSID: smsSID, AuthToken: smsToken, Number: smsNumber}})
		o.File = &file
	}
}

// smsWebhookURL is what Twilio calls and signs: the server's public URL
// (the harness's is http://127.0.0.1, not the address it listens on, as
// behind a proxy).
func (h *harness) smsWebhookURL() string {
	return h.opts.Env.PublicURL + "/webhooks/twilio/" + smsAccount
}

// smsPost posts params to the account's webhook, signed by token over the
// public URL, and returns the status, content type and body.
func (h *harness) smsPost(params url.Values, token string) (int, string, string) {
	h.t.Helper()
	req, err := twiliofake.Post(h.smsWebhookURL(), token, params)
	if err != nil {
		h.t.Fatal(err)
	}
	local, _ := url.Parse(h.srv.URL())
	req.URL.Scheme, req.URL.Host = local.Scheme, local.Host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// smsSigned posts a genuine post and requires Twilio's empty TwiML answer.
func (h *harness) smsSigned(params url.Values) {
	h.t.Helper()
	code, ct, body := h.smsPost(params, smsToken)
	if code != http.StatusOK || !strings.HasPrefix(ct, "text/xml") || body != twilio.EmptyTwiML {
		h.t.Fatalf("a signed Twilio post answered %d %s %q", code, ct, body)
	}
}

func (h *harness) smsText(sid, from, text string) int64 {
	h.t.Helper()
	h.smsSigned(twiliofake.Inbound(smsSID, sid, from, smsNumber, text))
	return h.waitCaseOf(sid)
}

// SMS end to end: a text becomes a private case and a second from the
// same number joins it, another number makes another; a redelivery makes
// nothing; a forged post is refused, stores nothing and is counted; the
// reply reaches Twilio from our number with the status callback; a reply
// over the segment cap is refused with the count.
func TestSMSEndToEnd(t *testing.T) {
	fake := twiliofake.New(smsSID, smsToken)
	h := newHarness(t, withSMS(fake))

	first := twiliofake.Inbound(smsSID, nextSMSID(), smsResident, smsNumber, "Bins not collected on Elm Road")
	// Forged: another token, or no signature at all.
	if code, _, _ := h.smsPost(first, "not-the-token"); code != http.StatusUnauthorized {
		t.Errorf("a forged post answered %d", code)
	}
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL()+"/webhooks/twilio/"+smsAccount, strings.NewReader(first.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an unsigned post: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if n := h.count(`SELECT count(*) FROM messages`); n != 0 {
		t.Fatalf("refused posts stored %d messages", n)
	}
	if got := metric(t, h, `inbox_webhooks_total{channel="twilio",result="forged"}`); got != "2" {
		t.Errorf("forged Twilio posts counted %s, want 2", got)
	}

	h.smsSigned(first)
	caseID := h.waitCaseOf(first.Get("MessageSid"))
	second := h.smsText(nextSMSID(), smsResident, "Still not collected")
	if second != caseID {
		t.Errorf("the second text from the same number went to case %d, not %d", second, caseID)
	}
	if other := h.smsText(nextSMSID(), smsResident2, "Streetlight out"); other == caseID {
		t.Error("another number's text joined the first resident's case")
	}
	// Redelivered: nothing new. A later text shows it was handled.
	h.smsSigned(first)
	h.smsText(nextSMSID(), smsResident, "Hello?")
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != 4 {
		t.Errorf("%d inbound messages after a redelivery, want 4", n)
	}
	if n := h.cases(); n != 2 {
		t.Errorf("%d cases, want 2", n)
	}
	d := h.caseDetail(caseID)
	if d.Contact.ExternalID != smsResident || d.Messages[0].Visibility != "private" || d.Messages[0].Body != "Bins not collected on Elm Road" {
		t.Errorf("case %+v", d)
	}

	// The reply goes from our number to the resident's, with the status
	// callback, in one message.
	text := "Sorry about that. A crew will come back for your bin tomorrow — ref " + d.Reference
	m := h.reply(caseID, "private", text)
	sent := h.waitDelivery(caseID, m.ID)
	if sent.DeliveryStatus != "sent" || len(sent.ExternalIDs) != 1 {
		t.Fatalf("reply %+v", sent)
	}
	msgs := fake.Sent()
	if len(msgs) != 1 {
		t.Fatalf("Twilio got %d messages, want 1", len(msgs))
	}
	if got := msgs[0]; got.To != smsResident || got.From != smsNumber || got.Body != text ||
		got.StatusCallback != h.smsWebhookURL() || got.SID != sent.ExternalIDs[0] {
		t.Errorf("sent %+v", got)
	}

	// Over the cap (3 segments): refused with the count, nothing queued.
	long := strings.Repeat("Your collection is rescheduled. ", 15) // 480 GSM characters: 4 segments
	code, raw := h.api(http.MethodPost, fmt.Sprintf("/cases/%d/replies", caseID), map[string]string{"text": long, "visibility": "private"})
	var p struct{ Type, Detail string }
	_ = json.Unmarshal(raw, &p)
	if code != http.StatusUnprocessableEntity || p.Detail != "the text takes 4 segments; the limit is 3" {
		t.Errorf("a reply over the cap: %d %s", code, raw)
	}
	// SMS has no public replies.
	if code, raw := h.api(http.MethodPost, fmt.Sprintf("/cases/%d/replies", caseID), map[string]string{"text": "hi", "visibility": "public"}); code < 400 {
		t.Errorf("a public SMS reply: %d %s", code, raw)
	}
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'outbound'`); n != 1 {
		t.Errorf("%d outbound messages, want only the one sent", n)
	}
}

// Status callbacks move the reply's delivery status, record a failure with
// Twilio's error code, and make no case; steps before "sent" are ignored
// and counted.
func TestSMSStatusCallbacks(t *testing.T) {
	fake := twiliofake.New(smsSID, smsToken)
	h := newHarness(t, withSMS(fake))
	caseID := h.smsText(nextSMSID(), smsResident, "Is the tip open on Sunday?")
	deliveryOf := func(id int64) (status, reason string) {
		var m struct{ DeliveryStatus, FailureReason string }
		h.direct.Raw(`SELECT delivery_status, failure_reason FROM messages WHERE id = ?`, id).Scan(&m)
		return m.DeliveryStatus, m.FailureReason
	}
	first := h.reply(caseID, "private", "Yes, 9 to 4.")
	sid := h.waitDelivery(caseID, first.ID).ExternalIDs[0]
	for _, st := range []string{"queued", "sending", "sent", "delivered"} {
		h.smsSigned(twiliofake.Status(smsSID, sid, st, smsNumber, smsResident, ""))
	}
	h.eventually("the reply is delivered", func() bool { s, _ := deliveryOf(first.ID); return s == "delivered" })

	second := h.reply(caseID, "private", "Anything else?")
	sid2 := h.waitDelivery(caseID, second.ID).ExternalIDs[0]
	h.smsSigned(twiliofake.Status(smsSID, sid2, "sent", smsNumber, smsResident, ""))
	h.smsSigned(twiliofake.Status(smsSID, sid2, "undelivered", smsNumber, smsResident, "30003"))
	h.eventually("the second reply failed", func() bool {
		s, reason := deliveryOf(second.ID)
		return s == "failed" && strings.Contains(reason, "30003")
	})
	// A receipt for a message we never sent, and a late "delivered" after
	// the failure, change nothing.
	h.smsSigned(twiliofake.Status(smsSID, "SMffffffffffffffffffffffffffffffff", "delivered", smsNumber, smsResident2, ""))
	h.smsSigned(twiliofake.Status(smsSID, sid2, "delivered", smsNumber, smsResident, ""))
	h.smsText(nextSMSID(), smsResident, "No, thanks")
	if s, _ := deliveryOf(second.ID); s != "failed" {
		t.Errorf("after a late receipt the failed reply is %s", s)
	}
	if n := h.cases(); n != 1 {
		t.Errorf("%d cases, want 1: receipts made cases", n)
	}
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != 2 {
		t.Errorf("%d inbound messages, want the resident's 2", n)
	}
	if got := metric(t, h, `inbox_inbound_ignored_total{driver="twilio",kind="status"}`); got != "2" {
		t.Errorf("ignored statuses counted %s, want 2 (queued, sending)", got)
	}
}

// Twilio refusing the auth token (401, 20003) makes the account unhealthy
// and the reply waits.
func TestSMSRefusedCredentialMarksTheAccountUnhealthy(t *testing.T) {
	fake := twiliofake.New(smsSID, smsToken)
	h := newHarness(t, withSMS(fake))
	caseID := h.smsText(nextSMSID(), smsResident, "Pothole on Mill Lane")
	if a := h.accountHealth(smsAccount); !a.Healthy {
		t.Fatalf("before: %+v", a)
	}
	fake.SetAuthToken("rotated-in-the-console")
	m := h.reply(caseID, "private", "Thanks, reported.")
	h.eventually("the account marked unhealthy", func() bool { return !h.accountHealth(smsAccount).Healthy })
	a := h.accountHealth(smsAccount)
	if !strings.Contains(a.Reason, "20003") || a.RepliesWaiting != 1 {
		t.Errorf("unhealthy account %+v, want Twilio's 20003 and the reply waiting", a)
	}
	var status string
	h.direct.Raw(`SELECT delivery_status FROM messages WHERE id = ?`, m.ID).Scan(&status)
	if status != "queued" {
		t.Errorf("the reply is %s while the token is refused, want queued", status)
	}
	if len(fake.Sent()) != 0 {
		t.Error("a message went out with the refused token")
	}
}

// The API measures a reply in SMS segments before it is sent, as the
// composer does; nothing is sent or stored.
func TestSMSReplyIsMeasuredInSegments(t *testing.T) {
	fake := twiliofake.New(smsSID, smsToken)
	h := newHarness(t, withSMS(fake))
	caseID := h.smsText(nextSMSID(), smsResident, "Is the tip open on Sunday?")
	measure := func(body map[string]string) (int, map[string]any) {
		t.Helper()
		code, raw := h.api(http.MethodPost, fmt.Sprintf("/cases/%d/replies/measure", caseID), body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return code, m
	}
	for _, tc := range []struct {
		text          string
		length, limit float64
		fits          bool
	}{
		{strings.Repeat("a", 160), 1, 3, true},
		{strings.Repeat("a", 161), 2, 3, true},      // 153 a segment
		{strings.Repeat("€", 81), 2, 3, true},       // extension characters count two
		{strings.Repeat("é", 70) + "ł", 2, 3, true}, // UCS-2: 67 a segment
		{strings.Repeat("a", 153*3+1), 4, 3, false},
	} {
		code, m := measure(map[string]string{"text": tc.text, "visibility": "private"})
		if code != http.StatusOK || m["unit"] != "segments" || m["length"] != tc.length || m["limit"] != tc.limit || m["fits"] != tc.fits {
			t.Errorf("%d characters: %d %v, want %v segments of a cap of %v, fits %v", len([]rune(tc.text)), code, m, tc.length, tc.limit, tc.fits)
		}
	}
	if code, _ := measure(map[string]string{"text": "Hi", "visibility": "public"}); code != http.StatusUnprocessableEntity {
		t.Errorf("a public SMS measured: %d, want 422", code)
	}
	if code, _ := measure(map[string]string{"text": "Hi", "visibility": "loud"}); code != http.StatusUnprocessableEntity {
		t.Errorf("a bad visibility measured: %d, want 422", code)
	}
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'outbound'`); n != 0 {
		t.Errorf("measuring queued %d replies", n)
	}
}

// The same phone number writing on WhatsApp and by SMS is suggested as
// one resident, on both sides, and never merged by itself.
func TestWhatsAppAndSMSFromOneNumberAreSuggested(t *testing.T) {
	g := metafake.New(metaToken)
	h := newHarness(t, withMeta(g), withSMS(twiliofake.New(smsSID, smsToken)),
		func(o *server.Options, h *harness) { o.Drivers = drivers(h.t, meta.Driver{}, twilio.Driver{}) })
	h.metaSigned(string(metafake.WhatsAppMessage(metaNumber, metafake.Message{ID: "wamid.same1",
		From: metafake.User{ID: "447700900555", Name: "Ivy"}, Text: "My bin is broken"})))
	onWhatsApp := h.waitCaseOf("wamid.same1")
	onSMS := h.smsText(nextSMSID(), "+447700900555", "I messaged on WhatsApp about my bin")
	contactOf := func(caseID int64) int64 {
		var id int64
		h.direct.Raw(`SELECT contact_id FROM cases WHERE id = ?`, caseID).Scan(&id)
		return id
	}
	a, b := contactOf(onWhatsApp), contactOf(onSMS)
	if a == b {
		t.Fatal("the two channels' identities were merged without anyone linking them")
	}
	for _, pair := range [][2]int64{{a, b}, {b, a}} {
		code, raw := h.api(http.MethodGet, fmt.Sprintf("/contacts/%d/suggestions", pair[0]), nil)
		var got struct {
			Suggestions []struct {
				ContactID int64  `json:"contact_id"`
				Reason    string `json:"reason"`
			} `json:"suggestions"`
		}
		_ = json.Unmarshal(raw, &got)
		if code != http.StatusOK || len(got.Suggestions) != 1 || got.Suggestions[0].ContactID != pair[1] ||
			got.Suggestions[0].Reason != "same_phone_number" {
			t.Errorf("suggestions for contact %d: %d %s, want contact %d", pair[0], code, raw, pair[1])
		}
	}
	if contactOf(onWhatsApp) == contactOf(onSMS) {
		t.Error("listing suggestions linked the contacts")
	}
}
