package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/twilio"
	"github.com/citizeninbox/inbox/internal/channels/twilio/twiliofake"
)

const smsToken = "test-twilio-token"

// smsInbox stands in for the inbox's Twilio webhook: it checks the
// signature over the URL it serves, as the inbox does over its public URL,
// and hands the test what each accepted post parses into.
func smsInbox(t *testing.T, token string) (chan []channels.Inbound, string, string) {
	received := make(chan []channels.Inbound, 100)
	ops := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(ops.Close)
	var hookURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		params, _ := url.ParseQuery(string(body))
		if err := twilio.CheckSignature(token, hookURL, params, r.Header.Get(twilio.SignatureHeader)); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		msgs, _, err := twilio.Parse(body, twilio.Account{Slug: "council-sms", AccountSID: twiliofake.DefaultAccountSID, Number: "+447700900002"}, time.Now())
		if err != nil {
			t.Errorf("parse %s: %v", body, err)
		}
		if len(msgs) > 0 {
			received <- msgs
		}
		w.Header().Set("Content-Type", "text/xml")
		_, _ = io.WriteString(w, twilio.EmptyTwiML)
	}))
	t.Cleanup(srv.Close)
	hookURL = srv.URL + "/webhooks/twilio/council-sms"
	return received, hookURL, ops.URL + "/readyz"
}

func nextSMS(t *testing.T, received chan []channels.Inbound) channels.Inbound {
	t.Helper()
	select {
	case msgs := <-received:
		if len(msgs) != 1 {
			t.Fatalf("%d messages in one post", len(msgs))
		}
		return msgs[0]
	case <-time.After(patience):
		t.Fatal("no SMS arrived")
	}
	return channels.Inbound{}
}

// netsim plays SMS residents: texts signed as Twilio signs them, each
// resident with one number, answering what the council texts them.
func TestRunSMS(t *testing.T) {
	received, hook, ready := smsInbox(t, smsToken)
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"-network", "twilio", "-listen", "127.0.0.1:0", "-webhook", hook, "-ready", ready,
		"-auth-token", smsToken, "-interval", "5ms", "-count", "3", "-exit-after-count"}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v (%s)\n%s", err, errOut.String(), out.String())
	}
	var msgs []channels.Inbound
	for range 3 {
		msgs = append(msgs, nextSMS(t, received))
	}
	for i, m := range msgs {
		if m.Channel != "sms" || m.Visibility != channels.Private || !strings.HasPrefix(m.Author.ExternalID, "+447700900") || m.Text == "" {
			t.Errorf("text %d: %+v", i, m)
		}
	}
	// The third event is the second resident's follow-up: the same number.
	if msgs[2].Author.ExternalID != msgs[1].Author.ExternalID || msgs[0].Author.ExternalID == msgs[1].Author.ExternalID {
		t.Errorf("numbers %s %s %s: want the follow-up from the second resident's number",
			msgs[0].Author.ExternalID, msgs[1].Author.ExternalID, msgs[2].Author.ExternalID)
	}
	for _, line := range []string{"fake Twilio SMS API on http://127.0.0.1:", "signature check OK", "netsim stopped"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

func TestRunSMSRefusesAnotherToken(t *testing.T) {
	received, hook, ready := smsInbox(t, "the-inbox-token")
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"-network", "twilio", "-listen", "127.0.0.1:0", "-webhook", hook, "-ready", ready,
		"-auth-token", smsToken, "-interval", "5ms", "-count", "1", "-exit-after-count"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "signature check failed") {
		t.Fatalf("run: got %v, want a signature failure", err)
	}
	if len(received) != 0 {
		t.Error("texts were sent after a failed signature check")
	}
}

// What the council texts through the fake API reaches the resident, who
// answers from the same number.
func TestPlaySMS(t *testing.T) {
	received, hook, _ := smsInbox(t, smsToken)
	t.Setenv(twiliofake.AuthTokenEnv, smsToken)
	sim := twiliofake.NewSimulation()
	if err := sim.Check(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	p := newPlayer(&webhook{url: hook, network: sim, http: &http.Client{Timeout: patience}, tries: 3, backoff: time.Millisecond}, &out)
	p.interval, p.answerDelay, p.count = time.Hour, 10*time.Millisecond, 1
	api := httptest.NewServer(sim.API(p.councilSent))
	t.Cleanup(api.Close)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.play(ctx) }()
	first := nextSMS(t, received)

	c := &twilio.Client{BaseURL: api.URL, AccountSID: twiliofake.DefaultAccountSID, AuthToken: smsToken, From: "+447700900002"}
	if _, err := c.Send(ctx, channels.Outbound{Visibility: channels.Private, Text: "Thanks, logged.", Recipient: first.Author.ExternalID}, nil); err != nil {
		t.Fatal(err)
	}
	answer := nextSMS(t, received)
	if answer.Author.ExternalID != first.Author.ExternalID {
		t.Errorf("the answer came from %s, want %s", answer.Author.ExternalID, first.Author.ExternalID)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("play: %v", err)
	}
	if !strings.Contains(out.String(), "← council DMed @") {
		t.Errorf("output:\n%s", out.String())
	}
}
