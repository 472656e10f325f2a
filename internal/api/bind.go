package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"
	"github.com/labstack/echo/v4"

	"github.com/citizeninbox/inbox/internal/validation"
)

// maxRequestBytes caps a JSON request body.
const maxRequestBytes = 1 << 20

func newValidator() *validator.Validate { return validation.New("json", "query") }

// bindJSON decodes a JSON body strictly (unknown fields are an error) and
// validates it.
func (h *handlers) bindJSON(c echo.Context, dst any) error {
	ct, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if ct != echo.MIMEApplicationJSON {
		return echo.NewHTTPError(415, "send the body as application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "the request body is larger than 1 MiB")
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field == "" {
			return &badRequest{detail: "the request body must be a JSON object"}
		}
		if errors.As(err, &typeErr) {
			return &validationError{fields: []FieldError{{Field: typeErr.Field, Message: fmt.Sprintf("must be a %s", typeErr.Type)}}}
		}
		if errors.Is(err, io.EOF) {
			return &badRequest{detail: "the request body is empty"}
		}
		return &badRequest{detail: "the request body is not valid JSON: " + err.Error()}
	}
	if dec.More() {
		return &badRequest{detail: "the request body holds more than one JSON value"}
	}
	return h.validate(dst)
}

func (h *handlers) validate(dst any) error {
	err := h.validator.Struct(dst)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return err
	}
	fields := make([]FieldError, 0, len(verrs))
	for _, fe := range verrs {
		fields = append(fields, FieldError{Field: fe.Field(), Message: message(fe)})
	}
	return &validationError{fields: fields}
}

func message(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "oneof":
		return "must be one of: " + strings.ReplaceAll(fe.Param(), " ", ", ")
	case "max":
		if fe.Kind() == reflect.String {
			return "must be at most " + fe.Param() + " characters"
		}
		return "must be at most " + fe.Param()
	case "min":
		return "must be at least " + fe.Param()
	case "gt":
		return "must be greater than " + fe.Param()
	case "nonul":
		return "must not contain NUL characters"
	case "excluded_with":
		return "cannot be used with " + strings.ToLower(fe.Param())
	}
	return "fails " + fe.Tag()
}
