package meta

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Route is one channel account the app's endpoint serves: its channel and
// slug, by the Page id, Instagram account id or WhatsApp phone number id
// Meta names in each update.
type Route struct {
	Channel string
	Account string
}

// Webhook is one Meta app's endpoint.
type Webhook struct {
	AppSecret   string
	VerifyToken string
	// Pages, Instagram and Numbers route updates to channel accounts by
	// Page id, Instagram account id and phone number id.
	Pages     map[string]string
	Instagram map[string]string
	Numbers   map[string]string
}

var (
	_ channels.Webhook    = (*Webhook)(nil)
	_ channels.Prechecker = (*Webhook)(nil)
)

// ErrBadVerifyToken is a subscription request with another verify token.
var ErrBadVerifyToken = errors.New("meta: hub.verify_token does not match")

// maxChallenge is the longest hub.challenge answered.
const maxChallenge = 256

// Challenge answers Meta's subscription handshake, GET
// ?hub.mode=subscribe&hub.verify_token=V&hub.challenge=C, with C, when V
// is the app's verify token (compared in constant time). The challenge is
// echoed as plain text, and only when short and of digits and letters, so
// the endpoint cannot be made to serve arbitrary content.
func (w *Webhook) Challenge(r *http.Request) (string, []byte, error) {
	q := r.URL.Query()
	if q.Get("hub.mode") == "" && q.Get("hub.challenge") == "" {
		return "", nil, channels.ErrNotAChallenge
	}
	if q.Get("hub.mode") != "subscribe" {
		return "", nil, errors.New("meta: hub.mode is not subscribe")
	}
	token := q.Get("hub.verify_token")
	if w.VerifyToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(w.VerifyToken)) != 1 {
		return "", nil, ErrBadVerifyToken
	}
	c := q.Get("hub.challenge")
	if c == "" || len(c) > maxChallenge {
		return "", nil, errors.New("meta: hub.challenge is empty or too long")
	}
	for _, r := range c {
		if (r < '0' || r > '9') && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && r != '-' && r != '_' {
			return "", nil, errors.New("meta: hub.challenge has characters Meta does not send")
		}
	}
	return "text/plain; charset=utf-8", []byte(c), nil
}

// Precheck refuses a delivery without a well-formed signature header
// before its body is read.
func (w *Webhook) Precheck(r *http.Request) error {
	_, err := ParseSignature(r.Header.Get(SignatureHeader))
	return err
}

// Verify checks the delivery's signature over the raw body.
func (w *Webhook) Verify(r *http.Request, body []byte) error {
	return CheckSignature(w.AppSecret, body, r.Header.Get(SignatureHeader))
}

// Parse reads a delivery into resident messages (see Parse).
func (w *Webhook) Parse(body []byte, receivedAt time.Time) ([]channels.Inbound, error) {
	msgs, _, err := Parse(body, w.routes(), receivedAt)
	return msgs, err
}

func (w *Webhook) routes() Routes {
	return Routes{Pages: w.Pages, Instagram: w.Instagram, Numbers: w.Numbers}
}

var _ channels.IgnoreCounter = (*Webhook)(nil)

// ParseCounting parses as Parse does and counts what made no message.
func (w *Webhook) ParseCounting(body []byte, receivedAt time.Time) ([]channels.Inbound, map[string]int, error) {
	msgs, ig, err := Parse(body, w.routes(), receivedAt)
	return msgs, ig.Kinds(), err
}
