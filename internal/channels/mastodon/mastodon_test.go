package mastodon_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/mastodon"
	"github.com/citizeninbox/inbox/internal/channels/mastodon/mastodonfake"
)

var (
	alice = mastodonfake.Resident{ID: "110000000000000001", Acct: "alice@town.example", DisplayName: "Alice Example"}
	bob   = mastodonfake.Resident{ID: "110000000000000002", Acct: "bob", DisplayName: "Bob"}
)

func TestText(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"paragraphs and breaks", "<p>Hello<br>there</p><p>Second &amp; last</p>", "Hello\nthere\n\nSecond & last"},
		{"mention keeps its text", `<p><span class="h-card"><a href="https://x.example/@council" class="u-url mention">@<span>council</span></a></span> bins</p>`, "@council bins"},
		{"hashtag", `<p><a href="https://x.example/tags/bins" class="mention hashtag">#<span>bins</span></a></p>`, "#bins"},
		{"link shows its address", `<p>See <a href="https://council.example/bins/elm-road">this page</a></p>`, "See this page (https://council.example/bins/elm-road)"},
		{"shortened link is whole", `<a href="https://council.example/a/very/long/path"><span class="invisible">https://</span><span class="ellipsis">council.example/a/very</span><span class="invisible">/long/path</span></a>`, "https://council.example/a/very/long/path"},
		{"entities", "<p>&lt;script&gt; &#39;x&#39; &quot;y&quot; &eacute;</p>", "<script> 'x' \"y\" é"},
		{"self-closing br", "a<br />b<br/>c", "a\nb\nc"},
		{"no html", "plain", "plain"},
		{"empty", "", ""},
		{"unclosed", "<p>broken <a href='u'>link", "broken link (u)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mastodon.Text(tc.in); got != tc.want {
				t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestLess(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"99999", "100000", true}, {"100000", "99999", false}, {"5", "5", false}, {"109", "110", true}, {"007", "8", true},
	} {
		if got := mastodon.Less(tc.a, tc.b); got != tc.want {
			t.Errorf("Less(%s, %s) = %v", tc.a, tc.b, got)
		}
	}
}

// The adviser's counter and the sender split alike: numbered parts
// within the limit, by channels.SplitNumbered.
func TestTextRuleSplits(t *testing.T) {
	rule := mastodon.Driver{}.Channels()[mastodon.Channel].Text[channels.Public]
	for _, tc := range []struct {
		name  string
		text  string
		parts int
	}{
		{"fits", "short", 1},
		{"exactly", strings.Repeat("a", 500), 1},
		{"two", strings.Repeat("word ", 150), 2},
		{"many", strings.Repeat("A sentence here. ", 200), 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := rule.Split(tc.text)
			if len(parts) != tc.parts {
				t.Fatalf("%d parts, want %d", len(parts), tc.parts)
			}
			for i, p := range parts {
				if n := rule.Measure(p); n > rule.Limit {
					t.Errorf("part %d has %d characters", i+1, n)
				}
				if tc.parts > 1 && !strings.HasSuffix(p, fmt.Sprintf("(%d/%d)", i+1, tc.parts)) {
					t.Errorf("part %d not numbered: %q", i+1, p[max(len(p)-10, 0):])
				}
			}
		})
	}
}

func TestParseNotifications(t *testing.T) {
	acct := mastodon.Account{Slug: "council", ID: mastodonfake.AccountID}
	body := []byte(`[
	 {"id":"100001","type":"mention","created_at":"2026-01-02T03:04:05.000Z","account":{"id":"7","acct":"alice@town.example","display_name":"Alice"},
	  "status":{"id":"200001","created_at":"2026-01-02T03:04:05.000Z","in_reply_to_id":"199","visibility":"direct","content":"<p>Hi &amp; help</p>","spoiler_text":"bins",
	   "account":{"id":"7","acct":"alice@town.example","display_name":"Alice"}}},
	 {"id":"100000","type":"mention","account":{"id":"` + mastodonfake.AccountID + `"},"status":{"id":"200000","visibility":"public","content":"mine","account":{"id":"` + mastodonfake.AccountID + `"}}},
	 {"id":"99999","type":"favourite","account":{"id":"7"}}]`)
	notes, raws, err := mastodon.ParseNotifications(body)
	if err != nil || len(notes) != 3 || len(raws) != 3 {
		t.Fatalf("%d notifications, %v", len(notes), err)
	}
	in, _, err := mastodon.FromNotification(notes[0], raws[0], acct, time.Now())
	if err != nil || in == nil {
		t.Fatalf("mention: %v %v", in, err)
	}
	if in.Visibility != channels.Private || in.DedupeKey != "mastodon:200001" || in.ExternalID != "200001" || in.InReplyTo != "199" ||
		in.Text != "CW: bins\n\nHi & help" || in.Author.ExternalID != "7" || in.Author.Handle != "alice@town.example" || in.Validate() != nil {
		t.Errorf("direct mention %+v", in)
	}
	if _, kind, _ := mastodon.FromNotification(notes[1], raws[1], acct, time.Now()); kind != mastodon.IgnoredOwn {
		t.Errorf("own status: %q", kind)
	}
	if _, kind, _ := mastodon.FromNotification(notes[2], raws[2], acct, time.Now()); kind != mastodon.IgnoredUnsupported {
		t.Errorf("favourite: %q", kind)
	}
	for _, bad := range []string{`{}`, `[{"id":"abc"}]`, `[{"id":""}]`, `nope`} {
		if _, _, err := mastodon.ParseNotifications([]byte(bad)); !errors.Is(err, mastodon.ErrNotNotifications) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func newPoller(t *testing.T, fake *mastodonfake.Server) (*mastodon.Poller, *mastodon.Client) {
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c := &mastodon.Client{BaseURL: srv.URL, Token: mastodonfake.Token, Slug: "council"}
	return &mastodon.Poller{Client: c, Account: mastodon.Account{Slug: "council", ID: mastodonfake.AccountID}}, c
}

// A backlog of more than a page comes over several polls, oldest first,
// none skipped and none twice, across ids that grow a digit; other
// notifications move the cursor on.
func TestPollWorksThroughABacklog(t *testing.T) {
	fake := mastodonfake.New()
	p, _ := newPoller(t, fake)
	var want []string
	for i := range 95 {
		if i == 50 {
			fake.Notify("favourite", bob)
		}
		want = append(want, fake.Mention(alice, fmt.Sprintf("message %d", i), "public", ""))
	}
	var got []string
	cursor, polls := "", 0
	// A first poll from no cursor takes the newest page: start from just
	// before the first.
	cursor = fmt.Sprint(mastodonfake.FirstID - 1)
	for {
		msgs, next, err := p.Poll(context.Background(), cursor)
		if err != nil {
			t.Fatal(err)
		}
		polls++
		for _, m := range msgs {
			got = append(got, m.ExternalID)
		}
		if next == cursor {
			break
		}
		cursor = next
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("polled\n%v\nwant\n%v", got, want)
	}
	if polls != 4 {
		t.Errorf("%d polls, want 3 pages and an empty one", polls)
	}
	// The cursor is the greatest id, past the 100000 boundary.
	if !mastodon.Less("100000", cursor) {
		t.Errorf("cursor %s", cursor)
	}
	for _, r := range fake.Requests() {
		if r.Query["types[]"][0] != "mention" || r.Query["limit"][0] != "40" {
			t.Errorf("request %v", r.Query)
		}
	}
}

func TestPollFromNoCursorTakesTheNewestPage(t *testing.T) {
	fake := mastodonfake.New()
	p, _ := newPoller(t, fake)
	id := fake.Mention(alice, "hello", "direct", "")
	msgs, next, err := p.Poll(context.Background(), "")
	if err != nil || len(msgs) != 1 || msgs[0].ExternalID != id || msgs[0].Visibility != channels.Private {
		t.Fatalf("%+v %v", msgs, err)
	}
	msgs, again, err := p.Poll(context.Background(), next)
	if err != nil || len(msgs) != 0 || again != next {
		t.Errorf("second poll: %d messages, cursor %s (was %s), %v", len(msgs), again, next, err)
	}
	if _, _, err := p.Poll(context.Background(), "not-a-number"); err == nil {
		t.Error("a bad cursor was taken")
	}
	fake.Revoke()
	if _, c, err := p.Poll(context.Background(), next); err == nil || c != next || !strings.Contains(err.Error(), "access token") {
		t.Errorf("revoked: %v, cursor %s", err, c)
	}
}

func TestSend(t *testing.T) {
	fake := mastodonfake.New()
	fake.SetMaxCharacters(200)
	_, c := newPoller(t, fake)
	pub := fake.Mention(alice, "pothole", "unlisted", "")
	ids, err := c.Send(context.Background(), channels.Outbound{MessageID: 7, Visibility: channels.Public, Text: "Thanks, reported.", InReplyTo: pub}, nil)
	if err != nil || len(ids) != 1 {
		t.Fatalf("%v %v", ids, err)
	}
	s := fake.Sent()[0]
	if s.Text != "@alice@town.example Thanks, reported." || s.InReplyTo != pub || s.Visibility != "unlisted" || s.Key == "" {
		t.Errorf("public reply %+v", s)
	}
	// The same message again: the same key, nothing new posted.
	again, err := c.Send(context.Background(), channels.Outbound{MessageID: 7, Visibility: channels.Public, Text: "Thanks, reported.", InReplyTo: pub}, nil)
	if err != nil || again[0] != ids[0] || len(fake.Sent()) != 1 {
		t.Errorf("a repeated send posted again: %v %v, %d sent", again, err, len(fake.Sent()))
	}
	// Private, long: a direct thread of numbered parts.
	long := strings.Repeat("The crew will come back tomorrow. ", 20)
	var recorded []string
	_, err = c.Send(context.Background(), channels.Outbound{MessageID: 8, Visibility: channels.Private, Text: long, Recipient: bob.ID},
		func(_ int, id string) error { recorded = append(recorded, id); return nil })
	if err == nil {
		t.Fatal("a resident the instance does not know was addressed")
	}
	fake.Mention(bob, "hi", "direct", "")
	ids, err = c.Send(context.Background(), channels.Outbound{MessageID: 8, Visibility: channels.Private, Text: long, Recipient: bob.ID},
		func(_ int, id string) error { recorded = append(recorded, id); return nil })
	if err != nil || len(ids) < 4 || len(recorded) != len(ids) {
		t.Fatalf("%d parts, %v", len(ids), err)
	}
	sent := fake.Sent()[1:]
	for i, s := range sent {
		if !strings.HasPrefix(s.Text, "@bob ") || s.Visibility != "direct" || utf8.RuneCountInString(s.Text) > 200 ||
			!strings.HasSuffix(s.Text, fmt.Sprintf("(%d/%d)", i+1, len(sent))) {
			t.Errorf("part %d: %+v", i+1, s)
		}
		if i > 0 && s.InReplyTo != sent[i-1].ID {
			t.Errorf("part %d answers %s, not part %d", i+1, s.InReplyTo, i)
		}
	}
}

func TestSendErrors(t *testing.T) {
	fake := mastodonfake.New()
	_, c := newPoller(t, fake)
	pub := fake.Mention(alice, "pothole", "public", "")
	out := channels.Outbound{MessageID: 9, Visibility: channels.Public, Text: "ok", InReplyTo: pub}
	reset := time.Now().Add(90 * time.Second)
	fake.FailNextWith(1, http.StatusTooManyRequests, reset)
	_, err := c.Send(context.Background(), out, nil)
	if se := channels.AsSendError(err); se.Kind != channels.RateLimited || se.RetryAt.Sub(reset).Abs() > time.Second {
		t.Errorf("429: %+v", se)
	}
	fake.FailNextWith(1, http.StatusBadGateway, time.Time{})
	if se := channels.AsSendError(func() error { _, err := c.Send(context.Background(), out, nil); return err }()); se.Kind != channels.Retryable || se.Ambiguous {
		t.Errorf("502: %+v", se)
	}
	fake.FailNextWith(1, http.StatusUnprocessableEntity, time.Time{})
	if se := channels.AsSendError(func() error { _, err := c.Send(context.Background(), out, nil); return err }()); se.Kind != channels.Permanent {
		t.Errorf("422: %+v", se)
	}
	fake.Revoke()
	if se := channels.AsSendError(func() error { _, err := c.Send(context.Background(), out, nil); return err }()); se.Kind != channels.Unauthorised {
		t.Errorf("401: %+v", se)
	}
}

func FuzzParseNotifications(f *testing.F) {
	f.Add([]byte(`[{"id":"1","type":"mention","status":{"id":"2","content":"<p>x</p>","visibility":"direct","account":{"id":"3"}}}]`))
	f.Add([]byte(`[{"id":"1","type":"follow","account":{"id":"3"}}]`))
	f.Add([]byte(`[]`))
	acct := mastodon.Account{Slug: "c", ID: "9"}
	f.Fuzz(func(t *testing.T, body []byte) {
		notes, raws, err := mastodon.ParseNotifications(body)
		if err != nil {
			return
		}
		for i := range notes {
			in, _, err := mastodon.FromNotification(notes[i], raws[i], acct, time.Now())
			if err == nil && in != nil {
				if err := in.Validate(); err != nil {
					t.Errorf("an invalid message: %v", err)
				}
			}
		}
	})
}

func FuzzText(f *testing.F) {
	f.Add("<p>Hello<br>there &amp; <a href=\"https://x\">link</a></p>")
	f.Add("<a><a><a>")
	f.Add("&#xD800;")
	f.Fuzz(func(t *testing.T, in string) {
		out := mastodon.Text(in)
		if strings.Contains(out, "\n\n\n") {
			t.Errorf("more than one blank line: %q", out)
		}
	})
}
