package emailfake

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap"
	imapserver "github.com/emersion/go-imap/server"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/citizeninbox/inbox/internal/channels/email"
)

// Server is the council's IMAP and SMTP servers.
type Server struct {
	// IMAPAddr and SMTPAddr are where the servers listen (host:port).
	IMAPAddr, SMTPAddr string

	mu            sync.Mutex
	username      string
	password      string
	logins        int
	refusedLogins int
	loginFailures int
	loginFailCode string
	polling       map[*imapUser]bool
	overlaps      int
	sent          []Sent
	onSent        []func(Sent)
	failNext      []*smtp.SMTPError

	box      *mailbox
	imapBack *imapBackend
	imap     *imapserver.Server
	smtp     *smtp.Server
	lns      []net.Listener
	wg       sync.WaitGroup
}

// Sent is one mail the council sent through the SMTP server.
type Sent struct {
	// From and To are the envelope's addresses.
	From, To   string
	MessageID  string
	InReplyTo  string
	References []string
	Subject    string
	// ContentType and Encoding are the mail's Content-Type and
	// Content-Transfer-Encoding; Text its decoded text.
	ContentType, Encoding string
	Text                  string
	// Raw is the mail as received.
	Raw []byte
}

// Start starts both servers on imapAddr and smtpAddr ("127.0.0.1:0" for
// any free port), taking username and password.
func Start(imapAddr, smtpAddr, username, password string) (*Server, error) {
	s := &Server{username: username, password: password, polling: map[*imapUser]bool{},
		box: &mailbox{uidValidity: uint32(time.Now().Unix() % 1_000_000_000), uidNext: 1}}
	s.imapBack = &imapBackend{s: s}
	s.imap = imapserver.New(s.imapBack)
	idle := &idleExtension{s: s}
	s.imap.Enable(idle)
	idle.on = true
	s.imap.AllowInsecureAuth = true
	s.imap.ErrorLog = log.New(io.Discard, "", 0)
	s.smtp = smtp.NewServer(smtpBackend{s})
	s.smtp.Domain = "localhost"
	s.smtp.AllowInsecureAuth = true
	s.smtp.ReadTimeout = 30 * time.Second
	s.smtp.WriteTimeout = 30 * time.Second
	s.smtp.MaxMessageBytes = 10 << 20
	s.smtp.ErrorLog = log.New(io.Discard, "", 0)

	il, err := net.Listen("tcp", imapAddr)
	if err != nil {
		return nil, fmt.Errorf("IMAP server: %w", err)
	}
	sl, err := net.Listen("tcp", smtpAddr)
	if err != nil {
		_ = il.Close()
		return nil, fmt.Errorf("SMTP server: %w", err)
	}
	s.lns = []net.Listener{il, sl}
	s.IMAPAddr, s.SMTPAddr = il.Addr().String(), sl.Addr().String()
	s.wg.Add(2)
	go func() { defer s.wg.Done(); _ = s.imap.Serve(il) }()
	go func() { defer s.wg.Done(); _ = s.smtp.Serve(sl) }()
	return s, nil
}

// Close stops both servers. The listeners are closed here as well as by
// the servers: a server closed before its Serve has taken its listener
// does not know it, and would accept on it for ever.
func (s *Server) Close() error {
	err := errors.Join(s.imap.Close(), s.smtp.Close())
	for _, ln := range s.lns {
		_ = ln.Close() // already closed by its server, most times
	}
	s.wg.Wait()
	return err
}

// IMAPURL and SMTPURL are the servers' URLs, without TLS.
func (s *Server) IMAPURL() string { return "imap+plain://" + s.IMAPAddr }
func (s *Server) SMTPURL() string { return "smtp+plain://" + s.SMTPAddr }

// Append puts a message in the mailbox, as delivery does, and tells the
// sessions in IDLE. It returns the message's UID.
func (s *Server) Append(raw []byte, date time.Time, flags ...string) uint32 {
	uid := s.box.add(raw, date)
	if len(flags) > 0 {
		s.box.mu.Lock()
		s.box.msgs[len(s.box.msgs)-1].flags = append([]string(nil), flags...)
		s.box.mu.Unlock()
	}
	return uid
}

// Deliver appends a resident's mail, dated now.
func (s *Server) Deliver(m Mail) (messageID string) {
	raw := m.Bytes()
	s.Append(raw, time.Now())
	return m.MessageID
}

// Renumber gives the mailbox a new UIDVALIDITY and numbers its messages
// again from 1, as a server does when its mailbox is rebuilt.
func (s *Server) Renumber() {
	mb := s.box
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.uidValidity++
	mb.uidNext = 1
	for _, m := range mb.msgs {
		m.uid = mb.uidNext
		mb.uidNext++
	}
}

// UIDValidity is the mailbox's UIDVALIDITY.
func (s *Server) UIDValidity() uint32 {
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	return s.box.uidValidity
}

// Seen counts the messages flagged \Seen.
func (s *Server) Seen() int {
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	n := 0
	for _, m := range s.box.msgs {
		if hasFlag(m.flags, imap.SeenFlag) {
			n++
		}
	}
	return n
}

// FetchedBodies counts the message bodies fetched so far.
func (s *Server) FetchedBodies() int {
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	return s.box.fetchedBodies
}

// Revoke changes the password: logins and SMTP AUTH with the old one are
// refused from now on.
func (s *Server) Revoke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.password += "-revoked"
}

// FailLogins makes the next n IMAP logins with the right password fail
// with NO and the response code code ("UNAVAILABLE", "LIMIT", or "" for
// none), as a busy server answers.
func (s *Server) FailLogins(n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loginFailures, s.loginFailCode = n, code
}

// Reinstate makes the servers take the account's password again, after
// Revoke.
func (s *Server) Reinstate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.password = strings.TrimSuffix(s.password, "-revoked")
}

// Logins and RefusedLogins count IMAP logins taken and refused.
func (s *Server) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// RefusedLogins counts IMAP logins refused.
func (s *Server) RefusedLogins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusedLogins
}

// Overlaps counts polls of new mail ("UID FETCH n:*") started while
// another session's poll was still logged in.
func (s *Server) Overlaps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overlaps
}

func (s *Server) startPoll(u *imapUser) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.polling[u] {
		return
	}
	if len(s.polling) > 0 {
		s.overlaps++
	}
	s.polling[u] = true
}

func (s *Server) endPoll(u *imapUser) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.polling, u)
}

// FailNext makes the SMTP server answer the next n mails' DATA with
// code (421, 451, 550, 554...).
func (s *Server) FailNext(n, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "refused by the test for <%s>"})
	}
}

// Sent is every mail sent so far.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// OnSent calls fn with each mail sent from now on; fn must not block.
func (s *Server) OnSent(fn func(Sent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onSent = append(s.onSent, fn)
}

func (s *Server) record(from, to string, raw []byte) error {
	s.mu.Lock()
	if len(s.failNext) > 0 {
		err := *s.failNext[0]
		s.failNext = s.failNext[1:]
		s.mu.Unlock()
		err.Message = fmt.Sprintf(err.Message, to)
		return &err
	}
	s.mu.Unlock()
	sent := Sent{From: from, To: to, Raw: raw}
	if mr, err := mail.CreateReader(bytes.NewReader(raw)); err == nil {
		h := mr.Header
		sent.MessageID, _ = h.MessageID()
		if ids, _ := h.MsgIDList("In-Reply-To"); len(ids) > 0 {
			sent.InReplyTo = ids[0]
		}
		sent.References, _ = h.MsgIDList("References")
		sent.Subject, _ = h.Subject()
		sent.ContentType = h.Get("Content-Type")
		sent.Encoding = h.Get("Content-Transfer-Encoding")
		if p, err := mr.NextPart(); err == nil {
			b, _ := io.ReadAll(p.Body)
			sent.Text = strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
		}
	}
	s.mu.Lock()
	s.sent = append(s.sent, sent)
	hooks := slices.Clone(s.onSent)
	s.mu.Unlock()
	for _, fn := range hooks {
		fn(sent)
	}
	return nil
}

type smtpBackend struct{ s *Server }

func (b smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &smtpSession{s: b.s}, nil
}

type smtpSession struct {
	s        *Server
	authed   bool
	from, to string
}

var _ smtp.AuthSession = (*smtpSession)(nil)

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		ss.s.mu.Lock()
		ok := username == ss.s.username && password == ss.s.password
		ss.s.mu.Unlock()
		if !ok {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.to != "" {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "one recipient per mail here"}
	}
	ss.to = to
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return ss.s.record(ss.from, ss.to, raw)
}

func (ss *smtpSession) Reset()        { ss.from, ss.to = "", "" }
func (ss *smtpSession) Logout() error { return nil }

// Address is the council's address in the fake and the demo.
const Address = "contact@example-council.gov.uk"

// Demo credentials, the demo script's defaults.
const (
	Username = Address
	Password = "demo-email-password"
)

var _ = email.Channel
