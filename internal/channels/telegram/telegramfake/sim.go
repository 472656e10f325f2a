package telegramfake

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/telegram"
	"github.com/citizeninbox/inbox/internal/netsim"
)

// Environment variables read when the flags are not given, and their
// defaults (the demo's).
const (
	TokenEnv      = "TELEGRAM_BOT_TOKEN"
	SecretEnv     = "TELEGRAM_SECRET_TOKEN"
	DefaultToken  = "7000000001:demo-telegram-bot-token"
	DefaultSecret = "demo-telegram-secret-token"
	// TownGroup is the residents' group the council's bot is a member of.
	TownGroup int64 = -1001234567890
)

// Simulation is Telegram for the network simulator: the fake Bot API, and
// residents writing to the council's bot in private chats and mentioning
// it in the town's group, delivered to its webhook.
type Simulation struct {
	token, secret, username string
	group                   int64
	botID                   int64
	updates                 int64
}

var _ netsim.Network = (*Simulation)(nil)

// NewSimulation returns Telegram for cmd/netsim.
func NewSimulation() *Simulation { return &Simulation{} }

// Name is the Telegram driver's name.
func (*Simulation) Name() string { return telegram.Channel }

// Title is "Telegram".
func (*Simulation) Title() string { return "Telegram" }

// DefaultListen is where the demo's configuration expects the fake Bot
// API.
func (*Simulation) DefaultListen() string { return "127.0.0.1:8083" }

// DefaultWebhook is the demo bot's webhook.
func (*Simulation) DefaultWebhook() string {
	return "http://127.0.0.1:8080/webhooks/telegram/council-telegram"
}

// Flags adds -bot-token, -secret-token, -bot-username and -group-id.
func (s *Simulation) Flags(fs *flag.FlagSet) {
	fs.StringVar(&s.token, "bot-token", "", "the bot's token (default: $"+TokenEnv+", else "+DefaultToken+")")
	fs.StringVar(&s.secret, "secret-token", "", "the webhook's secret token (default: $"+SecretEnv+", else "+DefaultSecret+")")
	fs.StringVar(&s.username, "bot-username", Username, "the council bot's username")
	fs.Int64Var(&s.group, "group-id", TownGroup, "the chat id of the residents' group")
}

// Check fills the token and secret from the environment or the demo's
// defaults, and reads the bot id from the token.
func (s *Simulation) Check() error {
	s.token = firstOf(s.token, os.Getenv(TokenEnv), DefaultToken)
	s.secret = firstOf(s.secret, os.Getenv(SecretEnv), DefaultSecret)
	id, _, ok := strings.Cut(s.token, ":")
	var err error
	if s.botID, err = strconv.ParseInt(id, 10, 64); !ok || err != nil {
		return errors.New("the bot token is not <bot id>:<secret>")
	}
	if s.group >= 0 {
		return errors.New("-group-id must be a group's (negative) chat id")
	}
	if s.username = strings.TrimPrefix(s.username, "@"); s.username == "" {
		return errors.New("-bot-username is empty")
	}
	s.updates = time.Now().UnixMilli()
	return nil
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func (s *Simulation) bot() *User {
	return &User{ID: s.botID, IsBot: true, FirstName: "Example Council", Username: s.username}
}

// API is the fake Bot API of the council's bot.
func (s *Simulation) API(onSent func(netsim.Sent)) http.Handler {
	fake := NewBot(s.botID, s.username, s.token)
	fake.OnSent(func(sent Sent) {
		out := netsim.Sent{ID: strconv.FormatInt(sent.MessageID, 10), Text: sent.Text}
		if sent.ChatID < 0 {
			out.Visibility = channels.Public
			if sent.ReplyTo != 0 {
				out.InReplyTo = strconv.FormatInt(sent.ReplyTo, 10)
			}
		} else {
			out.Visibility, out.Recipient = channels.Private, strconv.FormatInt(sent.ChatID, 10)
		}
		onSent(out)
	})
	return fake
}

// Address mentions the bot, as residents do in the group.
func (s *Simulation) Address(text string) string { return Mention(s.username, text) }

// Styles: Telegram delivers one way.
func (*Simulation) Styles() []string { return []string{""} }

// Post is a message in the town's group mentioning the bot, answering the
// bot's message inReplyTo when set.
func (s *Simulation) Post(_ string, id string, from netsim.Resident, text, inReplyTo string, _ func() string) []byte {
	m := Message{ID: parseID(id), Chat: Chat{ID: s.group, Type: "supergroup", Title: "Example Town residents"}, From: user(from), Text: text}
	if inReplyTo != "" {
		m.ReplyTo, m.ReplyToFrom = parseID(inReplyTo), s.bot()
	}
	return Update(s.nextUpdate(), m)
}

// Message is a message in the resident's private chat with the bot.
func (s *Simulation) Message(id string, from netsim.Resident, text string) []byte {
	u := user(from)
	return Update(s.nextUpdate(), Message{ID: parseID(id), Chat: PrivateChat(u), From: u, Text: text})
}

func (s *Simulation) nextUpdate() int64 {
	s.updates++
	return s.updates
}

// Sign sets the content type and the secret token header.
func (s *Simulation) Sign(req *http.Request, _ []byte) {
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(telegram.SecretHeader, s.secret)
}

// Handshake checks that the inbox takes a delivery with the secret token
// and refuses one with another: Telegram itself has no handshake, so the
// update sent is one the inbox ignores (a membership change).
func (s *Simulation) Handshake(ctx context.Context, client *http.Client, webhookURL string) (string, error) {
	body := Raw(s.nextUpdate(), "my_chat_member", map[string]any{"chat": map[string]any{"id": s.group, "type": "supergroup"}})
	post := func(secret string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhookURL, bytes.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(telegram.SecretHeader, secret)
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
		return resp.StatusCode, strings.Join(strings.Fields(string(answer)), " "), nil
	}
	code, answer, err := post(s.secret)
	if err != nil {
		return "", fmt.Errorf("secret token check: %w", err)
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("secret token check: the inbox answered %d (%s): -secret-token (or %s) must be the secret_token configured for this bot", code, answer, SecretEnv)
	}
	if code, _, err = post(s.secret + "-not"); err != nil || code == http.StatusOK {
		return "", fmt.Errorf("secret token check: the inbox took a delivery with another secret token (%d, %w)", code, err)
	}
	return "secret token check OK: the inbox takes the bot's secret token and refuses others", nil
}

func user(r netsim.Resident) User {
	first, last, _ := strings.Cut(r.Name, " ")
	return User{ID: parseID(r.ID), FirstName: first, LastName: last, Username: r.Handle}
}

// parseID reads netsim's decimal ids; they fit an int64.
func parseID(id string) int64 {
	n, _ := strconv.ParseInt(id, 10, 64)
	return n
}
