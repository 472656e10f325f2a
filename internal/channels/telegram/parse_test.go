package telegram_test

import (
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/telegram"
	"github.com/citizeninbox/inbox/internal/channels/telegram/telegramfake"
)

var (
	bot     = telegram.Account{Slug: "council-telegram", BotID: telegramfake.BotID, Username: telegramfake.Username}
	alice   = telegramfake.User{ID: 5100000001, FirstName: "Alice", LastName: "Example", Username: "alice_resident"}
	group   = telegramfake.Chat{ID: -1001234567890, Type: "supergroup", Title: "Example Town"}
	botUser = telegramfake.User{ID: telegramfake.BotID, IsBot: true, FirstName: "Example Council", Username: telegramfake.Username}
)

func TestParse(t *testing.T) {
	now := time.Unix(1764669600, 0)
	tests := []struct {
		name    string
		body    []byte
		ignored string
		want    *channels.Inbound
	}{
		{"private message", telegramfake.Update(10, telegramfake.Message{ID: 7, Chat: telegramfake.PrivateChat(alice), From: alice, Text: "My bin was not collected", Date: now}), "",
			&channels.Inbound{DedupeKey: "telegram:5100000001:7", ExternalID: "5100000001:7", Visibility: channels.Private, Text: "My bin was not collected", ConversationID: "5100000001"}},
		{"group mention", telegramfake.Update(11, telegramfake.Message{ID: 8, Chat: group, From: alice, Text: "Hi 👋 @examplecouncilbot the lamp is out", Date: now}), "",
			&channels.Inbound{DedupeKey: "telegram:-1001234567890:8", ExternalID: "-1001234567890:8", Visibility: channels.Public, Text: "Hi 👋 @examplecouncilbot the lamp is out", ConversationID: "-1001234567890"}},
		{"group reply to the bot", telegramfake.Update(12, telegramfake.Message{ID: 9, Chat: group, From: alice, Text: "Thanks!", Date: now, ReplyTo: 3, ReplyToFrom: &botUser}), "",
			&channels.Inbound{DedupeKey: "telegram:-1001234567890:9", ExternalID: "-1001234567890:9", Visibility: channels.Public, Text: "Thanks!", ConversationID: "-1001234567890", InReplyTo: "-1001234567890:3"}},
		{"edited private message", telegramfake.Update(13, telegramfake.Message{ID: 7, Chat: telegramfake.PrivateChat(alice), From: alice, Text: "My blue bin", Date: now, EditDate: now.Add(time.Minute)}), "",
			&channels.Inbound{DedupeKey: "telegram:edited:5100000001:7:1764669660", ExternalID: "5100000001:7", Visibility: channels.Private, Text: "My blue bin", ConversationID: "5100000001", Change: &channels.Change{Kind: channels.Edited}}},
		{"group chatter", telegramfake.Update(14, telegramfake.Message{ID: 10, Chat: group, From: alice, Text: "anyone seen my cat? @someone_else", Date: now}), telegram.IgnoredNotAddressed, nil},
		{"another bot's handle containing ours", telegramfake.Update(15, telegramfake.Message{ID: 11, Chat: group, From: alice, Text: "@ExampleCouncilBotFan hi", Date: now}), telegram.IgnoredNotAddressed, nil},
		{"a bot", telegramfake.Update(16, telegramfake.Message{ID: 12, Chat: telegramfake.PrivateChat(botUser), From: botUser, Text: "hello", Date: now}), telegram.IgnoredBot, nil},
		{"channel post", telegramfake.Raw(17, "channel_post", map[string]any{"message_id": 1, "chat": map[string]any{"id": -100777, "type": "channel"}, "text": "news"}), telegram.IgnoredChannelPost, nil},
		{"membership", telegramfake.Raw(18, "my_chat_member", map[string]any{}), telegram.IgnoredMember, nil},
		{"callback", telegramfake.Raw(19, "callback_query", map[string]any{"id": "1"}), telegram.IgnoredUnsupported, nil},
		{"sticker", []byte(`{"update_id":20,"message":{"message_id":13,"date":1,"chat":{"id":5,"type":"private"},"from":{"id":5,"is_bot":false,"first_name":"A"},"sticker":{}}}`), telegram.IgnoredUnsupported, nil},
		{"photo caption", []byte(`{"update_id":21,"message":{"message_id":14,"date":1764669600,"chat":{"id":5,"type":"private"},"from":{"id":5,"is_bot":false,"first_name":"A"},"photo":[{}],"caption":"This pothole"}}`), "",
			&channels.Inbound{DedupeKey: "telegram:5:14", ExternalID: "5:14", Visibility: channels.Private, Text: "This pothole", ConversationID: "5"}},
		{"command to the bot", []byte(`{"update_id":22,"message":{"message_id":15,"date":1764669600,"chat":{"id":-5,"type":"group"},"from":{"id":5,"is_bot":false,"first_name":"A"},"text":"/report@ExampleCouncilBot bins","entities":[{"type":"bot_command","offset":0,"length":25}]}}`), "",
			&channels.Inbound{DedupeKey: "telegram:-5:15", ExternalID: "-5:15", Visibility: channels.Public, Text: "/report@ExampleCouncilBot bins", ConversationID: "-5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, ignored, err := telegram.Parse(tt.body, bot, now)
			if err != nil {
				t.Fatal(err)
			}
			if ignored != tt.ignored {
				t.Errorf("ignored %q, want %q", ignored, tt.ignored)
			}
			if (in == nil) != (tt.want == nil) {
				t.Fatalf("message %+v, want %+v", in, tt.want)
			}
			if in == nil {
				return
			}
			if err := in.Validate(); err != nil {
				t.Error(err)
			}
			w := tt.want
			if in.Channel != "telegram" || in.Account != bot.Slug || in.DedupeKey != w.DedupeKey || in.ExternalID != w.ExternalID ||
				in.Visibility != w.Visibility || in.Text != w.Text || in.ConversationID != w.ConversationID || in.InReplyTo != w.InReplyTo ||
				(in.Change == nil) != (w.Change == nil) || in.SentAt.IsZero() || len(in.Raw) == 0 {
				t.Errorf("got %+v\nwant %+v", in, w)
			}
		})
	}
	in, _, _ := telegram.Parse(tests[0].body, bot, now)
	if in.Author.ExternalID != "5100000001" || in.Author.Handle != "alice_resident" || in.Author.DisplayName != "Alice Example" {
		t.Errorf("author %+v", in.Author)
	}
	for _, bad := range []string{``, `[]`, `{"message":{}}`, `{"update_id":1,"message":{"text":"x"}}`} {
		if _, _, err := telegram.Parse([]byte(bad), bot, now); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestMessageIDs(t *testing.T) {
	for _, tt := range []struct {
		chat, msg int64
	}{{5, 1}, {-1001234567890, 9007199254740993}} {
		c, m, err := telegram.SplitMessageID(telegram.MessageID(tt.chat, tt.msg))
		if err != nil || c != tt.chat || m != tt.msg {
			t.Errorf("%d:%d came back %d:%d %v", tt.chat, tt.msg, c, m, err)
		}
	}
	for _, bad := range []string{"", "5", ":5", "5:", "a:1", "5:0", "5:-1"} {
		if _, _, err := telegram.SplitMessageID(bad); err == nil {
			t.Errorf("%q split", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(telegramfake.Update(1, telegramfake.Message{ID: 7, Chat: group, From: alice, Text: "@ExampleCouncilBot 👋🏽 hi"}))
	f.Add(telegramfake.Update(2, telegramfake.Message{ID: 7, Chat: telegramfake.PrivateChat(alice), From: alice, Text: "x", EditDate: time.Now()}))
	f.Add([]byte(`{"update_id":3,"message":{"message_id":1,"chat":{"id":-1,"type":"group"},"from":{"id":2},"text":"ab","entities":[{"type":"mention","offset":1,"length":99}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		in, ignored, err := telegram.Parse(body, bot, time.Now())
		switch {
		case err != nil && (in != nil || ignored != ""):
			t.Fatalf("an error with a result: %v %+v %q", err, in, ignored)
		case in != nil:
			if err := in.Validate(); err != nil {
				t.Fatalf("invalid message %+v: %v", in, err)
			}
			if !strings.HasPrefix(in.DedupeKey, "telegram:") {
				t.Fatalf("dedupe key %q", in.DedupeKey)
			}
		}
	})
}
