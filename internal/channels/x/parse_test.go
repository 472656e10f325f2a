package x_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/x"
)

const councilID = "1500000000000000001"

var (
	council    = x.Account{Slug: "exampleshire", UserID: councilID}
	receivedAt = time.Date(2025, 1, 9, 12, 0, 0, 0, time.UTC)
	jo         = channels.Identity{ExternalID: "2244994945", Handle: "jo_resident", DisplayName: "Jo Resident"}
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parsed is what a test expects of one inbound message; the fields every
// message shares are checked for all of them.
type parsed struct {
	visibility     channels.Visibility
	externalID     string
	dedupeKey      string
	text           string
	author         channels.Identity
	conversationID string
	inReplyTo      string
	sentAt         time.Time
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []parsed
	}{
		{
			name: "AAA mention, entities decoded",
			file: "aaa_mention.json",
			want: []parsed{{
				visibility: channels.Public,
				externalID: "1876000000000000001",
				dedupeKey:  "x:post:" + councilID + ":1876000000000000001",
				text:       "@ExampleshireCC The bins on Elm Street weren't collected & the recycling is overflowing <again>",
				author:     jo,
				sentAt:     time.Date(2025, 1, 6, 9, 15, 0, 0, time.UTC),
			}},
		},
		{
			name: "AAA long post uses extended_tweet",
			file: "aaa_extended.json",
			want: []parsed{{
				visibility: channels.Public,
				externalID: "1876000000000000002",
				dedupeKey:  "x:post:" + councilID + ":1876000000000000002",
				text:       "@ExampleshireCC The street light outside number 42 Station Road has been out for three weeks now and the pavement is very dark. Older residents are worried about walking home from the bus stop. Could someone please come and fix it? Reported twice already.",
				author:     channels.Identity{ExternalID: "3300000000", Handle: "samwalks", DisplayName: "Sam Walker"},
				sentAt:     time.Date(2025, 1, 7, 18, 30, 5, 0, time.UTC),
			}},
		},
		{
			name: "AAA reply",
			file: "aaa_reply.json",
			want: []parsed{{
				visibility: channels.Public,
				externalID: "1876000000000000003",
				dedupeKey:  "x:post:" + councilID + ":1876000000000000003",
				text:       "@ExampleshireCC Thanks, it's still not fixed though",
				author:     jo,
				inReplyTo:  "1875000000000000009",
				sentAt:     time.Date(2025, 1, 8, 10, 0, 0, 0, time.UTC),
			}},
		},
		{
			name: "AAA direct message with users map",
			file: "aaa_dm.json",
			want: []parsed{{
				visibility: channels.Private,
				externalID: "1876000000000000004",
				dedupeKey:  "x:dm:" + councilID + ":1876000000000000004",
				text:       "Hi, my council tax reference is 12345678. Can I pay in 12 instalments?",
				author:     jo,
				sentAt:     time.UnixMilli(1736330400123).UTC(),
			}},
		},
		{name: "AAA own post skipped", file: "aaa_own_post.json"},
		{name: "AAA own direct message skipped", file: "aaa_own_dm.json"},
		{name: "AAA likes, follows and typing ignored", file: "aaa_ignored.json"},
		{
			name: "XAA mention",
			file: "xaa_mention.json",
			want: []parsed{{
				visibility:     channels.Public,
				externalID:     "1876000000000000001",
				dedupeKey:      "x:post:" + councilID + ":1876000000000000001",
				text:           "@ExampleshireCC The bins on Elm Street weren't collected & the recycling is overflowing <again>",
				author:         jo,
				conversationID: "1876000000000000001",
				sentAt:         time.Date(2025, 1, 6, 9, 15, 0, 0, time.UTC),
			}},
		},
		{
			name: "XAA reply takes in-reply-to from referenced_tweets",
			file: "xaa_reply.json",
			want: []parsed{{
				visibility:     channels.Public,
				externalID:     "1876000000000000003",
				dedupeKey:      "x:post:" + councilID + ":1876000000000000003",
				text:           "@ExampleshireCC Thanks, it's still not fixed though",
				author:         jo,
				conversationID: "1875000000000000009",
				inReplyTo:      "1875000000000000009",
				sentAt:         time.Date(2025, 1, 8, 10, 0, 0, 0, time.UTC),
			}},
		},
		{
			name: "XAA direct message",
			file: "xaa_dm.json",
			want: []parsed{{
				visibility:     channels.Private,
				externalID:     "1876000000000000004",
				dedupeKey:      "x:dm:" + councilID + ":1876000000000000004",
				text:           "Hi, my council tax reference is 12345678. Can I pay in 12 instalments?",
				author:         jo,
				conversationID: "1500000000000000001-2244994945",
				sentAt:         time.Date(2025, 1, 8, 10, 0, 0, 123e6, time.UTC),
			}},
		},
		{
			name: "XAA batch: follow ignored, own mention skipped",
			file: "xaa_batch.json",
			want: []parsed{{
				visibility:     channels.Public,
				externalID:     "1876000000000000010",
				dedupeKey:      "x:post:" + councilID + ":1876000000000000010",
				text:           "@ExampleshireCC is the tip open on bank holidays? 🗑️",
				author:         channels.Identity{ExternalID: "4400000000", Handle: "alex_uk", DisplayName: "Alex"},
				conversationID: "1876000000000000010",
				sentAt:         time.Date(2025, 5, 5, 8, 0, 0, 0, time.UTC),
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := readTestdata(t, tt.file)
			got, err := x.Parse(body, council, receivedAt)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Parse returned %d messages, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				checkInbound(t, got[i], w)
			}
		})
	}
}

func checkInbound(t *testing.T, m channels.Inbound, w parsed) {
	t.Helper()
	if err := m.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if m.Channel != "x" || m.Account != council.Slug {
		t.Errorf("channel/account = %q/%q, want x/%s", m.Channel, m.Account, council.Slug)
	}
	check := func(field string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %#v, want %#v", field, got, want)
		}
	}
	check("Visibility", m.Visibility, w.visibility)
	check("ExternalID", m.ExternalID, w.externalID)
	check("DedupeKey", m.DedupeKey, w.dedupeKey)
	check("Text", m.Text, w.text)
	check("Author", m.Author, w.author)
	check("ConversationID", m.ConversationID, w.conversationID)
	check("InReplyTo", m.InReplyTo, w.inReplyTo)
	if !m.SentAt.Equal(w.sentAt) {
		t.Errorf("SentAt = %v, want %v", m.SentAt, w.sentAt)
	}
	if !m.ReceivedAt.Equal(receivedAt) {
		t.Errorf("ReceivedAt = %v, want %v", m.ReceivedAt, receivedAt)
	}
	// Raw is the one event, not the whole delivery.
	if !json.Valid(m.Raw) || !bytes.Contains(m.Raw, []byte(w.externalID)) {
		t.Errorf("Raw is not the event of %s: %s", w.externalID, m.Raw)
	}
	if bytes.Contains(m.Raw, []byte("for_user_id")) || bytes.HasPrefix(bytes.TrimSpace(m.Raw), []byte(`{"data"`)) {
		t.Errorf("Raw holds the whole delivery: %s", m.Raw)
	}
}

// The same post is delivered through both APIs while a subscription moves
// from one to the other; it must be ingested once.
func TestParseSameMessageSameKeyInBothFamilies(t *testing.T) {
	pairs := [][2]string{
		{"aaa_mention.json", "xaa_mention.json"},
		{"aaa_reply.json", "xaa_reply.json"},
		{"aaa_dm.json", "xaa_dm.json"},
	}
	for _, p := range pairs {
		aaa, err := x.Parse(readTestdata(t, p[0]), council, receivedAt)
		if err != nil || len(aaa) != 1 {
			t.Fatalf("%s: %v, %d messages", p[0], err, len(aaa))
		}
		xaa, err := x.Parse(readTestdata(t, p[1]), council, receivedAt)
		if err != nil || len(xaa) != 1 {
			t.Fatalf("%s: %v, %d messages", p[1], err, len(xaa))
		}
		if aaa[0].DedupeKey != xaa[0].DedupeKey {
			t.Errorf("%s and %s: dedupe keys %q and %q differ", p[0], p[1], aaa[0].DedupeKey, xaa[0].DedupeKey)
		}
		if aaa[0].Text != xaa[0].Text {
			t.Errorf("%s and %s: texts %q and %q differ", p[0], p[1], aaa[0].Text, xaa[0].Text)
		}
	}
}

func TestParseSelf(t *testing.T) {
	// Without for_user_id or filter.user_id, the configured id is "self".
	body := `{"data":{"event_type":"post.mention.create","payload":{"id":"7","text":"hi","author_id":"` + councilID + `"}}}`
	got, err := x.Parse([]byte(body), council, receivedAt)
	if err != nil || len(got) != 0 {
		t.Errorf("own post without filter: got %d messages, err %v; want none", len(got), err)
	}

	// The configured account's posts are skipped whoever the delivery is for.
	body = `{"for_user_id":"99","tweet_create_events":[{"id_str":"7","text":"hi","user":{"id_str":"` + councilID + `"}}]}`
	got, err = x.Parse([]byte(body), council, receivedAt)
	if err != nil || len(got) != 0 {
		t.Errorf("council post delivered for another user: got %d messages, err %v; want none", len(got), err)
	}

	// Without a configured id, the payload's id is "self" and keys the message.
	body = `{"for_user_id":"99","tweet_create_events":[{"id_str":"7","text":"hi","user":{"id_str":"5"}},{"id_str":"8","text":"me","user":{"id_str":"99"}}]}`
	got, err = x.Parse([]byte(body), x.Account{Slug: "exampleshire"}, receivedAt)
	if err != nil || len(got) != 1 {
		t.Fatalf("got %d messages, err %v; want 1", len(got), err)
	}
	if got[0].DedupeKey != "x:post:99:7" {
		t.Errorf("DedupeKey = %q, want x:post:99:7", got[0].DedupeKey)
	}
}

func TestParseText(t *testing.T) {
	tests := []struct {
		name string
		text string // a JSON string literal's contents
		want string
	}{
		{"entities", `fish &amp; chips &lt;3 &gt;_&lt;`, "fish & chips <3 >_<"},
		{"escaped entity stays as typed", `write &amp;lt; for &lt;`, "write &lt; for <"},
		{"other entities untouched", `&copy; &quot;`, "&copy; &quot;"},
		{"invalid UTF-8 replaced", "bad \xff\xfe byte", "bad \uFFFD\uFFFD byte"},
		{"lone surrogate replaced", `a\ud800b`, "a\uFFFDb"},
		{"NUL dropped", `a\u0000b`, "ab"},
		{"emoji kept", `bins 🗑️👍🏽`, "bins 🗑️👍🏽"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"for_user_id":"1","tweet_create_events":[{"id_str":"7","text":"` + tt.text + `","user":{"id_str":"5"}}]}`
			got, err := x.Parse([]byte(body), council, receivedAt)
			if err != nil || len(got) != 1 {
				t.Fatalf("got %d messages, err %v", len(got), err)
			}
			if got[0].Text != tt.want {
				t.Errorf("Text = %q, want %q", got[0].Text, tt.want)
			}
			if !utf8.ValidString(got[0].Text) {
				t.Errorf("Text %q is not valid UTF-8", got[0].Text)
			}
		})
	}
}

func TestParseSentAtFallback(t *testing.T) {
	bodies := []string{
		`{"for_user_id":"1","tweet_create_events":[{"id_str":"7","text":"hi","user":{"id_str":"5"}}]}`,
		`{"for_user_id":"1","tweet_create_events":[{"id_str":"7","created_at":"yesterday","text":"hi","user":{"id_str":"5"}}]}`,
		`{"for_user_id":"1","direct_message_events":[{"type":"message_create","id":"7","created_timestamp":"soon","message_create":{"sender_id":"5","message_data":{"text":"hi"}}}]}`,
		`{"data":{"event_type":"dm.received","payload":{"id":"7","sender_id":"5","text":"hi","created_at":"2025-13-45"}}}`,
	}
	for _, body := range bodies {
		got, err := x.Parse([]byte(body), council, receivedAt)
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: got %d messages, err %v", body, len(got), err)
		}
		if !got[0].SentAt.Equal(receivedAt) {
			t.Errorf("%s: SentAt = %v, want the receive time", body, got[0].SentAt)
		}
	}

	// Without created_at, AAA's timestamp_ms is used.
	body := `{"for_user_id":"1","tweet_create_events":[{"id_str":"7","timestamp_ms":"1736154900000","text":"hi","user":{"id_str":"5"}}]}`
	got, err := x.Parse([]byte(body), council, receivedAt)
	if err != nil || len(got) != 1 {
		t.Fatalf("got %d messages, err %v", len(got), err)
	}
	if want := time.Date(2025, 1, 6, 9, 15, 0, 0, time.UTC); !got[0].SentAt.Equal(want) {
		t.Errorf("SentAt = %v, want %v", got[0].SentAt, want)
	}
}

func TestParseEmpty(t *testing.T) {
	bodies := []string{
		`{"for_user_id":"1"}`,
		`{"for_user_id":"1","tweet_create_events":[]}`,
		`{"tweet_delete_events":[{"status":{"id":"1","user_id":"2"}}]}`,
		`{"data":[]}`,
		`{"data":{"event_type":"profile.update.bio","payload":{}}}`,
		`{"data":{"event_type":"dm.sent","payload":{"id":"1","sender_id":"2"}}}`,
		// A plain repost of a post is not a message to answer.
		`{"for_user_id":"1","tweet_create_events":[{"id_str":"7","text":"RT @ExampleshireCC: Bins are back","user":{"id_str":"5"},"retweeted_status":{"id_str":"6"}}]}`,
		`{"data":{"event_type":"post.mention.create","payload":{"id":"7","text":"RT","author_id":"5","referenced_tweets":[{"type":"retweeted","id":"6"}]}}}`,
		// Direct message events other than message_create.
		`{"for_user_id":"1","direct_message_events":[{"type":"reaction_create","id":"7"}]}`,
	}
	for _, body := range bodies {
		got, err := x.Parse([]byte(body), council, receivedAt)
		if err != nil || len(got) != 0 {
			t.Errorf("%s: got %d messages, err %v; want none and no error", body, len(got), err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string
	}{
		{"not JSON", `event: hello`, "not JSON"},
		{"truncated JSON", `{"for_user_id":"1","tweet_create_`, "not JSON"},
		{"empty body", ``, "not JSON"},
		{"array", `[{"id":"1"}]`, x.ErrUnknownPayload.Error()},
		{"string", `"hello"`, x.ErrUnknownPayload.Error()},
		{"null", `null`, x.ErrUnknownPayload.Error()},
		{"unrelated object", `{"object":"page","entry":[]}`, x.ErrUnknownPayload.Error()},
		{"data not an object", `{"data":"hello"}`, x.ErrUnknownPayload.Error()},
		{"data null", `{"data":null}`, x.ErrUnknownPayload.Error()},
		{"events not a list", `{"for_user_id":"1","tweet_create_events":{}}`, "malformed Account Activity payload"},
		{"id of the wrong type", `{"for_user_id":true}`, "malformed Account Activity payload"},
		{"post without id", `{"for_user_id":"1","tweet_create_events":[{"text":"hi","user":{"id_str":"5"}}]}`, "tweet_create_events[0]: id_str is missing"},
		{"post without author", `{"for_user_id":"1","tweet_create_events":[{"id_str":"7","text":"hi"}]}`, "tweet_create_events[0]: user.id_str is missing"},
		{"null post", `{"for_user_id":"1","tweet_create_events":[null]}`, "user.id_str is missing"},
		{"DM without sender", `{"for_user_id":"1","direct_message_events":[{"type":"message_create","id":"7","message_create":{"message_data":{"text":"hi"}}}]}`, "direct_message_events[0]: message_create.sender_id is missing"},
		{"DM without id", `{"for_user_id":"1","direct_message_events":[{"type":"message_create","message_create":{"sender_id":"5","message_data":{"text":"hi"}}}]}`, "direct_message_events[0]: id is missing"},
		{"XAA event not an object", `{"data":[1]}`, "data[0]: event is not an object"},
		{"XAA mention without payload", `{"data":{"event_type":"post.mention.create"}}`, "post.mention.create: payload is missing"},
		{"XAA mention without author", `{"data":{"event_type":"post.mention.create","payload":{"id":"7","text":"hi"}}}`, "payload.author_id is missing"},
		{"XAA reply without id", `{"data":{"event_type":"post.reply.create","payload":{"author_id":"5","text":"hi"}}}`, "post.reply.create: payload.id is missing"},
		{"XAA DM without sender", `{"data":{"event_type":"dm.received","payload":{"id":"7","text":"hi"}}}`, "payload.sender_id is missing"},
		{"XAA DM without id", `{"data":{"event_type":"dm.received","payload":{"sender_id":"5","text":"hi"}}}`, "dm.received: payload.id is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := x.Parse([]byte(tt.body), council, receivedAt)
			if err == nil {
				t.Fatalf("Parse returned %d messages and no error, want error %q", len(got), tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if got != nil {
				t.Errorf("Parse returned messages with its error: %+v", got)
			}
		})
	}
	if _, err := x.Parse([]byte(`{"hello":1}`), council, receivedAt); !errors.Is(err, x.ErrUnknownPayload) {
		t.Errorf("error %v is not ErrUnknownPayload", err)
	}
}

// One unreadable event does not cost the delivery's other messages.
func TestParseSkipsUnreadableEvents(t *testing.T) {
	body := `{"for_user_id":"1","tweet_create_events":[{"id_str":"7","user":{"id_str":"5"}},{"user":{"id_str":"5"}}]}`
	got, err := x.Parse([]byte(body), council, receivedAt)
	var skipped *x.SkippedEvents
	if !errors.As(err, &skipped) || len(skipped.Errs) != 1 || !strings.Contains(err.Error(), "tweet_create_events[1]: id_str is missing") {
		t.Fatalf("error %v, want one skipped event", err)
	}
	if len(got) != 1 || got[0].ExternalID != "7" {
		t.Errorf("messages %+v, want post 7", got)
	}
}

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		f.Add(readTestdata(f, filepath.Base(name)))
	}
	f.Add([]byte(`{"data":[{"event_type":"dm.received","payload":{"id":7,"sender_id":5}}]}`))
	f.Add([]byte(`{"for_user_id":1,"direct_message_events":[{"id":"7","message_create":{"sender_id":"5"}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := x.Parse(body, council, receivedAt)
		var skipped *x.SkippedEvents
		if err != nil && !errors.As(err, &skipped) && msgs != nil {
			t.Fatalf("messages returned with error %v", err)
		}
		if skipped != nil && len(skipped.Errs) == 0 {
			t.Fatal("a SkippedEvents error names no event")
		}
		for _, m := range msgs {
			if err := m.Validate(); err != nil {
				t.Fatalf("invalid message %+v: %v", m, err)
			}
			if !utf8.ValidString(m.Text) || !utf8.ValidString(m.Author.Handle) || !utf8.ValidString(m.Author.DisplayName) {
				t.Fatalf("message text is not valid UTF-8: %+v", m)
			}
			if !json.Valid(m.Raw) {
				t.Fatalf("Raw is not JSON: %q", m.Raw)
			}
			if m.Author.ExternalID == council.UserID {
				t.Fatalf("the council's own message was ingested: %+v", m)
			}
		}
	})
}
