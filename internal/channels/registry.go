package channels

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"
)

// Registry is the set of channel drivers a binary is built with. cmd/inbox
// makes it with one line per driver; the configuration checks channel
// accounts against it, and Open turns the configured accounts into what
// the server wires: webhook endpoints, pollers and senders.
type Registry struct {
	drivers   []Driver
	byName    map[string]Driver
	byChannel map[string]Driver
}

// NewRegistry registers drivers. Two drivers with one name, or serving
// one channel, are a programming error reported here.
func NewRegistry(drivers ...Driver) (*Registry, error) {
	r := &Registry{byName: map[string]Driver{}, byChannel: map[string]Driver{}}
	for _, d := range drivers {
		name := d.Name()
		if name == "" {
			return nil, errors.New("channel driver with an empty name")
		}
		if _, dup := r.byName[name]; dup {
			return nil, fmt.Errorf("channel driver %q is registered twice", name)
		}
		r.byName[name] = d
		r.drivers = append(r.drivers, d)
		chans := d.Channels()
		if len(chans) == 0 {
			return nil, fmt.Errorf("channel driver %q serves no channel", name)
		}
		for ch, caps := range chans {
			if other, dup := r.byChannel[ch]; dup {
				return nil, fmt.Errorf("channel %q is served by both %q and %q", ch, other.Name(), name)
			}
			if len(caps.Text) == 0 {
				return nil, fmt.Errorf("channel %q of driver %q supports no visibility", ch, name)
			}
			for vis, rule := range caps.Text {
				if !vis.Valid() || rule.Limit <= 0 || rule.Unit == "" {
					return nil, fmt.Errorf("channel %q of driver %q: %s replies need a unit and a positive limit", ch, name, vis)
				}
				if rule.MeasuresParts && rule.Split != nil {
					return nil, fmt.Errorf("channel %q of driver %q: %s replies measure the network's own parts, so they cannot be split", ch, name, vis)
				}
			}
			r.byChannel[ch] = d
		}
	}
	return r, nil
}

// Channels lists the channels the registered drivers serve, sorted.
func (r *Registry) Channels() []string {
	return slices.Sorted(maps.Keys(r.byChannel))
}

// DriverName names the driver serving channel, which is also the key of
// its accounts' settings block.
func (r *Registry) DriverName(channel string) (string, bool) {
	d, ok := r.byChannel[channel]
	if !ok {
		return "", false
	}
	return d.Name(), true
}

// Capabilities says what channel can carry.
func (r *Registry) Capabilities(channel string) (Capabilities, bool) {
	d, ok := r.byChannel[channel]
	if !ok {
		return Capabilities{}, false
	}
	return d.Channels()[channel], true
}

// NeedsAPIBaseURL says whether the accounts of channel need an
// api_base_url (every driver's but a WithoutAPIBaseURL's).
func (r *Registry) NeedsAPIBaseURL(channel string) bool {
	_, without := r.byChannel[channel].(WithoutAPIBaseURL)
	return !without
}

// Decode has the driver of acct's channel decode and validate its
// settings block (see Driver.Decode).
func (r *Registry) Decode(acct AccountConfig, decode func(v any) error) (any, error) {
	d, ok := r.byChannel[acct.Channel]
	if !ok {
		return nil, fmt.Errorf("channel %q has no driver", acct.Channel)
	}
	return d.Decode(acct, decode)
}

// Endpoint is one webhook endpoint, served at /webhooks/<Driver>/<Slug>.
type Endpoint struct {
	Driver  string
	Slug    string
	Webhook Webhook
}

// PolledAccount is an account whose messages are fetched by polling.
type PolledAccount struct {
	// Driver names the account's driver, for the metrics.
	Driver  string
	Channel string
	Account string
	Poller  Poller
	// Every is the pause between two polls.
	Every time.Duration
}

// defaultPollEvery is the pause between polls when a driver names none.
const defaultPollEvery = time.Minute

// Accounts are the configured channel accounts, opened by their drivers.
type Accounts struct {
	endpoints []Endpoint
	polled    []PolledAccount
	senders   map[string]Sender
	bySlug    map[string]opened
}

type opened struct {
	cfg     AccountConfig
	caps    Capabilities
	account Account
}

// Open opens every account with its channel's driver and builds the
// webhook endpoints, one per endpoint slug the accounts name.
func (r *Registry) Open(accounts []AccountConfig, deps Deps) (*Accounts, error) {
	a := &Accounts{senders: map[string]Sender{}, bySlug: map[string]opened{}}
	type endpointKey struct{ driver, slug string }
	var order []endpointKey
	served := map[endpointKey][]AccountConfig{}
	for _, cfg := range accounts {
		d, ok := r.byChannel[cfg.Channel]
		if !ok {
			return nil, fmt.Errorf("channel account %s: channel %q has no driver", cfg.Slug, cfg.Channel)
		}
		if _, dup := a.bySlug[cfg.Slug]; dup {
			return nil, fmt.Errorf("channel account %s is configured twice", cfg.Slug)
		}
		acct, err := d.Open(cfg, deps)
		if err != nil {
			return nil, fmt.Errorf("channel account %s: %w", cfg.Slug, err)
		}
		names := map[string]bool{}
		for _, t := range acct.Templates {
			if _, err := t.Parameters(); err != nil {
				return nil, fmt.Errorf("channel account %s: template %s: %w", cfg.Slug, t.Name, err)
			}
			if names[t.Name] {
				return nil, fmt.Errorf("channel account %s: template %s is configured twice", cfg.Slug, t.Name)
			}
			names[t.Name] = true
		}
		capped := cfg
		if capped.MaxParts <= 0 {
			capped.MaxParts = acct.MaxParts
		}
		a.bySlug[cfg.Slug] = opened{cfg: capped, caps: d.Channels()[cfg.Channel], account: acct}
		if acct.Sender != nil {
			a.senders[cfg.Slug] = acct.Sender
		}
		if acct.Poller != nil {
			every := acct.PollEvery
			if every <= 0 {
				every = defaultPollEvery
			}
			a.polled = append(a.polled, PolledAccount{Driver: d.Name(), Channel: cfg.Channel, Account: cfg.Slug, Poller: acct.Poller, Every: every})
		}
		if acct.Endpoint != "" {
			k := endpointKey{d.Name(), acct.Endpoint}
			if _, seen := served[k]; !seen {
				order = append(order, k)
			}
			hooked := cfg
			hooked.WebhookURL = WebhookURL(deps.PublicURL, k.driver, k.slug)
			served[k] = append(served[k], hooked)
		}
	}
	for _, k := range order {
		wd, ok := r.byName[k.driver].(WebhookDriver)
		if !ok {
			return nil, fmt.Errorf("channel driver %q names webhook endpoint %q but has no webhooks", k.driver, k.slug)
		}
		hook, err := wd.Webhook(k.slug, served[k])
		if err != nil {
			return nil, fmt.Errorf("webhook %s/%s: %w", k.driver, k.slug, err)
		}
		a.endpoints = append(a.endpoints, Endpoint{Driver: k.driver, Slug: k.slug, Webhook: hook})
	}
	return a, nil
}

// Endpoints are the webhook endpoints, in the order of the configuration.
func (a *Accounts) Endpoints() []Endpoint { return a.endpoints }

// Pollers are the accounts fetched by polling.
func (a *Accounts) Pollers() []PolledAccount { return a.polled }

// Senders maps each account's slug to its sender.
func (a *Accounts) Senders() map[string]Sender { return a.senders }

// ExternalID is the account's own id on its network, as its driver says.
func (a *Accounts) ExternalID(slug string) string { return a.bySlug[slug].account.ExternalID }

// ErrUnknownAccount is a reply on a channel account that is not in the
// configuration.
var ErrUnknownAccount = errors.New("the channel account is not configured")

// ErrVisibilityNotSupported is a reply of a kind the channel does not
// have (a private reply where the network has no direct messages).
var ErrVisibilityNotSupported = errors.New("the channel does not support replies of this visibility")

// ErrTooLong matches every *TooLongError.
var ErrTooLong = errors.New("the reply is too long for the channel")

// TooLongError is a reply that cannot go out, even in parts. Its message
// names the measure and the limit.
type TooLongError struct {
	// Unit is what the channel counts; Limit the most one part may hold;
	// Length what the text measures.
	Unit   string
	Limit  int
	Length int
	// Parts is how many parts the text would take, over MaxParts; both
	// are zero when the network has no parts.
	Parts    int
	MaxParts int
	// MeasuresParts is set when the network cuts the one message into
	// parts itself (SMS): Length counts them in Unit, and Limit (equal to
	// MaxParts) is the account's cap.
	MeasuresParts bool
}

func (e *TooLongError) Error() string {
	if e.MeasuresParts {
		return fmt.Sprintf("the text takes %d %s; the limit is %d", e.Length, e.Unit, e.Limit)
	}
	if e.MaxParts == 0 {
		return fmt.Sprintf("the text is %d %s; the limit is %d %s", e.Length, e.Unit, e.Limit, e.Unit)
	}
	return fmt.Sprintf("the text takes %d parts of at most %d %s; the limit is %d parts", e.Parts, e.Limit, e.Unit, e.MaxParts)
}

// Is makes errors.Is(err, ErrTooLong) hold.
func (e *TooLongError) Is(target error) bool { return target == ErrTooLong }

// CheckReply says whether a reply of visibility vis with text can go out
// on the account: nil when it fits, in one part or within the account's
// cap on parts; ErrVisibilityNotSupported, ErrUnknownAccount or a
// *TooLongError otherwise.
func (a *Accounts) CheckReply(account string, vis Visibility, text string) error {
	o, ok := a.bySlug[account]
	if !ok {
		return ErrUnknownAccount
	}
	rule, ok := o.caps.Text[vis]
	if !ok {
		return ErrVisibilityNotSupported
	}
	return rule.Check(text, o.cfg.MaxParts)
}

// Check says whether text can go out under the rule, with maxParts (or,
// when it is zero, the rule's own MaxParts) capping the parts.
func (r TextRule) Check(text string, maxParts int) error {
	n := r.measure(text)
	if r.MeasuresParts {
		if limit := r.partsCap(maxParts); n > limit {
			return &TooLongError{Unit: r.Unit, Limit: limit, Length: n, Parts: n, MaxParts: limit, MeasuresParts: true}
		}
		return nil
	}
	if n <= r.Limit {
		return nil
	}
	if r.Split == nil {
		return &TooLongError{Unit: r.Unit, Limit: r.Limit, Length: n}
	}
	if maxParts <= 0 {
		maxParts = r.MaxParts
	}
	if maxParts <= 0 {
		return nil
	}
	if parts := len(r.Split(text)); parts > maxParts {
		return &TooLongError{Unit: r.Unit, Limit: r.Limit, Length: n, Parts: parts, MaxParts: maxParts}
	}
	return nil
}

// partsCap is the most parts a rule that MeasuresParts lets one text
// take: maxParts, or when it is zero the rule's MaxParts, within Limit.
func (r TextRule) partsCap(maxParts int) int {
	if maxParts <= 0 {
		maxParts = r.MaxParts
	}
	if maxParts <= 0 || maxParts > r.Limit {
		return r.Limit
	}
	return maxParts
}

func (r TextRule) measure(text string) int {
	if r.Measure == nil {
		return utf8.RuneCountInString(text)
	}
	return r.Measure(text)
}

// Measurement is how a reply's text measures on an account, as the
// composer shows it while the adviser writes.
type Measurement struct {
	// Unit is what the channel counts; Limit the most one part may hold;
	// Length what the text measures.
	Unit   string `json:"unit"`
	Limit  int    `json:"limit"`
	Length int    `json:"length"`
	// Parts is how many parts the text goes out in (1 when it fits, 0 when
	// empty); MaxParts caps them (0: no parts, or no cap). On a channel
	// whose network cuts the one message itself (SMS), Length counts its
	// parts (segments), Limit is the account's cap, and Parts is 1.
	Parts    int  `json:"parts"`
	MaxParts int  `json:"max_parts"`
	Splits   bool `json:"splits"`
	// Fits says whether the text can go out (CheckReply accepts it).
	Fits bool `json:"fits"`
}

// MeasureReply measures a reply of visibility vis on the account by the
// rule CheckReply applies.
func (a *Accounts) MeasureReply(account string, vis Visibility, text string) (Measurement, error) {
	o, ok := a.bySlug[account]
	if !ok {
		return Measurement{}, ErrUnknownAccount
	}
	rule, ok := o.caps.Text[vis]
	if !ok {
		return Measurement{}, ErrVisibilityNotSupported
	}
	m := Measurement{Unit: rule.Unit, Limit: rule.Limit, Length: rule.measure(text), Splits: rule.Split != nil}
	if rule.MeasuresParts {
		// One message, which the network cuts up: the account's cap is the
		// limit the adviser writes to.
		m.Limit = rule.partsCap(o.cfg.MaxParts)
		if text != "" {
			m.Parts = 1
		}
		m.Fits = m.Length <= m.Limit
		return m, nil
	}
	m.MaxParts = o.cfg.MaxParts
	if m.MaxParts <= 0 {
		m.MaxParts = rule.MaxParts
	}
	switch {
	case text == "":
	case m.Length <= rule.Limit:
		m.Parts = 1
	case rule.Split != nil:
		m.Parts = len(rule.Split(text))
	}
	m.Fits = rule.Check(text, o.cfg.MaxParts) == nil
	return m, nil
}

// ReplyVisibilities lists the kinds of reply the account can send, public
// first.
func (a *Accounts) ReplyVisibilities(account string) []Visibility {
	o, ok := a.bySlug[account]
	if !ok {
		return nil
	}
	var out []Visibility
	for _, v := range []Visibility{Public, Private} {
		if _, ok := o.caps.Text[v]; ok {
			out = append(out, v)
		}
	}
	return out
}

// Templates are the approved templates of the account, for replies when
// the window for free text has closed.
func (a *Accounts) Templates(account string) []Template {
	return a.bySlug[account].account.Templates
}

// PrivateReplyToPublic is how long after a resident's public post the
// account's network lets one private message answer it; zero when never.
func (a *Accounts) PrivateReplyToPublic(account string) time.Duration {
	return a.bySlug[account].caps.PrivateReplyToPublic
}

// ReplyWindow is how long after the resident's last message the account's
// network takes a reply of visibility vis; zero when it has no window.
func (a *Accounts) ReplyWindow(account string, vis Visibility) time.Duration {
	return a.bySlug[account].caps.ReplyWindow[vis]
}
