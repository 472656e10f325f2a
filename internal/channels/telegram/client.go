package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels"
)

// DefaultBaseURL is the Bot API, used when Client.BaseURL is empty.
const DefaultBaseURL = "https://api.telegram.org"

const (
	maxAnswerSize   = 8 << 20 // getUpdates answers up to 100 updates
	maxReasonLength = 500
	// defaultRetryAfter is the wait after a 429 that names none.
	defaultRetryAfter = 5 * time.Second
)

// Client calls the Bot API for one bot. It is safe for concurrent use.
type Client struct {
	// BaseURL is the API address; DefaultBaseURL when empty. Tests and the
	// simulator point it at telegramfake or the emulator.
	BaseURL string
	// Token is the bot's token.
	Token string
	// HTTP sends the requests; nil means a client with a 30-second
	// timeout.
	HTTP *http.Client
	// now is the clock retry_after counts from; time.Now when nil.
	now func() time.Time
}

var _ channels.Sender = (*Client)(nil)

// APIError is the Bot API's refusal: {"ok":false,"error_code",
// "description","parameters":{"retry_after","migrate_to_chat_id"}}.
type APIError struct {
	// Status is the HTTP status; Code Telegram's error_code (the same, as
	// a rule).
	Status      int
	Code        int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter      int   `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("Telegram error %d: %s", e.code(), e.Description)
	if e.Parameters.MigrateToChatID != 0 {
		msg += fmt.Sprintf(" (the group is now chat %d)", e.Parameters.MigrateToChatID)
	}
	return msg
}

func (e *APIError) code() int {
	if e.Code != 0 {
		return e.Code
	}
	return e.Status
}

// Conflict says whether getUpdates was refused because a webhook is set
// or another poller is running.
func (e *APIError) Conflict() bool { return e.code() == http.StatusConflict }

// Message is what sendMessage answers: the message as sent.
type Message struct {
	MessageID int64 `json:"message_id"`
	Chat      struct {
		ID int64 `json:"id"`
	} `json:"chat"`
}

// SendMessage sends text to chatID, answering message replyTo of that
// chat when it is not zero (and sending all the same if it was deleted),
// and returns the new message's id in the chat. The text must fit
// MaxMessageLength; Send splits longer replies. Failures are
// *channels.SendError.
func (c *Client) SendMessage(ctx context.Context, chatID int64, text string, replyTo int64) (int64, error) {
	switch {
	case strings.TrimSpace(text) == "":
		return 0, permanent("the message is empty")
	case utf8.RuneCountInString(text) > MaxMessageLength:
		return 0, permanent(fmt.Sprintf("the message is longer than the %d characters Telegram allows", MaxMessageLength))
	}
	req := sendRequest{ChatID: chatID, Text: text}
	if replyTo != 0 {
		req.ReplyParameters = &replyParameters{MessageID: replyTo, AllowSendingWithoutReply: true}
	}
	var m Message
	wrote, err := c.call(ctx, "sendMessage", req, &m)
	if err != nil {
		return 0, c.sendError(err, wrote)
	}
	if m.MessageID == 0 {
		// Telegram most likely sent it: not retried, flagged.
		return 0, &channels.SendError{Kind: channels.Permanent, Reason: "unreadable answer from Telegram", Ambiguous: true, Status: http.StatusOK}
	}
	return m.MessageID, nil
}

type sendRequest struct {
	ChatID          int64            `json:"chat_id"`
	Text            string           `json:"text"`
	ReplyParameters *replyParameters `json:"reply_parameters,omitempty"`
}

type replyParameters struct {
	MessageID                int64 `json:"message_id"`
	AllowSendingWithoutReply bool  `json:"allow_sending_without_reply"`
}

// Send delivers one reply in parts of MaxMessageLength characters, each
// answering the resident's message (out.InReplyTo) with reply_parameters,
// and returns the network ids of all its parts, those an earlier attempt
// sent included. A public reply goes to the group of the message it
// answers; a private one to the resident's private chat with the bot (its
// id is the resident's user id). On failure Send returns the ids sent so
// far with the error.
func (c *Client) Send(ctx context.Context, out channels.Outbound, onPart func(index int, id string) error) ([]string, error) {
	ids := append([]string(nil), out.SentParts...)
	if out.Template != nil || out.ToPublicPost {
		return nil, permanent("Telegram bots send neither templates nor private replies to group messages")
	}
	var chatID, replyTo int64
	if out.InReplyTo != "" {
		var err error
		if chatID, replyTo, err = SplitMessageID(out.InReplyTo); err != nil {
			return nil, permanent("the message answered has no Telegram id: " + err.Error())
		}
	}
	switch out.Visibility {
	case channels.Public:
		if replyTo == 0 {
			return nil, permanent("a group reply needs the message it answers")
		}
	case channels.Private:
		to, err := strconv.ParseInt(out.Recipient, 10, 64)
		if err != nil || to <= 0 {
			return nil, permanent(fmt.Sprintf("the resident's Telegram user id %q is not a number", out.Recipient))
		}
		if chatID != to {
			replyTo = 0 // a message of another chat cannot be quoted here
		}
		chatID = to
	default:
		return nil, permanent(fmt.Sprintf("unknown visibility %q", out.Visibility))
	}
	parts := channels.SplitNumbered(out.Text, MaxMessageLength)
	for i := len(ids); i < len(parts); i++ {
		n, err := c.SendMessage(ctx, chatID, parts[i], replyTo)
		if err != nil {
			return ids, err
		}
		id := MessageID(chatID, n)
		ids = append(ids, id)
		if err := channels.RecordPart(onPart, i, id); err != nil {
			return ids, err
		}
	}
	return ids, nil
}

// call posts in as JSON to the bot's method and decodes the result into
// out. Its error is an *APIError for Telegram's refusals, else the
// transport's; wrote says whether the request went out.
func (c *Client) call(ctx context.Context, method string, in, out any) (wrote bool, err error) {
	body, err := json.Marshal(in)
	if err != nil {
		return false, err
	}
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	var sent atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { sent.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/bot"+c.Token+"/"+method, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("the Bot API address is invalid")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		// The URL carries the token: never let it reach a log.
		return sent.Load(), redact(err, c.Token)
	}
	defer resp.Body.Close()
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, maxAnswerSize))
	var doc struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		APIError
	}
	if readErr != nil || json.Unmarshal(answer, &doc) != nil {
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return true, errUnreadable
		}
		return true, &APIError{Status: resp.StatusCode, Description: http.StatusText(resp.StatusCode)}
	}
	if !doc.OK || resp.StatusCode >= 300 {
		e := doc.APIError
		e.Status = resp.StatusCode
		if strings.TrimSpace(e.Description) == "" {
			e.Description = http.StatusText(resp.StatusCode)
		}
		e.Description = truncate(strings.ToValidUTF8(e.Description, "\uFFFD"), maxReasonLength)
		return true, &e
	}
	if out != nil && json.Unmarshal(doc.Result, out) != nil {
		return true, errUnreadable
	}
	return true, nil
}

var errUnreadable = errors.New("unreadable answer from Telegram")

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// sendError classifies a failed sendMessage: a refused token (401) is the
// account's problem, a 429 waits retry_after, a 5xx or a lost answer may
// be tried again, and the rest (403 bot blocked or kicked, 400 chat not
// found) are permanent.
func (c *Client) sendError(err error, wrote bool) *channels.SendError {
	var e *APIError
	if !errors.As(err, &e) {
		if errors.Is(err, errUnreadable) {
			return &channels.SendError{Kind: channels.Permanent, Reason: err.Error(), Ambiguous: true}
		}
		var dnsErr *net.DNSError
		notSent := !wrote || errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dnsErr)
		return &channels.SendError{Kind: channels.Retryable, Reason: "no answer from Telegram: " + err.Error(), Ambiguous: !notSent}
	}
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	se := &channels.SendError{Reason: e.Error(), Status: e.Status}
	switch code := e.code(); {
	case code == http.StatusTooManyRequests:
		wait := time.Duration(e.Parameters.RetryAfter) * time.Second
		if wait <= 0 {
			wait = defaultRetryAfter
		}
		se.Kind, se.RetryAt = channels.RateLimited, now().Add(wait)
	case code == http.StatusUnauthorized:
		se.Kind = channels.Unauthorised
	case code >= 500 || e.Status >= 500:
		se.Kind, se.Ambiguous = channels.Retryable, true
	default:
		se.Kind = channels.Permanent
	}
	return se
}

func permanent(reason string) *channels.SendError {
	return &channels.SendError{Kind: channels.Permanent, Reason: reason}
}

// redactedError is a transport error with the bot token cut out of it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redact(err error, token string) error {
	if token == "" || !strings.Contains(err.Error(), token) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), token, "<bot token>"), err: err}
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
