// Package web serves the server-rendered pages.
package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"

	"github.com/labstack/echo/v4"

	assets "github.com/citizeninbox/inbox/web"
)

// Pages renders the server's HTML pages.
type Pages struct {
	tmpl *template.Template
}

// New parses the templates; a missing or broken template fails start-up.
//
// The pages are public and given no configuration: nothing on them may
// name a channel account, a webhook address or a credential.
func New() (*Pages, error) {
	tmpl, err := template.ParseFS(assets.Templates, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if tmpl.Lookup("index.html") == nil {
		return nil, fmt.Errorf("templates: index.html is missing")
	}
	return &Pages{tmpl: tmpl}, nil
}

// Register adds the page routes. They show no configuration and no
// resident data, so they need no sign-in.
func (p *Pages) Register(e *echo.Echo) {
	e.GET("/", p.home)
}

func (p *Pages) home(c echo.Context) error {
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, "index.html", nil); err != nil {
		return err
	}
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}
