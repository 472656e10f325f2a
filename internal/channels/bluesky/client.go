package bluesky

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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

const (
	maxAnswerSize     = 8 << 20
	maxReasonLength   = 500
	defaultRetryAfter = 30 * time.Second
)

// Client calls the XRPC API of one account's service (its PDS, or
// bsky.social), signing in with the account's app password.
type Client struct {
	// BaseURL is the service's address; DefaultBaseURL when empty.
	BaseURL     string
	Handle      string
	AppPassword string
	HTTP        *http.Client

	mu      sync.Mutex
	did     string
	access  string
	refresh string
	convos  convos
}

var _ channels.Sender = (*Client)(nil)

// APIError is an XRPC error answer.
type APIError struct {
	Status  int
	Name    string `json:"error"`
	Message string `json:"message"`
	// Reset is the ratelimit-reset header of a 429: when the limit lifts.
	Reset time.Time
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("Bluesky error %d", e.Status)
	if e.Name != "" {
		msg += " " + e.Name
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// expired says the access token has expired: refresh the session.
func (e *APIError) expired() bool {
	return e.Name == "ExpiredToken" || (e.Status == http.StatusUnauthorized && e.Name == "InvalidToken")
}

// refused says the service refused the account's credential.
func (e *APIError) refused() bool {
	return e.Status == http.StatusUnauthorized || e.Name == "AuthenticationRequired" || e.Name == "AccountTakedown"
}

// DID is the account's DID, known once a session was created.
func (c *Client) DID(ctx context.Context) (string, error) {
	if _, err := c.session(ctx); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.did, nil
}

type sessionAnswer struct {
	AccessJwt  string `json:"accessJwt"`
	RefreshJwt string `json:"refreshJwt"`
	DID        string `json:"did"`
	Handle     string `json:"handle"`
}

// session returns the access token, signing in first when there is none.
func (c *Client) session(ctx context.Context) (string, error) {
	c.mu.Lock()
	access := c.access
	c.mu.Unlock()
	if access != "" {
		return access, nil
	}
	return c.createSession(ctx)
}

func (c *Client) createSession(ctx context.Context) (string, error) {
	var s sessionAnswer
	in := map[string]string{"identifier": c.Handle, "password": c.AppPassword}
	if _, err := c.do(ctx, http.MethodPost, "com.atproto.server.createSession", nil, in, "", "", &s); err != nil {
		return "", &SignInError{Handle: c.Handle, Err: err}
	}
	if s.AccessJwt == "" || s.DID == "" {
		return "", &SignInError{Handle: c.Handle, Err: errUnreadable}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.access, c.refresh, c.did = s.AccessJwt, s.RefreshJwt, s.DID
	return s.AccessJwt, nil
}

// renew refreshes the session whose access token stale expired, or signs
// in again when the refresh token is refused too.
func (c *Client) renew(ctx context.Context, stale string) (string, error) {
	c.mu.Lock()
	access, refresh := c.access, c.refresh
	c.mu.Unlock()
	if access != stale && access != "" {
		return access, nil // another call renewed it
	}
	if refresh != "" {
		var s sessionAnswer
		_, err := c.do(ctx, http.MethodPost, "com.atproto.server.refreshSession", nil, nil, refresh, "", &s)
		if err == nil && s.AccessJwt != "" {
			c.mu.Lock()
			c.access, c.refresh = s.AccessJwt, s.RefreshJwt
			if s.DID != "" {
				c.did = s.DID
			}
			c.mu.Unlock()
			return s.AccessJwt, nil
		}
		var e *APIError
		if err != nil && !errors.As(err, &e) {
			return "", err
		}
	}
	return c.createSession(ctx)
}

// SignInError is a refused or failed com.atproto.server.createSession:
// the account's handle and app password, not the call made, are at
// fault when it wraps a refusal.
type SignInError struct {
	Handle string
	Err    error
}

func (e *SignInError) Error() string { return "signing in as " + e.Handle + ": " + e.Err.Error() }

func (e *SignInError) Unwrap() error { return e.Err }

// call makes an authenticated XRPC call, renewing the session once when
// its access token has expired.
func (c *Client) call(ctx context.Context, method, nsid string, query url.Values, in, out any) (wrote bool, err error) {
	return c.callVia(ctx, "", method, nsid, query, in, out)
}

// callVia is call through the service the PDS proxies to (the
// atproto-proxy header; none when proxy is empty).
func (c *Client) callVia(ctx context.Context, proxy, method, nsid string, query url.Values, in, out any) (wrote bool, err error) {
	token, err := c.session(ctx)
	if err != nil {
		return false, err
	}
	wrote, err = c.do(ctx, method, nsid, query, in, token, proxy, out)
	var e *APIError
	switch {
	case errors.As(err, &e) && e.expired():
		token, err = c.renew(ctx, token)
	case errors.As(err, &e) && e.refused():
		// The session is gone (revoked, or the service forgot it): sign in
		// again, which says whether the app password itself is refused.
		c.forget(token)
		token, err = c.session(ctx)
	default:
		return wrote, err
	}
	if err != nil {
		return false, err
	}
	return c.do(ctx, method, nsid, query, in, token, proxy, out)
}

// forget drops the session whose access token is stale.
func (c *Client) forget(stale string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.access == stale {
		c.access, c.refresh = "", ""
	}
}

// do makes one XRPC request, with token as its bearer and proxy as its
// atproto-proxy header when not empty.
func (c *Client) do(ctx context.Context, method, nsid string, query url.Values, in any, token, proxy string, out any) (wrote bool, err error) {
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u := strings.TrimRight(base, "/") + "/xrpc/" + nsid
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return false, err
		}
		body = bytes.NewReader(b)
	}
	var sent atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { sent.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return false, errors.New("the Bluesky service address is invalid")
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if proxy != "" {
		req.Header.Set(ProxyHeader, proxy)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return sent.Load(), err
	}
	defer resp.Body.Close()
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, maxAnswerSize))
	if resp.StatusCode >= 300 {
		e := &APIError{Status: resp.StatusCode}
		_ = json.Unmarshal(answer, e)
		if e.Name == "" && e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		e.Message = truncate(strings.ToValidUTF8(e.Message, "\uFFFD"), maxReasonLength)
		if reset, err := strconv.ParseInt(resp.Header.Get("ratelimit-reset"), 10, 64); err == nil && reset > 0 {
			e.Reset = time.Unix(reset, 0)
		}
		return true, e
	}
	if readErr != nil {
		return true, errUnreadable
	}
	if out != nil && json.Unmarshal(answer, out) != nil {
		return true, errUnreadable
	}
	return true, nil
}

var errUnreadable = errors.New("unreadable answer from Bluesky")

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// sendError classifies a failed call for the sender.
func sendError(err error, wrote bool) *channels.SendError {
	var se *channels.SendError
	if errors.As(err, &se) {
		return se
	}
	var e *APIError
	if !errors.As(err, &e) {
		if errors.Is(err, errUnreadable) {
			return &channels.SendError{Kind: channels.Permanent, Reason: err.Error(), Ambiguous: true}
		}
		var dnsErr *net.DNSError
		notSent := !wrote || errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dnsErr)
		return &channels.SendError{Kind: channels.Retryable, Reason: "no answer from Bluesky: " + err.Error(), Ambiguous: !notSent}
	}
	out := &channels.SendError{Reason: e.Error(), Status: e.Status}
	switch {
	case e.Status == http.StatusTooManyRequests:
		out.Kind, out.RetryAt = channels.RateLimited, e.Reset
		switch now := time.Now(); {
		case out.RetryAt.IsZero():
			out.RetryAt = now.Add(defaultRetryAfter)
		case out.RetryAt.Before(now.Add(time.Second)):
			// ratelimit-reset is in whole seconds: it may have just passed.
			out.RetryAt = now.Add(time.Second)
		}
	case e.refused():
		out.Kind = channels.Unauthorised
	case e.Status >= 500:
		out.Kind, out.Ambiguous = channels.Retryable, wrote
	default:
		out.Kind = channels.Permanent
	}
	return out
}

func permanent(reason string) *channels.SendError {
	return &channels.SendError{Kind: channels.Permanent, Reason: reason}
}

// PostView is a post as getPosts shows it.
type PostView struct {
	URI    string  `json:"uri"`
	CID    string  `json:"cid"`
	Author Profile `json:"author"`
	Record Post    `json:"record"`
}

// GetPost reads one post.
func (c *Client) GetPost(ctx context.Context, uri string) (PostView, error) {
	var doc struct {
		Posts []PostView `json:"posts"`
	}
	wrote, err := c.call(ctx, http.MethodGet, "app.bsky.feed.getPosts", url.Values{"uris": {uri}}, nil, &doc)
	if err != nil {
		return PostView{}, sendError(err, wrote)
	}
	for _, p := range doc.Posts {
		if p.URI == uri && p.CID != "" {
			return p, nil
		}
	}
	return PostView{}, permanent("the post answered is gone from Bluesky: " + uri)
}

// CreatePost posts text in the thread of reply (nil for a new thread).
func (c *Client) CreatePost(ctx context.Context, text string, reply *ReplyRef) (Ref, error) {
	switch {
	case strings.TrimSpace(text) == "":
		return Ref{}, permanent("the post is empty")
	case Graphemes(text) > MaxPostLength:
		return Ref{}, permanent(fmt.Sprintf("the post is longer than the %d graphemes Bluesky allows", MaxPostLength))
	}
	did, err := c.DID(ctx)
	if err != nil {
		return Ref{}, sendError(err, false)
	}
	in := map[string]any{
		"repo":       did,
		"collection": PostCollection,
		"record": Post{Type: PostCollection, Text: text, CreatedAt: time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
			Reply: reply},
	}
	var ref Ref
	wrote, err := c.call(ctx, http.MethodPost, "com.atproto.repo.createRecord", nil, in, &ref)
	if err != nil {
		return Ref{}, sendError(err, wrote)
	}
	if ref.URI == "" || ref.CID == "" {
		return Ref{}, &channels.SendError{Kind: channels.Permanent, Reason: errUnreadable.Error(), Ambiguous: true, Status: http.StatusOK}
	}
	return ref, nil
}

// Send posts a public reply answering the post out.InReplyTo, in the
// thread of that post's root; a reply over 300 graphemes goes out as a
// numbered thread, each part answering the one before. A private reply is
// a direct message to out.Recipient (see sendPrivate). A retried reply
// continues from its last part sent.
func (c *Client) Send(ctx context.Context, out channels.Outbound, onPart func(index int, id string) error) ([]string, error) {
	ids := append([]string(nil), out.SentParts...)
	switch {
	case out.Template != nil || out.ToPublicPost:
		return nil, permanent("Bluesky accounts send neither templates nor private replies to posts")
	case out.Visibility == channels.Private:
		return c.sendPrivate(ctx, out, onPart)
	case out.Visibility != channels.Public:
		return nil, permanent(fmt.Sprintf("visibility %q is not public or private", out.Visibility))
	case !strings.HasPrefix(out.InReplyTo, "at://"):
		return nil, permanent("a Bluesky reply needs the post it answers")
	}
	parts := Split(out.Text, MaxPostLength)
	if len(ids) >= len(parts) {
		return ids, nil
	}
	// The post answered: the resident's, or the last part already posted.
	parentURI := out.InReplyTo
	if len(ids) > 0 {
		parentURI = ids[len(ids)-1]
	}
	parent, err := c.GetPost(ctx, parentURI)
	if err != nil {
		return ids, err
	}
	ref := ReplyRef{Root: Ref{URI: parent.URI, CID: parent.CID}, Parent: Ref{URI: parent.URI, CID: parent.CID}}
	if r := parent.Record.Reply; r != nil && r.Root.URI != "" && r.Root.CID != "" {
		ref.Root = r.Root
	}
	for i := len(ids); i < len(parts); i++ {
		posted, err := c.CreatePost(ctx, parts[i], &ReplyRef{Root: ref.Root, Parent: ref.Parent})
		if err != nil {
			return ids, err
		}
		ids = append(ids, posted.URI)
		ref.Parent = posted
		if err := channels.RecordPart(onPart, i, posted.URI); err != nil {
			return ids, err
		}
	}
	return ids, nil
}

// Profiles reads the profiles of the accounts dids (at most 25), for the
// handles and names of residents writing privately.
func (c *Client) Profiles(ctx context.Context, dids []string) (map[string]Profile, error) {
	var doc struct {
		Profiles []Profile `json:"profiles"`
	}
	if _, err := c.call(ctx, http.MethodGet, "app.bsky.actor.getProfiles", url.Values{"actors": dids}, nil, &doc); err != nil {
		return nil, err
	}
	out := make(map[string]Profile, len(doc.Profiles))
	for _, p := range doc.Profiles {
		out[p.DID] = p
	}
	return out, nil
}
