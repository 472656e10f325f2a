// Package api serves the REST API v1 under /api/v1. The contract is
// api/openapi.yaml; tests check real answers against it.
package api

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-playground/validator/v10"
	"github.com/labstack/echo/v4"

	apispec "github.com/citizeninbox/inbox/api"
	"github.com/citizeninbox/inbox/internal/auth"
	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/metrics"
)

type handlers struct {
	cases     *cases.Service
	rules     Rules
	auth      *auth.Service
	validator *validator.Validate
	metrics   *metrics.Metrics
	log       *slog.Logger
}

// Register adds the API's routes (routes.go) to e. Middleware is given per
// route, not to the group, so that a wrong method answers 405 rather than
// 404.
func Register(e *echo.Echo, cs *cases.Service, rules Rules, as *auth.Service, m *metrics.Metrics, log *slog.Logger) {
	h := &handlers{cases: cs, rules: rules, auth: as, validator: newValidator(), metrics: m, log: log}
	g := e.Group(Prefix)
	for _, r := range routes {
		mw := []echo.MiddlewareFunc{h.common}
		if !r.Access.Public {
			mw = append(mw, h.authorize(r.Access))
		}
		g.Add(r.Method, r.Path, func(c echo.Context) error { return r.handle(h, c) }, mw...)
	}
}

// common refuses a query string that cannot be decoded (rather than
// serving what echo could salvage of it), counts every API request by
// route template (never by raw path, which the caller chooses) and status,
// and keeps answers, which carry residents' messages, out of caches.
func (h *handlers) common(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
		var err error
		if _, qerr := url.ParseQuery(c.Request().URL.RawQuery); qerr != nil {
			err = &badRequest{detail: "the query string cannot be decoded: " + qerr.Error()}
		} else {
			err = next(c)
		}
		code := c.Response().Status
		if err != nil {
			code = problemFor(err).Status
		}
		h.metrics.APIRequests.WithLabelValues(c.Path(), strconv.Itoa(code)).Inc()
		return err
	}
}

const principalKey = "principal"

// authorize requires a valid bearer token whose user's role may do at
// least one of the route's actions (for a call on one case, the case
// service checks).
func (h *handlers) authorize(access Access) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			scheme, secret, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="citizen-inbox"`)
				return auth.ErrInvalidToken
			}
			p, err := h.auth.Authenticate(c.Request().Context(), strings.TrimSpace(secret))
			if err != nil {
				if errors.Is(err, auth.ErrInvalidToken) {
					c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="citizen-inbox", error="invalid_token"`)
				}
				return err
			}
			// A call on one case is left to the case service, which answers
			// another team's case as missing and audits every refusal.
			if !access.allows(p.Role) && !strings.Contains(c.Path(), ":case") {
				return cases.ErrForbidden
			}
			c.Set(principalKey, p)
			return next(c)
		}
	}
}

func actor(c echo.Context) cases.Actor {
	p, _ := c.Get(principalKey).(auth.Principal)
	return cases.Actor{UserID: p.UserID, TokenID: p.TokenID, Role: p.Role, TeamIDs: p.TeamIDs}
}

func (h *handlers) openapi(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", apispec.OpenAPI)
}

type listQuery struct {
	Status  string `query:"status" validate:"omitempty,oneof=new open awaiting_resident resolved closed"`
	Team    string `query:"team" validate:"omitempty,max=63,nonul"`
	Channel string `query:"channel" validate:"omitempty,oneof=x facebook instagram whatsapp telegram sms mastodon bluesky email"`
	Cursor  string `query:"cursor" validate:"omitempty,max=200"`
	Limit   string `query:"limit"`
}

func (h *handlers) listCases(c echo.Context) error {
	q := listQuery{
		Status:  c.QueryParam("status"),
		Team:    c.QueryParam("team"),
		Channel: c.QueryParam("channel"),
		Cursor:  c.QueryParam("cursor"),
		Limit:   c.QueryParam("limit"),
	}
	if err := h.validate(&q); err != nil {
		return err
	}
	limit := 50
	if q.Limit != "" {
		n, err := strconv.Atoi(q.Limit)
		if err != nil || n < 1 || n > 200 {
			return &validationError{fields: []FieldError{{Field: "limit", Message: "must be a whole number from 1 to 200"}}}
		}
		limit = n
	}
	page, err := h.cases.List(c.Request().Context(), actor(c), cases.Filter{
		Status: q.Status, Team: q.Team, Channel: q.Channel, Cursor: q.Cursor, Limit: limit,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

func (h *handlers) getCase(c echo.Context) error {
	d, err := h.cases.Get(c.Request().Context(), actor(c), c.Param("case"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

type replyRequest struct {
	// Text is required unless Template names one of the account's
	// approved templates, which goes with Parameters instead.
	Text       string   `json:"text" validate:"max=10000,nonul"`
	Visibility string   `json:"visibility" validate:"required,oneof=public private"`
	InReplyTo  int64    `json:"in_reply_to_message_id" validate:"omitempty,gt=0"`
	Template   string   `json:"template" validate:"omitempty,max=512,nonul"`
	Parameters []string `json:"parameters" validate:"omitempty,max=10,dive,max=1024,nonul"`
}

func (h *handlers) reply(c echo.Context) error {
	var req replyRequest
	if err := h.bindJSON(c, &req); err != nil {
		return err
	}
	switch {
	case req.Template == "" && strings.TrimSpace(req.Text) == "":
		return &validationError{fields: []FieldError{{Field: "text", Message: "is required"}}}
	case req.Template != "" && req.Text != "":
		return &validationError{fields: []FieldError{{Field: "text", Message: "must be empty when a template is sent"}}}
	case req.Template == "" && len(req.Parameters) > 0:
		return &validationError{fields: []FieldError{{Field: "parameters", Message: "are a template's, and no template is named"}}}
	}
	key := c.Request().Header.Get("Idempotency-Key")
	if len(key) > 200 {
		return &validationError{fields: []FieldError{{Field: "Idempotency-Key", Message: "must be at most 200 characters"}}}
	}
	msg, err := h.cases.Reply(c.Request().Context(), actor(c), c.Param("case"), cases.ReplyInput{
		Text: strings.TrimSpace(req.Text), Visibility: channels.Visibility(req.Visibility), IdempotencyKey: key,
		InReplyTo: req.InReplyTo, Template: req.Template, Parameters: req.Parameters,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, msg)
}

type measureRequest struct {
	Text       string `json:"text" validate:"max=10000,nonul"`
	Visibility string `json:"visibility" validate:"required,oneof=public private"`
}

// measureReply measures a reply's text as the case's channel would carry
// it, without sending anything or recording a consultation.
func (h *handlers) measureReply(c echo.Context) error {
	var req measureRequest
	if err := h.bindJSON(c, &req); err != nil {
		return err
	}
	located, err := h.cases.VisibleFor(c.Request().Context(), actor(c), c.Param("case"), cases.ActReply)
	if err != nil {
		return err
	}
	m, err := h.cases.MeasureReply(located.ChannelAccount, channels.Visibility(req.Visibility), req.Text)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, m)
}

type noteRequest struct {
	Text string `json:"text" validate:"required,max=10000,nonul"`
}

func (h *handlers) addNote(c echo.Context) error {
	var req noteRequest
	if err := h.bindJSON(c, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Text) == "" {
		return &validationError{fields: []FieldError{{Field: "text", Message: "is required"}}}
	}
	msg, err := h.cases.AddNote(c.Request().Context(), actor(c), c.Param("case"), strings.TrimSpace(req.Text))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, msg)
}

type statusRequest struct {
	Status string `json:"status" validate:"required,oneof=new open awaiting_resident resolved closed"`
}

func (h *handlers) setStatus(c echo.Context) error {
	var req statusRequest
	if err := h.bindJSON(c, &req); err != nil {
		return err
	}
	d, err := h.cases.SetStatus(c.Request().Context(), actor(c), c.Param("case"), req.Status)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

type priorityRequest struct {
	Priority string `json:"priority" validate:"required,oneof=low normal high urgent"`
}

func (h *handlers) setPriority(c echo.Context) error {
	var req priorityRequest
	if err := h.bindJSON(c, &req); err != nil {
		return err
	}
	d, err := h.cases.SetPriority(c.Request().Context(), actor(c), c.Param("case"), req.Priority)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

// Rules is the routing and SLA configuration in force, as the API shows
// it: what the configuration file says, after a reload the new file's.
type Rules interface {
	Routing() any
	SLA() any
	// ChannelAccounts lists the configured channel accounts and their
	// health.
	ChannelAccounts(ctx context.Context) (any, error)
}

func (h *handlers) getRouting(c echo.Context) error { return c.JSON(http.StatusOK, h.rules.Routing()) }

func (h *handlers) getSLA(c echo.Context) error { return c.JSON(http.StatusOK, h.rules.SLA()) }

func (h *handlers) listChannelAccounts(c echo.Context) error {
	accounts, err := h.rules.ChannelAccounts(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"channel_accounts": accounts})
}

type assignmentRequest struct {
	AssigneeID *int64 `json:"assignee_id" validate:"omitempty,gt=0,excluded_with=Unassign"`
	Unassign   bool   `json:"unassign"`
	Team       string `json:"team" validate:"omitempty,max=63,nonul"`
}

func (h *handlers) assign(c echo.Context) error {
	var req assignmentRequest
	if err := h.bindJSON(c, &req); err != nil {
		return err
	}
	if req.AssigneeID == nil && !req.Unassign && req.Team == "" {
		return &validationError{fields: []FieldError{{Field: "assignee_id", Message: "give assignee_id, unassign or team"}}}
	}
	d, err := h.cases.Assign(c.Request().Context(), actor(c), c.Param("case"), cases.Assignment{
		AssigneeID: req.AssigneeID, Unassign: req.Unassign, Team: req.Team,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

type nextRequest struct {
	Team string `json:"team" validate:"omitempty,max=63,nonul"`
}

// claimNext assigns the caller the most urgent unassigned case of their
// teams, or of the one team given in the body or the query (`team`). The
// body is optional: none means every team of the caller's.
func (h *handlers) claimNext(c echo.Context) error {
	var req nextRequest
	body := bufio.NewReader(c.Request().Body)
	if _, err := body.Peek(1); err != io.EOF {
		c.Request().Body = struct {
			io.Reader
			io.Closer
		}{body, c.Request().Body}
		if err := h.bindJSON(c, &req); err != nil {
			return err
		}
	}
	if q := c.QueryParam("team"); q != "" {
		if req.Team != "" && req.Team != q {
			return &validationError{fields: []FieldError{{Field: "team", Message: "give the team once: in the body or in the query"}}}
		}
		req.Team = q
		if err := h.validate(&req); err != nil {
			return err
		}
	}
	claimed, err := h.cases.Next(c.Request().Context(), actor(c), req.Team)
	if err != nil {
		return err
	}
	d, err := h.cases.Get(c.Request().Context(), actor(c), claimed.Reference)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, Prefix+"/cases/"+url.PathEscape(d.Reference))
	return c.JSON(http.StatusOK, d)
}
