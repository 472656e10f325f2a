package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/auth"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/web"
)

const (
	webPassword   = "correct horse battery staple"
	sessionCookie = "inbox_session"
)

// webUser makes a user who signs in with webPassword.
func (h *harness) webUser(email, role string, teams ...string) int64 {
	h.t.Helper()
	u, err := h.srv.Auth.CreateUser(context.Background(), auth.NewUser{
		Email: email, Name: "Web " + role, Role: role, Teams: teams, Password: webPassword,
	})
	if err != nil {
		h.t.Fatalf("create user %s: %v", email, err)
	}
	return u.ID
}

// withSignInLimits sets the sign-in limits of the harness's servers.
func withSignInLimits(l auth.SignInLimits) harnessOption {
	return func(o *server.Options, _ *harness) { o.SignIn = l }
}

// browser is an HTTP client that keeps cookies and does not follow
// redirects, so that tests see each page.
type browser struct {
	t    *testing.T
	base string
	http *http.Client
	jar  *cookiejar.Jar
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, jar: jar, http: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}}
}

type page struct {
	status   int
	location string
	header   http.Header
	body     string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Header.Get("Location"), resp.Header, string(raw)}
}

func (b *browser) get(path string, header ...string) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

// post sends a form; header holds name, value pairs.
func (b *browser) post(path string, form url.Values, header ...string) page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf reads the CSRF token of the page at path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	a := b.get(path)
	m := csrfInput.FindStringSubmatch(a.body)
	if a.status != http.StatusOK || m == nil {
		b.t.Fatalf("GET %s: %d, no CSRF token:\n%s", path, a.status, a.body)
	}
	return m[1]
}

func (b *browser) signIn(email, password string) page {
	b.t.Helper()
	return b.post("/sign-in", url.Values{"email": {email}, "password": {password}, "csrf_token": {b.csrf("/sign-in")}})
}

// mustSignIn signs in and requires being sent to the queue.
func (b *browser) mustSignIn(email string) {
	b.t.Helper()
	if a := b.signIn(email, webPassword); a.status != http.StatusSeeOther || a.location != "/queue" {
		b.t.Fatalf("sign in as %s: %d to %q\n%s", email, a.status, a.location, a.body)
	}
}

// session is the session cookie's value, or "".
func (b *browser) session() string {
	u, _ := url.Parse(b.base)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == sessionCookie {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setSession(token string) {
	u, _ := url.Parse(b.base)
	b.jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: token, Path: "/"}})
}

func wantSignInRedirect(t *testing.T, what string, a page, next string) {
	t.Helper()
	want := "/sign-in"
	if next != "" {
		want += "?next=" + url.QueryEscape(next)
	}
	if a.status != http.StatusSeeOther || a.location != want {
		t.Errorf("%s: %d to %q, want 303 to %q", what, a.status, a.location, want)
	}
}

// Every page but sign-in sends a signed-out request to sign-in: a page
// read comes back to where it was; htmx is told to load sign-in.
func TestUISignedOutRequestsGoToSignIn(t *testing.T) {
	h := newHarness(t)
	b := newBrowser(t, h.srv.URL())
	wantSignInRedirect(t, "GET /", b.get("/"), "")
	checked := 0
	for _, r := range web.Routes() {
		if r.Access.Public {
			continue
		}
		checked++
		switch r.Method {
		case http.MethodGet:
			wantSignInRedirect(t, "GET "+r.Path, b.get(r.Path+"?status=new"), r.Path+"?status=new")
			a := b.get(r.Path, "HX-Request", "true")
			if a.status != http.StatusUnauthorized || a.header.Get("HX-Redirect") != "/sign-in?next="+url.QueryEscape(r.Path) {
				t.Errorf("htmx GET %s: %d, HX-Redirect %q", r.Path, a.status, a.header.Get("HX-Redirect"))
			}
		default:
			// With a valid token for the anonymous session, so that only
			// the missing sign-in refuses it.
			token := b.csrf("/sign-in")
			wantSignInRedirect(t, r.Method+" "+r.Path, b.post(r.Path, url.Values{"csrf_token": {token}}), "")
		}
	}
	if checked < 2 {
		t.Errorf("only %d signed-in pages checked", checked)
	}
	// Signed in, sign-in sends the user on, and only ever to this server.
	h.webUser("ada@example.gov.uk", "adviser", "contact-centre")
	token := b.csrf("/sign-in?next=%2F%2Fevil.example")
	if !strings.Contains(b.get("/sign-in?next=%2F%2Fevil.example").body, `name="next" value="/queue"`) {
		t.Error("the sign-in form carries a return path to another site")
	}
	a := b.post("/sign-in", url.Values{"email": {"ada@example.gov.uk"}, "password": {webPassword}, "csrf_token": {token},
		"next": {"https://evil.example/queue"}})
	if a.status != http.StatusSeeOther || a.location != "/queue" {
		t.Errorf("sign in with an outside return path: %d to %q", a.status, a.location)
	}
	if a := b.get("/"); a.status != http.StatusSeeOther || a.location != "/queue" {
		t.Errorf("GET / signed in: %d to %q", a.status, a.location)
	}
	if a := b.get("/sign-in?next=%2Fqueue%3Fstatus%3Dnew"); a.status != http.StatusSeeOther || a.location != "/queue?status=new" {
		t.Errorf("GET /sign-in signed in: %d to %q", a.status, a.location)
	}
}

// Signing in gives a new session id: one planted beforehand (session
// fixation) does not become signed in. Signing out ends the session in
// the store, so its cookie replayed later is worth nothing.
func TestUISessionRenewedAtSignInAndEndedAtSignOut(t *testing.T) {
	h := newHarness(t)
	h.webUser("ada@example.gov.uk", "adviser", "contact-centre")

	// An attacker gets a session of their own and plants it in the
	// adviser's browser.
	attacker := newBrowser(t, h.srv.URL())
	attacker.csrf("/sign-in")
	planted := attacker.session()
	if planted == "" {
		t.Fatal("the sign-in page gave no session cookie")
	}
	adviser := newBrowser(t, h.srv.URL())
	adviser.setSession(planted)
	signIn := adviser.signIn("ada@example.gov.uk", webPassword)
	if signIn.status != http.StatusSeeOther {
		t.Fatalf("sign in: %d\n%s", signIn.status, signIn.body)
	}
	var cookie string
	for _, c := range signIn.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, sessionCookie+"=") {
			cookie = c
		}
	}
	if !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") || strings.Contains(cookie, "Secure") {
		t.Errorf("session cookie at sign-in %q: want HttpOnly, SameSite=Lax, not Secure over http", cookie)
	}
	if got := adviser.session(); got == "" || got == planted {
		t.Fatalf("session id at sign-in: %q, planted %q", got, planted)
	}
	if n := h.count(`SELECT count(*) FROM sessions WHERE token = ?`, planted); n != 0 {
		t.Errorf("the planted session is still stored")
	}
	wantSignInRedirect(t, "the attacker's GET /queue", attacker.get("/queue"), "/queue")
	a := adviser.get("/queue")
	if a.status != http.StatusOK || !strings.Contains(a.body, "<h1 class=\"govuk-heading-l\">Queue</h1>") {
		t.Fatalf("GET /queue signed in: %d\n%s", a.status, a.body)
	}

	signedIn := adviser.session()
	if a := adviser.post("/sign-out", url.Values{"csrf_token": {adviser.csrf("/queue")}}); a.status != http.StatusSeeOther || a.location != "/sign-in" {
		t.Fatalf("sign out: %d to %q", a.status, a.location)
	}
	if n := h.count(`SELECT count(*) FROM sessions WHERE token = ?`, signedIn); n != 0 {
		t.Error("the session outlived sign-out in the store")
	}
	replay := newBrowser(t, h.srv.URL())
	replay.setSession(signedIn)
	wantSignInRedirect(t, "GET /queue with the signed-out session", replay.get("/queue"), "/queue")

	// A session past its expiry is gone too.
	adviser.mustSignIn("ada@example.gov.uk")
	h.direct.Exec(`UPDATE sessions SET expiry = now() - interval '1 second' WHERE token = ?`, adviser.session())
	wantSignInRedirect(t, "GET /queue after expiry", adviser.get("/queue"), "/queue")
}

// Every state-changing request needs the session's CSRF token, from the
// form or the X-CSRF-Token header; a request a browser marks as coming
// from another site is refused even with it.
func TestUICSRF(t *testing.T) {
	h := newHarness(t)
	h.webUser("ada@example.gov.uk", "adviser", "contact-centre")
	b := newBrowser(t, h.srv.URL())

	signIn := url.Values{"email": {"ada@example.gov.uk"}, "password": {webPassword}}
	b.csrf("/sign-in")
	for name, a := range map[string]page{
		"sign in without a token":    b.post("/sign-in", signIn),
		"sign in with a wrong token": b.post("/sign-in", withToken(signIn, "not-the-token")),
	} {
		if a.status != http.StatusForbidden || !strings.Contains(a.body, "This form has expired") {
			t.Errorf("%s: %d\n%s", name, a.status, a.body)
		}
	}
	other := newBrowser(t, h.srv.URL())
	if a := b.post("/sign-in", withToken(signIn, other.csrf("/sign-in"))); a.status != http.StatusForbidden {
		t.Errorf("sign in with another session's token: %d", a.status)
	}
	b.mustSignIn("ada@example.gov.uk")
	token := b.csrf("/queue")
	for name, a := range map[string]page{
		"sign out without a token":                  b.post("/sign-out", nil),
		"sign out with a wrong token":               b.post("/sign-out", url.Values{"csrf_token": {token + "x"}}),
		"sign out with the token in a wrong header": b.post("/sign-out", nil, "X-XSRF-Token", token),
		"sign out from another site": b.post("/sign-out", url.Values{"csrf_token": {token}},
			"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"),
	} {
		if a.status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, a.status)
		}
	}
	if a := b.get("/queue"); a.status != http.StatusOK {
		t.Fatalf("refused sign-outs signed the user out: %d", a.status)
	}
	// htmx sends the token in a header, as hx-headers on <body> gives it.
	if !strings.Contains(b.get("/queue").body, `hx-headers='{"X-CSRF-Token": "`+token+`"}'`) {
		t.Error("the page's body carries no hx-headers with the CSRF token")
	}
	if a := b.post("/sign-out", nil, "X-CSRF-Token", token, "HX-Request", "true"); a.status != http.StatusSeeOther {
		t.Errorf("sign out with the token in the header: %d", a.status)
	}
	wantSignInRedirect(t, "GET /queue after sign-out", b.get("/queue"), "/queue")
}

func withToken(v url.Values, token string) url.Values {
	out := url.Values{"csrf_token": {token}}
	for k, vs := range v {
		out[k] = vs
	}
	return out
}

var errorSummary = regexp.MustCompile(`(?s)<div class="govuk-error-summary".*?<li><a href="#email">([^<]+)</a></li>`)

// Sign-in attempts are limited per account and per client address, and
// the count is shared by every server process: attempts spread over two
// servers are stopped at the same total. An unknown email gets the same
// page as a wrong password.
func TestUISignInRateLimitHoldsAcrossServers(t *testing.T) {
	h := newHarness(t, withSignInLimits(auth.SignInLimits{Window: time.Hour, PerAccount: 4, PerAddress: 9}))
	h.webUser("ada@example.gov.uk", "adviser", "contact-centre")
	second, _ := h.replica(nil)
	servers := []*browser{newBrowser(t, h.srv.URL()), newBrowser(t, second.URL())}

	summary := func(a page) string {
		m := errorSummary.FindStringSubmatch(a.body)
		if m == nil {
			t.Fatalf("no error summary for the email field (%d):\n%s", a.status, a.body)
		}
		return m[1]
	}
	wrong := servers[0].signIn("ada@example.gov.uk", "not the password at all")
	unknown := servers[1].signIn("nobody@example.gov.uk", webPassword)
	if wrong.status != http.StatusUnauthorized || unknown.status != http.StatusUnauthorized || summary(wrong) != summary(unknown) {
		t.Errorf("wrong password %d %q, unknown email %d %q: want one page", wrong.status, summary(wrong), unknown.status, summary(unknown))
	}
	if !strings.Contains(wrong.body, "<title>Error: Sign in") || strings.Contains(wrong.body, "not the password at all") {
		t.Errorf("the error page's title, or it echoes the password:\n%s", wrong.body)
	}

	// Per account: one failure so far, three more over both servers reach
	// the limit of four; the fifth attempt, with the right password, is
	// refused on either server.
	for i := range 3 {
		if a := servers[i%2].signIn("ada@example.gov.uk", "not the password at all"); a.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+2, a.status)
		}
	}
	for i, b := range servers {
		a := b.signIn("ada@example.gov.uk", webPassword)
		if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" ||
			summary(a) != "There have been too many attempts to sign in. Wait 15 minutes, then try again" {
			t.Errorf("server %d past the account's limit: %d %q", i+1, a.status, summary(a))
		}
	}

	// Per address: seven attempts from this address so far (the two
	// first, three failures, two refused); two more for another account
	// reach its limit of nine, and whatever the account, the next ones
	// from it are refused.
	h.webUser("bo@example.gov.uk", "adviser", "contact-centre")
	for i := range 2 {
		if a := servers[i].signIn("bo@example.gov.uk", "not the password at all"); a.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d from the address: %d", i+8, a.status)
		}
	}
	for i, b := range servers {
		if a := b.signIn("bo@example.gov.uk", webPassword); a.status != http.StatusTooManyRequests {
			t.Errorf("server %d past the address's limit: %d", i+1, a.status)
		}
	}
}

// A disabled user cannot sign in, and a session they had stops working at
// its next request.
func TestUIDisabledUserSessionEnds(t *testing.T) {
	h := newHarness(t)
	h.webUser("ada@example.gov.uk", "adviser", "contact-centre")
	b := newBrowser(t, h.srv.URL())
	b.mustSignIn("ada@example.gov.uk")
	session := b.session()
	if a := b.get("/queue"); a.status != http.StatusOK {
		t.Fatalf("GET /queue: %d", a.status)
	}
	if _, _, err := h.srv.Auth.DisableUser(context.Background(), "ada@example.gov.uk"); err != nil {
		t.Fatal(err)
	}
	wantSignInRedirect(t, "GET /queue once disabled", b.get("/queue"), "/queue")
	if n := h.count(`SELECT count(*) FROM sessions WHERE token = ?`, session); n != 0 {
		t.Error("the disabled user's session is still stored")
	}
	if a := b.signIn("ada@example.gov.uk", webPassword); a.status != http.StatusUnauthorized {
		t.Errorf("a disabled user signs in: %d", a.status)
	}
}

// The queue shows the open cases of the adviser's teams, not another
// team's, with what the resident wrote escaped.
func TestUIQueueListsTeamCases(t *testing.T) {
	h := newHarness(t)
	h.webUser("ada@example.gov.uk", "adviser", "contact-centre")
	halID := h.webUser("hal@example.gov.uk", "adviser", "highways")
	post, caseID := h.mentionCase(alice, "My bin was not collected on Tuesday")
	// Her follow-up joins the case; the queue shows it, the latest.
	followUp := nextID()
	h.signed(mention(followUp, alice, `The bin <b>was</b> not "collected" & the lid is broken`, post))
	if got := h.waitCaseOf(followUp); got != caseID {
		t.Fatalf("the follow-up opened case %d, not %d", got, caseID)
	}
	ref := h.caseDetail(caseID).Reference

	ada := newBrowser(t, h.srv.URL())
	ada.mustSignIn("ada@example.gov.uk")
	a := ada.get("/queue")
	for _, want := range []string{
		fmt.Sprintf(`<a class="govuk-link" href="/cases/%s">%s</a>`, ref, ref),
		"The bin &lt;b&gt;was&lt;/b&gt; not &#34;collected&#34; &amp; the lid is broken",
		"@alice_resident", "Alice Example", "Public", "New",
	} {
		if !strings.Contains(a.body, want) {
			t.Errorf("the queue lacks %q:\n%s", want, a.body)
		}
	}
	if strings.Contains(a.body, "<b>was</b>") {
		t.Error("the resident's HTML is not escaped")
	}
	if strings.Contains(a.body, "on Tuesday") {
		t.Error("the queue shows the first message, not the latest")
	}
	// The filters, with their counts, narrow the list.
	link := fmt.Sprintf(`href="/cases/%s"`, ref)
	for q, want := range map[string]bool{
		"/queue?channel=x": true, "/queue?assigned=unassigned": true, "/queue?status=new": true,
		"/queue?assigned=mine": false, "/queue?status=awaiting_resident": false, "/queue?priority=urgent": false,
		"/queue?tag=no-such-tag": false, "/queue/table?channel=x": true,
	} {
		a := ada.get(q)
		if a.status != http.StatusOK || strings.Contains(a.body, link) != want {
			t.Errorf("GET %s: %d, lists the case: %v, want %v", q, a.status, !want, want)
		}
	}
	for _, want := range []string{"Unassigned (1)", "Assigned to me (0)", "New (1)", "X (1)", "Normal (1)"} {
		if !strings.Contains(a.body, want) {
			t.Errorf("the filters lack %q", want)
		}
	}
	if a := ada.get("/queue?team=no-such-team"); a.status != http.StatusNotFound {
		t.Errorf("a team that does not exist: %d", a.status)
	}
	hal := newBrowser(t, h.srv.URL())
	hal.mustSignIn("hal@example.gov.uk")
	if a := hal.get("/queue"); a.status != http.StatusOK || strings.Contains(a.body, ref) || !strings.Contains(a.body, "No cases match these filters in your teams.") {
		t.Errorf("another team's adviser sees the case (%d):\n%s", a.status, a.body)
	}
	// Nor can they open it: not found, as a case that does not exist, and
	// the attempt is audited.
	if a := hal.get("/cases/" + ref); a.status != http.StatusNotFound || strings.Contains(a.body, "Alice") {
		t.Errorf("another team's adviser opens the case page: %d\n%s", a.status, a.body)
	}
	if n := h.count(`SELECT count(*) FROM audit_events WHERE action = 'case.access_denied' AND case_id = ? AND user_id = ?`, caseID, halID); n != 1 {
		t.Errorf("%d audit entries for the refused case page, want 1", n)
	}
	for _, path := range []string{"/timeline", "/presence"} {
		if a := hal.get("/cases/" + ref + path); a.status != http.StatusNotFound {
			t.Errorf("another team's adviser reads %s: %d", path, a.status)
		}
	}
	if a := hal.get("/events?case=" + ref); a.status != http.StatusNotFound {
		t.Errorf("another team's adviser follows the case's events: %d", a.status)
	}
	halToken := hal.csrf("/queue")
	for _, form := range []string{"/replies", "/notes", "/status", "/tags", "/assignment", "/presence", "/measure"} {
		if a := hal.post("/cases/"+ref+form, url.Values{"csrf_token": {halToken}, "text": {"hello"}, "note": {"hello"},
			"status": {"resolved"}, "tags": {"x"}, "do": {"take"}, "state": {"viewing"}, "visibility": {"public"}}); a.status != http.StatusNotFound {
			t.Errorf("another team's adviser POSTs %s: %d, want 404", form, a.status)
		}
	}

	// The case page, for the team's adviser: the conversation escaped.
	a = ada.get("/cases/" + ref)
	if a.status != http.StatusOK || !strings.Contains(a.body, "<h1 class=\"govuk-heading-l app-case__title\">"+ref+"</h1>") ||
		!strings.Contains(a.body, "The bin &lt;b&gt;was&lt;/b&gt;") || strings.Contains(a.body, "<b>was</b>") {
		t.Errorf("the case page (%d):\n%s", a.status, a.body)
	}
	// Every form of the case page needs the session's token.
	for _, form := range []string{"/replies", "/notes", "/status", "/tags", "/assignment", "/presence", "/measure"} {
		if a := ada.post("/cases/"+ref+form, url.Values{"text": {"hi"}, "note": {"hi"}, "status": {"resolved"},
			"tags": {"x"}, "do": {"take"}, "state": {"viewing"}, "visibility": {"public"}}); a.status != http.StatusForbidden {
			t.Errorf("POST %s without a token: %d, want 403", form, a.status)
		}
	}
	if a := ada.post("/queue/next", nil); a.status != http.StatusForbidden {
		t.Errorf("POST /queue/next without a token: %d, want 403", a.status)
	}
	if n := h.count(`SELECT count(*) FROM messages WHERE case_id = ? AND direction <> 'inbound'`, caseID); n != 0 {
		t.Errorf("refused forms wrote %d messages", n)
	}
	if n := h.count(`SELECT count(*) FROM cases WHERE id = ? AND assignee_id IS NOT NULL`, caseID); n != 0 {
		t.Error("a refused form assigned the case")
	}
}

// The pages' assets come from the binary, signed out, and nothing else
// does: no listing of folders, no way out of the assets.
func TestUIAssetsServedFromBinary(t *testing.T) {
	h := newHarness(t)
	b := newBrowser(t, h.srv.URL())
	for path, contentType := range map[string]string{
		"/assets/lib/frontend.min.css":              "text/css",
		"/assets/lib/govuk-frontend.min.js":         "text/javascript",
		"/assets/lib/htmx.min.js":                   "text/javascript",
		"/assets/lib/htmx-ext-sse.min.js":           "text/javascript",
		"/assets/app.mjs":                           "text/javascript",
		"/assets/images/icon-close-cross-black.svg": "image/svg+xml",
	} {
		a := b.get(path)
		if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), contentType) || len(a.body) == 0 {
			t.Errorf("GET %s: %d %q", path, a.status, a.header.Get("Content-Type"))
		}
	}
	for _, path := range []string{"/assets/", "/assets/lib/", "/assets/../go.mod", "/assets/%2e%2e/embed.go", "/assets/images/govuk-crest.svg",
		"/assets/fonts/bold-b542beb274-v2.woff2"} {
		if a := b.get(path); a.status == http.StatusOK {
			t.Errorf("GET %s: 200\n%.300s", path, a.body)
		}
	}
}
