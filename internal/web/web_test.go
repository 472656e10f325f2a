package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	assets "github.com/citizeninbox/inbox/web"
)

// Every page's template is parsed at start-up; one that is missing or
// broken fails it there rather than at the first request.
func TestTemplatesParsedAtStartUp(t *testing.T) {
	if _, err := parseTemplates(assets.Templates); err != nil {
		t.Fatalf("the embedded templates: %v", err)
	}
	layout := `<html>{{template "main" .}}</html>`
	for name, fsys := range map[string]fstest.MapFS{
		"no layout": {"templates/sign-in.html": {Data: []byte(`{{define "main"}}x{{end}}`)}},
		"a page missing": {
			"templates/layout.html":  {Data: []byte(layout)},
			"templates/sign-in.html": {Data: []byte(`{{define "main"}}x{{end}}`)},
			"templates/error.html":   {Data: []byte(`{{define "main"}}x{{end}}`)},
		},
		"a page that does not parse": {
			"templates/layout.html":  {Data: []byte(layout)},
			"templates/sign-in.html": {Data: []byte(`{{define "main"}}{{if}}{{end}}`)},
			"templates/queue.html":   {Data: []byte(`{{define "main"}}x{{end}}`)},
			"templates/error.html":   {Data: []byte(`{{define "main"}}x{{end}}`)},
		},
		"a page without main": {
			"templates/layout.html":  {Data: []byte(layout)},
			"templates/sign-in.html": {Data: []byte(`{{define "body"}}x{{end}}`)},
			"templates/queue.html":   {Data: []byte(`{{define "main"}}x{{end}}`)},
			"templates/error.html":   {Data: []byte(`{{define "main"}}x{{end}}`)},
		},
	} {
		if _, err := parseTemplates(fsys); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "/queue"},
		{"/queue", "/queue"},
		{"/queue?status=new", "/queue?status=new"},
		{"/cases/C-2026-000123", "/cases/C-2026-000123"},
		{"queue", "/queue"},
		{"//evil.example/queue", "/queue"},
		{"///evil.example", "/queue"},
		{"/\\evil.example", "/queue"},
		{"\\\\evil.example", "/queue"},
		{"https://evil.example/", "/queue"},
		{"http:/evil.example", "/queue"},
		{"javascript:alert(1)", "/queue"},
		{"/\t/evil.example", "/queue"},
		{"/%2F/evil.example", "/queue"},
		{"/sign-in", "/queue"},
		{"/sign-out", "/queue"},
		{"/" + strings.Repeat("a", 3000), "/queue"},
	} {
		if got := safeNext(tc.in); got != tc.want {
			t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Whatever a sign-in link carries, the user is only ever sent to a path
// on this server.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/queue", "//evil.example", "/\\evil", "https://evil.example", "/a?b=c#d", "/%5c%5cevil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(got, "/") ||
			strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n") {
			t.Fatalf("safeNext(%q) = %q leaves the site", next, got)
		}
	})
}

func TestExcerpt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"", ""},
		{"Bin not  collected\n\ttoday", "Bin not collected today"},
		{"one two three four five six seven eight nine ten eleven twelve thirteen", "one two three four five six seven eight nine ten eleven twelve…"},
		{strings.Repeat("é", 120), strings.Repeat("é", 100) + "…"},
	} {
		if got := excerpt(tc.in, 12, 100); got != tc.want {
			t.Errorf("excerpt(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWaitingAndClock(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 7, 14, 15, 0, 0, 0, time.UTC) // 16:00 in London (BST)
	for _, tc := range []struct {
		since          time.Time
		waiting, clock string
	}{
		{now.Add(-30 * time.Second), "under a minute", "15:59"},
		{now.Add(-25 * time.Minute), "25 min", "15:35"},
		{now.Add(-3 * time.Hour), "3 h", "13:00"},
		{now.Add(-3*time.Hour - 10*time.Minute), "3 h 10 min", "12:50"},
		{now.Add(-30 * time.Hour), "1 day", "Mon 10:00"},
		{now.Add(-10 * 24 * time.Hour), "10 days", "4 Jul 2026 16:00"},
	} {
		if got := waiting(tc.since, now); got != tc.waiting {
			t.Errorf("waiting since %v = %q, want %q", tc.since, got, tc.waiting)
		}
		if got := clock(tc.since, now, london); got != tc.clock {
			t.Errorf("clock(%v) = %q, want %q", tc.since, got, tc.clock)
		}
	}
}

// Over https the session cookie is Secure, and __Host- prefixed so that
// no subdomain can set it; over http (development) it cannot be.
func TestSessionCookieSecureOverHTTPS(t *testing.T) {
	for _, tc := range []struct {
		url    string
		secure bool
		name   string
	}{
		{"https://inbox.example.gov.uk", true, "__Host-inbox_session"},
		{"http://127.0.0.1:8080", false, "inbox_session"},
	} {
		u, err := New(t.Context(), Options{PublicURL: tc.url})
		if err != nil {
			t.Fatal(err)
		}
		u.Close()
		c := u.sessions.Cookie
		if c.Secure != tc.secure || c.Name != tc.name || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("%s: cookie %+v", tc.url, c)
		}
	}
}
