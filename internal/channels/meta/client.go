package meta

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
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// DefaultBaseURL is the Graph API; DefaultVersion the version called.
const (
	DefaultBaseURL = "https://graph.facebook.com"
	DefaultVersion = "v21.0"
	maxAnswerSize  = 1 << 20
)

// Client sends one channel account's replies through the Graph API.
type Client struct {
	BaseURL string
	Version string
	// Channel is facebook, instagram or whatsapp; AccountID the Page id,
	// Instagram account id or phone number id that sends.
	Channel   string
	AccountID string
	Token     string
	HTTP      *http.Client
}

var _ channels.Sender = (*Client)(nil)

// Send sends a reply: a private message in parts of the channel's limit,
// or a public reply to the comment it answers. Parts an earlier attempt
// sent are not sent again. On failure Send returns the ids sent so far
// with the error.
func (c *Client) Send(ctx context.Context, out channels.Outbound, onPart func(index int, id string) error) ([]string, error) {
	ids := append([]string(nil), out.SentParts...)
	if strings.TrimSpace(out.Text) == "" {
		return nil, permanent("the reply is empty")
	}
	switch {
	case out.Visibility == channels.Public && c.Channel != WhatsApp:
		if len(ids) > 0 {
			return ids, nil
		}
		if out.InReplyTo == "" {
			return nil, permanent("a public reply needs the comment it answers")
		}
		path := "/" + out.InReplyTo + "/comments"
		if c.Channel == Instagram {
			path = "/" + out.InReplyTo + "/replies"
		}
		var answer struct {
			ID string `json:"id"`
		}
		if err := c.post(ctx, path, map[string]string{"message": out.Text}, &answer); err != nil {
			return nil, err
		}
		if answer.ID == "" {
			return nil, unreadable()
		}
		return []string{answer.ID}, channels.RecordPart(onPart, 0, answer.ID)
	case out.Visibility == channels.Private && out.Template != nil:
		if c.Channel != WhatsApp {
			return nil, permanent(c.Channel + " has no message templates")
		}
		if len(ids) > 0 {
			return ids, nil
		}
		id, err := c.template(ctx, out)
		if err != nil {
			return nil, err
		}
		return []string{id}, channels.RecordPart(onPart, 0, id)
	case out.Visibility == channels.Private && out.ToPublicPost:
		if c.Channel == WhatsApp || out.InReplyTo == "" {
			return nil, permanent("a private reply to a comment needs the comment, on Facebook or Instagram")
		}
		if len(ids) > 0 {
			return ids, nil
		}
		id, err := c.privateReply(ctx, out)
		if err != nil {
			return nil, err
		}
		return []string{id}, channels.RecordPart(onPart, 0, id)
	case out.Visibility == channels.Private:
		if out.Recipient == "" {
			return nil, permanent("a private message needs the resident's id")
		}
		parts := channels.SplitNumbered(out.Text, limits[c.Channel])
		for i := len(ids); i < len(parts); i++ {
			id, err := c.message(ctx, out, parts[i], i == 0)
			if err != nil {
				return ids, err
			}
			ids = append(ids, id)
			if err := channels.RecordPart(onPart, i, id); err != nil {
				return ids, err
			}
		}
		return ids, nil
	}
	return nil, permanent(fmt.Sprintf("%s cannot send a %s reply", c.Channel, out.Visibility))
}

// limits are the characters of one private message.
var limits = map[string]int{Facebook: 2000, Instagram: 1000, WhatsApp: 4096}

// message sends one private message. Messenger and Instagram answer within
// 24 hours of the resident's last message (RESPONSE); when Meta says the
// window has closed, the message goes again with the HUMAN_AGENT tag, which
// a human adviser's reply may use for 7 days. A WhatsApp reply quotes the
// message it answers (context) on its first part.
func (c *Client) message(ctx context.Context, out channels.Outbound, text string, first bool) (string, error) {
	if c.Channel == WhatsApp {
		req := map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual", "to": out.Recipient,
			"type": "text", "text": map[string]any{"body": text, "preview_url": false}}
		if first && out.InReplyTo != "" {
			req["context"] = map[string]string{"message_id": out.InReplyTo}
		}
		var answer struct {
			Messages []struct {
				ID string `json:"id"`
			} `json:"messages"`
		}
		if err := c.post(ctx, "/"+c.AccountID+"/messages", req, &answer); err != nil {
			return "", err
		}
		if len(answer.Messages) == 0 || answer.Messages[0].ID == "" {
			return "", unreadable()
		}
		return answer.Messages[0].ID, nil
	}
	req := map[string]any{"recipient": map[string]string{"id": out.Recipient}, "messaging_type": "RESPONSE",
		"message": map[string]string{"text": text}}
	var answer struct {
		MessageID string `json:"message_id"`
	}
	err := c.post(ctx, "/"+c.AccountID+"/messages", req, &answer)
	var ge *graphError
	if errors.As(err, &ge) && ge.outsideWindow() {
		req["messaging_type"], req["tag"] = "MESSAGE_TAG", "HUMAN_AGENT"
		err = c.post(ctx, "/"+c.AccountID+"/messages", req, &answer)
	}
	if err != nil {
		return "", err
	}
	if answer.MessageID == "" {
		return "", unreadable()
	}
	return answer.MessageID, nil
}

// privateReply answers a resident's Page or Instagram comment with a
// private message (recipient.comment_id): Meta takes one per comment,
// within 7 days of it, and no more until the resident answers.
func (c *Client) privateReply(ctx context.Context, out channels.Outbound) (string, error) {
	req := map[string]any{"recipient": map[string]string{"comment_id": out.InReplyTo}, "messaging_type": "RESPONSE",
		"message": map[string]string{"text": out.Text}}
	var answer struct {
		MessageID string `json:"message_id"`
	}
	if err := c.post(ctx, "/"+c.AccountID+"/messages", req, &answer); err != nil {
		return "", err
	}
	if answer.MessageID == "" {
		return "", unreadable()
	}
	return answer.MessageID, nil
}

// template sends an approved WhatsApp template with its body parameters,
// the only message WhatsApp takes 24 hours after the resident's last.
func (c *Client) template(ctx context.Context, out channels.Outbound) (string, error) {
	t := out.Template
	params := make([]map[string]string, len(t.Parameters))
	for i, p := range t.Parameters {
		params[i] = map[string]string{"type": "text", "text": p}
	}
	body := map[string]any{"name": t.Name, "language": map[string]string{"code": t.Language}}
	if len(params) > 0 {
		body["components"] = []map[string]any{{"type": "body", "parameters": params}}
	}
	req := map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual", "to": out.Recipient,
		"type": "template", "template": body}
	var answer struct {
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
	}
	if err := c.post(ctx, "/"+c.AccountID+"/messages", req, &answer); err != nil {
		return "", err
	}
	if len(answer.Messages) == 0 || answer.Messages[0].ID == "" {
		return "", unreadable()
	}
	return answer.Messages[0].ID, nil
}

// graphError is the Graph API's error document.
type graphError struct {
	Status  int
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    int    `json:"code"`
	Subcode int    `json:"error_subcode"`
}

func (e *graphError) Error() string {
	return fmt.Sprintf("Meta error %d (subcode %d): %s", e.Code, e.Subcode, e.Message)
}

// outsideWindow is Messenger's "sent outside the allowed window".
func (e *graphError) outsideWindow() bool { return e.Code == 10 && e.Subcode == 2018278 }

// Throttling and credential codes. Meta sends throttling as HTTP 400 as
// often as 429, and expired tokens as 400 or 401: the code decides.
var (
	throttled  = map[int]bool{4: true, 17: true, 32: true, 613: true, 80001: true, 80002: true, 80004: true, 80006: true, 130429: true, 131056: true}
	credential = map[int]bool{190: true, 102: true, 131005: true, 131031: true}
)

// ErrCredential marks a send refused for the account's credential
// (expired, revoked or without the permission): the account needs a new
// token, not the reply a retry.
var ErrCredential = errors.New("meta: the access token was refused")

// sendError classifies a Graph API failure by its error code.
func sendError(status int, answer []byte, now time.Time) error {
	var doc struct {
		Error *graphError `json:"error"`
	}
	if json.Unmarshal(answer, &doc) != nil || doc.Error == nil {
		if status >= 500 {
			return &channels.SendError{Kind: channels.Retryable, Reason: fmt.Sprintf("Meta answered HTTP %d", status), Ambiguous: true, Status: status}
		}
		return &channels.SendError{Kind: channels.Permanent, Reason: fmt.Sprintf("Meta answered HTTP %d", status), Status: status}
	}
	ge := doc.Error
	ge.Status = status
	reason := ge.Error()
	switch {
	case throttled[ge.Code]:
		return &sendFailure{graph: ge, SendError: channels.SendError{Kind: channels.RateLimited, Reason: reason, RetryAt: now.Add(time.Minute), Status: status}}
	case credential[ge.Code] || status == http.StatusUnauthorized:
		return &sendFailure{graph: ge, credential: true, SendError: channels.SendError{Kind: channels.Unauthorised, Reason: reason, Status: status}}
	case ge.Code == 131047:
		return &sendFailure{graph: ge, SendError: channels.SendError{Kind: channels.Permanent,
			Reason: "more than 24 hours since the resident's last WhatsApp message: only an approved template can go out (" + reason + ")", Status: status}}
	case status >= 500 || ge.Code == 1 || ge.Code == 2:
		return &sendFailure{graph: ge, SendError: channels.SendError{Kind: channels.Retryable, Reason: reason, Ambiguous: true, Status: status}}
	}
	return &sendFailure{graph: ge, SendError: channels.SendError{Kind: channels.Permanent, Reason: reason, Status: status}}
}

// sendFailure is a refused send with Meta's own error.
type sendFailure struct {
	channels.SendError
	graph      *graphError
	credential bool
}

func (e *sendFailure) Unwrap() []error {
	errs := []error{&e.SendError, e.graph}
	if e.credential {
		errs = append(errs, ErrCredential)
	}
	return errs
}

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return permanent("cannot encode the request: " + err.Error())
	}
	base, version := c.BaseURL, c.Version
	if base == "" {
		base = DefaultBaseURL
	}
	if version == "" {
		version = DefaultVersion
	}
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/"+version+path, bytes.NewReader(body))
	if err != nil {
		return &channels.SendError{Kind: channels.Retryable, Reason: "the Graph API address is invalid: " + err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	client := c.HTTP
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		var dnsErr *net.DNSError
		notSent := !wrote.Load() || errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dnsErr)
		return &channels.SendError{Kind: channels.Retryable, Reason: "no answer from Meta: " + err.Error(), Ambiguous: !notSent}
	}
	defer resp.Body.Close()
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, maxAnswerSize))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if readErr != nil || json.Unmarshal(answer, out) != nil {
			return unreadable()
		}
		return nil
	}
	return sendError(resp.StatusCode, answer, time.Now())
}

func permanent(reason string) *channels.SendError {
	return &channels.SendError{Kind: channels.Permanent, Reason: reason}
}

// unreadable is a success answer without the id we need: Meta most likely
// sent the message, so it is not retried, and flagged for an adviser.
func unreadable() *channels.SendError {
	return &channels.SendError{Kind: channels.Permanent, Reason: "unreadable answer from Meta", Ambiguous: true}
}
