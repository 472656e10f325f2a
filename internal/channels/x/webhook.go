package x

import (
	"encoding/json"
	"errors"
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

// Challenge answers X's CRC, GET ?crc_token=T, with the token signed by
// the consumer secret: for tokens of the shape X sends only, since the same
// key signs deliveries.
func (w *Webhook) Challenge(r *http.Request) (string, []byte, error) {
	tokens, ok := r.URL.Query()["crc_token"]
	if !ok {
		return "", nil, channels.ErrNotAChallenge
	}
	if len(tokens) != 1 {
		return "", nil, errors.New("x: more than one crc_token")
	}
	answer, err := AnswerCRC(w.ConsumerSecret, tokens[0])
	if err != nil {
		return "", nil, err
	}
	body, err := json.Marshal(map[string]string{"response_token": answer})
	if err != nil {
		return "", nil, err
	}
	return "application/json", body, nil
}

// Precheck refuses a delivery without a well-formed signature header
// before its body is read.
func (w *Webhook) Precheck(r *http.Request) error {
	_, err := ParseSignature(r.Header.Get(SignatureHeader))
	return err
}

// Verify checks the delivery's signature over the raw body.
func (w *Webhook) Verify(r *http.Request, body []byte) error {
	return CheckSignature(w.ConsumerSecret, body, r.Header.Get(SignatureHeader))
}

// Parse reads a delivery of either API into resident messages.
func (w *Webhook) Parse(body []byte, receivedAt time.Time) ([]channels.Inbound, error) {
	return Parse(body, w.Account, receivedAt)
}
