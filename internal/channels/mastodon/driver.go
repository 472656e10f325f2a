package mastodon

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels"
)

// DefaultMaxParts caps the statuses one reply is split into, unless the
// account's max_parts says otherwise.
const DefaultMaxParts = 10

// DefaultPollEvery is the pause between two polls of the notifications:
// well within Mastodon's 300 requests in 5 minutes.
const DefaultPollEvery = 10 * time.Second

// Driver is Mastodon's channel driver: register it with
// channels.NewRegistry.
type Driver struct{}

var _ channels.Driver = Driver{}

// Settings is a Mastodon account's block (`mastodon:` in the
// configuration). The instance is the account's api_base_url.
type Settings struct {
	// AccessToken is the token of an application authorised for the
	// council's account (scopes read:notifications, read:statuses,
	// read:accounts, write:statuses).
	AccessToken string `yaml:"access_token" validate:"required"`
	// AccountID is the council's own account id on the instance: its own
	// statuses are skipped.
	AccountID string `yaml:"account_id" validate:"required,numeric"`
	// PollEvery is the pause between two polls; DefaultPollEvery when
	// zero.
	PollEvery time.Duration `yaml:"poll_every"`
}

// Name is the driver's name, "mastodon".
func (Driver) Name() string { return Channel }

// Channels says what Mastodon carries: public and direct statuses,
// measured against Mastodon's default of 500 characters (an instance
// allowing more has its replies cut at its own limit when sent), longer
// replies as a thread of numbered parts. No reply windows.
func (Driver) Channels() map[string]channels.Capabilities {
	rule := channels.TextRule{
		Unit:     "characters",
		Limit:    DefaultMaxCharacters,
		Measure:  utf8.RuneCountInString,
		Split:    func(text string) []string { return channels.SplitNumbered(text, DefaultMaxCharacters) },
		MaxParts: DefaultMaxParts,
	}
	return map[string]channels.Capabilities{
		Channel: {Text: map[channels.Visibility]channels.TextRule{channels.Public: rule, channels.Private: rule}},
	}
}

// Decode reads an account's `mastodon:` block; the instance must be
// given as the account's api_base_url.
func (Driver) Decode(acct channels.AccountConfig, decode func(any) error) (any, error) {
	var s Settings
	if err := decode(&s); err != nil {
		return nil, err
	}
	if s.PollEvery < 0 {
		return nil, &channels.SettingError{Field: "poll_every", Reason: "is negative"}
	}
	return s, nil
}

// Open opens a Mastodon account: a poller of its notifications and a
// sender of statuses, both through the instance at api_base_url. Nothing
// is asked of the instance until the first poll or send.
func (Driver) Open(acct channels.AccountConfig, deps channels.Deps) (channels.Account, error) {
	s, ok := acct.Settings.(Settings)
	if !ok {
		return channels.Account{}, fmt.Errorf("mastodon: account %s has settings of type %T, want mastodon.Settings", acct.Slug, acct.Settings)
	}
	if acct.APIBaseURL == "" {
		return channels.Account{}, fmt.Errorf("mastodon: account %s has no api_base_url (the instance's address)", acct.Slug)
	}
	client := &Client{BaseURL: acct.APIBaseURL, Token: s.AccessToken, HTTP: deps.HTTP, Slug: acct.Slug}
	every := s.PollEvery
	if every <= 0 {
		every = DefaultPollEvery
	}
	return channels.Account{
		ExternalID: s.AccountID,
		Sender:     client,
		Poller:     &Poller{Client: client, Account: Account{Slug: acct.Slug, ID: s.AccountID}, Log: deps.Log},
		PollEvery:  every,
	}, nil
}
