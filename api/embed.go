// Package api embeds the REST API contract, api/openapi.yaml, which the
// server serves at /api/v1/openapi.yaml and the tests check answers against.
package api

import _ "embed"

// OpenAPI is the OpenAPI 3 document of the REST API v1.
//
//go:embed openapi.yaml
var OpenAPI []byte
