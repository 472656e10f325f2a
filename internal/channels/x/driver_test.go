package x_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
)

const secret = "consumer-secret"

func openWebhook(t *testing.T) channels.Webhook {
	t.Helper()
	acct := channels.AccountConfig{Slug: "exampleshire", Channel: "x",
		Settings: x.Settings{UserID: councilID, ConsumerSecret: secret, AccessToken: "t"}}
	opened, err := x.Driver{}.Open(acct, channels.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if opened.Endpoint != "exampleshire" || opened.ExternalID != councilID || opened.Poller != nil {
		t.Fatalf("opened %+v: want the endpoint named after the account and the user id as external id", opened)
	}
	hook, err := x.Driver{}.Webhook(opened.Endpoint, []channels.AccountConfig{acct})
	if err != nil {
		t.Fatal(err)
	}
	return hook
}

func TestWebhookChallenge(t *testing.T) {
	hook := openWebhook(t)
	contentType, body, err := hook.Challenge(httptest.NewRequest(http.MethodGet, "/webhooks/x/exampleshire?crc_token=abc123", nil))
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		ResponseToken string `json:"response_token"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || contentType != "application/json" {
		t.Fatalf("answer %s (%s): %v", body, contentType, err)
	}
	if answer.ResponseToken != independentSign(secret, "abc123") {
		t.Errorf("response token %q", answer.ResponseToken)
	}
	_, _, err = hook.Challenge(httptest.NewRequest(http.MethodGet, "/webhooks/x/exampleshire", nil))
	if !errors.Is(err, channels.ErrNotAChallenge) {
		t.Errorf("GET without a token: %v, want ErrNotAChallenge", err)
	}
}

func TestWebhookVerify(t *testing.T) {
	hook := openWebhook(t)
	body := xfake.Mention(xfake.User{ID: councilID, Handle: "Council"}, "1880000000000000001",
		xfake.User{ID: jo.ExternalID, Handle: jo.Handle, Name: jo.DisplayName}, "@Council the bins", "", receivedAt)
	req := func(signature string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/x/exampleshire", strings.NewReader(string(body)))
		if signature != "" {
			r.Header.Set("x-twitter-webhooks-signature", signature)
		}
		return r
	}
	pre := hook.(channels.Prechecker)
	if err := pre.Precheck(req("")); !errors.Is(err, x.ErrMalformedSignature) {
		t.Errorf("precheck without a signature: %v", err)
	}
	if err := pre.Precheck(req(independentSign("another secret", string(body)))); err != nil {
		t.Errorf("precheck with a well-formed signature: %v", err)
	}
	if err := pre.Precheck(req("sha256=anything")); !errors.Is(err, x.ErrMalformedSignature) {
		t.Errorf("precheck with a malformed signature: %v", err)
	}
	if err := hook.Verify(req(independentSign(secret, string(body))), body); err != nil {
		t.Errorf("genuine delivery: %v", err)
	}
	if err := hook.Verify(req(independentSign("another secret", string(body))), body); !errors.Is(err, x.ErrBadSignature) {
		t.Errorf("signature under another secret: %v, want ErrBadSignature", err)
	}
	for _, sig := range []string{"", "sha256=", "garbage"} {
		if err := hook.Verify(req(sig), body); !errors.Is(err, x.ErrMalformedSignature) {
			t.Errorf("signature %q: %v, want ErrMalformedSignature", sig, err)
		}
	}
	msgs, err := hook.Parse(body, receivedAt)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("parse: %v, %d messages", err, len(msgs))
	}
	if m := msgs[0]; m.Channel != "x" || m.Account != "exampleshire" || m.Author.ExternalID != jo.ExternalID || m.Visibility != channels.Public {
		t.Errorf("message %+v", m)
	}
}

func TestDriverDecode(t *testing.T) {
	want := x.Settings{UserID: "1", ConsumerSecret: "s", AccessToken: "t"}
	got, err := x.Driver{}.Decode(channels.AccountConfig{}, func(v any) error {
		*(v.(*x.Settings)) = want
		return nil
	})
	if err != nil || got != want {
		t.Errorf("decoded %#v, %v", got, err)
	}
	refused := errors.New("user_id: is required")
	if _, err := (x.Driver{}).Decode(channels.AccountConfig{}, func(any) error { return refused }); !errors.Is(err, refused) {
		t.Errorf("decode error lost: %v", err)
	}
}

func TestDriverWebhookServesOneAccount(t *testing.T) {
	a := channels.AccountConfig{Slug: "a", Channel: "x", Settings: x.Settings{UserID: "1", ConsumerSecret: "s", AccessToken: "t"}}
	if _, err := (x.Driver{}).Webhook("a", []channels.AccountConfig{a, a}); err == nil {
		t.Error("one webhook for two X accounts")
	}
}

func TestDriverCapabilities(t *testing.T) {
	caps := x.Driver{}.Channels()["x"]
	pub, priv := caps.Text[channels.Public], caps.Text[channels.Private]
	if pub.Limit != 280 || pub.Unit != "weighted characters" || pub.Split == nil || pub.MaxParts != x.DefaultMaxParts {
		t.Errorf("public replies %+v", pub)
	}
	if priv.Limit != 10000 || priv.Split != nil {
		t.Errorf("private replies %+v", priv)
	}
	// The rule measures and splits as the client sends.
	long := strings.Repeat("Apply online at https://www.gov.uk/apply-blue-badge or by phone. ", 12)
	if got, want := len(pub.Split(long)), len(x.SplitThread(long, x.MaxPostWeight)); got != want {
		t.Errorf("split into %d parts, the client posts %d", got, want)
	}
	if got := pub.Measure("表 https://example.com"); got != x.WeightedLength("表 https://example.com") {
		t.Errorf("measure %d", got)
	}
	if len(caps.ReplyWindow) != 0 {
		t.Errorf("X has no reply windows, got %v", caps.ReplyWindow)
	}
}
