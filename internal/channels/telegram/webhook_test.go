package telegram_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/telegram"
	"github.com/citizeninbox/inbox/internal/channels/telegram/telegramfake"
)

func TestCheckSecret(t *testing.T) {
	for _, tt := range []struct {
		secret, header string
		want           error
	}{
		{"s3cret", "s3cret", nil},
		{"s3cret", "", telegram.ErrNoSecret},
		{"s3cret", "s3cre", telegram.ErrBadSecret},
		{"s3cret", "s3cret ", telegram.ErrBadSecret},
		{"s3cret", "S3CRET", telegram.ErrBadSecret},
		{"", "anything", telegram.ErrBadSecret},
	} {
		if err := telegram.CheckSecret(tt.secret, tt.header); !errors.Is(err, tt.want) {
			t.Errorf("secret %q, header %q: %v, want %v", tt.secret, tt.header, err, tt.want)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("demo-telegram-secret-token", "demo-telegram-secret-token")
	f.Add("demo-telegram-secret-token", "demo-telegram-secret-toke")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, secret, header string) {
		w := &telegram.Webhook{Account: bot, SecretToken: secret}
		r := httptest.NewRequest("POST", "/webhooks/telegram/council-telegram", nil)
		r.Header[telegram.SecretHeader] = []string{header}
		err := w.Verify(r, []byte(`{}`))
		if genuine := secret != "" && header == secret; genuine != (err == nil) {
			t.Fatalf("secret %q, header %q: %v", secret, header, err)
		}
	})
}

func TestWebhook(t *testing.T) {
	d := telegram.Driver{}
	hook, err := d.Webhook("council-telegram", []channels.AccountConfig{{Slug: "council-telegram", Channel: "telegram",
		Settings: telegram.Settings{BotID: "7000000001", Username: "ExampleCouncilBot", BotToken: telegramfake.Token, SecretToken: "s3cret"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/webhooks/telegram/council-telegram", nil)
	if err := hook.(channels.Prechecker).Precheck(r); err == nil {
		t.Error("a delivery without the header passed the precheck")
	}
	r.Header.Set(telegram.SecretHeader, "s3cret")
	if err := hook.Verify(r, nil); err != nil {
		t.Error(err)
	}
	if _, _, err := hook.Challenge(r); !errors.Is(err, channels.ErrNotAChallenge) {
		t.Errorf("challenge: %v", err)
	}
	counting := hook.(channels.IgnoreCounter)
	msgs, ignored, err := counting.ParseCounting(telegramfake.Raw(5, "channel_post", map[string]any{"message_id": 1}), time.Now())
	if err != nil || len(msgs) != 0 || ignored[telegram.IgnoredChannelPost] != 1 {
		t.Errorf("channel post: %v %v %v", msgs, ignored, err)
	}
	msgs, _, err = counting.ParseCounting(telegramfake.Update(6, telegramfake.Message{ID: 1, Chat: telegramfake.PrivateChat(alice), From: alice, Text: "hi"}), time.Now())
	if err != nil || len(msgs) != 1 || msgs[0].Account != "council-telegram" {
		t.Errorf("message: %+v %v", msgs, err)
	}
}

func TestDecode(t *testing.T) {
	d := telegram.Driver{}
	decode := func(s telegram.Settings) func(any) error {
		return func(v any) error { *(v.(*telegram.Settings)) = s; return nil }
	}
	ok := telegram.Settings{BotID: "7000000001", Username: "@ExampleCouncilBot", BotToken: "7000000001:abc", SecretToken: "s3cret-token_1"}
	got, err := d.Decode(channels.AccountConfig{}, decode(ok))
	if err != nil || got.(telegram.Settings).Username != "ExampleCouncilBot" || got.(telegram.Settings).Mode != telegram.ModeWebhook {
		t.Fatalf("%+v %v", got, err)
	}
	polling := ok
	polling.SecretToken, polling.Mode = "", telegram.ModePolling
	if _, err := d.Decode(channels.AccountConfig{}, decode(polling)); err != nil {
		t.Errorf("polling without a secret token: %v", err)
	}
	for field, s := range map[string]telegram.Settings{
		"secret_token": {BotID: "7000000001", Username: "b", BotToken: "7000000001:abc"},
		"bot_token":    {BotID: "7000000001", Username: "b", BotToken: "7000000002:abc", SecretToken: "s"},
	} {
		_, err := d.Decode(channels.AccountConfig{}, decode(s))
		var se *channels.SettingError
		if !errors.As(err, &se) || se.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	bad := ok
	bad.SecretToken = "has spaces"
	if _, err := d.Decode(channels.AccountConfig{}, decode(bad)); err == nil || !strings.Contains(err.Error(), "secret_token") {
		t.Errorf("bad secret: %v", err)
	}

	webhook, err := d.Open(channels.AccountConfig{Slug: "council-telegram", Settings: got}, channels.Deps{})
	if err != nil || webhook.Endpoint != "council-telegram" || webhook.Poller != nil || webhook.ExternalID != "7000000001" {
		t.Errorf("webhook mode: %+v %v", webhook, err)
	}
	polled, _ := d.Decode(channels.AccountConfig{}, decode(polling))
	p, err := d.Open(channels.AccountConfig{Slug: "council-telegram", Settings: polled}, channels.Deps{})
	if err != nil || p.Endpoint != "" || p.Poller == nil || p.Sender == nil {
		t.Errorf("polling mode: %+v %v", p, err)
	}
	if _, err := channels.NewRegistry(d); err != nil {
		t.Error(err)
	}
}
