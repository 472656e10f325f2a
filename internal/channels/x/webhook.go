package x

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Webhook is one X account's webhook endpoint: it answers X's CRC
// challenges, checks deliveries' signatures and parses them.
type Webhook struct {
	Account        Account
	ConsumerSecret string
}

var (
	_ channels.Webhook    = (*Webhook)(nil)
	_ channels.Prechecker = (*Webhook)(nil)
)

// Challenge answers GET ?crc_token=T with the token signed by the
// consumer secret, as X's challenge-response check expects.
func (w *Webhook) Challenge(r *http.Request) (string, []byte, error) {
	token := r.URL.Query().Get("crc_token")
	if token == "" {
		return "", nil, channels.ErrNotAChallenge
	}
	body, err := json.Marshal(map[string]string{"response_token": CRCResponse(w.ConsumerSecret, token)})
	if err != nil {
		return "", nil, err
	}
	return "application/json", body, nil
}

// Precheck refuses a delivery without a signature header before its body
// is read.
func (w *Webhook) Precheck(r *http.Request) error {
	if r.Header.Get(SignatureHeader) == "" {
		return ErrNoSignature
	}
	return nil
}

// Verify checks the delivery's signature over the raw body.
func (w *Webhook) Verify(r *http.Request, body []byte) error {
	if !Verify(w.ConsumerSecret, body, r.Header.Get(SignatureHeader)) {
		return ErrBadSignature
	}
	return nil
}

// Parse reads a delivery of either API into resident messages.
func (w *Webhook) Parse(body []byte, receivedAt time.Time) ([]channels.Inbound, error) {
	return Parse(body, w.Account, receivedAt)
}
