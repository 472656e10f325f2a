package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Routes map the ids Meta names in updates to channel accounts' slugs.
type Routes struct {
	Pages     map[string]string
	Instagram map[string]string
	Numbers   map[string]string
}

// Ignored counts the updates of a delivery that make no message, by kind:
// echoes of our own messages, delivery receipts (WhatsApp statuses, which
// are for the sender's records), updates of accounts not configured, and
// kinds or fields this driver does not read. A delivery of nothing but
// these is answered 200, so Meta does not retry it.
type Ignored map[string]int

func (ig Ignored) add(kind string) { ig[kind]++ }

// Kinds folds the counts into the few kinds operators watch: echo,
// account (not configured), status, unsupported (a kind of update or
// message this driver does not read).
func (ig Ignored) Kinds() map[string]int {
	out := map[string]int{}
	for k, n := range ig {
		switch k {
		case "echo", "status":
			out[k] += n
		case "account not configured":
			out["account"] += n
		default:
			out["unsupported"] += n
		}
	}
	return out
}

// delivery is a webhook body: object names the product.
type delivery struct {
	Object string  `json:"object"`
	Entry  []entry `json:"entry"`
}

type entry struct {
	ID        string      `json:"id"`
	Messaging []messaging `json:"messaging"`
	Changes   []change    `json:"changes"`
}

type messaging struct {
	Sender    struct{ ID string } `json:"sender"`
	Recipient struct{ ID string } `json:"recipient"`
	Timestamp json.Number         `json:"timestamp"`
	Message   *struct {
		MID     string `json:"mid"`
		Text    string `json:"text"`
		IsEcho  bool   `json:"is_echo"`
		ReplyTo *struct {
			MID string `json:"mid"`
		} `json:"reply_to"`
		Attachments []struct {
			Type    string `json:"type"`
			Payload struct {
				URL   string `json:"url"`
				Title string `json:"title"`
			} `json:"payload"`
		} `json:"attachments"`
	} `json:"message"`
	// MessageEdit is a resident's edit of a message they sent
	// (message_edits field).
	MessageEdit *struct {
		MID     string      `json:"mid"`
		Text    string      `json:"text"`
		NumEdit json.Number `json:"num_edit"`
	} `json:"message_edit"`
}

type change struct {
	Field string          `json:"field"`
	Value json.RawMessage `json:"value"`
}

// Parse reads a verified delivery of any Meta product: every entry[] and
// every messaging[] or changes[] update in it. Resident messages become
// Inbound; what makes no message is counted in Ignored; an update that
// cannot be read (no id, no author) is skipped and named in the error,
// with the others' messages still returned. Verify the signature first.
func Parse(body []byte, routes Routes, receivedAt time.Time) ([]channels.Inbound, Ignored, error) {
	var d delivery
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, nil, fmt.Errorf("meta: delivery is not JSON of the webhook's shape: %w", err)
	}
	ig := Ignored{}
	var out []channels.Inbound
	var skipped []error
	skip := func(where string, err error) { skipped = append(skipped, fmt.Errorf("meta: %s: %w", where, err)) }
	for i, e := range d.Entry {
		where := fmt.Sprintf("entry[%d]", i)
		switch d.Object {
		case "page", "instagram":
			channel, accounts := Facebook, routes.Pages
			if d.Object == "instagram" {
				channel, accounts = Instagram, routes.Instagram
			}
			for j, m := range e.Messaging {
				in, kind, err := direct(channel, accounts, e.ID, m, receivedAt)
				switch {
				case err != nil:
					skip(fmt.Sprintf("%s.messaging[%d]", where, j), err)
				case kind != "":
					ig.add(kind)
				default:
					out = append(out, in)
				}
			}
			for j, c := range e.Changes {
				in, kind, err := comment(channel, accounts, e.ID, c, receivedAt)
				switch {
				case err != nil:
					skip(fmt.Sprintf("%s.changes[%d]", where, j), err)
				case kind != "":
					ig.add(kind)
				default:
					out = append(out, in)
				}
			}
		case "whatsapp_business_account":
			for j, c := range e.Changes {
				ins, err := whatsapp(routes.Numbers, c, receivedAt, ig)
				if err != nil {
					skip(fmt.Sprintf("%s.changes[%d]", where, j), err)
				}
				out = append(out, ins...)
			}
		default:
			ig.add("object " + d.Object)
		}
	}
	return out, ig, errors.Join(skipped...)
}

var errNoID = errors.New("the update names no message id or author")

// direct reads a Messenger or Instagram message.
func direct(channel string, accounts map[string]string, entryID string, m messaging, receivedAt time.Time) (channels.Inbound, string, error) {
	if m.MessageEdit != nil {
		return directEdit(channel, accounts, entryID, m, receivedAt)
	}
	if m.Message == nil {
		return channels.Inbound{}, "messaging without a message (read, delivery, postback, reaction)", nil
	}
	if m.Message.IsEcho {
		return channels.Inbound{}, "echo", nil
	}
	own := m.Recipient.ID
	if own == "" {
		own = entryID
	}
	account, ok := accounts[own]
	if !ok {
		return channels.Inbound{}, "account not configured", nil
	}
	if m.Sender.ID == own {
		return channels.Inbound{}, "echo", nil
	}
	if m.Message.MID == "" || m.Sender.ID == "" {
		return channels.Inbound{}, "", errNoID
	}
	text := m.Message.Text
	for _, a := range m.Message.Attachments {
		text = joinLine(text, attachment(a.Type, a.Payload.Title, a.Payload.URL))
	}
	in := channels.Inbound{
		Channel: channel, Account: account, DedupeKey: channel + ":" + m.Message.MID, ExternalID: m.Message.MID,
		Visibility: channels.Private, Text: text, Author: channels.Identity{ExternalID: m.Sender.ID},
		SentAt: millis(m.Timestamp, receivedAt), ReceivedAt: receivedAt,
	}
	if m.Message.ReplyTo != nil {
		in.InReplyTo = m.Message.ReplyTo.MID
	}
	raw, _ := json.Marshal(m)
	in.Raw = raw
	return in, "", nil
}

// directEdit reads a resident's edit of a Messenger or Instagram message:
// a change to the stored message, never a message of its own.
func directEdit(channel string, accounts map[string]string, entryID string, m messaging, receivedAt time.Time) (channels.Inbound, string, error) {
	own := m.Recipient.ID
	if own == "" {
		own = entryID
	}
	account, ok := accounts[own]
	_, ours := accounts[m.Sender.ID]
	switch {
	case ours || m.Sender.ID == own:
		return channels.Inbound{}, "echo", nil
	case !ok:
		return channels.Inbound{}, "account not configured", nil
	case m.MessageEdit.MID == "" || m.Sender.ID == "":
		return channels.Inbound{}, "", errNoID
	}
	at := millis(m.Timestamp, receivedAt)
	in := channels.Inbound{
		Channel: channel, Account: account, ExternalID: m.MessageEdit.MID, Visibility: channels.Private,
		Text: m.MessageEdit.Text, Author: channels.Identity{ExternalID: m.Sender.ID},
		SentAt: at, ReceivedAt: receivedAt, Change: &channels.Change{Kind: channels.Edited},
		DedupeKey: channel + ":" + channels.Edited + ":" + m.MessageEdit.MID + ":" + m.MessageEdit.NumEdit.String() + ":" +
			strconv.FormatInt(at.UnixNano(), 10),
	}
	raw, _ := json.Marshal(m)
	in.Raw = raw
	return in, "", nil
}

// attachment is a readable line for an attachment: its kind, title and
// link.
func attachment(kind, title, url string) string {
	if kind == "" {
		kind = "attachment"
	}
	line := "[" + kind + "]"
	if title != "" {
		line += " " + title
	}
	if url != "" {
		line += " " + url
	}
	return line
}

func joinLine(a, b string) string {
	if a == "" {
		return b
	}
	return a + "\n" + b
}

// feedValue is a Page feed change; commentsValue an Instagram comment.
type feedValue struct {
	Item      string      `json:"item"`
	Verb      string      `json:"verb"`
	CommentID string      `json:"comment_id"`
	PostID    string      `json:"post_id"`
	ParentID  string      `json:"parent_id"`
	Message   string      `json:"message"`
	Created   json.Number `json:"created_time"`
	From      struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"from"`
}

type commentsValue struct {
	ID        string `json:"id"`
	CommentID string `json:"comment_id"`
	Text      string `json:"text"`
	ParentID  string `json:"parent_id"`
	From      struct {
		ID       string `json:"id"`
		Username string `json:"username"`
	} `json:"from"`
	Media struct {
		ID string `json:"id"`
	} `json:"media"`
}

// comment reads a Page comment (feed) or an Instagram comment (comments):
// public, threaded by post or media and parent comment.
func comment(channel string, accounts map[string]string, entryID string, c change, receivedAt time.Time) (channels.Inbound, string, error) {
	account, ok := accounts[entryID]
	if !ok {
		return channels.Inbound{}, "account not configured", nil
	}
	in := channels.Inbound{Channel: channel, Account: account, Visibility: channels.Public, ReceivedAt: receivedAt,
		Raw: append(json.RawMessage(nil), c.Value...)}
	switch {
	case channel == Facebook && c.Field == "feed":
		var v feedValue
		if err := json.Unmarshal(c.Value, &v); err != nil {
			return channels.Inbound{}, "", fmt.Errorf("feed value: %w", err)
		}
		if v.Item != "comment" {
			return channels.Inbound{}, "feed " + v.Item, nil
		}
		switch v.Verb {
		case "add":
		case "edited", "remove":
			// Edits and removals change the stored comment, never make one.
			if v.CommentID == "" || v.From.ID == "" {
				return channels.Inbound{}, "", errNoID
			}
			kind := channels.Edited
			if v.Verb == "remove" {
				kind = channels.Removed
			}
			at := seconds(v.Created, receivedAt)
			in.ExternalID, in.Text, in.ConversationID = v.CommentID, v.Message, v.PostID
			in.Author = channels.Identity{ExternalID: v.From.ID, DisplayName: v.From.Name}
			in.SentAt, in.Change = at, &channels.Change{Kind: kind}
			in.DedupeKey = channel + ":" + kind + ":" + v.CommentID + ":" + strconv.FormatInt(at.UnixNano(), 10)
			return in, "", nil
		default:
			return channels.Inbound{}, "comment " + v.Verb, nil
		}
		if v.From.ID == entryID {
			return channels.Inbound{}, "echo", nil
		}
		if v.CommentID == "" || v.From.ID == "" {
			return channels.Inbound{}, "", errNoID
		}
		in.ExternalID, in.Text, in.ConversationID = v.CommentID, v.Message, v.PostID
		in.Author = channels.Identity{ExternalID: v.From.ID, DisplayName: v.From.Name}
		in.InReplyTo = v.PostID
		if v.ParentID != "" {
			in.InReplyTo = v.ParentID
		}
		in.SentAt = seconds(v.Created, receivedAt)
	case channel == Instagram && c.Field == "comments":
		var v commentsValue
		if err := json.Unmarshal(c.Value, &v); err != nil {
			return channels.Inbound{}, "", fmt.Errorf("comments value: %w", err)
		}
		id := v.ID
		if id == "" {
			id = v.CommentID
		}
		if v.From.ID == entryID {
			return channels.Inbound{}, "echo", nil
		}
		if id == "" || v.From.ID == "" {
			return channels.Inbound{}, "", errNoID
		}
		in.ExternalID, in.Text, in.ConversationID = id, v.Text, v.Media.ID
		in.Author = channels.Identity{ExternalID: v.From.ID, Handle: v.From.Username}
		in.InReplyTo = v.Media.ID
		if v.ParentID != "" {
			in.InReplyTo = v.ParentID
		}
		in.SentAt = receivedAt
	default:
		return channels.Inbound{}, "field " + c.Field, nil
	}
	in.DedupeKey = channel + ":" + in.ExternalID
	return in, "", nil
}

// whatsappValue is a WhatsApp Cloud change.
type whatsappValue struct {
	Metadata struct {
		PhoneNumberID string `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []struct {
		WaID    string `json:"wa_id"`
		Profile struct {
			Name string `json:"name"`
		} `json:"profile"`
	} `json:"contacts"`
	Messages []json.RawMessage `json:"messages"`
	Statuses []json.RawMessage `json:"statuses"`
}

type whatsappMessage struct {
	From      string `json:"from"`
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Type      string `json:"type"`
	Text      struct {
		Body string `json:"body"`
	} `json:"text"`
	Context *struct {
		ID string `json:"id"`
	} `json:"context"`
	Image    *whatsappMedia `json:"image"`
	Video    *whatsappMedia `json:"video"`
	Audio    *whatsappMedia `json:"audio"`
	Document *whatsappMedia `json:"document"`
	Sticker  *whatsappMedia `json:"sticker"`
	Location *struct {
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
		Name      string  `json:"name"`
		Address   string  `json:"address"`
	} `json:"location"`
	Contacts []struct {
		Name struct {
			FormattedName string `json:"formatted_name"`
		} `json:"name"`
		Phones []struct {
			Phone string `json:"phone"`
		} `json:"phones"`
	} `json:"contacts"`
	Button *struct {
		Text string `json:"text"`
	} `json:"button"`
	Interactive *struct {
		ButtonReply *struct {
			Title string `json:"title"`
		} `json:"button_reply"`
		ListReply *struct {
			Title string `json:"title"`
		} `json:"list_reply"`
	} `json:"interactive"`
}

type whatsappMedia struct {
	ID       string `json:"id"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
	MimeType string `json:"mime_type"`
}

// whatsapp reads a WhatsApp change: its messages, each private, threaded
// by (phone number, wa_id); its statuses are counted, not messages.
func whatsapp(numbers map[string]string, c change, receivedAt time.Time, ig Ignored) ([]channels.Inbound, error) {
	if c.Field != "messages" {
		ig.add("field " + c.Field)
		return nil, nil
	}
	var v whatsappValue
	if err := json.Unmarshal(c.Value, &v); err != nil {
		return nil, fmt.Errorf("messages value: %w", err)
	}
	account, ok := numbers[v.Metadata.PhoneNumberID]
	if !ok {
		ig.add("account not configured")
		return nil, nil
	}
	var out []channels.Inbound
	var skipped []error
	for k, raw := range v.Statuses {
		in, ok, err := whatsappReceipt(account, raw, receivedAt)
		switch {
		case err != nil:
			skipped = append(skipped, fmt.Errorf("statuses[%d]: %w", k, err))
		case !ok:
			ig.add("status")
		default:
			out = append(out, in)
		}
	}
	names := map[string]string{}
	for _, ct := range v.Contacts {
		names[ct.WaID] = ct.Profile.Name
	}
	for k, raw := range v.Messages {
		var m whatsappMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			skipped = append(skipped, fmt.Errorf("messages[%d]: %w", k, err))
			continue
		}
		if m.ID == "" || m.From == "" {
			skipped = append(skipped, fmt.Errorf("messages[%d]: %w", k, errNoID))
			continue
		}
		text, ok := whatsappText(m)
		if !ok {
			ig.add("whatsapp " + m.Type)
			continue
		}
		in := channels.Inbound{
			Channel: WhatsApp, Account: account, DedupeKey: WhatsApp + ":" + m.ID, ExternalID: m.ID,
			Visibility: channels.Private, Text: text,
			Author: channels.Identity{ExternalID: m.From, Handle: "+" + m.From, DisplayName: names[m.From]},
			SentAt: seconds(json.Number(m.Timestamp), receivedAt), ReceivedAt: receivedAt,
			Raw: append(json.RawMessage(nil), raw...),
		}
		if m.Context != nil {
			in.InReplyTo = m.Context.ID
		}
		out = append(out, in)
	}
	return out, errors.Join(skipped...)
}

// whatsappText is a message as an adviser reads it: text as written,
// anything else as a summary (media with caption and id, a location, the
// contacts shared, the button pressed). Reactions and unknown kinds make
// no message.
func whatsappText(m whatsappMessage) (string, bool) {
	media := func(kind string, md *whatsappMedia) string {
		line := "[" + kind + "]"
		for _, s := range []string{md.Caption, md.Filename} {
			if s != "" {
				line += " " + s
			}
		}
		if md.ID != "" {
			line += " (media " + md.ID + ")"
		}
		return line
	}
	switch {
	case m.Type == "text":
		return m.Text.Body, true
	case m.Image != nil:
		return media("image", m.Image), true
	case m.Video != nil:
		return media("video", m.Video), true
	case m.Audio != nil:
		return media("audio", m.Audio), true
	case m.Document != nil:
		return media("document", m.Document), true
	case m.Sticker != nil:
		return media("sticker", m.Sticker), true
	case m.Location != nil:
		l := m.Location
		line := fmt.Sprintf("[location] %.6f, %.6f", l.Latitude, l.Longitude)
		for _, s := range []string{l.Name, l.Address} {
			if s != "" {
				line += " " + s
			}
		}
		return line + fmt.Sprintf(" https://www.openstreetmap.org/?mlat=%.6f&mlon=%.6f", l.Latitude, l.Longitude), true
	case len(m.Contacts) > 0:
		var parts []string
		for _, c := range m.Contacts {
			p := c.Name.FormattedName
			for _, ph := range c.Phones {
				p = strings.TrimSpace(p + " " + ph.Phone)
			}
			parts = append(parts, p)
		}
		return "[contacts] " + strings.Join(parts, "; "), true
	case m.Button != nil:
		return m.Button.Text, true
	case m.Interactive != nil && m.Interactive.ButtonReply != nil:
		return m.Interactive.ButtonReply.Title, true
	case m.Interactive != nil && m.Interactive.ListReply != nil:
		return m.Interactive.ListReply.Title, true
	}
	return "", false
}

// millis reads a time in milliseconds (Messenger); seconds one in seconds
// (comments, WhatsApp). A missing or unreadable time is when we got it.
func millis(n json.Number, fallback time.Time) time.Time {
	ms, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || ms <= 0 {
		return fallback
	}
	return time.UnixMilli(ms).UTC()
}

func seconds(n json.Number, fallback time.Time) time.Time {
	s, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || s <= 0 {
		return fallback
	}
	return time.Unix(s, 0).UTC()
}

// whatsappStatus is a delivery receipt of WhatsApp's for a message we
// sent.
type whatsappStatus struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Timestamp   string `json:"timestamp"`
	RecipientID string `json:"recipient_id"`
	Errors      []struct {
		Code    int    `json:"code"`
		Title   string `json:"title"`
		Message string `json:"message"`
	} `json:"errors"`
}

// whatsappReceipt reads a status into a receipt for our message: sent,
// delivered, read or failed (with WhatsApp's error). Other statuses
// (deleted, warning) make none.
func whatsappReceipt(account string, raw json.RawMessage, receivedAt time.Time) (channels.Inbound, bool, error) {
	var st whatsappStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return channels.Inbound{}, false, err
	}
	switch st.Status {
	case "sent", "delivered", "read", "failed":
	default:
		return channels.Inbound{}, false, nil
	}
	if st.ID == "" || st.RecipientID == "" {
		return channels.Inbound{}, false, errNoID
	}
	r := &channels.Receipt{Status: st.Status}
	if st.Status == "failed" {
		for _, e := range st.Errors {
			msg := e.Title
			if e.Message != "" && e.Message != e.Title {
				msg = strings.TrimSpace(msg + ": " + e.Message)
			}
			r.Error = joinLine(r.Error, fmt.Sprintf("WhatsApp error %d %s", e.Code, msg))
		}
	}
	return channels.Inbound{
		Channel: WhatsApp, Account: account, DedupeKey: WhatsApp + ":status:" + st.ID + ":" + st.Status, ExternalID: st.ID,
		Visibility: channels.Private, Author: channels.Identity{ExternalID: st.RecipientID},
		SentAt: seconds(json.Number(st.Timestamp), receivedAt), ReceivedAt: receivedAt, Receipt: r,
		Raw: append(json.RawMessage(nil), raw...),
	}, true, nil
}
