package mastodonfake

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/mastodon"
	"github.com/citizeninbox/inbox/internal/netsim"
)

// Environment variable read when -access-token is not given, and the
// demo's token.
const (
	TokenEnv     = "MASTODON_ACCESS_TOKEN"
	DefaultToken = "demo-mastodon-access-token"
)

// simIDBase is added to the microseconds since the Unix epoch to make the
// first id the simulated instance gives (the council's statuses, every
// notification): ids keep growing from one run to the next, so the
// cursor an inbox kept from an earlier run is never past the new
// notifications, and they stay clear of netsim's own ids (18…).
const simIDBase = 1900000000000000000

// HandshakeWait bounds how long Handshake waits for the inbox's first
// call to the fake instance.
const HandshakeWait = 60 * time.Second

// Simulation is Mastodon for the network simulator: the fake instance
// the inbox polls and posts to, and residents mentioning the council in
// public, writing to it directly (visibility direct) and answering its
// replies in their thread. Residents' statuses are kept in the fake
// (Deliver) where the inbox's next poll of its notifications finds them.
type Simulation struct {
	token, accountID string
	firstID          int64
	// every is how often Handshake looks at the calls made.
	every time.Duration

	fake atomic.Pointer[Server]
}

var (
	_ netsim.Network = (*Simulation)(nil)
	_ netsim.Polled  = (*Simulation)(nil)
)

// NewSimulation returns Mastodon for cmd/netsim.
func NewSimulation() *Simulation { return &Simulation{} }

// Name is the Mastodon driver's name.
func (*Simulation) Name() string { return mastodon.Channel }

// Title is "Mastodon".
func (*Simulation) Title() string { return "Mastodon" }

// DefaultListen is where the demo's configuration expects the instance
// (MASTODON_BASE_URL).
func (*Simulation) DefaultListen() string { return "127.0.0.1:8085" }

// DefaultWebhook is "": the inbox polls Mastodon.
func (*Simulation) DefaultWebhook() string { return "" }

// Flags adds -access-token and -account-id.
func (s *Simulation) Flags(fs *flag.FlagSet) {
	fs.StringVar(&s.token, "access-token", "", "the council account's access token (default: $"+TokenEnv+", else "+DefaultToken+")")
	fs.StringVar(&s.accountID, "account-id", AccountID, "the council's account id on the instance (its account_id)")
}

// Check fills the token from the environment or the demo's default.
func (s *Simulation) Check() error {
	for _, v := range []string{s.token, os.Getenv(TokenEnv), DefaultToken} {
		if v != "" {
			s.token = v
			break
		}
	}
	if _, err := strconv.ParseUint(s.accountID, 10, 64); err != nil {
		return fmt.Errorf("-account-id %q is not a Mastodon account id", s.accountID)
	}
	s.firstID = simIDBase + time.Now().UnixMicro()
	return nil
}

// API is the fake instance of the council's account (@ExampleCouncil).
// Each status the council posts is reported: a direct one as a private
// message to the resident it mentions, any other as a public reply to
// the status it answers.
func (s *Simulation) API(onSent func(netsim.Sent)) http.Handler {
	fake := NewAccount(s.accountID, Acct, s.token)
	if s.firstID > 0 {
		fake.StartIDsAt(s.firstID)
	}
	fake.OnSent(func(sent Sent) {
		out := netsim.Sent{ID: sent.ID, Text: sent.Text, Visibility: channels.Public, InReplyTo: sent.InReplyTo}
		if sent.Visibility == "direct" {
			out.Visibility, out.InReplyTo = channels.Private, ""
			for _, id := range sent.Mentions {
				if id != s.accountID {
					out.Recipient = id
					break
				}
			}
		}
		onSent(out)
	})
	s.fake.Store(fake)
	return fake
}

// Address mentions the council, as residents do.
func (*Simulation) Address(text string) string { return "@" + Acct + " " + text }

// Styles: Mastodon has one kind of public status.
func (*Simulation) Styles() []string { return []string{""} }

// Post is the resident's public status id (text already mentions the
// council), answering the status inReplyTo when set.
func (s *Simulation) Post(_ string, id string, from netsim.Resident, text, inReplyTo string, _ func() string) []byte {
	return s.status(id, from, text, "public", inReplyTo)
}

// Message is the resident's direct status id to the council: a status of
// visibility direct that mentions it.
func (s *Simulation) Message(id string, from netsim.Resident, text string) []byte {
	return s.status(id, from, s.Address(text), "direct", "")
}

// Deliver keeps the resident's status in the fake instance, with a
// mention notification for the inbox's next poll.
func (s *Simulation) Deliver(body []byte) error {
	fake := s.fake.Load()
	if fake == nil {
		return errors.New("the fake Mastodon instance is not serving yet")
	}
	_, err := fake.Receive(body)
	return err
}

// Sign sets the content type; nothing is posted to the inbox.
func (*Simulation) Sign(req *http.Request, _ []byte) {
	req.Header.Set("Content-Type", "application/json")
}

// Handshake waits, up to HandshakeWait, until the inbox has called the
// fake instance with the account's access token (its first poll of the
// notifications), and fails as soon as it has called only with another.
func (s *Simulation) Handshake(ctx context.Context, _ *http.Client, _ string) (string, error) {
	fake := s.fake.Load()
	if fake == nil {
		return "", errors.New("access token check: the fake Mastodon instance is not serving")
	}
	every := s.every
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	deadline := time.NewTimer(HandshakeWait)
	defer deadline.Stop()
	for {
		switch ok, refused := fake.Calls(); {
		case ok > 0:
			return "token check OK: the inbox polls the fake instance with the account's token", nil
		case refused > 0:
			return "", fmt.Errorf("access token check: the inbox called the fake instance with another access token (refused %d times): -access-token (or %s) must be the access_token of the inbox's Mastodon account", refused, TokenEnv)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("access token check: the inbox has not polled the fake instance: %w", context.Cause(ctx))
		case <-deadline.C:
			return "", fmt.Errorf("access token check: the inbox did not poll the fake instance within %s: is the account's api_base_url (MASTODON_BASE_URL) this simulator's address, and its Mastodon account in the configuration?", HandshakeWait)
		case <-tick.C:
		}
	}
}

// status is a resident's status as Mastodon serialises it: HTML content
// with the council's mention as Mastodon writes it.
func (s *Simulation) status(id string, from netsim.Resident, text, visibility, inReplyTo string) []byte {
	a := account{ID: from.ID, Username: from.Handle, Acct: from.Handle, DisplayName: from.Name}
	st := status{ID: id, CreatedAt: time.Now().UTC().Truncate(time.Millisecond), Visibility: visibility,
		Content: contentHTML(text), Account: a,
		Mentions: []mention{{ID: s.accountID, Username: Acct, Acct: Acct}}}
	if inReplyTo != "" {
		st.InReplyToID = &inReplyTo
	}
	b, _ := json.Marshal(st)
	return b
}

// contentHTML is text as a status's HTML: escaped, in a paragraph, line
// breaks as <br />, and the council's @mention as Mastodon links it.
func contentHTML(text string) string {
	body := strings.ReplaceAll(html.EscapeString(text), "\n", "<br />")
	link := `<span class="h-card"><a href="https://social.example/@` + Acct + `" class="u-url mention">@<span>` + Acct + `</span></a></span>`
	return "<p>" + strings.ReplaceAll(body, "@"+Acct, link) + "</p>"
}
