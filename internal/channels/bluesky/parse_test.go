package bluesky

import (
	"errors"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

const mentionJSON = `{"uri":"at://did:plc:alice/app.bsky.feed.post/3k1","cid":"bafy1",
 "author":{"did":"did:plc:alice","handle":"alice.bsky.social","displayName":"Alice"},
 "reason":"mention","indexedAt":"2026-12-03T10:00:00.123Z",
 "record":{"$type":"app.bsky.feed.post","text":"@examplecouncil.bsky.social pothole on Elm Road","createdAt":"2026-12-03T09:59:59.000Z"}}`

const replyJSON = `{"uri":"at://did:plc:bob/app.bsky.feed.post/3k3","cid":"bafy3",
 "author":{"did":"did:plc:bob","handle":"bob.bsky.social"},
 "reason":"reply","indexedAt":"2026-12-03T10:05:00Z",
 "record":{"$type":"app.bsky.feed.post","text":"thanks!","createdAt":"2026-12-03T10:04:00Z",
  "reply":{"root":{"uri":"at://did:plc:bob/app.bsky.feed.post/3k1","cid":"bafyR"},"parent":{"uri":"at://did:plc:council/app.bsky.feed.post/3k2","cid":"bafyP"}}}}`

func TestFromNotification(t *testing.T) {
	now := time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC)
	in, _, err := FromNotification([]byte(mentionJSON), "did:plc:council", now)
	if err != nil {
		t.Fatal(err)
	}
	if in.ExternalID != "at://did:plc:alice/app.bsky.feed.post/3k1" || in.DedupeKey != "bluesky:"+in.ExternalID ||
		in.Visibility != "public" || in.Author.ExternalID != "did:plc:alice" || in.Author.Handle != "alice.bsky.social" ||
		in.ConversationID != in.ExternalID || in.InReplyTo != "" || in.Text != "@examplecouncil.bsky.social pothole on Elm Road" ||
		!in.SentAt.Equal(time.Date(2026, 12, 3, 9, 59, 59, 0, time.UTC)) {
		t.Errorf("mention %+v", in)
	}
	in, _, err = FromNotification([]byte(replyJSON), "did:plc:council", now)
	if err != nil {
		t.Fatal(err)
	}
	if in.ConversationID != "at://did:plc:bob/app.bsky.feed.post/3k1" || in.InReplyTo != "at://did:plc:council/app.bsky.feed.post/3k2" {
		t.Errorf("reply threading %q / %q", in.ConversationID, in.InReplyTo)
	}
	// Not messages: a like, and the council's own post.
	if _, _, err := FromNotification([]byte(`{"uri":"at://x/app.bsky.feed.like/1","reason":"like","author":{"did":"did:plc:a"}}`), "", now); !errors.Is(err, errNotAMessage) {
		t.Errorf("a like: %v", err)
	}
	if _, _, err := FromNotification([]byte(mentionJSON), "did:plc:alice", now); !errors.Is(err, errNotAMessage) {
		t.Errorf("own post: %v", err)
	}
	for _, bad := range []string{`nope`, `{"reason":"mention"}`, `{"uri":"at://a","reason":"reply","author":{"did":"did:plc:a"},"record":7}`} {
		if _, _, err := FromNotification([]byte(bad), "", now); err == nil || errors.Is(err, errNotAMessage) {
			t.Errorf("%s: %v, want an error", bad, err)
		}
	}
}

func TestPosition(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 5000, time.UTC)
	p := Position{At: at, URIs: []string{"at://a/1", "at://b/2"}}
	got, err := ParsePosition(p.String())
	if err != nil || !got.At.Equal(at) || len(got.URIs) != 2 || got.URIs[1] != "at://b/2" {
		t.Fatalf("round trip %+v %v", got, err)
	}
	if !p.seen(at, "at://a/1") || p.seen(at, "at://c/3") || !p.seen(at.Add(-1), "at://z") || p.seen(at.Add(1), "at://a/1") {
		t.Error("seen")
	}
	for _, bad := range []string{"yesterday", "2026-12-03T10:00:00Z notauri", "chat=", "chat=%zz", "2026-12-03T10:00:00Z chat=a at://a/1"} {
		if _, err := ParsePosition(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}

	// The chat log's cursor rides after the notifications' position; a
	// cursor stored before it (above) still reads, and either part may be
	// missing.
	p.Chat = "2222223a b/c"
	got, err = ParsePosition(p.String())
	if err != nil || !got.At.Equal(at) || len(got.URIs) != 2 || got.Chat != p.Chat {
		t.Fatalf("round trip with chat %q: %+v %v", p.String(), got, err)
	}
	chatOnly := Position{Chat: "2222224"}
	if got, err := ParsePosition(chatOnly.String()); err != nil || !got.At.IsZero() || got.Chat != "2222224" || chatOnly.String() != "chat=2222224" {
		t.Errorf("chat only %q: %+v %v", chatOnly.String(), got, err)
	}
	if got, err := ParsePosition("2026-12-03T10:00:00.000005Z at://a/1"); err != nil || got.Chat != "" || len(got.URIs) != 1 {
		t.Errorf("an old cursor: %+v %v", got, err)
	}
}

const dmJSON = `{"$type":"chat.bsky.convo.defs#logCreateMessage","rev":"2222223","convoId":"convo-1",
	"message":{"$type":"chat.bsky.convo.defs#messageView","id":"msg-1","rev":"2222223","text":"my bin is missing",
	"sender":{"did":"did:plc:alice"},"sentAt":"2026-12-03T10:00:00.000Z"}}`

func TestFromChatLog(t *testing.T) {
	now := time.Now().UTC()
	in, err := FromChatLog([]byte(dmJSON), "did:plc:council", now)
	if err != nil {
		t.Fatal(err)
	}
	if in.Visibility != channels.Private || in.ExternalID != "msg-1" || in.DedupeKey != "bluesky:dm:msg-1" || in.ConversationID != "convo-1" ||
		in.Author.ExternalID != "did:plc:alice" || in.Text != "my bin is missing" || !in.SentAt.Equal(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("%+v", in)
	}
	if _, err := FromChatLog([]byte(dmJSON), "did:plc:alice", now); !errors.Is(err, errNotAMessage) {
		t.Errorf("own message: %v", err)
	}
	for _, skip := range []string{
		`{"$type":"chat.bsky.convo.defs#logReadMessage","rev":"1","convoId":"c","message":{"id":"m","sender":{"did":"did:plc:a"}}}`,
		`{"$type":"chat.bsky.convo.defs#logCreateMessage","rev":"1","convoId":"c","message":{"$type":"chat.bsky.convo.defs#deletedMessageView","id":"m","sender":{"did":"did:plc:a"}}}`,
	} {
		if _, err := FromChatLog([]byte(skip), "", now); !errors.Is(err, errNotAMessage) {
			t.Errorf("%s: %v, want no message", skip, err)
		}
	}
	for _, bad := range []string{`nope`, `{"$type":"chat.bsky.convo.defs#logCreateMessage","message":7}`,
		`{"$type":"chat.bsky.convo.defs#logCreateMessage","convoId":"c","message":{"id":"m","sender":{"did":"alice"}}}`} {
		if _, err := FromChatLog([]byte(bad), "", now); err == nil || errors.Is(err, errNotAMessage) {
			t.Errorf("%s: %v, want an error", bad, err)
		}
	}
}

func FuzzFromChatLog(f *testing.F) {
	f.Add([]byte(dmJSON))
	f.Add([]byte(`{"$type":"chat.bsky.convo.defs#logCreateMessage","convoId":"c","message":{"id":"m","text":"\xff","sender":{"did":"did:"}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := FromChatLog(raw, "did:plc:council", time.Now())
		if err != nil {
			return
		}
		in.Account = "a"
		if err := in.Validate(); err != nil {
			t.Fatalf("a message that does not validate: %v", err)
		}
		if in.Visibility != channels.Private || in.Author.ExternalID == "did:plc:council" {
			t.Fatalf("%+v", in)
		}
	})
}

func FuzzFromNotification(f *testing.F) {
	f.Add([]byte(mentionJSON))
	f.Add([]byte(replyJSON))
	f.Add([]byte(`{"reason":"reply","uri":"at://","author":{"did":"x"},"record":{"reply":{}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, _, err := FromNotification(raw, "did:plc:council", time.Now())
		if err != nil {
			return
		}
		in.Account = "a"
		if err := in.Validate(); err != nil {
			t.Fatalf("a message that does not validate: %v", err)
		}
	})
}

func FuzzParsePosition(f *testing.F) {
	f.Add("2026-12-03T10:00:00.123Z at://a/1")
	f.Add("2026-12-03T10:00:00.123Z at://a/1 chat=2222223")
	f.Add("chat=a%20b")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePosition(s)
		if err != nil || (p.At.IsZero() && p.Chat == "") {
			return
		}
		again, err := ParsePosition(p.String())
		if err != nil || !again.At.Equal(p.At) || len(again.URIs) != len(p.URIs) || again.Chat != p.Chat {
			t.Fatalf("%q: round trip %+v %v", s, again, err)
		}
	})
}
