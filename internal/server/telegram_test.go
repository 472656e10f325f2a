package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels/telegram"
	"github.com/citizeninbox/inbox/internal/channels/telegram/telegramfake"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/poll"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/testenv"
)

// The Telegram driver on the whole server: the council's bot, its Bot API
// faked.
const (
	tgAccount = "council-telegram"
	tgSecret  = "telegram-secret-token"
)

var (
	tgGroup  = telegramfake.Chat{ID: -1001234567890, Type: "supergroup", Title: "Example Town residents"}
	tgAlice  = telegramfake.User{ID: 5100000001, FirstName: "Alice", LastName: "Example", Username: "alice_resident"}
	tgBob    = telegramfake.User{ID: 5100000002, FirstName: "Bob", Username: "bob_resident"}
	tgBot    = telegramfake.User{ID: telegramfake.BotID, IsBot: true, FirstName: "Example Council", Username: telegramfake.Username}
	tgMsgSeq = map[int64]int64{}
)

// withTelegram adds the bot account, in webhook or polling mode, talking
// to fake.
func withTelegram(fake *telegramfake.Server, mode string) harnessOption {
	return func(o *server.Options, h *harness) {
		srv := httptest.NewServer(fake)
		h.t.Cleanup(srv.Close)
		o.Drivers = drivers(h.t, telegram.Driver{})
		s := telegram.Settings{BotID: fmt.Sprint(telegramfake.BotID), Username: telegramfake.Username, BotToken: telegramfake.Token,
			SecretToken: tgSecret, Mode: mode}
		file := *o.File
		file.ChannelAccounts = append(append([]config.ChannelAccount(nil), file.ChannelAccounts...), config.ChannelAccount{
			Slug: tgAccount, Channel: "telegram", Name: "@ExampleCouncilBot", Team: "contact-centre", APIBaseURL: srv.URL, Settings: s})
		o.File = &file
		if mode == telegram.ModePolling {
			// Long enough for getUpdates to long-poll (3 s), so two
			// replicas polling at once would meet in the fake.
			o.Poll = poll.Config{Lease: 6 * time.Second}
			h.t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if b, err := bus.Connect(ctx, testenv.NATSURL(), o.Names); err == nil {
					poll.DeleteBuckets(ctx, b)
					_ = b.Close()
				}
			})
		}
	}
}

// tgMessage is a resident's new message in chat (its id the next in the
// chat); it returns the update and the message's network id.
func tgMessage(chat telegramfake.Chat, from telegramfake.User, text string, replyTo int64) (telegramfake.Message, string) {
	tgMsgSeq[chat.ID]++
	m := telegramfake.Message{ID: tgMsgSeq[chat.ID], Chat: chat, From: from, Text: text}
	if replyTo != 0 {
		m.ReplyTo, m.ReplyToFrom = replyTo, &tgBot
	}
	return m, telegram.MessageID(chat.ID, m.ID)
}

var tgUpdateSeq int64 = 1000

func tgUpdate(m telegramfake.Message) []byte {
	tgUpdateSeq++
	return telegramfake.Update(tgUpdateSeq, m)
}

// tgWebhook posts a delivery with the secret header (none when empty).
func (h *harness) tgWebhook(body []byte, secret string) int {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL()+"/webhooks/telegram/"+tgAccount, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set(telegram.SecretHeader, secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (h *harness) tgDeliver(body []byte) {
	h.t.Helper()
	if code := h.tgWebhook(body, tgSecret); code != http.StatusOK {
		h.t.Fatalf("Telegram delivery answered %d", code)
	}
}

// Webhook mode, end to end: a private message and a group mention each
// make a case, group chatter and channel posts make nothing and are
// counted, a redelivery makes nothing new, a forged secret is refused
// with nothing stored, an edit updates the stored message, and replies
// reach the Bot API in the resident's chat answering their message, a long
// one in numbered parts, after the retry_after of a 429.
func TestTelegramWebhookEndToEnd(t *testing.T) {
	fake := telegramfake.New()
	h := newHarness(t, withTelegram(fake, telegram.ModeWebhook))

	private, privateID := tgMessage(telegramfake.PrivateChat(tgAlice), tgAlice, "My bin was not collected on Elm Road", 0)
	privateBody := tgUpdate(private)
	// Forged and missing secrets are refused, and nothing is stored.
	for _, secret := range []string{"not-the-secret", tgSecret + "x", ""} {
		if code := h.tgWebhook(privateBody, secret); code != http.StatusUnauthorized {
			t.Errorf("secret %q answered %d, want 401", secret, code)
		}
	}
	if n := h.count(`SELECT count(*) FROM messages`); n != 0 {
		t.Fatalf("refused deliveries stored %d messages", n)
	}
	if got := metric(t, h, `inbox_webhooks_total{channel="telegram",result="forged"}`); got == "" || got == "0" {
		t.Errorf("forged Telegram deliveries counted %q", got)
	}

	h.tgDeliver(privateBody)
	mention, mentionID := tgMessage(tgGroup, tgBob, "@ExampleCouncilBot the street light on Mill Lane is out", 0)
	mentionBody := tgUpdate(mention)
	h.tgDeliver(mentionBody)
	chatter, chatterID := tgMessage(tgGroup, tgAlice, "Anyone going to the fete on Saturday?", 0)
	h.tgDeliver(tgUpdate(chatter))
	h.tgDeliver(telegramfake.Raw(tgUpdateSeq+500, "channel_post", map[string]any{"message_id": 1, "chat": map[string]any{"id": -100999, "type": "channel"}, "text": "news"}))

	privateCase, mentionCase := h.waitCaseOf(privateID), h.waitCaseOf(mentionID)
	if privateCase == mentionCase {
		t.Fatal("two residents' messages made one case")
	}
	if c := h.caseDetail(privateCase); c.Messages[0].Visibility != "private" || c.Contact.ExternalID != fmt.Sprint(tgAlice.ID) || c.Contact.Handle != "alice_resident" {
		t.Errorf("private case %+v", c)
	}
	if c := h.caseDetail(mentionCase); c.Messages[0].Visibility != "public" || c.Contact.ExternalID != fmt.Sprint(tgBob.ID) {
		t.Errorf("group case %+v", c)
	}
	// Redelivered (Telegram retries until it gets a 2xx): nothing new. A
	// follow-up stored after the redeliveries joins Alice's case.
	h.tgDeliver(privateBody)
	h.tgDeliver(mentionBody)
	follow, followID := tgMessage(telegramfake.PrivateChat(tgAlice), tgAlice, "It is the blue bin", 0)
	h.tgDeliver(tgUpdate(follow))
	if got := h.waitCaseOf(followID); got != privateCase {
		t.Errorf("Alice's follow-up went to case %d, not %d", got, privateCase)
	}
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != 3 {
		t.Errorf("%d inbound messages after redeliveries, want 3", n)
	}
	if n := h.cases(); n != 2 {
		t.Errorf("%d cases, want 2", n)
	}
	if h.caseOf(chatterID) != 0 {
		t.Error("group chatter not addressed to the bot was stored")
	}
	if got := metric(t, h, `inbox_inbound_ignored_total{driver="telegram",kind="not_addressed"}`); got != "1" {
		t.Errorf("ignored group chatter counted %q, want 1", got)
	}
	if got := metric(t, h, `inbox_inbound_ignored_total{driver="telegram",kind="channel_post"}`); got != "1" {
		t.Errorf("ignored channel posts counted %q, want 1", got)
	}

	// Alice edits her first message: recorded on it, nothing new.
	edited := private
	edited.Text, edited.EditDate = "My bin was not collected on Elm Road, number 4", time.Now().Add(time.Minute)
	h.tgDeliver(tgUpdate(edited))
	h.eventually("the edit is recorded", func() bool {
		return h.count(`SELECT count(*) FROM messages WHERE external_id = ? AND edited_body = ? AND body = ?`,
			privateID, edited.Text, private.Text) == 1
	})
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != 3 {
		t.Errorf("%d inbound messages after the edit, want 3", n)
	}

	// A public reply answers Bob's message in the group, after waiting out
	// a 429's retry_after.
	fake.FailNext(1, 1)
	reply := h.reply(mentionCase, "public", "Thanks Bob, reported to our lighting contractor.")
	if got := h.waitDelivery(mentionCase, reply.ID); got.DeliveryStatus != "sent" || len(got.ExternalIDs) != 1 {
		t.Fatalf("group reply %+v", got)
	}
	sent := fake.Sent()
	if len(sent) != 1 || sent[0].ChatID != tgGroup.ID || sent[0].ReplyTo != mention.ID || !sent[0].AllowWithoutReply {
		t.Fatalf("group reply reached the Bot API as %+v", sent)
	}
	var limited, ok time.Time
	for _, r := range fake.Requests() {
		if r.Method == "sendMessage" && r.Status == http.StatusTooManyRequests {
			limited = r.At
		} else if r.Method == "sendMessage" && r.Status == http.StatusOK && ok.IsZero() {
			ok = r.At
		}
	}
	if limited.IsZero() || ok.Sub(limited) < 900*time.Millisecond {
		t.Errorf("sent again %v after the 429, want after its retry_after of 1 s", ok.Sub(limited))
	}
	// Bob answers the bot's reply in the group: it joins his case.
	answer, answerID := tgMessage(tgGroup, tgBob, "Great, thank you", sent[0].MessageID)
	h.tgDeliver(tgUpdate(answer))
	if got := h.waitCaseOf(answerID); got != mentionCase {
		t.Errorf("Bob's answer to the bot went to case %d, not %d", got, mentionCase)
	}

	// A private reply quoting Alice's message, and a long one in parts.
	code, raw := h.api(http.MethodPost, fmt.Sprintf("/cases/%d/replies", privateCase),
		map[string]any{"text": "Sorry Alice, the crew will come back today.", "visibility": "private", "in_reply_to_message_id": h.caseDetail(privateCase).Messages[0].ID})
	if code != http.StatusAccepted {
		t.Fatalf("private reply: %d %s", code, raw)
	}
	long := strings.Repeat("We have asked the crew to come back for your bin tomorrow morning. ", 130)
	longReply := h.reply(privateCase, "private", long)
	if got := h.waitDelivery(privateCase, longReply.ID); got.DeliveryStatus != "sent" || len(got.ExternalIDs) != 3 {
		t.Fatalf("long reply %+v", got)
	}
	sent = fake.Sent()[1:]
	if len(sent) != 4 {
		t.Fatalf("%d private messages sent, want the quoting one and 3 parts: %+v", len(sent), sent)
	}
	if s := sent[0]; s.ChatID != tgAlice.ID || s.ReplyTo != private.ID || s.Text != "Sorry Alice, the crew will come back today." {
		t.Errorf("private reply reached the Bot API as %+v", s)
	}
	for i, s := range sent[1:] {
		if s.ChatID != tgAlice.ID || utf8.RuneCountInString(s.Text) > telegram.MaxMessageLength || !strings.HasSuffix(s.Text, fmt.Sprintf("(%d/3)", i+1)) {
			t.Errorf("part %d: chat %d, %d characters", i+1, s.ChatID, utf8.RuneCountInString(s.Text))
		}
	}
}

// A bot token Telegram refuses (401) makes the account unhealthy: the
// reply waits, neither failed nor retried.
func TestTelegramRevokedTokenMakesTheAccountUnhealthy(t *testing.T) {
	fake := telegramfake.New()
	h := newHarness(t, withTelegram(fake, telegram.ModeWebhook))
	if a := h.accountHealth(tgAccount); !a.Healthy {
		t.Fatalf("before: %+v", a)
	}
	fake.Revoke()
	m, id := tgMessage(telegramfake.PrivateChat(tgAlice), tgAlice, "Pothole on Station Road", 0)
	h.tgDeliver(tgUpdate(m))
	caseID := h.waitCaseOf(id)
	reply := h.reply(caseID, "private", "Thanks, reported.")
	h.eventually("the account marked unhealthy", func() bool { return !h.accountHealth(tgAccount).Healthy })
	if a := h.accountHealth(tgAccount); !strings.Contains(a.Reason, "Unauthorized") || a.RepliesWaiting != 1 {
		t.Errorf("unhealthy account %+v, want Telegram's reason and one reply waiting", a)
	}
	var status string
	h.direct.Raw(`SELECT delivery_status FROM messages WHERE id = ?`, reply.ID).Scan(&status)
	if status != "queued" {
		t.Errorf("the reply is %q while the token is refused, want queued", status)
	}
	if v := metricValue(t, h, `inbox_channel_account_healthy{account="council-telegram",channel="telegram"}`); v != 0 {
		t.Errorf("healthy metric %v, want 0", v)
	}
}

// Polling mode: messages polled with getUpdates become cases; a restart
// between two polls starts from the committed offset (nothing skipped,
// nothing fetched twice); a second replica never polls the bot while the
// first does, and takes over when it stops.
func TestTelegramPolling(t *testing.T) {
	fake := telegramfake.New()
	h := newHarness(t, withTelegram(fake, telegram.ModePolling))
	if code := h.tgWebhook([]byte(`{}`), tgSecret); code != http.StatusNotFound {
		t.Errorf("a polled bot's webhook answered %d, want 404", code)
	}

	first, firstID := tgMessage(telegramfake.PrivateChat(tgAlice), tgAlice, "Fly-tipping behind the shops", 0)
	u1 := fake.Enqueue(telegramfake.Update(0, first))
	chatter, _ := tgMessage(tgGroup, tgBob, "nice weather", 0)
	u2 := fake.Enqueue(telegramfake.Update(0, chatter))
	firstCase := h.waitCaseOf(firstID)

	// Restart between two polls.
	h.stop()
	before := len(fake.Requests())
	second, secondID := tgMessage(tgGroup, tgBob, "@ExampleCouncilBot the bus shelter is smashed", 0)
	u3 := fake.Enqueue(telegramfake.Update(0, second))
	h.start()
	if got := h.waitCaseOf(secondID); got == firstCase {
		t.Error("Bob's message joined Alice's case")
	}
	for _, r := range fake.Requests()[before:] {
		if r.Method == "getUpdates" && r.Offset != u2+1 && r.Offset != u3+1 {
			t.Errorf("after the restart getUpdates asked from offset %d, want %d (then %d)", r.Offset, u2+1, u3+1)
		}
	}
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != 2 {
		t.Errorf("%d inbound messages, want 2", n)
	}
	_ = u1

	// A second replica on the same database and NATS.
	other := h.opts
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := server.Start(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = b.Shutdown(ctx)
	})
	var ids []string
	for i := range 4 {
		m, id := tgMessage(telegramfake.PrivateChat(tgBob), tgBob, fmt.Sprintf("Bins missed, week %d", i+1), 0)
		fake.Enqueue(telegramfake.Update(0, m))
		ids = append(ids, id)
		time.Sleep(300 * time.Millisecond)
	}
	for _, id := range ids {
		h.waitCaseOf(id)
	}
	time.Sleep(4 * time.Second) // more than a whole long poll with both replicas up
	h.stop()                    // the replica holding the lease hands it back, or it expires
	later, laterID := tgMessage(telegramfake.PrivateChat(tgAlice), tgAlice, "Graffiti on the bridge", 0)
	fake.Enqueue(telegramfake.Update(0, later))
	h.eventually("the other replica polls the bot", func() bool {
		return h.count(`SELECT count(*) FROM messages WHERE external_id = ?`, laterID) == 1
	})
	if n := fake.Overlaps(); n != 0 {
		t.Errorf("%d getUpdates calls while another was running (Telegram's 409)", n)
	}
	if n := h.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`); n != 7 {
		t.Errorf("%d inbound messages, want 7", n)
	}
}

// A webhook set for a polled bot makes getUpdates answer 409: logged as an
// error that says what to do.
func TestTelegramPollingWithAWebhookSetIsLogged(t *testing.T) {
	var logs lockedBuffer
	fake := telegramfake.New()
	fake.SetWebhook("https://elsewhere.example/hook")
	newHarness(t, withLogWriter(&logs), withTelegram(fake, telegram.ModePolling))
	waitFor(t, "the 409 is logged", 15*time.Second, func() bool {
		return strings.Contains(logs.String(), "409 Conflict") && strings.Contains(logs.String(), "deleteWebhook")
	})
}
