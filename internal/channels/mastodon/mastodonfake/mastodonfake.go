// Package mastodonfake is a fake Mastodon instance for tests and the
// network simulator: residents' mentions queue notifications that GET
// /api/v1/notifications hands out newest first (since_id, min_id, max_id,
// limit and types[] honoured), POST /api/v1/statuses records what the
// council posted and honours Idempotency-Key (the same key returns the
// same status), GET /api/v1/statuses/:id, /api/v1/accounts/:id and
// /api/v2/instance answer as Mastodon does, the access token is checked
// (401), and failures can be staged (429 with X-RateLimit-Reset, or any
// status). Simulation (sim.go) is Mastodon for the network simulator.
package mastodonfake

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of New.
const (
	Token     = "test-mastodon-access-token"
	AccountID = "109000000000000001"
	Acct      = "ExampleCouncil"
)

// FirstID is the first id the fake gives: ids grow past a power of ten
// soon after, so a client comparing ids as strings goes wrong.
const FirstID = 99990

// Resident is an account writing to the council.
type Resident struct {
	ID, Acct, DisplayName string
}

// Sent is one status the council posted.
type Sent struct {
	ID, Text, InReplyTo, Visibility string
	// Key is the post's Idempotency-Key.
	Key string
	// Mentions are the ids of the accounts the status @mentions that the
	// instance knows, in order, as Mastodon finds them in its text.
	Mentions []string
}

// Request is one call to the fake, whatever its answer.
type Request struct {
	Method, Path string
	Query        map[string][]string
	Status       int
	Key          string
	At           time.Time
}

type status struct {
	ID          string    `json:"id"`
	CreatedAt   time.Time `json:"created_at"`
	InReplyToID *string   `json:"in_reply_to_id"`
	Visibility  string    `json:"visibility"`
	Content     string    `json:"content"`
	SpoilerText string    `json:"spoiler_text"`
	Account     account   `json:"account"`
	Mentions    []mention `json:"mentions"`
}

type account struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	Acct        string `json:"acct"`
	DisplayName string `json:"display_name"`
}

type mention struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Acct     string `json:"acct"`
}

type notification struct {
	id  int64
	typ string
	raw json.RawMessage
}

type failure struct {
	status int
	reset  time.Time
}

// Server is the fake instance, with one council account. The zero value
// is not usable: call New.
type Server struct {
	mu        sync.Mutex
	token     string
	revoked   bool
	council   account
	maxChars  int
	nextID    int64
	notes     []notification
	statuses  map[string]status
	accounts  map[string]account
	keys      map[string]string // Idempotency-Key → status id
	sent      []Sent
	requests  []Request
	fail      []failure
	onSent    func(Sent)
	inFlight  int
	overlaps  int
	pollDelay time.Duration
	handed    int
	// authorised and refused count the calls with the account's token
	// and with any other.
	authorised, refused int
}

// New returns a fake for account AccountID (@ExampleCouncil) with the
// token Token and a limit of 500 characters.
func New() *Server { return NewAccount(AccountID, Acct, Token) }

// NewAccount returns a fake for the council's account id and acct, with
// this token.
func NewAccount(id, acct, token string) *Server {
	c := account{ID: id, Username: acct, Acct: acct, DisplayName: "Example Council"}
	return &Server{token: token, council: c, maxChars: 500, nextID: FirstID,
		statuses: map[string]status{}, accounts: map[string]account{id: c}, keys: map[string]string{}}
}

// SetMaxCharacters sets the instance's configuration.statuses.max_characters.
func (s *Server) SetMaxCharacters(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxChars = n
}

// StartIDsAt makes id the next id the fake gives (FirstID unless set):
// a simulation starts from the clock, so ids keep growing from one run to
// the next, past a cursor the inbox kept.
func (s *Server) StartIDsAt(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID = id
}

// SetPollDelay makes each notifications request take d, so requests
// made at once meet in the fake (see Overlaps).
func (s *Server) SetPollDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pollDelay = d
}

// Revoke makes every call answer 401, until SetToken.
func (s *Server) Revoke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = true
}

// SetToken changes the token the fake accepts (and un-revokes it).
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token, s.revoked = token, false
}

// FailNext makes the next n posts answer 429 with X-RateLimit-Reset
// after wait.
func (s *Server) FailNext(n int, wait time.Duration) {
	s.FailNextWith(n, http.StatusTooManyRequests, time.Now().Add(wait))
}

// FailNextWith makes the next n posts answer status (with reset as
// X-RateLimit-Reset when not zero).
func (s *Server) FailNextWith(n, status int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, failure{status: status, reset: reset})
	}
}

// OnSent calls f with every status the council posts; f must not block.
func (s *Server) OnSent(f func(Sent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onSent = f
}

// Mention is a resident's status mentioning the council, with text as
// its (plain) text, in visibility (public, unlisted, private or direct),
// answering inReplyTo when set. It queues the mention notification and
// returns the status id.
func (s *Server) Mention(from Resident, text, visibility, inReplyTo string) string {
	content := "<p><span class=\"h-card\"><a href=\"https://mastodon.example/@" + s.council.Acct +
		"\" class=\"u-url mention\">@<span>" + s.council.Acct + "</span></a></span> " +
		strings.ReplaceAll(html.EscapeString(text), "\n", "<br />") + "</p>"
	return s.MentionHTML(from, content, visibility, inReplyTo)
}

// MentionHTML is Mention with the status's HTML content as given.
func (s *Server) MentionHTML(from Resident, content, visibility, inReplyTo string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := account{ID: from.ID, Username: from.Acct, Acct: from.Acct, DisplayName: from.DisplayName}
	if i := strings.IndexByte(from.Acct, '@'); i > 0 {
		a.Username = from.Acct[:i]
	}
	s.accounts[a.ID] = a
	st := status{ID: s.newID(), CreatedAt: time.Now().UTC().Truncate(time.Millisecond), Visibility: visibility, Content: content, Account: a,
		Mentions: []mention{{ID: s.council.ID, Username: s.council.Username, Acct: s.council.Acct}}}
	if inReplyTo != "" {
		st.InReplyToID = &inReplyTo
	}
	s.statuses[st.ID] = st
	s.queue("mention", a, &st)
	return st.ID
}

// Receive keeps a resident's status given as Mastodon's JSON of it (as
// Simulation's Post and Message make it), under its own id: its author
// becomes known to the instance and a mention notification is queued. It
// returns the status id; a status without a numeric id, an author or
// content, with an id already taken, or answering a status the instance
// does not have is refused.
func (s *Server) Receive(body []byte) (string, error) {
	var st status
	if err := json.Unmarshal(body, &st); err != nil {
		return "", fmt.Errorf("mastodonfake: not a status: %w", err)
	}
	if _, err := strconv.ParseUint(st.ID, 10, 64); err != nil {
		return "", fmt.Errorf("mastodonfake: status id %q is not a number", st.ID)
	}
	if st.Account.ID == "" || st.Account.Acct == "" || strings.TrimSpace(st.Content) == "" {
		return "", fmt.Errorf("mastodonfake: status %s has no author or content", st.ID)
	}
	if !slices.Contains([]string{"public", "unlisted", "private", "direct"}, st.Visibility) {
		return "", fmt.Errorf("mastodonfake: status %s has visibility %q", st.ID, st.Visibility)
	}
	if st.CreatedAt.IsZero() {
		st.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.statuses[st.ID]; ok {
		return "", fmt.Errorf("mastodonfake: status %s exists already", st.ID)
	}
	if st.InReplyToID != nil {
		if _, ok := s.statuses[*st.InReplyToID]; !ok {
			return "", fmt.Errorf("mastodonfake: status %s answers %s, which the instance does not have", st.ID, *st.InReplyToID)
		}
	}
	s.accounts[st.Account.ID] = st.Account
	s.statuses[st.ID] = st
	s.queue("mention", st.Account, &st)
	return st.ID, nil
}

// Calls counts the calls made with the account's token (authorised) and
// with another or none (refused).
func (s *Server) Calls() (authorised, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authorised, s.refused
}

// Notify queues a notification of another type (favourite, follow) from
// the resident, which the council's poller is not to take as a message.
func (s *Server) Notify(typ string, from Resident) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := account{ID: from.ID, Username: from.Acct, Acct: from.Acct, DisplayName: from.DisplayName}
	return s.queue(typ, a, nil)
}

// queue adds a notification; s.mu is held.
func (s *Server) queue(typ string, from account, st *status) string {
	id := s.nextID
	s.nextID++
	n := map[string]any{"id": strconv.FormatInt(id, 10), "type": typ, "created_at": time.Now().UTC().Format(time.RFC3339Nano), "account": from}
	if st != nil {
		n["status"] = st
	}
	raw, _ := json.Marshal(n)
	s.notes = append(s.notes, notification{id: id, typ: typ, raw: raw})
	return strconv.FormatInt(id, 10)
}

func (s *Server) newID() string {
	id := s.nextID
	s.nextID++
	return strconv.FormatInt(id, 10)
}

// Sent is every status the council posted, in order (a post repeated
// with the same Idempotency-Key once).
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// Requests is every call to the fake, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Overlaps counts notifications requests made while another was running.
func (s *Server) Overlaps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overlaps
}

// Handed counts the notifications all requests have handed out: a
// poller that never fetches one twice hands each out once.
func (s *Server) Handed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handed
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, body, header := s.serve(r)
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) serve(r *http.Request) (int, []byte, http.Header) {
	req := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Key: r.Header.Get("Idempotency-Key")}
	code, body, header := s.route(r)
	req.Status, req.At = code, time.Now()
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
	return code, body, header
}

func apiError(code int, msg string) (int, []byte, http.Header) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return code, b, nil
}

func (s *Server) route(r *http.Request) (int, []byte, http.Header) {
	s.mu.Lock()
	token, revoked := s.token, s.revoked
	s.mu.Unlock()
	if r.URL.Path == "/__sim/sent" {
		b, _ := json.Marshal(s.Sent())
		return http.StatusOK, b, nil
	}
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || got != token || revoked {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		return apiError(http.StatusUnauthorized, "The access token is invalid")
	}
	s.mu.Lock()
	s.authorised++
	s.mu.Unlock()
	path := r.URL.Path
	switch {
	case r.Method == http.MethodGet && path == "/api/v1/notifications":
		return s.notifications(r)
	case r.Method == http.MethodGet && path == "/api/v2/instance":
		s.mu.Lock()
		defer s.mu.Unlock()
		b, _ := json.Marshal(map[string]any{"domain": "mastodon.example", "title": "Example Town Social",
			"configuration": map[string]any{"statuses": map[string]any{"max_characters": s.maxChars, "max_media_attachments": 4}}})
		return http.StatusOK, b, nil
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/api/v1/statuses/"):
		s.mu.Lock()
		defer s.mu.Unlock()
		st, ok := s.statuses[strings.TrimPrefix(path, "/api/v1/statuses/")]
		if !ok {
			return apiError(http.StatusNotFound, "Record not found")
		}
		b, _ := json.Marshal(st)
		return http.StatusOK, b, nil
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/api/v1/accounts/"):
		s.mu.Lock()
		defer s.mu.Unlock()
		a, ok := s.accounts[strings.TrimPrefix(path, "/api/v1/accounts/")]
		if !ok {
			return apiError(http.StatusNotFound, "Record not found")
		}
		b, _ := json.Marshal(a)
		return http.StatusOK, b, nil
	case r.Method == http.MethodPost && path == "/api/v1/statuses":
		return s.post(r)
	}
	return apiError(http.StatusNotFound, "Not found")
}

// notifications answers newest first: with min_id the page just after
// it, else the newest page after since_id (and before max_id).
func (s *Server) notifications(r *http.Request) (int, []byte, http.Header) {
	q := r.URL.Query()
	num := func(k string) (int64, bool) {
		v := q.Get(k)
		if v == "" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	limit := 40
	if n, ok := num("limit"); ok && n > 0 {
		limit = int(min(n, 80))
	}
	s.mu.Lock()
	s.inFlight++
	if s.inFlight > 1 {
		s.overlaps++
	}
	delay := s.pollDelay
	s.mu.Unlock()
	time.Sleep(delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
	types := q["types[]"]
	var match []notification
	for _, n := range s.notes {
		if len(types) > 0 && !slices.Contains(types, n.typ) {
			continue
		}
		if v, ok := num("max_id"); ok && n.id >= v {
			continue
		}
		if v, ok := num("since_id"); ok && n.id <= v {
			continue
		}
		if v, ok := num("min_id"); ok && n.id <= v {
			continue
		}
		match = append(match, n) // oldest first
	}
	if _, ok := num("min_id"); ok {
		match = match[:min(limit, len(match))]
	} else {
		match = match[max(len(match)-limit, 0):]
	}
	out := make([]json.RawMessage, 0, len(match))
	for i := len(match) - 1; i >= 0; i-- {
		out = append(out, match[i].raw)
	}
	s.handed += len(out)
	b, _ := json.Marshal(out)
	return http.StatusOK, b, nil
}

func (s *Server) post(r *http.Request) (int, []byte, http.Header) {
	var in struct {
		Status      string `json:"status"`
		InReplyToID string `json:"in_reply_to_id"`
		Visibility  string `json:"visibility"`
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20)).Decode(&in); err != nil {
			return apiError(http.StatusUnprocessableEntity, "Validation failed: unreadable body")
		}
	} else {
		in.Status, in.InReplyToID, in.Visibility = r.FormValue("status"), r.FormValue("in_reply_to_id"), r.FormValue("visibility")
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.keys[key]; ok && key != "" {
		b, _ := json.Marshal(s.statuses[id])
		return http.StatusOK, b, nil
	}
	if len(s.fail) > 0 {
		f := s.fail[0]
		s.fail = s.fail[1:]
		h := http.Header{}
		if !f.reset.IsZero() {
			h.Set("X-RateLimit-Reset", f.reset.UTC().Format(time.RFC3339Nano))
		}
		code, b, _ := apiError(f.status, http.StatusText(f.status))
		return code, b, h
	}
	if in.Visibility == "" {
		in.Visibility = "public"
	}
	switch {
	case strings.TrimSpace(in.Status) == "":
		return apiError(http.StatusUnprocessableEntity, "Validation failed: Text can't be blank")
	case len([]rune(in.Status)) > s.maxChars:
		return apiError(http.StatusUnprocessableEntity, fmt.Sprintf("Validation failed: Text character limit of %d exceeded", s.maxChars))
	case !slices.Contains([]string{"public", "unlisted", "private", "direct"}, in.Visibility):
		return apiError(http.StatusUnprocessableEntity, "Validation failed: Visibility is not included in the list")
	}
	if in.InReplyToID != "" {
		if _, ok := s.statuses[in.InReplyToID]; !ok {
			return apiError(http.StatusNotFound, "Record not found")
		}
	}
	st := status{ID: s.newID(), CreatedAt: time.Now().UTC(), Visibility: in.Visibility,
		Content: "<p>" + strings.ReplaceAll(html.EscapeString(in.Status), "\n", "<br />") + "</p>", Account: s.council}
	if in.InReplyToID != "" {
		st.InReplyToID = &in.InReplyToID
	}
	s.statuses[st.ID] = st
	if key != "" {
		s.keys[key] = st.ID
	}
	sent := Sent{ID: st.ID, Text: in.Status, InReplyTo: in.InReplyToID, Visibility: in.Visibility, Key: key, Mentions: s.mentioned(in.Status)}
	s.sent = append(s.sent, sent)
	if s.onSent != nil {
		s.onSent(sent)
	}
	b, _ := json.Marshal(st)
	return http.StatusOK, b, nil
}

// mentioned finds the known accounts a status's text @mentions (by acct,
// or by username for a local account), as Mastodon fills a status's
// mentions; s.mu is held.
func (s *Server) mentioned(text string) []string {
	var ids []string
	for _, word := range strings.Fields(text) {
		acct, ok := strings.CutPrefix(word, "@")
		if !ok {
			continue
		}
		acct = strings.TrimRight(acct, ".,:;!?)")
		for id, a := range s.accounts {
			if strings.EqualFold(a.Acct, acct) && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}
