package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels/email"
	"github.com/citizeninbox/inbox/internal/channels/email/emailfake"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/poll"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/testenv"
)

// The email driver on the whole server: the council's mailbox on a real
// IMAP server and its replies through a real SMTP server, both started
// here.
const emailAccount = "council-email"

// withEmail adds the council's address, polled every 200 ms (waiting in
// IDLE up to a second), on srv.
func withEmail(srv *emailfake.Server) harnessOption {
	return func(o *server.Options, h *harness) {
		o.Drivers = drivers(h.t, email.Driver{})
		s := email.Settings{Address: emailfake.Address, IMAPURL: srv.IMAPURL(), SMTPURL: srv.SMTPURL(),
			Username: emailfake.Username, Password: emailfake.Password, Mailbox: "INBOX",
			PollEvery: 200 * time.Millisecond, IdleFor: time.Second}
		file := *o.File
		file.ChannelAccounts = append(append([]config.ChannelAccount(nil), file.ChannelAccounts...), config.ChannelAccount{
			Slug: emailAccount, Channel: "email", Name: emailfake.Address, Team: "contact-centre", Settings: s})
		o.File = &file
		o.Poll = poll.Config{Lease: 6 * time.Second}
		h.t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if b, err := bus.Connect(ctx, testenv.NATSURL(), o.Names); err == nil {
				poll.DeleteBuckets(ctx, b)
				_ = b.Close()
			}
		})
	}
}

func startMailServers(t *testing.T) *emailfake.Server {
	t.Helper()
	srv, err := emailfake.Start("127.0.0.1:0", "127.0.0.1:0", emailfake.Username, emailfake.Password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// A resident's mail makes a private case, its HTML as text and its
// attachment listed; auto-replies and bounces make nothing, nor do
// repeated polls; a reply reaches the SMTP server addressed to the
// resident with In-Reply-To and References; one too long is refused; the
// resident's answer joins the case; a restart between two polls neither
// skips nor repeats, and a new UIDVALIDITY repeats nothing.
func TestEmailEndToEnd(t *testing.T) {
	srv := startMailServers(t)
	h := newHarness(t, withEmail(srv))

	alice := srv.Deliver(emailfake.Mail{From: "alice@town.example", FromName: "Alice Example", Subject: "Bins on Elm Road",
		HTML:        `<p>The bins were <b>missed</b> again.</p><p><a href="https://photos.example/bins">photo</a></p>`,
		Attachments: []emailfake.File{{Name: "bins.jpg", Type: "image/jpeg", Data: make([]byte, 3000)}}})
	srv.Deliver(emailfake.Mail{From: "carol@example.org", Subject: "Out of office", Text: "I am away", Header: map[string]string{"Auto-Submitted": "auto-replied"}})
	srv.Deliver(emailfake.Mail{From: "MAILER-DAEMON@mx.example.org", Subject: "Undelivered", Text: "failed", ContentType: "multipart/report; report-type=delivery-status"})
	bob := srv.Deliver(emailfake.Mail{From: "bob@example.org", Subject: "Dog loose", Text: "My neighbour's dog is loose"})
	aliceCase, bobCase := h.waitCaseOf(alice), h.waitCaseOf(bob)
	if aliceCase == bobCase {
		t.Fatal("two residents' mail made one case")
	}
	c := h.caseDetail(aliceCase)
	if m := c.Messages[0]; m.Visibility != "private" ||
		m.Body != "Subject: Bins on Elm Road\n\nThe bins were missed again.\n\nphoto (https://photos.example/bins)\n\n[attachment: bins.jpg, 3 KB]" {
		t.Errorf("Alice's mail %q (%s)", m.Body, m.Visibility)
	}
	if c.Contact.ExternalID != "alice@town.example" {
		t.Errorf("Alice's case is %+v's", c.Contact)
	}
	logins := srv.Logins()
	h.eventually("more polls", func() bool { return srv.Logins() > logins+3 })
	if n := h.inbound(); n != 2 {
		t.Errorf("%d inbound messages after repeated polls, want 2", n)
	}
	if n := srv.Seen(); n != 0 {
		t.Errorf("the inbox marked %d messages \\Seen", n)
	}

	reply := h.reply(aliceCase, "private", "Thanks Alice, the crew will come back today.")
	got := h.waitDelivery(aliceCase, reply.ID)
	if got.DeliveryStatus != "sent" || len(got.ExternalIDs) != 1 {
		t.Fatalf("reply %+v", got)
	}
	sent := srv.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d mails sent, want 1", len(sent))
	}
	if s := sent[0]; s.To != "alice@town.example" || s.From != emailfake.Address || s.InReplyTo != alice ||
		len(s.References) != 1 || s.References[0] != alice || s.MessageID != got.ExternalIDs[0] ||
		!strings.HasPrefix(s.Subject, "Re: Bins on Elm Road") || s.Text != "Thanks Alice, the crew will come back today." {
		t.Errorf("the reply reached the SMTP server as %+v", s)
	}

	// Over the limit: refused with the count, nothing sent.
	code, raw := h.api(http.MethodPost, fmt.Sprintf("/cases/%d/replies", aliceCase),
		map[string]string{"text": strings.Repeat("a", email.MaxTextLength+1), "visibility": "private"})
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(raw), "text") {
		t.Errorf("an over-long reply answered %d %s", code, raw)
	}

	// Alice answers the council's mail: her case.
	answer := srv.Deliver(emailfake.Mail{From: "alice@town.example", Subject: "Re: Bins on Elm Road", Text: "Thank you!\n\n> Thanks Alice",
		InReplyTo: sent[0].MessageID, References: []string{alice, sent[0].MessageID}})
	if got := h.waitCaseOf(answer); got != aliceCase {
		t.Errorf("Alice's answer went to case %d, not %d", got, aliceCase)
	}

	// Restart between two polls: from the committed cursor.
	h.stop()
	fetched := srv.FetchedBodies()
	later := srv.Deliver(emailfake.Mail{From: "bob@example.org", Subject: "Re: Dog loose", Text: "It's back home now."})
	h.start()
	if got := h.waitCaseOf(later); got != bobCase {
		t.Errorf("Bob's second mail went to case %d, not %d", got, bobCase)
	}
	if n := h.inbound(); n != 4 {
		t.Errorf("%d inbound messages after the restart, want 4", n)
	}
	if n := srv.FetchedBodies() - fetched; n != 1 {
		t.Errorf("the restarted server fetched %d messages, want the 1 new one", n)
	}

	// The server renumbers the mailbox: read again, nothing twice.
	srv.Renumber()
	renumbered := srv.Deliver(emailfake.Mail{From: "dan@example.org", Subject: "Streetlight", Text: "Out on Park Avenue"})
	h.waitCaseOf(renumbered)
	time.Sleep(time.Second)
	if n := h.inbound(); n != 5 {
		t.Errorf("%d inbound messages after a new UIDVALIDITY, want 5", n)
	}
}

// Two replicas never poll the mailbox at once, and the second takes over
// when the first stops.
func TestEmailPollingTwoReplicas(t *testing.T) {
	srv := startMailServers(t)
	h := newHarness(t, withEmail(srv))
	first := srv.Deliver(emailfake.Mail{From: "alice@town.example", Subject: "Fly-tipping", Text: "Behind the shops"})
	h.waitCaseOf(first)

	h.replica(nil)
	var ids []string
	for i := range 4 {
		ids = append(ids, srv.Deliver(emailfake.Mail{From: "bob@example.org", Subject: fmt.Sprintf("Bins, week %d", i+1), Text: "Missed"}))
		time.Sleep(300 * time.Millisecond)
	}
	for _, id := range ids {
		h.waitCaseOf(id)
	}
	time.Sleep(2 * time.Second)
	h.stop()
	later := srv.Deliver(emailfake.Mail{From: "alice@town.example", Subject: "Graffiti", Text: "On the bridge"})
	h.eventually("the other replica polls the mailbox", func() bool {
		return h.count(`SELECT count(*) FROM messages WHERE external_id = ?`, later) == 1
	})
	if n := srv.Overlaps(); n != 0 {
		t.Errorf("%d polls of the mailbox while another was running", n)
	}
	if n := h.inbound(); n != 6 {
		t.Errorf("%d inbound messages, want 6", n)
	}
}

// A password the servers refuse makes the account unhealthy: the reply
// waits, neither failed nor retried.
func TestEmailRefusedPasswordMakesTheAccountUnhealthy(t *testing.T) {
	srv := startMailServers(t)
	h := newHarness(t, withEmail(srv))
	id := srv.Deliver(emailfake.Mail{From: "alice@town.example", Subject: "Pothole", Text: "Station Road"})
	caseID := h.waitCaseOf(id)
	if a := h.accountHealth(emailAccount); !a.Healthy {
		t.Fatalf("before: %+v", a)
	}
	srv.Revoke()
	reply := h.reply(caseID, "private", "Thanks, reported.")
	h.eventually("the account marked unhealthy", func() bool { return !h.accountHealth(emailAccount).Healthy })
	if a := h.accountHealth(emailAccount); !strings.Contains(a.Reason, "refused the username or password") || a.RepliesWaiting != 1 {
		t.Errorf("unhealthy account %+v, want the server's reason and one reply waiting", a)
	}
	var status string
	h.direct.Raw(`SELECT delivery_status FROM messages WHERE id = ?`, reply.ID).Scan(&status)
	if status != "queued" {
		t.Errorf("the reply is %q while the password is refused, want queued", status)
	}
	if len(srv.Sent()) != 0 {
		t.Error("a mail went out with a refused password")
	}
}

// A resident's mail naming a case's reference in its subject joins that
// case, even with another case of theirs open, and reopens it.
func TestEmailCaseReferenceInTheSubjectThreads(t *testing.T) {
	srv := startMailServers(t)
	h := newHarness(t, withEmail(srv))
	first := srv.Deliver(emailfake.Mail{From: "alice@town.example", Subject: "Bins on Elm Road", Text: "Missed"})
	firstCase := h.waitCaseOf(first)
	ref := h.caseDetail(firstCase).Reference
	if code, raw := h.api(http.MethodPut, fmt.Sprintf("/cases/%d/status", firstCase), map[string]string{"status": "resolved"}); code != http.StatusOK {
		t.Fatalf("resolve: %d %s", code, raw)
	}
	other := srv.Deliver(emailfake.Mail{From: "alice@town.example", Subject: "Pothole", Text: "Station Road"})
	otherCase := h.waitCaseOf(other)
	if otherCase == firstCase {
		t.Fatal("a mail without a reference joined the resolved case")
	}
	// A new mail, answering nothing, naming the first case.
	again := srv.Deliver(emailfake.Mail{From: "alice@town.example", Subject: "Still missed (" + strings.ToLower(ref) + ")", Text: "They never came"})
	if got := h.waitCaseOf(again); got != firstCase {
		t.Errorf("the mail naming %s went to case %d, not %d", ref, got, firstCase)
	}
	if c := h.caseDetail(firstCase); c.Status != "open" {
		t.Errorf("the named case is %s, want open again", c.Status)
	}
	// Another resident naming Alice's case gets a case of their own.
	bob := srv.Deliver(emailfake.Mail{From: "bob@example.org", Subject: "About " + ref, Text: "Mine too"})
	if got := h.waitCaseOf(bob); got == firstCase || got == otherCase {
		t.Errorf("Bob's mail naming Alice's case went to her case %d", got)
	}
}

// A login the IMAP server refuses to a poll marks the account unhealthy
// before any reply is tried; the first poll that logs in again marks it
// healthy.
func TestEmailRefusedLoginToAPollMarksTheAccountUnhealthy(t *testing.T) {
	srv := startMailServers(t)
	h := newHarness(t, withEmail(srv))
	h.waitCaseOf(srv.Deliver(emailfake.Mail{From: "alice@town.example", Subject: "Pothole", Text: "Station Road"}))
	srv.Revoke()
	h.eventually("the account marked unhealthy by a poll", func() bool { return !h.accountHealth(emailAccount).Healthy })
	if a := h.accountHealth(emailAccount); !strings.Contains(a.Reason, "refused the username or password") {
		t.Errorf("unhealthy account %+v, want the server's reason", a)
	}
	srv.Reinstate()
	h.eventually("the account healthy again", func() bool { return h.accountHealth(emailAccount).Healthy })
}

// withEmailAcknowledgement acknowledges each new email case with the
// standard template, as the example configuration's council-email does.
func withEmailAcknowledgement() harnessOption {
	return func(o *server.Options, _ *harness) {
		file := *o.File
		file.ChannelAccounts = append([]config.ChannelAccount(nil), file.ChannelAccounts...)
		for i := range file.ChannelAccounts {
			if file.ChannelAccounts[i].Slug == emailAccount {
				file.ChannelAccounts[i].Acknowledgement = &config.AccountAcknowledgement{Template: "standard", Period: "24h"}
			}
		}
		o.File = &file
	}
}

// An acknowledgement goes out marked as an automatic reply (RFC 3834),
// so the resident's autoresponder does not answer it; an adviser's
// reply is not marked.
func TestEmailAcknowledgementIsAutoSubmitted(t *testing.T) {
	srv := startMailServers(t)
	h := newHarness(t, withRules(false), withEmail(srv), withEmailAcknowledgement())
	alice := srv.Deliver(emailfake.Mail{From: "alice@town.example", Subject: "Bins on Elm Road", Text: "Missed again"})
	c := h.waitCaseOf(alice)
	h.eventually("the acknowledgement", func() bool { return len(srv.Sent()) == 1 })
	if ack := srv.Sent()[0]; ack.To != "alice@town.example" || ack.InReplyTo != alice ||
		!strings.Contains(string(ack.Raw), "\r\nAuto-Submitted: auto-replied\r\n") {
		t.Errorf("the acknowledgement went out as %+v\n%s", ack, ack.Raw)
	}
	reply := h.reply(c, "private", "We will look today.")
	h.waitDelivery(c, reply.ID)
	if sent := srv.Sent(); len(sent) != 2 || strings.Contains(string(sent[1].Raw), "Auto-Submitted") {
		t.Errorf("the adviser's reply is marked automatic (%d sent)", len(sent))
	}
}
