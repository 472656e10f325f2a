package x

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
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels"
)

// DefaultBaseURL is the address of the X API, used when Client.BaseURL is
// empty.
const DefaultBaseURL = "https://api.x.com"

// MaxDMLength is the longest direct message X accepts, in characters.
const MaxDMLength = 10000

const (
	// defaultTimeout bounds a whole request when Client.HTTP is nil.
	defaultTimeout = 15 * time.Second
	// maxAnswerSize caps how much of an answer is read.
	maxAnswerSize = 1 << 20
	// maxReasonLength caps the network's explanation shown to advisers.
	maxReasonLength = 500
	userAgent       = "citizen-inbox"
)

// Client sends replies through the X API v2 on behalf of one council
// account. It is safe for concurrent use.
type Client struct {
	// BaseURL is the API address; DefaultBaseURL when empty. Tests and the
	// simulator point it at xfake.
	BaseURL string
	// BearerToken is the account's OAuth 2.0 user access token.
	BearerToken string
	// HTTP sends the requests; nil means a client with a 15-second timeout
	// that does not follow redirects.
	HTTP *http.Client
}

// PostReply publishes text as a post replying to the post inReplyToID, or as
// a new post when inReplyToID is empty, and returns the new post's id. The
// text must fit MaxPostWeight; Send splits longer replies. Failures are
// *channels.SendError.
func (c *Client) PostReply(ctx context.Context, text, inReplyToID string) (string, error) {
	if strings.TrimSpace(text) == "" {
		return "", permanent("the reply is empty")
	}
	req := postRequest{Text: text}
	if inReplyToID != "" {
		req.Reply = &postReply{InReplyToTweetID: inReplyToID}
	}
	var answer struct {
		Data struct {
			ID xid `json:"id"`
		} `json:"data"`
	}
	status, err := c.post(ctx, "/2/tweets", req, &answer)
	if err != nil {
		return "", err
	}
	if answer.Data.ID == "" {
		return "", unreadable(status)
	}
	return string(answer.Data.ID), nil
}

// SendDM sends text as a direct message to the user participantID and
// returns the id of the new message event. Failures are *channels.SendError.
func (c *Client) SendDM(ctx context.Context, participantID, text string) (string, error) {
	switch {
	case participantID == "":
		return "", permanent("the resident's X user id is missing")
	case strings.TrimSpace(text) == "":
		return "", permanent("the message is empty")
	case utf8.RuneCountInString(text) > MaxDMLength:
		return "", permanent(fmt.Sprintf("the message is longer than the %d characters X allows", MaxDMLength))
	}
	var answer struct {
		Data struct {
			DMConversationID xid `json:"dm_conversation_id"`
			DMEventID        xid `json:"dm_event_id"`
		} `json:"data"`
	}
	path := "/2/dm_conversations/with/" + url.PathEscape(participantID) + "/messages"
	status, err := c.post(ctx, path, dmRequest{Text: text}, &answer)
	if err != nil {
		return "", err
	}
	if answer.Data.DMEventID == "" {
		return "", unreadable(status)
	}
	return string(answer.Data.DMEventID), nil
}

// Send delivers one reply and returns the X ids of everything it consists
// of, including parts posted by earlier attempts.
//
// A private reply is one direct message to out.Recipient. A public reply is
// split with SplitThread into a numbered thread: the first part answers
// out.InReplyTo and each later part answers the part before it. Parts listed
// in out.SentParts were posted by an earlier attempt and are skipped; the
// next part answers the last of them.
//
// After each successful send Send calls onPart (if not nil) with the part's
// index and id, so the caller can record progress before the next part goes
// out; an error from onPart stops the thread and is returned. On failure
// Send returns the ids posted so far with the error.
func (c *Client) Send(ctx context.Context, out channels.Outbound, onPart func(index int, id string) error) ([]string, error) {
	ids := append([]string(nil), out.SentParts...)
	switch out.Visibility {
	case channels.Private:
		if len(ids) > 0 {
			// Already delivered by an earlier attempt.
			return ids, nil
		}
		id, err := c.SendDM(ctx, out.Recipient, out.Text)
		if err != nil {
			return nil, err
		}
		return []string{id}, channels.RecordPart(onPart, 0, id)

	case channels.Public:
		parts := SplitThread(out.Text, MaxPostWeight)
		replyTo := out.InReplyTo
		if len(ids) > 0 {
			replyTo = ids[len(ids)-1]
		}
		for i := len(ids); i < len(parts); i++ {
			id, err := c.PostReply(ctx, parts[i], replyTo)
			if err != nil {
				return ids, err
			}
			ids = append(ids, id)
			if err := channels.RecordPart(onPart, i, id); err != nil {
				return ids, err
			}
			replyTo = id
		}
		return ids, nil
	}
	return nil, permanent(fmt.Sprintf("unknown visibility %q", out.Visibility))
}

type postRequest struct {
	Text  string     `json:"text"`
	Reply *postReply `json:"reply,omitempty"`
}

type postReply struct {
	InReplyToTweetID string `json:"in_reply_to_tweet_id"`
}

type dmRequest struct {
	Text string `json:"text"`
}

// post sends in as JSON to path and decodes a successful answer into out.
// It returns the HTTP status, and a *channels.SendError on failure.
func (c *Client) post(ctx context.Context, path string, in, out any) (int, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return 0, permanent("cannot encode the request: " + err.Error())
	}
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	// Note when the request has gone out: only then can a failure leave a
	// post on X that we do not know about.
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteHeaders: func() { wrote.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		// A configuration mistake: retrying once it is fixed will work.
		return 0, &channels.SendError{Kind: channels.Retryable, Reason: "the X API address is invalid: " + err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+c.BearerToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)

	resp, err := c.httpClient().Do(req)
	if err != nil {
		return 0, networkError(err, wrote.Load())
	}
	defer resp.Body.Close()
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, maxAnswerSize))

	switch status := resp.StatusCode; {
	case status >= 200 && status < 300:
		if readErr != nil || json.Unmarshal(answer, out) != nil {
			return status, unreadable(status)
		}
		return status, nil
	case status == http.StatusTooManyRequests:
		return status, &channels.SendError{
			Kind:    channels.RateLimited,
			Reason:  reason(status, answer),
			RetryAt: retryAt(resp.Header, time.Now()),
			Status:  status,
		}
	case status == http.StatusUnauthorized:
		// The access token expired or was revoked: the account's
		// problem, not the reply's.
		return status, &channels.SendError{
			Kind:   channels.Unauthorised,
			Reason: reason(status, answer),
			Status: status,
		}
	case status >= 500:
		// X has been seen to publish a post and still answer 5xx, so a
		// retry may post twice.
		return status, &channels.SendError{
			Kind:      channels.Retryable,
			Reason:    reason(status, answer),
			Ambiguous: true,
			Status:    status,
		}
	default:
		return status, &channels.SendError{
			Kind:   channels.Permanent,
			Reason: reason(status, answer),
			Status: status,
		}
	}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{
		Timeout: defaultTimeout,
		// A redirected POST would come back as a GET; report it instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func permanent(reason string) *channels.SendError {
	return &channels.SendError{Kind: channels.Permanent, Reason: reason}
}

// unreadable is the error for a success answer without the id we need.
//
// X has most likely published the message, so retrying would publish it
// twice; and without an id a thread cannot continue. The send is therefore
// reported as permanent (not retried) and ambiguous, for an adviser to
// check on X.
func unreadable(status int) *channels.SendError {
	return &channels.SendError{
		Kind:      channels.Permanent,
		Reason:    "unreadable answer from X",
		Ambiguous: true,
		Status:    status,
	}
}

// networkError classifies a request that got no answer. It is ambiguous
// when the request had been written: X may have acted on it.
func networkError(err error, wrote bool) *channels.SendError {
	var dnsErr *net.DNSError
	notSent := !wrote || errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dnsErr)
	reason := "no answer from X: " + err.Error()
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		reason = "X did not answer in time"
	}
	return &channels.SendError{Kind: channels.Retryable, Reason: reason, Ambiguous: !notSent}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// retryAt reads when a rate limit ends from x-rate-limit-reset (Unix
// seconds). Without a usable header it waits a minute; a reset already
// past waits a second.
func retryAt(h http.Header, now time.Time) time.Time {
	sec, err := strconv.ParseInt(strings.TrimSpace(h.Get("x-rate-limit-reset")), 10, 64)
	if err != nil {
		return now.Add(time.Minute)
	}
	if t := time.Unix(sec, 0); t.After(now) {
		return t
	}
	return now.Add(time.Second)
}

// apiProblem reads both error shapes X answers with: a list of errors, and
// a single problem document (RFC 7807 style).
type apiProblem struct {
	Title   string `json:"title"`
	Detail  string `json:"detail"`
	Message string `json:"message"`
	Errors  []struct {
		Title   string `json:"title"`
		Detail  string `json:"detail"`
		Message string `json:"message"`
	} `json:"errors"`
}

// reason builds the explanation shown to advisers from an error answer:
// the details X gives, else its title, else the HTTP status text.
func reason(status int, answer []byte) string {
	var p apiProblem
	if json.Unmarshal(answer, &p) == nil {
		var msgs []string
		seen := make(map[string]bool)
		for _, e := range p.Errors {
			if m := firstText(e.Detail, e.Message, e.Title); m != "" && !seen[m] {
				seen[m] = true
				msgs = append(msgs, m)
			}
		}
		if m := firstText(p.Detail, p.Title, p.Message); len(msgs) == 0 && m != "" {
			msgs = append(msgs, m)
		}
		if len(msgs) > 0 {
			return truncate(strings.ToValidUTF8(strings.Join(msgs, "; "), "\uFFFD"), maxReasonLength)
		}
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "HTTP " + strconv.Itoa(status)
}

func firstText(texts ...string) string {
	for _, t := range texts {
		if t = strings.TrimSpace(t); t != "" {
			return t
		}
	}
	return ""
}

// truncate cuts s to at most n runes, marking the cut with an ellipsis.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
