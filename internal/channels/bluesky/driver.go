package bluesky

import (
	"fmt"
	"strings"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// pollEvery is the pause between two polls of an account's notifications.
const pollEvery = 2 * time.Second

// Driver is Bluesky's channel driver: register it with
// channels.NewRegistry.
type Driver struct{}

var _ channels.Driver = Driver{}

// Settings is a Bluesky account's block (`bluesky:` in the
// configuration).
type Settings struct {
	// Handle is the account's handle (examplecouncil.bsky.social), with
	// or without the @; it signs in with it.
	Handle string `yaml:"handle" validate:"required,max=253"`
	// AppPassword is an app password made for the inbox in the account's
	// settings (never the account's own password).
	AppPassword string `yaml:"app_password" validate:"required"`
	// DID is the account's DID, when known; the session tells it
	// otherwise.
	DID string `yaml:"did" validate:"omitempty,startswith=did:"`
}

// Name is the driver's name, "bluesky".
func (Driver) Name() string { return Channel }

// Channels says what Bluesky carries: public posts of 300 graphemes,
// longer replies as numbered threads; direct messages of 1,000
// graphemes, longer ones as numbered messages.
func (Driver) Channels() map[string]channels.Capabilities {
	post := channels.TextRule{
		Unit:     "graphemes",
		Limit:    MaxPostLength,
		Measure:  Length,
		Split:    func(text string) []string { return Split(text, MaxPostLength) },
		MaxParts: DefaultMaxParts,
	}
	message := channels.TextRule{
		Unit:     "graphemes",
		Limit:    MaxMessageLength,
		Measure:  Length,
		Split:    SplitMessage,
		MaxParts: DefaultMaxParts,
	}
	return map[string]channels.Capabilities{
		Channel: {Text: map[channels.Visibility]channels.TextRule{channels.Public: post, channels.Private: message}},
	}
}

// Decode reads an account's `bluesky:` block.
func (Driver) Decode(_ channels.AccountConfig, decode func(any) error) (any, error) {
	var s Settings
	if err := decode(&s); err != nil {
		return nil, err
	}
	s.Handle = strings.TrimPrefix(strings.TrimSpace(s.Handle), "@")
	if s.Handle == "" || strings.ContainsAny(s.Handle, " /:") {
		return nil, &channels.SettingError{Field: "handle", Reason: "is not a handle (examplecouncil.bsky.social)"}
	}
	return s, nil
}

// Open opens an account: it is polled, and posts its replies and sends
// its direct messages, through the service at api_base_url (bsky.social
// when empty).
func (Driver) Open(acct channels.AccountConfig, deps channels.Deps) (channels.Account, error) {
	s, ok := acct.Settings.(Settings)
	if !ok {
		return channels.Account{}, fmt.Errorf("bluesky: account %s has settings of type %T, want bluesky.Settings", acct.Slug, acct.Settings)
	}
	client := &Client{BaseURL: acct.APIBaseURL, Handle: s.Handle, AppPassword: s.AppPassword, HTTP: deps.HTTP}
	return channels.Account{
		ExternalID: s.DID,
		Sender:     client,
		Poller:     &Poller{Client: client, Slug: acct.Slug, Log: deps.Log},
		PollEvery:  pollEvery,
	}, nil
}
