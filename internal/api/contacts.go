package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/citizeninbox/inbox/internal/cases"
)

// pathID reads a positive id from the path; anything else names nothing,
// so it is notFound.
func pathID(c echo.Context, name string, notFound error) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, notFound
	}
	return id, nil
}

func (h *handlers) getContact(c echo.Context) error {
	id, err := pathID(c, "contact", cases.ErrContactNotFound)
	if err != nil {
		return err
	}
	d, err := h.cases.Contact(c.Request().Context(), actor(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

type linkRequest struct {
	IdentityID int64 `json:"identity_id" validate:"required,gt=0"`
}

// linkIdentity moves an identity, with its cases, into the contact. The
// body is read first, so a body that cannot be read is refused before any
// contact is looked up.
func (h *handlers) linkIdentity(c echo.Context) error {
	var req linkRequest
	if err := h.bindJSON(c, &req); err != nil {
		return err
	}
	id, err := pathID(c, "contact", cases.ErrContactNotFound)
	if err != nil {
		return err
	}
	d, err := h.cases.LinkIdentity(c.Request().Context(), actor(c), id, req.IdentityID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

// unlinkIdentity moves an identity out of the contact into a new one of
// its own, and answers with the new contact.
func (h *handlers) unlinkIdentity(c echo.Context) error {
	id, err := pathID(c, "contact", cases.ErrContactNotFound)
	if err != nil {
		return err
	}
	identity, err := pathID(c, "identity", cases.ErrIdentityNotFound)
	if err != nil {
		return err
	}
	d, err := h.cases.UnlinkIdentity(c.Request().Context(), actor(c), id, identity)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, Prefix+"/contacts/"+strconv.FormatInt(d.ID, 10))
	return c.JSON(http.StatusOK, d)
}

func (h *handlers) contactSuggestions(c echo.Context) error {
	id, err := pathID(c, "contact", cases.ErrContactNotFound)
	if err != nil {
		return err
	}
	s, err := h.cases.Suggestions(c.Request().Context(), actor(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"suggestions": s})
}
