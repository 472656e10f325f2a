package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels/meta"
	"github.com/citizeninbox/inbox/internal/channels/meta/metafake"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/server"
)

// The Meta driver on the whole server (not yet registered in cmd/inbox):
// one app's endpoint with a Page, an Instagram account and a WhatsApp
// number, the Graph API faked.
const (
	metaApp    = "council-meta"
	metaSecret = "meta-app-secret"
	metaPage   = "100000000000001"
	metaIG     = "17841400000000001"
	metaNumber = "106000000000001"
)

// metaToken is the access token of the three accounts, which the fake
// Graph API accepts.
const metaToken = "graph-token"

func withMeta(g *metafake.Server) harnessOption {
	return func(o *server.Options, h *harness) {
		srv := httptest.NewServer(g)
		h.t.Cleanup(srv.Close)
		o.Drivers = drivers(h.t, meta.Driver{})
		app := func(s meta.Settings) meta.Settings {
			s.App, s.AppSecret, s.VerifyToken, s.AccessToken = metaApp, metaSecret, "verify", metaToken
			return s
		}
		file := *o.File
		file.ChannelAccounts = append(append([]config.ChannelAccount(nil), file.ChannelAccounts...),
			config.ChannelAccount{Slug: "council-facebook", Channel: "facebook", Name: "Council on Facebook", Team: "contact-centre",
				APIBaseURL: srv.URL, Settings: app(meta.Settings{PageID: metaPage})},
			config.ChannelAccount{Slug: "council-instagram", Channel: "instagram", Name: "Council on Instagram", Team: "contact-centre",
				APIBaseURL: srv.URL, Settings: app(meta.Settings{InstagramID: metaIG})},
			config.ChannelAccount{Slug: "council-whatsapp", Channel: "whatsapp", Name: "Council on WhatsApp", Team: "contact-centre",
				APIBaseURL: srv.URL, Settings: app(meta.Settings{PhoneNumberID: metaNumber})},
		)
		o.File = &file
	}
}

// metaWebhook posts a delivery to the app's endpoint with the signature.
func (h *harness) metaWebhook(body []byte, signature string) int {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL()+"/webhooks/meta/"+metaApp, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set(meta.SignatureHeader, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (h *harness) metaSigned(body string) {
	h.t.Helper()
	if code := h.metaWebhook([]byte(body), meta.Sign(metaSecret, []byte(body))); code != http.StatusOK {
		h.t.Fatalf("signed Meta delivery answered %d", code)
	}
}

// Each Meta network, end to end: a private message and (where the network
// has them) a public comment each become a case, a batch with several
// entries makes all its cases, a redelivery makes nothing, an echo and a
// WhatsApp status make nothing, a forged or missing signature is refused
// with nothing stored, and replies reach the Graph API with the right
// recipient, comment or context, a long one in numbered parts.
func TestMetaEndToEnd(t *testing.T) {
	g := metafake.New(metaToken)
	h := newHarness(t, withMeta(g))

	messenger := `{"object":"page","entry":[
	 {"id":"` + metaPage + `","time":1764669600000,"messaging":[
	  {"sender":{"id":"7001"},"recipient":{"id":"` + metaPage + `"},"timestamp":NOW_MS,"message":{"mid":"m_alice","text":"My bin was not collected"}},
	  {"sender":{"id":"` + metaPage + `"},"recipient":{"id":"7001"},"timestamp":NOW_MS,"message":{"mid":"m_echo","text":"ours","is_echo":true}}]},
	 {"id":"` + metaPage + `","time":1764669600,"changes":[
	  {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"p1_c1","post_id":"p1","parent_id":"p1",
	   "from":{"id":"8001","name":"Bob Example"},"message":"Streetlight out on Mill Lane","created_time":NOW_S}}]}]}`
	instagram := `{"object":"instagram","entry":[{"id":"` + metaIG + `","time":1764669600000,
	 "messaging":[{"sender":{"id":"9001"},"recipient":{"id":"` + metaIG + `"},"timestamp":NOW_MS,"message":{"mid":"ig_m1","text":"Flooded underpass"}}],
	 "changes":[{"field":"comments","value":{"from":{"id":"9002","username":"carol_ig"},"id":"ig_c1","text":"Graffiti at the park","media":{"id":"ig_media1"}}}]}]}`
	whatsapp := `{"object":"whatsapp_business_account","entry":[{"id":"WABA1","changes":[{"field":"messages","value":{
	 "messaging_product":"whatsapp","metadata":{"phone_number_id":"` + metaNumber + `"},
	 "contacts":[{"profile":{"name":"Dan Resident"},"wa_id":"447700900123"}],
	 "messages":[{"from":"447700900123","id":"wamid.dan1","timestamp":"NOW_S","type":"text","text":{"body":"Fly-tipping on Oak Road"}}],
	 "statuses":[{"id":"wamid.unknown","status":"delivered","timestamp":"1764669601","recipient_id":"447700900123"}]}}]}]}`
	now := strings.NewReplacer("NOW_MS", fmt.Sprint(time.Now().UnixMilli()), "NOW_S", fmt.Sprint(time.Now().Unix()))
	messenger, instagram = now.Replace(messenger), now.Replace(instagram)

	// Forged and unsigned deliveries are refused, and nothing is stored.
	if code := h.metaWebhook([]byte(messenger), meta.Sign("not-the-secret", []byte(messenger))); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("a forged delivery answered %d", code)
	}
	if code := h.metaWebhook([]byte(messenger), ""); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("an unsigned delivery answered %d", code)
	}
	if n := h.count(`SELECT count(*) FROM messages`); n != 0 {
		t.Fatalf("refused deliveries stored %d messages", n)
	}

	h.metaSigned(messenger)
	h.metaSigned(instagram)
	h.metaSigned(now.Replace(whatsapp))
	// Erin wrote on WhatsApp 25 hours ago: free text can no longer go out.
	h.metaSigned(strings.NewReplacer("wamid.dan1", "wamid.erin1", "447700900123", "447700900777", "Dan Resident", "Erin",
		`"NOW_S"`, fmt.Sprintf(`"%d"`, time.Now().Add(-25*time.Hour).Unix())).Replace(whatsapp))
	cases := map[string]int64{}
	late := h.waitCaseOf("wamid.erin1")
	for _, id := range []string{"m_alice", "p1_c1", "ig_m1", "ig_c1", "wamid.dan1"} {
		cases[id] = h.waitCaseOf(id)
	}
	distinct := map[int64]bool{}
	for _, c := range cases {
		distinct[c] = true
	}
	if len(distinct) != 5 {
		t.Errorf("five residents' messages made %d cases", len(distinct))
	}
	// Redelivered, nothing new; the echo and the status made nothing.
	h.metaSigned(messenger)
	h.metaSigned(now.Replace(whatsapp))
	// A later message, stored after the redeliveries were handled: Dan's
	// follow-up joins his case.
	h.metaSigned(now.Replace(strings.ReplaceAll(strings.ReplaceAll(whatsapp, "wamid.dan1", "wamid.dan2"), "Fly-tipping on Oak Road", "Still there")))
	if got := h.waitCaseOf("wamid.dan2"); got != cases["wamid.dan1"] {
		t.Errorf("Dan's follow-up went to case %d, not his case %d", got, cases["wamid.dan1"])
	}
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != 7 {
		t.Errorf("%d inbound messages after redelivery, want 7", n)
	}
	if n := h.count(`SELECT count(*) FROM messages WHERE external_id IN ('m_echo', 'wamid.unknown')`); n != 0 {
		t.Errorf("an echo or a status became a message")
	}
	// Refused deliveries are counted as forged; the echoes (one in each of
	// the two messenger deliveries) as ignored.
	if got := metric(t, h, `inbox_webhooks_total{channel="meta",result="forged"}`); got != "2" {
		t.Errorf("forged Meta deliveries counted %s, want 2", got)
	}
	if got := metric(t, h, `inbox_inbound_ignored_total{driver="meta",kind="echo"}`); got != "2" {
		t.Errorf("ignored echoes counted %s, want 2", got)
	}
	if d := h.caseDetail(cases["p1_c1"]); d.Messages[0].Visibility != "public" {
		t.Errorf("the Page comment's case is %s", d.Messages[0].Visibility)
	}
	// Bob edits his comment, then removes it: recorded on it, nothing new.
	change := func(verb, text string) string {
		return `{"object":"page","entry":[{"id":"` + metaPage + `","time":1,"changes":[{"field":"feed","value":{"item":"comment","verb":"` + verb +
			`","comment_id":"p1_c1","post_id":"p1","parent_id":"p1","from":{"id":"8001","name":"Bob Example"},"message":"` + text +
			`","created_time":` + fmt.Sprint(time.Now().Unix()) + `}}]}]}`
	}
	h.metaSigned(change("edited", "Streetlight out on Mill Lane, by number 12"))
	h.eventually("the edit is recorded", func() bool {
		return h.count(`SELECT count(*) FROM messages WHERE external_id = 'p1_c1' AND edited_body = 'Streetlight out on Mill Lane, by number 12'`) == 1
	})
	h.metaSigned(change("remove", ""))
	h.eventually("the removal is recorded", func() bool {
		return h.count(`SELECT count(*) FROM messages WHERE external_id = 'p1_c1' AND removed_at IS NOT NULL AND body = 'Streetlight out on Mill Lane'`) == 1
	})

	// Outside WhatsApp's 24 hours a free-text reply is refused before
	// sending, saying why and what is possible.
	code, raw := h.api(http.MethodPost, fmt.Sprintf("/cases/%d/replies", late), map[string]string{"text": "Sorry for the wait", "visibility": "private"})
	var p struct{ Type, Title, Detail string }
	_ = json.Unmarshal(raw, &p)
	if code != http.StatusConflict || p.Type != "window_closed" || !strings.Contains(p.Detail, "24 hours") || !strings.Contains(p.Detail, "wait for the resident") {
		t.Errorf("a reply after the window: %d %s", code, raw)
	}
	if n := h.count(`SELECT count(*) FROM messages WHERE case_id = ? AND direction = 'outbound'`, late); n != 0 {
		t.Errorf("a refused reply was queued")
	}

	// Replies, each through the network and thread the resident used.
	long := strings.Repeat("We have asked the crew to come back tomorrow. ", 60)
	for _, r := range []struct {
		id, visibility, text string
	}{
		{"m_alice", "private", long}, {"p1_c1", "public", "Reported to our contractor."},
		{"ig_c1", "public", "Thanks, passed on."}, {"ig_m1", "private", "We are on it."},
		{"wamid.dan1", "private", "A crew will clear it today."},
	} {
		m := h.reply(cases[r.id], r.visibility, r.text)
		if got := h.waitDelivery(cases[r.id], m.ID); got.DeliveryStatus != "sent" {
			t.Errorf("reply on %s: %s (%s)", r.id, got.DeliveryStatus, got.FailureReason)
		}
	}
	byPath := map[string][]metafake.Call{}
	for _, c := range g.Calls() {
		if c.Status != http.StatusOK || c.Token != metaToken {
			t.Errorf("Graph API call %s with token %q answered %d", c.Path, c.Token, c.Status)
		}
		byPath[c.Path] = append(byPath[c.Path], c)
	}
	// What Meta accepted is what the inbox recorded as sent.
	if sent := g.Sent(); len(sent) != 6 {
		t.Errorf("the Graph API accepted %d sends, want 6: %+v", len(sent), sent)
	}
	msgs := byPath["/"+meta.DefaultVersion+"/"+metaPage+"/messages"]
	if len(msgs) != 2 {
		t.Fatalf("Messenger got %d messages, want the long reply in 2 parts: %v", len(msgs), byPath)
	}
	for i, c := range msgs {
		text := c.Body["message"].(map[string]any)["text"].(string)
		if c.Body["recipient"].(map[string]any)["id"] != "7001" || utf8.RuneCountInString(text) > 2000 ||
			!strings.HasSuffix(text, fmt.Sprintf("(%d/2)", i+1)) {
			t.Errorf("Messenger part %d: %v", i+1, c.Body)
		}
	}
	if c := byPath["/"+meta.DefaultVersion+"/p1_c1/comments"]; len(c) != 1 || c[0].Body["message"] != "Reported to our contractor." {
		t.Errorf("Page comment reply %v", c)
	}
	if c := byPath["/"+meta.DefaultVersion+"/ig_c1/replies"]; len(c) != 1 {
		t.Errorf("Instagram comment reply %v", c)
	}
	if c := byPath["/"+meta.DefaultVersion+"/"+metaIG+"/messages"]; len(c) != 1 || c[0].Body["recipient"].(map[string]any)["id"] != "9001" {
		t.Errorf("Instagram message %v", c)
	}
	if c := byPath["/"+meta.DefaultVersion+"/"+metaNumber+"/messages"]; len(c) != 1 || c[0].Body["to"] != "447700900123" {
		t.Errorf("WhatsApp message %v", c)
	}
}

// WhatsApp's statuses move our reply on (delivered, read), never back,
// record a failure's reason, and make no case.
func TestWhatsAppReceipts(t *testing.T) {
	g := metafake.New(metaToken)
	h := newHarness(t, withMeta(g))
	now := fmt.Sprint(time.Now().Unix())
	delivery := func(messages, statuses string) string {
		return `{"object":"whatsapp_business_account","entry":[{"id":"WABA1","changes":[{"field":"messages","value":{
		 "messaging_product":"whatsapp","metadata":{"phone_number_id":"` + metaNumber + `"},
		 "contacts":[{"profile":{"name":"Dan Resident"},"wa_id":"447700900123"}],
		 "messages":[` + messages + `],"statuses":[` + statuses + `]}}]}]}`
	}
	h.metaSigned(delivery(`{"from":"447700900123","id":"wamid.in1","timestamp":"`+now+`","type":"text","text":{"body":"Bins?"}}`, ""))
	caseID := h.waitCaseOf("wamid.in1")
	reply := h.reply(caseID, "private", "Tomorrow.")
	sent := h.waitDelivery(caseID, reply.ID)
	if sent.DeliveryStatus != "sent" || len(sent.ExternalIDs) != 1 {
		t.Fatalf("reply %+v", sent)
	}
	ours := sent.ExternalIDs[0]
	status := func(st string) string {
		return `{"id":"` + ours + `","status":"` + st + `","timestamp":"` + now + `","recipient_id":"447700900123"}`
	}
	deliveryStatus := func() string {
		var s string
		h.direct.Raw(`SELECT delivery_status FROM messages WHERE id = ?`, reply.ID).Scan(&s)
		return s
	}
	// Read and delivered in one delivery, out of order: read wins.
	h.metaSigned(delivery("", status("read")+","+status("delivered")))
	h.eventually("the reply is read", func() bool { return deliveryStatus() == "read" })
	// A late "delivered", then a "failed" after read, change nothing; a
	// follow-up from Dan, stored after them, shows they were handled.
	h.metaSigned(delivery("", status("delivered")))
	h.metaSigned(delivery("", status("failed")))
	h.metaSigned(delivery(`{"from":"447700900123","id":"wamid.in2","timestamp":"`+now+`","type":"text","text":{"body":"Thanks"}}`, ""))
	h.waitCaseOf("wamid.in2")
	if s := deliveryStatus(); s != "read" {
		t.Errorf("after late receipts the reply is %s, want read", s)
	}
	if n := h.count(`SELECT count(*) FROM cases`); n != 1 {
		t.Errorf("%d cases, want 1: receipts made cases", n)
	}
	// A failure on a reply not yet read is recorded with WhatsApp's reason.
	second := h.reply(caseID, "private", "Anything else?")
	theirs := h.waitDelivery(caseID, second.ID).ExternalIDs[0]
	h.metaSigned(delivery("", `{"id":"`+theirs+`","status":"failed","timestamp":"`+now+`","recipient_id":"447700900123",
		"errors":[{"code":131026,"title":"Message undeliverable"}]}`))
	h.eventually("the second reply failed", func() bool {
		var m struct{ DeliveryStatus, FailureReason string }
		h.direct.Raw(`SELECT delivery_status, failure_reason FROM messages WHERE id = ?`, second.ID).Scan(&m)
		return m.DeliveryStatus == "failed" && strings.Contains(m.FailureReason, "131026 Message undeliverable")
	})
}

// What the Graph API refuses, the inbox handles as Meta means it: the
// closed WhatsApp window (131047) fails the reply saying only a template
// can go; a revoked token (190) makes the account unhealthy, its reply
// waiting. The deliveries are the fake's own, through the whole server.
func TestMetaGraphRefusals(t *testing.T) {
	g := metafake.New(metaToken)
	h := newHarness(t, withMeta(g))
	h.metaSigned(string(metafake.WhatsAppMessage(metaNumber, metafake.Message{ID: "wamid.fay1",
		From: metafake.User{ID: "447700900456", Name: "Fay Resident"}, Text: "Bins on Ash Grove?"})))
	h.metaSigned(string(metafake.MessengerMessage(metaPage, metafake.Message{ID: "m_gus1",
		From: metafake.User{ID: "7005"}, Text: "Parking permit 🚗 / visitor permit"})))
	fay, gus := h.waitCaseOf("wamid.fay1"), h.waitCaseOf("m_gus1")
	if d := h.caseDetail(gus); d.Messages[0].Body != "Parking permit 🚗 / visitor permit" {
		t.Errorf("Gus's message is %q", d.Messages[0].Body)
	}

	g.FailNext(1, http.StatusBadRequest, metafake.CodeWAReengagement, 0)
	m := h.reply(fay, "private", "Tomorrow morning.")
	if got := h.waitDelivery(fay, m.ID); got.DeliveryStatus != "failed" || !strings.Contains(got.FailureReason, "template") {
		t.Errorf("a reply Meta refused with 131047: %s (%s)", got.DeliveryStatus, got.FailureReason)
	}

	g.Revoke(metaToken)
	h.reply(gus, "private", "You can apply online.")
	h.eventually("the Facebook account marked unhealthy", func() bool { return !h.accountHealth("council-facebook").Healthy })
	if a := h.accountHealth("council-facebook"); !strings.Contains(a.Reason, "190") || a.RepliesWaiting != 1 {
		t.Errorf("after a revoked token: %+v, want Meta's 190 and the reply waiting", a)
	}
	if a := h.accountHealth("council-whatsapp"); !a.Healthy {
		t.Errorf("the WhatsApp account is unhealthy: %+v", a)
	}
	if n := len(g.Sent()); n != 0 {
		t.Errorf("%d sends accepted, want none", n)
	}
}
