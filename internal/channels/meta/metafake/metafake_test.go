package metafake_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/meta"
	"github.com/citizeninbox/inbox/internal/channels/meta/metafake"
)

const (
	page   = "100000000000001"
	igID   = "17841400000000001"
	number = "106000000000001"
	token  = "graph-token"
	secret = "app-secret"
)

var routes = meta.Routes{
	Pages:     map[string]string{page: "council-facebook"},
	Instagram: map[string]string{igID: "council-instagram"},
	Numbers:   map[string]string{number: "council-whatsapp"},
}

// The builders' deliveries, signed with Sign, pass the driver's signature
// check and parse through the driver's own parser into the messages they
// describe: the fake speaks the driver's language.
func TestDeliveriesParseThroughTheDriver(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	received := at.Add(time.Second)
	bob := metafake.User{ID: "8001", Name: "Bob Example"}
	carol := metafake.User{ID: "9002", Username: "carol_ig"}
	dan := metafake.User{ID: "447700900123", Name: "Dan Resident"}
	tests := []struct {
		name    string
		body    []byte
		want    channels.Inbound
		ignored map[string]int
	}{
		{
			name: "Messenger message",
			body: metafake.MessengerMessage(page, metafake.Message{ID: "m_alice", From: metafake.User{ID: "7001"},
				Text: "My bin was not collected", At: at, ReplyTo: "m_council1",
				Attachments: []metafake.Attachment{{Type: "image", URL: "https://example.org/bin.jpg"}}}),
			want: channels.Inbound{Channel: meta.Facebook, Account: "council-facebook", DedupeKey: "facebook:m_alice", ExternalID: "m_alice",
				Visibility: channels.Private, Text: "My bin was not collected\n[image] https://example.org/bin.jpg",
				Author: channels.Identity{ExternalID: "7001"}, InReplyTo: "m_council1", SentAt: at},
		},
		{
			name: "Instagram message",
			body: metafake.InstagramMessage(igID, metafake.Message{ID: "ig_m1", From: carol, Text: "Flooded underpass", At: at}),
			want: channels.Inbound{Channel: meta.Instagram, Account: "council-instagram", DedupeKey: "instagram:ig_m1", ExternalID: "ig_m1",
				Visibility: channels.Private, Text: "Flooded underpass", Author: channels.Identity{ExternalID: "9002"}, SentAt: at},
		},
		{
			name: "Page comment on the post",
			body: metafake.PageComment(page, metafake.Comment{ID: "p1_c1", From: bob, Text: "Streetlight out", At: at, Post: page + "_p1"}),
			want: channels.Inbound{Channel: meta.Facebook, Account: "council-facebook", DedupeKey: "facebook:p1_c1", ExternalID: "p1_c1",
				Visibility: channels.Public, Text: "Streetlight out", Author: channels.Identity{ExternalID: "8001", DisplayName: "Bob Example"},
				ConversationID: page + "_p1", InReplyTo: page + "_p1", SentAt: at},
		},
		{
			name: "Page comment answering a comment",
			body: metafake.PageComment(page, metafake.Comment{ID: "p1_c3", From: bob, Text: "Thanks", At: at, Post: page + "_p1", Parent: "p1_c2"}),
			want: channels.Inbound{Channel: meta.Facebook, Account: "council-facebook", DedupeKey: "facebook:p1_c3", ExternalID: "p1_c3",
				Visibility: channels.Public, Text: "Thanks", Author: channels.Identity{ExternalID: "8001", DisplayName: "Bob Example"},
				ConversationID: page + "_p1", InReplyTo: "p1_c2", SentAt: at},
		},
		{
			name: "Page comment edited",
			body: metafake.PageComment(page, metafake.Comment{ID: "p1_c1", From: bob, Text: "Streetlight out at 12", At: at, Post: page + "_p1", Verb: "edited"}),
			want: channels.Inbound{Channel: meta.Facebook, Account: "council-facebook",
				DedupeKey: fmt.Sprintf("facebook:edited:p1_c1:%d", at.UnixNano()), ExternalID: "p1_c1",
				Visibility: channels.Public, Text: "Streetlight out at 12", Author: channels.Identity{ExternalID: "8001", DisplayName: "Bob Example"},
				ConversationID: page + "_p1", SentAt: at, Change: &channels.Change{Kind: channels.Edited}},
		},
		{
			name: "Instagram comment answering a comment",
			body: metafake.InstagramComment(igID, metafake.Comment{ID: "ig_c2", From: carol, Text: "Graffiti at the park", At: at, Post: "ig_media1", Parent: "ig_c1"}),
			want: channels.Inbound{Channel: meta.Instagram, Account: "council-instagram", DedupeKey: "instagram:ig_c2", ExternalID: "ig_c2",
				Visibility: channels.Public, Text: "Graffiti at the park", Author: channels.Identity{ExternalID: "9002", Handle: "carol_ig"},
				ConversationID: "ig_media1", InReplyTo: "ig_c1", SentAt: received},
		},
		{
			name: "WhatsApp text",
			body: metafake.WhatsAppMessage(number, metafake.Message{ID: "wamid.dan1", From: dan, Text: "Fly-tipping on Oak Road", At: at, ReplyTo: "wamid.ours"}),
			want: channels.Inbound{Channel: meta.WhatsApp, Account: "council-whatsapp", DedupeKey: "whatsapp:wamid.dan1", ExternalID: "wamid.dan1",
				Visibility: channels.Private, Text: "Fly-tipping on Oak Road",
				Author:    channels.Identity{ExternalID: "447700900123", Handle: "+447700900123", DisplayName: "Dan Resident"},
				InReplyTo: "wamid.ours", SentAt: at},
		},
		{
			name: "WhatsApp status read",
			body: metafake.WhatsAppStatus(number, metafake.Status{ID: "wamid.ours", Status: "read", Recipient: dan.ID, At: at}),
			want: channels.Inbound{Channel: meta.WhatsApp, Account: "council-whatsapp", DedupeKey: "whatsapp:status:wamid.ours:read", ExternalID: "wamid.ours",
				Visibility: channels.Private, Author: channels.Identity{ExternalID: dan.ID}, SentAt: at, Receipt: &channels.Receipt{Status: "read"}},
		},
		{
			name: "WhatsApp status failed",
			body: metafake.WhatsAppStatus(number, metafake.Status{ID: "wamid.ours", Status: "failed", Recipient: dan.ID, At: at,
				Errors: []metafake.StatusError{{Code: 131026, Title: "Message undeliverable"}}}),
			want: channels.Inbound{Channel: meta.WhatsApp, Account: "council-whatsapp", DedupeKey: "whatsapp:status:wamid.ours:failed", ExternalID: "wamid.ours",
				Visibility: channels.Private, Author: channels.Identity{ExternalID: dan.ID}, SentAt: at,
				Receipt: &channels.Receipt{Status: "failed", Error: "WhatsApp error 131026 Message undeliverable"}},
		},
		{
			name:    "Messenger echo",
			body:    metafake.MessengerMessage(page, metafake.Message{ID: "m_echo", From: metafake.User{ID: "7001"}, Text: "ours", At: at, Echo: true}),
			ignored: map[string]int{"echo": 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := meta.CheckSignature(secret, tt.body, metafake.Sign(tt.body, secret)); err != nil {
				t.Fatalf("the driver refuses the signature: %v", err)
			}
			msgs, ignored, err := meta.Parse(tt.body, routes, received)
			if err != nil {
				t.Fatalf("parse %s: %v", tt.body, err)
			}
			if tt.ignored != nil {
				if len(msgs) != 0 || fmt.Sprint(ignored.Kinds()) != fmt.Sprint(tt.ignored) {
					t.Errorf("got %d messages, ignored %v; want none and %v", len(msgs), ignored.Kinds(), tt.ignored)
				}
				return
			}
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1: %s", len(msgs), tt.body)
			}
			got := msgs[0]
			if len(got.Raw) == 0 {
				t.Error("no raw copy of the update")
			}
			got.Raw, got.ReceivedAt = nil, time.Time{}
			if g, w := describe(got), describe(tt.want); g != w {
				t.Errorf("parsed\n %s\nwant\n %s\nfrom %s", g, w, tt.body)
			}
		})
	}
}

func describe(in channels.Inbound) string {
	b, _ := json.Marshal(in)
	return string(b)
}

// A batch of several entries makes every message of every entry, in
// order, and counts what makes none; text is encoded as Meta encodes it.
func TestBatchAndEncoding(t *testing.T) {
	text := "Café on Mill Lane/Station Road 🚧 <closed> & \"dark\""
	body := metafake.Batch(
		metafake.MessengerMessage(page, metafake.Message{ID: "m_1", From: metafake.User{ID: "7001"}, Text: text}),
		metafake.MessengerMessage(page, metafake.Message{ID: "m_echo", From: metafake.User{ID: "7001"}, Text: "ours", Echo: true}),
		metafake.PageComment(page, metafake.Comment{ID: "c_1", From: metafake.User{ID: "8001", Name: "Bob"}, Text: "Hi", Post: page + "_1"}),
		metafake.MessengerMessage("999", metafake.Message{ID: "m_other", From: metafake.User{ID: "7002"}, Text: "not ours"}),
	)
	for _, b := range body {
		if b >= 0x80 {
			t.Fatalf("the body has raw non-ASCII: %s", body)
		}
	}
	if !bytes.Contains(body, []byte(`Mill Lane\/Station Road \ud83d\udea7 <closed> & \"dark\"`)) || !bytes.Contains(body, []byte(`Caf\u00e9`)) {
		t.Errorf("not encoded as Meta does: %s", body)
	}
	msgs, ignored, err := meta.Parse(body, routes, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Text != text || msgs[1].ExternalID != "c_1" || msgs[1].Visibility != channels.Public {
		t.Errorf("messages %+v", msgs)
	}
	if k := ignored.Kinds(); k["echo"] != 1 || k["account"] != 1 {
		t.Errorf("ignored %v, want one echo and one account not configured", k)
	}

	wa := metafake.Batch(
		metafake.WhatsAppMessage(number, metafake.Message{ID: "wamid.1", From: metafake.User{ID: "447700900123", Name: "Dan"}, Text: "Hello"}),
		metafake.WhatsAppStatus(number, metafake.Status{ID: "wamid.ours", Status: "delivered", Recipient: "447700900123"}),
	)
	if msgs, _, err := meta.Parse(wa, routes, time.Now()); err != nil || len(msgs) != 2 || msgs[0].Receipt != nil || msgs[1].Receipt == nil {
		t.Errorf("WhatsApp batch: %v %+v", err, msgs)
	}

	defer func() {
		if recover() == nil {
			t.Error("a batch of a page and a whatsapp delivery did not panic")
		}
	}()
	metafake.Batch(body, wa)
}

// start serves a fake that accepts token.
func start(t *testing.T) (*metafake.Server, *httptest.Server) {
	t.Helper()
	fake := metafake.New(token)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

// sender is the driver's own Graph API client for one account.
func sender(srv *httptest.Server, channel, id string) *meta.Client {
	return &meta.Client{BaseURL: srv.URL, Channel: channel, AccountID: id, Token: token, HTTP: srv.Client()}
}

// The driver's client sends through the fake on every network: the fake
// answers as Meta does, so the client reads the ids it needs.
func TestTheDriverSendsThroughTheFake(t *testing.T) {
	fake, srv := start(t)
	var mu sync.Mutex
	var hooked []metafake.Sent
	fake.OnSent(func(s metafake.Sent) {
		mu.Lock()
		defer mu.Unlock()
		hooked = append(hooked, s)
	})
	ctx := t.Context()
	long := strings.Repeat("We have asked the crew to come back tomorrow. ", 60)
	sends := []struct {
		client *meta.Client
		out    channels.Outbound
		parts  int
	}{
		{sender(srv, meta.Facebook, page), channels.Outbound{Visibility: channels.Private, Recipient: "7001", Text: long}, 2},
		{sender(srv, meta.Instagram, igID), channels.Outbound{Visibility: channels.Private, Recipient: "9001", Text: "On it"}, 1},
		{sender(srv, meta.Facebook, page), channels.Outbound{Visibility: channels.Public, InReplyTo: "p1_c1", Text: "Reported"}, 1},
		{sender(srv, meta.Instagram, igID), channels.Outbound{Visibility: channels.Public, InReplyTo: "ig_c1", Text: "Passed on"}, 1},
		{sender(srv, meta.WhatsApp, number), channels.Outbound{Visibility: channels.Private, Recipient: "447700900123", InReplyTo: "wamid.in1", Text: "Today"}, 1},
	}
	var ids []string
	for i, s := range sends {
		got, err := s.client.Send(ctx, s.out, nil)
		if err != nil || len(got) != s.parts {
			t.Fatalf("send %d: ids %v, %v; want %d", i, got, err, s.parts)
		}
		ids = append(ids, got...)
	}
	sent := fake.Sent()
	if len(sent) != 6 {
		t.Fatalf("%d sends recorded, want 6: %+v", len(sent), sent)
	}
	for i, s := range sent {
		if s.ID != ids[i] || s.At.IsZero() {
			t.Errorf("send %d: recorded %+v, the client got id %s", i, s, ids[i])
		}
	}
	want := []string{
		"message " + page + " to 7001", "message " + page + " to 7001", "message " + igID + " to 9001",
		"comment  re p1_c1", "comment  re ig_c1", "whatsapp " + number + " to 447700900123 re wamid.in1",
	}
	for i, s := range sent {
		got := s.Kind + " " + s.Account
		if s.Recipient != "" {
			got += " to " + s.Recipient
		}
		if s.InReplyTo != "" {
			got += " re " + s.InReplyTo
		}
		if got != want[i] {
			t.Errorf("send %d is %q, want %q", i, got, want[i])
		}
	}
	if !strings.HasPrefix(sent[3].ID, "p1_") || !strings.HasPrefix(sent[5].ID, "wamid.") || !strings.HasPrefix(sent[0].ID, "m_") {
		t.Errorf("ids %v are not Meta-shaped", ids)
	}
	if !strings.HasSuffix(sent[1].Text, "(2/2)") {
		t.Errorf("second Messenger part %q", sent[1].Text)
	}
	mu.Lock()
	if len(hooked) != 6 || hooked[5].ID != sent[5].ID {
		t.Errorf("OnSent saw %d sends, want the 6", len(hooked))
	}
	mu.Unlock()

	calls := fake.Calls()
	if len(calls) != 6 || calls[0].Path != "/"+meta.DefaultVersion+"/"+page+"/messages" || calls[0].Token != token ||
		calls[0].Status != http.StatusOK || calls[0].At.IsZero() {
		t.Fatalf("calls %+v", calls)
	}
	if rec, _ := calls[0].Body["recipient"].(map[string]any); rec["id"] != "7001" || calls[0].Body["messaging_type"] != "RESPONSE" {
		t.Errorf("recorded body %v", calls[0].Body)
	}
	if calls[4].Path != "/"+meta.DefaultVersion+"/ig_c1/replies" || calls[5].Body["messaging_product"] != "whatsapp" {
		t.Errorf("calls %s, %v", calls[4].Path, calls[5].Body)
	}

	// The recorded sends, for demonstrations.
	resp, err := srv.Client().Get(srv.URL + "/__sim/sent")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var listed []metafake.Sent
	if err := json.NewDecoder(resp.Body).Decode(&listed); err != nil || len(listed) != 6 || listed[5].Kind != metafake.KindWhatsApp {
		t.Errorf("/__sim/sent: %v, %+v", err, listed)
	}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

// call posts body to the fake with tok as the bearer token.
func call(t *testing.T, srv *httptest.Server, path, tok, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("answer %d is not a JSON object: %q", resp.StatusCode, raw)
	}
	return a
}

// graphErr is the answer's Meta error document.
func (a answer) graphErr() (code, subcode float64, typ string) {
	e, _ := a.body["error"].(map[string]any)
	code, _ = e["code"].(float64)
	subcode, _ = e["error_subcode"].(float64)
	typ, _ = e["type"].(string)
	if e["message"] == nil || e["fbtrace_id"] == nil {
		return 0, 0, ""
	}
	return code, subcode, typ
}

const messengerPath = "/v21.0/" + page + "/messages"

var messengerBody = `{"recipient":{"id":"7001"},"messaging_type":"RESPONSE","message":{"text":"Hello"}}`

// A missing, wrong or revoked token is refused with 401 and code 190,
// which the driver takes for a credential problem; nothing is sent.
func TestTokens(t *testing.T) {
	fake, srv := start(t)
	for _, tok := range []string{"", "not-the-token"} {
		a := call(t, srv, messengerPath, tok, messengerBody)
		if code, _, typ := a.graphErr(); a.status != http.StatusUnauthorized || code != 190 || typ != "OAuthException" {
			t.Errorf("token %q: %d %v", tok, a.status, a.body)
		}
		if !strings.Contains(a.header.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("token %q: WWW-Authenticate %q", tok, a.header.Get("WWW-Authenticate"))
		}
	}
	// The access_token parameter is accepted as the Graph API accepts it.
	if a := call(t, srv, messengerPath+"?access_token="+token, "", messengerBody); a.status != http.StatusOK {
		t.Errorf("access_token parameter: %d %v", a.status, a.body)
	}

	fake.Revoke(token)
	_, err := sender(srv, meta.Facebook, page).Send(t.Context(), channels.Outbound{Visibility: channels.Private, Recipient: "7001", Text: "Hi"}, nil)
	var se *channels.SendError
	if !errors.As(err, &se) || se.Kind != channels.Unauthorised || !errors.Is(err, meta.ErrCredential) {
		t.Errorf("a revoked token: %v, want the driver's credential error", err)
	}
	fake.SetToken("new-token")
	if a := call(t, srv, messengerPath, token, messengerBody); a.status != http.StatusUnauthorized {
		t.Errorf("the old token after SetToken: %d", a.status)
	}
	if a := call(t, srv, messengerPath, "new-token", messengerBody); a.status != http.StatusOK || a.body["message_id"] == nil || a.body["recipient_id"] != "7001" {
		t.Errorf("the new token: %d %v", a.status, a.body)
	}
	if n := len(fake.Sent()); n != 2 {
		t.Errorf("%d sends, want the 2 with an accepted token", n)
	}
	if calls := fake.Calls(); len(calls) != 6 || calls[0].Status != http.StatusUnauthorized || calls[0].Token != "" {
		t.Errorf("calls %+v", calls)
	}
}

// A comment takes one private reply; the second is refused with Meta's
// error, which the driver takes as final.
func TestPrivateReplyOncePerComment(t *testing.T) {
	fake, srv := start(t)
	reply := `{"recipient":{"comment_id":"p1_c1"},"message":{"text":"We have messaged you"}}`
	first := call(t, srv, messengerPath, token, reply)
	if first.status != http.StatusOK || first.body["message_id"] == nil {
		t.Fatalf("first private reply: %d %v", first.status, first.body)
	}
	second := call(t, srv, messengerPath, token, reply)
	code, _, _ := second.graphErr()
	if second.status != http.StatusBadRequest || code != metafake.CodeAlreadyReplied {
		t.Errorf("second private reply: %d %v", second.status, second.body)
	}
	// The driver reads that answer as a permanent failure.
	fake.FailNext(1, http.StatusBadRequest, metafake.CodeAlreadyReplied, 0)
	_, err := sender(srv, meta.Facebook, page).Send(t.Context(), channels.Outbound{Visibility: channels.Private, Recipient: "7001", Text: "Hi"}, nil)
	var se *channels.SendError
	if !errors.As(err, &se) || se.Kind != channels.Permanent {
		t.Errorf("already replied: %v, want a permanent failure", err)
	}
	if a := call(t, srv, messengerPath, token, strings.ReplaceAll(reply, "p1_c1", "p1_c2")); a.status != http.StatusOK {
		t.Errorf("a private reply to another comment: %d", a.status)
	}
	sent := fake.Sent()
	if len(sent) != 2 || sent[0].Kind != metafake.KindPrivateReply || sent[0].InReplyTo != "p1_c1" || sent[0].Recipient != "" {
		t.Errorf("sent %+v", sent)
	}
}

// FailNext makes the next sends fail with Meta's codes, each read by the
// driver as Meta means it; then sends go through again.
func TestFailNext(t *testing.T) {
	fake, srv := start(t)
	fb := sender(srv, meta.Facebook, page)
	wa := sender(srv, meta.WhatsApp, number)
	dm := channels.Outbound{Visibility: channels.Private, Recipient: "7001", Text: "Hi"}
	waDM := channels.Outbound{Visibility: channels.Private, Recipient: "447700900123", Text: "Hi"}
	tests := []struct {
		name                  string
		client                *meta.Client
		out                   channels.Outbound
		status, code, subcode int
		kind                  channels.SendErrorKind
	}{
		{"throttled", fb, dm, 400, metafake.CodeThrottled, 0, channels.RateLimited},
		{"rate limited", fb, dm, 400, metafake.CodeRateLimited, 0, channels.RateLimited},
		{"WhatsApp throughput", wa, waDM, 400, metafake.CodeWAThroughput, 0, channels.RateLimited},
		{"WhatsApp re-engagement", wa, waDM, 400, metafake.CodeWAReengagement, 0, channels.Permanent},
		{"outage", fb, dm, 500, 2, 0, channels.Retryable},
		{"person unavailable", fb, dm, 0, metafake.CodePersonUnavailable, 0, channels.Permanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake.FailNext(1, tt.status, tt.code, tt.subcode)
			_, err := tt.client.Send(t.Context(), tt.out, nil)
			var se *channels.SendError
			if !errors.As(err, &se) || se.Kind != tt.kind {
				t.Errorf("got %v, want a %s failure", err, tt.kind)
			}
		})
	}

	// Two failures queued: two calls fail, the third goes.
	fake.FailNext(2, http.StatusBadRequest, metafake.CodeWAPairRateLimit, 0)
	for i := range 2 {
		a := call(t, srv, "/v21.0/"+number+"/messages", token, `{"messaging_product":"whatsapp","to":"447700900123","type":"text","text":{"body":"Hi"}}`)
		code, _, _ := a.graphErr()
		e, _ := a.body["error"].(map[string]any)
		if a.status != http.StatusBadRequest || code != metafake.CodeWAPairRateLimit || e["error_data"] == nil {
			t.Errorf("call %d: %d %v", i, a.status, a.body)
		}
	}
	a := call(t, srv, "/v21.0/"+number+"/messages", token, `{"messaging_product":"whatsapp","to":"447700900123","type":"text","text":{"body":"Hi"}}`)
	if msgs, _ := a.body["messages"].([]any); a.status != http.StatusOK || len(msgs) != 1 || a.body["messaging_product"] != "whatsapp" {
		t.Errorf("after the failures: %d %v", a.status, a.body)
	}
	if n := len(fake.Sent()); n != 1 {
		t.Errorf("%d sends accepted, want 1", n)
	}

	// Messenger's closed window: the driver tags the message HUMAN_AGENT
	// and sends it again.
	fake.Reset()
	fake.FailNext(1, http.StatusBadRequest, metafake.CodePermission, metafake.SubcodeOutsideWindow)
	if _, err := fb.Send(t.Context(), dm, nil); err != nil {
		t.Fatal(err)
	}
	if sent := fake.Sent(); len(sent) != 1 || sent[0].Tag != "HUMAN_AGENT" {
		t.Errorf("after the window: %+v", sent)
	}
}

// WhatsApp templates go out; what Meta refuses is refused with code 100.
func TestWhatsAppTemplatesAndRefusals(t *testing.T) {
	fake, srv := start(t)
	waPath := "/v21.0/" + number + "/messages"
	a := call(t, srv, waPath, token, `{"messaging_product":"whatsapp","to":"447700900123","type":"template",
		"template":{"name":"case_update","language":{"code":"en_GB"}}}`)
	msgs, _ := a.body["messages"].([]any)
	contacts, _ := a.body["contacts"].([]any)
	if a.status != http.StatusOK || len(msgs) != 1 || len(contacts) != 1 {
		t.Fatalf("template: %d %v", a.status, a.body)
	}
	if m := msgs[0].(map[string]any); !strings.HasPrefix(m["id"].(string), "wamid.") || m["message_status"] != "accepted" {
		t.Errorf("template answer %v", a.body)
	}
	if c := contacts[0].(map[string]any); c["wa_id"] != "447700900123" {
		t.Errorf("contacts %v", contacts)
	}
	if s := fake.Sent(); len(s) != 1 || s[0].Template != "case_update" {
		t.Errorf("sent %+v", s)
	}

	tests := []struct{ name, path, body string }{
		{"no recipient", messengerPath, `{"message":{"text":"Hi"}}`},
		{"no text", messengerPath, `{"recipient":{"id":"7001"},"message":{}}`},
		{"text too long", messengerPath, `{"recipient":{"id":"7001"},"message":{"text":"` + strings.Repeat("a", 2001) + `"}}`},
		{"a tag without MESSAGE_TAG", messengerPath, `{"recipient":{"id":"7001"},"messaging_type":"MESSAGE_TAG","message":{"text":"Hi"}}`},
		{"not JSON", messengerPath, `{"recipient":`},
		{"WhatsApp to no number", waPath, `{"messaging_product":"whatsapp","to":"dan","type":"text","text":{"body":"Hi"}}`},
		{"WhatsApp text too long", waPath, `{"messaging_product":"whatsapp","to":"447700900123","type":"text","text":{"body":"` + strings.Repeat("a", 4097) + `"}}`},
		{"WhatsApp template without language", waPath, `{"messaging_product":"whatsapp","to":"447700900123","type":"template","template":{"name":"x"}}`},
		{"empty comment", "/v21.0/p1_c1/comments", `{"message":" "}`},
		{"Instagram comment too long", "/v21.0/ig_c1/replies", `{"message":"` + strings.Repeat("a", 2201) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, srv, tt.path, token, tt.body)
			if code, _, _ := a.graphErr(); a.status != http.StatusBadRequest || code != metafake.CodeInvalidParameter {
				t.Errorf("%d %v, want 400 with code 100", a.status, a.body)
			}
		})
	}
	for _, path := range []string{"/21.0/" + page + "/messages", "/v21.0/" + page + "/feed", "/v21.0/messages"} {
		if a := call(t, srv, path, token, messengerBody); a.status != http.StatusBadRequest {
			t.Errorf("%s: %d %v", path, a.status, a.body)
		} else if code, _, _ := a.graphErr(); code != metafake.CodeUnknownPath {
			t.Errorf("%s: %v", path, a.body)
		}
	}
	if n := len(fake.Sent()); n != 1 {
		t.Errorf("%d sends, want only the template", n)
	}
}

// Two private replies to one comment at once: one goes, one is refused.
func TestConcurrentPrivateReplies(t *testing.T) {
	fake, srv := start(t)
	var wg sync.WaitGroup
	statuses := make(chan int, 8)
	for range 8 {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+messengerPath,
				strings.NewReader(`{"recipient":{"comment_id":"c9"},"message":{"text":"Hi"}}`))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for s := range statuses {
		if s == http.StatusOK {
			ok++
		}
	}
	if ok != 1 || len(fake.Sent()) != 1 {
		t.Errorf("%d private replies accepted, %d recorded; want 1", ok, len(fake.Sent()))
	}
}
