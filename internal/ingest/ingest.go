// Package ingest receives webhooks from the networks. For each delivery it
// verifies the signature on the raw body, has the channel's adapter parse and
// normalise it, publishes every resident message to INBOUND and answers 2xx
// only once JetStream has stored them all. It touches no database, so
// webhooks are accepted while PostgreSQL is down.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/metrics"
)

// MaxBodyBytes caps a webhook body; larger deliveries are refused with 413.
const MaxBodyBytes = 5 << 20

// maxInFlight bounds the webhook bodies being read and published at once,
// so slow or hostile senders cannot hold unbounded memory before their
// signatures are checked.
const maxInFlight = 256

// publishTimeout bounds the wait for JetStream's acknowledgements, well
// inside the networks' answer deadlines.
const publishTimeout = 5 * time.Second

// Endpoint is one channel account's webhook endpoint, provided by the
// channel's adapter.
type Endpoint interface {
	Channel() string
	Account() string
	// Challenge answers a GET verification request (X's CRC, Meta's
	// hub.challenge). ok is false when the request is not a valid challenge.
	Challenge(q url.Values) (contentType string, body []byte, ok bool)
	// Verify checks the delivery's signature over the raw body.
	Verify(h http.Header, body []byte) bool
	// Parse normalises a verified delivery into resident messages. It may
	// return messages together with an error naming events it skipped.
	Parse(body []byte, receivedAt time.Time) ([]channels.Inbound, error)
}

// Handler serves /webhooks/:channel/:account.
type Handler struct {
	endpoints map[string]Endpoint // "channel/account"
	bus       *bus.Bus
	metrics   *metrics.Metrics
	log       *slog.Logger
	now       func() time.Time
	slots     chan struct{}
}

// New builds the webhook handler for the given endpoints.
func New(endpoints []Endpoint, b *bus.Bus, m *metrics.Metrics, log *slog.Logger) *Handler {
	h := &Handler{endpoints: map[string]Endpoint{}, bus: b, metrics: m, log: log, now: time.Now,
		slots: make(chan struct{}, maxInFlight)}
	for _, e := range endpoints {
		h.endpoints[e.Channel()+"/"+e.Account()] = e
	}
	return h
}

// Register adds the webhook routes. They are authenticated by each
// network's signature, not by a session or token.
func (h *Handler) Register(e *echo.Echo) {
	e.GET("/webhooks/:channel/:account", h.challenge)
	e.POST("/webhooks/:channel/:account", h.receive)
}

func (h *Handler) endpoint(c echo.Context) (Endpoint, bool) {
	ep, ok := h.endpoints[c.Param("channel")+"/"+c.Param("account")]
	return ep, ok
}

func (h *Handler) count(channel, result string) {
	h.metrics.Webhooks.WithLabelValues(channel, result).Inc()
}

func (h *Handler) challenge(c echo.Context) error {
	ep, ok := h.endpoint(c)
	if !ok {
		h.count("unknown", "unknown_account") // never a label from the URL: it is the caller's to choose
		return problem(c, http.StatusNotFound, "no such webhook endpoint")
	}
	contentType, body, ok := ep.Challenge(c.QueryParams())
	if !ok {
		h.count(ep.Channel(), "forged")
		return problem(c, http.StatusUnauthorized, "invalid verification request")
	}
	h.count(ep.Channel(), "challenge")
	return c.Blob(http.StatusOK, contentType, body)
}

func (h *Handler) receive(c echo.Context) error {
	start := h.now()
	receivedAt := start.UTC()
	ep, ok := h.endpoint(c)
	if !ok {
		h.count("unknown", "unknown_account") // never a label from the URL: it is the caller's to choose
		return problem(c, http.StatusNotFound, "no such webhook endpoint")
	}
	channel := ep.Channel()
	defer func() {
		h.metrics.WebhookSeconds.WithLabelValues(channel).Observe(time.Since(start).Seconds())
	}()

	if c.Request().ContentLength > MaxBodyBytes {
		h.count(channel, "too_large")
		return problem(c, http.StatusRequestEntityTooLarge, "request body is too large")
	}
	if !h.acquire() {
		h.count(channel, "busy")
		c.Response().Header().Set("Retry-After", "5")
		return problem(c, http.StatusServiceUnavailable, "too many deliveries at once, try again")
	}
	defer func() { <-h.slots }()
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, MaxBodyBytes+1))
	if err != nil {
		h.count(channel, "malformed")
		return problem(c, http.StatusBadRequest, "could not read the request body")
	}
	if len(body) > MaxBodyBytes {
		h.count(channel, "too_large")
		return problem(c, http.StatusRequestEntityTooLarge, "request body is too large")
	}
	if !ep.Verify(c.Request().Header, body) {
		h.count(channel, "forged")
		h.log.Warn("webhook signature rejected", "channel", channel, "account", ep.Account(),
			"remote", c.RealIP())
		return problem(c, http.StatusUnauthorized, "invalid signature")
	}
	msgs, err := ep.Parse(body, receivedAt)
	msgs, invalid := valid(msgs)
	if invalid != nil {
		err = errors.Join(err, invalid)
	}
	result := "accepted"
	switch {
	case err != nil && len(msgs) == 0:
		h.count(channel, "malformed")
		h.log.Warn("webhook payload rejected", "channel", channel, "account", ep.Account(), "err", err,
			"body", truncate(body, 64<<10))
		return problem(c, http.StatusBadRequest, "the payload could not be read")
	case err != nil:
		// Keep what could be read; the rest is logged whole.
		result = "partly_malformed"
		h.log.Warn("webhook events skipped", "channel", channel, "account", ep.Account(), "err", err,
			"body", truncate(body, 64<<10))
	}
	if len(msgs) == 0 {
		h.count(channel, "ignored")
		return c.NoContent(http.StatusOK)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), publishTimeout)
	defer cancel()
	if err := h.publish(ctx, msgs); err != nil {
		h.count(channel, "publish_failed")
		h.log.Error("webhook not stored", "channel", channel, "account", ep.Account(), "err", err)
		// The network will deliver again; dedupe keys make that safe.
		return problem(c, http.StatusServiceUnavailable, "message could not be stored, try again")
	}
	h.count(channel, result)
	h.metrics.InboundMessages.WithLabelValues(channel).Add(float64(len(msgs)))
	return c.NoContent(http.StatusOK)
}

// acquire takes one of the in-flight slots, waiting up to two seconds.
func (h *Handler) acquire() bool {
	select {
	case h.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

// publish sends every message to INBOUND at once and waits for all the
// acknowledgements.
func (h *Handler) publish(ctx context.Context, msgs []channels.Inbound) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		msg := &nats.Msg{
			Subject: h.bus.InboundSubject(m.Channel, m.Account),
			Data:    data,
			Header:  nats.Header{},
		}
		f, err := h.bus.JS.PublishMsgAsync(msg, jetstream.WithMsgID(m.DedupeKey))
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return errors.Join(errors.New("JetStream did not acknowledge in time"), ctx.Err())
		}
	}
	return nil
}

func problem(c echo.Context, status int, detail string) error {
	return c.JSON(status, map[string]any{
		"title":  http.StatusText(status),
		"status": status,
		"detail": detail,
	})
}

// valid keeps the messages that pass Validate, and reports the others.
func valid(msgs []channels.Inbound) ([]channels.Inbound, error) {
	var errs []error
	kept := msgs[:0:0]
	for _, m := range msgs {
		if err := m.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		kept = append(kept, m)
	}
	return kept, errors.Join(errs...)
}

// truncate caps what a log line carries of a body.
func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "…"
}
