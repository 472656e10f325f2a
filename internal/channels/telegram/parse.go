package telegram

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Account is what parsing needs to know of the council's bot.
type Account struct {
	// Slug is the channel account's slug.
	Slug string
	// BotID is the bot's user id: replies to its messages address it.
	BotID int64
	// Username is the bot's username, without the @.
	Username string
}

// Kinds of update that make no message, as counted for operators.
const (
	// IgnoredBot is a message from a bot (ours included).
	IgnoredBot = "bot"
	// IgnoredChannelPost is a post in a channel (channel_post and its edits).
	IgnoredChannelPost = "channel_post"
	// IgnoredMember is a change of membership (my_chat_member, chat_member,
	// chat_join_request).
	IgnoredMember = "member"
	// IgnoredNotAddressed is a group message neither mentioning the bot nor
	// replying to it.
	IgnoredNotAddressed = "not_addressed"
	// IgnoredUnsupported is any other update, or a message without text.
	IgnoredUnsupported = "unsupported"
)

// update is one Telegram Update: only the fields read.
type update struct {
	UpdateID      int64           `json:"update_id"`
	Message       *message        `json:"message"`
	EditedMessage *message        `json:"edited_message"`
	ChannelPost   json.RawMessage `json:"channel_post"`
	EditedChannel json.RawMessage `json:"edited_channel_post"`
	MyChatMember  json.RawMessage `json:"my_chat_member"`
	ChatMember    json.RawMessage `json:"chat_member"`
	JoinRequest   json.RawMessage `json:"chat_join_request"`
}

type message struct {
	MessageID int64    `json:"message_id"`
	Date      int64    `json:"date"`
	EditDate  int64    `json:"edit_date"`
	From      *user    `json:"from"`
	Chat      *chat    `json:"chat"`
	Text      string   `json:"text"`
	Caption   string   `json:"caption"`
	Entities  []entity `json:"entities"`
	// CaptionEntities are the entities of Caption.
	CaptionEntities []entity `json:"caption_entities"`
	ReplyTo         *struct {
		MessageID int64 `json:"message_id"`
		From      *user `json:"from"`
	} `json:"reply_to_message"`
}

type user struct {
	ID        int64  `json:"id"`
	IsBot     bool   `json:"is_bot"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Username  string `json:"username"`
}

type chat struct {
	ID   int64  `json:"id"`
	Type string `json:"type"`
}

// entity marks a part of a message's text; Offset and Length count UTF-16
// code units.
type entity struct {
	Type   string `json:"type"`
	Offset int    `json:"offset"`
	Length int    `json:"length"`
	User   *user  `json:"user"`
}

// ErrNotAnUpdate is a body that is not one Telegram Update.
var ErrNotAnUpdate = errors.New("telegram: the body is not an Update")

// Parse reads one verified Update, as a webhook delivers it. It returns
// the resident's message, or the kind of update it ignored (one of the
// Ignored… kinds), or an error for an update it cannot read (no update
// id, a message without chat or id).
func Parse(body []byte, acct Account, receivedAt time.Time) (msg *channels.Inbound, ignored string, err error) {
	var u update
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&u); err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrNotAnUpdate, err)
	}
	if u.UpdateID <= 0 {
		return nil, "", fmt.Errorf("%w: update_id is missing", ErrNotAnUpdate)
	}
	return fromUpdate(u, body, acct, receivedAt)
}

func fromUpdate(u update, raw []byte, acct Account, receivedAt time.Time) (*channels.Inbound, string, error) {
	m, edited := u.Message, false
	if m == nil && u.EditedMessage != nil {
		m, edited = u.EditedMessage, true
	}
	switch {
	case m != nil:
	case u.ChannelPost != nil || u.EditedChannel != nil:
		return nil, IgnoredChannelPost, nil
	case u.MyChatMember != nil || u.ChatMember != nil || u.JoinRequest != nil:
		return nil, IgnoredMember, nil
	default:
		return nil, IgnoredUnsupported, nil
	}
	if m.Chat == nil || m.MessageID <= 0 {
		return nil, "", fmt.Errorf("telegram: update %d: the message has no chat or message_id", u.UpdateID)
	}
	if m.Chat.Type == "channel" {
		return nil, IgnoredChannelPost, nil
	}
	if m.From == nil {
		// Sent on behalf of a chat (an anonymous group admin): no resident.
		return nil, IgnoredUnsupported, nil
	}
	if m.From.IsBot {
		return nil, IgnoredBot, nil
	}
	text, entities := m.Text, m.Entities
	if text == "" {
		text, entities = m.Caption, m.CaptionEntities
	}
	if strings.TrimSpace(text) == "" {
		return nil, IgnoredUnsupported, nil // a sticker, a location, a photo without caption
	}
	vis := channels.Private
	switch m.Chat.Type {
	case "private":
	case "group", "supergroup":
		vis = channels.Public
		if !addressed(m, text, entities, acct) {
			return nil, IgnoredNotAddressed, nil
		}
	default:
		return nil, IgnoredUnsupported, nil
	}
	id := MessageID(m.Chat.ID, m.MessageID)
	in := &channels.Inbound{
		Channel:        Channel,
		Account:        acct.Slug,
		DedupeKey:      Channel + ":" + id,
		ExternalID:     id,
		Visibility:     vis,
		Text:           text,
		Author:         author(m.From),
		ConversationID: strconv.FormatInt(m.Chat.ID, 10),
		SentAt:         time.Unix(m.Date, 0).UTC(),
		ReceivedAt:     receivedAt,
		Raw:            json.RawMessage(raw),
	}
	if m.ReplyTo != nil && m.ReplyTo.MessageID > 0 {
		in.InReplyTo = MessageID(m.Chat.ID, m.ReplyTo.MessageID)
	}
	if edited {
		at := m.EditDate
		if at == 0 {
			at = m.Date
		}
		in.Change = &channels.Change{Kind: channels.Edited}
		in.SentAt = time.Unix(at, 0).UTC()
		in.DedupeKey = Channel + ":edited:" + id + ":" + strconv.FormatInt(at, 10)
	}
	return in, "", nil
}

// MessageID is the network id of message messageID in chat chatID:
// Telegram numbers messages per chat.
func MessageID(chatID, messageID int64) string {
	return strconv.FormatInt(chatID, 10) + ":" + strconv.FormatInt(messageID, 10)
}

// SplitMessageID reads a network id made by MessageID.
func SplitMessageID(id string) (chatID, messageID int64, err error) {
	i := strings.LastIndexByte(id, ':')
	if i <= 0 {
		return 0, 0, fmt.Errorf("telegram: %q is not a <chat id>:<message id>", id)
	}
	if chatID, err = strconv.ParseInt(id[:i], 10, 64); err == nil {
		messageID, err = strconv.ParseInt(id[i+1:], 10, 64)
	}
	if err != nil || messageID <= 0 {
		return 0, 0, fmt.Errorf("telegram: %q is not a <chat id>:<message id>", id)
	}
	return chatID, messageID, nil
}

func author(u *user) channels.Identity {
	name := strings.TrimSpace(u.FirstName + " " + u.LastName)
	return channels.Identity{ExternalID: strconv.FormatInt(u.ID, 10), Handle: u.Username, DisplayName: name}
}

// addressed says whether a group message is for the bot: it replies to
// one of the bot's messages, mentions the bot (@username, or a mention of
// its user id), or is a command addressed to it (/start@username).
func addressed(m *message, text string, entities []entity, acct Account) bool {
	if m.ReplyTo != nil && m.ReplyTo.From != nil && m.ReplyTo.From.ID == acct.BotID {
		return true
	}
	if acct.Username == "" {
		return false
	}
	handle := "@" + strings.ToLower(acct.Username)
	units := utf16.Encode([]rune(text))
	for _, e := range entities {
		switch e.Type {
		case "text_mention":
			if e.User != nil && e.User.ID == acct.BotID {
				return true
			}
		case "mention", "bot_command":
			if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > len(units) {
				continue
			}
			part := strings.ToLower(string(utf16.Decode(units[e.Offset : e.Offset+e.Length])))
			if part == handle || (e.Type == "bot_command" && strings.HasSuffix(part, handle)) {
				return true
			}
		}
	}
	if len(entities) > 0 {
		return false
	}
	// No entities (a client that sends none): look for the handle as a word.
	lower := strings.ToLower(text)
	for i := strings.Index(lower, handle); i >= 0; {
		end := i + len(handle)
		if end == len(lower) || !isHandleByte(lower[end]) {
			return true
		}
		next := strings.Index(lower[end:], handle)
		if next < 0 {
			break
		}
		i = end + next
	}
	return false
}

func isHandleByte(b byte) bool {
	return b == '_' || (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z')
}
