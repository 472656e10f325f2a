package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Sender sends the council's replies over SMTP, as answers to the
// resident's latest mail (or the one the adviser chose), which it looks
// up in the mailbox: its subject, with "Re:", and its Message-ID and
// References make In-Reply-To and References, so the resident's mail
// client threads the reply.
type Sender struct {
	Server   Server
	Username string
	Password string
	// From is the council's address.
	From string
	// Mailbox is where the resident's mail is looked up.
	Mailbox *Mailbox
	// TLS configures TLS; nil verifies the server's certificate for
	// Server.Host.
	TLS *tls.Config
	// Timeout bounds the whole conversation with the server (60 s when
	// zero).
	Timeout time.Duration
}

var _ channels.Sender = (*Sender)(nil)

// Thread is what a reply answers: the resident's mail it follows.
type Thread struct {
	Subject    string
	MessageID  string // "" when the mail had none of its own
	References []string
}

// Send sends out as one mail and returns its Message-ID (without angle
// brackets), which the resident's answer will name in In-Reply-To.
func (s *Sender) Send(ctx context.Context, out channels.Outbound, onPart func(int, string) error) ([]string, error) {
	if len(out.SentParts) > 0 {
		return out.SentParts, nil // sent by an earlier attempt
	}
	if out.Visibility != channels.Private {
		return nil, &channels.SendError{Kind: channels.Permanent, Reason: "email replies are private"}
	}
	to, err := mail.ParseAddress(out.Recipient)
	if err != nil || !strings.Contains(to.Address, "@") {
		return nil, &channels.SendError{Kind: channels.Permanent, Reason: "the resident's address is not an email address"}
	}
	if n := utf8.RuneCountInString(out.Text); n > MaxTextLength {
		return nil, &channels.SendError{Kind: channels.Permanent,
			Reason: fmt.Sprintf("the reply has %d characters; an email reply may have %d", n, MaxTextLength)}
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var th Thread
	if s.Mailbox != nil {
		if th, err = s.Mailbox.Thread(ctx, out.InReplyTo, to.Address); err != nil {
			if errors.Is(err, ErrLoginRefused) {
				return nil, &channels.SendError{Kind: channels.Unauthorised, Reason: err.Error()}
			}
			return nil, &channels.SendError{Kind: channels.Retryable, Reason: "looking up the resident's mail: " + err.Error()}
		}
	}
	id := s.messageID(out)
	msg, err := s.compose(out, to, th, id)
	if err != nil {
		return nil, &channels.SendError{Kind: channels.Permanent, Reason: err.Error()}
	}
	if err := s.deliver(ctx, to.Address, msg); err != nil {
		return nil, withoutAddress(err, to.Address)
	}
	if err := channels.RecordPart(onPart, 0, id); err != nil {
		return []string{id}, err
	}
	return []string{id}, nil
}

// messageID is the reply's Message-ID at the council's domain, the same
// for every attempt at one reply.
func (s *Sender) messageID(out channels.Outbound) string {
	_, domain, _ := strings.Cut(s.From, "@")
	if domain == "" {
		domain = "inbox.invalid"
	}
	sum := sha256.Sum256([]byte(out.Account + "\x00" + strconv.FormatInt(out.MessageID, 10) + "\x00" + out.Text))
	return "reply-" + strconv.FormatInt(out.MessageID, 10) + "." + hex.EncodeToString(sum[:6]) + "@" + domain
}

// Subject is the subject of a reply to subject: "Re: " once, with the
// case reference when the reply or the subject names one.
func Subject(subject, text string) string {
	subject = strings.TrimSpace(subject)
	ref := CaseReference(subject)
	if ref == "" {
		ref = CaseReference(text)
	}
	switch {
	case subject == "":
		subject = "Your message"
	case len(subject) >= 3 && strings.EqualFold(subject[:3], "re:"):
	default:
		subject = "Re: " + subject
	}
	if ref != "" && !strings.Contains(subject, ref) {
		subject += " [" + ref + "]"
	}
	return subject
}

// maxReferences keeps References short: the first id and the latest
// ones, as RFC 5322 suggests for long threads.
const maxReferences = 20

func (s *Sender) compose(out channels.Outbound, to *mail.Address, th Thread, id string) ([]byte, error) {
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Address: s.From}})
	h.SetAddressList("To", []*mail.Address{to})
	h.SetSubject(Subject(th.Subject, out.Text))
	h.SetDate(time.Now())
	h.SetMessageID(id)
	refs := append([]string(nil), th.References...)
	if th.MessageID != "" {
		h.SetMsgIDList("In-Reply-To", []string{th.MessageID})
		refs = append(refs, th.MessageID)
	}
	if len(refs) > maxReferences {
		refs = append(refs[:1], refs[len(refs)-maxReferences+1:]...)
	}
	if len(refs) > 0 {
		h.SetMsgIDList("References", refs)
	}
	if out.Automatic != "" {
		// RFC 3834: the resident's mail client and autoresponder know
		// not to answer it.
		h.Set("Auto-Submitted", "auto-replied")
	}
	h.Set("MIME-Version", "1.0")
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	var b bytes.Buffer
	w, err := mail.CreateSingleInlineWriter(&b, h)
	if err != nil {
		return nil, err
	}
	text := strings.ReplaceAll(out.Text, "\r\n", "\n")
	if _, err := w.Write([]byte(strings.ReplaceAll(text, "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// deliver hands msg to the SMTP server; failures are *channels.SendError.
func (s *Sender) deliver(ctx context.Context, to string, msg []byte) error {
	tlsConfig := s.TLS
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: s.Server.Host, MinVersion: tls.VersionTLS12}
	}
	c, err := s.dial(ctx, s.Server.Security, tlsConfig)
	if err != nil {
		return err
	}
	if s.Server.Security == StartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			// Never on in plain text, the password readable.
			_ = c.Close()
			return &channels.SendError{Kind: channels.Retryable, Reason: "SMTP server " + s.Server.Addr + ": " + ErrNoStartTLS.Error()}
		}
		// Again, upgraded before anything is said.
		_ = c.Close()
		if c, err = s.dial(ctx, -1, tlsConfig); err != nil {
			return err
		}
	}
	defer func() { _ = c.Close() }()
	if s.Username != "" {
		if ok, _ := c.Extension("AUTH"); ok {
			if err := c.Auth(sasl.NewPlainClient("", s.Username, s.Password)); err != nil {
				return smtpError("AUTH", err, false)
			}
		}
	}
	if err := c.Mail(s.From, nil); err != nil {
		return smtpError("MAIL FROM", err, false)
	}
	if err := c.Rcpt(to, nil); err != nil {
		return smtpError("RCPT TO", err, false)
	}
	w, err := c.Data()
	if err != nil {
		return smtpError("DATA", err, false)
	}
	if _, err := w.Write(msg); err != nil {
		return smtpError("DATA", err, true)
	}
	if err := w.Close(); err != nil {
		// The server may have taken the message before its answer was
		// lost.
		return smtpError("end of DATA", err, true)
	}
	_ = c.Quit()
	return nil
}

// dial connects and greets the server; security -1 asks for STARTTLS
// at once.
func (s *Sender) dial(ctx context.Context, security Security, tlsConfig *tls.Config) (*smtp.Client, error) {
	d := net.Dialer{Timeout: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", s.Server.Addr)
	if err != nil {
		return nil, &channels.SendError{Kind: channels.Retryable, Reason: "SMTP server: " + err.Error()}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	context.AfterFunc(ctx, func() { _ = conn.Close() })
	var c *smtp.Client
	switch security {
	case ImplicitTLS:
		c = smtp.NewClient(tls.Client(conn, tlsConfig))
	case -1:
		if c, err = smtp.NewClientStartTLS(conn, tlsConfig); err != nil {
			_ = conn.Close()
			return nil, smtpError("STARTTLS", err, false)
		}
	default:
		c = smtp.NewClient(conn)
	}
	if err := c.Hello(helloName(s.From)); err != nil && security != -1 {
		_ = c.Close()
		return nil, smtpError("EHLO", err, false)
	}
	return c, nil
}

// withoutAddress keeps the resident's address out of a failure's reason
// (servers quote it: "550 5.1.1 <alice@…>: user unknown"), which is logged.
func withoutAddress(err error, addr string) error {
	var se *channels.SendError
	if !errors.As(err, &se) || addr == "" {
		return err
	}
	re := regexp.MustCompile(`(?i)` + regexp.QuoteMeta(addr))
	se.Reason = re.ReplaceAllString(se.Reason, "the resident's address")
	return se
}

func helloName(from string) string {
	if _, domain, ok := strings.Cut(from, "@"); ok && domain != "" {
		return domain
	}
	return "localhost"
}

// smtpError classifies an SMTP failure: the server refusing the
// credentials (535, 530, 534) is Unauthorised, another 4xx is retryable,
// another 5xx permanent; a broken connection is retryable, and ambiguous
// once the message was written.
func smtpError(stage string, err error, written bool) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		reason := fmt.Sprintf("%s: the SMTP server answered %d %s", stage, se.Code, se.Message)
		switch {
		case se.Code == 535 || se.Code == 534 || se.Code == 530 || (se.Code == 454 && stage == "AUTH" && se.EnhancedCode == smtp.EnhancedCode{4, 7, 0}):
			return &channels.SendError{Kind: channels.Unauthorised, Reason: reason, Status: se.Code}
		case se.Code >= 400 && se.Code < 500:
			return &channels.SendError{Kind: channels.Retryable, Reason: reason, Status: se.Code}
		default:
			return &channels.SendError{Kind: channels.Permanent, Reason: reason, Status: se.Code}
		}
	}
	var tpe *textproto.Error
	if errors.As(err, &tpe) {
		return smtpError(stage, &smtp.SMTPError{Code: tpe.Code, Message: tpe.Msg}, written)
	}
	return &channels.SendError{Kind: channels.Retryable, Reason: stage + ": " + err.Error(), Ambiguous: written}
}

// Thread looks up the mail a reply answers: the message with Message-ID
// inReplyTo when it is in the mailbox, else the latest mail from the
// resident. A mailbox without either gives the zero Thread.
func (mb *Mailbox) Thread(ctx context.Context, inReplyTo, from string) (Thread, error) {
	ic, err := mb.connect(ctx)
	if err != nil {
		return Thread{}, err
	}
	defer ic.close()
	if _, err := ic.c.Select(mb.Name, true); err != nil {
		return Thread{}, fmt.Errorf("email: EXAMINE mailbox: %w", err)
	}
	var uids []uint32
	if inReplyTo != "" && !strings.HasSuffix(inReplyTo, "@message-id.invalid") {
		crit := imap.NewSearchCriteria()
		crit.Header = textproto.MIMEHeader{"Message-Id": {"<" + inReplyTo + ">"}}
		if uids, err = ic.c.UidSearch(crit); err != nil {
			return Thread{}, fmt.Errorf("email: UID SEARCH: %w", err)
		}
	}
	if len(uids) > 0 {
		last := slices.Max(uids)
		headers, err := ic.headers([]uint32{last})
		if err != nil {
			return Thread{}, err
		}
		if h, ok := headers[last]; ok {
			return threadOf(h), nil
		}
	}
	// The resident's latest mail. SEARCH HEADER From matches a substring
	// (bob@example.org is in jimbob@example.org), so each candidate's
	// From is parsed and compared whole, newest first.
	crit := imap.NewSearchCriteria()
	crit.Header = textproto.MIMEHeader{"From": {from}}
	if uids, err = ic.c.UidSearch(crit); err != nil {
		return Thread{}, fmt.Errorf("email: UID SEARCH: %w", err)
	}
	slices.Sort(uids)
	for len(uids) > 0 {
		batch := uids[max(0, len(uids)-threadBatch):]
		uids = uids[:len(uids)-len(batch)]
		headers, err := ic.headers(batch)
		if err != nil {
			return Thread{}, err
		}
		for i := len(batch) - 1; i >= 0; i-- {
			h, ok := headers[batch[i]]
			if !ok {
				continue
			}
			if m, err := ParseHeader(h, 0); err == nil && m.From != nil && strings.EqualFold(m.From.Address, from) {
				return threadOf(h), nil
			}
		}
	}
	return Thread{}, nil
}

// threadBatch is how many candidate mails' headers one FETCH asks for.
const threadBatch = 20

// headers fetches the header of each of uids, by UID.
func (ic *imapConn) headers(uids []uint32) (map[uint32][]byte, error) {
	set := new(imap.SeqSet)
	set.AddNum(uids...)
	section := &imap.BodySectionName{BodyPartName: imap.BodyPartName{Specifier: imap.HeaderSpecifier}, Peek: true}
	ch := make(chan *imap.Message, len(uids))
	errc := make(chan error, 1)
	go func() { errc <- ic.c.UidFetch(set, []imap.FetchItem{imap.FetchUid, section.FetchItem()}, ch) }()
	out := map[uint32][]byte{}
	for m := range ch {
		if lit := m.GetBody(section); lit != nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(io.LimitReader(lit, 1<<20))
			_, _ = io.Copy(io.Discard, lit)
			out[m.Uid] = b.Bytes()
		}
	}
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("email: UID FETCH: %w", err)
	}
	return out, nil
}

// threadOf is the Thread a reply to the mail with header h follows.
func threadOf(header []byte) Thread {
	m, err := ParseHeader(header, 0)
	if err != nil {
		return Thread{}
	}
	th := Thread{Subject: m.Subject, References: m.References}
	if !strings.HasSuffix(m.MessageID, "@message-id.invalid") {
		th.MessageID = m.MessageID
	}
	if len(th.References) == 0 && len(m.InReplyTo) > 0 {
		th.References = m.InReplyTo[:1]
	}
	return th
}
