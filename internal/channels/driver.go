package channels

import (
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Driver is one network's implementation: a package under
// internal/channels, registered with one line in cmd/inbox. It decodes its
// own accounts' settings, states what its channels can carry, and opens
// accounts that send and receive. Nothing outside the driver knows the
// network by name.
//
// A driver with webhooks also implements WebhookDriver.
type Driver interface {
	// Name names the driver: it is the key of an account's settings block
	// in the configuration file and the first segment of the driver's
	// webhook paths (/webhooks/<name>/<endpoint>).
	Name() string
	// Channels are the channels the driver serves (x; facebook, instagram
	// and whatsapp), each with what it can carry.
	Channels() map[string]Capabilities
	// Decode decodes and validates one account's settings block. decode
	// reads the block into the value v points to and checks its validate
	// tags, with errors naming the field as written in the file; Decode
	// returns the settings Open will get in AccountConfig.Settings. Errors
	// of its own are *SettingError, so they can name the field too.
	Decode(acct AccountConfig, decode func(v any) error) (settings any, err error)
	// Open opens one configured account.
	Open(acct AccountConfig, deps Deps) (Account, error)
}

// WebhookDriver is a driver whose network pushes deliveries to us.
type WebhookDriver interface {
	Driver
	// Webhook builds the endpoint serving the accounts whose Open named
	// endpoint (one account for X, every page of one Meta app for Meta).
	Webhook(endpoint string, accounts []AccountConfig) (Webhook, error)
}

// WithoutAPIBaseURL is implemented by drivers whose accounts need no
// api_base_url, because their block names the servers they reach (email:
// IMAP and SMTP).
type WithoutAPIBaseURL interface {
	NoAPIBaseURL()
}

// AccountConfig is what the configuration says of one channel account,
// whatever its network.
type AccountConfig struct {
	Slug    string
	Channel string
	// APIBaseURL is where the network's API is reached (a fake in tests
	// and demos); empty for a driver that is a WithoutAPIBaseURL.
	APIBaseURL string
	// MaxParts caps how many parts one reply may be split into; 0 leaves
	// the channel's default (TextRule.MaxParts).
	MaxParts int
	// Settings are the driver's own settings, as its Decode returned them.
	Settings any
	// WebhookURL is the public URL of the webhook endpoint serving the
	// account (Deps.PublicURL and /webhooks/<driver>/<endpoint>), set on
	// the accounts handed to WebhookDriver.Webhook, for networks that sign
	// the URL they call (Twilio); empty when the server has no public URL.
	WebhookURL string
}

// Deps are what a driver may use to open an account.
type Deps struct {
	// HTTP sends requests to the network's API; its timeout bounds a send.
	HTTP *http.Client
	Log  *slog.Logger
	// PublicURL is the base URL networks reach the server's webhooks at
	// (INBOX_PUBLIC_URL), for drivers that give the network a callback
	// address with each send (Twilio's status callbacks); see WebhookURL.
	PublicURL string
}

// WebhookURL is the public URL of a driver's webhook endpoint under the
// server's public base URL; empty when publicURL is.
func WebhookURL(publicURL, driver, endpoint string) string {
	if publicURL == "" {
		return ""
	}
	return strings.TrimRight(publicURL, "/") + "/webhooks/" + driver + "/" + endpoint
}

// Account is one channel account as its driver opened it.
type Account struct {
	// ExternalID is the account's own id on the network (its user, page or
	// phone number id), written to the database; empty when it has none.
	ExternalID string
	// Endpoint is the slug of the webhook endpoint that receives the
	// account's deliveries; empty when the account has no webhook.
	Endpoint string
	// Sender sends the account's replies.
	Sender Sender
	// Poller fetches the account's messages, for networks without
	// webhooks; nil otherwise.
	Poller Poller
	// PollEvery is the pause between two polls (a minute when zero).
	PollEvery time.Duration
	// Templates are the messages the network approved for the account,
	// which go out when its window for free text has closed (WhatsApp).
	Templates []Template
	// MaxParts caps the parts of one reply by the driver's own settings
	// (an SMS account's max_segments) when the account's max_parts does
	// not; zero leaves the channel's default.
	MaxParts int
}

// Capabilities are what one channel can carry.
type Capabilities struct {
	// Text says, for each visibility the channel supports, how a reply's
	// text is measured and split. A visibility missing here cannot be
	// used to reply on the channel.
	Text map[Visibility]TextRule
	// ReplyWindow is, per visibility, how long after the resident's last
	// message the network lets a reply go out; missing or zero means no
	// limit.
	ReplyWindow map[Visibility]time.Duration
	// PrivateReplyToPublic is how long after a resident's public post the
	// network lets one private message answer it, when the resident has not
	// written privately (Meta's private replies to comments); zero when it
	// has no such reply. That message is one part.
	PrivateReplyToPublic time.Duration
	// PhoneIdentities says the channel's identities are phone numbers, so
	// the same number on another phone channel (SMS, WhatsApp) is
	// suggested as the same person, never merged.
	PhoneIdentities bool
}

// TextRule is how a network measures the text of one kind of reply.
type TextRule struct {
	// Unit names what is counted, for advisers: "weighted characters",
	// "characters", "segments".
	Unit string
	// Limit is the most one part may measure.
	Limit int
	// Measure measures a text in Unit.
	Measure func(text string) int
	// Split cuts a text into the parts the sender posts, each within
	// Limit; nil when the network has no parts, so a text over Limit
	// cannot go out.
	Split func(text string) []string
	// MaxParts is the channel's default cap on the parts of one reply; an
	// account's max_parts overrides it. Zero means no cap.
	MaxParts int
	// MeasuresParts says the text goes out as one message that the network
	// itself cuts into parts (SMS segments), which Measure counts: Split is
	// nil, and MaxParts, or the account's cap, caps what Measure counts,
	// Limit being the most any account may allow.
	MeasuresParts bool
}

// SettingError is a driver's complaint about one field of its settings
// block; the configuration reports it with the field's whole path.
type SettingError struct {
	// Field is the key within the block ("user_id").
	Field  string
	Reason string
}

func (e *SettingError) Error() string { return e.Field + ": " + e.Reason }
