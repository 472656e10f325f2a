package x

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// ErrUnknownPayload is returned by Parse for JSON that belongs to neither of
// the webhook payload families X delivers.
var ErrUnknownPayload = errors.New("x: payload is not an Account Activity or X Activity event")

// aaaKeys are the top-level keys that mark an Account Activity API delivery.
// Only tweet_create_events and direct_message_events carry resident
// messages; the rest are recognised so that their deliveries are accepted
// and ignored rather than refused.
var aaaKeys = []string{
	"for_user_id",
	"tweet_create_events",
	"direct_message_events",
	"favorite_events",
	"follow_events",
	"unfollow_events",
	"block_events",
	"unblock_events",
	"mute_events",
	"unmute_events",
	"user_event",
	"tweet_delete_events",
	"direct_message_indicate_typing_events",
	"direct_message_mark_read_events",
}

// X Activity API event types that carry resident messages. Other event types
// are ignored.
const (
	eventMention    = "post.mention.create"
	eventReply      = "post.reply.create"
	eventDMReceived = "dm.received"
)

// Parse turns one webhook delivery into inbound messages. It accepts both
// payload families X sends to a webhook:
//
//   - Account Activity API (AAA): {"for_user_id", "tweet_create_events": [...],
//     "direct_message_events": [...], "users": {...}}
//   - X Activity API (XAA): {"data": {"event_type", "filter", "payload",
//     "includes"}}, where data may also be an array of such events.
//
// Mentions and replies become Public messages, direct messages Private ones.
// Events of other kinds (likes, follows, typing indicators, ...) and the
// account's own posts and direct messages are skipped, so a valid delivery
// may yield no messages at all.
//
// The same post arrives once for every subscribed user, and may arrive
// through either family; the dedupe key is therefore built from the
// subscribed user's id and the X id, and is the same whichever family
// delivered it.
//
// Parse returns an error, and no messages, when the body is not JSON or is
// neither family. An event it cannot read (a message without its id or
// author, say) is skipped: Parse returns the other events' messages with a
// *SkippedEvents error naming it. Verify the signature before calling Parse.
func Parse(body []byte, acct Account, receivedAt time.Time) ([]channels.Inbound, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		if !json.Valid(body) {
			return nil, fmt.Errorf("x: payload is not JSON: %w", err)
		}
		// Valid JSON, but not an object.
		return nil, ErrUnknownPayload
	}
	p := parser{acct: acct, receivedAt: receivedAt}
	for _, k := range aaaKeys {
		if _, ok := top[k]; ok {
			return p.accountActivity(body)
		}
	}
	if data, ok := top["data"]; ok {
		return p.activity(data)
	}
	return nil, ErrUnknownPayload
}

// parser holds what every message of one delivery shares.
type parser struct {
	acct       Account
	receivedAt time.Time
}

// self returns the id of the subscribed user a delivery was made for: the
// id X names in the payload, else the account's configured id.
func (p parser) self(forUserID string) string {
	if forUserID != "" {
		return forUserID
	}
	return p.acct.UserID
}

// isOwn reports whether authorID is the council account itself.
func (p parser) isOwn(self, authorID string) bool {
	return authorID == self || (p.acct.UserID != "" && authorID == p.acct.UserID)
}

// message fills the fields every inbound message of this adapter shares.
func (p parser) message(vis channels.Visibility, self, id string, raw json.RawMessage) channels.Inbound {
	kind := "post"
	if vis == channels.Private {
		kind = "dm"
	}
	return channels.Inbound{
		Channel:    Channel,
		Account:    p.acct.Slug,
		DedupeKey:  dedupeKey(kind, self, id),
		ExternalID: id,
		Visibility: vis,
		ReceivedAt: p.receivedAt,
		Raw:        raw,
	}
}

// sentAt returns t in UTC, or the delivery time when t is unknown.
func (p parser) sentAt(t time.Time, ok bool) time.Time {
	if !ok || t.IsZero() {
		return p.receivedAt
	}
	return t.UTC()
}

// dedupeKey returns the dedupe key of an X message: kind is "post" or "dm",
// self the id of the subscribed user the event was delivered for, id the
// post id or direct message event id.
func dedupeKey(kind, self, id string) string {
	return "x:" + kind + ":" + self + ":" + id
}

// --- Account Activity API ---------------------------------------------------

type aaaPayload struct {
	ForUserID           xid                `json:"for_user_id"`
	TweetCreateEvents   []json.RawMessage  `json:"tweet_create_events"`
	DirectMessageEvents []json.RawMessage  `json:"direct_message_events"`
	Users               map[string]aaaUser `json:"users"`
}

type aaaUser struct {
	ID         xid    `json:"id"`
	IDStr      xid    `json:"id_str"`
	ScreenName string `json:"screen_name"`
	Name       string `json:"name"`
}

type aaaTweet struct {
	ID            xid    `json:"id"`
	IDStr         xid    `json:"id_str"`
	CreatedAt     string `json:"created_at"`
	TimestampMS   xid    `json:"timestamp_ms"`
	Text          string `json:"text"`
	FullText      string `json:"full_text"`
	ExtendedTweet *struct {
		FullText string `json:"full_text"`
	} `json:"extended_tweet"`
	InReplyToStatusIDStr xid             `json:"in_reply_to_status_id_str"`
	User                 aaaUser         `json:"user"`
	RetweetedStatus      json.RawMessage `json:"retweeted_status"`
}

type aaaDM struct {
	Type             string `json:"type"`
	ID               xid    `json:"id"`
	CreatedTimestamp xid    `json:"created_timestamp"`
	MessageCreate    struct {
		Target struct {
			RecipientID xid `json:"recipient_id"`
		} `json:"target"`
		SenderID    xid `json:"sender_id"`
		MessageData struct {
			Text string `json:"text"`
		} `json:"message_data"`
	} `json:"message_create"`
}

func (p parser) accountActivity(body []byte) ([]channels.Inbound, error) {
	var pl aaaPayload
	if err := json.Unmarshal(body, &pl); err != nil {
		return nil, fmt.Errorf("x: malformed Account Activity payload: %w", err)
	}
	self := p.self(string(pl.ForUserID))
	var out []channels.Inbound
	var skipped SkippedEvents
	for i, raw := range pl.TweetCreateEvents {
		m, ok, err := p.aaaTweet(self, raw)
		if err != nil {
			skipped.add(fmt.Errorf("x: tweet_create_events[%d]: %w", i, err))
			continue
		}
		if ok {
			out = append(out, m)
		}
	}
	for i, raw := range pl.DirectMessageEvents {
		m, ok, err := p.aaaDM(self, raw, pl.Users)
		if err != nil {
			skipped.add(fmt.Errorf("x: direct_message_events[%d]: %w", i, err))
			continue
		}
		if ok {
			out = append(out, m)
		}
	}
	return out, skipped.err()
}

// SkippedEvents names the events of a delivery Parse could not read. Its
// messages say where each event is and what is wrong, never what it holds.
type SkippedEvents struct {
	Errs []error
}

func (e *SkippedEvents) add(err error) { e.Errs = append(e.Errs, err) }

// err returns e as an error, or nil when nothing was skipped.
func (e *SkippedEvents) err() error {
	if len(e.Errs) == 0 {
		return nil
	}
	return e
}

func (e *SkippedEvents) Error() string { return errors.Join(e.Errs...).Error() }

// Unwrap gives errors.Is and errors.As the skipped events' errors.
func (e *SkippedEvents) Unwrap() []error { return e.Errs }

// aaaTweet converts one tweet_create_events entry. ok is false for events
// that are not resident messages.
func (p parser) aaaTweet(self string, raw json.RawMessage) (m channels.Inbound, ok bool, err error) {
	var t aaaTweet
	if err := json.Unmarshal(raw, &t); err != nil {
		return m, false, err
	}
	author := first(t.User.IDStr, t.User.ID)
	if author == "" {
		return m, false, errors.New("user.id_str is missing")
	}
	// The account's own posts, and plain reposts, are not messages to answer.
	if p.isOwn(self, author) || isPresent(t.RetweetedStatus) {
		return m, false, nil
	}
	id := first(t.IDStr, t.ID)
	if id == "" {
		return m, false, errors.New("id_str is missing")
	}

	text := t.Text
	if t.FullText != "" {
		text = t.FullText
	}
	if t.ExtendedTweet != nil && t.ExtendedTweet.FullText != "" {
		text = t.ExtendedTweet.FullText
	}
	sent, okTime := parseTime(time.RubyDate, t.CreatedAt)
	if !okTime {
		sent, okTime = parseMillis(string(t.TimestampMS))
	}

	m = p.message(channels.Public, self, id, raw)
	m.Text = cleanText(text)
	m.Author = identity(author, t.User.ScreenName, t.User.Name)
	m.InReplyTo = string(t.InReplyToStatusIDStr)
	m.SentAt = p.sentAt(sent, okTime)
	return m, true, nil
}

// aaaDM converts one direct_message_events entry. ok is false for events
// that are not resident messages.
func (p parser) aaaDM(self string, raw json.RawMessage, users map[string]aaaUser) (m channels.Inbound, ok bool, err error) {
	var d aaaDM
	if err := json.Unmarshal(raw, &d); err != nil {
		return m, false, err
	}
	if d.Type != "" && d.Type != "message_create" {
		return m, false, nil
	}
	sender := string(d.MessageCreate.SenderID)
	if sender == "" {
		return m, false, errors.New("message_create.sender_id is missing")
	}
	// Direct messages the account sends are delivered too.
	if p.isOwn(self, sender) {
		return m, false, nil
	}
	id := string(d.ID)
	if id == "" {
		return m, false, errors.New("id is missing")
	}
	sent, okTime := parseMillis(string(d.CreatedTimestamp))
	u := users[sender]

	// AAA gives direct messages no conversation id: the inbox threads them
	// by account and sender.
	m = p.message(channels.Private, self, id, raw)
	m.Text = cleanText(d.MessageCreate.MessageData.Text)
	m.Author = identity(sender, u.ScreenName, u.Name)
	m.SentAt = p.sentAt(sent, okTime)
	return m, true, nil
}

// --- X Activity API ---------------------------------------------------------

type xaaEvent struct {
	EventUUID string `json:"event_uuid"`
	EventType string `json:"event_type"`
	Filter    struct {
		UserID xid `json:"user_id"`
	} `json:"filter"`
	Payload  json.RawMessage `json:"payload"`
	Includes struct {
		Users []xaaUser `json:"users"`
	} `json:"includes"`
}

type xaaUser struct {
	ID       xid    `json:"id"`
	Username string `json:"username"`
	Name     string `json:"name"`
}

type xaaPost struct {
	ID        xid    `json:"id"`
	Text      string `json:"text"`
	NoteTweet *struct {
		Text string `json:"text"`
	} `json:"note_tweet"`
	AuthorID         xid    `json:"author_id"`
	ConversationID   xid    `json:"conversation_id"`
	CreatedAt        string `json:"created_at"`
	InReplyToTweetID xid    `json:"in_reply_to_tweet_id"`
	ReferencedTweets []struct {
		Type string `json:"type"`
		ID   xid    `json:"id"`
	} `json:"referenced_tweets"`
}

// xaaDM reads a dm.received payload. Its shape is not settled in X's
// documentation, so both spellings of the id and of the sender are read.
type xaaDM struct {
	ID               xid    `json:"id"`
	DMEventID        xid    `json:"dm_event_id"`
	Text             string `json:"text"`
	SenderID         xid    `json:"sender_id"`
	AuthorID         xid    `json:"author_id"`
	DMConversationID xid    `json:"dm_conversation_id"`
	CreatedAt        string `json:"created_at"`
}

func (p parser) activity(data json.RawMessage) ([]channels.Inbound, error) {
	var events []json.RawMessage
	switch firstByte(data) {
	case '{':
		events = []json.RawMessage{data}
	case '[':
		if err := json.Unmarshal(data, &events); err != nil {
			return nil, fmt.Errorf("x: malformed X Activity payload: %w", err)
		}
	default:
		return nil, ErrUnknownPayload
	}
	var out []channels.Inbound
	var skipped SkippedEvents
	for i, raw := range events {
		m, ok, err := p.activityEvent(raw)
		if err != nil {
			skipped.add(fmt.Errorf("x: data[%d]: %w", i, err))
			continue
		}
		if ok {
			out = append(out, m)
		}
	}
	return out, skipped.err()
}

// activityEvent converts one X Activity event. ok is false for events that
// are not resident messages.
func (p parser) activityEvent(raw json.RawMessage) (m channels.Inbound, ok bool, err error) {
	if firstByte(raw) != '{' {
		return m, false, errors.New("event is not an object")
	}
	var ev xaaEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return m, false, err
	}
	self := p.self(string(ev.Filter.UserID))
	switch ev.EventType {
	case eventMention, eventReply:
		m, ok, err = p.activityPost(self, ev, raw)
	case eventDMReceived:
		m, ok, err = p.activityDM(self, ev, raw)
	default:
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("%s: %w", ev.EventType, err)
	}
	return m, ok, nil
}

func (p parser) activityPost(self string, ev xaaEvent, raw json.RawMessage) (m channels.Inbound, ok bool, err error) {
	var post xaaPost
	if err := unmarshalPayload(ev.Payload, &post); err != nil {
		return m, false, err
	}
	author := string(post.AuthorID)
	if author == "" {
		return m, false, errors.New("payload.author_id is missing")
	}
	if p.isOwn(self, author) {
		return m, false, nil
	}
	inReplyTo := string(post.InReplyToTweetID)
	for _, ref := range post.ReferencedTweets {
		switch {
		case ref.Type == "retweeted":
			// A plain repost is not a message to answer.
			return m, false, nil
		case ref.Type == "replied_to" && inReplyTo == "":
			inReplyTo = string(ref.ID)
		}
	}
	id := string(post.ID)
	if id == "" {
		return m, false, errors.New("payload.id is missing")
	}
	text := post.Text
	if post.NoteTweet != nil && post.NoteTweet.Text != "" {
		// Long posts carry their full text in note_tweet.
		text = post.NoteTweet.Text
	}
	sent, okTime := parseTime(time.RFC3339Nano, post.CreatedAt)
	u := ev.user(author)

	m = p.message(channels.Public, self, id, raw)
	m.Text = cleanText(text)
	m.Author = identity(author, u.Username, u.Name)
	m.ConversationID = string(post.ConversationID)
	m.InReplyTo = inReplyTo
	m.SentAt = p.sentAt(sent, okTime)
	return m, true, nil
}

func (p parser) activityDM(self string, ev xaaEvent, raw json.RawMessage) (m channels.Inbound, ok bool, err error) {
	var dm xaaDM
	if err := unmarshalPayload(ev.Payload, &dm); err != nil {
		return m, false, err
	}
	sender := first(dm.SenderID, dm.AuthorID)
	if sender == "" {
		return m, false, errors.New("payload.sender_id is missing")
	}
	if p.isOwn(self, sender) {
		return m, false, nil
	}
	id := first(dm.ID, dm.DMEventID)
	if id == "" {
		return m, false, errors.New("payload.id is missing")
	}
	sent, okTime := parseTime(time.RFC3339Nano, dm.CreatedAt)
	u := ev.user(sender)

	m = p.message(channels.Private, self, id, raw)
	m.Text = cleanText(dm.Text)
	m.Author = identity(sender, u.Username, u.Name)
	m.ConversationID = string(dm.DMConversationID)
	m.SentAt = p.sentAt(sent, okTime)
	return m, true, nil
}

// user returns the expanded user with the given id, or a zero user.
func (ev xaaEvent) user(id string) xaaUser {
	for _, u := range ev.Includes.Users {
		if string(u.ID) == id {
			return u
		}
	}
	return xaaUser{}
}

// unmarshalPayload decodes an event payload, which must be a JSON object.
func unmarshalPayload(raw json.RawMessage, v any) error {
	if firstByte(raw) != '{' {
		return errors.New("payload is missing or not an object")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	return nil
}

// --- helpers ----------------------------------------------------------------

// xid is an X identifier. X sends ids as JSON strings, but some older fields
// are JSON numbers too large for a float64; xid accepts both and keeps the
// digits exactly as written.
type xid string

func (v *xid) UnmarshalJSON(b []byte) error {
	switch firstByte(b) {
	case 'n': // null
		*v = ""
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = xid(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("id is neither a string nor a number: %w", err)
	}
	*v = xid(n)
	return nil
}

// first returns the first non-empty id.
func first(ids ...xid) string {
	for _, id := range ids {
		if id != "" {
			return string(id)
		}
	}
	return ""
}

// firstByte returns the first non-space byte of a JSON value, or 0.
func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// isPresent reports whether an optional JSON field is set and not null.
func isPresent(raw json.RawMessage) bool {
	c := firstByte(raw)
	return c != 0 && c != 'n'
}

func parseTime(layout, s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(layout, s)
	return t, err == nil
}

// parseMillis reads a count of milliseconds since the Unix epoch.
func parseMillis(s string) (time.Time, bool) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// entities undoes the HTML escaping X applies to post text. X escapes only
// these three characters; a single left-to-right pass keeps "&amp;lt;" as
// the "&lt;" the resident typed.
var entities = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// cleanText returns text as plain, valid UTF-8: invalid sequences become
// U+FFFD, NUL characters (which PostgreSQL refuses) are dropped and X's
// HTML entities are decoded.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	return entities.Replace(s)
}

// identity builds a resident identity; handle and name are cleaned like text
// but not entity-decoded, as X does not escape them.
func identity(id, handle, name string) channels.Identity {
	clean := func(s string) string {
		return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	}
	return channels.Identity{ExternalID: id, Handle: clean(handle), DisplayName: clean(name)}
}
