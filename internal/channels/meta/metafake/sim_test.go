package metafake_test

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/meta"
	"github.com/citizeninbox/inbox/internal/channels/meta/metafake"
	"github.com/citizeninbox/inbox/internal/netsim"
)

// simulation is Meta as netsim plays it, with args as its flags.
func simulation(t *testing.T, args ...string) *metafake.Simulation {
	t.Helper()
	s := metafake.NewSimulation()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	s.Flags(fs)
	if err := fs.Parse(append([]string{"-app-secret", secret, "-verify-token", "verify", "-access-token", token}, args...)); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	return s
}

// appWebhook is the driver's webhook for the simulation's accounts.
func appWebhook(appSecret, verifyToken string) *meta.Webhook {
	return &meta.Webhook{AppSecret: appSecret, VerifyToken: verifyToken,
		Pages: routes.Pages, Instagram: routes.Instagram, Numbers: routes.Numbers}
}

// parse checks a delivery the simulation made as the inbox does: signed
// with the app secret, and holding one message.
func parse(t *testing.T, sim *metafake.Simulation, body []byte) channels.Inbound {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/meta/council-meta", bytes.NewReader(body))
	sim.Sign(req, body)
	w := appWebhook(secret, "verify")
	if err := w.Precheck(req); err != nil {
		t.Fatal(err)
	}
	if err := w.Verify(req, body); err != nil {
		t.Fatalf("the driver refuses the simulation's signature: %v", err)
	}
	if req.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(req.Header.Get("X-Hub-Signature"), "sha1=") {
		t.Errorf("headers %v", req.Header)
	}
	msgs, err := w.Parse(body, time.Now())
	if err != nil || len(msgs) != 1 {
		t.Fatalf("parse %s: %v, %d messages", body, err, len(msgs))
	}
	return msgs[0]
}

// Residents take Messenger, Instagram and WhatsApp in turn, each keeping
// to theirs; what the council sends them names them as the simulator
// knows them.
func TestSimulationMessages(t *testing.T) {
	sim := simulation(t)
	residents := []netsim.Resident{
		{ID: "2200000000000000001", Handle: "sarahjenkins", Name: "Sarah Jenkins"},
		{ID: "2200000000000000002", Handle: "dave_okafor", Name: "Dave Okafor"},
		{ID: "2200000000000000003", Handle: "priyapatel_uk", Name: "Priya Patel"},
		{ID: "2200000000000000004", Handle: "tomhughes84", Name: "Tom Hughes"},
	}
	want := []string{meta.Facebook, meta.Instagram, meta.WhatsApp, meta.Facebook}
	var first []channels.Inbound
	for i, r := range residents {
		m := parse(t, sim, sim.Message(strconv.Itoa(1800000000000000001+i), r, "Hello"))
		if m.Channel != want[i] || m.Visibility != channels.Private || m.Text != "Hello" {
			t.Errorf("resident %d wrote %s %s %q, want a %s message", i, m.Channel, m.Visibility, m.Text, want[i])
		}
		first = append(first, m)
	}
	if first[2].Author.DisplayName != "Priya Patel" || !strings.HasPrefix(first[2].Author.ExternalID, "447") || len(first[2].Author.ExternalID) != 12 {
		t.Errorf("WhatsApp author %+v", first[2].Author)
	}
	// Sticky: Dave writes on Instagram again.
	if m := parse(t, sim, sim.Message("1800000000000000099", residents[1], "Again")); m.Channel != meta.Instagram || m.ExternalID == first[1].ExternalID {
		t.Errorf("Dave's second message: %s %s", m.Channel, m.ExternalID)
	}

	// The council answers each, through the fake API, as the driver does.
	var mu sync.Mutex
	var heard []netsim.Sent
	api := httptest.NewServer(sim.API(func(s netsim.Sent) {
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, s)
	}))
	t.Cleanup(api.Close)
	clients := map[string]*meta.Client{
		meta.Facebook:  {BaseURL: api.URL, Channel: meta.Facebook, AccountID: page, Token: token},
		meta.Instagram: {BaseURL: api.URL, Channel: meta.Instagram, AccountID: igID, Token: token},
		meta.WhatsApp:  {BaseURL: api.URL, Channel: meta.WhatsApp, AccountID: number, Token: token},
	}
	for _, m := range first[:3] {
		out := channels.Outbound{Visibility: channels.Private, Recipient: m.Author.ExternalID, InReplyTo: m.ExternalID, Text: "Thanks"}
		if _, err := clients[m.Channel].Send(t.Context(), out, nil); err != nil {
			t.Fatalf("%s: %v", m.Channel, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(heard) != 3 {
		t.Fatalf("heard %+v", heard)
	}
	for i, s := range heard {
		if s.Visibility != channels.Private || s.Recipient != residents[i].ID || s.ID == "" || s.Text != "Thanks" {
			t.Errorf("send %d heard as %+v, want a private message to %s", i, s, residents[i].ID)
		}
	}
}

// -dm-via puts every private message on one network.
func TestSimulationDMVia(t *testing.T) {
	sim := simulation(t, "-dm-via", "whatsapp")
	for i, id := range []string{"2200000000000000001", "2200000000000000002"} {
		if m := parse(t, sim, sim.Message("1", netsim.Resident{ID: id, Name: "R"}, "Hi")); m.Channel != meta.WhatsApp {
			t.Errorf("message %d on %s", i, m.Channel)
		}
	}
	bad := metafake.NewSimulation()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	bad.Flags(fs)
	_ = fs.Parse([]string{"-dm-via", "sms"})
	if err := bad.Check(); err == nil {
		t.Error("-dm-via sms was accepted")
	}
}

// Comments start on a new post or media of the council in the style's
// network; a resident's answer to the council's reply stays in the
// thread, on its network, with the council's reply as its parent.
func TestSimulationComments(t *testing.T) {
	sim := simulation(t)
	sarah := netsim.Resident{ID: "2200000000000000001", Handle: "sarahjenkins", Name: "Sarah Jenkins"}
	n := 1800000000000000100
	newIDs := func() string { n++; return strconv.Itoa(n) }
	var heard []netsim.Sent
	var mu sync.Mutex
	api := httptest.NewServer(sim.API(func(s netsim.Sent) { mu.Lock(); heard = append(heard, s); mu.Unlock() }))
	t.Cleanup(api.Close)

	for _, style := range []string{meta.Facebook, meta.Instagram} {
		c := parse(t, sim, sim.Post(style, "c_"+style, sarah, "Bins again", "", newIDs))
		if c.Channel != style || c.Visibility != channels.Public || c.ConversationID == "" || c.ExternalID != "c_"+style {
			t.Fatalf("%s comment: %+v", style, c)
		}
		if style == meta.Facebook && (!strings.HasPrefix(c.ConversationID, page+"_") || c.Author.DisplayName != "Sarah Jenkins") {
			t.Errorf("Page comment %+v", c)
		}
		if style == meta.Instagram && c.Author.Handle != "sarahjenkins" {
			t.Errorf("Instagram comment %+v", c)
		}
		client := &meta.Client{BaseURL: api.URL, Channel: style, AccountID: page, Token: token}
		ids, err := client.Send(t.Context(), channels.Outbound{Visibility: channels.Public, InReplyTo: c.ExternalID, Text: "On it"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		last := heard[len(heard)-1]
		mu.Unlock()
		if last.Visibility != channels.Public || last.InReplyTo != c.ExternalID || last.ID != ids[0] {
			t.Errorf("%s reply heard as %+v", style, last)
		}
		// The player answers in the plain style; the thread keeps it on
		// its network and post.
		answer := parse(t, sim, sim.Post("", "a_"+style, sarah, "Thanks", ids[0], newIDs))
		if answer.Channel != style || answer.ConversationID != c.ConversationID || answer.InReplyTo != ids[0] {
			t.Errorf("%s answer %+v, want it on post %s answering %s", style, answer, c.ConversationID, ids[0])
		}
	}
	// A comment with no style and nothing known goes to -comments-on.
	if c := parse(t, sim, sim.Post("", "c_new", sarah, "Hello", "", newIDs)); c.Channel != meta.Facebook {
		t.Errorf("a plain comment went to %s", c.Channel)
	}

	// A private reply to a comment reaches the resident who wrote it.
	client := &meta.Client{BaseURL: api.URL, Channel: meta.Facebook, AccountID: page, Token: token}
	body := `{"recipient":{"comment_id":"c_facebook"},"message":{"text":"We have messaged you"}}`
	req, _ := http.NewRequest(http.MethodPost, client.BaseURL+"/v21.0/"+page+"/messages", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if last := heard[len(heard)-1]; resp.StatusCode != http.StatusOK || last.Visibility != channels.Private || last.Recipient != sarah.ID {
		t.Errorf("private reply: %d, heard %+v", resp.StatusCode, last)
	}
}

// The handshake passes against the driver's webhook with the same verify
// token and app secret, and says which one differs otherwise.
func TestSimulationHandshake(t *testing.T) {
	inbox := func(appSecret, verifyToken string) string {
		w := appWebhook(appSecret, verifyToken)
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				ct, body, err := w.Challenge(r)
				if err != nil {
					http.Error(rw, err.Error(), http.StatusBadRequest)
					return
				}
				rw.Header().Set("Content-Type", ct)
				_, _ = rw.Write(body)
				return
			}
			body, _ := io.ReadAll(r.Body)
			if err := w.Verify(r, body); err != nil {
				http.Error(rw, err.Error(), http.StatusUnauthorized)
				return
			}
			if _, err := w.Parse(body, time.Now()); err != nil {
				http.Error(rw, err.Error(), http.StatusBadRequest)
			}
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/webhooks/meta/council-meta"
	}
	sim := simulation(t)
	if said, err := sim.Handshake(t.Context(), http.DefaultClient, inbox(secret, "verify")); err != nil || !strings.Contains(said, "verified") {
		t.Errorf("same secrets: %q, %v", said, err)
	}
	if _, err := sim.Handshake(t.Context(), http.DefaultClient, inbox(secret, "other")); err == nil || !strings.Contains(err.Error(), "verify") {
		t.Errorf("another verify token: %v", err)
	}
	if _, err := sim.Handshake(t.Context(), http.DefaultClient, inbox("other", "verify")); err == nil || !strings.Contains(err.Error(), "app secret") && !strings.Contains(err.Error(), "app_secret") {
		t.Errorf("another app secret: %v", err)
	}
}
