package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/ingest"
)

// buildChannel makes the webhook endpoint and the sending adapter of one
// configured channel account. A new network adds one case here.
func buildChannel(acct config.ChannelAccount, httpClient *http.Client) (ingest.Endpoint, channels.Sender, error) {
	switch acct.Channel {
	case "x":
		ep := &xEndpoint{slug: acct.Slug, cfg: *acct.X}
		client := &x.Client{BaseURL: acct.APIBaseURL, BearerToken: acct.X.AccessToken, HTTP: httpClient}
		return ep, client, nil
	}
	return nil, nil, fmt.Errorf("channel_accounts %s: channel %q is not supported", acct.Slug, acct.Channel)
}

// xEndpoint is an X account's webhook endpoint.
type xEndpoint struct {
	slug string
	cfg  config.X
}

func (e *xEndpoint) Channel() string { return "x" }
func (e *xEndpoint) Account() string { return e.slug }

func (e *xEndpoint) Challenge(q url.Values) (string, []byte, bool) {
	token := q.Get("crc_token")
	if token == "" {
		return "", nil, false
	}
	body, _ := json.Marshal(map[string]string{"response_token": x.CRCResponse(e.cfg.ConsumerSecret, token)})
	return "application/json", body, true
}

func (e *xEndpoint) Verify(h http.Header, body []byte) bool {
	return x.Verify(e.cfg.ConsumerSecret, body, h.Get("x-twitter-webhooks-signature"))
}

func (e *xEndpoint) Parse(body []byte, receivedAt time.Time) ([]channels.Inbound, error) {
	return x.Parse(body, x.Account{Slug: e.slug, UserID: e.cfg.UserID}, receivedAt)
}
