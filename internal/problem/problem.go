// Package problem is the one error document every HTTP surface answers
// with (RFC 9457): the REST API and the webhooks alike.
package problem

import "net/http"

// Problem is the JSON body of every error answer.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError names one invalid field of a request, by its JSON name.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// New is the problem of the given status, with a type naming the kind of
// problem and a detail for people.
func New(status int, typ, detail string) Problem {
	return Problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: detail}
}
