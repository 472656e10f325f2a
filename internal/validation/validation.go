// Package validation is the one set-up of go-playground/validator that
// every surface shares (the REST API's requests, the configuration file),
// with the product's own rules registered once.
package validation

import (
	"reflect"
	"regexp"
	"strings"

	"github.com/go-playground/validator/v10"
)

// slugRe is what a team, account or endpoint slug looks like.
var slugRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// New returns a validator whose errors name fields as the given struct
// tags do (the first tag a field has wins: "json" then "query" for the
// API, "yaml" for the configuration), with the product's rules:
//
//	slug   lower-case letters, digits and dashes, at most 63
//	nonul  no NUL character (PostgreSQL cannot store one)
func New(tags ...string) *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		for _, tag := range tags {
			name := strings.SplitN(f.Tag.Get(tag), ",", 2)[0]
			if name == "-" {
				return ""
			}
			if name != "" {
				return name
			}
		}
		return f.Name
	})
	_ = v.RegisterValidation("slug", func(fl validator.FieldLevel) bool {
		return slugRe.MatchString(fl.Field().String())
	})
	_ = v.RegisterValidation("nonul", func(fl validator.FieldLevel) bool {
		return !strings.ContainsRune(fl.Field().String(), 0)
	})
	return v
}
