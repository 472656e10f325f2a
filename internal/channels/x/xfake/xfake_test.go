package xfake_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
)

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

// call sends one request to the fake and decodes its JSON answer.
func call(t *testing.T, srv *httptest.Server, method, path, token, body string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("answer %d is not a JSON object: %q", resp.StatusCode, raw)
	}
	return a
}

func start(t *testing.T) (*xfake.Server, *httptest.Server) {
	t.Helper()
	fake := xfake.New()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv
}

func TestPostAndDirectMessage(t *testing.T) {
	fake, srv := start(t)

	a := call(t, srv, "POST", "/2/tweets", "tok", `{"text":"Thanks","reply":{"in_reply_to_tweet_id":"1876000000000000001"}}`)
	if a.status != http.StatusCreated {
		t.Fatalf("post: status %d, body %v", a.status, a.body)
	}
	data, _ := a.body["data"].(map[string]any)
	if data["id"] != "1900000000000000001" || data["text"] != "Thanks" {
		t.Errorf("post answer %v", a.body)
	}

	a = call(t, srv, "POST", "/2/dm_conversations/with/2244994945/messages", "tok", `{"text":"Hello Jo"}`)
	if a.status != http.StatusCreated {
		t.Fatalf("dm: status %d, body %v", a.status, a.body)
	}
	data, _ = a.body["data"].(map[string]any)
	if data["dm_event_id"] != "1900000000000000002" || data["dm_conversation_id"] != "2244994945-"+xfake.DefaultUserID {
		t.Errorf("dm answer %v", a.body)
	}

	sent := fake.Sent()
	if len(sent) != 2 {
		t.Fatalf("recorded %d sends, want 2", len(sent))
	}
	if s := sent[0]; s.Kind != "post" || s.InReplyTo != "1876000000000000001" || s.Text != "Thanks" || s.At.IsZero() {
		t.Errorf("recorded post %+v", s)
	}
	if s := sent[1]; s.Kind != "dm" || s.Participant != "2244994945" || s.ConversationID == "" {
		t.Errorf("recorded dm %+v", s)
	}

	// The recorded sends, for demonstrations.
	resp, err := srv.Client().Get(srv.URL + "/__sim/sent")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var listed []xfake.Sent
	if err := json.NewDecoder(resp.Body).Decode(&listed); err != nil || len(listed) != 2 || listed[1].Kind != "dm" {
		t.Errorf("/__sim/sent: %v, %+v", err, listed)
	}

	fake.Reset()
	if n := len(fake.Sent()); n != 0 {
		t.Errorf("%d sends after Reset", n)
	}
	a = call(t, srv, "POST", "/2/tweets", "tok", `{"text":"After reset"}`)
	if data, _ := a.body["data"].(map[string]any); data["id"] != "1900000000000000003" {
		t.Errorf("id after Reset = %v, want the sequence to continue", data["id"])
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name, path, token, body string
		status                  int
	}{
		{"no token", "/2/tweets", "", `{"text":"Hi"}`, 401},
		{"bad JSON", "/2/tweets", "tok", `{"text":`, 400},
		{"no text", "/2/tweets", "tok", `{}`, 400},
		{"empty text", "/2/tweets", "tok", `{"text":""}`, 400},
		{"text too long", "/2/tweets", "tok", `{"text":"` + strings.Repeat("a", 281) + `"}`, 400},
		{"CJK text too long", "/2/tweets", "tok", `{"text":"` + strings.Repeat("你", 141) + `"}`, 400},
		{"reply to a bad id", "/2/tweets", "tok", `{"text":"Hi","reply":{"in_reply_to_tweet_id":"abc"}}`, 400},
		{"DM to a bad id", "/2/dm_conversations/with/jo/messages", "tok", `{"text":"Hi"}`, 400},
		{"empty DM", "/2/dm_conversations/with/2244994945/messages", "tok", `{"text":""}`, 400},
		{"DM too long", "/2/dm_conversations/with/2244994945/messages", "tok", `{"text":"` + strings.Repeat("a", 10001) + `"}`, 400},
		{"unknown path", "/2/users/me", "tok", ``, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, srv := start(t)
			a := call(t, srv, "POST", tt.path, tt.token, tt.body)
			if a.status != tt.status {
				t.Errorf("status %d, want %d (body %v)", a.status, tt.status, a.body)
			}
			if a.body["title"] == nil && a.body["errors"] == nil {
				t.Errorf("answer %v is not an X error document", a.body)
			}
			if n := len(fake.Sent()); n != 0 {
				t.Errorf("recorded %d sends, want none", n)
			}
		})
	}

	// 280 weighted characters are accepted, links counted as 23.
	_, srv := start(t)
	text := strings.Repeat("a", 256) + " https://exampleshire.gov.uk/" + strings.Repeat("b", 100)
	if a := call(t, srv, "POST", "/2/tweets", "tok", `{"text":"`+text+`"}`); a.status != http.StatusCreated {
		t.Errorf("a post of weight 280 was refused: %v", a.body)
	}
}

func TestFailures(t *testing.T) {
	fake, srv := start(t)
	reset := time.Now().Add(15 * time.Minute)
	fake.FailNext(xfake.RateLimited(reset))
	fake.FailNext(xfake.Failure{})
	fake.FailNext(xfake.Failure{Status: 500, Body: `{"title":"Internal Error"}`})
	fake.FailNext(xfake.Failure{DropAfterSend: true})

	a := call(t, srv, "POST", "/2/tweets", "tok", `{"text":"1"}`)
	if a.status != 429 || a.header.Get("x-rate-limit-reset") != strconv.FormatInt(reset.Unix(), 10) {
		t.Errorf("first: status %d, reset %q", a.status, a.header.Get("x-rate-limit-reset"))
	}
	if got := call(t, srv, "POST", "/2/tweets", "tok", `{"text":"2"}`); got.status != 201 {
		t.Errorf("second: status %d, want 201", got.status)
	}
	if got := call(t, srv, "POST", "/2/tweets", "tok", `{"text":"3"}`); got.status != 500 || got.body["title"] != "Internal Error" {
		t.Errorf("third: %d %v", got.status, got.body)
	}
	if got := call(t, srv, "POST", "/2/tweets", "tok", `{"text":"4"}`); got.status != 503 {
		t.Errorf("fourth: status %d, want 503", got.status)
	}
	if got := call(t, srv, "POST", "/2/tweets", "tok", `{"text":"5"}`); got.status != 201 {
		t.Errorf("fifth: status %d, want 201 once the queue is empty", got.status)
	}

	var texts []string
	for _, s := range fake.Sent() {
		texts = append(texts, s.Text)
	}
	// The lost answer's post was made all the same.
	if strings.Join(texts, ",") != "2,4,5" {
		t.Errorf("recorded %q, want 2,4,5", texts)
	}
}

func TestDelayEndsWhenTheClientGivesUp(t *testing.T) {
	fake, srv := start(t)
	fake.FailNext(xfake.Failure{Delay: time.Minute})
	client := srv.Client()
	client.Timeout = 50 * time.Millisecond
	begun := time.Now()
	if _, err := client.Post(srv.URL+"/2/tweets", "application/json", strings.NewReader(`{"text":"hi"}`)); err == nil {
		t.Fatal("request did not time out")
	}
	// Closing the server waits for the handler, which must not sleep on.
	srv.Close()
	if d := time.Since(begun); d > 5*time.Second {
		t.Errorf("handler kept waiting %v after the client gave up", d)
	}
	if n := len(fake.Sent()); n != 0 {
		t.Errorf("recorded %d sends, want none", n)
	}
}

func TestOnSent(t *testing.T) {
	fake, srv := start(t)
	var mu sync.Mutex
	var seen []xfake.Sent
	fake.OnSent(func(s xfake.Sent) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, s)
	})
	call(t, srv, "POST", "/2/tweets", "tok", `{"text":"Thanks"}`)
	call(t, srv, "POST", "/2/tweets", "", `{"text":"refused"}`)
	srv.Close() // waits for handlers, and so for the hook
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0].Text != "Thanks" || seen[0].ID == "" {
		t.Errorf("hook saw %+v, want the one accepted post", seen)
	}
}

func TestRateLimitPerAccount(t *testing.T) {
	fake, srv := start(t)
	reset := time.Now().Add(time.Hour).Truncate(time.Second)
	fake.SetRateLimit(2, reset)
	post := func(token string) answer {
		return call(t, srv, "POST", "/2/tweets", token, `{"text":"Hello"}`)
	}
	for i, want := range []int{1, 0} {
		a := post("account-a")
		if a.status != http.StatusCreated || a.header.Get("x-rate-limit-remaining") != strconv.Itoa(want) {
			t.Fatalf("request %d: status %d, remaining %q, want 201 and %d", i+1, a.status, a.header.Get("x-rate-limit-remaining"), want)
		}
	}
	a := post("account-a")
	if a.status != http.StatusTooManyRequests || a.header.Get("x-rate-limit-reset") != strconv.FormatInt(reset.Unix(), 10) {
		t.Fatalf("third request: status %d, reset %q, want 429 and %d", a.status, a.header.Get("x-rate-limit-reset"), reset.Unix())
	}
	if a := post("account-b"); a.status != http.StatusCreated {
		t.Errorf("another account's first request answered %d, want 201", a.status)
	}
	if got := len(fake.Sent()); got != 3 {
		t.Errorf("%d sends accepted, want 3", got)
	}
	reqs := fake.Requests()
	if len(reqs) != 4 || reqs[2].Status != http.StatusTooManyRequests || reqs[2].Token != "account-a" || reqs[3].Token != "account-b" {
		t.Errorf("requests %+v", reqs)
	}

	fake.SetRateLimit(5, time.Now().Add(-time.Second)) // a window already over
	if a := post("account-a"); a.status != http.StatusCreated || a.header.Get("x-rate-limit-remaining") != "" {
		t.Errorf("after the reset: status %d, remaining %q, want 201 and no limit", a.status, a.header.Get("x-rate-limit-remaining"))
	}
}

func TestStallHoldsTheRequestUntilReleased(t *testing.T) {
	fake, srv := start(t)
	release := make(chan struct{})
	fake.FailNext(xfake.Failure{Stall: release})
	arrived := make(chan xfake.Request, 1)
	fake.OnRequest(func(r xfake.Request) { arrived <- r })

	done := make(chan answer, 1)
	go func() { done <- call(t, srv, "POST", "/2/tweets", "tok", `{"text":"Held"}`) }()
	if r := <-arrived; r.Token != "tok" || r.Path != "/2/tweets" || r.Body != `{"text":"Held"}` {
		t.Errorf("request seen as %+v", r)
	}
	if n := fake.InFlight(); n != 1 {
		t.Errorf("%d requests in flight while stalled, want 1", n)
	}
	if len(fake.Sent()) != 0 {
		t.Error("a stalled request was accepted before its release")
	}
	close(release)
	if a := <-done; a.status != http.StatusCreated {
		t.Errorf("released request answered %d", a.status)
	}
	if n := fake.InFlight(); n != 0 {
		t.Errorf("%d requests in flight after the answer, want 0", n)
	}
}

func TestStalledRequestWhoseClientGivesUpIsNotAccepted(t *testing.T) {
	fake, srv := start(t)
	fake.FailNext(xfake.Failure{Stall: make(chan struct{})})
	ctx, cancel := context.WithCancel(t.Context())
	fake.OnRequest(func(xfake.Request) { cancel() })
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/2/tweets", strings.NewReader(`{"text":"Held"}`))
	req.Header.Set("Authorization", "Bearer tok")
	if resp, err := srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the client's cancelled request was answered")
	}
	deadline := time.Now().Add(5 * time.Second)
	for fake.InFlight() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stalled request is still held after its client gave up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := fake.Requests(); len(got) != 1 || got[0].Status != 0 || len(fake.Sent()) != 0 {
		t.Errorf("requests %+v, sent %d: want one unanswered and nothing accepted", got, len(fake.Sent()))
	}
}
