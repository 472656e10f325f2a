package api

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/reports"
)

// reportZone is where a period given as dates starts and ends.
var reportZone = func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		return time.UTC
	}
	return loc
}()

// exportWriteWindow is how long the client has to take each batch of an
// export's rows: the write deadline moves on with every batch, so a long
// export is not cut off and a stalled client is.
const exportWriteWindow = time.Minute

// channelNames are the channels, as the product names them.
var channelNames = []string{"x", "facebook", "instagram", "whatsapp", "telegram", "sms", "mastodon", "bluesky", "email"}

// periodBound reads a period's bound: a date (midnight in London) or an
// RFC 3339 time.
func periodBound(v string) (time.Time, bool) {
	if t, err := time.ParseInLocation(time.DateOnly, v, reportZone); err == nil {
		return t, true
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}

// exportRequest reads an export's query: the period (from, to), format,
// filters (team, channel, account, service, priority and adviser, each
// repeatable) and text.
func exportRequest(c echo.Context, kind string) (cases.ExportRequest, error) {
	q := c.QueryParams()
	var fields []FieldError
	bad := func(field, msg string) { fields = append(fields, FieldError{Field: field, Message: msg}) }
	req := cases.ExportRequest{Kind: kind, Format: q.Get("format"), Teams: q["team"], Accounts: q["account"]}
	if req.Format == "" {
		req.Format = reports.CSV
	}
	if !slices.Contains(reports.Formats, req.Format) {
		bad("format", "must be csv or jsonl")
	}
	var ok bool
	if req.Filter.From, ok = periodBound(q.Get("from")); !ok {
		bad("from", "is required: a date (2026-12-01, from midnight in London) or an RFC 3339 time")
	}
	if req.Filter.To, ok = periodBound(q.Get("to")); !ok {
		bad("to", "is required: a date (2027-01-01, up to midnight in London, not included) or an RFC 3339 time")
	}
	if ok && !req.Filter.To.After(req.Filter.From) {
		bad("to", "must come after from")
	}
	for _, ch := range q["channel"] {
		if !slices.Contains(channelNames, ch) {
			bad("channel", fmt.Sprintf("%q is not a channel", ch))
		}
	}
	req.Filter.Channels = q["channel"]
	req.Filter.Services = q["service"]
	for _, p := range q["priority"] {
		if !slices.Contains(cases.Priorities, p) {
			bad("priority", fmt.Sprintf("%q is not low, normal, high or urgent", p))
		}
	}
	req.Filter.Priorities = q["priority"]
	for _, a := range q["adviser"] {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id < 1 {
			bad("adviser", fmt.Sprintf("%q is not a user id", a))
		}
		req.Filter.Advisers = append(req.Filter.Advisers, id)
	}
	switch q.Get("text") {
	case "", "false":
	case "true":
		req.WithText = kind == cases.ExportMessages
		if kind != cases.ExportMessages {
			bad("text", "applies to the message export only")
		}
	default:
		bad("text", "must be true or false")
	}
	if len(fields) > 0 {
		return req, &validationError{fields: fields}
	}
	return req, nil
}

func (h *handlers) exportCases(c echo.Context) error { return h.export(c, cases.ExportCases) }

func (h *handlers) exportMessages(c echo.Context) error { return h.export(c, cases.ExportMessages) }

// export streams an export: the answer starts once the export is allowed
// and audited, and rows follow as the database yields them. An error once
// rows are on their way can only end the answer early; it is logged.
func (h *handlers) export(c echo.Context, kind string) error {
	req, err := exportRequest(c, kind)
	if err != nil {
		return err
	}
	w := &exportWriter{c: c, rc: http.NewResponseController(c.Response().Writer), kind: kind, req: req}
	n, err := h.cases.Export(c.Request().Context(), actor(c), req, w)
	if err != nil && !w.started {
		return err
	}
	if err != nil {
		h.log.WarnContext(c.Request().Context(), "export ended early", "kind", kind, "rows", n, "err", err)
		return nil
	}
	if !w.started {
		w.start()
	}
	return nil
}

// exportWriter writes an export's answer, its headers on the first write.
type exportWriter struct {
	c       echo.Context
	rc      *http.ResponseController
	kind    string
	req     cases.ExportRequest
	started bool
}

func (w *exportWriter) start() {
	w.started = true
	name := fmt.Sprintf("%s-%s-%s.%s", w.kind, w.req.Filter.From.In(reportZone).Format(time.DateOnly),
		w.req.Filter.To.In(reportZone).Format(time.DateOnly), w.req.Format)
	h := w.c.Response().Header()
	h.Set(echo.HeaderContentType, reports.ContentType(w.req.Format))
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	_ = w.rc.SetWriteDeadline(time.Now().Add(exportWriteWindow))
	w.c.Response().WriteHeader(http.StatusOK)
}

func (w *exportWriter) Write(p []byte) (int, error) {
	if !w.started {
		w.start()
	}
	return w.c.Response().Write(p)
}

// Flush sends what was written and gives the client another window.
func (w *exportWriter) Flush() error {
	if !w.started {
		w.start()
	}
	_ = w.rc.SetWriteDeadline(time.Now().Add(exportWriteWindow))
	return w.rc.Flush()
}
