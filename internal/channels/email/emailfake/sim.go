package emailfake

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
	"github.com/citizeninbox/inbox/internal/channels/email"
	"github.com/citizeninbox/inbox/internal/netsim"
)

// Environment variables read when the flags are not given (the demo
// sets them), and the defaults otherwise.
const (
	UsernameEnv       = "EMAIL_USERNAME"
	PasswordEnv       = "EMAIL_PASSWORD"
	IMAPURLEnv        = "IMAP_URL"
	SMTPURLEnv        = "SMTP_URL"
	DefaultIMAPListen = "127.0.0.1:1143"
	DefaultSMTPListen = "127.0.0.1:1025"
	// ResidentsDomain is where the simulated residents have their mail.
	ResidentsDomain = "residents.example"
)

// Simulation is email for the network simulator: the council's IMAP and
// SMTP servers, and residents whose mail is put in the council's
// mailbox for the inbox to read. Their answers to the council's mail
// answer it (In-Reply-To, References, "Re:"), as mail clients do. The
// fake API on -listen only lists what the council sent
// (/__sim/sent).
type Simulation struct {
	imapListen, smtpListen string
	username, password     string

	mu      sync.Mutex
	srv     *Server
	started error
	byAddr  map[string]netsim.Resident
	last    map[string]thread // resident's address → their conversation so far
}

// thread is the latest mail of one resident's conversation.
type thread struct {
	messageID  string
	subject    string
	references []string
}

var (
	_ netsim.Network = (*Simulation)(nil)
	_ netsim.Polled  = (*Simulation)(nil)
)

// NewSimulation returns email for cmd/netsim.
func NewSimulation() *Simulation {
	return &Simulation{byAddr: map[string]netsim.Resident{}, last: map[string]thread{}}
}

// Name is the email driver's name.
func (*Simulation) Name() string { return email.Channel }

// Title is "Email".
func (*Simulation) Title() string { return "Email" }

// DefaultListen is where the list of what the council sent is served
// (EMAIL_SIM_URL in the demo).
func (*Simulation) DefaultListen() string { return "127.0.0.1:8087" }

// DefaultWebhook is "": the inbox reads the mailbox.
func (*Simulation) DefaultWebhook() string { return "" }

// Flags adds -imap-listen, -smtp-listen, -username and -password.
func (s *Simulation) Flags(fs *flag.FlagSet) {
	fs.StringVar(&s.imapListen, "imap-listen", "", "address of the council's IMAP server (default: the host and port of $"+IMAPURLEnv+", else "+DefaultIMAPListen+")")
	fs.StringVar(&s.smtpListen, "smtp-listen", "", "address of the council's SMTP server (default: the host and port of $"+SMTPURLEnv+", else "+DefaultSMTPListen+")")
	fs.StringVar(&s.username, "username", "", "the mailbox's username (default: $"+UsernameEnv+", else "+Username+")")
	fs.StringVar(&s.password, "password", "", "the mailbox's password (default: $"+PasswordEnv+", else "+Password+")")
}

// Check fills the addresses and credentials from the environment (the
// inbox's own variables) or the demo's defaults.
func (s *Simulation) Check() error {
	s.username = firstOf(s.username, os.Getenv(UsernameEnv), Username)
	s.password = firstOf(s.password, os.Getenv(PasswordEnv), Password)
	if s.imapListen == "" {
		s.imapListen = DefaultIMAPListen
		if u := os.Getenv(IMAPURLEnv); u != "" {
			srv, err := email.ParseIMAPURL(u)
			if err != nil {
				return fmt.Errorf("$%s: %w", IMAPURLEnv, err)
			}
			s.imapListen = srv.Addr
		}
	}
	if s.smtpListen == "" {
		s.smtpListen = DefaultSMTPListen
		if u := os.Getenv(SMTPURLEnv); u != "" {
			srv, err := email.ParseSMTPURL(u)
			if err != nil {
				return fmt.Errorf("$%s: %w", SMTPURLEnv, err)
			}
			s.smtpListen = srv.Addr
		}
	}
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

// Servers are the IMAP and SMTP servers once API has started them.
func (s *Simulation) Servers() *Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// API starts the council's IMAP and SMTP servers and returns the fake
// API listing what the council sent. A server that cannot start is
// reported by Handshake.
func (s *Simulation) API(onSent func(netsim.Sent)) http.Handler {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil && s.started == nil {
		s.srv, s.started = Start(s.imapListen, s.smtpListen, s.username, s.password)
		if s.srv != nil {
			s.srv.OnSent(func(sent Sent) { onSent(s.heard(sent)) })
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /__sim/sent", func(w http.ResponseWriter, _ *http.Request) {
		srv := s.Servers()
		if srv == nil {
			http.Error(w, "the mail servers did not start", http.StatusServiceUnavailable)
			return
		}
		type item struct {
			From, To, MessageID, InReplyTo, Subject, Text string
			References                                    []string
		}
		out := []item{}
		for _, m := range srv.Sent() {
			out = append(out, item{m.From, m.To, m.MessageID, m.InReplyTo, m.Subject, m.Text, m.References})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	return mux
}

// Close stops the servers.
func (s *Simulation) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// heard turns a mail the council sent into the simulator's send, and
// remembers it so the resident's answer answers it.
func (s *Simulation) heard(sent Sent) netsim.Sent {
	addr := strings.ToLower(sent.To)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := netsim.Sent{ID: sent.MessageID, Visibility: channels.Private, Text: sent.Text, Recipient: sent.To}
	if r, ok := s.byAddr[addr]; ok {
		out.Recipient = r.ID
		s.last[addr] = thread{messageID: sent.MessageID, subject: sent.Subject, references: sent.References}
	}
	return out
}

// AddressOf is a resident's mail address.
func AddressOf(r netsim.Resident) string {
	local := strings.ToLower(strings.NewReplacer(" ", ".", "@", "").Replace(r.Handle))
	if local == "" {
		local = "resident-" + r.ID
	}
	return local + "@" + ResidentsDomain
}

// Address leaves a resident's text as it is: mail is addressed by its
// envelope.
func (*Simulation) Address(text string) string { return text }

// Styles: email has no public posts.
func (*Simulation) Styles() []string { return nil }

// Post is never asked for (no Styles); it writes a mail as Message does.
func (s *Simulation) Post(_ string, id string, from netsim.Resident, text, _ string, _ func() string) []byte {
	return s.Message(id, from, text)
}

// Message is the resident's mail to the council: a new conversation, or
// the answer to the council's latest mail to them.
func (s *Simulation) Message(id string, from netsim.Resident, text string) []byte {
	addr := AddressOf(from)
	s.mu.Lock()
	s.byAddr[addr] = from
	prev, answering := s.last[addr]
	m := Mail{From: addr, FromName: from.Name, To: Address, Text: text, MessageID: id + "@" + ResidentsDomain}
	if answering {
		m.Subject = prev.subject
		if !strings.HasPrefix(strings.ToLower(m.Subject), "re:") {
			m.Subject = "Re: " + m.Subject
		}
		m.InReplyTo = prev.messageID
		m.References = append(append([]string(nil), prev.references...), prev.messageID)
	} else {
		m.Subject = subjectOf(text)
	}
	s.last[addr] = thread{messageID: m.MessageID, subject: m.Subject, references: m.References}
	s.mu.Unlock()
	return m.Bytes()
}

// subjectOf makes a subject of a text's first words.
func subjectOf(text string) string {
	words := strings.Fields(text)
	if len(words) > 7 {
		return strings.Join(words[:7], " ") + "…"
	}
	return strings.Join(words, " ")
}

// Sign is never called: nothing is posted.
func (*Simulation) Sign(*http.Request, []byte) {}

// Deliver puts the resident's mail in the council's mailbox.
func (s *Simulation) Deliver(body []byte) error {
	srv := s.Servers()
	if srv == nil {
		return errors.New("the mail servers are not running")
	}
	srv.Append(body, time.Now())
	return nil
}

// Handshake waits until the inbox has logged in to the IMAP server with
// the username and password the servers take, and says where they are.
func (s *Simulation) Handshake(ctx context.Context, _ *http.Client, _ string) (string, error) {
	s.mu.Lock()
	srv, err := s.srv, s.started
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	if srv == nil {
		return "", errors.New("the mail servers are not running")
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for srv.Logins() == 0 {
		if srv.RefusedLogins() > 0 {
			return "", fmt.Errorf("the inbox's IMAP login was refused: its EMAIL_USERNAME and EMAIL_PASSWORD must be -username and -password (or $%s and $%s)", UsernameEnv, PasswordEnv)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the inbox has not logged in to the IMAP server at %s: is its IMAP_URL %s? (%w)", srv.IMAPAddr, srv.IMAPURL(), ctx.Err())
		case <-tick.C:
		}
	}
	return fmt.Sprintf("login check OK: the inbox reads the mailbox at %s as %s; it sends through %s", srv.IMAPURL(), s.username, srv.SMTPURL()), nil
}
