package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/meta"
	"github.com/citizeninbox/inbox/internal/channels/meta/metafake"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
)

const (
	testSecret  = "test-consumer-secret"
	testCouncil = "1500000000000000001"
	// patience bounds every wait; the events themselves take milliseconds.
	patience = 5 * time.Second
)

var testAccount = x.Account{Slug: "council-x", UserID: testCouncil}

// inbox stands in for the inbox's X webhook: it answers the CRC, refuses
// badly signed deliveries and hands every accepted body to the test.
type inbox struct {
	t        *testing.T
	secret   string
	status   atomic.Int32 // answer to signed deliveries
	received chan []byte
	// readyURL is /readyz on the inbox's operations listener, apart from
	// the webhooks as in the real inbox.
	readyURL string
}

func newInbox(t *testing.T, secret string) (*inbox, *httptest.Server) {
	in := &inbox{t: t, secret: secret, received: make(chan []byte, 100)}
	in.status.Store(http.StatusOK)
	ops := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(ops.Close)
	in.readyURL = ops.URL + "/readyz"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /webhooks/x/council-x", func(w http.ResponseWriter, r *http.Request) {
		token := r.URL.Query().Get("crc_token")
		_ = json.NewEncoder(w).Encode(map[string]string{"response_token": x.CRCResponse(in.secret, token)})
	})
	mux.HandleFunc("POST /webhooks/x/council-x", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !x.Verify(in.secret, body, r.Header.Get(x.SignatureHeader)) {
			t.Errorf("delivery with a bad signature: %s", body)
			http.Error(w, `{"title":"invalid signature"}`, http.StatusUnauthorized)
			return
		}
		in.received <- body
		w.WriteHeader(int(in.status.Load()))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return in, srv
}

// next waits for the next delivery and parses it into its one message.
func (in *inbox) next() (channels.Inbound, []byte) {
	in.t.Helper()
	var body []byte
	select {
	case body = <-in.received:
	case <-time.After(patience):
		in.t.Fatal("no webhook delivery arrived")
	}
	msgs, err := x.Parse(body, testAccount, time.Now())
	if err != nil {
		in.t.Fatalf("parse %s: %v", body, err)
	}
	if len(msgs) != 1 {
		in.t.Fatalf("delivery holds %d messages, want 1: %s", len(msgs), body)
	}
	return msgs[0], body
}

// describe shows the fields of a message the tests look at.
func describe(m channels.Inbound) string {
	return fmt.Sprintf("%s message %s from @%s (%s) in reply to %q: %q",
		m.Visibility, m.ExternalID, m.Author.Handle, m.Author.ExternalID, m.InReplyTo, m.Text)
}

// testNetwork is X as netsim simulates it, with the tests' secret.
func testNetwork(t *testing.T) *xfake.Simulation {
	t.Helper()
	n := xfake.NewSimulation()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	n.Flags(fs)
	if err := fs.Parse([]string{"-secret", testSecret, "-council-id", testCouncil}); err != nil {
		t.Fatal(err)
	}
	if err := n.Check(); err != nil {
		t.Fatal(err)
	}
	return n
}

func testHook(t *testing.T, url string) *webhook {
	return &webhook{url: url, network: testNetwork(t), http: &http.Client{Timeout: patience}, tries: 3, backoff: time.Millisecond}
}

// councilSends posts to the fake X API as the inbox's X client does and
// returns the new post or direct message id.
func councilSends(t *testing.T, api, path, body string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, api+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer test-access-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var answer struct {
		Data struct {
			ID        string `json:"id"`
			DMEventID string `json:"dm_event_id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %d %v", path, resp.StatusCode, err)
	}
	return answer.Data.ID + answer.Data.DMEventID
}

func TestPlay(t *testing.T) {
	in, inboxSrv := newInbox(t, testSecret)
	var out bytes.Buffer
	p := newPlayer(testHook(t, inboxSrv.URL+"/webhooks/x/council-x"), &out)
	p.interval = 5 * time.Millisecond
	p.answerDelay = 10 * time.Millisecond
	p.count = 5

	api := httptest.NewServer(p.network.API(p.councilSent))
	t.Cleanup(api.Close)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.play(ctx) }()

	// The scripted events: one full cycle and the start of the next.
	want := []struct {
		vis      channels.Visibility
		activity bool
	}{
		{channels.Public, false},
		{channels.Private, false},
		{channels.Private, false}, // follow-up
		{channels.Public, true},
		{channels.Public, false},
	}
	var msgs []channels.Inbound
	dmSenders := map[string]bool{}
	for i, w := range want {
		m, body := in.next()
		if m.Visibility != w.vis {
			t.Errorf("event %d is %s, want %s: %s", i, m.Visibility, w.vis, body)
		}
		if activity := bytes.HasPrefix(body, []byte(`{"data":`)); activity != w.activity {
			t.Errorf("event %d: X Activity envelope is %v, want %v: %s", i, activity, w.activity, body)
		}
		if m.Author.Handle == "" || m.Text == "" || m.InReplyTo != "" {
			t.Errorf("event %d: want a new message with author and text, got %s", i, describe(m))
		}
		for _, prev := range msgs {
			if prev.ExternalID >= m.ExternalID {
				t.Errorf("event %d: id %s does not follow %s", i, m.ExternalID, prev.ExternalID)
			}
		}
		if i == 2 {
			if !dmSenders[m.Author.ExternalID] {
				t.Errorf("follow-up DM from @%s, who has not written a DM before", m.Author.Handle)
			}
			if m.Text == msgs[1].Text {
				t.Errorf("follow-up DM repeats the first one: %q", m.Text)
			}
		}
		if m.Visibility == channels.Private {
			dmSenders[m.Author.ExternalID] = true
		}
		msgs = append(msgs, m)
	}

	// The council answers the first mention in public: the resident
	// answers in the same thread.
	first := msgs[0]
	councilPost := councilSends(t, api.URL, "/2/tweets",
		`{"text":"Sorry to hear that, we've asked the crew to come back today.","reply":{"in_reply_to_tweet_id":"`+first.ExternalID+`"}}`)
	got, body := in.next()
	if got.Visibility != channels.Public || got.InReplyTo != councilPost || got.Author.ExternalID != first.Author.ExternalID {
		t.Fatalf("want @%s to answer post %s in public, got %s: %s", first.Author.Handle, councilPost, describe(got), body)
	}
	publicAnswer := got

	// Every council message is answered: two DMs to two residents, two
	// answers.
	first2, talker := msgs[1].Author, msgs[3].Author
	councilSends(t, api.URL, "/2/dm_conversations/with/"+first2.ExternalID+"/messages", `{"text":"Thanks, we've logged it."}`)
	councilSends(t, api.URL, "/2/dm_conversations/with/"+talker.ExternalID+"/messages", `{"text":"Could you DM us the address?"}`)
	answered := map[string]bool{}
	for range 2 {
		got, body = in.next()
		if got.Visibility != channels.Private {
			t.Fatalf("want a DM, got %s: %s", describe(got), body)
		}
		answered[got.Author.ExternalID] = true
	}
	if !answered[first2.ExternalID] || !answered[talker.ExternalID] {
		t.Errorf("answers came from %v, want @%s and @%s", answered, first2.Handle, talker.Handle)
	}
	// The council answers the resident's public answer: that is
	// answered too, in the same thread.
	second := councilSends(t, api.URL, "/2/tweets",
		`{"text":"Glad to help.","reply":{"in_reply_to_tweet_id":"`+publicAnswer.ExternalID+`"}}`)
	if got, body = in.next(); got.InReplyTo != second || got.Author.ExternalID != first.Author.ExternalID {
		t.Fatalf("want @%s to answer post %s, got %s: %s", first.Author.Handle, second, describe(got), body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("play: %v", err)
		}
	case <-time.After(patience):
		t.Fatal("play did not stop")
	}
	select {
	case body := <-in.received:
		t.Errorf("unexpected delivery: %s", body)
	default:
	}

	printed := out.String()
	for _, line := range []string{
		"→ mention from @" + first.Author.Handle + ": @ExampleCouncil ",
		"→ follow-up DM from @" + msgs[2].Author.Handle + ": ",
		"→ mention (X Activity) from @" + talker.Handle + ": ",
		"← council replied to @" + first.Author.Handle + " in thread " + first.ExternalID + ": Sorry to hear that",
		"→ reply from @" + first.Author.Handle + " to " + councilPost + ": ",
		"← council DMed @" + first2.Handle + ": Thanks, we've logged it.",
		"[200]",
	} {
		if !strings.Contains(printed, line) {
			t.Errorf("output lacks %q:\n%s", line, printed)
		}
	}
}

func TestCheckCRC(t *testing.T) {
	_, srv := newInbox(t, testSecret)
	hook := testHook(t, srv.URL+"/webhooks/x/council-x")
	if said, err := hook.network.Handshake(t.Context(), hook.http, hook.url); err != nil || !strings.Contains(said, "CRC check OK") {
		t.Errorf("same secret: %q, %v", said, err)
	}
	_, other := newInbox(t, "another-secret")
	hook = testHook(t, other.URL+"/webhooks/x/council-x")
	_, err := hook.network.Handshake(t.Context(), hook.http, hook.url)
	if err == nil || !strings.Contains(err.Error(), "secret") {
		t.Errorf("different secret: got %v, want an error naming the secret", err)
	}
}

func TestSendOnce(t *testing.T) {
	in, srv := newInbox(t, testSecret)
	hook := srv.URL + "/webhooks/x/council-x"
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"send", "-webhook", hook, "-secret", testSecret,
		"-kind", "mention", "-from", "@sarahjenkins", "-text", "Still no bin collection", "-in-reply-to", "1900000000000000001"},
		&out, &errOut)
	if err != nil {
		t.Fatalf("send: %v (%s)", err, errOut.String())
	}
	m, _ := in.next()
	if m.Visibility != channels.Public || m.Author.Handle != "sarahjenkins" || m.InReplyTo != "1900000000000000001" || m.Text != "Still no bin collection" {
		t.Errorf("got %s", describe(m))
	}
	if want := "→ reply from @sarahjenkins to 1900000000000000001: Still no bin collection  [200]\n"; out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}

	in.status.Store(http.StatusServiceUnavailable)
	err = run(t.Context(), []string{"send", "-webhook", hook, "-secret", testSecret,
		"-kind", "dm", "-from", "new_resident", "-text", "Hello?"}, &out, &errOut)
	if err == nil {
		t.Fatal("send succeeded although the inbox answered 503")
	}
	m, _ = in.next()
	if m.Visibility != channels.Private || m.Author.Handle != "new_resident" {
		t.Errorf("got %s", describe(m))
	}
}

func TestRunExitsAfterCount(t *testing.T) {
	in, srv := newInbox(t, testSecret)
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"-listen", "127.0.0.1:0", "-webhook", srv.URL + "/webhooks/x/council-x", "-ready", in.readyURL,
		"-secret", testSecret, "-interval", "5ms", "-count", "2", "-exit-after-count"}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v (%s)", err, errOut.String())
	}
	if got := len(in.received); got != 2 {
		t.Errorf("%d deliveries, want 2", got)
	}
	for _, line := range []string{"fake X API on http://127.0.0.1:", "CRC check OK", "answer each message the council sends them",
		"→ mention from @", "→ DM from @", "netsim stopped"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

func TestRunRefusesAnotherSecret(t *testing.T) {
	in, srv := newInbox(t, "the-inbox-secret")
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"-listen", "127.0.0.1:0", "-webhook", srv.URL + "/webhooks/x/council-x", "-ready", in.readyURL,
		"-secret", testSecret, "-interval", "5ms", "-count", "1", "-exit-after-count"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "CRC check failed") {
		t.Fatalf("run: got %v, want a CRC failure", err)
	}
	if got := len(in.received); got != 0 {
		t.Errorf("%d deliveries after a failed CRC check, want none", got)
	}
}

func TestPickNetwork(t *testing.T) {
	for _, args := range [][]string{nil, {"-network", "x"}, {"--network=x"}, {"-text", "network", "-from", "a"}} {
		n, err := pickNetwork(args)
		if err != nil || n.Name() != "x" {
			t.Errorf("%q: %v, %v", args, n, err)
		}
	}
	if _, err := pickNetwork([]string{"-network", "fax"}); err == nil || !strings.Contains(err.Error(), `"fax" is not one of: x meta twilio telegram mastodon bluesky email`) {
		t.Errorf("unknown network: %v", err)
	}
	var errOut bytes.Buffer
	err := run(t.Context(), []string{"send", "-network", "fax", "-from", "a", "-text", "b"}, &bytes.Buffer{}, &errOut)
	if err == nil || !strings.Contains(err.Error(), "fax") {
		t.Errorf("send to an unknown network: %v", err)
	}
}

// netsim waits for the inbox's readiness on the address it is given (the
// operations listener), not on the webhooks' host, where the inbox answers
// 404.
func TestRunWaitsForReadinessOnTheOperationsAddress(t *testing.T) {
	in, srv := newInbox(t, testSecret)
	var out, errOut bytes.Buffer
	args := []string{"-listen", "127.0.0.1:0", "-webhook", srv.URL + "/webhooks/x/council-x",
		"-secret", testSecret, "-interval", "5ms", "-count", "1", "-exit-after-count"}
	err := run(t.Context(), append(args, "-ready", srv.URL+"/readyz", "-wait", "600ms"), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "not ready") || len(in.received) != 0 {
		t.Fatalf("readiness on the webhooks' host: %v, %d deliveries; want not ready and none", err, len(in.received))
	}
	out.Reset()
	if err := run(t.Context(), append(args, "-ready", in.readyURL), &out, &errOut); err != nil {
		t.Fatalf("readiness on the operations address: %v\n%s", err, out.String())
	}
	if len(in.received) != 1 {
		t.Errorf("%d deliveries, want 1", len(in.received))
	}
}

// Meta, as netsim simulates it for one app's endpoint: a Page, an
// Instagram account and a WhatsApp number.
const (
	metaSecret      = "test-meta-app-secret"
	metaVerifyToken = "test-meta-verify-token"
	metaAccessToken = "test-meta-access-token"
)

var metaRoutes = meta.Routes{
	Pages:     map[string]string{metafake.DefaultPageID: "council-facebook"},
	Instagram: map[string]string{metafake.DefaultInstagramID: "council-instagram"},
	Numbers:   map[string]string{metafake.DefaultPhoneNumberID: "council-whatsapp"},
}

// metaInbox stands in for the inbox's Meta webhook, with the driver's own
// webhook: it answers the subscription handshake, refuses badly signed
// deliveries and hands every accepted delivery that holds messages to the
// test (the handshake's empty one it only counts).
type metaInbox struct {
	*inbox
	empty atomic.Int32
}

func newMetaInbox(t *testing.T, appSecret, verifyToken string) (*metaInbox, *httptest.Server) {
	in := &metaInbox{inbox: &inbox{t: t, received: make(chan []byte, 100)}}
	ops := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(ops.Close)
	in.readyURL = ops.URL + "/readyz"
	hook := &meta.Webhook{AppSecret: appSecret, VerifyToken: verifyToken,
		Pages: metaRoutes.Pages, Instagram: metaRoutes.Instagram, Numbers: metaRoutes.Numbers}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /webhooks/meta/council-meta", func(w http.ResponseWriter, r *http.Request) {
		contentType, body, err := hook.Challenge(r)
		if err != nil {
			http.Error(w, `{"title":"invalid verification request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(body)
	})
	mux.HandleFunc("POST /webhooks/meta/council-meta", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := hook.Verify(r, body); err != nil {
			http.Error(w, `{"title":"invalid signature"}`, http.StatusUnauthorized)
			return
		}
		msgs, err := hook.Parse(body, time.Now())
		switch {
		case err != nil:
			t.Errorf("an unreadable delivery: %v: %s", err, body)
		case len(msgs) == 0:
			in.empty.Add(1)
		default:
			in.received <- body
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return in, srv
}

// next waits for the next delivery and parses it into its one message.
func (in *metaInbox) next() (channels.Inbound, []byte) {
	in.t.Helper()
	var body []byte
	select {
	case body = <-in.received:
	case <-time.After(patience):
		in.t.Fatal("no webhook delivery arrived")
	}
	msgs, _, err := meta.Parse(body, metaRoutes, time.Now())
	if err != nil || len(msgs) != 1 {
		in.t.Fatalf("parse %s: %v, %d messages; want 1", body, err, len(msgs))
	}
	return msgs[0], body
}

func testMetaNetwork(t *testing.T) *metafake.Simulation {
	t.Helper()
	n := metafake.NewSimulation()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	n.Flags(fs)
	if err := fs.Parse([]string{"-app-secret", metaSecret, "-verify-token", metaVerifyToken, "-access-token", metaAccessToken}); err != nil {
		t.Fatal(err)
	}
	if err := n.Check(); err != nil {
		t.Fatal(err)
	}
	return n
}

// metaSender is the driver's Graph API client for the council's account
// on channel, sending through the fake at api.
func metaSender(api, channel string) *meta.Client {
	id := map[string]string{meta.Facebook: metafake.DefaultPageID, meta.Instagram: metafake.DefaultInstagramID,
		meta.WhatsApp: metafake.DefaultPhoneNumberID}[channel]
	return &meta.Client{BaseURL: api, Channel: channel, AccountID: id, Token: metaAccessToken}
}

// Residents comment on the council's Facebook posts and Instagram media
// and write on Messenger, Instagram and WhatsApp, each on their own
// network; they answer the council's replies where the council made them.
func TestPlayMeta(t *testing.T) {
	in, inboxSrv := newMetaInbox(t, metaSecret, metaVerifyToken)
	var out bytes.Buffer
	hook := &webhook{url: inboxSrv.URL + "/webhooks/meta/council-meta", network: testMetaNetwork(t),
		http: &http.Client{Timeout: patience}, tries: 3, backoff: time.Millisecond}
	p := newPlayer(hook, &out)
	p.interval = 5 * time.Millisecond
	p.answerDelay = 10 * time.Millisecond
	p.count = 10

	api := httptest.NewServer(p.network.API(p.councilSent))
	t.Cleanup(api.Close)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.play(ctx) }()

	// Two cycles and a half of the script: the DMs' residents take the
	// three private networks in turn, and keep to theirs for a follow-up.
	want := []string{
		"facebook public", "facebook private", "facebook private", "instagram public",
		"facebook public", "instagram private", "instagram private", "instagram public",
		"facebook public", "whatsapp private",
	}
	var msgs []channels.Inbound
	for i, w := range want {
		m, body := in.next()
		if got := m.Channel + " " + string(m.Visibility); got != w {
			t.Errorf("event %d is %s, want %s: %s", i, got, w, body)
		}
		if m.Text == "" || m.Author.ExternalID == "" {
			t.Errorf("event %d: %s", i, describe(m))
		}
		msgs = append(msgs, m)
	}
	if msgs[2].Author.ExternalID != msgs[1].Author.ExternalID || msgs[6].Author.ExternalID != msgs[5].Author.ExternalID {
		t.Errorf("follow-ups came from other residents than the DMs they follow")
	}

	// The council answers two comments in public: each resident answers
	// in their thread, on their network.
	for _, c := range []channels.Inbound{msgs[0], msgs[3]} {
		ids, err := metaSender(api.URL, c.Channel).Send(t.Context(),
			channels.Outbound{Visibility: channels.Public, InReplyTo: c.ExternalID, Text: "Thanks, we've reported it."}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, body := in.next()
		if got.Channel != c.Channel || got.Visibility != channels.Public || got.InReplyTo != ids[0] ||
			got.ConversationID != c.ConversationID || got.Author.ExternalID != c.Author.ExternalID {
			t.Errorf("want the author of %s to answer %s in post %s, got %s: %s", c.ExternalID, ids[0], c.ConversationID, describe(got), body)
		}
	}
	// It answers the three private conversations through their networks:
	// each resident answers on theirs.
	for _, m := range []channels.Inbound{msgs[1], msgs[5], msgs[9]} {
		if _, err := metaSender(api.URL, m.Channel).Send(t.Context(),
			channels.Outbound{Visibility: channels.Private, Recipient: m.Author.ExternalID, InReplyTo: m.ExternalID, Text: "We've logged it."}, nil); err != nil {
			t.Fatal(err)
		}
		got, body := in.next()
		if got.Channel != m.Channel || got.Visibility != channels.Private || got.Author.ExternalID != m.Author.ExternalID {
			t.Errorf("want %s's answer on %s, got %s: %s", m.Author.ExternalID, m.Channel, describe(got), body)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("play: %v", err)
		}
	case <-time.After(patience):
		t.Fatal("play did not stop")
	}
	printed := out.String()
	for _, line := range []string{
		"→ mention (facebook) from @", "→ mention (instagram) from @", "→ follow-up DM (", " from @",
		"← council replied to @", "← council DMed @", "[200]",
	} {
		if !strings.Contains(printed, line) {
			t.Errorf("output lacks %q:\n%s", line, printed)
		}
	}
	if strings.Contains(printed, "← council DMed 4") || strings.Contains(printed, "← council DMed 2") {
		t.Errorf("a DM's recipient was not known as a resident:\n%s", printed)
	}
}

func TestSendOnceMeta(t *testing.T) {
	in, srv := newMetaInbox(t, metaSecret, metaVerifyToken)
	hook := srv.URL + "/webhooks/meta/council-meta"
	var out, errOut bytes.Buffer
	base := []string{"send", "-network", "meta", "-webhook", hook, "-app-secret", metaSecret}
	err := run(t.Context(), append(base, "-kind", "mention", "-from", "@sarahjenkins", "-text", "Still no bin collection",
		"-in-reply-to", "1900000000000000001"), &out, &errOut)
	if err != nil {
		t.Fatalf("send: %v (%s)", err, errOut.String())
	}
	m, _ := in.next()
	if m.Channel != meta.Facebook || m.Visibility != channels.Public || m.Author.DisplayName != "Sarah Jenkins" ||
		m.InReplyTo != "1900000000000000001" || m.Text != "Still no bin collection" {
		t.Errorf("got %s", describe(m))
	}
	if err := run(t.Context(), append(base, "-kind", "dm", "-from", "new_resident", "-text", "Hello?", "-dm-via", "whatsapp"), &out, &errOut); err != nil {
		t.Fatalf("send: %v (%s)", err, errOut.String())
	}
	if m, _ = in.next(); m.Channel != meta.WhatsApp || m.Visibility != channels.Private || m.Text != "Hello?" {
		t.Errorf("got %s", describe(m))
	}
	// Another app secret: the inbox refuses the delivery.
	err = run(t.Context(), []string{"send", "-network", "meta", "-webhook", hook, "-app-secret", "another",
		"-kind", "dm", "-from", "a", "-text", "b"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a delivery signed with another secret: %v", err)
	}
}

func TestRunMetaExitsAfterCount(t *testing.T) {
	in, srv := newMetaInbox(t, metaSecret, metaVerifyToken)
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"-network", "meta", "-listen", "127.0.0.1:0", "-webhook", srv.URL + "/webhooks/meta/council-meta",
		"-ready", in.readyURL, "-app-secret", metaSecret, "-verify-token", metaVerifyToken,
		"-interval", "5ms", "-count", "2", "-exit-after-count"}, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v (%s)", err, errOut.String())
	}
	if got := len(in.received); got != 2 || in.empty.Load() != 1 {
		t.Errorf("%d deliveries and %d empty ones, want 2 and the handshake's", got, in.empty.Load())
	}
	for _, line := range []string{"fake Facebook, Instagram and WhatsApp API on http://127.0.0.1:", "webhook verified",
		"→ mention (facebook) from @", "→ DM (messenger) from @", "netsim stopped"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

func TestRunMetaRefusesAnotherSecret(t *testing.T) {
	for _, tt := range []struct{ name, secret, verify, want string }{
		{"verify token", metaSecret, "another-verify-token", "verify_token"},
		{"app secret", "another-app-secret", metaVerifyToken, "app_secret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in, srv := newMetaInbox(t, tt.secret, tt.verify)
			var out, errOut bytes.Buffer
			err := run(t.Context(), []string{"-network", "meta", "-listen", "127.0.0.1:0", "-webhook", srv.URL + "/webhooks/meta/council-meta",
				"-ready", in.readyURL, "-app-secret", metaSecret, "-verify-token", metaVerifyToken,
				"-interval", "5ms", "-count", "1", "-exit-after-count"}, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run: got %v, want an error naming %s", err, tt.want)
			}
			if got := len(in.received); got != 0 {
				t.Errorf("%d deliveries after a failed handshake, want none", got)
			}
		})
	}
}
