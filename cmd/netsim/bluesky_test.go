package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/bluesky"
	"github.com/citizeninbox/inbox/internal/channels/bluesky/blueskyfake"
)

// syncBuffer is a bytes.Buffer safe to write from one goroutine while
// another reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// netsim plays Bluesky residents for the driver's own poller and client,
// standing in for the inbox: it waits for the inbox to sign in, keeps a
// mention and direct messages in the fake for the poll, and residents
// answer the council's reply in its thread and its direct message
// privately.
func TestRunBluesky(t *testing.T) {
	t.Setenv(blueskyfake.HandleEnv, "")
	t.Setenv(blueskyfake.AppPasswordEnv, "")
	addr := freeAddr(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*patience)
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-network", "bluesky", "-listen", addr, "-wait", "0", "-interval", "1s", "-count", "3",
			"-exit-after-count", "-answer-delay", "10ms"}, &out, &errOut)
	}()

	// The inbox: the driver polling the fake, answering the first public
	// and the first private message.
	c := &bluesky.Client{BaseURL: "http://" + addr, Handle: blueskyfake.Handle, AppPassword: blueskyfake.DemoAppPassword}
	p := &bluesky.Poller{Client: c, Slug: "council-bluesky"}
	var got []channels.Inbound
	var replied []string
	repliedPublic, repliedPrivate := false, false
	cursor := ""
	var runErr error
poll:
	for {
		select {
		case runErr = <-done:
			break poll
		case <-time.After(50 * time.Millisecond):
		}
		msgs, next, err := p.Poll(ctx, cursor)
		if err != nil {
			continue // the fake is not listening yet
		}
		cursor = next
		got = append(got, msgs...)
		for _, m := range msgs {
			out := channels.Outbound{Visibility: m.Visibility, Text: "Thanks, we are on it."}
			switch {
			case m.Visibility == channels.Public && !repliedPublic:
				out.InReplyTo, repliedPublic = m.ExternalID, true
			case m.Visibility == channels.Private && !repliedPrivate:
				out.Recipient, repliedPrivate = m.Author.ExternalID, true
			default:
				continue
			}
			ids, err := c.Send(ctx, out, nil)
			if err != nil {
				t.Fatalf("reply to %s: %v", m.ExternalID, err)
			}
			replied = append(replied, ids...)
		}
	}
	if runErr != nil {
		t.Fatalf("run: %v (%s)\n%s", runErr, errOut.String(), out.String())
	}
	said := out.String()
	if len(replied) != 2 {
		t.Fatalf("%d replies sent, want 2:\n%s", len(replied), said)
	}
	for _, want := range []string{"fake Bluesky API on http://" + addr, "sign-in check OK", "mention from @sarahjenkins",
		"DM from @dave_okafor", "← council replied to @sarahjenkins in thread", "← council DMed @dave_okafor",
		"reply from @sarahjenkins to " + replied[0], "follow-up DM from @dave_okafor", "[waiting for the inbox's poll]"} {
		if !strings.Contains(said, want) {
			t.Errorf("netsim did not print %q:\n%s", want, said)
		}
	}
	var public, private int
	for _, m := range got {
		switch m.Visibility {
		case channels.Public:
			public++
		case channels.Private:
			private++
		}
	}
	// A mention and Sarah's answer; Dave's message and his answer (his
	// follow-up, the last event, may come after the fake stopped).
	if public != 2 || private < 2 || len(replied) != 2 {
		t.Fatalf("%d public and %d private messages polled, %d replies; want 2, 2 or 3, and 2:\n%s", public, private, len(replied), said)
	}
	for _, m := range got {
		if m.Visibility == channels.Public && m.InReplyTo != "" && (m.InReplyTo != replied[0] || m.ConversationID != got[0].ExternalID) {
			t.Errorf("Sarah's answer %+v, want it under the council's reply %s in thread %s", m, replied[0], got[0].ExternalID)
		}
	}
}

// The inbox signing in with another app password stops netsim with a
// clear reason.
func TestRunBlueskyWrongAppPassword(t *testing.T) {
	addr := freeAddr(t)
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(t.Context(), []string{"-network", "bluesky", "-listen", addr, "-wait", "0", "-app-password", "right",
			"-signin-wait", "5s"}, &out, &errOut)
	}()
	c := &bluesky.Client{BaseURL: "http://" + addr, Handle: blueskyfake.Handle, AppPassword: "wrong"}
	for {
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "app password") {
				t.Errorf("run: %v, want the refused app password named", err)
			}
			return
		case <-time.After(50 * time.Millisecond):
			_, _ = c.DID(t.Context())
		}
	}
}
