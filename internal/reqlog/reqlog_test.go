package reqlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// lines decodes JSON log output, one object a line.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestHandlerAddsTheRequestIDFromTheContext(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil)))
	ctx := WithID(context.Background(), "req-0001")

	log.InfoContext(ctx, "with id")
	log.With("role", "api").WarnContext(ctx, "derived logger")
	log.Info("no context")
	slog.New(NewHandler(log.Handler())).InfoContext(ctx, "wrapped twice")

	got := lines(t, &buf)
	if len(got) != 4 {
		t.Fatalf("%d lines: %s", len(got), buf.String())
	}
	for _, i := range []int{0, 1, 3} {
		if got[i][Key] != "req-0001" {
			t.Errorf("line %d %v: want request_id req-0001", i, got[i])
		}
	}
	if got[1]["role"] != "api" {
		t.Errorf("derived logger lost its attributes: %v", got[1])
	}
	if _, ok := got[2][Key]; ok {
		t.Errorf("line without a request context has a request id: %v", got[2])
	}
	if n := strings.Count(strings.Split(buf.String(), "\n")[3], Key); n != 1 {
		t.Errorf("a handler wrapped twice writes the id %d times", n)
	}
}

func serve(e *echo.Echo, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func TestRequestIDAndAccessLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil)))
	e := echo.New()
	e.Use(RequestID(), AccessLog(log, slog.LevelInfo))
	e.GET("/cases/:case", func(c echo.Context) error {
		log.InfoContext(c.Request().Context(), "inside the handler")
		if c.Param("case") == "broken" {
			return echo.NewHTTPError(http.StatusTeapot)
		}
		return c.String(http.StatusOK, "ok")
	})

	// A proxy's well-formed id is kept; anything else is replaced.
	req := httptest.NewRequest(http.MethodGet, "/cases/C-2026-000123?q=private-words", nil)
	req.Header.Set(echo.HeaderXRequestID, "lb-7f3a9c21")
	rec := serve(e, req)
	if got := rec.Header().Get(echo.HeaderXRequestID); got != "lb-7f3a9c21" {
		t.Errorf("answer's X-Request-ID %q, want the proxy's", got)
	}
	req = httptest.NewRequest(http.MethodGet, "/cases/broken", nil)
	req.Header.Set(echo.HeaderXRequestID, "forged\nline "+strings.Repeat("x", 200))
	rec = serve(e, req)
	generated := rec.Header().Get(echo.HeaderXRequestID)
	if !validID.MatchString(generated) || strings.Contains(generated, "forged") {
		t.Errorf("malformed incoming id gave %q, want a new one", generated)
	}
	rec = serve(e, httptest.NewRequest(http.MethodPost, "/nowhere/at/all", nil))
	third := rec.Header().Get(echo.HeaderXRequestID)
	if third == "" || third == generated {
		t.Errorf("third request's id %q, want a new one (second was %q)", third, generated)
	}

	got := lines(t, &buf)
	if len(got) != 5 {
		t.Fatalf("%d lines, want 2 handler lines and 3 access lines:\n%s", len(got), buf.String())
	}
	want := []map[string]any{
		{"msg": "inside the handler", Key: "lb-7f3a9c21"},
		{"msg": "request", Key: "lb-7f3a9c21", "method": "GET", "route": "/cases/:case", "status": float64(200)},
		{"msg": "inside the handler", Key: generated},
		{"msg": "request", Key: generated, "method": "GET", "route": "/cases/:case", "status": float64(418)},
		{"msg": "request", Key: third, "method": "POST", "status": float64(404)},
	}
	for i, w := range want {
		for k, v := range w {
			if got[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, got[i][k], v, got[i])
			}
		}
	}
	if _, ok := got[1]["duration_ms"]; !ok {
		t.Errorf("access line without a duration: %v", got[1])
	}
	for _, leak := range []string{"private-words", "C-2026-000123", "nowhere", "forged"} {
		if strings.Contains(buf.String(), leak) {
			t.Errorf("log carries %q, which the caller chose:\n%s", leak, buf.String())
		}
	}
}

func TestAccessLogSeesTheStatusTheErrorHandlerSent(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil)))
	e := echo.New()
	e.HTTPErrorHandler = func(err error, c echo.Context) { _ = c.NoContent(http.StatusServiceUnavailable) }
	e.Use(RequestID(), AccessLog(log, slog.LevelInfo))
	e.GET("/", func(echo.Context) error { return errors.New("database away") })
	if rec := serve(e, httptest.NewRequest(http.MethodGet, "/", nil)); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("answered %d", rec.Code)
	}
	got := lines(t, &buf)
	if len(got) != 1 || got[0]["status"] != float64(503) {
		t.Errorf("access log %v, want one line with status 503", got)
	}
}
