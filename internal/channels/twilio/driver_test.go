package twilio_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/twilio"
	"github.com/citizeninbox/inbox/internal/channels/twilio/twiliofake"
)

func openAccounts(t *testing.T, publicURL string, maxSegments int) (*channels.Accounts, error) {
	t.Helper()
	reg, err := channels.NewRegistry(twilio.Driver{})
	if err != nil {
		t.Fatal(err)
	}
	return reg.Open([]channels.AccountConfig{{
		Slug: "council-sms", Channel: "sms", APIBaseURL: "http://127.0.0.1:1",
		Settings: twilio.Settings{AccountSID: testSID, AuthToken: testToken, Number: testNumber, MaxSegments: maxSegments},
	}}, channels.Deps{HTTP: http.DefaultClient, PublicURL: publicURL})
}

func TestDriver(t *testing.T) {
	caps := twilio.Driver{}.Channels()["sms"]
	if !caps.PhoneIdentities || len(caps.Text) != 1 || caps.Text[channels.Private].Unit != "segments" {
		t.Errorf("capabilities %+v", caps)
	}
	accts, err := openAccounts(t, "https://inbox.example.gov.uk/", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := accts.ExternalID("council-sms"); got != testNumber {
		t.Errorf("external id %q", got)
	}
	if vis := accts.ReplyVisibilities("council-sms"); len(vis) != 1 || vis[0] != channels.Private {
		t.Errorf("reply visibilities %v", vis)
	}
	eps := accts.Endpoints()
	if len(eps) != 1 || eps[0].Driver != "twilio" || eps[0].Slug != "council-sms" {
		t.Fatalf("endpoints %+v", eps)
	}
	hook := eps[0].Webhook.(*twilio.Webhook)
	if hook.URL != callback {
		t.Errorf("webhook URL %q, want %q", hook.URL, callback)
	}
	if c := accts.Senders()["council-sms"].(*twilio.Client); c.StatusCallback != callback || c.From != testNumber {
		t.Errorf("sender %+v", c)
	}
	// A post Twilio signed over the public URL verifies, wherever it
	// reached us; one signed over another URL does not.
	params := twiliofake.Inbound(testSID, "SM1", resident, testNumber, "Hello")
	req, _ := twiliofake.Post(callback, testToken, params)
	body, _ := io.ReadAll(req.Body)
	req.URL.Host = "10.0.0.7:8080" // behind a proxy
	if err := hook.Precheck(req); err != nil {
		t.Errorf("precheck: %v", err)
	}
	if err := hook.Verify(req, body); err != nil {
		t.Errorf("a genuine post: %v", err)
	}
	other, _ := twiliofake.Post("http://10.0.0.7:8080/webhooks/twilio/council-sms", testToken, params)
	if err := hook.Verify(other, body); !errors.Is(err, twilio.ErrBadSignature) {
		t.Errorf("signed over the local URL: %v", err)
	}
	unsigned, _ := http.NewRequest(http.MethodPost, callback, strings.NewReader(string(body)))
	if err := hook.Precheck(unsigned); !errors.Is(err, twilio.ErrMalformedSignature) {
		t.Errorf("unsigned: %v", err)
	}
	if ct, answer := hook.Answer(); ct != "text/xml" || string(answer) != `<?xml version="1.0" encoding="UTF-8"?><Response></Response>` {
		t.Errorf("answer %s %s", ct, answer)
	}
	msgs, err := hook.Parse(body, time.Now())
	if err != nil || len(msgs) != 1 || msgs[0].Text != "Hello" || msgs[0].Account != "council-sms" {
		t.Errorf("parse %v %v", msgs, err)
	}
}

func TestDriverNeedsAPublicURL(t *testing.T) {
	if _, err := openAccounts(t, "", 0); err == nil || !strings.Contains(err.Error(), "INBOX_PUBLIC_URL") {
		t.Errorf("without a public URL: %v", err)
	}
}

// A reply is one SMS of at most the account's max_segments (3 unless
// set): over it, CheckReply refuses with the count.
func TestSegmentCap(t *testing.T) {
	accts, err := openAccounts(t, "https://inbox.example.gov.uk", 0)
	if err != nil {
		t.Fatal(err)
	}
	three := strings.Repeat("a", 3*153)
	if err := accts.CheckReply("council-sms", channels.Private, three); err != nil {
		t.Errorf("three segments: %v", err)
	}
	err = accts.CheckReply("council-sms", channels.Private, three+"a")
	if !errors.Is(err, channels.ErrTooLong) || err.Error() != "the text takes 4 segments; the limit is 3" {
		t.Errorf("four segments: %v", err)
	}
	if err := accts.CheckReply("council-sms", channels.Public, "hi"); !errors.Is(err, channels.ErrVisibilityNotSupported) {
		t.Errorf("a public reply: %v", err)
	}
	m, err := accts.MeasureReply("council-sms", channels.Private, strings.Repeat("ж", 71))
	if err != nil || m != (channels.Measurement{Unit: "segments", Limit: 3, Length: 2, Parts: 1, Fits: true}) {
		t.Errorf("measure %+v %v", m, err)
	}
	m, _ = accts.MeasureReply("council-sms", channels.Private, strings.Repeat("ж", 202))
	if m.Length != 4 || m.Fits {
		t.Errorf("measure over the cap %+v", m)
	}

	one, err := openAccounts(t, "https://inbox.example.gov.uk", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := one.CheckReply("council-sms", channels.Private, strings.Repeat("a", 161)); err == nil ||
		err.Error() != "the text takes 2 segments; the limit is 1" {
		t.Errorf("max_segments 1: %v", err)
	}
}
