package email_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/email"
	"github.com/citizeninbox/inbox/internal/channels/email/emailfake"
)

var council = email.Account{Slug: "council-email", Address: emailfake.Address}

func TestHTMLText(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"paragraphs and breaks", "<p>Hello<br>there</p><p>Second &amp; last</p>", "Hello\nthere\n\nSecond & last"},
		{"link shows its address", `<p>See <a href="https://council.example/bins">this page</a></p>`, "See this page (https://council.example/bins)"},
		{"link that is its address", `<a href="https://x.example/a">https://x.example/a</a>`, "https://x.example/a"},
		{"mailto", `<a href="mailto:bob@example.org">bob@example.org</a>`, "bob@example.org"},
		{"list", "<ul><li>one</li><li>two</li></ul>", "- one\n- two"},
		{"head and styles dropped", "<html><head><title>x</title><style>p{}</style></head><body><div>Hi</div><script>alert(1)</script></body></html>", "Hi"},
		{"spaces collapse", "<p>a   lot\n of    space</p>", "a lot of space"},
		{"pre kept", "<pre>a  b\n c</pre>", "a  b\n c"},
		{"table rows", "<table><tr><td>Name</td><td>Bob</td></tr><tr><td>Street</td><td>Elm</td></tr></table>", "Name Bob\nStreet Elm"},
		{"inline words", "<p>The <b>bins</b> on <i>Elm</i> Road</p>", "The bins on Elm Road"},
		{"image alt", `<p><img src="cid:1" alt="photo of the bin"></p>`, "[photo of the bin]"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := email.HTMLText(tc.in); got != tc.want {
				t.Errorf("HTMLText(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestCursor(t *testing.T) {
	for _, s := range []string{"", "1:0", "42:17", "4294967295:4294967295", "42:17:1796000000"} {
		c, err := email.ParseCursor(s)
		if err != nil || c.String() != s {
			t.Errorf("ParseCursor(%q) = %v, %v", s, c, err)
		}
	}
	for _, s := range []string{"7", "0:3", "a:1", "1:b", "1:-1", "+1:2", "4294967296:1", "1:2:0", "1:2:-3", "1:2:03", "1:2:3:4", " 1:2"} {
		if _, err := email.ParseCursor(s); err == nil {
			t.Errorf("ParseCursor(%q) took it", s)
		}
	}
}

func parse(t *testing.T, m emailfake.Mail) (*channels.Inbound, string) {
	t.Helper()
	msg, err := email.Parse(m.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return msg.Inbound(council, email.Cursor{UIDValidity: 9, UID: 3}, time.Now())
}

func TestParse(t *testing.T) {
	in, kind := parse(t, emailfake.Mail{From: "Alice@Town.example", FromName: "Alice Example", Subject: "Bins on Elm Road",
		MessageID: "abc@town.example", InReplyTo: "reply-1.x@example-council.gov.uk", References: []string{"root@town.example", "reply-1.x@example-council.gov.uk"},
		Text: "The bins were missed.\n\nOn Tue, 1 Dec 2026, Council wrote:\n> We will come back.\n> Thanks"})
	if in == nil {
		t.Fatalf("ignored as %s", kind)
	}
	if in.Visibility != channels.Private || !strings.HasPrefix(in.DedupeKey, "email:abc@town.example:") || in.ExternalID != "abc@town.example" ||
		in.InReplyTo != "reply-1.x@example-council.gov.uk" || in.ConversationID != "root@town.example" ||
		in.Author.ExternalID != "alice@town.example" || in.Author.DisplayName != "Alice Example" || in.Validate() != nil {
		t.Errorf("inbound %+v", in)
	}
	if in.Text != "Subject: Bins on Elm Road\n\nThe bins were missed." {
		t.Errorf("text %q", in.Text)
	}

	in, _ = parse(t, emailfake.Mail{From: "bob@example.org", Subject: "Photo", HTML: "<p>Here is the <b>pothole</b>.</p><p><a href=\"https://maps.example/x\">map</a></p>",
		Attachments: []emailfake.File{{Name: "pothole.jpg", Type: "image/jpeg", Data: make([]byte, 120*1024)}, {Name: "note.pdf", Type: "application/pdf", Data: []byte("tiny")}}})
	if in == nil || in.Text != "Subject: Photo\n\nHere is the pothole.\n\nmap (https://maps.example/x)\n\n[attachment: pothole.jpg, 120 KB]\n[attachment: note.pdf, 4 bytes]" {
		t.Errorf("html with attachments: %q", in.Text)
	}
	if strings.Contains(string(in.Raw), "AAAA") {
		t.Error("an attachment's content was kept")
	}

	in, _ = parse(t, emailfake.Mail{From: "carol@example.org", Text: "plain wins", HTML: "<p>html loses</p>"})
	if in == nil || in.Text != "plain wins" {
		t.Errorf("alternative: %+v", in)
	}

	// No Message-ID: one made from the bytes, the same each time.
	m := emailfake.Mail{From: "dan@example.org", Text: "no id", MessageID: "-", Date: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	raw := m.Bytes()
	a, _ := email.Parse(raw)
	b, _ := email.Parse(raw)
	if a.MessageID != b.MessageID || !strings.HasSuffix(a.MessageID, "@message-id.invalid") {
		t.Errorf("made ids %q %q", a.MessageID, b.MessageID)
	}
}

func TestAutoRepliesAndBouncesMakeNoCase(t *testing.T) {
	for _, tc := range []struct {
		name string
		mail emailfake.Mail
		want string
	}{
		{"auto-submitted", emailfake.Mail{From: "a@example.org", Text: "I am away", Header: map[string]string{"Auto-Submitted": "auto-replied"}}, email.IgnoredAutoReply},
		{"x-autoreply", emailfake.Mail{From: "a@example.org", Text: "away", Header: map[string]string{"X-Autoreply": "yes"}}, email.IgnoredAutoReply},
		{"precedence bulk", emailfake.Mail{From: "news@example.org", Text: "offers", Header: map[string]string{"Precedence": "bulk"}}, email.IgnoredAutoReply},
		{"precedence auto_reply", emailfake.Mail{From: "a@example.org", Text: "away", Header: map[string]string{"Precedence": "auto_reply"}}, email.IgnoredAutoReply},
		{"dsn", emailfake.Mail{From: "mx@example.org", Text: "Delivery failed", ContentType: "multipart/report; report-type=delivery-status"}, email.IgnoredBounce},
		{"mailer-daemon", emailfake.Mail{From: "MAILER-DAEMON@mx.example.org", Text: "Undeliverable"}, email.IgnoredBounce},
		{"postmaster", emailfake.Mail{From: "postmaster@mx.example.org", Text: "Undeliverable"}, email.IgnoredBounce},
		{"the council's own", emailfake.Mail{From: "Contact@Example-Council.gov.uk", Text: "copy"}, email.IgnoredOwn},
		{"no sender", emailfake.Mail{From: "undisclosed", Text: "?"}, email.IgnoredNoSender},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if in, kind := parse(t, tc.mail); in != nil || kind != tc.want {
				t.Errorf("made %+v, kind %q, want %q", in, kind, tc.want)
			}
		})
	}
	if in, _ := parse(t, emailfake.Mail{From: "a@example.org", Text: "real", Header: map[string]string{"Auto-Submitted": "no"}}); in == nil {
		t.Error("Auto-Submitted: no was skipped")
	}
	if in, _ := parse(t, emailfake.Mail{From: "a@example.org", Text: "from Outlook", Header: map[string]string{"X-Auto-Response-Suppress": "All"}}); in == nil {
		t.Error("a person's mail from Outlook was skipped")
	}
}

func TestSubject(t *testing.T) {
	for _, tc := range []struct{ subject, text, want string }{
		{"Bins", "ok", "Re: Bins"},
		{"RE: Bins", "ok", "RE: Bins"},
		{"Bins", "Your reference is C-2026-000123.", "Re: Bins [C-2026-000123]"},
		{"Re: Bins [C-2026-000123]", "Your reference is C-2026-000123.", "Re: Bins [C-2026-000123]"},
		{"", "ok", "Your message"},
	} {
		if got := email.Subject(tc.subject, tc.text); got != tc.want {
			t.Errorf("Subject(%q, %q) = %q, want %q", tc.subject, tc.text, got, tc.want)
		}
	}
}

// startServers starts the council's IMAP and SMTP servers.
func startServers(t *testing.T) *emailfake.Server {
	t.Helper()
	srv, err := emailfake.Start("127.0.0.1:0", "127.0.0.1:0", emailfake.Username, emailfake.Password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func mailboxOf(t *testing.T, srv *emailfake.Server) *email.Mailbox {
	t.Helper()
	s, err := email.ParseIMAPURL(srv.IMAPURL())
	if err != nil {
		t.Fatal(err)
	}
	return &email.Mailbox{Server: s, Username: emailfake.Username, Password: emailfake.Password, Name: "INBOX", Timeout: 10 * time.Second}
}

func newPoller(t *testing.T, srv *emailfake.Server) *email.Poller {
	return &email.Poller{Mailbox: mailboxOf(t, srv), Account: council}
}

func poll(t *testing.T, p *email.Poller, cursor string) ([]channels.Inbound, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	msgs, next, err := p.Poll(ctx, cursor)
	if err != nil {
		t.Fatal(err)
	}
	return msgs, next
}

// Mail is read from a real IMAP server oldest first, never marked \Seen;
// what made no case moves the cursor on; a backlog comes in pages; a
// repeated poll takes nothing; a new UIDVALIDITY reads the mailbox again
// with the same dedupe keys.
func TestPollReadsTheMailbox(t *testing.T) {
	srv := startServers(t)
	p := newPoller(t, srv)
	first := srv.Deliver(emailfake.Mail{From: "alice@town.example", Subject: "Bins", Text: "Missed again"})
	srv.Deliver(emailfake.Mail{From: "alice@town.example", Text: "Away", Header: map[string]string{"Auto-Submitted": "auto-replied"}})
	second := srv.Deliver(emailfake.Mail{From: "bob@example.org", Subject: "Pothole", Text: "Station Road"})

	msgs, cursor := poll(t, p, "")
	if len(msgs) != 2 || msgs[0].ExternalID != first || msgs[1].ExternalID != second {
		t.Fatalf("polled %+v", msgs)
	}
	if want := fmt.Sprintf("%d:3:", srv.UIDValidity()); !strings.HasPrefix(cursor, want) {
		t.Errorf("cursor %q, want %q", cursor, want)
	}
	if again, next := poll(t, p, cursor); len(again) != 0 || next != cursor {
		t.Errorf("a repeated poll took %d, cursor %q", len(again), next)
	}
	if n := srv.Seen(); n != 0 {
		t.Errorf("%d messages marked \\Seen", n)
	}

	// A first poll starts at the first message nobody has read.
	if msgs, _ := poll(t, newPoller(t, srv), ""); len(msgs) != 2 {
		t.Errorf("a first poll of unread mail took %d messages, want 2", len(msgs))
	}

	var want []string
	for i := range 120 {
		want = append(want, srv.Deliver(emailfake.Mail{From: "carol@example.org", Text: fmt.Sprintf("message %d", i)}))
	}
	var got []string
	for polls := 0; ; polls++ {
		msgs, next := poll(t, p, cursor)
		if len(msgs) > email.PageSize {
			t.Fatalf("%d messages in one poll", len(msgs))
		}
		for _, m := range msgs {
			got = append(got, m.ExternalID)
		}
		if next == cursor {
			if polls != 3 {
				t.Errorf("%d polls, want 3 pages", polls)
			}
			break
		}
		cursor = next
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("backlog polled out of order or incomplete: %d of %d", len(got), len(want))
	}

	if _, _, err := p.Poll(context.Background(), "garbage"); err == nil {
		t.Error("a bad cursor was taken")
	}
}

// Where the server offers IDLE, a poll that found nothing waits for new
// mail and takes it when it comes.
func TestPollWaitsInIdle(t *testing.T) {
	srv := startServers(t)
	p := newPoller(t, srv)
	_, cursor := poll(t, p, "")
	p.IdleFor = 10 * time.Second
	go func() {
		time.Sleep(500 * time.Millisecond)
		srv.Deliver(emailfake.Mail{From: "dan@example.org", Text: "Streetlight out"})
	}()
	start := time.Now()
	msgs, cursor := poll(t, p, cursor)
	if len(msgs) != 1 || time.Since(start) > 5*time.Second {
		t.Errorf("%d messages after %s", len(msgs), time.Since(start))
	}
	// Nothing comes: the poll ends 2 s before its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start = time.Now()
	msgs, next, err := p.Poll(ctx, cursor)
	if took := time.Since(start); err != nil || len(msgs) != 0 || next != cursor || took < 900*time.Millisecond || took > 2500*time.Millisecond {
		t.Errorf("idle without mail: %d messages, %v after %s (cursor %s)", len(msgs), err, took, next)
	}
}

// A first poll takes the mail nobody has read, not what was dealt with
// before the inbox came: with all of it read, it starts at the end.
func TestFirstPollStartsAtUnreadMail(t *testing.T) {
	srv := startServers(t)
	srv.Append((&emailfake.Mail{From: "old@example.org", Text: "answered last year"}).Bytes(), time.Now(), `\Seen`)
	unread := srv.Deliver(emailfake.Mail{From: "alice@town.example", Text: "still waiting"})
	srv.Append((&emailfake.Mail{From: "bob@example.org", Text: "read, after an unread one"}).Bytes(), time.Now(), `\Seen`)
	msgs, _ := poll(t, newPoller(t, srv), "")
	if len(msgs) != 2 || msgs[0].ExternalID != unread {
		t.Errorf("first poll took %+v", msgs)
	}

	read := startServers(t)
	read.Append((&emailfake.Mail{From: "old@example.org", Text: "answered"}).Bytes(), time.Now(), `\Seen`)
	msgs, cursor := poll(t, newPoller(t, read), "")
	if want := fmt.Sprintf("%d:1", read.UIDValidity()); len(msgs) != 0 || cursor != want {
		t.Errorf("first poll of a read mailbox: %d messages, cursor %s, want %s", len(msgs), cursor, want)
	}
	later := read.Deliver(emailfake.Mail{From: "carol@example.org", Text: "new"})
	if msgs, _ := poll(t, newPoller(t, read), cursor); len(msgs) != 1 || msgs[0].ExternalID != later {
		t.Errorf("after the first poll: %+v", msgs)
	}
}

func TestPollRefusedLogin(t *testing.T) {
	srv := startServers(t)
	p := newPoller(t, srv)
	srv.Revoke()
	_, c, err := p.Poll(context.Background(), "5:1")
	if !errors.Is(err, email.ErrLoginRefused) || c != "5:1" {
		t.Errorf("refused login: %v, cursor %q", err, c)
	}
}

func newSender(t *testing.T, srv *emailfake.Server) *email.Sender {
	s, err := email.ParseSMTPURL(srv.SMTPURL())
	if err != nil {
		t.Fatal(err)
	}
	return &email.Sender{Server: s, Username: emailfake.Username, Password: emailfake.Password, From: emailfake.Address, Mailbox: mailboxOf(t, srv)}
}

func TestSend(t *testing.T) {
	srv := startServers(t)
	snd := newSender(t, srv)
	first := srv.Deliver(emailfake.Mail{From: "alice@town.example", Subject: "Bins on Elm Road", Text: "Missed", References: []string{"old@town.example"}})

	var recorded []string
	ids, err := snd.Send(context.Background(), channels.Outbound{MessageID: 7, Account: "council-email", Visibility: channels.Private,
		Text: "Thanks Alice — the crew comes back tomorrow.\nYour reference is C-2026-000042.", Recipient: "alice@town.example", InReplyTo: first},
		func(_ int, id string) error { recorded = append(recorded, id); return nil })
	if err != nil || len(ids) != 1 || len(recorded) != 1 {
		t.Fatalf("%v %v", ids, err)
	}
	sent := srv.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d mails sent", len(sent))
	}
	s := sent[0]
	if s.To != "alice@town.example" || s.From != emailfake.Address || s.MessageID != ids[0] || !strings.HasSuffix(s.MessageID, "@example-council.gov.uk") ||
		s.InReplyTo != first || strings.Join(s.References, " ") != "old@town.example "+first ||
		s.Subject != "Re: Bins on Elm Road [C-2026-000042]" || !strings.HasPrefix(s.ContentType, "text/plain") || s.Encoding != "quoted-printable" ||
		s.Text != "Thanks Alice — the crew comes back tomorrow.\nYour reference is C-2026-000042." {
		t.Errorf("sent %+v", s)
	}

	// No message named: the resident's latest mail is answered.
	latest := srv.Deliver(emailfake.Mail{From: "alice@town.example", Subject: "Re: Bins on Elm Road", Text: "Thanks", InReplyTo: ids[0], References: []string{first, ids[0]}})
	if _, err := snd.Send(context.Background(), channels.Outbound{MessageID: 8, Visibility: channels.Private, Text: "You're welcome", Recipient: "alice@town.example"}, nil); err != nil {
		t.Fatal(err)
	}
	if s := srv.Sent()[1]; s.InReplyTo != latest || s.Subject != "Re: Bins on Elm Road" || len(s.References) != 3 {
		t.Errorf("answering the latest: %+v", s)
	}

	// Too long: refused with the count.
	_, err = snd.Send(context.Background(), channels.Outbound{MessageID: 9, Visibility: channels.Private, Text: strings.Repeat("a", email.MaxTextLength+1), Recipient: "alice@town.example"}, nil)
	if se := channels.AsSendError(err); se.Kind != channels.Permanent || !strings.Contains(se.Reason, "100001 characters") {
		t.Errorf("too long: %v", err)
	}
	if _, err := snd.Send(context.Background(), channels.Outbound{MessageID: 10, Visibility: channels.Public, Text: "x", Recipient: "alice@town.example"}, nil); channels.AsSendError(err).Kind != channels.Permanent {
		t.Errorf("public: %v", err)
	}
}

func TestSendErrors(t *testing.T) {
	srv := startServers(t)
	snd := newSender(t, srv)
	out := channels.Outbound{MessageID: 1, Visibility: channels.Private, Text: "ok", Recipient: "bob@example.org"}
	for _, tc := range []struct {
		code int
		want channels.SendErrorKind
	}{{451, channels.Retryable}, {421, channels.Retryable}, {554, channels.Permanent}, {550, channels.Permanent}} {
		srv.FailNext(1, tc.code)
		_, err := snd.Send(context.Background(), out, nil)
		if se := channels.AsSendError(err); se.Kind != tc.want || se.Status != tc.code || strings.Contains(se.Reason, "bob@") ||
			!strings.Contains(se.Reason, "the resident's address") {
			t.Errorf("%d: %+v", tc.code, se)
		}
	}
	if _, err := snd.Send(context.Background(), out, nil); err != nil {
		t.Errorf("after the failures: %v", err)
	}
	srv.Revoke()
	if se := channels.AsSendError(func() error { _, err := snd.Send(context.Background(), out, nil); return err }()); se.Kind != channels.Unauthorised {
		t.Errorf("revoked: %+v", se)
	}
	// SMTP alone refuses the password (535), the mailbox not being asked.
	snd.Mailbox = nil
	if se := channels.AsSendError(func() error { _, err := snd.Send(context.Background(), out, nil); return err }()); se.Kind != channels.Unauthorised || se.Status != 535 {
		t.Errorf("535: %+v", se)
	}
	snd.Server.Addr = "127.0.0.1:1"
	if se := channels.AsSendError(func() error { _, err := snd.Send(context.Background(), out, nil); return err }()); se.Kind != channels.Retryable {
		t.Errorf("no server: %+v", se)
	}
}

func TestServerURLs(t *testing.T) {
	for _, tc := range []struct {
		url      string
		imap     bool
		addr     string
		security email.Security
	}{
		{"imaps://mail.example", true, "mail.example:993", email.ImplicitTLS},
		{"imap://127.0.0.1:1143", true, "127.0.0.1:1143", email.StartTLS},
		{"imap+plain://mail.example", true, "mail.example:143", email.Plain},
		{"smtps://mail.example", false, "mail.example:465", email.ImplicitTLS},
		{"smtp://127.0.0.1:1025", false, "127.0.0.1:1025", email.StartTLS},
	} {
		parse := email.ParseSMTPURL
		if tc.imap {
			parse = email.ParseIMAPURL
		}
		s, err := parse(tc.url)
		if err != nil || s.Addr != tc.addr || s.Security != tc.security {
			t.Errorf("%s: %+v %v", tc.url, s, err)
		}
	}
	for _, bad := range []string{"http://x", "imap://", "imap://u:p@host", "imap://host/INBOX", "::"} {
		if _, err := email.ParseIMAPURL(bad); err == nil {
			t.Errorf("%s taken", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, m := range []emailfake.Mail{
		{From: "a@example.org", Subject: "x", Text: "hello", MessageID: "1@x"},
		{From: "a@example.org", HTML: "<p>hi</p>", Attachments: []emailfake.File{{Name: "a.pdf", Type: "application/pdf", Data: []byte("%PDF")}}},
		{From: "mx@example.org", Text: "bounce", ContentType: "multipart/report; report-type=delivery-status"},
	} {
		f.Add(m.Bytes())
	}
	f.Add([]byte("From: a@b\r\n\r\nbody"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n--x--"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := email.Parse(raw)
		if err != nil {
			return
		}
		in, kind := m.Inbound(council, email.Cursor{UIDValidity: 1, UID: 1}, time.Now())
		if in == nil {
			if kind == "" {
				t.Error("no message and no reason")
			}
			return
		}
		if err := in.Validate(); err != nil {
			t.Errorf("an invalid message: %v", err)
		}
		if !strings.HasPrefix(in.DedupeKey, "email:") || in.Author.ExternalID != strings.ToLower(in.Author.ExternalID) {
			t.Errorf("keys %q %q", in.DedupeKey, in.Author.ExternalID)
		}
	})
}

func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"", "1:0", "42:17", "42:17:1796000000", "x", "1:", ":1", "4294967296:0", "1:2:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := email.ParseCursor(s)
		if err != nil {
			return
		}
		if c.String() != s {
			t.Errorf("ParseCursor(%q) writes back as %q", s, c.String())
		}
		if again, err := email.ParseCursor(c.String()); err != nil || again != c {
			t.Errorf("round trip of %q: %v %v", s, again, err)
		}
	})
}

func FuzzHTMLText(f *testing.F) {
	f.Add("<p>Hello<br>there &amp; <a href=\"https://x\">link</a></p>")
	f.Add("<table><tr><td><ul><li>x")
	f.Add("<pre>\n\n\n\n</pre>")
	f.Fuzz(func(t *testing.T, in string) {
		if out := email.HTMLText(in); strings.Contains(out, "\n\n\n") {
			t.Errorf("more than one blank line: %q", out)
		}
	})
}

// A reply with no message named answers the resident's own latest mail,
// never that of a resident whose address contains theirs.
func TestSendThreadsOnlyTheResidentsOwnMail(t *testing.T) {
	srv := startServers(t)
	snd := newSender(t, srv)
	bob := srv.Deliver(emailfake.Mail{From: "bob@example.org", Subject: "Bins on Elm Road", Text: "Missed"})
	srv.Deliver(emailfake.Mail{From: "jimbob@example.org", Subject: "My benefits claim", Text: "private"})
	srv.Deliver(emailfake.Mail{From: "Bob@Example.org.evil.example", Subject: "Other", Text: "x"})
	if _, err := snd.Send(context.Background(), channels.Outbound{MessageID: 1, Visibility: channels.Private, Text: "On it", Recipient: "BOB@example.org"}, nil); err != nil {
		t.Fatal(err)
	}
	if s := srv.Sent()[0]; s.InReplyTo != bob || s.Subject != "Re: Bins on Elm Road" {
		t.Errorf("bob's reply follows %q %q", s.InReplyTo, s.Subject)
	}
	// Nothing of the resident's own: a fresh thread.
	if _, err := snd.Send(context.Background(), channels.Outbound{MessageID: 2, Visibility: channels.Private, Text: "Hello", Recipient: "im@example.org"}, nil); err != nil {
		t.Fatal(err)
	}
	if s := srv.Sent()[1]; s.InReplyTo != "" || s.Subject != "Your message" {
		t.Errorf("im's reply follows %q %q", s.InReplyTo, s.Subject)
	}
}

// An acknowledgement says it is automatic (RFC 3834); an adviser's
// reply does not.
func TestSendMarksAutomaticReplies(t *testing.T) {
	srv := startServers(t)
	snd := newSender(t, srv)
	for i, auto := range []string{"acknowledgement", ""} {
		if _, err := snd.Send(context.Background(), channels.Outbound{MessageID: int64(i + 1), Visibility: channels.Private, Text: "Thanks",
			Recipient: "bob@example.org", Automatic: auto}, nil); err != nil {
			t.Fatal(err)
		}
		has := strings.Contains(string(srv.Sent()[i].Raw), "Auto-Submitted: auto-replied")
		if has != (auto != "") {
			t.Errorf("automatic %q: Auto-Submitted %v", auto, has)
		}
	}
}

// A hostile mail of deeply nested or countless parts is read quickly,
// what lies beyond the limits left unread, and still makes a case.
func TestParseBoundsNesting(t *testing.T) {
	for _, tc := range []struct {
		name string
		body func() string
	}{
		{"deep", func() string {
			var b strings.Builder
			const depth = 20000
			for i := range depth {
				fmt.Fprintf(&b, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i, i+1)
			}
			b.WriteString("--b20000\r\nContent-Type: text/plain\r\n\r\ndeep\r\n")
			return b.String()
		}},
		{"wide", func() string {
			var b strings.Builder
			for range 50000 {
				b.WriteString("--b0\r\nContent-Type: text/plain\r\n\r\nx\r\n")
			}
			return b.String() + "--b0--\r\n"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := "From: eve@example.org\r\nSubject: Nested\r\nMessage-ID: <n@example.org>\r\nMIME-Version: 1.0\r\n" +
				"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + tc.body()
			start := time.Now()
			m, err := email.Parse([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
			in, kind := m.Inbound(council, email.Cursor{UIDValidity: 1, UID: 1}, time.Now())
			if in == nil || !m.Incomplete || !strings.Contains(in.Text, "could not be read") || len(m.Attachments) > email.MaxParts {
				t.Errorf("ignored %q, incomplete %v, %d attachments", kind, m.Incomplete, len(m.Attachments))
			}
		})
	}
}

// HTML nested deeper than the HTML parser goes keeps its text.
func TestHTMLTextDeeplyNested(t *testing.T) {
	html := strings.Repeat("<div>", 600) + "Please fix the <b>streetlight</b>" + strings.Repeat("</div>", 600)
	if got := email.HTMLText(html); got != "Please fix the streetlight" {
		t.Errorf("text %q", got)
	}
}

// A mail with a malformed header line still makes a case with what can
// be read; a mail without any sender does not.
func TestParseMalformedHeader(t *testing.T) {
	raw := "From: Alice <alice@town.example>\r\nSubject: Bins\r\nthis line has no colon\r\nMessage-ID: <m@town.example>\r\n\r\nMissed again\r\n"
	m, err := email.Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	in, kind := m.Inbound(council, email.Cursor{UIDValidity: 1, UID: 1}, time.Now())
	if in == nil || in.Author.ExternalID != "alice@town.example" || !strings.Contains(in.Text, "Subject: Bins") ||
		!strings.Contains(in.Text, "could not be read") {
		t.Fatalf("ignored %q: %+v", kind, in)
	}
	if _, err := email.Parse([]byte("Subject: Bins\r\nno colon\r\n\r\nx")); !errors.Is(err, email.ErrNotAMessage) {
		t.Errorf("no sender: %v", err)
	}
}

// Two different mails under one Message-ID both count; a copy of one
// mail is one.
func TestDedupeKey(t *testing.T) {
	date := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	key := func(m emailfake.Mail) string {
		t.Helper()
		in, kind := parse(t, m)
		if in == nil {
			t.Fatalf("ignored %s", kind)
		}
		return in.DedupeKey
	}
	a := emailfake.Mail{From: "alice@town.example", Subject: "Bins", Text: "one", MessageID: "same@x.example", Date: date}
	b := emailfake.Mail{From: "bob@example.org", Subject: "Lights", Text: "two", MessageID: "same@x.example", Date: date}
	if key(a) == key(b) {
		t.Error("two mails reusing one Message-ID share a key")
	}
	copyOfA := a
	if key(a) != key(copyOfA) {
		t.Error("a copy of one mail has another key")
	}
}

// A renumbered mailbox is read again only from the last mail taken, by
// its INTERNALDATE, never from its first message; the overlap has the
// dedupe keys of before. A cursor written without a time still works.
func TestPollAfterUIDValidityChange(t *testing.T) {
	srv := startServers(t)
	p := newPoller(t, srv)
	now := time.Now().Truncate(time.Second)
	srv.Append((&emailfake.Mail{From: "old@example.org", Text: "2019", Date: now.AddDate(-7, 0, 0)}).Bytes(), now.AddDate(-7, 0, 0))
	srv.Append((&emailfake.Mail{From: "old@example.org", Text: "two days ago", Date: now.Add(-48 * time.Hour)}).Bytes(), now.Add(-48*time.Hour))
	last := emailfake.Mail{From: "alice@town.example", Text: "an hour ago", MessageID: "last@town.example", Date: now.Add(-time.Hour)}
	srv.Append(last.Bytes(), now.Add(-time.Hour))
	msgs, cursor := poll(t, p, fmt.Sprintf("%d:0", srv.UIDValidity()))
	if len(msgs) != 3 || !strings.HasSuffix(cursor, fmt.Sprintf(":3:%d", now.Add(-time.Hour).Unix())) {
		t.Fatalf("%d messages, cursor %s", len(msgs), cursor)
	}
	key := msgs[2].DedupeKey
	srv.Renumber()
	fresh := srv.Deliver(emailfake.Mail{From: "bob@example.org", Text: "new"})
	msgs, next := poll(t, p, cursor)
	if len(msgs) != 2 || msgs[0].DedupeKey != key || msgs[1].ExternalID != fresh || !strings.HasPrefix(next, fmt.Sprint(srv.UIDValidity())+":4:") {
		t.Errorf("after a new UIDVALIDITY: %d messages, cursor %s", len(msgs), next)
	}
	// A cursor of before, without a time: only unread mail of the last
	// week, as on a first poll.
	srv.Renumber()
	if msgs, _ := poll(t, p, "1:3"); len(msgs) != 3 {
		t.Errorf("old cursor after a new UIDVALIDITY: %d messages, want 3", len(msgs))
	}
}

// A first poll does not take years of unread mail: only the last week's.
func TestFirstPollTakesOnlyTheLastWeek(t *testing.T) {
	srv := startServers(t)
	old := time.Now().AddDate(-2, 0, 0)
	srv.Append((&emailfake.Mail{From: "old@example.org", Text: "never read", Date: old}).Bytes(), old)
	recent := srv.Deliver(emailfake.Mail{From: "alice@town.example", Text: "this week"})
	msgs, _ := poll(t, newPoller(t, srv), "")
	if len(msgs) != 1 || msgs[0].ExternalID != recent {
		t.Errorf("first poll took %d messages", len(msgs))
	}
}

// Large mails drain over several polls: one poll holds at most
// MaxPollBytes, and always at least one mail.
func TestPollCapsBytes(t *testing.T) {
	srv := startServers(t)
	big := strings.Repeat("x", email.MaxMessageSize-64<<10)
	for i := range 7 {
		srv.Deliver(emailfake.Mail{From: "carol@example.org", Text: fmt.Sprintf("%d %s", i, big)})
	}
	p := newPoller(t, srv)
	cursor := fmt.Sprintf("%d:0", srv.UIDValidity())
	var sizes []int
	for range 4 {
		msgs, next := poll(t, p, cursor)
		if next == cursor {
			break
		}
		sizes = append(sizes, len(msgs))
		cursor = next
	}
	if fmt.Sprint(sizes) != "[5 2]" {
		t.Errorf("polls took %v mails, want [5 2]", sizes)
	}
}

// A busy server's NO [UNAVAILABLE] to LOGIN is a failure to retry, not a
// refused password; a NO [AUTHENTICATIONFAILED] or a bare NO is.
func TestLoginTransientFailure(t *testing.T) {
	srv := startServers(t)
	p := newPoller(t, srv)
	for _, tc := range []struct {
		code    string
		refused bool
	}{{"UNAVAILABLE", false}, {"LIMIT", false}, {"", true}, {"AUTHORIZATIONFAILED", true}} {
		srv.FailLogins(1, tc.code)
		_, _, err := p.Poll(context.Background(), "5:1")
		if err == nil || errors.Is(err, email.ErrLoginRefused) != tc.refused || errors.Is(err, channels.ErrCredentialRefused) != tc.refused {
			t.Errorf("poll, NO [%s]: %v", tc.code, err)
		}
		srv.FailLogins(1, tc.code)
		_, err = newSender(t, srv).Send(context.Background(), channels.Outbound{MessageID: 1, Visibility: channels.Private, Text: "ok", Recipient: "bob@example.org"}, nil)
		want := channels.Retryable
		if tc.refused {
			want = channels.Unauthorised
		}
		if se := channels.AsSendError(err); se.Kind != want {
			t.Errorf("send, NO [%s]: %+v", tc.code, se)
		}
	}
	if _, _, err := p.Poll(context.Background(), ""); err != nil {
		t.Errorf("after the failures: %v", err)
	}
}

// imap:// and smtp:// never fall back to plain text when the server does
// not offer STARTTLS: the password is not sent.
func TestStartTLSRequired(t *testing.T) {
	srv := startServers(t)
	mb := mailboxOf(t, srv)
	mb.Server.Security = email.StartTLS
	_, _, err := (&email.Poller{Mailbox: mb, Account: council}).Poll(context.Background(), "")
	if !errors.Is(err, email.ErrNoStartTLS) || !strings.Contains(err.Error(), "imap+plain://") {
		t.Errorf("IMAP without STARTTLS: %v", err)
	}
	snd := newSender(t, srv)
	snd.Mailbox = nil
	snd.Server.Security = email.StartTLS
	_, err = snd.Send(context.Background(), channels.Outbound{MessageID: 1, Visibility: channels.Private, Text: "ok", Recipient: "bob@example.org"}, nil)
	if se := channels.AsSendError(err); se.Kind != channels.Retryable || !strings.Contains(se.Reason, "STARTTLS") {
		t.Errorf("SMTP without STARTTLS: %+v", se)
	}
	if srv.Logins() != 0 || srv.RefusedLogins() != 0 || len(srv.Sent()) != 0 {
		t.Errorf("%d logins, %d refused, %d sent", srv.Logins(), srv.RefusedLogins(), len(srv.Sent()))
	}
}

// With trusted_authserv_id, mail the council's own server found forged
// makes no case and is counted; genuine mail is taken; an
// Authentication-Results field from another authserv-id, which the
// sender may have written, is ignored; without the setting nothing is
// judged.
func TestForgedMail(t *testing.T) {
	trusted := email.Account{Slug: council.Slug, Address: council.Address, TrustedAuthservID: "mx.example-council.gov.uk"}
	for _, tc := range []struct {
		name   string
		fields []string
		want   string
	}{
		{"dmarc fail", []string{"mx.example-council.gov.uk; spf=pass smtp.mailfrom=x.example; dmarc=fail (p=none) header.from=town.example"}, email.IgnoredForged},
		{"spf and dkim fail", []string{"mx.example-council.gov.uk (Postfix); spf=softfail smtp.mailfrom=x; dkim=none"}, email.IgnoredForged},
		{"genuine", []string{"mx.example-council.gov.uk; spf=fail; dkim=pass header.d=town.example"}, ""},
		{"forged header below ours", []string{"mx.example-council.gov.uk; spf=pass; dkim=pass; dmarc=pass", "mx.example-council.gov.uk; dmarc=fail"}, ""},
		{"another authserv-id says pass", []string{"forger.example; spf=pass; dkim=pass", "MX.example-council.gov.uk; dmarc=fail"}, email.IgnoredForged},
		{"another authserv-id says fail", []string{"forger.example; dmarc=fail"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr strings.Builder
			for _, f := range tc.fields {
				hdr.WriteString("Authentication-Results: " + f + "\r\n")
			}
			raw := hdr.String() + string((&emailfake.Mail{From: "alice@town.example", Text: "hi"}).Bytes())
			m, err := email.Parse([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			in, kind := m.Inbound(trusted, email.Cursor{UIDValidity: 1, UID: 1}, time.Now())
			if kind != tc.want || (in == nil) != (tc.want != "") {
				t.Errorf("kind %q, want %q", kind, tc.want)
			}
			if in, _ := m.Inbound(council, email.Cursor{UIDValidity: 1, UID: 1}, time.Now()); in == nil {
				t.Error("judged without the setting")
			}
		})
	}
	// The poll counts what it skipped, by kind.
	srv := startServers(t)
	srv.Append([]byte("Authentication-Results: mx.example-council.gov.uk; dmarc=fail\r\n"+string((&emailfake.Mail{From: "alice@town.example", Text: "forged"}).Bytes())), time.Now())
	srv.Deliver(emailfake.Mail{From: "a@example.org", Text: "away", Header: map[string]string{"Auto-Submitted": "auto-replied"}})
	srv.Deliver(emailfake.Mail{From: "bob@example.org", Text: "genuine"})
	p := &email.Poller{Mailbox: mailboxOf(t, srv), Account: trusted}
	msgs, _, ignored, err := p.PollCounting(context.Background(), fmt.Sprintf("%d:0", srv.UIDValidity()))
	if err != nil || len(msgs) != 1 || ignored[email.IgnoredForged] != 1 || ignored[email.IgnoredAutoReply] != 1 {
		t.Errorf("%d messages, ignored %v, %v", len(msgs), ignored, err)
	}
}

func FuzzParseAuthResults(f *testing.F) {
	for _, s := range []string{"mx.example; spf=pass smtp.mailfrom=a@b; dkim=fail (bad sig) header.d=b; dmarc=fail",
		"mx (comment (nested)) 1; none", `"quoted"; spf/1=pass`, "", ";;=;", "a; b=c=d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ar, ok := email.ParseAuthResults(s)
		if !ok {
			return
		}
		if ar.AuthservID == "" || strings.ToLower(ar.AuthservID) != ar.AuthservID {
			t.Errorf("authserv-id %q", ar.AuthservID)
		}
		for m, rs := range ar.Results {
			if m == "" || len(rs) == 0 {
				t.Errorf("method %q results %v", m, rs)
			}
		}
		_ = ar.Forged()
	})
}

func FuzzSubject(f *testing.F) {
	for _, s := range []string{"Bins", "Re: Bins [C-2026-000042]", "RE:", "", "c-2026-1234567 x", "Fwd: C-2026-00001"} {
		f.Add(s, "Your reference is C-2026-000042.")
	}
	f.Fuzz(func(t *testing.T, subject, text string) {
		if ref := email.CaseReference(subject); ref != "" && (!strings.HasPrefix(ref, "C-") || strings.ToUpper(ref) != ref) {
			t.Errorf("CaseReference(%q) = %q", subject, ref)
		}
		got := email.Subject(subject, text)
		if !strings.HasPrefix(strings.ToLower(got), "re:") && got != "Your message" && !strings.HasPrefix(got, "Your message [") {
			t.Errorf("Subject(%q) = %q", subject, got)
		}
		if ref := email.CaseReference(got); ref == "" && (email.CaseReference(subject) != "" || email.CaseReference(text) != "") {
			t.Errorf("Subject(%q, %q) = %q lost the case reference", subject, text, got)
		}
		if again := email.Subject(got, text); strings.HasPrefix(strings.ToLower(got), "re:") && again != got {
			t.Errorf("Subject of %q adds to it: %q", got, again)
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	f.Add([]byte("From: Alice <alice@town.example>\r\nSubject: Bins\r\nMessage-ID: <a@b>\r\nReferences: <x@y> z@w\r\n\r\n"))
	f.Add([]byte("From: =?utf-8?q?Al=C3=AFce?= <a@b.example>\r\nDate: Tue, 1 Dec 2026 09:00:00 +0000\r\n\r\n"))
	f.Add([]byte("no header"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := email.ParseHeader(raw, int64(len(raw)))
		if err != nil {
			return
		}
		if !utf8.ValidString(m.Subject) || !utf8.ValidString(m.MessageID) || m.MessageID == "" || strings.ContainsAny(m.MessageID, " <>") {
			t.Errorf("subject %q, Message-ID %q", m.Subject, m.MessageID)
		}
		if m.From != nil && !strings.Contains(m.From.Address, "@") {
			t.Errorf("From %q", m.From.Address)
		}
		_ = m.Text()
	})
}
