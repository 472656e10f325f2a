package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// The landing page is public: it links only to what the public listener
// serves, and names no account, webhook or operations endpoint.
func TestLandingPageNamesNoAccountsOrOperationsEndpoints(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	p.Register(e)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.Contains(body, "<h1>Citizen inbox</h1>") || !strings.Contains(body, `href="/api/v1/openapi.yaml"`) {
		t.Fatalf("GET / answered %d:\n%s", rec.Code, body)
	}
	for _, s := range []string{"/webhooks/", "/metrics", "/healthz", "/readyz", "Channel accounts"} {
		if strings.Contains(body, s) {
			t.Errorf("landing page mentions %q", s)
		}
	}
}
