package xfake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/netsim"
)

// The council as residents address it on X in the simulation.
const (
	CouncilHandle = "ExampleCouncil"
	CouncilName   = "Example Council"
	// SecretEnv holds the consumer secret when -secret is not given.
	SecretEnv = "X_CONSUMER_SECRET"
)

// Simulation is X for the network simulator: the fake X API, and
// residents' mentions and direct messages delivered as X delivers them.
type Simulation struct {
	secret    string
	councilID string
}

var _ netsim.Network = (*Simulation)(nil)

// NewSimulation returns X for cmd/netsim.
func NewSimulation() *Simulation { return &Simulation{} }

// Name is the X driver's name.
func (*Simulation) Name() string { return x.Channel }

// Title is "X".
func (*Simulation) Title() string { return "X" }

// DefaultListen is where the demo's configuration expects the fake X API.
func (*Simulation) DefaultListen() string { return "127.0.0.1:8081" }

// DefaultWebhook is the demo account's webhook.
func (*Simulation) DefaultWebhook() string { return "http://127.0.0.1:8080/webhooks/x/council-x" }

// Flags adds -secret and -council-id.
func (s *Simulation) Flags(fs *flag.FlagSet) {
	fs.StringVar(&s.secret, "secret", "", "consumer secret that signs webhooks (default: $"+SecretEnv+")")
	fs.StringVar(&s.councilID, "council-id", "1500000000000000001", "the council account's X user id")
}

// Check reads the secret from the environment when -secret is empty.
func (s *Simulation) Check() error {
	if s.secret == "" {
		s.secret = os.Getenv(SecretEnv)
	}
	if s.secret == "" {
		return errors.New("no consumer secret: set -secret or " + SecretEnv)
	}
	if s.councilID == "" {
		return errors.New("-council-id is empty")
	}
	return nil
}

func (s *Simulation) council() User {
	return User{ID: s.councilID, Handle: CouncilHandle, Name: CouncilName}
}

// API is the fake X API, with the council's own user id.
func (s *Simulation) API(onSent func(netsim.Sent)) http.Handler {
	fake := New()
	fake.SetUserID(s.councilID)
	fake.OnSent(func(sent Sent) {
		out := netsim.Sent{ID: sent.ID, Text: sent.Text, InReplyTo: sent.InReplyTo, Recipient: sent.Participant}
		switch sent.Kind {
		case "dm":
			out.Visibility = channels.Private
		default:
			out.Visibility = channels.Public
		}
		onSent(out)
	})
	return fake
}

// Address puts the council's handle before text.
func (*Simulation) Address(text string) string { return "@" + CouncilHandle + " " + text }

// Styles are X's two webhook APIs: Account Activity, and X Activity.
func (*Simulation) Styles() []string { return []string{"", "X Activity"} }

// Post is a mention or reply, in the Account Activity API's shape, or as
// an X Activity post.mention.create for a new post in the "X Activity"
// style.
func (s *Simulation) Post(style, id string, from netsim.Resident, text, inReplyTo string, newID func() string) []byte {
	r := User(from)
	if style == "X Activity" && inReplyTo == "" {
		return ActivityMention(s.council(), newID(), id, r, text, time.Now())
	}
	return Mention(s.council(), id, r, text, inReplyTo, time.Now())
}

// Message is an Account Activity direct message.
func (s *Simulation) Message(id string, from netsim.Resident, text string) []byte {
	return DirectMessage(s.council(), id, User(from), text, time.Now())
}

// Sign sets the content type and X's webhook signature.
func (s *Simulation) Sign(req *http.Request, body []byte) {
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(x.SignatureHeader, x.Sign(s.secret, body))
}

// Handshake runs X's challenge-response check against the webhook: the
// inbox must answer a random token with its HMAC under the shared secret.
func (s *Simulation) Handshake(ctx context.Context, client *http.Client, webhookURL string) (string, error) {
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	token := hex.EncodeToString(raw)
	u, err := url.Parse(webhookURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("crc_token", token)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("CRC check: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("CRC check: GET %s answered %d: %s", webhookURL, resp.StatusCode, shorten(string(body), 300))
	}
	var answer struct {
		ResponseToken string `json:"response_token"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return "", fmt.Errorf("CRC check: the answer is not JSON: %w", err)
	}
	if answer.ResponseToken != x.CRCResponse(s.secret, token) {
		return "", errors.New("CRC check failed: the inbox signed the token with a different secret; " +
			"-secret (or " + SecretEnv + ") must be the consumer_secret configured for this account")
	}
	return "CRC check OK: the inbox and netsim share the consumer secret", nil
}

// shorten folds s onto one line and cuts it to about n bytes.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
