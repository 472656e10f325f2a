package twilio

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

var testAccount = Account{Slug: "council-sms", AccountSID: "AC00000000000000000000000000000000", Number: "+447700900002"}

// inboundSMS is a resident's text as Twilio posts it to the number's
// messaging webhook.
func inboundSMS(edit func(url.Values)) []byte {
	p := url.Values{
		"ToCountry": {"GB"}, "SmsMessageSid": {"SM11111111111111111111111111111111"}, "NumMedia": {"0"},
		"SmsSid": {"SM11111111111111111111111111111111"}, "SmsStatus": {"received"}, "Body": {"My bin was not collected"},
		"To": {"+447700900002"}, "NumSegments": {"1"}, "MessageSid": {"SM11111111111111111111111111111111"},
		"AccountSid": {"AC00000000000000000000000000000000"}, "From": {"+447700900123"}, "ApiVersion": {"2010-04-01"},
	}
	if edit != nil {
		edit(p)
	}
	return []byte(p.Encode())
}

// statusCallback is Twilio's status callback for a message we sent.
func statusCallback(sid, status, code string) []byte {
	p := url.Values{"MessageSid": {sid}, "SmsSid": {sid}, "MessageStatus": {status}, "SmsStatus": {status},
		"AccountSid": {"AC00000000000000000000000000000000"}, "From": {"+447700900002"}, "To": {"+447700900123"},
		"ApiVersion": {"2010-04-01"}}
	if code != "" {
		p.Set("ErrorCode", code)
	}
	return []byte(p.Encode())
}

func TestParseMessage(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	msgs, ig, err := Parse(inboundSMS(nil), testAccount, at)
	if err != nil || len(msgs) != 1 || len(ig) != 0 {
		t.Fatalf("Parse = %v, %v, %v", msgs, ig, err)
	}
	m := msgs[0]
	if m.Channel != "sms" || m.Account != "council-sms" || m.DedupeKey != "sms:SM11111111111111111111111111111111" ||
		m.ExternalID != "SM11111111111111111111111111111111" || m.Visibility != channels.Private ||
		m.Text != "My bin was not collected" || m.Author.ExternalID != "+447700900123" || !m.SentAt.Equal(at) || m.Receipt != nil {
		t.Errorf("message %+v", m)
	}
	if err := m.Validate(); err != nil {
		t.Error(err)
	}
	// An MMS: its pictures as links.
	msgs, _, _ = Parse(inboundSMS(func(p url.Values) {
		p.Set("NumMedia", "2")
		p.Set("MediaUrl0", "https://api.twilio.com/media/ME1")
		p.Set("MediaContentType0", "image/jpeg")
		p.Set("MediaUrl1", "https://api.twilio.com/media/ME2")
		p.Set("Body", "")
	}), testAccount, at)
	if len(msgs) != 1 || msgs[0].Text != "[image/jpeg] https://api.twilio.com/media/ME1\n[media] https://api.twilio.com/media/ME2" {
		t.Errorf("MMS %+v", msgs)
	}
	// Only SmsMessageSid, as older posts carry it.
	msgs, _, _ = Parse(inboundSMS(func(p url.Values) { p.Del("MessageSid"); p.Del("SmsSid") }), testAccount, at)
	if len(msgs) != 1 || msgs[0].ExternalID != "SM11111111111111111111111111111111" {
		t.Errorf("without MessageSid: %+v", msgs)
	}
}

func TestParseReceipts(t *testing.T) {
	tests := []struct {
		status, code, want, reason string
	}{
		{"sent", "", "sent", ""},
		{"delivered", "", "delivered", ""},
		{"undelivered", "30003", "failed", "Twilio: undelivered, error 30003: the phone is switched off or out of coverage"},
		{"failed", "30008", "failed", "Twilio: failed, error 30008: unknown error from the recipient's network"},
		{"failed", "", "failed", "Twilio: failed"},
	}
	for _, tt := range tests {
		msgs, ig, err := Parse(statusCallback("SM2", tt.status, tt.code), testAccount, time.Now())
		if err != nil || len(msgs) != 1 || len(ig) != 0 {
			t.Fatalf("%s: %v %v %v", tt.status, msgs, ig, err)
		}
		m := msgs[0]
		if m.Receipt == nil || m.Receipt.Status != tt.want || m.Receipt.Error != tt.reason || m.ExternalID != "SM2" ||
			m.Author.ExternalID != "+447700900123" || m.DedupeKey != "sms:status:SM2:"+tt.status {
			t.Errorf("%s: %+v %+v", tt.status, m, m.Receipt)
		}
		if err := m.Validate(); err != nil {
			t.Errorf("%s: %v", tt.status, err)
		}
	}
}

// What makes no message is counted, never an error Twilio would see.
func TestParseIgnored(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		kind string
	}{
		{"queued", statusCallback("SM3", "queued", ""), "status"},
		{"sending", statusCallback("SM3", "sending", ""), "status"},
		{"accepted", statusCallback("SM3", "accepted", ""), "status"},
		{"another Twilio account", inboundSMS(func(p url.Values) { p.Set("AccountSid", "AC99999999999999999999999999999999") }), "account"},
		{"another number", inboundSMS(func(p url.Values) { p.Set("To", "+447700900999") }), "account"},
		{"WhatsApp through Twilio", inboundSMS(func(p url.Values) { p.Set("From", "whatsapp:+447700900123") }), "unsupported"},
		{"neither a message nor a status", []byte("AccountSid=AC00000000000000000000000000000000&Foo=bar"), "unsupported"},
		{"an empty post", nil, "unsupported"},
	}
	for _, tt := range tests {
		msgs, ig, err := Parse(tt.body, testAccount, time.Now())
		if err != nil || len(msgs) != 0 || ig[tt.kind] != 1 || len(ig) != 1 {
			t.Errorf("%s: %v %v %v", tt.name, msgs, ig, err)
		}
	}
}

func TestParseRefusesWhatCannotBeRead(t *testing.T) {
	if _, _, err := Parse([]byte("Body=%zz"), testAccount, time.Now()); err == nil {
		t.Error("a post that is not form-encoded parsed")
	}
	if _, _, err := Parse(inboundSMS(func(p url.Values) { p.Del("From") }), testAccount, time.Now()); !errors.Is(err, ErrNoID) {
		t.Errorf("a message without From: %v", err)
	}
	if _, _, err := Parse([]byte("MessageStatus=delivered&To=%2B447700900123"), testAccount, time.Now()); !errors.Is(err, ErrNoID) {
		t.Errorf("a status without MessageSid: %v", err)
	}
}

// FuzzParse: whatever Twilio (or anyone with the token) posts, Parse never
// panics, and what it returns is valid.
func FuzzParse(f *testing.F) {
	f.Add(inboundSMS(nil))
	f.Add(statusCallback("SM1", "undelivered", "30003"))
	f.Add([]byte("NumMedia=99&MediaUrl3=x&MessageSid=SM1&From=a&To=%2B447700900002"))
	f.Add([]byte("MessageStatus=&SmsStatus=failed&SmsSid=S&To=t"))
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, _, err := Parse(body, testAccount, time.Now())
		if err != nil && len(msgs) > 0 {
			t.Fatalf("messages with an error: %v", err)
		}
		for _, m := range msgs {
			if err := m.Validate(); err != nil {
				t.Fatalf("invalid message from %q: %v", body, err)
			}
		}
	})
}
