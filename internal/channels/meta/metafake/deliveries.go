package metafake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels/meta"
)

// Webhook deliveries, in the shapes Meta sends them to an app's webhook,
// for tests, benchmarks and the network simulator. Each builder returns a
// whole delivery of one update; Batch puts several in one delivery, as
// Meta does. Bodies are encoded as Meta encodes them (non-ASCII as \uXXXX,
// "/" as "\/"): sign them with Sign, never re-serialise them.

// The WhatsApp Business Account the builders' WhatsApp deliveries come
// from, and the number residents see.
const (
	WABAID             = "102290129340398"
	DisplayPhoneNumber = "441632960001"
)

// User is a resident as deliveries describe them: ID is their Page-scoped
// id (PSID), Instagram-scoped id (IGSID) or WhatsApp id (wa_id, the phone
// number); Name their name (Facebook, WhatsApp), Username their Instagram
// username.
type User struct {
	ID, Name, Username string
}

// Message is a resident's private message.
type Message struct {
	// ID is the message's mid (Messenger, Instagram) or wamid (WhatsApp).
	ID   string
	From User
	Text string
	// At is when it was sent; the zero time is now.
	At time.Time
	// ReplyTo is the message it answers: reply_to.mid on Messenger and
	// Instagram, context.id on WhatsApp.
	ReplyTo     string
	Attachments []Attachment
	// Echo makes it the account's own message to From, as Meta echoes
	// what the account sent (is_echo).
	Echo bool
}

// Attachment is a Messenger or Instagram attachment.
type Attachment struct {
	Type, URL, Title string
}

// Comment is a resident's public comment.
type Comment struct {
	ID   string
	From User
	Text string
	// At is when it was written; the zero time is now.
	At time.Time
	// Post is the Page post or Instagram media commented on.
	Post string
	// Parent is the comment it answers; empty for a comment on the post
	// itself.
	Parent string
	// Verb is a Page comment's change: add (when empty), edited or remove.
	Verb string
}

// Status is WhatsApp's receipt for a message the account sent.
type Status struct {
	// ID is the wamid of our message; Status sent, delivered, read or
	// failed; Recipient the resident's wa_id.
	ID, Status, Recipient string
	At                    time.Time
	// Errors say why a failed message failed.
	Errors []StatusError
}

// StatusError is one of a failed status's errors.
type StatusError struct {
	Code           int
	Title, Message string
}

// MessengerMessage is a Messenger delivery (object page) of m to the Page.
func MessengerMessage(pageID string, m Message) []byte {
	return delivery("page", messagingEntry(pageID, m))
}

// InstagramMessage is an Instagram messaging delivery (object instagram)
// of m to the Instagram account.
func InstagramMessage(igID string, m Message) []byte {
	return delivery("instagram", messagingEntry(igID, m))
}

func messagingEntry(account string, m Message) map[string]any {
	at := now(m.At)
	msg := map[string]any{"mid": m.ID}
	if m.Text != "" {
		msg["text"] = m.Text
	}
	if m.ReplyTo != "" {
		msg["reply_to"] = map[string]any{"mid": m.ReplyTo}
	}
	if len(m.Attachments) > 0 {
		var atts []any
		for _, a := range m.Attachments {
			payload := map[string]any{}
			if a.URL != "" {
				payload["url"] = a.URL
			}
			if a.Title != "" {
				payload["title"] = a.Title
			}
			atts = append(atts, map[string]any{"type": a.Type, "payload": payload})
		}
		msg["attachments"] = atts
	}
	sender, recipient := m.From.ID, account
	if m.Echo {
		msg["is_echo"] = true
		sender, recipient = account, m.From.ID
	}
	return map[string]any{
		"id":   account,
		"time": at.UnixMilli(),
		"messaging": []any{map[string]any{
			"sender":    map[string]any{"id": sender},
			"recipient": map[string]any{"id": recipient},
			"timestamp": at.UnixMilli(),
			"message":   msg,
		}},
	}
}

// PageComment is a Page feed delivery of c: a comment added (or, by
// c.Verb, edited or removed) on the Page's post c.Post. A comment on the
// post itself has the post as its parent_id, as Meta sends it.
func PageComment(pageID string, c Comment) []byte {
	at := now(c.At)
	verb := c.Verb
	if verb == "" {
		verb = "add"
	}
	parent := c.Parent
	if parent == "" {
		parent = c.Post
	}
	value := map[string]any{
		"from":         map[string]any{"id": c.From.ID, "name": c.From.Name},
		"post":         map[string]any{"id": c.Post, "status_type": "added_photos", "is_published": true},
		"post_id":      c.Post,
		"comment_id":   c.ID,
		"parent_id":    parent,
		"created_time": at.Unix(),
		"item":         "comment",
		"verb":         verb,
	}
	if verb != "remove" {
		value["message"] = c.Text
	}
	return delivery("page", map[string]any{
		"id":      pageID,
		"time":    at.Unix(),
		"changes": []any{map[string]any{"field": "feed", "value": value}},
	})
}

// InstagramComment is an Instagram comments delivery of c on the media
// c.Post, answering c.Parent when it is set.
func InstagramComment(igID string, c Comment) []byte {
	at := now(c.At)
	value := map[string]any{
		"from":  map[string]any{"id": c.From.ID, "username": c.From.Username},
		"media": map[string]any{"id": c.Post, "media_product_type": "FEED"},
		"id":    c.ID,
		"text":  c.Text,
	}
	if c.Parent != "" {
		value["parent_id"] = c.Parent
	}
	return delivery("instagram", map[string]any{
		"id":      igID,
		"time":    at.Unix(),
		"changes": []any{map[string]any{"field": "comments", "value": value}},
	})
}

// WhatsAppMessage is a WhatsApp Cloud delivery of a resident's text
// message to the phone number; m.From.ID is their wa_id.
func WhatsAppMessage(phoneNumberID string, m Message) []byte {
	msg := map[string]any{
		"from":      m.From.ID,
		"id":        m.ID,
		"timestamp": strconv.FormatInt(now(m.At).Unix(), 10),
		"type":      "text",
		"text":      map[string]any{"body": m.Text},
	}
	if m.ReplyTo != "" {
		msg["context"] = map[string]any{"from": DisplayPhoneNumber, "id": m.ReplyTo}
	}
	return whatsappDelivery(phoneNumberID, map[string]any{
		"contacts": []any{map[string]any{"profile": map[string]any{"name": m.From.Name}, "wa_id": m.From.ID}},
		"messages": []any{msg},
	})
}

// WhatsAppStatus is a WhatsApp Cloud delivery of a status of a message the
// phone number sent.
func WhatsAppStatus(phoneNumberID string, st Status) []byte {
	status := map[string]any{
		"id":           st.ID,
		"status":       st.Status,
		"timestamp":    strconv.FormatInt(now(st.At).Unix(), 10),
		"recipient_id": st.Recipient,
	}
	if st.Status != "failed" {
		status["conversation"] = map[string]any{"id": "CONVERSATION_ID", "origin": map[string]any{"type": "service"}}
		status["pricing"] = map[string]any{"billable": false, "pricing_model": "PMP", "category": "service"}
	}
	if len(st.Errors) > 0 {
		var errs []any
		for _, e := range st.Errors {
			errs = append(errs, map[string]any{"code": e.Code, "title": e.Title, "message": e.Message,
				"error_data": map[string]any{"details": e.Message}})
		}
		status["errors"] = errs
	}
	return whatsappDelivery(phoneNumberID, map[string]any{"statuses": []any{status}})
}

func whatsappDelivery(phoneNumberID string, value map[string]any) []byte {
	value["messaging_product"] = "whatsapp"
	value["metadata"] = map[string]any{"display_phone_number": DisplayPhoneNumber, "phone_number_id": phoneNumberID}
	// Meta's samples carry no entry time; entry.id is the business
	// account, not the number.
	return delivery("whatsapp_business_account", map[string]any{
		"id":      WABAID,
		"changes": []any{map[string]any{"field": "messages", "value": value}},
	})
}

// Batch puts the entries of several deliveries of one object (page,
// instagram or whatsapp_business_account) in one delivery, in order, as
// Meta batches updates. Deliveries of different objects cannot share one:
// Batch panics, as on a delivery that is not one of the builders'.
func Batch(deliveries ...[]byte) []byte {
	var object string
	var entries []any
	for i, d := range deliveries {
		var b struct {
			Object string `json:"object"`
			Entry  []any  `json:"entry"`
		}
		// Decoded and encoded again whole, numbers kept as written: the
		// escapes of the delivery's text are made once, by encode.
		dec := json.NewDecoder(bytes.NewReader(d))
		dec.UseNumber()
		if err := dec.Decode(&b); err != nil {
			panic(fmt.Sprintf("metafake: Batch: delivery %d is not a delivery: %v", i, err))
		}
		if i > 0 && b.Object != object {
			panic(fmt.Sprintf("metafake: Batch: delivery %d is for %q, not %q", i, b.Object, object))
		}
		object = b.Object
		entries = append(entries, b.Entry...)
	}
	return encode(map[string]any{"object": object, "entry": entries})
}

// Sign is the X-Hub-Signature-256 header's value for body under the app
// secret: the driver's own signing.
func Sign(body []byte, appSecret string) string {
	return meta.Sign(appSecret, body)
}

func delivery(object string, entry map[string]any) []byte {
	return encode(map[string]any{"object": object, "entry": []any{entry}})
}

func now(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// encode writes a delivery built from maps, strings and slices (which
// cannot fail) as Meta does: compact, with every non-ASCII character as
// \uXXXX (UTF-16, so surrogate pairs beyond the BMP) and "/" as "\/".
// Both occur only inside JSON strings, so the whole text can be rewritten.
func encode(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("metafake: encoding a delivery: " + err.Error())
	}
	plain := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	out := make([]byte, 0, len(plain)+len(plain)/8)
	for len(plain) > 0 {
		r, size := utf8.DecodeRune(plain)
		switch {
		case r == '/':
			out = append(out, '\\', '/')
		case r < utf8.RuneSelf:
			out = append(out, byte(r))
		case r > 0xFFFF:
			r -= 0x10000
			out = fmt.Appendf(out, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		plain = plain[size:]
	}
	return out
}
