package meta

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Driver is Meta's channel driver: facebook, instagram and whatsapp.
type Driver struct{}

var _ channels.WebhookDriver = Driver{}

// Settings is a Meta channel account's block (`meta:` in the
// configuration). Every account of one Meta app names the same app, app
// secret and verify token; each names its own Page, Instagram account or
// WhatsApp phone number.
type Settings struct {
	// App is the slug of the Meta app: its webhook is /webhooks/meta/<app>.
	App         string `yaml:"app" validate:"required,slug"`
	AppSecret   string `yaml:"app_secret" validate:"required"`
	VerifyToken string `yaml:"verify_token" validate:"required"`
	AccessToken string `yaml:"access_token" validate:"required"`
	// Exactly one of these, by the account's channel.
	PageID        string `yaml:"page_id" validate:"omitempty,numeric"`
	InstagramID   string `yaml:"instagram_id" validate:"omitempty,numeric"`
	PhoneNumberID string `yaml:"phone_number_id" validate:"omitempty,numeric"`
	// GraphVersion is the Graph API version called (DefaultVersion when
	// empty).
	GraphVersion string `yaml:"graph_version" validate:"omitempty,startswith=v"`
	// Templates are the WhatsApp number's approved message templates, as
	// Meta approved them: they go out when the 24 hours for free text have
	// passed.
	Templates []TemplateSettings `yaml:"templates" validate:"omitempty,max=100,dive"`
}

// TemplateSettings is one approved WhatsApp template: its name and
// language in Meta's WhatsApp Manager, and its body text with the
// placeholders {{1}} … {{n}} as approved.
type TemplateSettings struct {
	Name     string `yaml:"name" validate:"required,max=512"`
	Language string `yaml:"language" validate:"required,max=15"`
	Body     string `yaml:"body" validate:"required,max=1024"`
}

// Name is the driver's name, "meta".
func (Driver) Name() string { return "meta" }

// Channels says what each Meta network carries. Private messages go in
// numbered parts of the network's limit (Messenger 2,000 characters,
// Instagram 1,000, WhatsApp 4,096); a public reply to a comment is one
// comment. Messenger and Instagram take a human adviser's reply for 7
// days after the resident's last message (HUMAN_AGENT); WhatsApp free text
// for 24 hours.
func (Driver) Channels() map[string]channels.Capabilities {
	private := func(limit int) channels.TextRule {
		return channels.TextRule{Unit: "characters", Limit: limit, Measure: utf8.RuneCountInString,
			Split: func(text string) []string { return channels.SplitNumbered(text, limit) }, MaxParts: 5}
	}
	comment := func(limit int) channels.TextRule {
		return channels.TextRule{Unit: "characters", Limit: limit, Measure: utf8.RuneCountInString}
	}
	return map[string]channels.Capabilities{
		Facebook: {
			Text:                 map[channels.Visibility]channels.TextRule{channels.Private: private(limits[Facebook]), channels.Public: comment(8000)},
			ReplyWindow:          map[channels.Visibility]time.Duration{channels.Private: 7 * 24 * time.Hour},
			PrivateReplyToPublic: 7 * 24 * time.Hour,
		},
		Instagram: {
			Text:                 map[channels.Visibility]channels.TextRule{channels.Private: private(limits[Instagram]), channels.Public: comment(2200)},
			ReplyWindow:          map[channels.Visibility]time.Duration{channels.Private: 7 * 24 * time.Hour},
			PrivateReplyToPublic: 7 * 24 * time.Hour,
		},
		WhatsApp: {
			Text:            map[channels.Visibility]channels.TextRule{channels.Private: private(limits[WhatsApp])},
			ReplyWindow:     map[channels.Visibility]time.Duration{channels.Private: 24 * time.Hour},
			PhoneIdentities: true, // wa_id: the resident's number, in digits
		},
	}
}

// Decode reads an account's `meta:` block and checks it names the id its
// channel needs, and only that one.
func (Driver) Decode(acct channels.AccountConfig, decode func(any) error) (any, error) {
	var s Settings
	if err := decode(&s); err != nil {
		return nil, err
	}
	fields := []struct{ channel, field, id string }{
		{Facebook, "page_id", s.PageID}, {Instagram, "instagram_id", s.InstagramID}, {WhatsApp, "phone_number_id", s.PhoneNumberID},
	}
	for _, f := range fields {
		if f.channel != acct.Channel && f.id != "" {
			return nil, &channels.SettingError{Field: f.field, Reason: "is for " + f.channel + " accounts, not " + acct.Channel}
		}
	}
	for _, f := range fields {
		if f.channel == acct.Channel && f.id == "" {
			return nil, &channels.SettingError{Field: f.field, Reason: "is required for a " + f.channel + " account"}
		}
	}
	if len(s.Templates) > 0 && acct.Channel != WhatsApp {
		return nil, &channels.SettingError{Field: "templates", Reason: "are for whatsapp accounts, not " + acct.Channel}
	}
	seen := map[string]bool{}
	for i, t := range s.Templates {
		if seen[t.Name] {
			return nil, &channels.SettingError{Field: fmt.Sprintf("templates[%d].name", i), Reason: t.Name + " is configured twice"}
		}
		seen[t.Name] = true
		if _, err := s.template(i).Parameters(); err != nil {
			return nil, &channels.SettingError{Field: fmt.Sprintf("templates[%d].body", i), Reason: err.Error()}
		}
	}
	return s, nil
}

func settingsOf(acct channels.AccountConfig) (Settings, error) {
	s, ok := acct.Settings.(Settings)
	if !ok {
		return Settings{}, fmt.Errorf("meta: account %s has settings of type %T, want meta.Settings", acct.Slug, acct.Settings)
	}
	return s, nil
}

func (s Settings) template(i int) channels.Template {
	t := s.Templates[i]
	return channels.Template{Name: t.Name, Language: t.Language, Body: t.Body}
}

// ownID is the account's own id on its network.
func (s Settings) ownID(channel string) string {
	switch channel {
	case Facebook:
		return s.PageID
	case Instagram:
		return s.InstagramID
	}
	return s.PhoneNumberID
}

// Open opens an account: its deliveries come to its app's endpoint, and
// it sends through the Graph API at api_base_url.
func (Driver) Open(acct channels.AccountConfig, deps channels.Deps) (channels.Account, error) {
	s, err := settingsOf(acct)
	if err != nil {
		return channels.Account{}, err
	}
	id := s.ownID(acct.Channel)
	templates := make([]channels.Template, len(s.Templates))
	for i := range s.Templates {
		templates[i] = s.template(i)
	}
	return channels.Account{
		ExternalID: id,
		Endpoint:   s.App,
		Templates:  templates,
		Sender: &Client{BaseURL: acct.APIBaseURL, Version: s.GraphVersion, Channel: acct.Channel, AccountID: id,
			Token: s.AccessToken, HTTP: deps.HTTP},
	}, nil
}

// Webhook builds one Meta app's endpoint for every account that names it.
// They must agree on the app secret and verify token, and no two may name
// the same Page, Instagram account or number.
func (Driver) Webhook(endpoint string, accounts []channels.AccountConfig) (channels.Webhook, error) {
	w := &Webhook{Pages: map[string]string{}, Instagram: map[string]string{}, Numbers: map[string]string{}}
	for i, acct := range accounts {
		s, err := settingsOf(acct)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			w.AppSecret, w.VerifyToken = s.AppSecret, s.VerifyToken
		} else if s.AppSecret != w.AppSecret || s.VerifyToken != w.VerifyToken {
			return nil, fmt.Errorf("meta: app %s: account %s has another app_secret or verify_token than %s", endpoint, acct.Slug, accounts[0].Slug)
		}
		routes := map[string]map[string]string{Facebook: w.Pages, Instagram: w.Instagram, WhatsApp: w.Numbers}[acct.Channel]
		if routes == nil {
			return nil, fmt.Errorf("meta: account %s is on channel %q, not facebook, instagram or whatsapp", acct.Slug, acct.Channel)
		}
		id := s.ownID(acct.Channel)
		if other, dup := routes[id]; dup {
			return nil, fmt.Errorf("meta: accounts %s and %s both name %s %s", other, acct.Slug, acct.Channel, id)
		}
		routes[id] = acct.Slug
	}
	return w, nil
}
