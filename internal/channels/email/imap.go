package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"
	"github.com/emersion/go-imap/commands"

	"github.com/citizeninbox/inbox/internal/channels"
)

// ErrLoginRefused is the mail server refusing the account's username or
// password.
var ErrLoginRefused = errors.New("the mail server refused the username or password")

// ErrNoStartTLS is a server reached by imap:// or smtp:// that does not
// offer STARTTLS: the password is never sent in plain text.
var ErrNoStartTLS = errors.New("the server does not offer STARTTLS; use imaps:// (smtps://) or, for a local test server only, imap+plain:// (smtp+plain://)")

// Mailbox is how the driver reaches the council's mailbox over IMAP.
type Mailbox struct {
	Server   Server
	Username string
	Password string
	// Name is the mailbox read (INBOX).
	Name string
	// TLS configures TLS; nil verifies the server's certificate against
	// the system's roots for Server.Host.
	TLS *tls.Config
	// Timeout bounds each command (30 s when zero).
	Timeout time.Duration
}

// imapConn is one logged-in connection, with the mailbox updates the
// server sends (for IDLE).
type imapConn struct {
	c    *client.Client
	wake chan struct{} // signalled when the server reports new mail
	stop func() bool
}

func (mb *Mailbox) tlsConfig() *tls.Config {
	if mb.TLS != nil {
		return mb.TLS
	}
	return &tls.Config{ServerName: mb.Server.Host, MinVersion: tls.VersionTLS12}
}

// connect dials, protects and logs in; the connection is closed when ctx
// ends.
func (mb *Mailbox) connect(ctx context.Context) (*imapConn, error) {
	d := net.Dialer{Timeout: 15 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", mb.Server.Addr)
	if err != nil {
		return nil, fmt.Errorf("email: IMAP server %s: %w", mb.Server.Addr, err)
	}
	if mb.Server.Security == ImplicitTLS {
		conn = tls.Client(conn, mb.tlsConfig())
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	timeout := mb.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	c, err := client.New(conn)
	if err != nil {
		stop()
		_ = conn.Close()
		return nil, fmt.Errorf("email: IMAP server %s: greeting: %w", mb.Server.Addr, err)
	}
	c.ErrorLog = log.New(io.Discard, "", 0)
	c.Timeout = timeout
	ic := &imapConn{c: c, wake: make(chan struct{}, 1), stop: stop}
	updates := make(chan client.Update, 16)
	c.Updates = updates
	go func() {
		for {
			select {
			case u := <-updates:
				if _, ok := u.(*client.MailboxUpdate); ok {
					select {
					case ic.wake <- struct{}{}:
					default:
					}
				}
			case <-c.LoggedOut():
				return
			}
		}
	}()
	if mb.Server.Security == StartTLS {
		// Never fall back to plain text: whoever sits between could
		// strip STARTTLS from the capabilities and read the password.
		if ok, _ := c.SupportStartTLS(); !ok {
			ic.close()
			return nil, fmt.Errorf("email: IMAP server %s: %w", mb.Server.Addr, ErrNoStartTLS)
		}
		if err := c.StartTLS(mb.tlsConfig()); err != nil {
			ic.close()
			return nil, fmt.Errorf("email: IMAP server %s: STARTTLS: %w", mb.Server.Addr, err)
		}
	}
	if err := login(c, mb.Username, mb.Password); err != nil {
		ic.close()
		return nil, err
	}
	return ic, nil
}

// login logs in with LOGIN. Only a NO saying the credentials are wrong
// (AUTHENTICATIONFAILED, AUTHORIZATIONFAILED, or no response code at all)
// is ErrLoginRefused; a NO [UNAVAILABLE], [LIMIT] and the like is a
// failure to try again (RFC 5530).
func login(c *client.Client, username, password string) error {
	if c.State() != imap.NotAuthenticatedState {
		return errors.New("email: IMAP LOGIN: the connection is already logged in")
	}
	if ok, _ := c.Support("LOGINDISABLED"); ok {
		return errors.New("email: IMAP LOGIN: the server refuses LOGIN on this connection")
	}
	status, err := c.Execute(&commands.Login{Username: username, Password: password}, nil)
	if err != nil {
		return fmt.Errorf("email: IMAP LOGIN: %w", err)
	}
	if err := status.Err(); err != nil {
		if loginRefused(status) {
			return fmt.Errorf("email: IMAP LOGIN: %w (%w; %w)", ErrLoginRefused, channels.ErrCredentialRefused, err)
		}
		return fmt.Errorf("email: IMAP LOGIN: the server answered NO [%s]: %w", status.Code, err)
	}
	c.SetState(imap.AuthenticatedState, nil)
	// The capabilities change with the login (IDLE, say).
	if _, err := c.Capability(); err != nil {
		return fmt.Errorf("email: IMAP CAPABILITY: %w", err)
	}
	return nil
}

// loginRefused says a failed LOGIN's status response refuses the
// credentials.
func loginRefused(status *imap.StatusResp) bool {
	switch strings.ToUpper(string(status.Code)) {
	case "", "AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED":
		return status.Type == imap.StatusRespNo
	}
	return false
}

// close logs out, or drops the connection when that does not work.
func (ic *imapConn) close() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ic.c.Logout()
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		_ = ic.c.Terminate()
	}
	ic.stop()
}

// idle waits in IDLE until the server reports new mail, for at most d
// or until ctx ends. It reports whether mail came.
func (ic *imapConn) idle(ctx context.Context, d time.Duration) (bool, error) {
	// IDLE may run longer than one command's timeout.
	timeout := ic.c.Timeout
	ic.c.Timeout = 0
	defer func() { ic.c.Timeout = timeout }()
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- ic.c.Idle(stop, &client.IdleOptions{LogoutTimeout: -1}) }()
	t := time.NewTimer(d)
	defer t.Stop()
	woke := false
	select {
	case <-ic.wake:
		woke = true
	case <-t.C:
	case <-ctx.Done():
	case err := <-done:
		return false, err
	}
	close(stop)
	err := <-done
	if ctx.Err() != nil {
		return woke, ctx.Err()
	}
	return woke, err
}
