package mastodon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels"
)

const (
	maxAnswerSize   = 8 << 20 // 40 notifications with their statuses
	maxReasonLength = 500
	// defaultRetryAfter is the wait after a 429 without X-RateLimit-Reset.
	defaultRetryAfter = time.Minute
)

// IdempotencyHeader is the header that makes a retried post return the
// status the first one made, for an hour.
const IdempotencyHeader = "Idempotency-Key"

// Client calls one Mastodon instance's API for one account. It is safe
// for concurrent use.
type Client struct {
	// BaseURL is the instance's address (https://mastodon.example).
	BaseURL string
	// Token is the account's access token.
	Token string
	// HTTP sends the requests; nil means a client with a 30-second
	// timeout.
	HTTP *http.Client
	// Slug is the channel account's slug, for idempotency keys.
	Slug string

	mu       sync.Mutex
	maxChars int
	// now is the clock a 429 waits from; time.Now when nil.
	now func() time.Time
}

var _ channels.Sender = (*Client)(nil)

// APIError is the instance's refusal: {"error": "..."} with its status.
type APIError struct {
	Status  int
	Message string `json:"error"`
	// Reset is X-RateLimit-Reset, when the answer carried one.
	Reset time.Time
}

func (e *APIError) Error() string {
	return fmt.Sprintf("Mastodon error %d: %s", e.Status, e.Message)
}

// Notifications fetches the account's mention notifications just after
// minID (the oldest page after it), or the newest page when minID is
// empty, and returns the raw answer.
func (c *Client) Notifications(ctx context.Context, minID string, limit int) ([]byte, error) {
	q := url.Values{"types[]": {"mention"}, "limit": {strconv.Itoa(limit)}}
	if minID != "" {
		q.Set("min_id", minID)
	}
	body, _, err := c.do(ctx, http.MethodGet, "/api/v1/notifications", q, nil, nil)
	return body, err
}

// Status fetches one status.
func (c *Client) Status(ctx context.Context, id string) (Status, error) {
	var st Status
	err := c.get(ctx, "/api/v1/statuses/"+url.PathEscape(id), &st)
	return st, err
}

// Profile fetches one account.
func (c *Client) Profile(ctx context.Context, id string) (Profile, error) {
	var p Profile
	err := c.get(ctx, "/api/v1/accounts/"+url.PathEscape(id), &p)
	return p, err
}

// MaxCharacters is the instance's limit on a status, read from GET
// /api/v2/instance the first time and kept; DefaultMaxCharacters when the
// instance does not say (not kept, so it is asked again).
func (c *Client) MaxCharacters(ctx context.Context) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxChars > 0 {
		return c.maxChars
	}
	var doc struct {
		Configuration struct {
			Statuses struct {
				MaxCharacters int `json:"max_characters"`
			} `json:"statuses"`
		} `json:"configuration"`
	}
	if err := c.get(ctx, "/api/v2/instance", &doc); err != nil || doc.Configuration.Statuses.MaxCharacters <= 0 {
		return DefaultMaxCharacters
	}
	c.maxChars = doc.Configuration.Statuses.MaxCharacters
	return c.maxChars
}

// PostRequest is the body of POST /api/v1/statuses.
type PostRequest struct {
	Status      string `json:"status"`
	InReplyToID string `json:"in_reply_to_id,omitempty"`
	Visibility  string `json:"visibility"`
}

// Post posts a status with an Idempotency-Key, so posting again with the
// same key returns the status the first post made. Failures are
// *channels.SendError.
func (c *Client) Post(ctx context.Context, req PostRequest, key string) (Status, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Status{}, permanent(err.Error())
	}
	answer, wrote, err := c.do(ctx, http.MethodPost, "/api/v1/statuses", nil, body, http.Header{IdempotencyHeader: {key}})
	if err != nil {
		return Status{}, c.sendError(err, wrote)
	}
	var st Status
	if json.Unmarshal(answer, &st) != nil || st.ID == "" {
		// Posted most likely: the same key returns it if tried again.
		return Status{}, &channels.SendError{Kind: channels.Retryable, Reason: "unreadable answer from Mastodon", Status: http.StatusOK}
	}
	return st, nil
}

// Send posts one reply, in numbered parts of the instance's limit when it
// is longer, each starting with the resident's @acct and answering the
// part before it (the first answering out.InReplyTo), and returns the
// network ids of all its parts, those an earlier attempt sent included. A
// public reply takes the visibility of the status it answers; a private
// one is direct. On failure Send returns the ids sent so far.
func (c *Client) Send(ctx context.Context, out channels.Outbound, onPart func(index int, id string) error) ([]string, error) {
	ids := append([]string(nil), out.SentParts...)
	if out.Template != nil || out.ToPublicPost {
		return nil, permanent("Mastodon has neither templates nor private replies to public posts")
	}
	acct, visibility, err := c.address(ctx, out)
	if err != nil {
		return nil, err
	}
	mention := "@" + acct + " "
	limit := c.MaxCharacters(ctx) - utf8.RuneCountInString(mention)
	if limit < 20 {
		return nil, permanent(fmt.Sprintf("the instance's limit of %d characters leaves no room after %s", limit+utf8.RuneCountInString(mention), mention))
	}
	parts := channels.SplitNumbered(out.Text, limit)
	replyTo := out.InReplyTo
	if len(ids) > 0 {
		replyTo = ids[len(ids)-1]
	}
	for i := len(ids); i < len(parts); i++ {
		key := fmt.Sprintf("citizeninbox-%s-%d-%d", c.Slug, out.MessageID, i)
		st, err := c.Post(ctx, PostRequest{Status: mention + parts[i], InReplyToID: replyTo, Visibility: visibility}, key)
		if err != nil {
			return ids, err
		}
		ids = append(ids, st.ID)
		replyTo = st.ID
		if err := channels.RecordPart(onPart, i, st.ID); err != nil {
			return ids, err
		}
	}
	return ids, nil
}

// address finds whom a reply mentions and its visibility: the author of
// the status answered, and its visibility for a public reply; for a
// private one, the resident out.Recipient, direct.
func (c *Client) address(ctx context.Context, out channels.Outbound) (acct, visibility string, err error) {
	switch out.Visibility {
	case channels.Public:
		if out.InReplyTo == "" {
			return "", "", permanent("a public reply needs the status it answers")
		}
		st, err := c.Status(ctx, out.InReplyTo)
		if err != nil {
			return "", "", c.sendError(err, false)
		}
		if st.Account == nil || st.Account.Acct == "" {
			return "", "", permanent("the status answered has no author")
		}
		visibility = st.Visibility
		if visibility != "public" && visibility != "unlisted" && visibility != "private" {
			visibility = "unlisted"
		}
		return st.Account.Acct, visibility, nil
	case channels.Private:
		if out.Recipient == "" {
			return "", "", permanent("a direct reply needs the resident's account id")
		}
		if out.InReplyTo != "" {
			if st, err := c.Status(ctx, out.InReplyTo); err == nil && st.Account != nil && st.Account.ID == out.Recipient && st.Account.Acct != "" {
				return st.Account.Acct, "direct", nil
			}
		}
		p, err := c.Profile(ctx, out.Recipient)
		if err != nil {
			return "", "", c.sendError(err, false)
		}
		if p.Acct == "" {
			return "", "", permanent("the resident's account has no acct")
		}
		return p.Acct, "direct", nil
	}
	return "", "", permanent(fmt.Sprintf("unknown visibility %q", out.Visibility))
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	body, _, err := c.do(ctx, http.MethodGet, path, nil, nil, nil)
	if err != nil {
		return err
	}
	if json.Unmarshal(body, out) != nil {
		return errUnreadable
	}
	return nil
}

// do calls the API with the access token. Its error is an *APIError for
// the instance's refusals, else the transport's; wrote says whether the
// request went out.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, header http.Header) ([]byte, bool, error) {
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var sent atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { sent.Store(true) }})
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, false, errors.New("the Mastodon API address is invalid")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, sent.Load(), err
	}
	defer resp.Body.Close()
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, maxAnswerSize))
	if resp.StatusCode >= 300 {
		e := &APIError{Status: resp.StatusCode}
		_ = json.Unmarshal(answer, e)
		if strings.TrimSpace(e.Message) == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		e.Message = truncate(strings.ToValidUTF8(e.Message, "\uFFFD"), maxReasonLength)
		e.Reset = resetTime(resp.Header.Get("X-RateLimit-Reset"))
		return nil, true, e
	}
	if readErr != nil {
		return nil, true, errUnreadable
	}
	return answer, true, nil
}

var errUnreadable = errors.New("unreadable answer from Mastodon")

// resetTime reads X-RateLimit-Reset: an ISO 8601 time as Mastodon sends
// it, or Unix seconds.
func resetTime(v string) time.Time {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0)
	}
	return time.Time{}
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// sendError classifies a failed call: a refused token (401, or 403 for
// one without the scope) is the account's problem, a 429 waits until
// X-RateLimit-Reset, a 5xx or a lost answer may be tried again (the
// Idempotency-Key makes that safe), and the rest (404 status deleted, 422
// refused) are permanent.
func (c *Client) sendError(err error, _ bool) *channels.SendError {
	var e *APIError
	if !errors.As(err, &e) {
		// Not ambiguous even when the request went out (wrote): a retry
		// carries the same Idempotency-Key.
		if errors.Is(err, errUnreadable) {
			return &channels.SendError{Kind: channels.Retryable, Reason: err.Error()}
		}
		return &channels.SendError{Kind: channels.Retryable, Reason: "no answer from Mastodon: " + err.Error()}
	}
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	se := &channels.SendError{Reason: e.Error(), Status: e.Status}
	switch {
	case e.Status == http.StatusTooManyRequests:
		se.Kind, se.RetryAt = channels.RateLimited, e.Reset
		if se.RetryAt.IsZero() || !se.RetryAt.After(now()) {
			se.RetryAt = now().Add(defaultRetryAfter)
		}
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		se.Kind = channels.Unauthorised
	case e.Status >= 500:
		se.Kind = channels.Retryable
	default:
		se.Kind = channels.Permanent
	}
	return se
}

func permanent(reason string) *channels.SendError {
	return &channels.SendError{Kind: channels.Permanent, Reason: reason}
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
