package email

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // the charsets residents' mail clients use
	"github.com/emersion/go-message/mail"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Why a message made no resident message: the kinds counted.
const (
	IgnoredAutoReply  = "auto_reply" // RFC 3834 Auto-Submitted, X-Autoreply, Precedence
	IgnoredBounce     = "bounce"     // a delivery status notification, or from a mailer daemon
	IgnoredReceipt    = "receipt"    // a read receipt (message disposition notification)
	IgnoredOwn        = "own"        // from the council's own address
	IgnoredNoSender   = "no_sender"  // no From address to answer
	IgnoredUnreadable = "unreadable" // not a message at all
	IgnoredForged     = "forged"     // failed SPF/DKIM/DMARC by the council's mail server (Account.TrustedAuthservID)
)

// ErrNotAMessage is a fetched body that is not an Internet message.
var ErrNotAMessage = errors.New("email: not an Internet message")

// Account is what parsing needs of the council's account.
type Account struct {
	Slug string
	// Address is the council's own address: mail from it is skipped.
	Address string
	// TrustedAuthservID, when set, is the authserv-id the council's own
	// mail server writes in Authentication-Results: mail it found
	// forged is skipped.
	TrustedAuthservID string
}

// Message is one mail as the driver reads it.
type Message struct {
	// MessageID is the Message-ID without its angle brackets; one made
	// from the message's bytes when it has none.
	MessageID  string
	InReplyTo  []string
	References []string
	From       *mail.Address
	Subject    string
	Date       time.Time
	// Body is the text the resident wrote: the text/plain part, else the
	// HTML part as text.
	Body        string
	Attachments []Attachment
	// Ignored, when set, says why the message makes no case.
	Ignored string
	// Truncated says the message was larger than MaxMessageSize and only
	// its header was read.
	Truncated bool
	// Size is the message's size in bytes, when known.
	Size int64
	// AuthResults are the message's Authentication-Results fields,
	// topmost first.
	AuthResults []string
	// Incomplete says part of the message could not be read (a
	// malformed header line, parts nested too deep or too many parts).
	Incomplete bool
}

// Attachment is a part of a message that is not its text: only its name
// and size are kept.
type Attachment struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Size int64  `json:"size"`
}

// Parse reads one message. A message whose body cannot be read is still
// returned with what its header says; only bytes without any header are
// ErrNotAMessage.
func Parse(raw []byte) (*Message, error) {
	incomplete := false
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		// A malformed header line (one without a colon, say) would lose
		// the whole mail: read it again without the lines that are no
		// header field.
		ent, err = message.Read(bytes.NewReader(lenientHeader(raw)))
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return nil, fmt.Errorf("%w: %w", ErrNotAMessage, err)
		}
		incomplete = true
	}
	if ent == nil || ent.Header.Len() == 0 {
		return nil, ErrNotAMessage
	}
	h := mail.Header{Header: ent.Header}
	m := &Message{Size: int64(len(raw)), Incomplete: incomplete}
	m.readHeader(h, raw)
	m.Ignored = ignored(h)
	m.readBody(ent)
	if incomplete && m.From == nil {
		return nil, ErrNotAMessage
	}
	return m, nil
}

// lenientHeader is raw without the header lines that are not a field
// ("Name: value") or a field's continuation.
func lenientHeader(raw []byte) []byte {
	var out bytes.Buffer
	rest := raw
	kept := false
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		t := bytes.TrimRight(line, "\r\n")
		switch {
		case len(t) == 0:
			out.WriteString("\r\n")
			out.Write(rest)
			return out.Bytes()
		case t[0] == ' ' || t[0] == '\t':
			if !kept {
				continue
			}
		default:
			name, _, ok := bytes.Cut(t, []byte(":"))
			kept = ok && len(name) > 0 && !bytes.ContainsAny(name, " \t")
			if !kept {
				continue
			}
		}
		out.Write(t)
		out.WriteString("\r\n")
	}
	out.WriteString("\r\n")
	return out.Bytes()
}

// ParseHeader reads a message of which only the header was fetched (one
// too large to read whole).
func ParseHeader(rawHeader []byte, size int64) (*Message, error) {
	ent, err := message.Read(bytes.NewReader(rawHeader))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, fmt.Errorf("%w: %w", ErrNotAMessage, err)
	}
	if ent == nil || ent.Header.Len() == 0 {
		return nil, ErrNotAMessage
	}
	h := mail.Header{Header: ent.Header}
	m := &Message{Size: size, Truncated: true}
	m.readHeader(h, rawHeader)
	m.Ignored = ignored(h)
	return m, nil
}

func (m *Message) readHeader(h mail.Header, raw []byte) {
	if from, err := h.AddressList("From"); err == nil && len(from) > 0 && strings.Contains(from[0].Address, "@") {
		m.From = from[0]
	} else if s := strings.TrimSpace(h.Get("From")); s != "" {
		// An address the strict parser refuses, such as a display name
		// with unquoted dots: take what is between the angle brackets.
		if addr, err := mail.ParseAddress(lenientAddress(s)); err == nil && strings.Contains(addr.Address, "@") {
			m.From = addr
		}
	}
	if m.From != nil {
		m.From.Name = clean(m.From.Name, 200)
	}
	m.Subject, _ = h.Subject()
	m.Subject = clean(strings.Join(strings.Fields(m.Subject), " "), 998)
	m.MessageID, _ = h.MessageID()
	m.MessageID = clean(m.MessageID, 995)
	if m.MessageID == "" || strings.ContainsAny(m.MessageID, " <>") {
		sum := sha256.Sum256(raw)
		m.MessageID = "sha256-" + hex.EncodeToString(sum[:12]) + "@message-id.invalid"
	}
	m.AuthResults = h.Values("Authentication-Results")
	m.InReplyTo = msgIDs(h, "In-Reply-To")
	m.References = msgIDs(h, "References")
	if d, err := h.Date(); err == nil && !d.IsZero() {
		m.Date = d.UTC()
	}
}

// lenientAddress keeps the part of a From line between angle brackets.
func lenientAddress(s string) string {
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			return s[i : i+j+1]
		}
	}
	return s
}

func msgIDs(h mail.Header, key string) []string {
	ids, err := h.MsgIDList(key)
	if err != nil {
		// Some clients write ids without angle brackets.
		ids = nil
		for _, f := range strings.Fields(h.Get(key)) {
			f = strings.Trim(f, "<>,")
			if strings.Contains(f, "@") {
				ids = append(ids, f)
			}
		}
	}
	var out []string
	for _, id := range ids {
		if id = clean(id, 995); id != "" && !strings.ContainsAny(id, " <>") {
			out = append(out, id)
		}
	}
	return out
}

// clean makes a header value valid UTF-8 without control characters, at
// most max bytes.
func clean(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	for len(s) > max {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// ignored says why a message is no resident's: an auto-reply, a bounce
// or a receipt; "" for a resident's message.
func ignored(h mail.Header) string {
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); v != "" && !strings.HasPrefix(v, "no") {
		return IgnoredAutoReply
	}
	// Not X-Auto-Response-Suppress: Outlook puts it on people's own mail
	// too.
	for _, k := range []string{"X-Autoreply", "X-Autorespond"} {
		if h.Get(k) != "" {
			return IgnoredAutoReply
		}
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Precedence"))) {
	case "bulk", "auto_reply", "list", "junk":
		return IgnoredAutoReply
	}
	if h.Get("List-Id") != "" || h.Get("List-Unsubscribe") != "" {
		return IgnoredAutoReply
	}
	if t, params, err := h.ContentType(); err == nil && t == "multipart/report" {
		switch strings.ToLower(params["report-type"]) {
		case "delivery-status":
			return IgnoredBounce
		case "disposition-notification":
			return IgnoredReceipt
		}
		return IgnoredBounce
	}
	if strings.TrimSpace(h.Get("Return-Path")) == "<>" {
		return IgnoredBounce
	}
	if from, err := h.AddressList("From"); err == nil && len(from) > 0 {
		local, _, _ := strings.Cut(strings.ToLower(from[0].Address), "@")
		if local == "mailer-daemon" || local == "postmaster" {
			return IgnoredBounce
		}
	}
	return ""
}

// readBody finds the text and lists the attachments, reading at most
// MaxMessageSize of decoded content.
func (m *Message) readBody(ent *message.Entity) {
	var plain, htmlText string
	budget := int64(MaxMessageSize)
	parts := 0
	err := walkParts(ent, 0, &parts, func(part *message.Entity) error {
		t, params, _ := part.Header.ContentType()
		if strings.HasPrefix(t, "multipart/") {
			return nil
		}
		if t == "" {
			t = "text/plain"
		}
		disp, dparams, _ := part.Header.ContentDisposition()
		name := dparams["filename"]
		if name == "" {
			name = params["name"]
		}
		name = clean(name, 255)
		data, _ := io.ReadAll(io.LimitReader(part.Body, budget+1))
		budget -= int64(len(data))
		isText := t == "text/plain" || t == "text/html"
		if isText && disp != "attachment" && name == "" {
			switch {
			case t == "text/plain" && plain == "":
				plain = string(data)
			case t == "text/html" && htmlText == "":
				htmlText = string(data)
			}
		} else if t != "message/delivery-status" && t != "application/pgp-signature" && t != "application/pkcs7-signature" {
			m.Attachments = append(m.Attachments, Attachment{Name: name, Type: t, Size: int64(len(data))})
		}
		if budget < 0 {
			m.Truncated = true
			return errors.New("too large")
		}
		return nil
	})
	if errors.Is(err, errTooDeep) || errors.Is(err, errTooManyParts) {
		m.Incomplete = true
	}
	switch {
	case strings.TrimSpace(plain) != "":
		m.Body = tidy(trimQuoted(strings.ToValidUTF8(plain, "\uFFFD")))
	case htmlText != "":
		m.Body = tidy(trimQuoted(HTMLText(strings.ToValidUTF8(htmlText, "\uFFFD"))))
	}
	m.Body = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || (r >= 0x20 && r != 0x7f) {
			return r
		}
		return -1
	}, m.Body)
}

// MaxPartDepth and MaxParts bound how deep nested multiparts are read
// and how many parts: a hostile mail of thousands of nested parts would
// otherwise hold intake for seconds. What lies beyond is left unread; the
// mail still makes a case, saying so.
const (
	MaxPartDepth = 20
	MaxParts     = 200
)

var (
	errTooDeep      = errors.New("email: multiparts nested too deep")
	errTooManyParts = errors.New("email: too many parts")
)

// walkParts calls fn on each leaf part of ent, depth first, descending at
// most MaxPartDepth multiparts and visiting at most MaxParts parts.
func walkParts(ent *message.Entity, depth int, parts *int, fn func(*message.Entity) error) error {
	if *parts++; *parts > MaxParts {
		return errTooManyParts
	}
	mr := ent.MultipartReader()
	if mr == nil {
		return fn(ent)
	}
	if depth >= MaxPartDepth {
		return errTooDeep
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return err
		}
		if err := walkParts(p, depth+1, parts, fn); err != nil {
			return err
		}
	}
}

var (
	attribution = regexp.MustCompile(`(?i)^(on .+wrote:|.+ wrote:|le .+ a écrit ?:|am .+ schrieb .+:)$`)
	outlookCut  = regexp.MustCompile(`(?i)^(-{2,} ?original message ?-{2,}|_{10,})$`)
)

// trimQuoted cuts what the resident's mail client quoted of earlier
// mail: a trailing block of "> " lines with the "On … wrote:" line above
// it, or everything from Outlook's "-----Original Message-----".
func trimQuoted(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if outlookCut.MatchString(strings.TrimSpace(l)) && i > 0 {
			lines = lines[:i]
			break
		}
	}
	end := len(lines)
	for end > 0 && (strings.HasPrefix(lines[end-1], ">") || strings.TrimSpace(lines[end-1]) == "") {
		end--
	}
	if end < len(lines) && end > 0 && hasQuote(lines[end:]) {
		// Drop the attribution line, which some clients wrap over two.
		for k := end - 1; k >= 0 && k >= end-2; k-- {
			if attribution.MatchString(strings.TrimSpace(strings.Join(lines[k:end], " "))) {
				end = k
				break
			}
		}
		lines = lines[:end]
	}
	out := strings.Join(lines, "\n")
	if strings.TrimSpace(out) == "" {
		return s // all of it quoted: keep it
	}
	return out
}

func hasQuote(lines []string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, ">") {
			return true
		}
	}
	return false
}

// Text is what the adviser reads: the subject, the body and a line for
// each attachment.
func (m *Message) Text() string {
	var b strings.Builder
	if m.Subject != "" {
		b.WriteString("Subject: " + m.Subject + "\n\n")
	}
	switch {
	case m.Truncated && m.Body == "":
		fmt.Fprintf(&b, "[This message was too large to read here (%s): open it in the mailbox.]", formatSize(m.Size))
	case m.Truncated:
		b.WriteString(m.Body)
		fmt.Fprintf(&b, "\n\n[This message was too large to read whole (%s): open it in the mailbox.]", formatSize(m.Size))
	case m.Body == "":
		b.WriteString("[No text]")
	default:
		b.WriteString(m.Body)
	}
	if m.Incomplete {
		b.WriteString("\n\n[Part of this message could not be read here: open it in the mailbox.]")
	}
	if len(m.Attachments) > 0 {
		b.WriteString("\n")
	}
	for _, a := range m.Attachments {
		name := a.Name
		if name == "" {
			name = "unnamed " + a.Type
		}
		fmt.Fprintf(&b, "\n[attachment: %s, %s]", name, formatSize(a.Size))
	}
	return strings.TrimSpace(b.String())
}

// formatSize writes a size as people read it: "812 bytes", "120 KB",
// "3.4 MB".
func formatSize(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d bytes", n)
	case n < 1024*1024:
		return fmt.Sprintf("%d KB", (n+1023)/1024)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1024*1024))
}

// caseReference finds a case reference ("C-2026-000123") in a subject.
var caseReference = regexp.MustCompile(`(?i)\bC-\d{4}-\d{6,}\b`)

// CaseReference is the case reference a subject carries, upper-cased, or
// "".
func CaseReference(subject string) string { return strings.ToUpper(caseReference.FindString(subject)) }

// raw is what is kept of a message with it: its addresses in the
// mailbox and its threading header, never its attachments' content.
type raw struct {
	UIDValidity   uint32       `json:"uid_validity"`
	UID           uint32       `json:"uid"`
	MessageID     string       `json:"message_id"`
	Subject       string       `json:"subject,omitempty"`
	InReplyTo     []string     `json:"in_reply_to,omitempty"`
	References    []string     `json:"references,omitempty"`
	CaseReference string       `json:"case_reference,omitempty"`
	Attachments   []Attachment `json:"attachments,omitempty"`
	Size          int64        `json:"size,omitempty"`
	Truncated     bool         `json:"truncated,omitempty"`
}

// Inbound makes the resident message of a parsed mail, or says why it
// makes none. at is where it is in the mailbox; receivedAt its internal
// date, for mail without a Date.
func (m *Message) Inbound(acct Account, at Cursor, receivedAt time.Time) (*channels.Inbound, string) {
	switch {
	case m.Ignored != "":
		return nil, m.Ignored
	case m.From == nil:
		return nil, IgnoredNoSender
	case forged(m.AuthResults, acct.TrustedAuthservID):
		return nil, IgnoredForged
	case acct.Address != "" && strings.EqualFold(m.From.Address, acct.Address):
		return nil, IgnoredOwn
	}
	sent := m.Date
	if sent.IsZero() {
		sent = receivedAt.UTC()
	}
	r, _ := json.Marshal(raw{UIDValidity: at.UIDValidity, UID: at.UID, MessageID: m.MessageID, Subject: m.Subject,
		InReplyTo: m.InReplyTo, References: m.References, CaseReference: CaseReference(m.Subject),
		Attachments: m.Attachments, Size: m.Size, Truncated: m.Truncated})
	in := &channels.Inbound{
		Channel:    Channel,
		Account:    acct.Slug,
		DedupeKey:  m.DedupeKey(),
		ExternalID: m.MessageID,
		Visibility: channels.Private,
		Text:       m.Text(),
		Author: channels.Identity{
			ExternalID:  strings.ToLower(m.From.Address),
			Handle:      m.From.Address,
			DisplayName: m.From.Name,
		},
		ConversationID: m.root(),
		InReplyTo:      m.parent(),
		CaseReference:  CaseReference(m.Subject),
		SentAt:         sent,
		Raw:            r,
	}
	return in, ""
}

// DedupeKey is "email:" and the Message-ID with a short hash of the
// sender, date and subject, so two mails reusing one Message-ID both
// count while a copy of one mail delivered again stays one. Mail without
// a Message-ID has one made from its bytes, which is key enough.
func (m *Message) DedupeKey() string {
	if strings.HasSuffix(m.MessageID, "@message-id.invalid") {
		return "email:" + m.MessageID
	}
	var from, date string
	if m.From != nil {
		from = strings.ToLower(m.From.Address)
	}
	if !m.Date.IsZero() {
		date = strconv.FormatInt(m.Date.Unix(), 10)
	}
	sum := sha256.Sum256([]byte(from + "\x00" + date + "\x00" + m.Subject))
	return "email:" + m.MessageID + ":" + hex.EncodeToString(sum[:6])
}

// parent is the message this one answers: In-Reply-To, else the last of
// References.
func (m *Message) parent() string {
	if len(m.InReplyTo) > 0 {
		return m.InReplyTo[0]
	}
	if n := len(m.References); n > 0 {
		return m.References[n-1]
	}
	return ""
}

// root is the first message of the thread: the first of References, else
// the message answered, else this one.
func (m *Message) root() string {
	if len(m.References) > 0 {
		return m.References[0]
	}
	if p := m.parent(); p != "" {
		return p
	}
	return m.MessageID
}
