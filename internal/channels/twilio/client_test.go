package twilio_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/twilio"
	"github.com/citizeninbox/inbox/internal/channels/twilio/twiliofake"
)

const (
	testSID    = twiliofake.DefaultAccountSID
	testToken  = "test-auth-token"
	testNumber = "+447700900002"
	resident   = "+447700900123"
	callback   = "https://inbox.example.gov.uk/webhooks/twilio/council-sms"
)

func testClient(t *testing.T) (*twilio.Client, *twiliofake.Server) {
	t.Helper()
	fake := twiliofake.New(testSID, testToken)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &twilio.Client{BaseURL: srv.URL, AccountSID: testSID, AuthToken: testToken, From: testNumber,
		StatusCallback: callback, HTTP: srv.Client()}, fake
}

func reply(text string) channels.Outbound {
	return channels.Outbound{MessageID: 1, Channel: "sms", Account: "council-sms", Visibility: channels.Private, Text: text, Recipient: resident}
}

func TestSend(t *testing.T) {
	c, fake := testClient(t)
	var parts []string
	ids, err := c.Send(t.Context(), reply("A crew will clear it today. €5"), func(i int, id string) error {
		parts = append(parts, id)
		return nil
	})
	if err != nil || len(ids) != 1 || !strings.HasPrefix(ids[0], "SM") || len(parts) != 1 || parts[0] != ids[0] {
		t.Fatalf("Send = %v, %v (parts %v)", ids, err, parts)
	}
	sent := fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("the fake has %d messages", len(sent))
	}
	m := sent[0]
	if m.SID != ids[0] || m.To != resident || m.From != testNumber || m.Body != "A crew will clear it today. €5" ||
		m.StatusCallback != callback || m.Segments != 1 || m.Encoding != "GSM-7" {
		t.Errorf("sent %+v", m)
	}
	// Sent before: not again.
	out := reply("again")
	out.SentParts = ids
	if again, err := c.Send(t.Context(), out, nil); err != nil || again[0] != ids[0] || len(fake.Sent()) != 1 {
		t.Errorf("a retried send went out again: %v %v", again, err)
	}
}

func TestSendRefusals(t *testing.T) {
	for _, tt := range []struct {
		name string
		out  channels.Outbound
	}{
		{"public", channels.Outbound{Visibility: channels.Public, Text: "x", Recipient: resident}},
		{"empty", reply("  ")},
		{"no recipient", channels.Outbound{Visibility: channels.Private, Text: "x"}},
	} {
		c, fake := testClient(t)
		_, err := c.Send(t.Context(), tt.out, nil)
		if se := channels.AsSendError(err); se.Kind != channels.Permanent || fake.Requests() != 0 {
			t.Errorf("%s: %v, %d requests", tt.name, err, fake.Requests())
		}
	}
}

// Twilio's failures, classified by its error code.
func TestSendErrors(t *testing.T) {
	tests := []struct {
		name   string
		fail   twiliofake.Failure
		kind   channels.SendErrorKind
		reason string
	}{
		{"auth", twiliofake.Failure{Status: 401, Code: 20003, Message: "Authenticate"}, channels.Unauthorised, "20003"},
		{"auth by code", twiliofake.Failure{Status: 400, Code: 20003, Message: "Authenticate"}, channels.Unauthorised, "20003"},
		{"rate", twiliofake.Failure{Status: 429, Code: 20429, Message: "Too Many Requests", RetryAfter: 7}, channels.RateLimited, "20429"},
		{"rate by code", twiliofake.Failure{Status: 400, Code: 20429, Message: "Too Many Requests"}, channels.RateLimited, "20429"},
		{"opted out", twiliofake.Failure{Status: 400, Code: 21610, Message: "Attempt to send to unsubscribed recipient"}, channels.Permanent, "opted out"},
		{"bad number", twiliofake.Failure{Status: 400, Code: 21211, Message: "Invalid 'To' Phone Number"}, channels.Permanent, "not a valid phone number"},
		{"landline", twiliofake.Failure{Status: 400, Code: 21614, Message: "'To' number is not a valid mobile number"}, channels.Permanent, "cannot receive SMS"},
		{"server", twiliofake.Failure{Status: 503, Code: 20500, Message: "Service unavailable"}, channels.Retryable, "20500"},
		{"other", twiliofake.Failure{Status: 400, Code: 21606, Message: "The From phone number is not valid"}, channels.Permanent, "21606"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, fake := testClient(t)
			fake.FailNext(tt.fail)
			before := time.Now()
			_, err := c.Send(t.Context(), reply("Hello"), nil)
			se := channels.AsSendError(err)
			if se.Kind != tt.kind || !strings.Contains(se.Reason, tt.reason) || se.Status != tt.fail.Status {
				t.Errorf("got %v (kind %s), want %s naming %q", err, se.Kind, tt.kind, tt.reason)
			}
			if tt.kind == channels.Unauthorised && !errors.Is(err, twilio.ErrCredential) {
				t.Error("a refused credential does not match ErrCredential")
			}
			if tt.fail.RetryAfter > 0 && se.RetryAt.Sub(before) < 7*time.Second {
				t.Errorf("Retry-After 7 s gave RetryAt in %s", se.RetryAt.Sub(before))
			}
			if tt.kind == channels.RateLimited && !se.RetryAt.After(before) {
				t.Error("a rate limit without a time to retry")
			}
		})
	}
}

// The fake checks the credential as Twilio does, and its refusals are
// classified like the real ones.
func TestSendAgainstTheFakesChecks(t *testing.T) {
	c, fake := testClient(t)
	fake.OptOut(resident)
	if _, err := c.Send(t.Context(), reply("Hello"), nil); !strings.Contains(channels.AsSendError(err).Reason, "opted out") {
		t.Errorf("opted out: %v", err)
	}
	out := reply("Hello")
	out.Recipient = "07700 900123"
	if _, err := c.Send(t.Context(), out, nil); !strings.Contains(channels.AsSendError(err).Reason, "21211") {
		t.Errorf("a national number: %v", err)
	}
	fake.SetAuthToken("rotated")
	if _, err := c.Send(t.Context(), reply("Hello"), nil); channels.AsSendError(err).Kind != channels.Unauthorised {
		t.Errorf("a rotated token: %v", err)
	}
}

func TestSendWithoutAnAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("<html>"))
	}))
	defer srv.Close()
	c := &twilio.Client{BaseURL: srv.URL, AccountSID: testSID, AuthToken: testToken, From: testNumber}
	_, err := c.Send(t.Context(), reply("Hello"), nil)
	if se := channels.AsSendError(err); se.Kind != channels.Permanent || !se.Ambiguous {
		t.Errorf("an unreadable success: %v", err)
	}
	srv.Close()
	_, err = c.Send(t.Context(), reply("Hello"), nil)
	if se := channels.AsSendError(err); se.Kind != channels.Retryable || se.Ambiguous {
		t.Errorf("no server: %v", err)
	}
}
