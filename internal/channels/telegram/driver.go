package telegram

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels"
)

// DefaultMaxParts caps the messages one reply is split into, unless the
// account's max_parts says otherwise.
const DefaultMaxParts = 10

// Delivery modes.
const (
	ModeWebhook = "webhook"
	ModePolling = "polling"
)

// pollEvery is the pause between two getUpdates calls in polling mode;
// each call itself waits up to PollTimeout for an update.
const pollEvery = time.Second

// Driver is Telegram's channel driver: register it with
// channels.NewRegistry.
type Driver struct{}

var _ channels.WebhookDriver = Driver{}

// Settings is a Telegram bot account's block (`telegram:` in the
// configuration).
type Settings struct {
	// BotID is the bot's numeric user id (the part of its token before
	// the colon): replies to its messages address it.
	BotID string `yaml:"bot_id" validate:"required,numeric"`
	// Username is the bot's @username, with or without the @: group
	// messages mentioning it are the council's.
	Username string `yaml:"username" validate:"required,max=64"`
	// BotToken is the token BotFather gave.
	BotToken string `yaml:"bot_token" validate:"required"`
	// SecretToken is the secret_token given to setWebhook, which Telegram
	// sends back with each delivery; required in webhook mode.
	SecretToken string `yaml:"secret_token"`
	// Mode is webhook (the default) or polling.
	Mode string `yaml:"mode" validate:"omitempty,oneof=webhook polling"`
}

// Name is the driver's name, "telegram".
func (Driver) Name() string { return Channel }

// Channels says what Telegram carries: private and group messages of
// 4,096 characters, longer replies as numbered parts. Bots have no reply
// windows.
func (Driver) Channels() map[string]channels.Capabilities {
	rule := channels.TextRule{
		Unit:     "characters",
		Limit:    MaxMessageLength,
		Measure:  utf8.RuneCountInString,
		Split:    func(text string) []string { return channels.SplitNumbered(text, MaxMessageLength) },
		MaxParts: DefaultMaxParts,
	}
	return map[string]channels.Capabilities{
		Channel: {Text: map[channels.Visibility]channels.TextRule{channels.Public: rule, channels.Private: rule}},
	}
}

// Decode reads an account's `telegram:` block and checks what the
// validate tags cannot: the secret token in webhook mode, and that the
// token belongs to the bot.
func (Driver) Decode(_ channels.AccountConfig, decode func(any) error) (any, error) {
	var s Settings
	if err := decode(&s); err != nil {
		return nil, err
	}
	s.Username = strings.TrimPrefix(s.Username, "@")
	if s.Username == "" {
		return nil, &channels.SettingError{Field: "username", Reason: "is empty"}
	}
	if s.Mode == "" {
		s.Mode = ModeWebhook
	}
	if s.Mode == ModeWebhook {
		if s.SecretToken == "" {
			return nil, &channels.SettingError{Field: "secret_token", Reason: "is required in webhook mode (the secret_token given to setWebhook)"}
		}
		if !validSecret(s.SecretToken) {
			return nil, &channels.SettingError{Field: "secret_token", Reason: "must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -, as Telegram takes"}
		}
	}
	if id, _, ok := strings.Cut(s.BotToken, ":"); ok && id != s.BotID {
		return nil, &channels.SettingError{Field: "bot_token", Reason: "is the token of bot " + id + ", not of bot_id " + s.BotID}
	}
	return s, nil
}

// validSecret says whether s is a secret token setWebhook accepts.
func validSecret(s string) bool {
	if len(s) == 0 || len(s) > 256 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && r != '_' && r != '-' {
			return false
		}
	}
	return true
}

func settingsOf(acct channels.AccountConfig) (Settings, error) {
	s, ok := acct.Settings.(Settings)
	if !ok {
		return Settings{}, fmt.Errorf("telegram: account %s has settings of type %T, want telegram.Settings", acct.Slug, acct.Settings)
	}
	return s, nil
}

func (s Settings) account(slug string) (Account, error) {
	id, err := strconv.ParseInt(s.BotID, 10, 64)
	if err != nil {
		return Account{}, fmt.Errorf("telegram: account %s: bot_id %q is not a number", slug, s.BotID)
	}
	return Account{Slug: slug, BotID: id, Username: strings.TrimPrefix(s.Username, "@")}, nil
}

// Open opens a bot account. In webhook mode its endpoint is named after
// the account (/webhooks/telegram/<slug>); in polling mode it has no
// endpoint and a poller instead. It sends through the Bot API at
// api_base_url.
func (Driver) Open(acct channels.AccountConfig, deps channels.Deps) (channels.Account, error) {
	s, err := settingsOf(acct)
	if err != nil {
		return channels.Account{}, err
	}
	a, err := s.account(acct.Slug)
	if err != nil {
		return channels.Account{}, err
	}
	client := &Client{BaseURL: acct.APIBaseURL, Token: s.BotToken, HTTP: deps.HTTP}
	out := channels.Account{ExternalID: s.BotID, Sender: client}
	if s.Mode == ModePolling {
		out.Poller = &Poller{Client: client, Account: a, Log: deps.Log}
		out.PollEvery = pollEvery
	} else {
		out.Endpoint = acct.Slug
	}
	return out, nil
}

// Webhook builds a bot's endpoint. Each bot has its own, with its own
// secret token.
func (Driver) Webhook(endpoint string, accounts []channels.AccountConfig) (channels.Webhook, error) {
	if len(accounts) != 1 {
		return nil, fmt.Errorf("telegram: webhook %s serves %d accounts, want 1", endpoint, len(accounts))
	}
	s, err := settingsOf(accounts[0])
	if err != nil {
		return nil, err
	}
	a, err := s.account(accounts[0].Slug)
	if err != nil {
		return nil, err
	}
	return &Webhook{Account: a, SecretToken: s.SecretToken}, nil
}
