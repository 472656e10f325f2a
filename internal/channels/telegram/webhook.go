package telegram

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// SecretHeader carries the secret_token given to setWebhook on every
// delivery.
const SecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// Webhook is one bot's endpoint.
type Webhook struct {
	Account     Account
	SecretToken string
}

var (
	_ channels.Webhook       = (*Webhook)(nil)
	_ channels.Prechecker    = (*Webhook)(nil)
	_ channels.IgnoreCounter = (*Webhook)(nil)
)

// Errors of Verify.
var (
	ErrNoSecret  = errors.New("telegram: no " + SecretHeader + " header")
	ErrBadSecret = errors.New("telegram: " + SecretHeader + " does not match the secret token")
)

// Challenge answers nothing: Telegram makes no verification request.
func (w *Webhook) Challenge(*http.Request) (string, []byte, error) {
	return "", nil, channels.ErrNotAChallenge
}

// Precheck refuses a delivery without the secret header before its body
// is read.
func (w *Webhook) Precheck(r *http.Request) error {
	if r.Header.Get(SecretHeader) == "" {
		return ErrNoSecret
	}
	return nil
}

// Verify checks the delivery's secret token, in constant time. Telegram
// signs nothing: the token, sent only over TLS, is the whole proof.
func (w *Webhook) Verify(r *http.Request, _ []byte) error {
	return CheckSecret(w.SecretToken, r.Header.Get(SecretHeader))
}

// CheckSecret compares a delivery's secret header with the configured
// secret token in constant time; an empty configured token matches
// nothing.
func CheckSecret(secret, header string) error {
	switch {
	case header == "":
		return ErrNoSecret
	case secret == "" || subtle.ConstantTimeCompare([]byte(header), []byte(secret)) != 1:
		return ErrBadSecret
	}
	return nil
}

// Parse reads the delivery's one Update into a resident message, if it
// makes one.
func (w *Webhook) Parse(body []byte, receivedAt time.Time) ([]channels.Inbound, error) {
	msgs, _, err := w.ParseCounting(body, receivedAt)
	return msgs, err
}

// ParseCounting parses as Parse does and counts an update that made no
// message by its kind.
func (w *Webhook) ParseCounting(body []byte, receivedAt time.Time) ([]channels.Inbound, map[string]int, error) {
	in, ignored, err := Parse(body, w.Account, receivedAt)
	switch {
	case err != nil:
		return nil, nil, err
	case in == nil:
		return nil, map[string]int{ignored: 1}, nil
	}
	return []channels.Inbound{*in}, nil, nil
}
