// Package ingest receives webhooks from the networks. Each endpoint is one
// driver's channels.Webhook, served at /webhooks/<driver>/<endpoint>. For
// each delivery ingest checks what it can from the headers, reads the body
// within a deadline and a memory budget, has the driver verify the whole
// request, refuses bodies with duplicate keys, has the driver parse it,
// publishes every resident message to INBOUND and answers 2xx only once
// JetStream has stored them all. The database is used only to keep what a
// network sent that cannot be published (Keeper), so webhooks are accepted
// while PostgreSQL is down.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/metrics"
	"github.com/citizeninbox/inbox/internal/problem"
)

// Production defaults of Options.
const (
	// DefaultMaxBody caps a webhook body; larger deliveries get 413.
	DefaultMaxBody = 5 << 20
	// DefaultBodyTimeout bounds the time a body may take to arrive once
	// its headers are in: networks send a delivery at once, and answer
	// deadlines are about 10 s.
	DefaultBodyTimeout = 10 * time.Second
	// DefaultUnverifiedBytes caps the memory held by bodies being read,
	// whose signatures are not checked yet.
	DefaultUnverifiedBytes = 64 << 20
	// DefaultPublishWindow is how many messages of all deliveries together
	// wait for JetStream's acknowledgement at once.
	DefaultPublishWindow = 1024
	// DefaultPublishTimeout bounds the wait for JetStream's
	// acknowledgements, inside the networks' answer deadlines (X's is
	// 10 s).
	DefaultPublishTimeout = 8 * time.Second
)

// retryAfter is what a 503 asks the network to wait, in seconds.
const retryAfter = "5"

// keepTimeout bounds the write of what cannot be published.
const keepTimeout = 5 * time.Second

// Options are the limits of webhook intake. Zero fields take the defaults.
type Options struct {
	MaxBody         int64
	BodyTimeout     time.Duration
	UnverifiedBytes int64
	PublishWindow   int
	PublishTimeout  time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.UnverifiedBytes <= 0 {
		o.UnverifiedBytes = DefaultUnverifiedBytes
	}
	if o.PublishWindow <= 0 {
		o.PublishWindow = DefaultPublishWindow
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	return o
}

// Endpoint is one webhook endpoint: a driver's Webhook, served at
// /webhooks/<Driver>/<Slug>. It may serve several channel accounts; the
// messages it parses name their own channel and account.
type Endpoint struct {
	Driver  string
	Slug    string
	Webhook channels.Webhook
}

// Keeper keeps what a network sent that ingest cannot publish (a message
// over the bus's payload limit, a genuine delivery that cannot be read) so
// that nothing a resident sent is lost. subject says what data is: an
// INBOUND subject for a message, the webhook's path for a whole delivery.
type Keeper interface {
	Keep(ctx context.Context, subject string, data []byte, reason string) error
}

// KeepFunc is a Keeper made of a function.
type KeepFunc func(ctx context.Context, subject string, data []byte, reason string) error

// Keep calls f.
func (f KeepFunc) Keep(ctx context.Context, subject string, data []byte, reason string) error {
	return f(ctx, subject, data, reason)
}

// Results counted in inbox_webhooks_total{channel,result}. The channel
// label is the driver's name, or "unknown" for a path no endpoint serves:
// never a value the caller chose.
const (
	resultAccepted      = "accepted"         // 200: every message published
	resultPartly        = "partly_malformed" // 200: some events unreadable, delivery kept
	resultOversized     = "oversized"        // 200: a message over the bus limit, raw copy dropped or kept aside
	resultIgnored       = "ignored"          // 200: nothing to publish
	resultChallenge     = "challenge"        // 200: verification answered
	resultBadChallenge  = "bad_challenge"    // 400: verification request refused
	resultUnknown       = "unknown_account"  // 404: no endpoint at that path
	resultForged        = "forged"           // 401: signature missing, malformed or wrong
	resultTooLarge      = "too_large"        // 413
	resultSlow          = "slow"             // 408: the body did not arrive in time
	resultBusy          = "busy"             // 503: unverified bodies over their memory cap
	resultReadFailed    = "read_failed"      // 400: the body could not be read
	resultMalformed     = "malformed"        // 400: no event could be read
	resultDuplicateKeys = "duplicate_keys"   // 400
	resultPublishFailed = "publish_failed"   // 503
	resultKeepFailed    = "keep_failed"      // 503
)

// Handler serves /webhooks/:driver/:endpoint.
type Handler struct {
	// endpoints maps "driver/slug" to its endpoint; a configuration reload
	// swaps the whole map.
	endpoints atomic.Pointer[map[string]Endpoint]
	bus       *bus.Bus
	pub       *bus.Publisher
	keep      Keeper
	metrics   *metrics.Metrics
	log       *slog.Logger
	now       func() time.Time
	opts      Options
	// unverified holds the bytes of bodies being read whose signatures
	// are not yet checked; held mirrors it for the gauge.
	unverified *semaphore.Weighted
	held       atomic.Int64
}

// New builds the webhook handler for the given endpoints. It publishes
// through its own publisher on b's connection, and hands keep what cannot
// be published.
func New(endpoints []Endpoint, b *bus.Bus, keep Keeper, m *metrics.Metrics, log *slog.Logger, opts Options) (*Handler, error) {
	opts = opts.withDefaults()
	if opts.UnverifiedBytes <= opts.MaxBody {
		return nil, fmt.Errorf("ingest: the cap on unverified bytes (%d) must be over the body cap (%d)", opts.UnverifiedBytes, opts.MaxBody)
	}
	pub, err := b.NewPublisher(opts.PublishWindow)
	if err != nil {
		return nil, err
	}
	h := &Handler{bus: b, pub: pub, keep: keep, metrics: m, log: log,
		now: time.Now, opts: opts, unverified: semaphore.NewWeighted(opts.UnverifiedBytes)}
	if err := h.Use(endpoints); err != nil {
		return nil, err
	}
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "inbox_webhook_unverified_bytes",
		Help: "Memory held by webhook bodies being read, whose signatures are not checked yet.",
	}, func() float64 { return float64(h.held.Load()) })
	if err := m.Registry.Register(gauge); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	return h, nil
}

// Use makes the handler serve exactly these endpoints, from the next
// request on (a configuration reload).
func (h *Handler) Use(endpoints []Endpoint) error {
	m := make(map[string]Endpoint, len(endpoints))
	for _, e := range endpoints {
		key := e.Driver + "/" + e.Slug
		if _, dup := m[key]; dup {
			return fmt.Errorf("ingest: two webhook endpoints at /webhooks/%s", key)
		}
		m[key] = e
	}
	h.endpoints.Store(&m)
	return nil
}

// Register adds the webhook routes. They are authenticated by each
// network's signature, not by a session or token.
func (h *Handler) Register(e *echo.Echo) {
	e.GET("/webhooks/:driver/:endpoint", h.challenge)
	e.POST("/webhooks/:driver/:endpoint", h.receive)
}

func (h *Handler) endpoint(c echo.Context) (Endpoint, bool) {
	ep, ok := (*h.endpoints.Load())[c.Param("driver")+"/"+c.Param("endpoint")]
	return ep, ok
}

func (h *Handler) count(driver, result string) {
	h.metrics.Webhooks.WithLabelValues(driver, result).Inc()
}

func (h *Handler) challenge(c echo.Context) error {
	ctx := c.Request().Context()
	ep, ok := h.endpoint(c)
	if !ok {
		h.count("unknown", resultUnknown)
		return refuse(c, http.StatusNotFound, "no such webhook endpoint")
	}
	contentType, body, err := ep.Webhook.Challenge(c.Request())
	if err != nil {
		h.count(ep.Driver, resultBadChallenge)
		detail := "invalid verification request"
		if errors.Is(err, channels.ErrNotAChallenge) {
			detail = "not a verification request"
		}
		h.log.WarnContext(ctx, "webhook verification refused", "driver", ep.Driver, "endpoint", ep.Slug,
			"reason", err, "remote", c.RealIP())
		return refuse(c, http.StatusBadRequest, detail)
	}
	h.count(ep.Driver, resultChallenge)
	return c.Blob(http.StatusOK, contentType, body)
}

func (h *Handler) receive(c echo.Context) error {
	start := h.now()
	receivedAt := start.UTC()
	r := c.Request()
	ctx := r.Context()
	ep, ok := h.endpoint(c)
	if !ok {
		h.count("unknown", resultUnknown)
		return refuse(c, http.StatusNotFound, "no such webhook endpoint")
	}
	driver := ep.Driver
	defer func() {
		h.metrics.WebhookSeconds.WithLabelValues(driver).Observe(time.Since(start).Seconds())
	}()
	log := h.log.With("driver", driver, "endpoint", ep.Slug)

	// What the headers alone can refuse costs nothing to read.
	if pc, ok := ep.Webhook.(channels.Prechecker); ok {
		if err := pc.Precheck(r); err != nil {
			h.count(driver, resultForged)
			log.WarnContext(ctx, "webhook refused before its body was read", "reason", err, "remote", c.RealIP())
			return unread(c, http.StatusUnauthorized, "invalid signature")
		}
	}
	if r.ContentLength > h.opts.MaxBody {
		h.count(driver, resultTooLarge)
		return unread(c, http.StatusRequestEntityTooLarge, "request body is too large")
	}

	body, release, err := h.readBody(c.Response(), r)
	defer release()
	switch {
	case errors.Is(err, errTooLarge):
		h.count(driver, resultTooLarge)
		return unread(c, http.StatusRequestEntityTooLarge, "request body is too large")
	case errors.Is(err, errBusy):
		h.count(driver, resultBusy)
		log.WarnContext(ctx, "webhook refused: unverified bodies at their memory cap",
			"content_length", r.ContentLength, "cap", h.opts.UnverifiedBytes)
		c.Response().Header().Set("Retry-After", retryAfter)
		return unread(c, http.StatusServiceUnavailable, "too many deliveries at once, try again")
	case errors.Is(err, os.ErrDeadlineExceeded):
		h.count(driver, resultSlow)
		log.WarnContext(ctx, "webhook body did not arrive in time", "read_bytes", len(body),
			"timeout", h.opts.BodyTimeout.String(), "remote", c.RealIP())
		return unread(c, http.StatusRequestTimeout, "the request body did not arrive in time")
	case err != nil:
		h.count(driver, resultReadFailed)
		return unread(c, http.StatusBadRequest, "could not read the request body")
	}

	verifyErr := ep.Webhook.Verify(r, body)
	release() // checked, genuine or not: the body leaves the unverified budget
	if verifyErr != nil {
		h.count(driver, resultForged)
		log.WarnContext(ctx, "webhook signature rejected", "reason", verifyErr, "bytes", len(body), "remote", c.RealIP())
		return refuse(c, http.StatusUnauthorized, "invalid signature")
	}

	// A genuine delivery from here on: what cannot be read or published is
	// kept, never only logged (logs carry sizes, ids and reasons, never
	// what residents wrote).
	path := "/webhooks/" + driver + "/" + ep.Slug
	if err := duplicateKey(body); err != nil {
		result, detail := resultDuplicateKeys, "the payload has duplicate keys"
		if !errors.Is(err, errDuplicateKey) {
			result, detail = resultMalformed, "the payload could not be read"
		}
		log.WarnContext(ctx, "webhook payload refused", "reason", err, "bytes", len(body))
		if err := h.keepDelivery(ctx, path, body, err); err != nil {
			h.count(driver, resultKeepFailed)
			log.ErrorContext(ctx, "refused webhook could not be kept", "err", err, "bytes", len(body))
			return unavailable(c, "the delivery could not be stored, try again")
		}
		h.count(driver, result)
		return refuse(c, http.StatusBadRequest, detail)
	}

	var msgs []channels.Inbound
	var parseErr error
	if counting, ok := ep.Webhook.(channels.IgnoreCounter); ok {
		var ignored map[string]int
		msgs, ignored, parseErr = counting.ParseCounting(body, receivedAt)
		for kind, n := range ignored {
			h.metrics.InboundIgnored.WithLabelValues(driver, kind).Add(float64(n))
		}
	} else {
		msgs, parseErr = ep.Webhook.Parse(body, receivedAt)
	}
	msgs, invalid := valid(msgs)
	if invalid != nil {
		parseErr = errors.Join(parseErr, invalid)
	}
	if parseErr != nil && len(msgs) == 0 {
		log.WarnContext(ctx, "webhook payload rejected", "reason", parseErr, "bytes", len(body))
		if err := h.keepDelivery(ctx, path, body, parseErr); err != nil {
			h.count(driver, resultKeepFailed)
			log.ErrorContext(ctx, "unreadable webhook could not be kept", "err", err, "bytes", len(body))
			return unavailable(c, "the delivery could not be stored, try again")
		}
		h.count(driver, resultMalformed)
		return refuse(c, http.StatusBadRequest, "the payload could not be read")
	}
	if len(msgs) == 0 {
		h.count(driver, resultIgnored)
		return accepted(c, ep)
	}

	pubCtx, cancel := context.WithTimeout(ctx, h.opts.PublishTimeout)
	defer cancel()
	published, oversized, err := h.publish(pubCtx, log, msgs)
	if err != nil {
		h.count(driver, resultPublishFailed)
		log.ErrorContext(ctx, "webhook not stored", "err", err, "messages", len(msgs))
		// The network will deliver again; dedupe keys make that safe.
		return unavailable(c, "message could not be stored, try again")
	}
	h.metrics.InboundMessages.WithLabelValues(driver).Add(float64(published))
	result := resultAccepted
	if oversized > 0 {
		result = resultOversized
	}
	if parseErr != nil {
		// The readable events are published; the delivery is kept whole
		// for the events that could not be read.
		result = resultPartly
		log.WarnContext(ctx, "webhook events skipped", "reason", parseErr, "bytes", len(body), "published", published)
		if err := h.keepDelivery(ctx, path, body, parseErr); err != nil {
			h.count(driver, resultKeepFailed)
			log.ErrorContext(ctx, "partly unreadable webhook could not be kept", "err", err, "bytes", len(body))
			return unavailable(c, "the delivery could not be stored, try again")
		}
	}
	h.count(driver, result)
	return accepted(c, ep)
}

// accepted answers 200 to a delivery stored or ignored: with the body the
// network expects (Twilio's empty TwiML), or none.
func accepted(c echo.Context, ep Endpoint) error {
	if a, ok := ep.Webhook.(channels.Answerer); ok {
		contentType, body := a.Answer()
		return c.Blob(http.StatusOK, contentType, body)
	}
	return c.NoContent(http.StatusOK)
}

// Publish stores messages a poller fetched on INBOUND exactly as a
// webhook's are stored: each checked, in bounded windows, oversized ones
// slimmed or kept. It returns nil only once every one is stored.
func (h *Handler) Publish(ctx context.Context, msgs []channels.Inbound) error {
	msgs, invalid := valid(msgs)
	if invalid != nil {
		return invalid
	}
	_, _, err := h.publish(ctx, h.log, msgs)
	return err
}

// keepDelivery keeps a genuine delivery ingest cannot fully read.
func (h *Handler) keepDelivery(ctx context.Context, path string, body []byte, reason error) error {
	ctx, cancel := context.WithTimeout(ctx, keepTimeout)
	defer cancel()
	return h.keep.Keep(ctx, path, body, reason.Error())
}

// publish sends msgs to INBOUND in the publisher's windows and waits for
// JetStream to store them. A message over the bus's payload limit is sent
// without its raw copy when its text alone fits, and is otherwise kept
// whole through the Keeper; oversized counts both. Any failure to publish
// or keep is an error: the network then delivers again, and dedupe keys
// make that safe.
func (h *Handler) publish(ctx context.Context, log *slog.Logger, msgs []channels.Inbound) (published, oversized int, err error) {
	limit := h.pub.MaxData()
	out := make([]bus.Message, 0, len(msgs))
	type kept struct {
		subject, reason string
		data            []byte
	}
	var keep []kept
	for _, m := range msgs {
		subject := h.bus.InboundSubject(m.Channel, m.Account)
		data, err := json.Marshal(m)
		if err != nil {
			return 0, 0, fmt.Errorf("encode message %s: %w", m.DedupeKey, err)
		}
		if len(data) > limit {
			oversized++
			whole := len(data)
			slim := m
			slim.Raw = nil
			if data2, err := json.Marshal(slim); err == nil && len(data2) <= limit {
				log.WarnContext(ctx, "message published without its raw copy: over the bus's payload limit",
					"dedupe_key", m.DedupeKey, "bytes", whole, "raw_bytes", len(m.Raw), "limit", limit)
				data = data2
			} else {
				reason := fmt.Sprintf("message of %d bytes (text %d bytes) is over the bus's payload limit of %d bytes", whole, len(m.Text), limit)
				log.WarnContext(ctx, "message kept in inbound_rejected: over the bus's payload limit",
					"dedupe_key", m.DedupeKey, "bytes", whole, "text_bytes", len(m.Text), "limit", limit)
				keep = append(keep, kept{subject: subject, reason: reason, data: data})
				continue
			}
		}
		out = append(out, bus.Message{Subject: subject, Data: data, ID: m.DedupeKey})
	}
	failed, first := 0, error(nil)
	for _, err := range h.pub.PublishAll(ctx, out) {
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if failed > 0 {
		return 0, oversized, fmt.Errorf("%d of %d messages not stored: %w", failed, len(out), first)
	}
	for _, k := range keep {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keepTimeout)
		err := h.keep.Keep(kctx, k.subject, k.data, k.reason)
		cancel()
		if err != nil {
			return len(out), oversized, fmt.Errorf("keep an oversized message: %w", err)
		}
	}
	return len(out), oversized, nil
}

// refuse answers with the problem document every surface uses.
func refuse(c echo.Context, status int, detail string) error {
	return c.JSON(status, problem.New(status, "webhook", detail))
}

// unread refuses a request whose body is not read, and closes the
// connection after the answer: otherwise the HTTP server would read what is
// left of the body before answering, which is what a slow sender wants.
func unread(c echo.Context, status int, detail string) error {
	c.Response().Header().Set("Connection", "close")
	return refuse(c, status, detail)
}

// unavailable answers 503 with Retry-After, so the network delivers again.
func unavailable(c echo.Context, detail string) error {
	c.Response().Header().Set("Retry-After", retryAfter)
	return refuse(c, http.StatusServiceUnavailable, detail)
}

// valid keeps the messages that pass Validate, and reports the others.
func valid(msgs []channels.Inbound) ([]channels.Inbound, error) {
	var errs []error
	kept := msgs[:0:0]
	for i, m := range msgs {
		if err := m.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("message %d: %w", i, err))
			continue
		}
		kept = append(kept, m)
	}
	return kept, errors.Join(errs...)
}
