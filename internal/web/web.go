// Package web serves the advisers' pages: sign-in and the queue, rendered
// on the server from web/templates and styled with the vendored GOV.UK and
// MOJ Frontend. Browser sessions live in PostgreSQL (scs), so every server
// process knows every session; forms and htmx requests carry a CSRF token
// kept in the session.
package web

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	_ "time/tzdata" // the pages show times in Europe/London wherever the server runs

	"github.com/alexedwards/scs/postgresstore"
	"github.com/alexedwards/scs/v2"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/citizeninbox/inbox/internal/auth"
	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/reports"
	assets "github.com/citizeninbox/inbox/web"
)

// Users signs people in and says who a session's user is now.
type Users interface {
	SignIn(ctx context.Context, email, password, address string) (auth.Principal, error)
	User(ctx context.Context, id int64) (auth.Principal, error)
	// Seen records that the user has a page open now (advisers online).
	Seen(ctx context.Context, id int64) error
}

// Cases is the case service as the pages use it.
type Cases interface {
	Queue(ctx context.Context, actor cases.Actor, f cases.QueueFilter) (cases.QueuePage, error)
	Next(ctx context.Context, actor cases.Actor, team string) (cases.Claimed, error)
	Get(ctx context.Context, actor cases.Actor, ref string) (cases.Detail, error)
	Visible(ctx context.Context, actor cases.Actor, ref string) (cases.Located, error)
	VisibleFor(ctx context.Context, actor cases.Actor, ref string, act cases.Action) (cases.Located, error)
	ResidentOf(ctx context.Context, actor cases.Actor, ref string) (cases.Resident, error)
	Reply(ctx context.Context, actor cases.Actor, ref string, in cases.ReplyInput) (cases.Message, error)
	AddNote(ctx context.Context, actor cases.Actor, ref, text string) (cases.Message, error)
	SetStatus(ctx context.Context, actor cases.Actor, ref, status string) (cases.Detail, error)
	SetTags(ctx context.Context, actor cases.Actor, ref string, tags []string) (cases.Detail, error)
	Assign(ctx context.Context, actor cases.Actor, ref string, a cases.Assignment) (cases.Detail, error)
	TeamMembers(ctx context.Context, actor cases.Actor, team string) ([]cases.Member, error)
	Teams(ctx context.Context) ([]cases.TeamRef, error)
	TeamSlugsOf(ctx context.Context, actor cases.Actor) ([]string, error)
	UserNames(ctx context.Context, ids []int64) (map[int64]string, error)
	CannedFor(team string) []cases.Canned
	Templates(account string) []channels.Template
	MeasureReply(account string, vis channels.Visibility, text string) (channels.Measurement, error)
	ReplyVisibilities(account string) []channels.Visibility
	WindowCloses(ctx context.Context, caseID int64, account string, vis channels.Visibility) (*time.Time, error)
	Export(ctx context.Context, actor cases.Actor, req cases.ExportRequest, w io.Writer) (int64, error)
}

// Reports reads the supervisors' figures.
type Reports interface {
	// Live is the live figures at now of the teams given (every team
	// when nil, none when empty).
	Live(ctx context.Context, teams []int64, now time.Time) (reports.Live, error)
	// Compute is the response-times report's figures (reports.Compute).
	Compute(ctx context.Context, f reports.Filter, now time.Time, loc *time.Location) (reports.Figures, error)
	// Choices are the teams, channel accounts, services and advisers of
	// the teams given (every team when nil), for a report's filters.
	Choices(ctx context.Context, teams []int64) (ReportChoices, error)
}

// Options are what the UI is built from.
type Options struct {
	Users   Users
	Cases   Cases
	Reports Reports
	// Bus carries live updates (the CASE_EVENTS stream) and presence.
	Bus *bus.Bus
	// DB holds the sessions table.
	DB *sql.DB
	// PublicURL is the address browsers use; https makes the session
	// cookie Secure (and __Host- prefixed).
	PublicURL string
	Log       *slog.Logger
	// IdleTimeout ends a session nobody used for that long; Lifetime ends
	// any session that long after sign-in. Zero takes the defaults: an
	// hour idle, twelve hours in all (a shift).
	IdleTimeout time.Duration
	Lifetime    time.Duration
}

// UI is the web pages.
type UI struct {
	users    Users
	cases    Cases
	reports  Reports
	log      *slog.Logger
	pages    map[string]*template.Template
	sessions *scs.SessionManager
	store    *postgresstore.PostgresStore
	origin   *http.CrossOriginProtection
	zone     *time.Location
	bus      *bus.Bus
	presence jetstream.KeyValue
	// streams ends the live-update streams when the server shuts down,
	// which would otherwise wait for them.
	streams     context.Context
	stopStreams context.CancelFunc
}

// pageNames are the templates in web/templates besides layout.html; each
// is parsed with the layout once, at start-up.
var pageNames = []string{"sign-in.html", "queue.html", "case.html", "dashboard.html", "response-times.html", "monthly.html", "error.html"}

// New parses the templates (a missing or broken one fails start-up),
// opens the session store and the presence bucket (within ctx). Close
// stops the store's clean-up.
func New(ctx context.Context, o Options) (*UI, error) {
	pages, err := parseTemplates(assets.Templates)
	if err != nil {
		return nil, err
	}
	public, err := url.Parse(o.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("public URL: %w", err)
	}
	zone, err := time.LoadLocation("Europe/London")
	if err != nil {
		return nil, err
	}
	u := &UI{users: o.Users, cases: o.Cases, reports: o.Reports, log: o.Log, pages: pages, origin: http.NewCrossOriginProtection(), zone: zone, bus: o.Bus}
	u.streams, u.stopStreams = context.WithCancel(context.WithoutCancel(ctx))
	if o.Bus != nil {
		if u.presence, err = o.Bus.PresenceBucket(ctx); err != nil {
			return nil, err
		}
	}

	// Sessions: in PostgreSQL, renewed at sign-in, ended by sign-out,
	// idle and absolute expiry.
	u.store = postgresstore.NewWithCleanupInterval(o.DB, 10*time.Minute)
	sm := scs.New()
	sm.Store = u.store
	sm.IdleTimeout = orDefault(o.IdleTimeout, time.Hour)
	sm.Lifetime = orDefault(o.Lifetime, 12*time.Hour)
	sm.Cookie.Name = "inbox_session"
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Path = "/"
	sm.Cookie.Persist = false
	if public.Scheme == "https" {
		sm.Cookie.Secure = true
		sm.Cookie.Name = "__Host-inbox_session"
	}
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		u.log.ErrorContext(r.Context(), "session store", "method", r.Method, "path", r.URL.Path, "err", err)
		http.Error(w, "Sorry, there is a problem with the service. Try again later.", http.StatusInternalServerError)
	}
	u.sessions = sm
	return u, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func parseTemplates(fsys fs.FS) (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(fsys, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.Must(layout.Clone()).ParseFS(fsys, "templates/"+name)
		if err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		if t.Lookup("main") == nil {
			return nil, fmt.Errorf("templates: %s defines no \"main\"", name)
		}
		pages[name] = t
	}
	return pages, nil
}

// Close stops the session store's clean-up of expired sessions.
func (u *UI) Close() {
	u.stopStreams()
	u.store.StopCleanup()
}

// EndStreams ends every live-update stream, as the server begins to shut
// down: the pages reconnect, to another replica or to this one when it is
// back, and miss nothing.
func (u *UI) EndStreams() { u.stopStreams() }

// Register adds the pages (routes.go) and the static assets to e.
// Middleware is given per route so that a wrong method answers 405.
func (u *UI) Register(e *echo.Echo) {
	static := echo.MustSubFS(assets.Static, "static")
	e.GET("/assets/*", echo.StaticDirectoryHandler(static, false), func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set(echo.HeaderCacheControl, "public, max-age=3600")
			return next(c)
		}
	})
	sessions := echo.WrapMiddleware(u.sessions.LoadAndSave)
	for _, r := range routes {
		mw := []echo.MiddlewareFunc{middleware.BodyLimit("16K"), sessions, u.pageErrors, u.sameOrigin, u.checkCSRF}
		if !r.Access.Public {
			mw = append(mw, u.authorize(r.Access))
		}
		e.Add(r.Method, r.Path, func(c echo.Context) error { return r.handle(u, u.request(c)) }, mw...)
	}
}

// request is one page request: its echo context and, once authorised,
// the signed-in user.
type request struct {
	echo.Context
	user *auth.Principal
}

const userKey = "web.user"

func (u *UI) request(c echo.Context) *request {
	p, _ := c.Get(userKey).(*auth.Principal)
	return &request{Context: c, user: p}
}

func (r *request) ctx() context.Context { return r.Request().Context() }

// actor is who the case service sees acting: the signed-in user, with the
// teams they belong to now.
func (r *request) actor() cases.Actor {
	return cases.Actor{UserID: r.user.UserID, Role: r.user.Role, TeamIDs: r.user.TeamIDs}
}

// page is what every template gets.
type page struct {
	Title string
	// Error prefixes the title with "Error: " when a form has errors.
	Error bool
	User  *auth.Principal
	CSRF  string
	// Nav is the primary navigation item of the page.
	Nav string
	// Flash is what the previous form did ("Reply queued for sending."),
	// shown once.
	Flash string
	// Live is the address of the page's live updates (server-sent
	// events); empty for pages that have none.
	Live string
	// OwnNews is a page whose script writes the live region itself (the
	// dashboard says which figure changed), so the stream's announcements
	// (new cases) are not put there.
	OwnNews bool
	Data    any
}

// render writes the named page with status.
func (u *UI) render(r *request, status int, name string, p page) error {
	t, ok := u.pages[name]
	if !ok {
		return fmt.Errorf("no template %s", name)
	}
	p.User = r.user
	p.CSRF = u.csrfToken(r.ctx())
	if r.user != nil {
		p.Flash = u.sessions.PopString(r.ctx(), sessionFlash)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", p); err != nil {
		return err
	}
	return r.HTMLBlob(status, buf.Bytes())
}

// pageErrors answers a handler's error with an HTML page, logging the
// unexpected ones once.
func (u *UI) pageErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
		err := next(c)
		if err == nil || c.Response().Committed {
			return err
		}
		status, title, text := http.StatusInternalServerError, "Sorry, there is a problem with the service", "Try again later."
		var herr *echo.HTTPError
		switch {
		case errors.Is(err, cases.ErrNotFound):
			status, title, text = http.StatusNotFound, "Page not found", "If you typed the web address, check it is correct."
		case errors.Is(err, cases.ErrForbidden), errors.Is(err, errForbiddenPage):
			status, title, text = http.StatusForbidden, "You cannot see this page", "Your role does not allow it. Ask a supervisor if you need it."
		case errors.Is(err, errBadToken):
			status, title, text = http.StatusForbidden, "This form has expired", "Go back, reload the page and try again."
		case errors.As(err, &herr) && herr.Code < 500:
			status, title, text = herr.Code, http.StatusText(herr.Code), ""
		default:
			u.log.ErrorContext(c.Request().Context(), "page failed", "method", c.Request().Method, "path", c.Path(), "err", err)
		}
		return u.render(u.request(c), status, "error.html", page{Title: title, Data: text})
	}
}

var errForbiddenPage = errors.New("the role may not see this page")

// authorize requires a signed-in user whose role may see the page. A
// signed-out request is sent to sign-in, with the page to come back to;
// a session whose user was disabled or removed is ended.
func (u *UI) authorize(access Access) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			ctx := c.Request().Context()
			id := u.sessions.GetInt64(ctx, sessionUser)
			if id == 0 {
				return u.toSignIn(c)
			}
			p, err := u.users.User(ctx, id)
			if errors.Is(err, auth.ErrNoSuchUser) {
				if err := u.sessions.Destroy(ctx); err != nil {
					return err
				}
				return u.toSignIn(c)
			}
			if err != nil {
				return err
			}
			if !access.allows(p.Role) {
				return errForbiddenPage
			}
			if err := u.users.Seen(ctx, p.UserID); err != nil {
				u.log.Debug("web: presence not recorded", "err", err)
			}
			c.Set(userKey, &p)
			return next(c)
		}
	}
}

// toSignIn sends a signed-out request to the sign-in page. A page read
// comes back to where it was after signing in; htmx is told to load the
// sign-in page instead of swapping it into the page.
func (u *UI) toSignIn(c echo.Context) error {
	target := "/sign-in"
	req := c.Request()
	if req.Method == http.MethodGet && req.URL.Path != "/" {
		target += "?next=" + url.QueryEscape(req.URL.RequestURI())
	}
	if req.Header.Get("HX-Request") == "true" {
		c.Response().Header().Set("HX-Redirect", target)
		return c.NoContent(http.StatusUnauthorized)
	}
	return c.Redirect(http.StatusSeeOther, target)
}

// safeNext is where to go after signing in: a path on this server, never
// another site ("//evil.example", "https://…", "/\evil.example"), and the
// queue when there is none.
func safeNext(next string) string {
	const fallback = "/queue"
	if next == "" || len(next) > 2000 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.ContainsAny(next, "\\\x00\r\n\t ") {
		return fallback
	}
	p, err := url.Parse(next)
	if err != nil || p.Scheme != "" || p.Host != "" || p.User != nil || !strings.HasPrefix(p.Path, "/") ||
		strings.HasPrefix(p.Path, "//") || p.Path == "/sign-in" || p.Path == "/sign-out" {
		return fallback
	}
	return p.RequestURI()
}

// renderFragment writes one template of a page, without the layout, for
// htmx to swap into the page.
func (u *UI) renderFragment(r *request, pageName, block string, data any) error {
	t, ok := u.pages[pageName]
	if !ok {
		return fmt.Errorf("no template %s", pageName)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, block, data); err != nil {
		return err
	}
	return r.HTMLBlob(http.StatusOK, buf.Bytes())
}

const echoContentType = echo.HeaderContentType

func echoNotFound() error   { return echo.NewHTTPError(http.StatusNotFound) }
func echoBadRequest() error { return echo.NewHTTPError(http.StatusBadRequest) }
