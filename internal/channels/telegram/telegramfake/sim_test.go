package telegramfake_test

import (
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/telegram"
	"github.com/citizeninbox/inbox/internal/channels/telegram/telegramfake"
	"github.com/citizeninbox/inbox/internal/netsim"
)

func simulation(t *testing.T, args ...string) *telegramfake.Simulation {
	t.Helper()
	n := telegramfake.NewSimulation()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	n.Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := n.Check(); err != nil {
		t.Fatal(err)
	}
	return n
}

var bot = telegram.Account{Slug: "council-telegram", BotID: 7000000001, Username: "ExampleCouncilBot"}

// The simulation's deliveries are what the driver's webhook takes, and
// the council's sends through its fake API come back as netsim sends
// whose ids the residents' answers refer to.
func TestSimulation(t *testing.T) {
	t.Setenv(telegramfake.TokenEnv, "")
	t.Setenv(telegramfake.SecretEnv, "")
	n := simulation(t)
	if n.Name() != "telegram" || n.DefaultListen() != "127.0.0.1:8083" ||
		n.DefaultWebhook() != "http://127.0.0.1:8080/webhooks/telegram/council-telegram" {
		t.Errorf("%s %s %s", n.Name(), n.DefaultListen(), n.DefaultWebhook())
	}
	hook := &telegram.Webhook{Account: bot, SecretToken: telegramfake.DefaultSecret}
	deliver := func(body []byte) channels.Inbound {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, n.DefaultWebhook(), strings.NewReader(string(body)))
		n.Sign(req, body)
		if err := hook.Verify(req, body); err != nil {
			t.Fatal(err)
		}
		msgs, err := hook.Parse(body, time.Now())
		if err != nil || len(msgs) != 1 {
			t.Fatalf("%s: %v %v", body, msgs, err)
		}
		return msgs[0]
	}
	sarah := netsim.Resident{ID: "2200000000000000001", Handle: "sarahjenkins", Name: "Sarah Jenkins"}
	post := deliver(n.Post("", "1800001764669600000", sarah, n.Address("Bins not collected"), "", nil))
	if post.Visibility != channels.Public || post.Author.Handle != "sarahjenkins" || post.Author.DisplayName != "Sarah Jenkins" ||
		post.ExternalID != "-1001234567890:1800001764669600000" {
		t.Errorf("post %+v", post)
	}
	dm := deliver(n.Message("1800001764669600001", sarah, "My address is 4 Elm Road"))
	if dm.Visibility != channels.Private || dm.ExternalID != "2200000000000000001:1800001764669600001" {
		t.Errorf("message %+v", dm)
	}

	var sent []netsim.Sent
	api := httptest.NewServer(n.API(func(s netsim.Sent) { sent = append(sent, s) }))
	defer api.Close()
	c := &telegram.Client{BaseURL: api.URL, Token: telegramfake.DefaultToken}
	ids, err := c.Send(t.Context(), channels.Outbound{Visibility: channels.Public, Text: "Sorry, the crew is coming back.", InReplyTo: post.ExternalID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(t.Context(), channels.Outbound{Visibility: channels.Private, Text: "Thanks.", Recipient: dm.Author.ExternalID}, nil); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 2 || sent[0].Visibility != channels.Public || sent[0].InReplyTo != "1800001764669600000" ||
		sent[1].Visibility != channels.Private || sent[1].Recipient != sarah.ID {
		t.Fatalf("sent %+v", sent)
	}
	answer := deliver(n.Post("", "1800001764669600002", sarah, n.Address("Thank you"), sent[0].ID, nil))
	if answer.InReplyTo != ids[0] {
		t.Errorf("the answer replies to %q, want the council's %q", answer.InReplyTo, ids[0])
	}
	if _, err := (&telegram.Client{BaseURL: api.URL, Token: "7000000001:wrong"}).Send(t.Context(),
		channels.Outbound{Visibility: channels.Private, Text: "x", Recipient: "5"}, nil); channels.AsSendError(err).Kind != channels.Unauthorised {
		t.Errorf("another token: %v", err)
	}
}

func TestSimulationHandshake(t *testing.T) {
	n := simulation(t, "-secret-token", "the-secret")
	inbox := func(secret string) *httptest.Server {
		hook := &telegram.Webhook{Account: bot, SecretToken: secret}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if hook.Verify(r, body) != nil {
				http.Error(w, "invalid signature", http.StatusUnauthorized)
				return
			}
			if msgs, err := hook.Parse(body, time.Now()); err != nil || len(msgs) != 0 {
				http.Error(w, "unexpected", http.StatusBadRequest)
			}
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	if line, err := n.Handshake(t.Context(), http.DefaultClient, inbox("the-secret").URL); err != nil || !strings.Contains(line, "OK") {
		t.Errorf("same secret: %q %v", line, err)
	}
	if _, err := n.Handshake(t.Context(), http.DefaultClient, inbox("another").URL); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("another secret: %v", err)
	}
	t.Setenv(telegramfake.TokenEnv, "not-a-token")
	m := telegramfake.NewSimulation()
	m.Flags(flag.NewFlagSet("t", flag.ContinueOnError))
	if err := m.Check(); err == nil {
		t.Error("a token without the bot id was taken")
	}
}
