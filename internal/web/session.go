package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/citizeninbox/inbox/internal/auth"
)

// Session keys.
const (
	sessionUser = "user_id"
	sessionCSRF = "csrf"
)

// CSRF token: a random value kept in the session (so every server process
// knows it), sent back by forms in a field and by htmx in a header.
const (
	csrfField  = "csrf_token"
	csrfHeader = "X-CSRF-Token"
)

var errBadToken = errors.New("the CSRF token is missing or wrong")

// csrfToken returns the session's CSRF token, making one (and so a
// session) when there is none yet.
func (u *UI) csrfToken(ctx context.Context) string {
	if t := u.sessions.GetString(ctx, sessionCSRF); t != "" {
		return t
	}
	t := newToken()
	u.sessions.Put(ctx, sessionCSRF, t)
	return t
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails: crypto/rand panics instead
	return base64.RawURLEncoding.EncodeToString(b)
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// sameOrigin refuses a state-changing request a browser says came from
// another site (Sec-Fetch-Site, or Origin against Host): net/http's
// CrossOriginProtection. The token check follows it for browsers that
// send neither.
func (u *UI) sameOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := u.origin.Check(c.Request()); err != nil {
			return errBadToken
		}
		return next(c)
	}
}

// checkCSRF requires a state-changing request to carry the session's CSRF
// token, in the csrf_token field of a form or the X-CSRF-Token header.
func (u *UI) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if !unsafeMethod(req.Method) {
			return next(c)
		}
		want := u.sessions.GetString(req.Context(), sessionCSRF)
		got := req.Header.Get(csrfHeader)
		if got == "" {
			got = c.FormValue(csrfField)
		}
		if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return errBadToken
		}
		return next(c)
	}
}

// home sends a signed-in user to the queue and anyone else to sign-in.
func (u *UI) home(r *request) error {
	if id := u.sessions.GetInt64(r.ctx(), sessionUser); id != 0 {
		if _, err := u.users.User(r.ctx(), id); err == nil {
			return r.Redirect(http.StatusSeeOther, "/queue")
		}
	}
	return r.Redirect(http.StatusSeeOther, "/sign-in")
}

// signInForm is the sign-in page's state.
type signInForm struct {
	Email string
	Next  string
	// Errors in page order, for the error summary; the field ones also
	// show beside their field.
	Errors        []fieldError
	EmailError    string
	PasswordError string
}

type fieldError struct{ Field, Text string }

// Messages of the sign-in page. The same one answers a wrong password and
// an unknown email.
const (
	msgNoEmail     = "Enter your email address"
	msgNoPassword  = "Enter your password"
	msgWrong       = "The email address or password is not right"
	msgTooMany     = "There have been too many attempts to sign in. Wait 15 minutes, then try again"
	signInTemplate = "sign-in.html"
)

func (u *UI) signInPage(r *request) error {
	next := safeNext(r.QueryParam("next"))
	if id := u.sessions.GetInt64(r.ctx(), sessionUser); id != 0 {
		if _, err := u.users.User(r.ctx(), id); err == nil {
			return r.Redirect(http.StatusSeeOther, next)
		}
	}
	return u.render(r, http.StatusOK, signInTemplate, page{Title: "Sign in", Data: signInForm{Next: next}})
}

func (u *UI) signIn(r *request) error {
	ctx := r.ctx()
	f := signInForm{Email: strings.TrimSpace(r.FormValue("email")), Next: safeNext(r.FormValue("next"))}
	password := r.FormValue("password")
	if f.Email == "" {
		f.EmailError = msgNoEmail
		f.Errors = append(f.Errors, fieldError{"email", msgNoEmail})
	}
	if password == "" {
		f.PasswordError = msgNoPassword
		f.Errors = append(f.Errors, fieldError{"password", msgNoPassword})
	}
	status := http.StatusUnprocessableEntity
	if len(f.Errors) == 0 {
		p, err := u.users.SignIn(ctx, f.Email, password, r.RealIP())
		switch {
		case err == nil:
			// A new session id at sign-in, so one planted before it
			// (session fixation) is worth nothing; a new CSRF token too.
			if err := u.sessions.RenewToken(ctx); err != nil {
				return err
			}
			u.sessions.Put(ctx, sessionUser, p.UserID)
			u.sessions.Put(ctx, sessionCSRF, newToken())
			return r.Redirect(http.StatusSeeOther, f.Next)
		case errors.Is(err, auth.ErrSignInFailed):
			status = http.StatusUnauthorized
			f.EmailError = msgWrong
			f.Errors = append(f.Errors, fieldError{"email", msgWrong})
		case errors.Is(err, auth.ErrTooManyAttempts):
			status = http.StatusTooManyRequests
			r.Response().Header().Set("Retry-After", "900")
			f.EmailError = msgTooMany
			f.Errors = append(f.Errors, fieldError{"email", msgTooMany})
		default:
			return err
		}
	}
	return u.render(r, status, signInTemplate, page{Title: "Sign in", Error: true, Data: f})
}

// signOut ends the session everywhere: it is deleted from the store.
func (u *UI) signOut(r *request) error {
	if err := u.sessions.Destroy(r.ctx()); err != nil {
		return err
	}
	return r.Redirect(http.StatusSeeOther, "/sign-in")
}
