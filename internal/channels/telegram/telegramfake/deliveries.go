package telegramfake

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf16"
)

// User is a Telegram user as updates describe them.
type User struct {
	ID        int64  `json:"id"`
	IsBot     bool   `json:"is_bot"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name,omitempty"`
	Username  string `json:"username,omitempty"`
}

// Chat is a chat as updates describe it: private (its id is the user's),
// group or supergroup (negative ids).
type Chat struct {
	ID    int64  `json:"id"`
	Type  string `json:"type"`
	Title string `json:"title,omitempty"`
}

// PrivateChat is u's private chat with the bot.
func PrivateChat(u User) Chat { return Chat{ID: u.ID, Type: "private"} }

// Message is a message to build an update of.
type Message struct {
	ID   int64
	Chat Chat
	From User
	Text string
	Date time.Time
	// ReplyTo is the message answered: its id, and its author (the bot,
	// for a reply to the council).
	ReplyTo     int64
	ReplyToFrom *User
	// EditDate makes the update an edited_message.
	EditDate time.Time
}

type entity struct {
	Type   string `json:"type"`
	Offset int    `json:"offset"`
	Length int    `json:"length"`
}

type wireMessage struct {
	MessageID int64    `json:"message_id"`
	Date      int64    `json:"date"`
	EditDate  int64    `json:"edit_date,omitempty"`
	From      User     `json:"from"`
	Chat      Chat     `json:"chat"`
	Text      string   `json:"text"`
	Entities  []entity `json:"entities,omitempty"`
	ReplyTo   *struct {
		MessageID int64 `json:"message_id"`
		Date      int64 `json:"date"`
		From      *User `json:"from,omitempty"`
		Chat      Chat  `json:"chat"`
	} `json:"reply_to_message,omitempty"`
}

// Update is the JSON of one update carrying m (as message, or as
// edited_message when m.EditDate is set), with mention entities for every
// @word in its text, offsets in UTF-16 units as Telegram counts them.
func Update(updateID int64, m Message) []byte {
	if m.Date.IsZero() {
		m.Date = time.Now()
	}
	w := wireMessage{MessageID: m.ID, Date: m.Date.Unix(), From: m.From, Chat: m.Chat, Text: m.Text, Entities: mentions(m.Text)}
	if !m.EditDate.IsZero() {
		w.EditDate = m.EditDate.Unix()
	}
	if m.ReplyTo != 0 {
		w.ReplyTo = &struct {
			MessageID int64 `json:"message_id"`
			Date      int64 `json:"date"`
			From      *User `json:"from,omitempty"`
			Chat      Chat  `json:"chat"`
		}{MessageID: m.ReplyTo, Date: m.Date.Unix() - 60, From: m.ReplyToFrom, Chat: m.Chat}
	}
	key := "message"
	if !m.EditDate.IsZero() {
		key = "edited_message"
	}
	raw, _ := json.Marshal(map[string]any{"update_id": updateID, key: w})
	return raw
}

// Raw is an update of a kind the inbox does not read, such as
// "channel_post" or "my_chat_member", with value as its body.
func Raw(updateID int64, kind string, value any) []byte {
	raw, _ := json.Marshal(map[string]any{"update_id": updateID, kind: value})
	return raw
}

// mentions finds the @usernames in text.
func mentions(text string) []entity {
	var out []entity
	units := utf16.Encode([]rune(text))
	for i := 0; i < len(units); i++ {
		if units[i] != '@' || (i > 0 && isWord(units[i-1])) {
			continue
		}
		j := i + 1
		for j < len(units) && isWord(units[j]) {
			j++
		}
		if j-i > 1 {
			out = append(out, entity{Type: "mention", Offset: i, Length: j - i})
		}
		i = j - 1
	}
	return out
}

func isWord(u uint16) bool {
	return u == '_' || (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')
}

// Mention puts the bot's handle before text, as a resident addresses the
// bot in a group.
func Mention(username, text string) string {
	return "@" + strings.TrimPrefix(username, "@") + " " + text
}
