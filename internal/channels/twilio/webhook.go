package twilio

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Webhook is one SMS account's endpoint: the number's messaging webhook
// and the status callback of what it sends.
type Webhook struct {
	Account   Account
	AuthToken string
	// URL is the webhook's public URL, as configured in Twilio: what
	// Twilio signs, whatever address the request reached us at.
	URL string
}

var (
	_ channels.Webhook       = (*Webhook)(nil)
	_ channels.Prechecker    = (*Webhook)(nil)
	_ channels.IgnoreCounter = (*Webhook)(nil)
	_ channels.Answerer      = (*Webhook)(nil)
)

// EmptyTwiML is the answer to every accepted post: no message back, since
// replies go out through the REST API.
const EmptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// Answer is the empty TwiML document, as text/xml.
func (w *Webhook) Answer() (string, []byte) {
	return "text/xml", []byte(EmptyTwiML)
}

// Challenge: Twilio has no verification handshake.
func (w *Webhook) Challenge(*http.Request) (string, []byte, error) {
	return "", nil, channels.ErrNotAChallenge
}

// Precheck refuses a post without a well-formed signature before its body
// is read.
func (w *Webhook) Precheck(r *http.Request) error {
	_, err := ParseSignature(r.Header.Get(SignatureHeader))
	return err
}

// Verify checks X-Twilio-Signature over the webhook's public URL (and the
// query string the request carries, which Twilio signs as part of the
// URL) and the form's parameters, read from the raw body.
func (w *Webhook) Verify(r *http.Request, body []byte) error {
	params, err := url.ParseQuery(string(body))
	if err != nil {
		return fmt.Errorf("twilio: the post is not form-encoded: %w", err)
	}
	u := w.URL
	if u != "" && r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return CheckSignature(w.AuthToken, u, params, r.Header.Get(SignatureHeader))
}

// Parse reads a post into a message or a receipt (see Parse).
func (w *Webhook) Parse(body []byte, receivedAt time.Time) ([]channels.Inbound, error) {
	msgs, _, err := Parse(body, w.Account, receivedAt)
	return msgs, err
}

// ParseCounting parses as Parse does and counts what made no message.
func (w *Webhook) ParseCounting(body []byte, receivedAt time.Time) ([]channels.Inbound, map[string]int, error) {
	return Parse(body, w.Account, receivedAt)
}
