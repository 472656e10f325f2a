package twilio

import (
	"errors"
	"fmt"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Segment caps: DefaultMaxSegments unless the account's max_segments says
// otherwise, and never over MaxSegments (ten segments stay within the
// 1,600 characters Twilio takes in a Body, whatever the encoding).
const (
	DefaultMaxSegments = 3
	MaxSegments        = 10
)

// Driver is the SMS driver through Twilio: register it with
// channels.NewRegistry.
type Driver struct{}

var _ channels.WebhookDriver = Driver{}

// Settings is an SMS account's block (`twilio:` in the configuration).
type Settings struct {
	AccountSID string `yaml:"account_sid" validate:"required,startswith=AC,len=34,alphanum"`
	AuthToken  string `yaml:"auth_token" validate:"required"`
	// Number is the account's Twilio number, in E.164 (+447700900002).
	Number string `yaml:"number" validate:"required,e164"`
	// MaxSegments caps the segments of one reply (DefaultMaxSegments when
	// zero); each segment is billed as one SMS.
	MaxSegments int `yaml:"max_segments" validate:"min=0,max=10"`
}

// Name is the driver's name, "twilio".
func (Driver) Name() string { return DriverName }

// Channels says what SMS carries: private messages only, measured in
// segments (see Segments), one message of at most the account's cap. A
// resident is known by their phone number.
func (Driver) Channels() map[string]channels.Capabilities {
	return map[string]channels.Capabilities{
		Channel: {
			Text: map[channels.Visibility]channels.TextRule{
				channels.Private: {
					Unit:          "segments",
					Limit:         MaxSegments,
					Measure:       CountSegments,
					MaxParts:      DefaultMaxSegments,
					MeasuresParts: true,
				},
			},
			PhoneIdentities: true,
		},
	}
}

// Decode reads and validates an account's `twilio:` block; the account's
// own max_parts is refused, max_segments being SMS's cap.
func (Driver) Decode(acct channels.AccountConfig, decode func(any) error) (any, error) {
	var s Settings
	if err := decode(&s); err != nil {
		return nil, err
	}
	if acct.MaxParts != 0 {
		return nil, errors.New("max_parts does not apply to an sms account: its twilio block's max_segments caps a reply")
	}
	return s, nil
}

func settingsOf(acct channels.AccountConfig) (Settings, error) {
	s, ok := acct.Settings.(Settings)
	if !ok {
		return Settings{}, fmt.Errorf("twilio: account %s has settings of type %T, want twilio.Settings", acct.Slug, acct.Settings)
	}
	return s, nil
}

// Open opens an account: its webhook is /webhooks/twilio/<slug>, which is
// also the status callback of every message it sends through the Messages
// API at api_base_url.
func (Driver) Open(acct channels.AccountConfig, deps channels.Deps) (channels.Account, error) {
	s, err := settingsOf(acct)
	if err != nil {
		return channels.Account{}, err
	}
	return channels.Account{
		ExternalID: s.Number,
		Endpoint:   acct.Slug,
		MaxParts:   s.MaxSegments,
		Sender: &Client{BaseURL: acct.APIBaseURL, AccountSID: s.AccountSID, AuthToken: s.AuthToken, From: s.Number,
			StatusCallback: channels.WebhookURL(deps.PublicURL, DriverName, acct.Slug), HTTP: deps.HTTP},
	}, nil
}

// Webhook builds an account's endpoint. Twilio signs the URL it calls, so
// the endpoint needs the server's public URL.
func (Driver) Webhook(endpoint string, accounts []channels.AccountConfig) (channels.Webhook, error) {
	if len(accounts) != 1 {
		return nil, fmt.Errorf("twilio: webhook %s serves %d accounts, want 1", endpoint, len(accounts))
	}
	acct := accounts[0]
	s, err := settingsOf(acct)
	if err != nil {
		return nil, err
	}
	if acct.WebhookURL == "" {
		return nil, errors.New("twilio: the server has no public URL (INBOX_PUBLIC_URL) to check Twilio's signatures against")
	}
	return &Webhook{Account: Account{Slug: acct.Slug, AccountSID: s.AccountSID, Number: s.Number},
		AuthToken: s.AuthToken, URL: acct.WebhookURL}, nil
}
