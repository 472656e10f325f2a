package api

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/citizeninbox/inbox/internal/auth"
	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/problem"
	"github.com/citizeninbox/inbox/internal/store"
)

// Problem and FieldError are the problem document every surface shares.
type (
	Problem    = problem.Problem
	FieldError = problem.FieldError
)

// validationError carries field errors to the error handler.
type validationError struct{ fields []FieldError }

func (e *validationError) Error() string { return "request is not valid" }

// badRequest is a request the server could not read at all.
type badRequest struct{ detail string }

func (e *badRequest) Error() string { return e.detail }

// ErrorHandler maps domain errors to status codes and problem bodies.
// Unknown errors become 500 and are logged once.
func ErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		p := problemFor(err)
		switch p.Status {
		case http.StatusInternalServerError:
			log.ErrorContext(c.Request().Context(), "request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
		case http.StatusServiceUnavailable:
			log.WarnContext(c.Request().Context(), "request failed: database unavailable", "method", c.Request().Method, "path", c.Path(), "err", err)
			c.Response().Header().Set("Retry-After", "5")
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(p.Status)
			return
		}
		_ = c.JSON(p.Status, p)
	}
}

func problemFor(err error) Problem {
	var (
		verr *validationError
		berr *badRequest
		herr *echo.HTTPError
	)
	mk := problem.New
	switch {
	case errors.As(err, &verr):
		p := mk(http.StatusUnprocessableEntity, "validation", "the request has invalid fields")
		p.Errors = verr.fields
		return p
	case errors.As(err, &berr):
		return mk(http.StatusBadRequest, "bad_request", berr.detail)
	case errors.Is(err, auth.ErrInvalidToken):
		return mk(http.StatusUnauthorized, "unauthorized", "a valid API token is required")
	case errors.Is(err, cases.ErrForbidden):
		return mk(http.StatusForbidden, "forbidden", err.Error())
	case errors.Is(err, cases.ErrNotFound):
		return mk(http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, cases.ErrContactNotFound), errors.Is(err, cases.ErrIdentityNotFound):
		return mk(http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, cases.ErrOnlyIdentity):
		p := mk(http.StatusConflict, "only_identity", err.Error())
		p.Title = "Only identity"
		return p
	case errors.Is(err, cases.ErrBadCursor):
		return mk(http.StatusBadRequest, "bad_cursor", err.Error())
	case errors.Is(err, cases.ErrClosed), errors.Is(err, cases.ErrStatusUnchanged), errors.Is(err, cases.ErrPriorityUnchanged), errors.Is(err, cases.ErrIdempotencyKeyReused),
		errors.Is(err, cases.ErrInvalidTransition):
		return mk(http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, cases.ErrNothingToClaim):
		p := mk(http.StatusConflict, "nothing_to_claim", "No unassigned case is waiting in your teams.")
		p.Title = "Nothing to claim"
		return p
	case errors.Is(err, cases.ErrAtCapacity):
		p := mk(http.StatusConflict, "at_capacity", "You already hold your team's cap of open cases; resolve or give back one before claiming another.")
		p.Title = "At capacity"
		return p
	case errors.Is(err, cases.ErrWindowClosed):
		p := mk(http.StatusConflict, "window_closed", err.Error())
		p.Title = "Messaging window closed"
		return p
	case errors.Is(err, cases.ErrPrivateReplyUsed):
		p := mk(http.StatusConflict, "private_reply_used", err.Error())
		p.Title = "Private reply already sent"
		return p
	case errors.Is(err, cases.ErrReplyTarget):
		p := mk(http.StatusUnprocessableEntity, "unprocessable", err.Error())
		p.Errors = []FieldError{{Field: "in_reply_to_message_id", Message: err.Error()}}
		return p
	case errors.Is(err, cases.ErrUnknownTemplate), errors.Is(err, cases.ErrTemplateNotPrivate):
		p := mk(http.StatusUnprocessableEntity, "unprocessable", err.Error())
		p.Errors = []FieldError{{Field: "template", Message: err.Error()}}
		return p
	case errors.Is(err, cases.ErrTemplateParameters):
		p := mk(http.StatusUnprocessableEntity, "unprocessable", err.Error())
		p.Errors = []FieldError{{Field: "parameters", Message: err.Error()}}
		return p
	case errors.Is(err, channels.ErrTooLong):
		p := mk(http.StatusUnprocessableEntity, "too_long", err.Error())
		p.Errors = []FieldError{{Field: "text", Message: err.Error()}}
		return p
	case errors.Is(err, channels.ErrVisibilityNotSupported):
		p := mk(http.StatusUnprocessableEntity, "unprocessable", err.Error())
		p.Errors = []FieldError{{Field: "visibility", Message: "the channel cannot carry a reply of this visibility"}}
		return p
	case errors.Is(err, cases.ErrUnknownAccountSlug):
		p := mk(http.StatusUnprocessableEntity, "unprocessable", err.Error())
		p.Errors = []FieldError{{Field: "account", Message: err.Error()}}
		return p
	case errors.Is(err, cases.ErrUnknownAccount), errors.Is(err, channels.ErrUnknownAccount):
		return mk(http.StatusUnprocessableEntity, "unprocessable",
			"the case's channel account is not configured on this server, so a reply cannot be measured here")
	case errors.Is(err, cases.ErrNoPublicThread), errors.Is(err, cases.ErrNoResident),
		errors.Is(err, cases.ErrUnknownAssignee), errors.Is(err, cases.ErrUnknownTeam),
		errors.Is(err, cases.ErrAssigneeNotInTeam), errors.Is(err, cases.ErrEmptyNote), errors.Is(err, cases.ErrEmptyReply),
		errors.Is(err, cases.ErrInvalidStatus), errors.Is(err, cases.ErrInvalidPriority):
		return mk(http.StatusUnprocessableEntity, "unprocessable", err.Error())
	case store.IsUnavailable(err):
		return mk(http.StatusServiceUnavailable, "unavailable", "the database is unavailable; try again shortly")
	case errors.As(err, &herr):
		detail := http.StatusText(herr.Code)
		if s, ok := herr.Message.(string); ok {
			detail = s
		}
		return mk(herr.Code, "http", detail)
	}
	return mk(http.StatusInternalServerError, "internal", "something went wrong on our side")
}
