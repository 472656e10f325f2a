// Package web serves the server-rendered pages.
package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/citizeninbox/inbox/internal/config"
	assets "github.com/citizeninbox/inbox/web"
)

// Pages renders the server's HTML pages.
type Pages struct {
	tmpl  *template.Template
	index indexData
}

type indexData struct {
	PublicURL string
	Accounts  []config.ChannelAccount
}

// New parses the templates; a missing or broken template fails start-up.
func New(f *config.File, publicURL string) (*Pages, error) {
	tmpl, err := template.ParseFS(assets.Templates, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if tmpl.Lookup("index.html") == nil {
		return nil, fmt.Errorf("templates: index.html is missing")
	}
	return &Pages{tmpl: tmpl, index: indexData{PublicURL: publicURL, Accounts: f.ChannelAccounts}}, nil
}

// Register adds the page routes. They show configuration only, no resident
// data, so they need no sign-in.
func (p *Pages) Register(e *echo.Echo) {
	e.GET("/", p.home)
}

func (p *Pages) home(c echo.Context) error {
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, "index.html", p.index); err != nil {
		return err
	}
	return c.HTMLBlob(http.StatusOK, buf.Bytes())
}
