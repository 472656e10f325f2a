package blueskyfake

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/bluesky"
	"github.com/citizeninbox/inbox/internal/netsim"
)

// Environment variables read when the flags are not given, and their
// defaults (the demo's).
const (
	HandleEnv       = "BLUESKY_HANDLE"
	AppPasswordEnv  = "BLUESKY_APP_PASSWORD"
	DemoAppPassword = "demo-bluesky-app-password"
)

// DefaultSignInWait is how long Handshake waits for the inbox to sign in.
const DefaultSignInWait = 60 * time.Second

// Simulation is Bluesky for the network simulator: the fake service the
// inbox polls and replies through, and residents mentioning the council,
// messaging it and answering it in the thread. Bluesky has no webhooks:
// what residents write is kept in the fake (netsim.Polled) for the
// inbox's next poll.
type Simulation struct {
	handle, password string
	signInWait       time.Duration

	fake *Server // made by Check

	mu        sync.Mutex
	uriOf     map[string]string // netsim post id → at:// uri
	idOf      map[string]string // at:// uri → netsim post id
	residents map[string]string // DID → netsim resident id
}

var (
	_ netsim.Network = (*Simulation)(nil)
	_ netsim.Polled  = (*Simulation)(nil)
)

// NewSimulation returns Bluesky for cmd/netsim.
func NewSimulation() *Simulation {
	return &Simulation{uriOf: map[string]string{}, idOf: map[string]string{}, residents: map[string]string{}}
}

// Name is the Bluesky driver's name.
func (*Simulation) Name() string { return bluesky.Channel }

// Title is "Bluesky".
func (*Simulation) Title() string { return "Bluesky" }

// DefaultListen is where the demo's configuration expects the fake
// service (BLUESKY_SERVICE_URL).
func (*Simulation) DefaultListen() string { return "127.0.0.1:8086" }

// DefaultWebhook is empty: the inbox polls Bluesky.
func (*Simulation) DefaultWebhook() string { return "" }

// Flags adds -handle, -app-password and -signin-wait.
func (s *Simulation) Flags(fs *flag.FlagSet) {
	fs.StringVar(&s.handle, "handle", "", "the council account's handle (default: $"+HandleEnv+", else "+Handle+")")
	fs.StringVar(&s.password, "app-password", "", "the app password the inbox signs in with (default: $"+AppPasswordEnv+", else "+DemoAppPassword+")")
	fs.DurationVar(&s.signInWait, "signin-wait", DefaultSignInWait, "how long to wait for the inbox to sign in to the fake service")
}

// Check fills the handle and app password from the environment or the
// demo's defaults, and makes the fake service.
func (s *Simulation) Check() error {
	s.handle = strings.TrimPrefix(firstOf(s.handle, os.Getenv(HandleEnv), Handle), "@")
	s.password = firstOf(s.password, os.Getenv(AppPasswordEnv), DemoAppPassword)
	if strings.ContainsAny(s.handle, " /:") || s.handle == "" {
		return fmt.Errorf("-handle %q is not a handle (examplecouncil.bsky.social)", s.handle)
	}
	if s.signInWait <= 0 {
		return errors.New("-signin-wait must be positive")
	}
	s.fake = NewAccount(s.handle, s.password, DID)
	return nil
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// Fake is the fake service, once Check made it.
func (s *Simulation) Fake() *Server { return s.fake }

// API is the fake service: the council's posts and direct messages come
// back to onSent, answering the netsim ids of the residents' posts and
// addressed to the cast's ids.
func (s *Simulation) API(onSent func(netsim.Sent)) http.Handler {
	s.fake.OnSent(func(p Sent) {
		out := netsim.Sent{ID: p.URI, Visibility: channels.Public, Text: p.Text}
		if p.Reply != nil {
			out.InReplyTo = s.netsimID(p.Reply.Parent.URI)
		}
		onSent(out)
	})
	s.fake.OnMessage(func(m SentMessage) {
		s.mu.Lock()
		to := s.residents[m.To]
		s.mu.Unlock()
		if to == "" {
			to = m.To
		}
		onSent(netsim.Sent{ID: m.ID, Visibility: channels.Private, Text: m.Text, Recipient: to})
	})
	return s.fake
}

// netsimID is the netsim id of the post uri: a resident's post's id, or
// the uri itself for the council's posts (whose ids are their uris).
func (s *Simulation) netsimID(uri string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.idOf[uri]; ok {
		return id
	}
	return uri
}

// Address mentions the council's handle, as residents do.
func (s *Simulation) Address(text string) string { return "@" + s.handle + " " + text }

// Styles: Bluesky is polled one way.
func (*Simulation) Styles() []string { return []string{""} }

// delivery is what Post and Message hand to Deliver.
type delivery struct {
	Kind      string          `json:"kind"` // post or dm
	ID        string          `json:"id"`
	From      netsim.Resident `json:"from"`
	Text      string          `json:"text"`
	InReplyTo string          `json:"in_reply_to,omitempty"`
}

// Post is a resident's public post id, answering inReplyTo when set.
func (*Simulation) Post(_ string, id string, from netsim.Resident, text, inReplyTo string, _ func() string) []byte {
	b, _ := json.Marshal(delivery{Kind: "post", ID: id, From: from, Text: text, InReplyTo: inReplyTo})
	return b
}

// Message is a resident's direct message.
func (*Simulation) Message(id string, from netsim.Resident, text string) []byte {
	b, _ := json.Marshal(delivery{Kind: "dm", ID: id, From: from, Text: text})
	return b
}

// Deliver keeps a resident's post or message in the fake, for the inbox's
// next poll.
func (s *Simulation) Deliver(body []byte) error {
	if s.fake == nil {
		return errors.New("bluesky simulation: Deliver before Check")
	}
	var d delivery
	if err := json.Unmarshal(body, &d); err != nil {
		return fmt.Errorf("bluesky simulation: unreadable delivery: %w", err)
	}
	from := s.resident(d.From)
	switch d.Kind {
	case "dm":
		s.fake.Message(from, d.Text)
		return nil
	case "post":
	default:
		return fmt.Errorf("bluesky simulation: delivery of kind %q", d.Kind)
	}
	parent := ""
	if d.InReplyTo != "" {
		s.mu.Lock()
		parent = s.uriOf[d.InReplyTo]
		s.mu.Unlock()
		if parent == "" {
			parent = d.InReplyTo // the council's post, whose id is its uri
		}
		if !s.fake.Has(parent) {
			return fmt.Errorf("bluesky simulation: post %s answers %s, which the fake does not hold", d.ID, d.InReplyTo)
		}
	}
	uri := s.fake.Post(from, d.Text, parent, time.Time{})
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.ID != "" {
		s.uriOf[d.ID], s.idOf[uri] = uri, d.ID
	}
	return nil
}

// resident is how Bluesky knows a member of netsim's cast.
func (s *Simulation) resident(r netsim.Resident) Resident {
	did := "did:plc:sim" + strings.ToLower(r.ID)
	s.mu.Lock()
	s.residents[did] = r.ID
	s.mu.Unlock()
	handle := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(r.Handle, "@"), "_", "-"))
	if !strings.Contains(handle, ".") {
		handle += ".bsky.social"
	}
	return Resident{DID: did, Handle: handle, DisplayName: r.Name}
}

// Sign does nothing: nothing is posted to the inbox.
func (*Simulation) Sign(*http.Request, []byte) {}

// Handshake waits, within -signin-wait, until the inbox signs in to the
// fake with the council's handle and app password, which proves it polls
// the fake with the credentials the simulation expects; it fails as soon
// as it sees only refused sign-ins.
func (s *Simulation) Handshake(ctx context.Context, _ *http.Client, _ string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.signInWait)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		created, refused := s.fake.Sessions()
		switch {
		case created > 0:
			return fmt.Sprintf("sign-in check OK: the inbox signed in as %s with the app password, and polls the fake service", s.handle), nil
		case refused > 0:
			return "", fmt.Errorf("sign-in check: the inbox signed in with another handle or app password: -handle and -app-password (or %s and %s) must be the council-bluesky account's handle and app_password", HandleEnv, AppPasswordEnv)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return "", fmt.Errorf("sign-in check: the inbox did not sign in to the fake Bluesky service within %s: its account's api_base_url (BLUESKY_SERVICE_URL) must be this service's address", s.signInWait)
			}
			return "", ctx.Err()
		case <-tick.C:
		}
	}
}
