// Package twiliofake is a fake of Twilio's Messages API for tests, the
// load tests and the network simulator: it checks the account's SID and
// auth token as Twilio does (401, error 20003), records each message with
// the segments it takes, refuses what Twilio refuses (an invalid or
// opted-out number, a body over 1,600 characters) and fails on request.
// It also builds the posts Twilio makes to a number's webhook, signed as
// Twilio signs them.
package twiliofake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels/twilio"
)

// Defaults of the fake's account, as the demo's configuration names them.
const (
	DefaultAccountSID = "AC00000000000000000000000000000000"
	DefaultAuthToken  = "demo-twilio-auth-token"
)

// Message is one message the council sent.
type Message struct {
	SID            string    `json:"sid"`
	To             string    `json:"to"`
	From           string    `json:"from"`
	Body           string    `json:"body"`
	StatusCallback string    `json:"status_callback"`
	Segments       int       `json:"segments"`
	Encoding       string    `json:"encoding"`
	At             time.Time `json:"at"`
}

// Failure is what the next send is answered with instead of success.
type Failure struct {
	Status  int
	Code    int
	Message string
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter int
}

// Server is the fake Messages API of one Twilio account.
type Server struct {
	mu         sync.Mutex
	accountSID string
	authToken  string
	sent       []Message
	requests   int
	failures   []Failure
	optedOut   map[string]bool
	onSent     func(Message)
	seq        int
	mux        *http.ServeMux
}

// New returns the fake of the account with the SID and auth token.
func New(accountSID, authToken string) *Server {
	s := &Server{accountSID: accountSID, authToken: authToken, optedOut: map[string]bool{}, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /2010-04-01/Accounts/{sid}/Messages.json", s.create)
	s.mux.HandleFunc("GET /__sim/sent", s.listSent)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Sent returns the messages accepted so far.
func (s *Server) Sent() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.sent...)
}

// Requests counts the sends that reached the fake, refused ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// FailNext makes the next send fail with f (after the credential check).
func (s *Server) FailNext(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, f)
}

// SetAuthToken replaces the account's auth token, as rotating it in
// Twilio's console does: the old one is refused from then on.
func (s *Server) SetAuthToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authToken = token
}

// OptOut makes number one that texted STOP: sends to it fail with 21610.
func (s *Server) OptOut(number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.optedOut[number] = true
}

// OnSent calls fn with each accepted message; fn must not block.
func (s *Server) OnSent(fn func(Message)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onSent = fn
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	sid, token := s.accountSID, s.authToken
	s.mu.Unlock()
	user, pass, ok := r.BasicAuth()
	if !ok || user != sid || pass != token || r.PathValue("sid") != sid {
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, 21620, "the request could not be read")
		return
	}
	if f, ok := s.nextFailure(); ok {
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
		writeError(w, f.Status, f.Code, f.Message)
		return
	}
	to, from, body := r.PostForm.Get("To"), r.PostForm.Get("From"), r.PostForm.Get("Body")
	s.mu.Lock()
	optedOut := s.optedOut[to]
	s.mu.Unlock()
	switch {
	case !e164.MatchString(to):
		writeError(w, http.StatusBadRequest, 21211, "Invalid 'To' Phone Number: "+to)
		return
	case from == "":
		writeError(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
		return
	case body == "":
		writeError(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	case utf8.RuneCountInString(body) > 1600:
		writeError(w, http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.")
		return
	case optedOut:
		writeError(w, http.StatusBadRequest, 21610, "Attempt to send to unsubscribed recipient")
		return
	}
	segments, enc := twilio.Segments(body)
	s.mu.Lock()
	s.seq++
	m := Message{SID: fmt.Sprintf("SM%032x", s.seq), To: to, From: from, Body: body,
		StatusCallback: r.PostForm.Get("StatusCallback"), Segments: segments, Encoding: string(enc), At: time.Now().UTC()}
	s.sent = append(s.sent, m)
	notify := s.onSent
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"sid": m.SID, "account_sid": sid, "to": to, "from": from, "body": body, "status": "queued",
		"num_segments": strconv.Itoa(segments), "direction": "outbound-api", "api_version": "2010-04-01",
		"error_code": nil, "error_message": nil, "date_created": m.At.Format(time.RFC1123Z),
		"uri": "/2010-04-01/Accounts/" + sid + "/Messages/" + m.SID + ".json",
	})
	if notify != nil {
		notify(m)
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

// listSent handles GET /__sim/sent, for demonstrations and debugging.
func (s *Server) listSent(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"messages": s.Sent()})
}

// writeError answers as Twilio does: {code, message, more_info, status}.
func writeError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, map[string]any{"code": code, "message": message,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
