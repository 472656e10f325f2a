package meta

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

const (
	page   = "100000000000001"
	igID   = "17841400000000001"
	number = "106000000000001"
)

var routes = Routes{
	Pages:     map[string]string{page: "council-facebook"},
	Instagram: map[string]string{igID: "council-instagram"},
	Numbers:   map[string]string{number: "council-whatsapp"},
}

var received = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// One Messenger delivery with two entries: a message with an attachment
// and a reply_to, a second resident's message, an echo of the Page's own,
// a read receipt; then an entry of a Page not configured.
const messenger = `{"object":"page","entry":[
 {"id":"` + page + `","time":1764669600000,"messaging":[
  {"sender":{"id":"7001"},"recipient":{"id":"` + page + `"},"timestamp":1764669600123,
   "message":{"mid":"m_1","text":"Bin not emptied \u00e9","reply_to":{"mid":"m_0"},
   "attachments":[{"type":"image","payload":{"url":"https:\/\/cdn.example\/a.jpg"}}]}},
  {"sender":{"id":"` + page + `"},"recipient":{"id":"7001"},"timestamp":1764669600200,"message":{"mid":"m_echo","text":"hi","is_echo":true}},
  {"sender":{"id":"7001"},"recipient":{"id":"` + page + `"},"timestamp":1764669600300,"read":{"watermark":1}}
 ]},
 {"id":"` + page + `","time":1764669601000,"messaging":[
  {"sender":{"id":"7002"},"recipient":{"id":"` + page + `"},"timestamp":1764669601000,"message":{"mid":"m_2","text":"Pothole"}}
 ]},
 {"id":"999","time":1764669601000,"messaging":[
  {"sender":{"id":"7003"},"recipient":{"id":"999"},"timestamp":1764669601000,"message":{"mid":"m_3","text":"elsewhere"}}
 ]}]}`

func TestParseMessenger(t *testing.T) {
	msgs, ig, err := Parse([]byte(messenger), routes, received)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2: %+v", len(msgs), msgs)
	}
	m := msgs[0]
	want := channels.Inbound{Channel: Facebook, Account: "council-facebook", DedupeKey: "facebook:m_1", ExternalID: "m_1",
		Visibility: channels.Private, Text: "Bin not emptied é\n[image] https://cdn.example/a.jpg",
		Author: channels.Identity{ExternalID: "7001"}, InReplyTo: "m_0",
		SentAt: time.UnixMilli(1764669600123).UTC(), ReceivedAt: received}
	m.Raw = nil
	if !equal(m, want) {
		t.Errorf("message\n got %+v\nwant %+v", m, want)
	}
	if err := msgs[0].Validate(); err != nil {
		t.Error(err)
	}
	if msgs[1].ExternalID != "m_2" || msgs[1].Author.ExternalID != "7002" {
		t.Errorf("second entry's message %+v", msgs[1])
	}
	if ig["echo"] != 1 || ig["account not configured"] != 1 || len(ig) != 3 {
		t.Errorf("ignored %v", ig)
	}
}

func equal(a, b channels.Inbound) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// Page comments: a new comment and a reply to it are public, threaded by
// post and parent; edits and removals are changes to them; the Page's
// own comment and other feed items make nothing.
func TestParsePageComments(t *testing.T) {
	body := `{"object":"page","entry":[{"id":"` + page + `","time":1764669600,"changes":[
	 {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"p1_c1","post_id":"p1","parent_id":"p1",
	  "from":{"id":"8001","name":"Alice Example"},"message":"Streetlight out","created_time":1764669600}},
	 {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"p1_c2","post_id":"p1","parent_id":"p1_c1",
	  "from":{"id":"8002","name":"Bob"},"message":"Same here","created_time":1764669660}},
	 {"field":"feed","value":{"item":"comment","verb":"edited","comment_id":"p1_c1","post_id":"p1","from":{"id":"8001"},"message":"edited"}},
	 {"field":"feed","value":{"item":"comment","verb":"remove","comment_id":"p1_c2","post_id":"p1","from":{"id":"8002"}}},
	 {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"p1_c3","post_id":"p1","from":{"id":"` + page + `"},"message":"ours"}},
	 {"field":"feed","value":{"item":"reaction","verb":"add","post_id":"p1"}},
	 {"field":"mention","value":{}}
	]}]}`
	msgs, ig, err := Parse([]byte(body), routes, received)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 4 {
		t.Fatalf("%d messages and changes, want 4", len(msgs))
	}
	first, reply, edit, removal := msgs[0], msgs[1], msgs[2], msgs[3]
	if edit.Change == nil || edit.Change.Kind != channels.Edited || edit.ExternalID != "p1_c1" || edit.Text != "edited" ||
		removal.Change == nil || removal.Change.Kind != channels.Removed || removal.ExternalID != "p1_c2" || edit.DedupeKey == first.DedupeKey {
		t.Errorf("edit %+v, removal %+v", edit, removal)
	}
	if first.Visibility != channels.Public || first.ConversationID != "p1" || first.InReplyTo != "p1" ||
		first.Author.DisplayName != "Alice Example" || !first.SentAt.Equal(time.Unix(1764669600, 0)) || first.DedupeKey != "facebook:p1_c1" {
		t.Errorf("comment %+v", first)
	}
	if reply.InReplyTo != "p1_c1" || reply.ConversationID != "p1" {
		t.Errorf("reply to a comment %+v", reply)
	}
	for _, k := range []string{"echo", "feed reaction", "field mention"} {
		if ig[k] != 1 {
			t.Errorf("ignored %v, want one %q", ig, k)
		}
	}
}

// Instagram: a DM, its echo (in the ordinary messages field), and
// comments with either id spelling.
func TestParseInstagram(t *testing.T) {
	body := `{"object":"instagram","entry":[{"id":"` + igID + `","time":1764669600000,
	 "messaging":[
	  {"sender":{"id":"9001"},"recipient":{"id":"` + igID + `"},"timestamp":1764669600000,"message":{"mid":"ig_m1","text":"Hello"}},
	  {"sender":{"id":"` + igID + `"},"recipient":{"id":"9001"},"timestamp":1764669600100,"message":{"mid":"ig_m2","text":"Hi","is_echo":true}}],
	 "changes":[
	  {"field":"comments","value":{"from":{"id":"9002","username":"resident_ig"},"id":"ig_c1","text":"Flooding here","media":{"id":"ig_media1"}}},
	  {"field":"comments","value":{"from":{"id":"9003","username":"other"},"comment_id":"ig_c2","text":"And here","parent_id":"ig_c1","media":{"id":"ig_media1"}}}
	 ]}]}`
	msgs, ig, err := Parse([]byte(body), routes, received)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || ig["echo"] != 1 {
		t.Fatalf("%d messages (want 3), ignored %v", len(msgs), ig)
	}
	if dm := msgs[0]; dm.Channel != Instagram || dm.Account != "council-instagram" || dm.Visibility != channels.Private {
		t.Errorf("dm %+v", dm)
	}
	if c := msgs[1]; c.Visibility != channels.Public || c.Author.Handle != "resident_ig" || c.ConversationID != "ig_media1" || c.InReplyTo != "ig_media1" {
		t.Errorf("comment %+v", c)
	}
	if c := msgs[2]; c.ExternalID != "ig_c2" || c.InReplyTo != "ig_c1" {
		t.Errorf("reply comment %+v", c)
	}
}

// WhatsApp: text, a reply with context, media, a location, shared
// contacts, a button; a status is a receipt, not a message; reactions
// make none; an unknown
// number is ignored; routing is by phone_number_id, not entry.id.
func TestParseWhatsApp(t *testing.T) {
	body := `{"object":"whatsapp_business_account","entry":[{"id":"WABA1","changes":[{"field":"messages","value":{
	 "messaging_product":"whatsapp","metadata":{"display_phone_number":"447700900001","phone_number_id":"` + number + `"},
	 "contacts":[{"profile":{"name":"Carol Resident"},"wa_id":"447700900123"}],
	 "messages":[
	  {"from":"447700900123","id":"wamid.1","timestamp":"1764669600","type":"text","text":{"body":"Missed bin"}},
	  {"from":"447700900123","id":"wamid.2","timestamp":"1764669660","type":"text","text":{"body":"still"},"context":{"from":"447700900001","id":"wamid.ours"}},
	  {"from":"447700900123","id":"wamid.3","timestamp":"1764669700","type":"image","image":{"id":"media9","caption":"the bin","mime_type":"image/jpeg"}},
	  {"from":"447700900123","id":"wamid.4","timestamp":"1764669800","type":"location","location":{"latitude":51.5,"longitude":-0.12,"name":"Mill Lane"}},
	  {"from":"447700900123","id":"wamid.5","timestamp":"1764669900","type":"contacts","contacts":[{"name":{"formatted_name":"Dan"},"phones":[{"phone":"+44 7700 900999"}]}]},
	  {"from":"447700900123","id":"wamid.6","timestamp":"1764669950","type":"reaction","reaction":{"message_id":"wamid.ours","emoji":"👍"}}
	 ],
	 "statuses":[{"id":"wamid.ours","status":"delivered","timestamp":"1764669601","recipient_id":"447700900123"}]}},
	 {"field":"messages","value":{"metadata":{"phone_number_id":"other"},"messages":[{"from":"1","id":"wamid.x","type":"text","text":{"body":"x"}}]}}
	]}]}`
	msgs, ig, err := Parse([]byte(body), routes, received)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 6 {
		t.Fatalf("%d messages and receipts, want 6: %+v", len(msgs), msgs)
	}
	// The status is a receipt for our message, first in its change.
	if r := msgs[0]; r.Receipt == nil || r.Receipt.Status != "delivered" || r.ExternalID != "wamid.ours" || r.Author.ExternalID != "447700900123" {
		t.Errorf("receipt %+v", r)
	}
	msgs = msgs[1:]
	m := msgs[0]
	if m.Channel != WhatsApp || m.Account != "council-whatsapp" || m.Author.DisplayName != "Carol Resident" ||
		m.Author.Handle != "+447700900123" || m.DedupeKey != "whatsapp:wamid.1" || !m.SentAt.Equal(time.Unix(1764669600, 0)) {
		t.Errorf("text %+v", m)
	}
	if msgs[1].InReplyTo != "wamid.ours" {
		t.Errorf("reply context %+v", msgs[1])
	}
	for i, want := range map[int]string{2: "[image] the bin (media media9)", 3: "[location] 51.500000, -0.120000 Mill Lane", 4: "[contacts] Dan +44 7700 900999"} {
		if !strings.HasPrefix(msgs[i].Text, want) {
			t.Errorf("message %d reads %q, want it to start %q", i, msgs[i].Text, want)
		}
	}
	if ig["whatsapp reaction"] != 1 || ig["account not configured"] != 1 {
		t.Errorf("ignored %v", ig)
	}
}

// An update that cannot be read is skipped and named; the rest of the
// batch still counts. A body that is not a delivery is an error.
func TestParseSkipsBrokenUpdates(t *testing.T) {
	body := `{"object":"page","entry":[{"id":"` + page + `","messaging":[
	  {"sender":{"id":""},"recipient":{"id":"` + page + `"},"message":{"mid":"","text":"no ids"}},
	  {"sender":{"id":"7001"},"recipient":{"id":"` + page + `"},"timestamp":1,"message":{"mid":"m_ok","text":"fine"}}]}]}`
	msgs, _, err := Parse([]byte(body), routes, received)
	if len(msgs) != 1 || err == nil || !strings.Contains(err.Error(), "entry[0].messaging[0]") || strings.Contains(err.Error(), "no ids") {
		t.Errorf("messages %d, error %v", len(msgs), err)
	}
	if _, _, err := Parse([]byte(`[1,2]`), routes, received); err == nil {
		t.Error("a JSON array parsed")
	}
}

// A batch of 1,000 updates is one delivery: every one is read.
func TestParseThousandUpdates(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"object":"page","entry":[{"id":"` + page + `","messaging":[`)
	for i := range 1000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"sender":{"id":"7` + strconv.Itoa(i) + `"},"recipient":{"id":"` + page + `"},"timestamp":1764669600000,"message":{"mid":"m` + strconv.Itoa(i) + `","text":"t"}}`)
	}
	b.WriteString(`]}]}`)
	msgs, _, err := Parse([]byte(b.String()), routes, received)
	if err != nil || len(msgs) != 1000 {
		t.Fatalf("%d messages, %v", len(msgs), err)
	}
}

func TestSignature(t *testing.T) {
	body := []byte(messenger)
	sig := Sign("app-secret", body)
	w := &Webhook{AppSecret: "app-secret"}
	req := func(h string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/meta/council-meta", nil)
		if h != "" {
			r.Header.Set(SignatureHeader, h)
		}
		return r
	}
	if err := w.Verify(req(sig), body); err != nil {
		t.Fatalf("genuine: %v", err)
	}
	if err := w.Verify(req(strings.ToUpper(sig[:7])+strings.ToUpper(sig[7:])), body); !errors.Is(err, ErrMalformedSignature) {
		t.Errorf("upper-case prefix: %v", err)
	}
	for name, tc := range map[string]struct {
		header string
		body   []byte
		want   error
	}{
		"missing":            {"", body, ErrMalformedSignature},
		"sha1":               {"sha1=" + sig[7:47], body, ErrMalformedSignature},
		"short":              {sig[:20], body, ErrMalformedSignature},
		"not hex":            {"sha256=" + strings.Repeat("z", 64), body, ErrMalformedSignature},
		"another body":       {sig, append([]byte(nil), append(body, ' ')...), ErrBadSignature},
		"another secret":     {Sign("other", body), body, ErrBadSignature},
		"re-serialised body": {sig, reserialised(t, body), ErrBadSignature},
	} {
		if err := w.Verify(req(tc.header), tc.body); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if err := (&Webhook{}).Verify(req(Sign("", body)), body); !errors.Is(err, ErrBadSignature) {
		t.Errorf("an empty secret verified: %v", err)
	}
	if err := w.Precheck(req("")); !errors.Is(err, ErrMalformedSignature) {
		t.Errorf("precheck without a header: %v", err)
	}
}

func reserialised(t *testing.T, body []byte) []byte {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v)
	return out
}

func TestChallenge(t *testing.T) {
	w := &Webhook{VerifyToken: "verify-me"}
	get := func(q url.Values) (string, []byte, error) {
		return w.Challenge(httptest.NewRequest(http.MethodGet, "/webhooks/meta/council-meta?"+q.Encode(), nil))
	}
	ct, body, err := get(url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"verify-me"}, "hub.challenge": {"1158201444"}})
	if err != nil || string(body) != "1158201444" || !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("handshake: %q %q %v", ct, body, err)
	}
	for name, q := range map[string]url.Values{
		"wrong token":  {"hub.mode": {"subscribe"}, "hub.verify_token": {"nope"}, "hub.challenge": {"1"}},
		"no token":     {"hub.mode": {"subscribe"}, "hub.challenge": {"1"}},
		"other mode":   {"hub.mode": {"unsubscribe"}, "hub.verify_token": {"verify-me"}, "hub.challenge": {"1"}},
		"html":         {"hub.mode": {"subscribe"}, "hub.verify_token": {"verify-me"}, "hub.challenge": {"<script>"}},
		"too long":     {"hub.mode": {"subscribe"}, "hub.verify_token": {"verify-me"}, "hub.challenge": {strings.Repeat("1", 300)}},
		"no challenge": {"hub.mode": {"subscribe"}, "hub.verify_token": {"verify-me"}},
	} {
		if _, _, err := get(q); err == nil || errors.Is(err, channels.ErrNotAChallenge) {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
	if _, _, err := get(url.Values{}); !errors.Is(err, channels.ErrNotAChallenge) {
		t.Errorf("a plain GET: %v", err)
	}
	if _, _, err := (&Webhook{}).Challenge(httptest.NewRequest(http.MethodGet, "/?hub.mode=subscribe&hub.verify_token=&hub.challenge=1", nil)); !errors.Is(err, ErrBadVerifyToken) {
		t.Errorf("no verify token configured: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(messenger))
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"` + number + `"},"messages":[{"from":"1","id":"w","timestamp":"x","type":"text","text":{"body":"b"}}]}}]}]}`))
	f.Add([]byte(`{"object":"instagram","entry":[{"id":"` + igID + `","changes":[{"field":"comments","value":{"from":{"id":"2"},"comment_id":"c"}}]}]}`))
	f.Add([]byte(`{"object":"page","entry":[{"id":"` + page + `","messaging":[{"sender":{"id":"7"},"recipient":{"id":"` + page + `"},"timestamp":1,"message_edit":{"mid":"m","text":"t","num_edit":1}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, _, _ := Parse(body, routes, received)
		for _, m := range msgs {
			if err := m.Validate(); err != nil {
				t.Errorf("invalid message %+v: %v", m, err)
			}
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte(messenger), Sign("s", []byte(messenger)))
	f.Add([]byte("{}"), "sha256=00")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		err := CheckSignature("s", body, header)
		if err == nil && header != Sign("s", body) && !strings.EqualFold(strings.TrimSpace(header), Sign("s", body)) {
			t.Errorf("verified %q for a body it does not sign", header)
		}
	})
}

// A resident's edit of a Messenger or Instagram message is a change to
// the stored message, each edit its own; the Page's own edits are echoes.
func TestParseMessageEdits(t *testing.T) {
	body := `{"object":"page","entry":[{"id":"` + page + `","time":1764669600000,"messaging":[
	 {"sender":{"id":"7001"},"recipient":{"id":"` + page + `"},"timestamp":1764669700000,"message_edit":{"mid":"m_1","text":"Bins missed on Elm Street, number 4","num_edit":1}},
	 {"sender":{"id":"7001"},"recipient":{"id":"` + page + `"},"timestamp":1764669800000,"message_edit":{"mid":"m_1","text":"Bins missed on Elm Street, number 14","num_edit":2}},
	 {"sender":{"id":"` + page + `"},"recipient":{"id":"7001"},"timestamp":1764669800000,"message_edit":{"mid":"m_ours","text":"x","num_edit":1}},
	 {"sender":{"id":"7001"},"recipient":{"id":"` + page + `"},"timestamp":1764669800000,"message_edit":{"text":"no id"}}
	]}]}`
	msgs, ig, err := Parse([]byte(body), routes, received)
	if err == nil {
		t.Error("an edit naming no message was not reported")
	}
	if len(msgs) != 2 {
		t.Fatalf("%d changes, want 2", len(msgs))
	}
	for i, m := range msgs {
		if m.Change == nil || m.Change.Kind != channels.Edited || m.ExternalID != "m_1" || m.Channel != Facebook ||
			m.Visibility != channels.Private || m.Author.ExternalID != "7001" || m.Validate() != nil {
			t.Errorf("edit %d: %+v", i, m)
		}
	}
	if msgs[0].DedupeKey == msgs[1].DedupeKey || msgs[1].Text != "Bins missed on Elm Street, number 14" {
		t.Errorf("two edits %q %q", msgs[0].DedupeKey, msgs[1].DedupeKey)
	}
	if ig["echo"] != 1 {
		t.Errorf("ignored %v, want the Page's own edit as an echo", ig)
	}
}
