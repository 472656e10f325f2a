// Package blueskyfake is a fake Bluesky service for tests and the network
// simulator: createSession and refreshSession sign the council's account
// in with its app password (401 AuthenticationRequired otherwise),
// listNotifications pages the queued mentions and replies newest first,
// getPosts shows posts, and createRecord posts the council's replies,
// checking their 300 graphemes and that the root and parent references
// name existing posts with their cids. Its chat service (chat.bsky.convo
// getLog, getConvoForMembers, sendMessage, only with the atproto-proxy
// header naming Bluesky's chat service) keeps residents' direct messages
// and the council's answers of 1,000 graphemes; an app password without
// access to direct messages is refused there (400 InvalidToken "Bad token
// scope"). Access tokens can be expired (400 ExpiredToken) and failures
// staged (429 with ratelimit-reset). Simulation plays it in cmd/netsim.
package blueskyfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/citizeninbox/inbox/internal/channels/bluesky"
)

// Defaults of New.
const (
	Handle      = "examplecouncil.bsky.social"
	AppPassword = "test-bluesky-app-password"
	DID         = "did:plc:examplecouncil000000000"
)

// Sent is one post the council made.
type Sent struct {
	URI, CID, Text string
	Reply          *bluesky.ReplyRef
}

// Request is one call to the fake, whatever its answer.
type Request struct {
	Method string
	Status int
	// Cursor is listNotifications' or getLog's cursor parameter.
	Cursor string
	// Proxy is the atproto-proxy header.
	Proxy string
	At    time.Time
}

type failure struct {
	status int
	name   string
	reset  time.Time
}

type post struct {
	view      bluesky.PostView
	reason    string // the notification it made, "" for none
	indexedAt time.Time
}

// Server is the fake service of one account. Use New.
type Server struct {
	mu       sync.Mutex
	handle   string
	password string
	did      string
	tokens   int
	access   map[string]bool // access token → still valid
	refresh  map[string]bool
	posts    map[string]*post
	notes    []*post // in the order indexed
	sent     []Sent
	requests []Request
	fail     []failure
	seq      int
	clock    time.Time
	delay    time.Duration
	polling  int
	overlaps int
	onSent   func(Sent)
	sessions [2]int // signed in, refused

	chatState
}

// New returns a fake for Handle with AppPassword.
func New() *Server { return NewAccount(Handle, AppPassword, DID) }

// NewAccount returns a fake for the account with this handle, app
// password and DID.
func NewAccount(handle, password, did string) *Server {
	return &Server{handle: handle, password: password, did: did, access: map[string]bool{}, refresh: map[string]bool{},
		posts: map[string]*post{}, clock: time.Now().UTC().Truncate(time.Millisecond), chatState: newChatState()}
}

// DID is the account's DID.
func (s *Server) DID() string { return s.did }

// SetPassword changes the app password the fake accepts; sessions made
// with the old one stop working, as when an app password is revoked.
func (s *Server) SetPassword(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.password = p
	s.access, s.refresh = map[string]bool{}, map[string]bool{}
}

// ExpireTokens makes every access token given so far expired: calls with
// it answer 400 ExpiredToken until the session is refreshed.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.access {
		s.access[t] = false
	}
}

// SetPollDelay makes listNotifications take d, so that overlapping polls
// can be seen (Overlaps).
func (s *Server) SetPollDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Overlaps counts the listNotifications calls made while another ran.
func (s *Server) Overlaps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overlaps
}

// FailNext makes the next n createRecord calls answer 429 with
// ratelimit-reset retryAfter seconds from now.
func (s *Server) FailNext(n, retryAfter int) {
	s.FailNextWith(n, http.StatusTooManyRequests, "RateLimitExceeded", time.Now().Add(time.Duration(retryAfter)*time.Second))
}

// FailNextWith makes the next n createRecord calls answer status with the
// error name (and ratelimit-reset when reset is not zero).
func (s *Server) FailNextWith(n, status int, name string, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, failure{status: status, name: name, reset: reset})
	}
}

// FailMessagesNext makes the next n sendMessage calls answer status with
// the error name (and ratelimit-reset when reset is not zero).
func (s *Server) FailMessagesNext(n, status int, name string, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failDM = append(s.failDM, failure{status: status, name: name, reset: reset})
	}
}

// Sessions counts the sessions created with the account's app password,
// and the sign-ins refused.
func (s *Server) Sessions() (created, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[0], s.sessions[1]
}

// OnSent calls f with each post the council makes.
func (s *Server) OnSent(f func(Sent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onSent = f
}

// Sent is what the council posted, in order.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// Requests are the calls made, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Has says whether the fake holds the post uri.
func (s *Server) Has(uri string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts[uri] != nil
}

// Resident is a poster.
type Resident = bluesky.Profile

// Post makes resident from post text, answering the post inReplyTo when
// not empty, and notifies the council when the post mentions its handle
// (mention) or answers one of its posts (reply); ts gives posts the same
// indexedAt when not zero. It returns the post's uri.
func (s *Server) Post(from Resident, text, inReplyTo string, ts time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := bluesky.Post{Type: bluesky.PostCollection, Text: text}
	reason := ""
	if inReplyTo != "" {
		parent := s.posts[inReplyTo]
		if parent == nil {
			panic("blueskyfake: no post " + inReplyTo)
		}
		ref := bluesky.Ref{URI: parent.view.URI, CID: parent.view.CID}
		rec.Reply = &bluesky.ReplyRef{Root: ref, Parent: ref}
		if r := parent.view.Record.Reply; r != nil {
			rec.Reply.Root = r.Root
		}
		if parent.view.Author.DID == s.did {
			reason = "reply"
		}
	}
	if reason == "" && strings.Contains(text, "@"+s.handle) {
		reason = "mention"
	}
	if ts.IsZero() {
		s.clock = s.clock.Add(time.Millisecond)
		ts = s.clock
	}
	rec.CreatedAt = ts.Format(time.RFC3339Nano)
	p := s.add(from, rec, ts)
	p.reason = reason
	if reason != "" {
		s.notes = append(s.notes, p)
	}
	return p.view.URI
}

func (s *Server) add(from Resident, rec bluesky.Post, ts time.Time) *post {
	s.profiles[from.DID] = from
	s.seq++
	uri := fmt.Sprintf("at://%s/%s/3l%010d", from.DID, bluesky.PostCollection, s.seq)
	p := &post{view: bluesky.PostView{URI: uri, CID: fmt.Sprintf("bafyreifake%010d", s.seq), Author: from, Record: rec}, indexedAt: ts}
	s.posts[uri] = p
	return p
}

// ServeHTTP serves the XRPC methods the driver calls, and GET
// /__sim/sent: what the council posted and messaged, for demonstrations
// and debugging.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/__sim/sent" && r.Method == http.MethodGet {
		s.mu.Lock()
		doc := map[string]any{"posts": s.sent, "messages": s.sentDMs}
		s.mu.Unlock()
		answer(w, doc)
		return
	}
	nsid := strings.TrimPrefix(r.URL.Path, "/xrpc/")
	status := s.serve(w, r, nsid)
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: nsid, Status: status, Cursor: r.URL.Query().Get("cursor"),
		Proxy: r.Header.Get(bluesky.ProxyHeader), At: time.Now()})
	s.mu.Unlock()
}

func fail(w http.ResponseWriter, status int, name, message string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": name, "message": message})
	return status
}

func answer(w http.ResponseWriter, v any) int {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
	return http.StatusOK
}

// auth checks the bearer access token (or refresh token when refresh).
func (s *Server) auth(r *http.Request, refresh bool) (status int, name string) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	defer s.mu.Unlock()
	if refresh {
		if !ok || !s.refresh[token] {
			return http.StatusBadRequest, "InvalidToken"
		}
		return 0, ""
	}
	valid, known := s.access[token]
	switch {
	case !ok || !known:
		return http.StatusUnauthorized, "AuthenticationRequired"
	case !valid:
		return http.StatusBadRequest, "ExpiredToken"
	}
	return 0, ""
}

func (s *Server) session(w http.ResponseWriter, revoke string) int {
	s.tokens++
	access, refresh := fmt.Sprintf("access-%d", s.tokens), fmt.Sprintf("refresh-%d", s.tokens)
	s.access[access], s.refresh[refresh] = true, true
	delete(s.refresh, revoke)
	return answer(w, map[string]string{"accessJwt": access, "refreshJwt": refresh, "did": s.did, "handle": s.handle})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, nsid string) int {
	switch nsid {
	case "com.atproto.server.createSession":
		var in struct{ Identifier, Password string }
		if json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in) != nil {
			return fail(w, http.StatusBadRequest, "InvalidRequest", "unreadable body")
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if (in.Identifier != s.handle && in.Identifier != s.did) || in.Password != s.password {
			s.sessions[1]++
			return fail(w, http.StatusUnauthorized, "AuthenticationRequired", "Invalid identifier or password")
		}
		s.sessions[0]++
		return s.session(w, "")
	case "com.atproto.server.refreshSession":
		if status, name := s.auth(r, true); status != 0 {
			return fail(w, status, name, "Token could not be verified")
		}
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.session(w, token)
	}
	if status, name := s.auth(r, false); status != 0 {
		return fail(w, status, name, "Token could not be verified")
	}
	switch nsid {
	case "app.bsky.notification.listNotifications":
		return s.listNotifications(w, r)
	case "app.bsky.feed.getPosts":
		s.mu.Lock()
		defer s.mu.Unlock()
		views := []bluesky.PostView{}
		for _, u := range r.URL.Query()["uris"] {
			if p := s.posts[u]; p != nil {
				views = append(views, p.view)
			}
		}
		return answer(w, map[string]any{"posts": views})
	case "com.atproto.repo.createRecord":
		return s.createRecord(w, r)
	case "app.bsky.actor.getProfiles":
		return s.getProfiles(w, r)
	}
	if strings.HasPrefix(nsid, "chat.bsky.") {
		return s.serveChat(w, r, nsid)
	}
	return fail(w, http.StatusNotImplemented, "MethodNotImplemented", "Method Not Implemented")
}

func (s *Server) listNotifications(w http.ResponseWriter, r *http.Request) int {
	s.mu.Lock()
	s.polling++
	if s.polling > 1 {
		s.overlaps++
	}
	delay := s.delay
	s.mu.Unlock()
	time.Sleep(delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polling--
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 || limit > 100 {
		limit = 50
	}
	reasons := q["reasons"]
	// Newest first; the cursor is how many were listed before.
	var all []*post
	for i := len(s.notes) - 1; i >= 0; i-- {
		if len(reasons) == 0 || slices.Contains(reasons, s.notes[i].reason) {
			all = append(all, s.notes[i])
		}
	}
	slices.SortStableFunc(all, func(a, b *post) int { return b.indexedAt.Compare(a.indexedAt) })
	from, _ := strconv.Atoi(q.Get("cursor"))
	from = min(max(from, 0), len(all))
	to := min(from+limit, len(all))
	out := []map[string]any{}
	for _, p := range all[from:to] {
		out = append(out, map[string]any{"uri": p.view.URI, "cid": p.view.CID, "author": p.view.Author, "reason": p.reason,
			"record": p.view.Record, "isRead": false, "indexedAt": p.indexedAt.Format(time.RFC3339Nano)})
	}
	doc := map[string]any{"notifications": out}
	if to < len(all) {
		doc["cursor"] = strconv.Itoa(to)
	}
	return answer(w, doc)
}

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request) int {
	var in struct {
		Repo       string       `json:"repo"`
		Collection string       `json:"collection"`
		Record     bluesky.Post `json:"record"`
	}
	if json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in) != nil {
		return fail(w, http.StatusBadRequest, "InvalidRequest", "unreadable body")
	}
	s.mu.Lock()
	if len(s.fail) > 0 {
		f := s.fail[0]
		s.fail = s.fail[1:]
		s.mu.Unlock()
		if !f.reset.IsZero() {
			w.Header().Set("ratelimit-reset", strconv.FormatInt(f.reset.Unix(), 10))
		}
		return fail(w, f.status, f.name, "staged failure")
	}
	defer s.mu.Unlock()
	switch {
	case in.Repo != s.did && in.Repo != s.handle:
		return fail(w, http.StatusBadRequest, "InvalidRequest", "repo is not the session's")
	case in.Collection != bluesky.PostCollection:
		return fail(w, http.StatusBadRequest, "InvalidRequest", "unsupported collection")
	case bluesky.Graphemes(in.Record.Text) > bluesky.MaxPostLength:
		return fail(w, http.StatusBadRequest, "InvalidRequest", "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes")
	case len(in.Record.Text) > 3000:
		return fail(w, http.StatusBadRequest, "InvalidRequest", "Invalid app.bsky.feed.post record: Record/text must not be longer than 3000 characters")
	}
	if rp := in.Record.Reply; rp != nil {
		for _, ref := range []bluesky.Ref{rp.Root, rp.Parent} {
			if p := s.posts[ref.URI]; p == nil || p.view.CID != ref.CID {
				return fail(w, http.StatusBadRequest, "InvalidRequest", "reply reference "+ref.URI+" does not name a post with that cid")
			}
		}
		if parent := s.posts[rp.Parent.URI]; parent.view.Record.Reply != nil && parent.view.Record.Reply.Root != rp.Root {
			return fail(w, http.StatusBadRequest, "InvalidRequest", "the root is not the parent's root")
		}
	}
	s.clock = s.clock.Add(time.Millisecond)
	p := s.add(bluesky.Profile{DID: s.did, Handle: s.handle, DisplayName: "Example Council"}, in.Record, s.clock)
	sent := Sent{URI: p.view.URI, CID: p.view.CID, Text: in.Record.Text, Reply: in.Record.Reply}
	s.sent = append(s.sent, sent)
	if s.onSent != nil {
		s.onSent(sent)
	}
	return answer(w, map[string]string{"uri": p.view.URI, "cid": p.view.CID})
}
