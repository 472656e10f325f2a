package emailfake_test

import (
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/email"
	"github.com/citizeninbox/inbox/internal/channels/email/emailfake"
	"github.com/citizeninbox/inbox/internal/netsim"
)

// A resident's mail lands in the mailbox; the council's reply comes back
// as a private send to the cast's id; the resident's answer answers it in
// the thread.
func TestSimulation(t *testing.T) {
	t.Setenv(emailfake.UsernameEnv, "")
	t.Setenv(emailfake.PasswordEnv, "")
	n := emailfake.NewSimulation()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	n.Flags(fs)
	if err := fs.Parse([]string{"-imap-listen", "127.0.0.1:0", "-smtp-listen", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Check(); err != nil {
		t.Fatal(err)
	}
	if n.Name() != "email" || n.DefaultWebhook() != "" || n.Styles() != nil {
		t.Errorf("%s %q %v", n.Name(), n.DefaultWebhook(), n.Styles())
	}
	sends := make(chan netsim.Sent, 4)
	n.API(func(s netsim.Sent) { sends <- s })
	t.Cleanup(func() { _ = n.Close() })
	srv := n.Servers()

	sarah := netsim.Resident{ID: "2200000000000000001", Handle: "sarahjenkins", Name: "Sarah Jenkins"}
	if err := n.Deliver(n.Message("1800001", sarah, "Bins not collected on Elm Road this week")); err != nil {
		t.Fatal(err)
	}
	imapServer, _ := email.ParseIMAPURL(srv.IMAPURL())
	smtpServer, _ := email.ParseSMTPURL(srv.SMTPURL())
	mb := &email.Mailbox{Server: imapServer, Username: emailfake.Username, Password: emailfake.Password, Name: "INBOX"}
	p := &email.Poller{Mailbox: mb, Account: email.Account{Slug: "council-email", Address: emailfake.Address}}
	msgs, cursor, err := p.Poll(context.Background(), "")
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%v %v", msgs, err)
	}
	m := msgs[0]
	if m.Author.ExternalID != "sarahjenkins@residents.example" || m.Author.DisplayName != "Sarah Jenkins" ||
		!strings.HasPrefix(m.Text, "Subject: Bins not collected on Elm Road this…\n\nBins not collected on Elm Road this week") {
		t.Errorf("mail %+v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	said, err := n.Handshake(ctx, nil, "")
	if err != nil || !strings.Contains(said, "login check OK") {
		t.Errorf("handshake %q %v", said, err)
	}

	snd := &email.Sender{Server: smtpServer, Username: emailfake.Username, Password: emailfake.Password, From: emailfake.Address, Mailbox: mb}
	ids, err := snd.Send(ctx, channels.Outbound{MessageID: 1, Visibility: channels.Private, Text: "Thanks Sarah", Recipient: m.Author.ExternalID, InReplyTo: m.ExternalID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-sends:
		if s.Visibility != channels.Private || s.Recipient != sarah.ID || s.ID != ids[0] || s.Text != "Thanks Sarah" {
			t.Errorf("send %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the council's mail was not heard")
	}
	if err := n.Deliver(n.Message("1800002", sarah, "Thank you!")); err != nil {
		t.Fatal(err)
	}
	msgs, _, err = p.Poll(context.Background(), cursor)
	if err != nil || len(msgs) != 1 || msgs[0].InReplyTo != ids[0] || !strings.HasPrefix(msgs[0].Text, "Subject: Re: Bins not collected") {
		t.Errorf("answer %+v %v", msgs, err)
	}
}
