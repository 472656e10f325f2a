package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels/meta"
	"github.com/citizeninbox/inbox/internal/channels/meta/metafake"
	"github.com/citizeninbox/inbox/internal/server"
)

// withTemplate gives the WhatsApp number of withMeta an approved template.
func withTemplate() harnessOption {
	return func(o *server.Options, h *harness) {
		file := *o.File
		file.ChannelAccounts = append(file.ChannelAccounts[:0:0], file.ChannelAccounts...)
		for i, a := range file.ChannelAccounts {
			if s, ok := a.Settings.(meta.Settings); ok && a.Channel == meta.WhatsApp {
				s.Templates = []meta.TemplateSettings{{Name: "case_update", Language: "en_GB",
					Body: "Hello {{1}}, there is news on your case {{2}}: reply to this message to hear it."}}
				file.ChannelAccounts[i].Settings = s
			}
		}
		o.File = &file
	}
}

func (h *harness) replyProblem(caseID int64, body map[string]any) (int, problemJSON) {
	h.t.Helper()
	code, raw := h.api(http.MethodPost, fmt.Sprintf("/cases/%d/replies", caseID), body)
	var p problemJSON
	_ = json.Unmarshal(raw, &p)
	return code, p
}

// callsTo are the Graph API calls made to path.
func callsTo(g *metafake.Server, path string) []metafake.Call {
	var out []metafake.Call
	for _, c := range g.Calls() {
		if c.Path == "/"+meta.DefaultVersion+path {
			out = append(out, c)
		}
	}
	return out
}

// A resident who only commented on the Page gets the one private reply
// Meta allows to a comment, in one part, within 7 days; a second is
// refused before sending, saying what is possible instead.
func TestPrivateReplyToAPageComment(t *testing.T) {
	g := metafake.New(metaToken)
	h := newHarness(t, withMeta(g))
	comment := func(id, from string, at time.Time) string {
		return `{"object":"page","entry":[{"id":"` + metaPage + `","time":1,"changes":[{"field":"feed","value":{
		 "item":"comment","verb":"add","comment_id":"` + id + `","post_id":"p1","parent_id":"p1",
		 "from":{"id":"` + from + `","name":"Resident ` + from + `"},"message":"The bins on Elm Street","created_time":` + fmt.Sprint(at.Unix()) + `}}]}]}`
	}
	h.metaSigned(comment("p1_c1", "8001", time.Now()))
	h.metaSigned(comment("p1_c9", "8009", time.Now().Add(-8*24*time.Hour)))
	recent, old := h.waitCaseOf("p1_c1"), h.waitCaseOf("p1_c9")

	// Over one Messenger part: refused, since the private reply is one message.
	code, p := h.replyProblem(recent, map[string]any{"visibility": "private", "text": strings.Repeat("Thank you for telling us. ", 100)})
	if code != http.StatusUnprocessableEntity || p.Type != "too_long" || !strings.Contains(p.Detail, "the limit is 1 parts") {
		t.Errorf("a two-part private reply to a comment: %d %+v", code, p)
	}
	m := h.reply(recent, "private", "Could you send us the house number?")
	if got := h.waitDelivery(recent, m.ID); got.DeliveryStatus != "sent" {
		t.Fatalf("private reply: %s (%s)", got.DeliveryStatus, got.FailureReason)
	}
	calls := callsTo(g, "/"+metaPage+"/messages")
	if len(calls) != 1 {
		t.Fatalf("%d Messenger sends, want 1", len(calls))
	}
	recipient, _ := calls[0].Body["recipient"].(map[string]any)
	if recipient["comment_id"] != "p1_c1" || recipient["id"] != nil || calls[0].Body["messaging_type"] != "RESPONSE" {
		t.Errorf("the private reply went as %v", calls[0].Body)
	}
	code, p = h.replyProblem(recent, map[string]any{"visibility": "private", "text": "And the postcode?"})
	if code != http.StatusConflict || p.Type != "private_reply_used" || !strings.Contains(p.Detail, "reply publicly") {
		t.Errorf("a second private reply to the comment: %d %+v", code, p)
	}
	// A public reply still goes, under the comment.
	h.waitDelivery(recent, h.reply(recent, "public", "Thanks, we have passed it on.").ID)
	if c := callsTo(g, "/p1_c1/comments"); len(c) != 1 {
		t.Errorf("public reply calls %v", c)
	}

	// Eight days on, the comment takes no private reply.
	code, p = h.replyProblem(old, map[string]any{"visibility": "private", "text": "Sorry for the wait"})
	if code != http.StatusConflict || p.Type != "window_closed" || !strings.Contains(p.Detail, "one private reply to a public post for 7 days") {
		t.Errorf("a private reply to an old comment: %d %+v", code, p)
	}
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'outbound' AND delivery_status <> 'sent'`); n != 0 {
		t.Errorf("%d refused replies were queued", n)
	}
}

// WhatsApp after 24 hours: free text is refused, naming the number's
// templates; a template goes out with its parameters and is recorded as
// the text the resident reads. A reply can quote the message it answers.
func TestWhatsAppTemplatesAndContext(t *testing.T) {
	g := metafake.New(metaToken)
	h := newHarness(t, withMeta(g), withTemplate())
	message := func(id, from, text string, at time.Time) string {
		return `{"object":"whatsapp_business_account","entry":[{"id":"WABA1","changes":[{"field":"messages","value":{
		 "messaging_product":"whatsapp","metadata":{"phone_number_id":"` + metaNumber + `"},
		 "contacts":[{"profile":{"name":"Resident"},"wa_id":"` + from + `"}],
		 "messages":[{"from":"` + from + `","id":"` + id + `","timestamp":"` + fmt.Sprint(at.Unix()) + `","type":"text","text":{"body":"` + text + `"}}]}}]}]}`
	}
	h.metaSigned(message("wamid.late", "447700900777", "Any news on my housing repair?", time.Now().Add(-25*time.Hour)))
	late := h.waitCaseOf("wamid.late")

	code, p := h.replyProblem(late, map[string]any{"visibility": "private", "text": "Sorry for the wait"})
	if code != http.StatusConflict || p.Type != "window_closed" || !strings.Contains(p.Detail, "approved templates (case_update)") {
		t.Errorf("free text after 24 hours: %d %+v", code, p)
	}
	for _, bad := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"visibility": "private", "template": "case_update", "parameters": []string{"Erin"}}, "parameters"},
		{map[string]any{"visibility": "private", "template": "case_update", "parameters": []string{"Erin", "line\nbreak"}}, "parameters"},
		{map[string]any{"visibility": "private", "template": "no_such", "parameters": []string{"Erin", "X"}}, "template"},
		{map[string]any{"visibility": "public", "template": "case_update", "parameters": []string{"Erin", "X"}}, "template"},
		{map[string]any{"visibility": "private", "text": "Hi", "template": "case_update", "parameters": []string{"Erin", "X"}}, "text"},
		{map[string]any{"visibility": "private", "text": "Hi", "parameters": []string{"Erin"}}, "parameters"},
	} {
		code, p := h.replyProblem(late, bad.body)
		if code != http.StatusUnprocessableEntity || len(p.Errors) == 0 || p.Errors[0].Field != bad.field {
			t.Errorf("%v: %d %+v, want 422 on %s", bad.body, code, p, bad.field)
		}
	}
	code, raw := h.api(http.MethodPost, fmt.Sprintf("/cases/%d/replies", late), map[string]any{
		"visibility": "private", "template": "case_update", "parameters": []string{"Erin", "HSG-1"}})
	if code != http.StatusAccepted {
		t.Fatalf("template reply: %d %s", code, raw)
	}
	var m messageJSON
	_ = json.Unmarshal(raw, &m)
	if m.Body != "Hello Erin, there is news on your case HSG-1: reply to this message to hear it." {
		t.Errorf("the template is recorded as %q", m.Body)
	}
	if got := h.waitDelivery(late, m.ID); got.DeliveryStatus != "sent" {
		t.Fatalf("template reply: %s (%s)", got.DeliveryStatus, got.FailureReason)
	}
	calls := callsTo(g, "/"+metaNumber+"/messages")
	if len(calls) != 1 {
		t.Fatalf("%d WhatsApp sends, want 1", len(calls))
	}
	sent, _ := json.Marshal(calls[0].Body)
	want := `{"messaging_product":"whatsapp","recipient_type":"individual","template":{"components":[{"parameters":[{"text":"Erin","type":"text"},{"text":"HSG-1","type":"text"}],"type":"body"}],"language":{"code":"en_GB"},"name":"case_update"},"to":"447700900777","type":"template"}`
	if string(sent) != want {
		t.Errorf("the template went as\n%s\nwant\n%s", sent, want)
	}

	// The templates are listed with the account.
	code, raw = h.api(http.MethodGet, "/channel-accounts", nil)
	if code != http.StatusOK || !strings.Contains(string(raw), `"templates":[{"name":"case_update","language":"en_GB"`) {
		t.Errorf("channel accounts: %d %s", code, raw)
	}

	// Within the window, a reply quotes the message it answers.
	h.metaSigned(message("wamid.f1", "447700900123", "Is the tip open on Sunday?", time.Now()))
	open := h.waitCaseOf("wamid.f1")
	h.metaSigned(message("wamid.f2", "447700900123", "And can I bring a mattress?", time.Now()))
	h.eventually("the follow-up joins the case", func() bool {
		return h.count(`SELECT count(*) FROM messages WHERE case_id = ? AND direction = 'inbound'`, open) == 2
	})
	var first int64
	h.direct.Raw(`SELECT id FROM messages WHERE external_id = 'wamid.f1'`).Scan(&first)
	code, raw = h.api(http.MethodPost, fmt.Sprintf("/cases/%d/replies", open), map[string]any{
		"visibility": "private", "text": "Yes, 9am to 4pm.", "in_reply_to_message_id": first})
	if code != http.StatusAccepted {
		t.Fatalf("quoting reply: %d %s", code, raw)
	}
	_ = json.Unmarshal(raw, &m)
	h.waitDelivery(open, m.ID)
	calls = callsTo(g, "/"+metaNumber+"/messages")
	if ctx, _ := calls[len(calls)-1].Body["context"].(map[string]any); ctx["message_id"] != "wamid.f1" {
		t.Errorf("the quoting reply went as %v", calls[len(calls)-1].Body)
	}
	// A message of another case, or none, is not a message to answer.
	var other int64
	h.direct.Raw(`SELECT id FROM messages WHERE external_id = 'wamid.late'`).Scan(&other)
	for _, id := range []int64{other, 999999} {
		code, p := h.replyProblem(open, map[string]any{"visibility": "private", "text": "Yes", "in_reply_to_message_id": id})
		if code != http.StatusUnprocessableEntity || len(p.Errors) == 0 || p.Errors[0].Field != "in_reply_to_message_id" {
			t.Errorf("in reply to message %d of another case: %d %+v", id, code, p)
		}
	}
}

// WhatsApp may report a message delivered before the sender has recorded
// the id it answered with: the receipt waits and is applied then, and the
// reply ends delivered, not sent.
func TestReceiptBeforeTheSendIsRecorded(t *testing.T) {
	g := metafake.New(metaToken)
	h := newHarness(t, withMeta(g))
	h.metaSigned(string(metafake.WhatsAppMessage(metaNumber, metafake.Message{ID: "wamid.in1",
		From: metafake.User{ID: "447700900321", Name: "Hal"}, Text: "Is the library open?"})))
	caseID := h.waitCaseOf("wamid.in1")
	g.OnSent(func(s metafake.Sent) {
		// Before the fake answers: the receipt reaches the inbox first.
		h.metaSigned(string(metafake.WhatsAppStatus(metaNumber, metafake.Status{ID: s.ID, Status: "delivered", Recipient: "447700900321"})))
		h.eventually("the early receipt waits", func() bool {
			return h.count(`SELECT count(*) FROM pending_receipts WHERE external_id = ?`, s.ID) == 1
		})
	})
	m := h.reply(caseID, "private", "Yes, until 5pm.")
	h.eventually("the reply is delivered", func() bool {
		return h.count(`SELECT count(*) FROM messages WHERE id = ? AND delivery_status = 'delivered'`, m.ID) == 1
	})
	if n := h.count(`SELECT count(*) FROM pending_receipts`); n != 0 {
		t.Errorf("%d receipts still waiting after the send was recorded", n)
	}
	if n := h.count(`SELECT count(*) FROM cases`); n != 1 {
		t.Errorf("%d cases: the receipt made one", n)
	}
}
