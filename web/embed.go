// Package web embeds the server-rendered UI: templates and static assets.
package web

import "embed"

// Templates holds the HTML templates, parsed once at start-up.
//
//go:embed templates/*.html
var Templates embed.FS

// Static holds the stylesheets, scripts, fonts and images the pages use,
// served under /assets/: the vendored GOV.UK Frontend, MOJ Frontend and
// htmx (see refresh-assets.sh) and the product's own app.css and app.mjs.
//
//go:embed static
var Static embed.FS
