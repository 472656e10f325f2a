package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/citizeninbox/inbox/internal/auth"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/meta"
	"github.com/citizeninbox/inbox/internal/channels/meta/metafake"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/testenv"
)

// chromium is Debian's package; .ci/run installs it when it is missing.
const chromium = "/usr/bin/chromium"

// browser is the one Chromium of this test package, started by TestMain.
var browser context.Context

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "inbox-chromium-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1280, 900),
	)
	var cancelBrowser context.CancelFunc
	browser, cancelBrowser = chromedp.NewContext(alloc)
	stop := func() {
		cancelBrowser()
		cancelAlloc()
		_ = os.RemoveAll(dir)
	}
	// Start it now, so a missing Chromium fails here, once, by name.
	if err := chromedp.Do(browser); err != nil {
		stop()
		fmt.Fprintf(os.Stderr, "FAIL: start %s (install Debian's chromium package): %v\n", chromium, err)
		os.Exit(1)
	}
	// Chromium stops when the tests are over, whether they passed or not.
	testenv.AfterAll(stop)
	testenv.Main(m)
}

const (
	metaToken   = "test-graph-token"
	metaSecret  = "test-meta-app-secret"
	metaNumber  = "106000000000001"
	councilID   = "1500000000000000001"
	consumerKey = "test-consumer-secret"
	password    = "correct horse battery staple"
	email       = "ada@example.gov.uk"
)

// xss is what a resident might write to attack the advisers' browsers.
const xss = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">`

// site is a whole server on real PostgreSQL and NATS, with the X API
// faked, for the browser.
type site struct {
	t   *testing.T
	srv *server.Server
	x   *xfake.Server
	// meta fakes the Graph API of the site's WhatsApp number.
	meta *metafake.Server
	// opts started srv; replica starts more servers with them.
	opts server.Options
}

func startSite(t *testing.T) *site {
	t.Helper()
	fakeX := xfake.New()
	fake := httptest.NewServer(fakeX)
	t.Cleanup(fake.Close)
	fakeMeta := metafake.New(metaToken)
	graph := httptest.NewServer(fakeMeta)
	t.Cleanup(graph.Close)
	drivers, err := channels.NewRegistry(x.Driver{}, meta.Driver{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := server.Options{
		Env: config.Env{
			DatabaseURL: testenv.Database(t), NATSURL: testenv.NATSURL(),
			HTTPAddr: "127.0.0.1:0", OpsAddr: "127.0.0.1:0", PublicURL: "http://127.0.0.1", LogLevel: "warn",
		},
		File: &config.File{
			Teams: []config.Team{{Slug: "contact-centre", Name: "Contact centre"}},
			ChannelAccounts: []config.ChannelAccount{{
				Slug: "council-x", Channel: "x", Name: "Council on X", Team: "contact-centre", APIBaseURL: fake.URL,
				Settings: x.Settings{UserID: councilID, ConsumerSecret: consumerKey, AccessToken: "test-access-token"},
			}, {
				Slug: "council-whatsapp", Channel: "whatsapp", Name: "Council on WhatsApp", Team: "contact-centre", APIBaseURL: graph.URL,
				Settings: meta.Settings{App: "council-meta", AppSecret: metaSecret, VerifyToken: "verify", AccessToken: metaToken,
					PhoneNumberID: metaNumber, Templates: []meta.TemplateSettings{{Name: "case_update", Language: "en_GB",
						Body: "Hello {{1}}, there is news on your case {{2}}: reply to this message to hear it."}}},
			}},
		},
		Drivers:       drivers,
		Log:           slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Names:         testenv.Namespace(t),
		RelayInterval: 50 * time.Millisecond,
	}
	srv := startServer(t, opts)
	if _, err := srv.Auth.CreateUser(ctx, auth.NewUser{Email: email, Name: "Ada Adviser", Role: "adviser",
		Teams: []string{"contact-centre"}, Password: password}); err != nil {
		t.Fatal(err)
	}
	return &site{t: t, srv: srv, x: fakeX, meta: fakeMeta, opts: opts}
}

// startServer starts a server, shut down when the test ends.
func startServer(t *testing.T, opts server.Options) *server.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv
}

// replica starts another server on the site's database and NATS
// namespace, listening on addr ("127.0.0.1:0" for any port).
func (s *site) replica(addr string) *server.Server {
	s.t.Helper()
	opts := s.opts
	opts.Env.HTTPAddr, opts.Env.OpsAddr = addr, "127.0.0.1:0"
	return startServer(s.t, opts)
}

var postID atomic.Int64

// mention has a resident post to the council on X, through the signed
// webhook, and waits for its case; it returns the case's reference.
func (s *site) mention(handle, name, text string) string {
	s.t.Helper()
	ref, _ := s.post(resident(handle, name), text, "")
	return ref
}

// resident is a resident on X with an id of their own.
func resident(handle, name string) xfake.User {
	return xfake.User{ID: fmt.Sprint(2200000000000000000 + postID.Add(1)), Handle: handle, Name: name}
}

// post has the resident post to the council (in reply to a post, when
// inReplyTo is set) and waits for the case it goes to; it returns the
// case's reference and the post's id.
func (s *site) post(from xfake.User, text, inReplyTo string) (string, string) {
	s.t.Helper()
	id := fmt.Sprint(1700000000000000000 + postID.Add(1))
	body := xfake.Mention(xfake.User{ID: councilID, Handle: "ExampleCouncil", Name: "Example Council"}, id,
		from, text, inReplyTo, time.Now())
	return s.deliver("/webhooks/x/council-x", "x-twitter-webhooks-signature", x.Sign(consumerKey, body), body, id), id
}

// deliver posts a signed webhook delivery and waits for the case the
// message id goes to; it returns the case's reference.
func (s *site) deliver(path, header, signature string, body []byte, id string) string {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL()+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(header, signature)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("webhook answered %d", resp.StatusCode)
	}
	var ref string
	deadline := time.Now().Add(20 * time.Second)
	for ref == "" {
		if time.Now().After(deadline) {
			s.t.Fatalf("no case for message %s", id)
		}
		time.Sleep(20 * time.Millisecond)
		s.srv.DB.Raw(`SELECT c.reference FROM messages m JOIN cases c ON c.id = m.case_id WHERE m.external_id = ?`, id).Scan(&ref)
	}
	return ref
}

// tab opens a new tab of the package's Chromium for the test.
func tab(t *testing.T, opts ...chromedp.ContextOption) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, opts...)
	t.Cleanup(cancel)
	// The tab opens on its first run, which must not carry the timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}

// do runs the steps in the tab, failing the test at the first error.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// read runs an action that reads something from the tab.
func read[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// axeTags are the WCAG 2.2 AA rules axe-core checks.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"}

type violation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// checkAccessible runs axe-core, from the committed axe.min.js, on the
// page the tab shows and fails the test for every violation.
func checkAccessible(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "axe.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	tags, _ := json.Marshal(axeTags)
	read(t, ctx, "load axe-core", chromedp.Evaluate[bool](string(src)+";\ntypeof axe === 'object'"))
	raw := read(t, ctx, "axe-core on "+page, chromedp.Evaluate[string](`axe.run(document, {runOnly: {type: "tag", values: `+string(tags)+`}}).then(r => JSON.stringify({
			passes: r.passes.length,
			violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}))
		}))`, chromedp.EvalAwaitPromise))
	var res struct {
		Passes     int         `json:"passes"`
		Violations []violation `json:"violations"`
	}
	if err := json.Unmarshal([]byte(raw), &res); err != nil {
		t.Fatalf("axe-core's answer %q: %v", raw, err)
	}
	if res.Passes == 0 {
		t.Errorf("axe-core checked nothing on %s", page)
	}
	for _, v := range res.Violations {
		t.Errorf("%s: %s (%s, %s) at %s", page, v.Help, v.ID, v.Impact, strings.Join(v.Nodes, "; "))
	}
}

// screenshot saves the tab's page as web/screenshots/<name>.png for the
// README when INBOX_SCREENSHOTS is set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("INBOX_SCREENSHOTS") == "" {
		return
	}
	png := read(t, ctx, "screenshot", chromedp.FullScreenshot(100))
	dir := filepath.Join("..", "..", "web", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// An adviser signs in and sees the queue with a resident's case; what the
// resident wrote is shown as text and runs nothing; sign-in (with and
// without an error) and the queue have no WCAG 2.2 AA violations.
func TestBrowserSignInAndQueue(t *testing.T) {
	s := startSite(t)
	ref := s.mention("alice_resident", "Alice Example", xss)
	ctx := tab(t)
	base := s.srv.URL()

	// Signed out, the queue sends the adviser to sign in.
	do(t, ctx, "open the queue signed out", chromedp.Navigate(base+"/queue"), chromedp.WaitVisible(chromedp.CSS("h1")))
	h1 := read(t, ctx, "heading", chromedp.Text(chromedp.CSS("h1")))
	location := read(t, ctx, "location", chromedp.Location())
	if h1 != "Sign in" || location != base+"/sign-in?next=%2Fqueue" {
		t.Fatalf("signed out, /queue shows %q at %s", h1, location)
	}
	checkAccessible(t, ctx, "sign-in")
	screenshot(t, ctx, "sign-in")

	// The form sent empty: the error summary, which takes the focus.
	do(t, ctx, "sign in with nothing entered",
		chromedp.Click(`//button[normalize-space()="Sign in"]`),
		chromedp.WaitVisible(chromedp.CSS(".govuk-error-summary")),
	)
	read(t, ctx, "focus on the error summary",
		chromedp.Poll[bool](`document.activeElement && document.activeElement.classList.contains("govuk-error-summary") || undefined`))
	if title := read(t, ctx, "title", chromedp.Title()); !strings.HasPrefix(title, "Error: Sign in") {
		t.Errorf("title with errors %q", title)
	}
	checkAccessible(t, ctx, "sign-in with errors")

	// Signing in by the labels a person reads.
	do(t, ctx, "sign in",
		chromedp.SendKeys(`//label[normalize-space()="Email address"]/following::input[1]`, email),
		chromedp.SendKeys(`//label[normalize-space()="Password"]/following::input[1]`, password),
		chromedp.Click(`//button[normalize-space()="Sign in"]`),
		chromedp.WaitVisible(`//h1[normalize-space()="Queue"]`),
	)
	if location := read(t, ctx, "location", chromedp.Location()); location != base+"/queue" {
		t.Errorf("after sign-in at %s", location)
	}

	do(t, ctx, "the case in the queue", chromedp.WaitVisible(`//a[normalize-space()="`+ref+`"]`),
		chromedp.WaitVisible(`//button[normalize-space()="Sign out"]`))
	if user := read(t, ctx, "user", chromedp.Text(chromedp.CSS(".app-header__user"))); user != "Ada Adviser" {
		t.Errorf("header names %q", user)
	}
	if excerpt := read(t, ctx, "excerpt", chromedp.Text(chromedp.CSS(".app-queue__excerpt"))); strings.TrimSpace(excerpt) != xss {
		t.Errorf("the resident's message shows as %q, want the text %q", excerpt, xss)
	}
	pwned := read(t, ctx, "window.__pwned", chromedp.Evaluate[bool](`window.__pwned !== undefined`))
	injected := read(t, ctx, "injected elements", chromedp.Evaluate[int](`document.querySelectorAll("main script, main img").length`))
	if pwned || injected != 0 {
		t.Errorf("the resident's HTML ran or was rendered: script ran %v, %d elements injected", pwned, injected)
	}
	checkAccessible(t, ctx, "queue")
	screenshot(t, ctx, "queue")

	// Signing out ends the session: the queue asks for sign-in again.
	do(t, ctx, "sign out",
		chromedp.Click(`//button[normalize-space()="Sign out"]`),
		chromedp.WaitVisible(`//h1[normalize-space()="Sign in"]`),
		chromedp.Navigate(base+"/queue"),
		chromedp.WaitVisible(chromedp.CSS("h1")),
	)
	if h1 := read(t, ctx, "heading", chromedp.Text(chromedp.CSS("h1"))); h1 != "Sign in" {
		t.Errorf("after sign-out, /queue shows %q", h1)
	}
}
