package blueskyfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/citizeninbox/inbox/internal/channels/bluesky"
)

// LogPage is the most entries one getLog answer holds.
const LogPage = 50

// SentMessage is one direct message the council sent.
type SentMessage struct {
	ID, ConvoID, Text string
	// To is the resident the conversation is with.
	To string
}

type convo struct {
	id     string
	member Resident // the resident; the council is the other member
}

type logEntry struct {
	rev     string
	convoID string
	message bluesky.MessageView
}

// chatState is the fake chat service's state, guarded by Server.mu.
type chatState struct {
	noChat    bool
	convos    map[string]*convo // by id
	convoOf   map[string]string // resident DID → convo id
	chatLog   []logEntry
	revs      int
	sentDMs   []SentMessage
	failDM    []failure
	failLog   []failure
	onMessage func(SentMessage)
	profiles  map[string]Resident
}

func newChatState() chatState {
	return chatState{convos: map[string]*convo{}, convoOf: map[string]string{}, profiles: map[string]Resident{}}
}

// SetChatAccess says whether the app password allows direct messages;
// without, every chat call answers 400 InvalidToken "Bad token scope", as
// Bluesky's chat service does.
func (s *Server) SetChatAccess(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noChat = !ok
}

// OnMessage calls f with each direct message the council sends.
func (s *Server) OnMessage(f func(SentMessage)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onMessage = f
}

// SentMessages are the direct messages the council sent, in order.
func (s *Server) SentMessages() []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sentDMs)
}

// ConvoOf is the id of the council's conversation with the resident did,
// "" when there is none.
func (s *Server) ConvoOf(did string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.convoOf[did]
}

// Message has resident from send the council a direct message, in their
// conversation (opened on the first), and returns the message's id.
func (s *Server) Message(from Resident, text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.profiles[from.DID] = from
	c := s.convoWith(from)
	return s.logMessage(c, from.DID, text).ID
}

// convoWith is the conversation with resident r, opened if need be.
func (s *Server) convoWith(r Resident) *convo {
	if id := s.convoOf[r.DID]; id != "" {
		return s.convos[id]
	}
	c := &convo{id: fmt.Sprintf("3convo%08d", len(s.convos)+1), member: r}
	s.convos[c.id], s.convoOf[r.DID] = c, c.id
	return c
}

func (s *Server) logMessage(c *convo, sender, text string) bluesky.MessageView {
	s.revs++
	rev := fmt.Sprintf("2222%012d", s.revs)
	s.clock = s.clock.Add(time.Millisecond)
	m := bluesky.MessageView{Type: bluesky.MessageViewType, ID: fmt.Sprintf("3msg%010d", s.revs), Rev: rev, Text: text,
		Sender: bluesky.Sender{DID: sender}, SentAt: s.clock.Format(time.RFC3339Nano)}
	s.chatLog = append(s.chatLog, logEntry{rev: rev, convoID: c.id, message: m})
	return m
}

func (s *Server) getProfiles(w http.ResponseWriter, r *http.Request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Resident{}
	for _, a := range r.URL.Query()["actors"] {
		if p, ok := s.profiles[a]; ok {
			out = append(out, p)
		}
	}
	return answer(w, map[string]any{"profiles": out})
}

func (s *Server) serveChat(w http.ResponseWriter, r *http.Request, nsid string) int {
	if r.Header.Get(bluesky.ProxyHeader) != bluesky.ChatProxy {
		return fail(w, http.StatusBadRequest, "InvalidRequest", "chat.bsky.* calls go to the chat service: set the atproto-proxy header to "+bluesky.ChatProxy)
	}
	s.mu.Lock()
	noChat := s.noChat
	s.mu.Unlock()
	if noChat {
		return fail(w, http.StatusBadRequest, "InvalidToken", "Bad token scope")
	}
	switch nsid {
	case "chat.bsky.convo.getLog":
		return s.getLog(w, r)
	case "chat.bsky.convo.getConvoForMembers":
		return s.getConvoForMembers(w, r)
	case "chat.bsky.convo.sendMessage":
		return s.sendMessage(w, r)
	}
	return fail(w, http.StatusNotImplemented, "MethodNotImplemented", "Method Not Implemented")
}

// FailLogNext makes the next n getLog calls answer status with the error
// name (and ratelimit-reset when reset is not zero).
func (s *Server) FailLogNext(n, status int, name string, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failLog = append(s.failLog, failure{status: status, name: name, reset: reset})
	}
}

// staged answers the first of failures, if any, and drops it.
func staged(w http.ResponseWriter, failures *[]failure) (int, bool) {
	if len(*failures) == 0 {
		return 0, false
	}
	f := (*failures)[0]
	*failures = (*failures)[1:]
	if !f.reset.IsZero() {
		w.Header().Set("ratelimit-reset", strconv.FormatInt(f.reset.Unix(), 10))
	}
	return fail(w, f.status, f.name, "staged failure"), true
}

// getLog lists the chat log after the cursor (a rev), oldest first,
// LogPage at a time; its cursor is the last rev listed, or the one given
// when there is nothing new.
func (s *Server) getLog(w http.ResponseWriter, r *http.Request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status, ok := staged(w, &s.failLog); ok {
		return status
	}
	cursor := r.URL.Query().Get("cursor")
	logs := []map[string]any{}
	next := cursor
	for _, e := range s.chatLog {
		if e.rev <= cursor {
			continue
		}
		if len(logs) == LogPage {
			break
		}
		logs = append(logs, map[string]any{"$type": bluesky.LogCreateMessageType, "rev": e.rev, "convoId": e.convoID, "message": e.message})
		next = e.rev
	}
	doc := map[string]any{"logs": logs}
	if next != "" {
		doc["cursor"] = next
	}
	return answer(w, doc)
}

func (s *Server) convoView(c *convo) map[string]any {
	return map[string]any{"id": c.id, "rev": "0", "muted": false, "unreadCount": 0,
		"members": []Resident{{DID: s.did, Handle: s.handle, DisplayName: "Example Council"}, c.member}}
}

func (s *Server) getConvoForMembers(w http.ResponseWriter, r *http.Request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var others []string
	for _, m := range r.URL.Query()["members"] {
		if m != s.did {
			others = append(others, m)
		}
	}
	if len(others) != 1 {
		return fail(w, http.StatusBadRequest, "InvalidRequest", "the fake's conversations have one resident: members "+strconv.Itoa(len(others)))
	}
	p, ok := s.profiles[others[0]]
	if !ok {
		p = Resident{DID: others[0], Handle: "handle.invalid"}
	}
	return answer(w, map[string]any{"convo": s.convoView(s.convoWith(p))})
}

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request) int {
	var in struct {
		ConvoID string `json:"convoId"`
		Message struct {
			Text string `json:"text"`
		} `json:"message"`
	}
	if json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&in) != nil {
		return fail(w, http.StatusBadRequest, "InvalidRequest", "unreadable body")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if status, ok := staged(w, &s.failDM); ok {
		return status
	}
	c := s.convos[in.ConvoID]
	switch {
	case c == nil:
		return fail(w, http.StatusBadRequest, "InvalidConvo", "Convo not found")
	case in.Message.Text == "":
		return fail(w, http.StatusBadRequest, "InvalidRequest", "Input/message/text is required")
	case bluesky.Graphemes(in.Message.Text) > bluesky.MaxMessageLength:
		return fail(w, http.StatusBadRequest, "InvalidRequest", "Input/message/text must not be longer than 1000 graphemes")
	case len(in.Message.Text) > 10000:
		return fail(w, http.StatusBadRequest, "InvalidRequest", "Input/message/text must not be longer than 10000 characters")
	}
	m := s.logMessage(c, s.did, in.Message.Text)
	sent := SentMessage{ID: m.ID, ConvoID: c.id, Text: m.Text, To: c.member.DID}
	s.sentDMs = append(s.sentDMs, sent)
	if s.onMessage != nil {
		s.onMessage(sent)
	}
	return answer(w, m)
}
