// Package web embeds the server-rendered UI: templates and static assets.
package web

import "embed"

// Templates holds the HTML templates, parsed once at start-up.
//
//go:embed templates/*.html
var Templates embed.FS
