package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/ingest"
	"github.com/citizeninbox/inbox/internal/outbound"
)

// buildChannel makes the webhook endpoint and the sending adapter of one
// configured channel account. A new network adds one case here.
func buildChannel(acct config.ChannelAccount, httpClient *http.Client) (ingest.Endpoint, outbound.Adapter, error) {
	switch acct.Channel {
	case "x":
		ep := ingest.Endpoint{Driver: "x", Slug: acct.Slug, Webhook: &xEndpoint{slug: acct.Slug, cfg: *acct.X}}
		client := &x.Client{BaseURL: acct.APIBaseURL, BearerToken: acct.X.AccessToken, HTTP: httpClient}
		return ep, client, nil
	}
	return ingest.Endpoint{}, nil, fmt.Errorf("channel_accounts %s: channel %q is not supported", acct.Slug, acct.Channel)
}

// xEndpoint is an X account's webhook endpoint, at /webhooks/x/<slug>.
type xEndpoint struct {
	slug string
	cfg  config.X
}

// Challenge answers X's CRC, for tokens of the shape X sends only.
func (e *xEndpoint) Challenge(r *http.Request) (string, []byte, error) {
	tokens, ok := r.URL.Query()["crc_token"]
	if !ok {
		return "", nil, channels.ErrNotAChallenge
	}
	if len(tokens) != 1 {
		return "", nil, errors.New("x: more than one crc_token")
	}
	answer, err := x.AnswerCRC(e.cfg.ConsumerSecret, tokens[0])
	if err != nil {
		return "", nil, err
	}
	body, err := json.Marshal(map[string]string{"response_token": answer})
	return "application/json", body, err
}

// Precheck refuses a request without a well-formed signature header.
func (e *xEndpoint) Precheck(r *http.Request) error {
	_, err := x.ParseSignature(r.Header.Get(x.SignatureHeader))
	return err
}

func (e *xEndpoint) Verify(r *http.Request, body []byte) error {
	return x.CheckSignature(e.cfg.ConsumerSecret, body, r.Header.Get(x.SignatureHeader))
}

func (e *xEndpoint) Parse(body []byte, receivedAt time.Time) ([]channels.Inbound, error) {
	return x.Parse(body, x.Account{Slug: e.slug, UserID: e.cfg.UserID}, receivedAt)
}
