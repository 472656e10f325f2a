package x

import (
	"fmt"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels"
)

// DefaultMaxParts caps the posts of one public reply's thread, unless the
// account's max_parts says otherwise.
const DefaultMaxParts = 25

// Driver is X's channel driver: register it with channels.NewRegistry.
type Driver struct{}

var _ channels.WebhookDriver = Driver{}

// Settings is an X account's settings block (`x:` in the configuration).
type Settings struct {
	// UserID is the account's own numeric X user id: its own posts and
	// direct messages are skipped.
	UserID string `yaml:"user_id" validate:"required,numeric"`
	// ConsumerSecret signs webhooks (CRC and x-twitter-webhooks-signature).
	ConsumerSecret string `yaml:"consumer_secret" validate:"required"`
	// AccessToken is the OAuth 2.0 user-context token used to post.
	AccessToken string `yaml:"access_token" validate:"required"`
}

// Name is the driver's name, "x".
func (Driver) Name() string { return Channel }

// Channels says what X carries: public replies of 280 weighted characters
// a post, longer ones as a numbered thread; direct messages of up to
// 10,000 characters, in one message. X has no reply windows.
func (Driver) Channels() map[string]channels.Capabilities {
	return map[string]channels.Capabilities{
		Channel: {
			Text: map[channels.Visibility]channels.TextRule{
				channels.Public: {
					Unit:     "weighted characters",
					Limit:    MaxPostWeight,
					Measure:  WeightedLength,
					Split:    func(text string) []string { return SplitThread(text, MaxPostWeight) },
					MaxParts: DefaultMaxParts,
				},
				channels.Private: {
					Unit:    "characters",
					Limit:   MaxDMLength,
					Measure: utf8.RuneCountInString,
				},
			},
		},
	}
}

// Decode reads and validates an account's `x:` block into Settings.
func (Driver) Decode(_ channels.AccountConfig, decode func(any) error) (any, error) {
	var s Settings
	if err := decode(&s); err != nil {
		return nil, err
	}
	return s, nil
}

func settingsOf(acct channels.AccountConfig) (Settings, error) {
	s, ok := acct.Settings.(Settings)
	if !ok {
		return Settings{}, fmt.Errorf("x: account %s has settings of type %T, want x.Settings", acct.Slug, acct.Settings)
	}
	return s, nil
}

// Open opens an account: its webhook endpoint is named after the account
// (/webhooks/x/<slug>), and it sends through the X API at api_base_url.
func (Driver) Open(acct channels.AccountConfig, deps channels.Deps) (channels.Account, error) {
	s, err := settingsOf(acct)
	if err != nil {
		return channels.Account{}, err
	}
	return channels.Account{
		ExternalID: s.UserID,
		Endpoint:   acct.Slug,
		Sender:     &Client{BaseURL: acct.APIBaseURL, BearerToken: s.AccessToken, HTTP: deps.HTTP},
	}, nil
}

// Webhook builds an account's webhook endpoint. Each X account has its
// own, since each is signed with its app's consumer secret.
func (Driver) Webhook(endpoint string, accounts []channels.AccountConfig) (channels.Webhook, error) {
	if len(accounts) != 1 {
		return nil, fmt.Errorf("x: webhook %s serves %d accounts, want 1", endpoint, len(accounts))
	}
	s, err := settingsOf(accounts[0])
	if err != nil {
		return nil, err
	}
	return &Webhook{Account: Account{Slug: accounts[0].Slug, UserID: s.UserID}, ConsumerSecret: s.ConsumerSecret}, nil
}
