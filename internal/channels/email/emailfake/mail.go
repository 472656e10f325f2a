package emailfake

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"strings"
	"time"
)

// Mail is a resident's mail, as their mail client writes it.
type Mail struct {
	From, FromName string
	To             string
	Subject        string
	// MessageID is the mail's Message-ID without angle brackets; one is
	// made when empty ("-" for a mail without one).
	MessageID  string
	InReplyTo  string
	References []string
	Date       time.Time
	// Text and HTML are the bodies: text/plain, text/html, or both as
	// multipart/alternative.
	Text, HTML string
	// Attachments are added as multipart/mixed parts.
	Attachments []File
	// Header adds header fields (Auto-Submitted, Precedence...).
	Header map[string]string
	// ContentType replaces the whole body's type (multipart/report for a
	// bounce), with Text as the first part.
	ContentType string
}

// File is an attachment.
type File struct {
	Name, Type string
	Data       []byte
}

// NewMessageID makes a Message-ID at domain.
func NewMessageID(domain string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b) + "@" + domain
}

// Bytes writes the mail; it fills MessageID when empty.
func (m *Mail) Bytes() []byte {
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	if m.To == "" {
		m.To = Address
	}
	if m.FromName != "" {
		h("From", mime.QEncoding.Encode("utf-8", m.FromName)+" <"+m.From+">")
	} else {
		h("From", m.From)
	}
	h("To", m.To)
	if m.Subject != "" {
		h("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	}
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	h("Date", date.Format(time.RFC1123Z))
	switch m.MessageID {
	case "-":
	case "":
		_, domain, _ := strings.Cut(m.From, "@")
		m.MessageID = NewMessageID(domain)
		fallthrough
	default:
		h("Message-ID", "<"+m.MessageID+">")
	}
	if m.InReplyTo != "" {
		h("In-Reply-To", "<"+m.InReplyTo+">")
	}
	if len(m.References) > 0 {
		h("References", "<"+strings.Join(m.References, "> <")+">")
	}
	for k, v := range m.Header {
		h(k, v)
	}
	h("MIME-Version", "1.0")
	body := m.body()
	b.Write(body)
	return b.Bytes()
}

func (m *Mail) body() []byte {
	var b bytes.Buffer
	textPart := func(t, s string) {
		fmt.Fprintf(&b, "Content-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n", t, strings.ReplaceAll(s, "\n", "\r\n"))
	}
	if m.ContentType != "" {
		fmt.Fprintf(&b, "Content-Type: %s; boundary=\"r1\"\r\n\r\n--r1\r\n", m.ContentType)
		textPart("text/plain", m.Text)
		b.WriteString("--r1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; nobody@example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--r1--\r\n")
		return b.Bytes()
	}
	content := func() {
		switch {
		case m.HTML != "" && m.Text != "":
			b.WriteString("Content-Type: multipart/alternative; boundary=\"a1\"\r\n\r\n--a1\r\n")
			textPart("text/plain", m.Text)
			b.WriteString("--a1\r\n")
			textPart("text/html", m.HTML)
			b.WriteString("--a1--\r\n")
		case m.HTML != "":
			textPart("text/html", m.HTML)
		default:
			textPart("text/plain", m.Text)
		}
	}
	if len(m.Attachments) == 0 {
		content()
		return b.Bytes()
	}
	b.WriteString("Content-Type: multipart/mixed; boundary=\"m1\"\r\n\r\n--m1\r\n")
	content()
	for _, f := range m.Attachments {
		fmt.Fprintf(&b, "--m1\r\nContent-Type: %s\r\nContent-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n", f.Type, f.Name)
		b.WriteString(base64Lines(f.Data))
	}
	b.WriteString("--m1--\r\n")
	return b.Bytes()
}

func base64Lines(data []byte) string {
	s := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s + "\r\n")
	return b.String()
}
