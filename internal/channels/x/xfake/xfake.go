// Package xfake is a fake of the parts of the X API v2 the inbox uses:
// publishing posts and sending direct messages. Tests and the network
// simulator point an x.Client at it, read back what was sent and every
// request that arrived, and program failures (rate limits, per-account
// limits enforced as X does, outages, slow, stalled or lost answers).
//
// It answers in X's own shapes: 201 with {"data": ...} on success, and X's
// error documents otherwise.
package xfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels/x"
)

// firstID is the first id the fake hands out; ids look like X's snowflakes.
const firstID = 1900000000000000001

// DefaultUserID is the fake's own account id, used in direct message
// conversation ids until SetUserID changes it.
const DefaultUserID = "1800000000000000001"

// maxRequestSize caps request bodies.
const maxRequestSize = 1 << 20

// idPattern is what X accepts as a post or user id.
var idPattern = regexp.MustCompile(`^[0-9]{1,19}$`)

// Sent is one send the fake accepted.
type Sent struct {
	// Kind is "post" or "dm".
	Kind string `json:"kind"`
	// ID is the new post's id, or the direct message event id.
	ID   string `json:"id"`
	Text string `json:"text"`
	// InReplyTo is the post a post answers, if any.
	InReplyTo string `json:"in_reply_to,omitempty"`
	// Participant is the recipient of a direct message.
	Participant string `json:"participant,omitempty"`
	// ConversationID is the direct message conversation.
	ConversationID string    `json:"conversation_id,omitempty"`
	At             time.Time `json:"at"`
}

// Failure is how the fake answers a request instead of its normal answer.
// The zero Failure answers normally, so queueing one lets a later queued
// failure hit the second request rather than the first.
type Failure struct {
	// Status is the HTTP status to answer; 0 answers normally (after Delay).
	Status int
	// Header is added to the answer.
	Header http.Header
	// Body is the answer's body; empty means X's error document for Status.
	Body string
	// Delay is waited before answering, or until the client gives up.
	Delay time.Duration
	// Stall, when not nil, holds the request until it is closed or the
	// client gives up; a request whose client gave up is not accepted.
	Stall <-chan struct{}
	// DropAfterSend accepts and records the send, then answers Status (503
	// when Status is 0) as if X's answer had been lost.
	DropAfterSend bool
}

// RateLimited is the failure X answers when the rate limit window is used
// up until reset.
func RateLimited(reset time.Time) Failure {
	h := http.Header{}
	h.Set("x-rate-limit-limit", "100")
	h.Set("x-rate-limit-remaining", "0")
	h.Set("x-rate-limit-reset", strconv.FormatInt(reset.Unix(), 10))
	return Failure{
		Status: http.StatusTooManyRequests,
		Header: h,
		Body:   problemBody(http.StatusTooManyRequests, "Too Many Requests"),
	}
}

// Request is one API request that arrived, and how it was answered.
type Request struct {
	// At is when the request arrived (its body read).
	At time.Time
	// Token is the bearer token it carried: one per channel account.
	Token string
	Path  string
	// Body is the request's JSON body, as sent.
	Body string
	// Status is the answer's HTTP status; 0 while it is in flight, and for
	// a request whose client gave up.
	Status int
}

// rateLimit is X's per-account (per token) limit, as SetRateLimit sets it.
type rateLimit struct {
	limit int
	reset time.Time
	used  map[string]int
}

// Server is the fake X API. Create it with New; it is safe for concurrent
// use.
type Server struct {
	mux *http.ServeMux

	mu        sync.Mutex
	nextID    uint64
	userID    string
	sent      []Sent
	failures  []Failure
	onSent    func(Sent)
	onRequest func(Request)
	requests  []*Request
	inFlight  int
	limit     *rateLimit
	revoked   map[string]bool
}

// New returns a fake X API with nothing sent.
func New() *Server {
	s := &Server{nextID: firstID, userID: DefaultUserID}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /2/tweets", s.api(createPost))
	s.mux.HandleFunc("POST /2/dm_conversations/with/{participant_id}/messages", s.api(createDM))
	s.mux.HandleFunc("GET /__sim/sent", s.listSent)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, http.StatusNotFound, "Not Found", "The requested resource does not exist.")
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Sent returns a copy of every send accepted so far, oldest first.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// Reset forgets every send, request, queued failure and rate limit. Ids
// keep increasing, so ids handed out before and after a reset never
// collide.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = nil
	s.failures = nil
	s.limit = nil
	s.requests = nil
}

// FailNext queues f as the answer to the next API request. Queued failures
// are used one per request, in the order they were queued.
func (s *Server) FailNext(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, f)
}

// OnSent sets fn to be called with each accepted send, before its answer
// is written, so sends made one after another reach fn in order. It runs on
// the request's goroutine and must not block. Pass nil to remove it.
func (s *Server) OnSent(fn func(Sent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onSent = fn
}

// Requests returns every API request that arrived so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = *r
	}
	return out
}

// InFlight is how many API requests are being answered now.
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}

// OnRequest sets fn to be called with each API request as it arrives,
// before it is answered. It runs on the request's goroutine and must not
// block. Pass nil to remove it.
func (s *Server) OnRequest(fn func(Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRequest = fn
}

// SetRateLimit enforces X's rate limit: until reset, each account (bearer
// token) may make limit requests; later ones are answered 429 with
// x-rate-limit-reset. Every answer carries the x-rate-limit headers while
// the limit holds. From reset on, requests are no longer limited. A limit
// of 0 refuses every request until reset.
func (s *Server) SetRateLimit(limit int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit = &rateLimit{limit: limit, reset: reset, used: map[string]int{}}
}

// admit counts a request against its account's rate limit, and returns
// the headers to answer with and whether it is refused.
func (s *Server) admit(token string, at time.Time) (http.Header, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rl := s.limit
	if rl == nil || !at.Before(rl.reset) {
		return nil, false
	}
	h := http.Header{}
	h.Set("x-rate-limit-limit", strconv.Itoa(rl.limit))
	h.Set("x-rate-limit-reset", strconv.FormatInt(rl.reset.Unix(), 10))
	refused := rl.used[token] >= rl.limit
	if !refused {
		rl.used[token]++
	}
	h.Set("x-rate-limit-remaining", strconv.Itoa(rl.limit-rl.used[token]))
	return h, refused
}

// arrived records a request as it arrives.
func (s *Server) arrived(r *http.Request, body []byte) *Request {
	req := &Request{At: time.Now(), Token: bearer(r), Path: r.URL.Path, Body: string(body)}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.inFlight++
	fn := s.onRequest
	s.mu.Unlock()
	if fn != nil {
		fn(*req)
	}
	return req
}

// answered records how req was answered (0: not at all).
func (s *Server) answered(req *Request, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req.Status = status
	s.inFlight--
}

// SetUserID sets the fake's own account id, which appears in direct
// message conversation ids.
func (s *Server) SetUserID(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userID = id
}

// handler handles one API request, given its body, once its bearer token
// has been checked. It returns the send to record when the request is
// accepted, else X's error answer.
type handler func(r *http.Request, body []byte) (*Sent, *apiError)

// apiError is an error answer of the X API.
type apiError struct {
	status int
	body   any
}

// api wraps an API handler with what every X API request goes through:
// queued failures, the bearer token check, recording the send and the
// OnSent hook.
func (s *Server) api(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Read the whole request first: the server notices a client that
		// gives up only once the body has been read.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestSize))
		if err != nil {
			writeProblem(w, http.StatusRequestEntityTooLarge, "Payload Too Large", err.Error())
			return
		}
		rw := &statusWriter{ResponseWriter: w}
		w = rw
		req := s.arrived(r, body)
		defer func() { s.answered(req, rw.status) }()

		limitHeader, limited := s.admit(req.Token, req.At)
		for k, vs := range limitHeader {
			w.Header()[k] = vs
		}
		if limited {
			writeFailure(w, Failure{Status: http.StatusTooManyRequests,
				Body: problemBody(http.StatusTooManyRequests, "Too Many Requests")})
			return
		}
		f, failing := s.nextFailure()
		if failing && f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if failing && f.Stall != nil {
			select {
			case <-f.Stall:
			case <-r.Context().Done():
				return
			}
		}
		if failing && f.Status != 0 && !f.DropAfterSend {
			writeFailure(w, f)
			return
		}
		if !s.authorized(r) {
			writeProblem(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
			return
		}

		send, apiErr := h(r, body)
		if apiErr != nil {
			writeJSON(w, apiErr.status, apiErr.body)
			return
		}
		s.record(send)
		// The hook runs before the answer goes back, so sends a client
		// makes one after another reach it in the same order. Hooks must
		// not block.
		s.notify(*send)
		if failing && f.DropAfterSend {
			if f.Status == 0 {
				f.Status = http.StatusServiceUnavailable
			}
			writeFailure(w, f)
		} else {
			writeJSON(w, http.StatusCreated, answerFor(send))
		}
	}
}

func (s *Server) nextFailure() (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) == 0 {
		return Failure{}, false
	}
	f := s.failures[0]
	s.failures = s.failures[1:]
	return f, true
}

// record gives an accepted send its id and keeps it.
func (s *Server) record(send *Sent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	send.ID = strconv.FormatUint(s.nextID, 10)
	s.nextID++
	send.At = time.Now().UTC()
	if send.Kind == "dm" {
		send.ConversationID = conversationID(s.userID, send.Participant)
	}
	s.sent = append(s.sent, *send)
}

func (s *Server) notify(send Sent) {
	s.mu.Lock()
	fn := s.onSent
	s.mu.Unlock()
	if fn != nil {
		fn(send)
	}
}

// createPost handles POST /2/tweets.
func createPost(_ *http.Request, body []byte) (*Sent, *apiError) {
	var req struct {
		Text  *string `json:"text"`
		Reply *struct {
			InReplyToTweetID string `json:"in_reply_to_tweet_id"`
		} `json:"reply"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return invalid("Request body is not valid JSON: " + err.Error())
	}
	switch {
	case req.Text == nil || *req.Text == "":
		return invalid("$.text: must be at least 1 characters long")
	case x.WeightedLength(*req.Text) > x.MaxPostWeight:
		return invalid(fmt.Sprintf("$.text: Your Tweet text is too long. It weighs %d; the limit is %d.",
			x.WeightedLength(*req.Text), x.MaxPostWeight))
	}
	send := &Sent{Kind: "post", Text: *req.Text}
	if req.Reply != nil {
		if !idPattern.MatchString(req.Reply.InReplyToTweetID) {
			return invalid("$.reply.in_reply_to_tweet_id: does not match the regex pattern ^[0-9]{1,19}$")
		}
		send.InReplyTo = req.Reply.InReplyToTweetID
	}
	return send, nil
}

// createDM handles POST /2/dm_conversations/with/{participant_id}/messages.
func createDM(r *http.Request, body []byte) (*Sent, *apiError) {
	participant := r.PathValue("participant_id")
	if !idPattern.MatchString(participant) {
		return invalid("participant_id: does not match the regex pattern ^[0-9]{1,19}$")
	}
	var req struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return invalid("Request body is not valid JSON: " + err.Error())
	}
	switch {
	case req.Text == nil || *req.Text == "":
		return invalid("$.text: must be at least 1 characters long")
	case utf8.RuneCountInString(*req.Text) > x.MaxDMLength:
		return invalid(fmt.Sprintf("$.text: must be at most %d characters long", x.MaxDMLength))
	}
	return &Sent{Kind: "dm", Text: *req.Text, Participant: participant}, nil
}

// listSent handles GET /__sim/sent, for demonstrations and debugging.
func (s *Server) listSent(w http.ResponseWriter, _ *http.Request) {
	sent := s.Sent()
	if sent == nil {
		sent = []Sent{}
	}
	writeJSON(w, http.StatusOK, sent)
}

// answerFor is X's success answer to an accepted send.
func answerFor(send *Sent) any {
	if send.Kind == "dm" {
		return map[string]any{"data": map[string]string{
			"dm_conversation_id": send.ConversationID,
			"dm_event_id":        send.ID,
		}}
	}
	return map[string]any{"data": map[string]any{
		"id":                     send.ID,
		"text":                   send.Text,
		"edit_history_tweet_ids": []string{send.ID},
	}}
}

// conversationID is X's id of the one-to-one conversation between two
// users: both ids, smaller first.
func conversationID(a, b string) string {
	if len(a) > len(b) || (len(a) == len(b) && a > b) {
		a, b = b, a
	}
	return a + "-" + b
}

// authorized reports whether r carries a bearer token. The fake accepts
// any token.
func (s *Server) authorized(r *http.Request) bool {
	token := strings.TrimSpace(bearer(r))
	s.mu.Lock()
	defer s.mu.Unlock()
	return token != "" && !s.revoked[token]
}

// Revoke makes the fake refuse token from now on, as X does an access
// token the account's owner revoked: 401 to every request carrying it.
func (s *Server) Revoke(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked == nil {
		s.revoked = map[string]bool{}
	}
	s.revoked[token] = true
}

// bearer is the request's bearer token, empty when it has none.
func bearer(r *http.Request) string {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return token
}

// statusWriter remembers the status an answer was written with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// invalid is X's answer to a request that breaks the API's rules.
func invalid(message string) (*Sent, *apiError) {
	return nil, &apiError{status: http.StatusBadRequest, body: map[string]any{
		"errors": []map[string]any{{"message": message}},
		"title":  "Invalid Request",
		"detail": "One or more parameters to your request was invalid.",
		"type":   "https://api.twitter.com/2/problems/invalid-request",
	}}
}

func writeFailure(w http.ResponseWriter, f Failure) {
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	body := f.Body
	if body == "" {
		body = problemBody(f.Status, http.StatusText(f.Status))
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(f.Status)
	_, _ = io.WriteString(w, body)
}

// problemBody is X's problem document for status.
func problemBody(status int, detail string) string {
	b, _ := json.Marshal(problem(status, http.StatusText(status), detail))
	return string(b)
}

func problem(status int, title, detail string) map[string]any {
	return map[string]any{"title": title, "detail": detail, "type": "about:blank", "status": status}
}

func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	writeJSON(w, status, problem(status, title, detail))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
