// Package telegramfake is a fake Telegram Bot API for tests and the
// network simulator: sendMessage records what the bot sent, getUpdates
// hands out a queue of updates from an offset (long polling, 409 while a
// webhook is set or another getUpdates is running), the bot token is
// checked (401), and failures can be staged (429 with retry_after, 403
// for a resident who blocked the bot). Builders make the updates
// residents' messages arrive as.
package telegramfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sent is one message the bot sent.
type Sent struct {
	ChatID    int64
	MessageID int64
	Text      string
	// ReplyTo is reply_parameters.message_id (0 when none), and
	// AllowWithoutReply its allow_sending_without_reply.
	ReplyTo           int64
	AllowWithoutReply bool
}

// Request is one call to the fake, whatever its answer.
type Request struct {
	Method string
	Status int
	// Offset and Timeout are getUpdates' parameters.
	Offset  int64
	Timeout int
	// At is when the answer was given.
	At time.Time
}

type failure struct {
	status, retryAfter int
	description        string
}

// Server is the fake Bot API of one bot. The zero value is not usable:
// call New.
type Server struct {
	mu       sync.Mutex
	botID    int64
	username string
	token    string
	revoked  bool
	nextMsg  int64
	nextUpd  int64
	updates  []queued
	arrived  chan struct{} // closed and replaced when an update is queued
	sent     []Sent
	requests []Request
	fail     []failure
	blocked  map[int64]bool
	webhook  string
	polling  bool
	overlaps int
	onSent   func(Sent)
	maxWait  time.Duration
}

type queued struct {
	id   int64
	body json.RawMessage
}

// Defaults of New.
const (
	BotID    = 7000000001
	Username = "ExampleCouncilBot"
	Token    = "7000000001:test-telegram-bot-token"
)

// New returns a fake for bot BotID with the token Token.
func New() *Server { return NewBot(BotID, Username, Token) }

// NewBot returns a fake for the bot with this id, username and token.
func NewBot(botID int64, username, token string) *Server {
	return &Server{botID: botID, username: username, token: token, nextMsg: 1, nextUpd: 1,
		arrived: make(chan struct{}), blocked: map[int64]bool{}, maxWait: maxLongPoll}
}

// SetMaxWait caps how long getUpdates waits for an update, whatever
// timeout it was given (5 s unless set), so tests need not wait long.
func (s *Server) SetMaxWait(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxWait = d
}

// SetToken changes the token the fake accepts (and un-revokes it).
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token, s.revoked = token, false
}

// Revoke makes every call answer 401 Unauthorized, as after /revoke in
// BotFather, until SetToken.
func (s *Server) Revoke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = true
}

// FailNext makes the next n sendMessage calls answer 429 Too Many
// Requests with parameters.retry_after.
func (s *Server) FailNext(n, retryAfter int) {
	s.FailNextWith(n, http.StatusTooManyRequests, fmt.Sprintf("Too Many Requests: retry after %d", retryAfter), retryAfter)
}

// FailNextWith makes the next n sendMessage calls answer status with the
// description (and retry_after when not zero).
func (s *Server) FailNextWith(n, status int, description string, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fail = append(s.fail, failure{status: status, description: description, retryAfter: retryAfter})
	}
}

// Block makes sends to the private chat chatID answer 403, as when the
// resident blocked the bot.
func (s *Server) Block(chatID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked[chatID] = true
}

// SetWebhook sets (or, with "", deletes) the bot's webhook: getUpdates
// answers 409 while one is set.
func (s *Server) SetWebhook(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhook = url
}

// OnSent calls f with every message the bot sends; f must not block.
func (s *Server) OnSent(f func(Sent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onSent = f
}

// Enqueue queues an update for getUpdates, numbering it: body is an
// update built by this package (its update_id is replaced). It returns
// the update_id.
func (s *Server) Enqueue(body []byte) int64 {
	var u map[string]json.RawMessage
	if err := json.Unmarshal(body, &u); err != nil {
		panic("telegramfake: Enqueue of an update that is not JSON: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextUpd
	s.nextUpd++
	u["update_id"] = json.RawMessage(strconv.FormatInt(id, 10))
	raw, _ := json.Marshal(u)
	s.updates = append(s.updates, queued{id: id, body: raw})
	close(s.arrived)
	s.arrived = make(chan struct{})
	return id
}

// NextUpdateID is the update_id the next webhook delivery built by a
// test should carry, so webhook and polled ids do not collide.
func (s *Server) NextUpdateID() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextUpd
	s.nextUpd++
	return id
}

// Sent is every message the bot sent, in order.
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

// Overlaps counts getUpdates calls made while another was running (each
// answered 409, as Telegram does).
func (s *Server) Overlaps() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overlaps
}

// ServeHTTP serves POST (or GET) /bot<token>/<method>, with parameters as
// JSON, a form or the query string.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	token, method, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		s.answerError(w, Request{Method: r.URL.Path}, http.StatusNotFound, "Not Found", 0)
		return
	}
	params, err := readParams(r)
	req := Request{Method: method}
	if err != nil {
		s.answerError(w, req, http.StatusBadRequest, "Bad Request: "+err.Error(), 0)
		return
	}
	s.mu.Lock()
	authorised := token == s.token && !s.revoked
	s.mu.Unlock()
	if !authorised {
		s.answerError(w, req, http.StatusUnauthorized, "Unauthorized", 0)
		return
	}
	switch method {
	case "sendMessage":
		s.sendMessage(w, req, params)
	case "getUpdates":
		s.getUpdates(w, r, req, params)
	case "setWebhook":
		s.SetWebhook(str(params["url"]))
		s.answer(w, req, true)
	case "deleteWebhook":
		s.SetWebhook("")
		s.answer(w, req, true)
	case "getMe":
		s.answer(w, req, map[string]any{"id": s.botID, "is_bot": true, "first_name": "Example Council", "username": s.username})
	default:
		s.answerError(w, req, http.StatusNotFound, "Not Found: method not found", 0)
	}
}

func (s *Server) sendMessage(w http.ResponseWriter, req Request, p map[string]any) {
	chatID, err := strconv.ParseInt(str(p["chat_id"]), 10, 64)
	text := str(p["text"])
	switch {
	case err != nil:
		s.answerError(w, req, http.StatusBadRequest, "Bad Request: chat not found", 0)
		return
	case strings.TrimSpace(text) == "":
		s.answerError(w, req, http.StatusBadRequest, "Bad Request: message text is empty", 0)
		return
	case len([]rune(text)) > 4096:
		s.answerError(w, req, http.StatusBadRequest, "Bad Request: message is too long", 0)
		return
	}
	var replyTo int64
	allow := false
	if rp, ok := p["reply_parameters"].(map[string]any); ok {
		replyTo, _ = strconv.ParseInt(str(rp["message_id"]), 10, 64)
		allow, _ = rp["allow_sending_without_reply"].(bool)
	}
	s.mu.Lock()
	if len(s.fail) > 0 {
		f := s.fail[0]
		s.fail = s.fail[1:]
		s.mu.Unlock()
		s.answerError(w, req, f.status, f.description, f.retryAfter)
		return
	}
	if s.blocked[chatID] {
		s.mu.Unlock()
		s.answerError(w, req, http.StatusForbidden, "Forbidden: bot was blocked by the user", 0)
		return
	}
	sent := Sent{ChatID: chatID, MessageID: s.nextMsg, Text: text, ReplyTo: replyTo, AllowWithoutReply: allow}
	s.nextMsg++
	s.sent = append(s.sent, sent)
	onSent := s.onSent
	s.mu.Unlock()
	chatType := "private"
	if chatID < 0 {
		chatType = "supergroup"
	}
	result := map[string]any{
		"message_id": sent.MessageID, "date": time.Now().Unix(), "text": text,
		"chat": map[string]any{"id": chatID, "type": chatType},
		"from": map[string]any{"id": s.botID, "is_bot": true, "first_name": "Example Council", "username": s.username},
	}
	if replyTo != 0 {
		result["reply_to_message"] = map[string]any{"message_id": replyTo, "chat": map[string]any{"id": chatID, "type": chatType}}
	}
	s.answer(w, req, result)
	if onSent != nil {
		onSent(sent)
	}
}

// maxLongPoll caps how long the fake holds a getUpdates call.
const maxLongPoll = 5 * time.Second

func (s *Server) getUpdates(w http.ResponseWriter, r *http.Request, req Request, p map[string]any) {
	req.Offset, _ = strconv.ParseInt(str(p["offset"]), 10, 64)
	timeout, _ := strconv.Atoi(str(p["timeout"]))
	req.Timeout = timeout
	limit, _ := strconv.Atoi(str(p["limit"]))
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	s.mu.Lock()
	switch {
	case s.webhook != "":
		s.mu.Unlock()
		s.answerError(w, req, http.StatusConflict, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first", 0)
		return
	case s.polling:
		s.overlaps++
		s.mu.Unlock()
		s.answerError(w, req, http.StatusConflict, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running", 0)
		return
	}
	s.polling = true
	maxWait := s.maxWait
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.polling = false
		s.mu.Unlock()
	}()
	deadline := time.NewTimer(min(time.Duration(timeout)*time.Second, maxWait))
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if req.Offset > 0 {
			// Updates before the offset are confirmed: forgotten.
			i := 0
			for i < len(s.updates) && s.updates[i].id < req.Offset {
				i++
			}
			s.updates = s.updates[i:]
		}
		var out []json.RawMessage
		for _, u := range s.updates {
			if len(out) == limit {
				break
			}
			out = append(out, u.body)
		}
		arrived := s.arrived
		s.mu.Unlock()
		if len(out) > 0 {
			s.answer(w, req, out)
			return
		}
		select {
		case <-arrived:
		case <-deadline.C:
			s.answer(w, req, []json.RawMessage{})
			return
		case <-r.Context().Done():
			s.record(req, 499)
			return
		}
	}
}

func (s *Server) record(req Request, status int) {
	req.Status, req.At = status, time.Now()
	s.mu.Lock()
	s.requests = append(s.requests, req)
	s.mu.Unlock()
}

func (s *Server) answer(w http.ResponseWriter, req Request, result any) {
	s.record(req, http.StatusOK)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

func (s *Server) answerError(w http.ResponseWriter, req Request, status int, description string, retryAfter int) {
	s.record(req, status)
	doc := map[string]any{"ok": false, "error_code": status, "description": description}
	if retryAfter > 0 {
		doc["parameters"] = map[string]any{"retry_after": retryAfter}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(doc)
}

// readParams reads a method's parameters as the Bot API takes them: a
// JSON body, a form, or the query string.
func readParams(r *http.Request) (map[string]any, error) {
	p := map[string]any{}
	for k, v := range r.URL.Query() {
		p[k] = v[0]
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || len(body) == 0 {
		return p, err
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			return nil, err
		}
		for k, v := range doc {
			p[k] = v
		}
		return p, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	for k, v := range form {
		p[k] = v[0]
		if k == "reply_parameters" {
			var rp map[string]any
			if json.Unmarshal([]byte(v[0]), &rp) == nil {
				p[k] = rp
			}
		}
	}
	return p, nil
}

// str reads a parameter as text, whatever JSON type it came as.
func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}
