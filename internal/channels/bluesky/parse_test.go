package bluesky

import (
	"errors"
	"testing"
	"time"
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
	for _, bad := range []string{"yesterday", "2026-12-03T10:00:00Z notauri"} {
		if _, err := ParsePosition(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
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
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePosition(s)
		if err != nil || p.At.IsZero() {
			return
		}
		again, err := ParsePosition(p.String())
		if err != nil || !again.At.Equal(p.At) || len(again.URIs) != len(p.URIs) {
			t.Fatalf("%q: round trip %+v %v", s, again, err)
		}
	})
}
