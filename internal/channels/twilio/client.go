package twilio

import (
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

	"github.com/citizeninbox/inbox/internal/channels"
)

// DefaultBaseURL is Twilio's REST API.
const (
	DefaultBaseURL = "https://api.twilio.com"
	maxAnswerSize  = 1 << 20
	// rateLimitWait is how long a refused send waits when Twilio names
	// no time.
	rateLimitWait = 30 * time.Second
)

// Client sends one SMS account's replies through the Messages API.
type Client struct {
	BaseURL    string
	AccountSID string
	AuthToken  string
	// From is the account's number; StatusCallback the account's webhook,
	// to which Twilio posts each message's status.
	From           string
	StatusCallback string
	HTTP           *http.Client
}

var _ channels.Sender = (*Client)(nil)

// Send sends a reply as one SMS to the resident's number (Twilio cuts it
// into segments); an earlier attempt that sent it is not repeated.
func (c *Client) Send(ctx context.Context, out channels.Outbound, onPart func(index int, id string) error) ([]string, error) {
	if len(out.SentParts) > 0 {
		return out.SentParts, nil
	}
	switch {
	case out.Visibility != channels.Private:
		return nil, permanent("SMS has only private messages")
	case strings.TrimSpace(out.Text) == "":
		return nil, permanent("the reply is empty")
	case out.Recipient == "":
		return nil, permanent("an SMS needs the resident's number")
	}
	form := url.Values{"To": {out.Recipient}, "From": {c.From}, "Body": {out.Text}}
	if c.StatusCallback != "" {
		form.Set("StatusCallback", c.StatusCallback)
	}
	sid, err := c.create(ctx, form)
	if err != nil {
		return nil, err
	}
	return []string{sid}, channels.RecordPart(onPart, 0, sid)
}

// created is the part of the Messages API's answer read.
type created struct {
	SID         string `json:"sid"`
	Status      string `json:"status"`
	NumSegments string `json:"num_segments"`
}

// apiError is Twilio's error document.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("Twilio error %d: %s", e.Code, e.Message)
}

// ErrCredential marks a send refused for the account's credential: the
// account needs a new auth token, not the reply a retry.
var ErrCredential = errors.New("twilio: the account SID and auth token were refused")

// recipientErrors are refusals for the resident's number, with what an
// adviser can do about them.
var recipientErrors = map[int]string{
	21610: "the resident has opted out of SMS from this number (they texted STOP); they must text START before we can text them again",
	21211: "the resident's number is not a valid phone number",
	21614: "the resident's number cannot receive SMS (a landline, or not a mobile number)",
	21612: "Twilio cannot send SMS from this number to the resident's number",
	21408: "the Twilio account is not allowed to send SMS to the resident's country",
	21617: "the text is over the 1,600 characters Twilio takes",
}

func (c *Client) create(ctx context.Context, form url.Values) (string, error) {
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	endpoint := strings.TrimRight(base, "/") + "/2010-04-01/Accounts/" + url.PathEscape(c.AccountSID) + "/Messages.json"
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", &channels.SendError{Kind: channels.Retryable, Reason: "the Twilio API address is invalid: " + err.Error()}
	}
	req.SetBasicAuth(c.AccountSID, c.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	client := c.HTTP
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		var dnsErr *net.DNSError
		notSent := !wrote.Load() || errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dnsErr)
		return "", &channels.SendError{Kind: channels.Retryable, Reason: "no answer from Twilio: " + err.Error(), Ambiguous: !notSent}
	}
	defer resp.Body.Close()
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, maxAnswerSize))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		var m created
		if readErr != nil || json.Unmarshal(answer, &m) != nil || m.SID == "" {
			// Twilio most likely has the message: not retried, flagged.
			return "", &channels.SendError{Kind: channels.Permanent, Reason: "unreadable answer from Twilio", Ambiguous: true, Status: resp.StatusCode}
		}
		return m.SID, nil
	}
	return "", sendError(resp.StatusCode, resp.Header.Get("Retry-After"), answer, time.Now())
}

// sendError classifies a refused send by Twilio's error code, and by the
// HTTP status when the answer has none.
func sendError(status int, retryAfter string, answer []byte, now time.Time) error {
	var ae apiError
	if json.Unmarshal(answer, &ae) != nil || ae.Code == 0 {
		ae = apiError{Message: fmt.Sprintf("HTTP %d", status)}
	}
	reason := ae.Error()
	if ae.Code == 0 {
		reason = "Twilio answered HTTP " + strconv.Itoa(status)
	}
	fail := func(kind channels.SendErrorKind, reason string) *sendFailure {
		return &sendFailure{api: &ae, SendError: channels.SendError{Kind: kind, Reason: reason, Status: status}}
	}
	switch {
	case ae.Code == 20003 || status == http.StatusUnauthorized:
		f := fail(channels.Unauthorised, reason)
		f.credential = true
		return f
	case ae.Code == 20429 || status == http.StatusTooManyRequests:
		f := fail(channels.RateLimited, reason)
		f.RetryAt = now.Add(rateLimitWait)
		if s, err := strconv.Atoi(strings.TrimSpace(retryAfter)); err == nil && s > 0 {
			f.RetryAt = now.Add(time.Duration(s) * time.Second)
		}
		return f
	case recipientErrors[ae.Code] != "":
		return fail(channels.Permanent, recipientErrors[ae.Code]+" ("+reason+")")
	case status >= 500:
		f := fail(channels.Retryable, reason)
		f.Ambiguous = true
		return f
	}
	return fail(channels.Permanent, reason)
}

// sendFailure is a refused send with Twilio's own error.
type sendFailure struct {
	channels.SendError
	api        *apiError
	credential bool
}

func (e *sendFailure) Unwrap() []error {
	errs := []error{&e.SendError, e.api}
	if e.credential {
		errs = append(errs, ErrCredential)
	}
	return errs
}

func permanent(reason string) *channels.SendError {
	return &channels.SendError{Kind: channels.Permanent, Reason: reason}
}
