package email

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Driver is the email channel's driver: register it with
// channels.NewRegistry.
type Driver struct{}

var _ channels.Driver = Driver{}

// Settings is an email account's block (`email:` in the configuration).
type Settings struct {
	// Address is the council's address residents write to; replies come
	// from it, and mail from it is skipped.
	Address string `yaml:"address" validate:"required,email"`
	// IMAPURL is the mailbox's server: imaps://host:993, imap://host:143
	// (STARTTLS, required) or imap+plain://host:143 (a local test server
	// only: the password goes in plain text).
	IMAPURL string `yaml:"imap_url" validate:"required"`
	// SMTPURL is the server replies go out through: smtps://host:465,
	// smtp://host:587 (STARTTLS, required) or smtp+plain://host:587 (a
	// local test server only).
	SMTPURL  string `yaml:"smtp_url" validate:"required"`
	Username string `yaml:"username" validate:"required"`
	Password string `yaml:"password" validate:"required"`
	// Mailbox is the mailbox read; INBOX when empty.
	Mailbox string `yaml:"mailbox" validate:"omitempty,max=200"`
	// PollEvery is the pause between two polls; DefaultPollEvery when
	// zero.
	PollEvery time.Duration `yaml:"poll_every" validate:"min=0"`
	// IdleFor is the longest a poll waits in IDLE for new mail where the
	// server offers IDLE; DefaultIdleFor when zero, never when negative.
	IdleFor time.Duration `yaml:"idle_for"`
	// TrustedAuthservID is the authserv-id the council's mail server
	// writes in Authentication-Results (RFC 8601): when set, mail that
	// server found forged (DMARC fail, or SPF and DKIM failing with no
	// pass) makes no case. Without it, the mail server must reject
	// spoofed mail itself.
	TrustedAuthservID string `yaml:"trusted_authserv_id" validate:"omitempty,max=255"`

	imap, smtp Server
}

// Name is the driver's name, "email".
func (Driver) Name() string { return Channel }

// Channels says what email carries: private replies of up to
// MaxTextLength characters, in one mail. No reply windows.
func (Driver) Channels() map[string]channels.Capabilities {
	return map[string]channels.Capabilities{
		Channel: {Text: map[channels.Visibility]channels.TextRule{
			channels.Private: {Unit: "characters", Limit: MaxTextLength, Measure: utf8.RuneCountInString},
		}},
	}
}

// NoAPIBaseURL says email accounts need no api_base_url: they name their
// IMAP and SMTP servers in their own block.
func (Driver) NoAPIBaseURL() {}

// Decode reads an account's `email:` block and checks the servers' URLs.
func (Driver) Decode(_ channels.AccountConfig, decode func(any) error) (any, error) {
	var s Settings
	if err := decode(&s); err != nil {
		return nil, err
	}
	var err error
	if s.imap, err = ParseIMAPURL(s.IMAPURL); err != nil {
		return nil, &channels.SettingError{Field: "imap_url", Reason: err.Error()}
	}
	if s.smtp, err = ParseSMTPURL(s.SMTPURL); err != nil {
		return nil, &channels.SettingError{Field: "smtp_url", Reason: err.Error()}
	}
	addr, err := mail.ParseAddress(s.Address)
	if err != nil {
		return nil, &channels.SettingError{Field: "address", Reason: "is not an email address"}
	}
	s.Address = addr.Address
	if strings.TrimSpace(s.Mailbox) == "" {
		s.Mailbox = "INBOX"
	}
	return s, nil
}

// Open opens an email account: a poller of its mailbox and a sender
// through its SMTP server. Nothing is asked of either server until the
// first poll or send.
func (Driver) Open(acct channels.AccountConfig, deps channels.Deps) (channels.Account, error) {
	s, ok := acct.Settings.(Settings)
	if !ok {
		return channels.Account{}, fmt.Errorf("email: account %s has settings of type %T, want email.Settings", acct.Slug, acct.Settings)
	}
	if s.imap.Addr == "" || s.smtp.Addr == "" {
		var err error
		if s.imap, err = ParseIMAPURL(s.IMAPURL); err != nil {
			return channels.Account{}, fmt.Errorf("email: account %s: imap_url %w", acct.Slug, err)
		}
		if s.smtp, err = ParseSMTPURL(s.SMTPURL); err != nil {
			return channels.Account{}, fmt.Errorf("email: account %s: smtp_url %w", acct.Slug, err)
		}
	}
	if s.Mailbox == "" {
		s.Mailbox = "INBOX"
	}
	mb := &Mailbox{Server: s.imap, Username: s.Username, Password: s.Password, Name: s.Mailbox}
	every := s.PollEvery
	if every <= 0 {
		every = DefaultPollEvery
	}
	idle := s.IdleFor
	switch {
	case idle == 0:
		idle = DefaultIdleFor
	case idle < 0:
		idle = 0
	}
	return channels.Account{
		ExternalID: strings.ToLower(s.Address),
		Sender:     &Sender{Server: s.smtp, Username: s.Username, Password: s.Password, From: s.Address, Mailbox: mb},
		Poller:     &Poller{Mailbox: mb, Account: Account{Slug: acct.Slug, Address: s.Address, TrustedAuthservID: strings.TrimSpace(s.TrustedAuthservID)}, IdleFor: idle, Log: deps.Log},
		PollEvery:  every,
	}, nil
}
