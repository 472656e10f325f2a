// Package metafake is a fake of the parts of Meta's Graph API the inbox
// uses: Messenger and Instagram messages (and private replies to
// comments), public replies to Facebook and Instagram comments, and
// WhatsApp Cloud messages. Tests and the network simulator point a
// meta.Client at it, read back what was sent and every call that arrived,
// and program failures with Meta's error codes.
//
// It answers in Meta's own shapes: 200 with the Graph API's answer on
// success, and {"error":{message, type, code, error_subcode, fbtrace_id}}
// otherwise. Its webhook builders (deliveries.go) make the bodies Meta
// delivers to an app's webhook, and sim.go plays Meta for cmd/netsim.
package metafake

import (
	"encoding/base64"
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
)

// firstID is the first id the fake hands out.
const firstID = 1900000000000000001

// maxRequestSize caps request bodies.
const maxRequestSize = 1 << 20

// Text limits Meta enforces on what is sent.
const (
	MaxMessengerText = 2000
	MaxWhatsAppText  = 4096
	MaxPageComment   = 8000
	MaxIGComment     = 2200
)

// Graph API error codes the fake answers with.
const (
	CodeUnknown           = 1      // an unknown error: retry
	CodeThrottled         = 4      // application request limit reached
	CodePermission        = 10     // with SubcodeOutsideWindow: Messenger's 24 hours are over
	CodeInvalidParameter  = 100    // a parameter Meta refuses
	CodeInvalidToken      = 190    // the access token is invalid, expired or revoked
	CodePersonUnavailable = 551    // the person cannot receive the message now
	CodeRateLimited       = 613    // calls to this API exceeded the rate limit
	CodeUnknownPath       = 2500   // a path the Graph API does not have
	CodeAlreadyReplied    = 10900  // a comment has its one private reply already
	CodeWAThroughput      = 130429 // WhatsApp throughput reached
	CodeWAReengagement    = 131047 // WhatsApp's 24 hours are over: templates only
	CodeWAPairRateLimit   = 131056 // WhatsApp: too many messages to one recipient

	SubcodeOutsideWindow = 2018278
)

// versionPattern is a Graph API version path segment.
var versionPattern = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)

// Kinds of send.
const (
	// KindMessage is a Messenger or Instagram message to a resident.
	KindMessage = "message"
	// KindPrivateReply is a Messenger or Instagram message answering a
	// comment (recipient.comment_id): one per comment.
	KindPrivateReply = "private_reply"
	// KindComment is a public reply to a comment: /comments on Facebook,
	// /replies on Instagram.
	KindComment = "comment"
	// KindWhatsApp is a WhatsApp message (text or template).
	KindWhatsApp = "whatsapp"
)

// Sent is one send the fake accepted.
type Sent struct {
	Kind string `json:"kind"`
	// Account is the Page, Instagram account or phone number id that sent
	// a message (the path's); empty for comment replies.
	Account string `json:"account,omitempty"`
	// ID is the new message's or comment's id.
	ID string `json:"id"`
	// Text is the message's text; a template's name for a WhatsApp
	// template.
	Text string `json:"text"`
	// Recipient is the resident a message went to: a PSID, IGSID or wa_id.
	// Empty for a private reply, which names the comment instead.
	Recipient string `json:"recipient,omitempty"`
	// InReplyTo is the comment a public or private reply answers, or the
	// WhatsApp message a message quotes (context.message_id).
	InReplyTo string `json:"in_reply_to,omitempty"`
	// Tag is a Messenger message tag (HUMAN_AGENT); Template a WhatsApp
	// template's name.
	Tag      string    `json:"tag,omitempty"`
	Template string    `json:"template,omitempty"`
	At       time.Time `json:"at"`
}

// Call is one Graph API call that arrived, and how it was answered.
type Call struct {
	At     time.Time
	Path   string
	Token  string
	Body   map[string]any
	Status int // 0 while it is being answered
}

// failure is a programmed error answer.
type failure struct {
	status, code, subcode int
}

// Server is the fake Graph API. Create it with New; it is safe for
// concurrent use.
type Server struct {
	mux *http.ServeMux

	mu       sync.Mutex
	token    string
	revoked  map[string]bool
	nextID   uint64
	sent     []Sent
	calls    []*Call
	failures []failure
	replied  map[string]bool // comments with their private reply
	onSent   func(Sent)
}

// New returns a fake Graph API that accepts token (any non-empty token
// when it is empty), with nothing sent.
func New(token string) *Server {
	s := &Server{token: token, nextID: firstID, revoked: map[string]bool{}, replied: map[string]bool{}}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /{version}/{id}/messages", s.api(s.message))
	s.mux.HandleFunc("POST /{version}/{id}/comments", s.api(s.commentReply(MaxPageComment)))
	s.mux.HandleFunc("POST /{version}/{id}/replies", s.api(s.commentReply(MaxIGComment)))
	s.mux.HandleFunc("GET /__sim/sent", s.listSent)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusBadRequest, graphError{Message: "Unknown path components: " + r.URL.Path,
			Type: "OAuthException", Code: CodeUnknownPath})
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// SetToken makes token the one accepted from now on (any non-empty one
// when empty), as when the account's owner issues a new access token: the
// old one is refused.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
	delete(s.revoked, token)
}

// Revoke refuses token from now on, as Meta refuses an access token whose
// session was invalidated: 401 with code 190, until SetToken accepts it
// again.
func (s *Server) Revoke(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[token] = true
}

// FailNext makes the next n sends (calls with an accepted token) fail with
// Meta's error document for code and subcode, answered with HTTP status
// (400 when 0), as Meta answers throttling (4, 613, 130429), the closed
// window (10/2018278, 131047) or an outage (1, 2 with 500). Calls queued
// this way add up.
func (s *Server) FailNext(n, status, code, subcode int) {
	if status == 0 {
		status = http.StatusBadRequest
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, failure{status: status, code: code, subcode: subcode})
	}
}

// OnSent sets fn to be called with each accepted send, before its answer
// is written, so sends made one after another reach fn in order. It runs
// on the request's goroutine and must not block. Pass nil to remove it.
func (s *Server) OnSent(fn func(Sent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onSent = fn
}

// Sent returns a copy of every send accepted so far, oldest first.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// Calls returns every Graph API call that arrived so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = *c
	}
	return out
}

// Reset forgets every send, call, queued failure and private reply. Ids
// keep increasing, so ids handed out before and after a reset never
// collide.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent, s.calls, s.failures = nil, nil, nil
	s.replied = map[string]bool{}
}

// graphError is the Graph API's error document.
type graphError struct {
	Message   string         `json:"message"`
	Type      string         `json:"type"`
	Code      int            `json:"code"`
	Subcode   int            `json:"error_subcode,omitempty"`
	ErrorData map[string]any `json:"error_data,omitempty"`
	FBTraceID string         `json:"fbtrace_id"`
}

// apiError is an error answer: its HTTP status and Meta's document.
type apiError struct {
	status int
	doc    graphError
}

// handler handles one call with an accepted token: the send to record,
// and what to answer once it has its id; or Meta's error.
type handler func(r *http.Request, body map[string]any) (*Sent, func(Sent) any, *apiError)

// api wraps a handler with what every call goes through: reading and
// recording it, the token check, programmed failures, recording the send
// and the OnSent hook.
func (s *Server) api(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestSize))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, graphError{Message: "(#100) The request is too large",
				Type: "OAuthException", Code: CodeInvalidParameter})
			return
		}
		var body map[string]any
		decodeErr := json.Unmarshal(raw, &body)
		rw := &statusWriter{ResponseWriter: w}
		w = rw
		call := s.arrived(r, body)
		defer s.answered(call, rw)

		if apiErr := s.authorize(call.Token); apiErr != nil {
			w.Header().Set("WWW-Authenticate", `OAuth "Facebook Platform" "invalid_token" "`+apiErr.doc.Message+`"`)
			writeError(w, apiErr.status, apiErr.doc)
			return
		}
		if f, ok := s.nextFailure(); ok {
			writeError(w, f.status, failureDoc(f, body))
			return
		}
		if !versionPattern.MatchString(r.PathValue("version")) {
			writeError(w, http.StatusBadRequest, graphError{Message: "Unknown path components: " + r.URL.Path,
				Type: "OAuthException", Code: CodeUnknownPath})
			return
		}
		if decodeErr != nil {
			writeError(w, http.StatusBadRequest, invalid("the request body is not a JSON object"))
			return
		}
		send, answer, apiErr := h(r, body)
		if apiErr != nil {
			writeError(w, apiErr.status, apiErr.doc)
			return
		}
		if apiErr := s.record(send); apiErr != nil {
			writeError(w, apiErr.status, apiErr.doc)
			return
		}
		// The hook runs before the answer goes back, so sends a client
		// makes one after another reach it in the same order.
		s.notify(*send)
		writeJSON(w, http.StatusOK, answer(*send))
	}
}

func (s *Server) arrived(r *http.Request, body map[string]any) *Call {
	c := &Call{At: time.Now(), Path: r.URL.Path, Token: token(r), Body: body}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	return c
}

func (s *Server) answered(c *Call, w *statusWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Status = w.status
	if c.Status == 0 {
		c.Status = http.StatusOK
	}
}

// authorize checks the call's access token as Meta does.
func (s *Server) authorize(tok string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	refuse := func(message string, subcode int) *apiError {
		return &apiError{status: http.StatusUnauthorized, doc: graphError{Message: message, Type: "OAuthException",
			Code: CodeInvalidToken, Subcode: subcode, FBTraceID: s.traceID()}}
	}
	switch {
	case tok == "":
		return refuse("An active access token must be used to query information about the current user.", 0)
	case s.revoked[tok]:
		return refuse("Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.", 460)
	case s.token != "" && tok != s.token:
		return refuse("Invalid OAuth access token - Cannot parse access token", 0)
	}
	return nil
}

func (s *Server) nextFailure() (failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) == 0 {
		return failure{}, false
	}
	f := s.failures[0]
	s.failures = s.failures[1:]
	return f, true
}

// record gives an accepted send its id and keeps it. A private reply to a
// comment that has one already is refused here, under the lock, so two at
// once cannot both go.
func (s *Server) record(send *Sent) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if send.Kind == KindPrivateReply {
		if s.replied[send.InReplyTo] {
			return &apiError{status: http.StatusBadRequest, doc: graphError{Message: "(#10900) Activity already replied to",
				Type: "OAuthException", Code: CodeAlreadyReplied, FBTraceID: s.traceID()}}
		}
		s.replied[send.InReplyTo] = true
	}
	n := strconv.FormatUint(s.nextID, 10)
	s.nextID++
	switch send.Kind {
	case KindMessage, KindPrivateReply:
		send.ID = "m_" + base64.RawURLEncoding.EncodeToString([]byte("fake."+n))
	case KindWhatsApp:
		send.ID = "wamid." + base64.StdEncoding.EncodeToString([]byte("fake."+send.Recipient+"."+n))
	default:
		// Facebook comment ids are "<post>_<comment>"; Instagram's plain.
		send.ID = n
		if post, _, ok := strings.Cut(send.InReplyTo, "_"); ok {
			send.ID = post + "_" + n
		}
	}
	send.At = time.Now().UTC()
	s.sent = append(s.sent, *send)
	return nil
}

func (s *Server) notify(send Sent) {
	s.mu.Lock()
	fn := s.onSent
	s.mu.Unlock()
	if fn != nil {
		fn(send)
	}
}

// traceID is a made-up fbtrace_id; call it with s.mu held.
func (s *Server) traceID() string {
	return "A" + base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(len(s.calls))+"fake-trace"))
}

// message handles POST /{version}/{id}/messages: Messenger and Instagram
// messages and private replies, and WhatsApp messages.
func (s *Server) message(r *http.Request, body map[string]any) (*Sent, func(Sent) any, *apiError) {
	account := r.PathValue("id")
	if str(body, "messaging_product") == "whatsapp" {
		return whatsappMessage(account, body)
	}
	recipient, _ := body["recipient"].(map[string]any)
	msg, _ := body["message"].(map[string]any)
	to, comment := str(recipient, "id"), str(recipient, "comment_id")
	text := str(msg, "text")
	switch {
	case to == "" && comment == "":
		return nil, nil, invalidErr("(#100) The parameter recipient is required")
	case to != "" && comment != "":
		return nil, nil, invalidErr("(#100) recipient takes one of id and comment_id")
	case strings.TrimSpace(text) == "" && msg["attachment"] == nil:
		return nil, nil, invalidErr("(#100) The parameter message is required")
	case utf8.RuneCountInString(text) > MaxMessengerText:
		return nil, nil, invalidErr(fmt.Sprintf("(#100) Length of param message[text] must be less than or equal to %d", MaxMessengerText))
	}
	tag := str(body, "tag")
	switch str(body, "messaging_type") {
	case "", "RESPONSE", "UPDATE":
	case "MESSAGE_TAG":
		if tag == "" {
			return nil, nil, invalidErr("(#100) Param tag is required for messaging_type MESSAGE_TAG")
		}
	default:
		return nil, nil, invalidErr("(#100) Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
	}
	send := &Sent{Kind: KindMessage, Account: account, Text: text, Recipient: to, Tag: tag}
	if comment != "" {
		send.Kind, send.InReplyTo = KindPrivateReply, comment
	}
	return send, func(sent Sent) any {
		answer := map[string]string{"message_id": sent.ID}
		if sent.Recipient != "" {
			answer["recipient_id"] = sent.Recipient
		}
		return answer
	}, nil
}

// whatsappMessage reads a WhatsApp Cloud send: text or template.
func whatsappMessage(number string, body map[string]any) (*Sent, func(Sent) any, *apiError) {
	to := str(body, "to")
	if to == "" || strings.Trim(strings.TrimPrefix(to, "+"), "0123456789") != "" {
		return nil, nil, invalidErr("(#100) Invalid parameter: to must be a phone number")
	}
	send := &Sent{Kind: KindWhatsApp, Account: number, Recipient: strings.TrimPrefix(to, "+")}
	if ctx, ok := body["context"].(map[string]any); ok {
		send.InReplyTo = str(ctx, "message_id")
	}
	switch str(body, "type") {
	case "", "text":
		text, _ := body["text"].(map[string]any)
		send.Text = str(text, "body")
		switch {
		case strings.TrimSpace(send.Text) == "":
			return nil, nil, invalidErr("(#100) The parameter text['body'] is required.")
		case utf8.RuneCountInString(send.Text) > MaxWhatsAppText:
			return nil, nil, invalidErr(fmt.Sprintf("(#100) Param text['body'] must be at most %d characters long.", MaxWhatsAppText))
		}
	case "template":
		tpl, _ := body["template"].(map[string]any)
		lang, _ := tpl["language"].(map[string]any)
		if str(tpl, "name") == "" || str(lang, "code") == "" {
			return nil, nil, invalidErr("(#100) The parameters template['name'] and template['language']['code'] are required.")
		}
		send.Template, send.Text = str(tpl, "name"), str(tpl, "name")
	default:
		return nil, nil, invalidErr("(#100) Param type must be one of {text, template}")
	}
	return send, func(sent Sent) any {
		m := map[string]string{"id": sent.ID}
		if sent.Template != "" {
			m["message_status"] = "accepted"
		}
		return map[string]any{
			"messaging_product": "whatsapp",
			"contacts":          []any{map[string]string{"input": to, "wa_id": sent.Recipient}},
			"messages":          []any{m},
		}
	}, nil
}

// commentReply handles POST /{version}/{comment-id}/comments (Facebook)
// and /replies (Instagram), with the network's limit.
func (s *Server) commentReply(limit int) handler {
	return func(r *http.Request, body map[string]any) (*Sent, func(Sent) any, *apiError) {
		text := str(body, "message")
		switch {
		case strings.TrimSpace(text) == "":
			return nil, nil, invalidErr("(#100) The parameter message is required")
		case utf8.RuneCountInString(text) > limit:
			return nil, nil, invalidErr(fmt.Sprintf("(#100) The comment is longer than %d characters", limit))
		}
		send := &Sent{Kind: KindComment, Text: text, InReplyTo: r.PathValue("id")}
		return send, func(sent Sent) any { return map[string]string{"id": sent.ID} }, nil
	}
}

// listSent handles GET /__sim/sent, for demonstrations and debugging.
func (s *Server) listSent(w http.ResponseWriter, _ *http.Request) {
	sent := s.Sent()
	if sent == nil {
		sent = []Sent{}
	}
	writeJSON(w, http.StatusOK, sent)
}

// messages are Meta's texts for the codes FailNext is given.
var messages = map[int]string{
	CodeUnknown:           "An unknown error occurred",
	2:                     "An unexpected error has occurred. Please retry your request later.",
	CodeThrottled:         "(#4) Application request limit reached",
	17:                    "(#17) User request limit reached",
	32:                    "(#32) Page request limit reached",
	CodePermission:        "(#10) This message is sent outside of allowed window.",
	CodeInvalidParameter:  "(#100) Invalid parameter",
	CodeInvalidToken:      "Error validating access token: Session has expired.",
	CodePersonUnavailable: "(#551) This person isn't available right now.",
	CodeRateLimited:       "(#613) Calls to this api have exceeded the rate limit.",
	CodeAlreadyReplied:    "(#10900) Activity already replied to",
	CodeWAThroughput:      "(#130429) Rate limit hit",
	CodeWAReengagement:    "(#131047) Re-engagement message",
	CodeWAPairRateLimit:   "(#131056) (Business Account, Consumer Account) pair rate limit hit",
}

// failureDoc is Meta's error document for a programmed failure; WhatsApp
// errors carry error_data as the Cloud API's do.
func failureDoc(f failure, body map[string]any) graphError {
	msg, ok := messages[f.code]
	if !ok {
		msg = fmt.Sprintf("(#%d) Error", f.code)
	}
	doc := graphError{Message: msg, Type: "OAuthException", Code: f.code, Subcode: f.subcode, FBTraceID: "AfakeFailure"}
	if str(body, "messaging_product") == "whatsapp" {
		doc.ErrorData = map[string]any{"messaging_product": "whatsapp", "details": msg}
	}
	return doc
}

func invalid(message string) graphError {
	return graphError{Message: message, Type: "OAuthException", Code: CodeInvalidParameter, FBTraceID: "AfakeInvalid"}
}

func invalidErr(message string) *apiError {
	return &apiError{status: http.StatusBadRequest, doc: invalid(message)}
}

// token is the call's access token: the bearer token, else the
// access_token parameter, as the Graph API accepts both.
func token(r *http.Request) string {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(tok)
	}
	return r.URL.Query().Get("access_token")
}

// str is m[key] when it is a string.
func str(m map[string]any, key string) string {
	v, _ := m[key].(string)
	return v
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

func writeError(w http.ResponseWriter, status int, doc graphError) {
	if doc.FBTraceID == "" {
		doc.FBTraceID = "AfakeTrace"
	}
	writeJSON(w, status, map[string]any{"error": doc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
