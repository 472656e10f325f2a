package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/email"
	"github.com/citizeninbox/inbox/internal/channels/email/emailfake"
)

// netsim plays residents on email: their mail lands in the council's
// IMAP mailbox, where the inbox's poller reads it; the council's replies
// through the SMTP server reach the resident, who answers in the thread.
func TestRunEmail(t *testing.T) {
	imapAddr, smtpAddr := freeAddr(t), freeAddr(t)
	imapServer, _ := email.ParseIMAPURL("imap+plain://" + imapAddr)
	smtpServer, _ := email.ParseSMTPURL("smtp+plain://" + smtpAddr)
	mb := &email.Mailbox{Server: imapServer, Username: emailfake.Username, Password: emailfake.Password, Name: "INBOX", Timeout: 5 * time.Second}
	poller := &email.Poller{Mailbox: mb, Account: email.Account{Slug: "council-email", Address: emailfake.Address}}
	sender := &email.Sender{Server: smtpServer, Username: emailfake.Username, Password: emailfake.Password, From: emailfake.Address, Mailbox: mb}

	// The inbox's side: poll, and answer the first two mails; netsim is
	// stopped once a resident's answer to the council has come.
	simCtx, stopSim := context.WithTimeout(t.Context(), 20*time.Second)
	defer stopSim()
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	var got []channels.Inbound
	var wg sync.WaitGroup
	wg.Go(func() {
		cursor := ""
		for ctx.Err() == nil {
			msgs, next, err := poller.Poll(ctx, cursor)
			if err == nil {
				cursor = next
				for i, m := range msgs {
					mu.Lock()
					got = append(got, m)
					n := len(got)
					mu.Unlock()
					if strings.HasSuffix(m.InReplyTo, "@example-council.gov.uk") {
						stopSim()
					}
					if n <= 2 {
						_, _ = sender.Send(ctx, channels.Outbound{MessageID: int64(n*10 + i), Visibility: channels.Private,
							Text: "Thanks, we are on it.", Recipient: m.Author.ExternalID, InReplyTo: m.ExternalID}, nil)
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })

	var out, errOut bytes.Buffer
	t.Setenv(emailfake.UsernameEnv, "")
	t.Setenv(emailfake.PasswordEnv, "")
	err := run(simCtx, []string{"-network", "email", "-listen", "127.0.0.1:0", "-imap-listen", imapAddr, "-smtp-listen", smtpAddr,
		"-wait", "0", "-interval", "100ms", "-answer-delay", "50ms", "-count", "2"}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v (%s)\n%s", err, errOut.String(), out.String())
	}
	if simCtx.Err() != context.Canceled {
		t.Errorf("netsim was not stopped by an answer to the council (%v)", simCtx.Err())
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 2 {
		t.Fatalf("the inbox read %d mails, want a mail and an answer:\n%s", len(got), out.String())
	}
	for i, m := range got {
		if m.Channel != "email" || m.Visibility != channels.Private || !strings.HasSuffix(m.Author.ExternalID, "@"+emailfake.ResidentsDomain) {
			t.Errorf("mail %d: %+v", i, m)
		}
	}
	// Some resident's answer answers the council's mail to them.
	answered := false
	for _, m := range got[1:] {
		answered = answered || strings.HasSuffix(m.InReplyTo, "@example-council.gov.uk")
	}
	if !answered {
		t.Errorf("no answer to the council's mail among %+v", got[1:])
	}
	for _, line := range []string{"fake Email API on http://127.0.0.1:", "login check OK", "← council DMed @", "netsim stopped"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}
