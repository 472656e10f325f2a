// Package migrations embeds the numbered SQL migrations of the schema. They
// are applied at start-up and by `inbox migrate`.
package migrations

import "embed"

// FS holds the *.sql migration files.
//
//go:embed *.sql
var FS embed.FS
