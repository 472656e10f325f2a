package bluesky

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Direct messages live in Bluesky's chat service, reached through the
// account's own service (PDS), which proxies chat.bsky.* calls to the
// service the atproto-proxy header names.
const (
	ProxyHeader = "atproto-proxy"
	ChatProxy   = "did:web:api.bsky.chat#bsky_chat"
)

// MaxMessageLength is the most graphemes one direct message holds.
const MaxMessageLength = 1000

// ErrNoChat says the account's app password does not allow direct
// messages: it was made without "Allow access to your direct messages".
var ErrNoChat = errors.New("the app password does not allow direct messages (make a new one with “Allow access to your direct messages” ticked)")

// chatError says whether err, from a chat call, means the app password
// has no access to the chat service: the service refused the call (401,
// 403) or said the token's scope or method is wrong, although the
// account itself signed in.
func chatError(err error) error {
	var signIn *SignInError
	var e *APIError
	if errors.As(err, &signIn) || !errors.As(err, &e) {
		return err
	}
	msg := strings.ToLower(e.Message)
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden ||
		(e.Name == "InvalidToken" && (strings.Contains(msg, "scope") || strings.Contains(msg, "method"))) {
		return fmt.Errorf("%w: %w", ErrNoChat, err)
	}
	return err
}

// Sender is who wrote a direct message.
type Sender struct {
	DID string `json:"did"`
}

// MessageView is a direct message as the chat service shows it.
type MessageView struct {
	Type   string `json:"$type,omitempty"`
	ID     string `json:"id"`
	Rev    string `json:"rev,omitempty"`
	Text   string `json:"text"`
	Sender Sender `json:"sender"`
	SentAt string `json:"sentAt"`
}

// Message types of the chat service.
const (
	MessageViewType        = "chat.bsky.convo.defs#messageView"
	DeletedMessageViewType = "chat.bsky.convo.defs#deletedMessageView"
	LogCreateMessageType   = "chat.bsky.convo.defs#logCreateMessage"
)

// ConvoView is a conversation as the chat service shows it.
type ConvoView struct {
	ID      string    `json:"id"`
	Members []Profile `json:"members"`
}

// convos remembers the conversation of each resident the account has
// written to, saving a getConvoForMembers call per reply.
type convos struct {
	mu   sync.Mutex
	byID map[string]string // resident DID → convoId
}

func (c *convos) get(did string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[did]
}

func (c *convos) forget(did string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.byID, did)
}

func (c *convos) put(did, convo string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		c.byID = map[string]string{}
	}
	c.byID[did] = convo
}

// ConvoWith finds (or opens) the account's conversation with the
// resident did.
func (c *Client) ConvoWith(ctx context.Context, did string) (string, error) {
	if id := c.convos.get(did); id != "" {
		return id, nil
	}
	var doc struct {
		Convo ConvoView `json:"convo"`
	}
	wrote, err := c.callVia(ctx, ChatProxy, http.MethodGet, "chat.bsky.convo.getConvoForMembers", url.Values{"members": {did}}, nil, &doc)
	if err != nil {
		return "", chatSendError(err, wrote)
	}
	if doc.Convo.ID == "" {
		return "", &channels.SendError{Kind: channels.Permanent, Reason: errUnreadable.Error(), Status: http.StatusOK}
	}
	c.convos.put(did, doc.Convo.ID)
	return doc.Convo.ID, nil
}

// SendMessage sends one direct message in the conversation convo.
func (c *Client) SendMessage(ctx context.Context, convo, text string) (MessageView, error) {
	switch {
	case strings.TrimSpace(text) == "":
		return MessageView{}, permanent("the message is empty")
	case Length(text) > MaxMessageLength:
		return MessageView{}, permanent(fmt.Sprintf("the message is longer than the %d graphemes (and %d bytes) Bluesky allows",
			MaxMessageLength, MaxMessageLength*BytesPerGrapheme))
	}
	in := map[string]any{"convoId": convo, "message": map[string]string{"text": text}}
	var m MessageView
	wrote, err := c.callVia(ctx, ChatProxy, http.MethodPost, "chat.bsky.convo.sendMessage", nil, in, &m)
	if err != nil {
		return MessageView{}, chatSendError(err, wrote)
	}
	if m.ID == "" {
		return MessageView{}, &channels.SendError{Kind: channels.Permanent, Reason: errUnreadable.Error(), Ambiguous: true, Status: http.StatusOK}
	}
	return m, nil
}

// chatSendError classifies a failed chat call: an app password without
// access to direct messages is the reply's refusal (permanent), not the
// account's (the account still signs in and posts).
func chatSendError(err error, wrote bool) *channels.SendError {
	if err = chatError(err); errors.Is(err, ErrNoChat) {
		var e *APIError
		out := permanent(ErrNoChat.Error())
		if errors.As(err, &e) {
			out.Status = e.Status
			out.Reason += ": " + e.Error()
		}
		return out
	}
	return sendError(err, wrote)
}

// sendPrivate sends a direct message to the resident out.Recipient (a
// DID), in their conversation with the account; a text over 1,000
// graphemes goes as numbered messages. A retried reply continues from its
// last part sent.
func (c *Client) sendPrivate(ctx context.Context, out channels.Outbound, onPart func(index int, id string) error) ([]string, error) {
	ids := append([]string(nil), out.SentParts...)
	if !strings.HasPrefix(out.Recipient, "did:") {
		return nil, permanent("a Bluesky direct message needs the resident's DID")
	}
	parts := SplitMessage(out.Text)
	if len(ids) >= len(parts) {
		return ids, nil
	}
	convo, err := c.ConvoWith(ctx, out.Recipient)
	if err != nil {
		return ids, err
	}
	for i := len(ids); i < len(parts); i++ {
		m, err := c.SendMessage(ctx, convo, parts[i])
		if err != nil {
			if channels.AsSendError(err).Kind == channels.Permanent {
				c.convos.forget(out.Recipient) // the conversation may be gone: look it up again next time
			}
			return ids, err
		}
		ids = append(ids, m.ID)
		if err := channels.RecordPart(onPart, i, m.ID); err != nil {
			return ids, err
		}
	}
	return ids, nil
}

// SplitMessage cuts a direct message into the numbered messages it goes
// as, each within 1,000 graphemes.
func SplitMessage(text string) []string { return Split(text, MaxMessageLength) }
