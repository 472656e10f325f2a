package twiliofake

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/twilio"
	"github.com/citizeninbox/inbox/internal/netsim"
)

// Environment variables read when the flags are not given.
const (
	AccountSIDEnv = "TWILIO_ACCOUNT_SID"
	AuthTokenEnv  = "TWILIO_AUTH_TOKEN"
)

// Simulation is SMS through Twilio for the network simulator: the fake
// Messages API, and residents' texts posted to the number's webhook as
// Twilio posts them. SMS has no public posts: a resident's "post" is a
// text too.
type Simulation struct {
	accountSID, authToken, number string

	mu sync.Mutex
	// residents maps the numbers the simulation gave residents back to
	// their ids, so that what the council sends reaches the right one.
	residents map[string]string
}

var _ netsim.Network = (*Simulation)(nil)

// NewSimulation returns SMS for cmd/netsim.
func NewSimulation() *Simulation {
	return &Simulation{number: DefaultNumber, residents: map[string]string{}}
}

// DefaultNumber is the demo council's number.
const DefaultNumber = "+447700900002"

// Name is the Twilio driver's name.
func (*Simulation) Name() string { return twilio.DriverName }

// Title is "Twilio SMS".
func (*Simulation) Title() string { return "Twilio SMS" }

// DefaultListen is where the demo's configuration expects the fake API.
func (*Simulation) DefaultListen() string { return "127.0.0.1:8084" }

// DefaultWebhook is the demo number's webhook. Twilio signs the URL it
// calls, and the inbox checks over INBOX_PUBLIC_URL: in the demo both are
// http://127.0.0.1:8080.
func (*Simulation) DefaultWebhook() string {
	return "http://127.0.0.1:8080/webhooks/twilio/council-sms"
}

// Flags adds -account-sid, -auth-token and -number.
func (s *Simulation) Flags(fs *flag.FlagSet) {
	fs.StringVar(&s.accountSID, "account-sid", "", "the Twilio account SID (default: $"+AccountSIDEnv+", or "+DefaultAccountSID+")")
	fs.StringVar(&s.authToken, "auth-token", "", "the auth token that signs webhooks (default: $"+AuthTokenEnv+", or "+DefaultAuthToken+")")
	fs.StringVar(&s.number, "number", DefaultNumber, "the council's number, in E.164")
}

// Check fills the SID and token from the environment, or the demo's.
func (s *Simulation) Check() error {
	for _, f := range []struct {
		v         *string
		env, demo string
	}{{&s.accountSID, AccountSIDEnv, DefaultAccountSID}, {&s.authToken, AuthTokenEnv, DefaultAuthToken}} {
		if *f.v == "" {
			*f.v = os.Getenv(f.env)
		}
		if *f.v == "" {
			*f.v = f.demo
		}
	}
	if !strings.HasPrefix(s.number, "+") {
		return fmt.Errorf("-number %q is not in E.164 (+447700900002)", s.number)
	}
	return nil
}

// API is the fake Messages API of the account.
func (s *Simulation) API(onSent func(netsim.Sent)) http.Handler {
	fake := New(s.accountSID, s.authToken)
	fake.OnSent(func(m Message) {
		s.mu.Lock()
		id, ok := s.residents[m.To]
		s.mu.Unlock()
		if !ok {
			id = m.To
		}
		onSent(netsim.Sent{ID: m.SID, Visibility: channels.Private, Text: m.Body, Recipient: id})
	})
	return fake
}

// Address leaves a text as it is: an SMS names nobody.
func (*Simulation) Address(text string) string { return text }

// Styles: SMS has no public posts.
func (*Simulation) Styles() []string { return nil }

// Post is a resident's text: SMS has no public posts.
func (s *Simulation) Post(_ string, id string, from netsim.Resident, text, _ string, _ func() string) []byte {
	return s.Message(id, from, text)
}

// Message is Twilio's post of a resident's text to the council's number.
func (s *Simulation) Message(id string, from netsim.Resident, text string) []byte {
	return []byte(Inbound(s.accountSID, messageSID(id), s.numberOf(from), s.number, text).Encode())
}

// messageSID makes a MessageSid of the simulator's id.
func messageSID(id string) string {
	return "SM" + strings.Repeat("0", max(0, 32-len(id))) + id
}

// numberOf gives a resident a UK mobile number of the drama range
// (07700 900000–900999), the same every time.
func (s *Simulation) numberOf(r netsim.Resident) string {
	n := 0
	for _, c := range r.ID {
		n = (n*31 + int(c)) % 1000
	}
	number := fmt.Sprintf("+447700900%03d", n)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		owner, taken := s.residents[number]
		if !taken || owner == r.ID {
			break
		}
		n = (n + 1) % 1000
		number = fmt.Sprintf("+447700900%03d", n)
	}
	s.residents[number] = r.ID
	return number
}

// Sign sets the content type and Twilio's signature over the URL the
// post goes to and its parameters.
func (s *Simulation) Sign(req *http.Request, body []byte) {
	params, _ := url.ParseQuery(string(body))
	Sign(req, s.authToken, params)
}

// Handshake posts a signed post that carries no message (Twilio has no
// handshake of its own): the inbox answers it 200 only when it checks
// signatures with the same auth token over the same URL.
func (s *Simulation) Handshake(ctx context.Context, client *http.Client, webhookURL string) (string, error) {
	params := url.Values{"AccountSid": {s.accountSID}, "ApiVersion": {"2010-04-01"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhookURL, strings.NewReader(params.Encode()))
	if err != nil {
		return "", err
	}
	Sign(req, s.authToken, params)
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("signature check: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return "", errors.New("signature check failed: the inbox refused a post signed with -auth-token (or " + AuthTokenEnv +
			") over " + webhookURL + "; the token must be the account's auth_token, and INBOX_PUBLIC_URL must make the webhook that same URL")
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("signature check: POST %s answered %d: %.300s", webhookURL, resp.StatusCode, body)
	}
	return "signature check OK: the inbox and netsim share the auth token and the webhook URL", nil
}

// Via names the network in the simulator's lines.
func (*Simulation) Via(netsim.Resident) string { return "sms" }
