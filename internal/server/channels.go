package server

import (
	"errors"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/ingest"
)

// openChannels opens the configured channel accounts with their drivers.
func openChannels(drivers *channels.Registry, f *config.File, deps channels.Deps) (*channels.Accounts, error) {
	if drivers == nil {
		return nil, errors.New("server: no channel drivers registered")
	}
	return drivers.Open(f.AccountConfigs(), deps)
}

// webhookEndpoints are the drivers' webhook endpoints, as ingest serves
// them at /webhooks/<driver>/<endpoint slug>.
func webhookEndpoints(accts *channels.Accounts) []ingest.Endpoint {
	eps := make([]ingest.Endpoint, 0, len(accts.Endpoints()))
	for _, e := range accts.Endpoints() {
		eps = append(eps, ingest.Endpoint{Driver: e.Driver, Slug: e.Slug, Webhook: e.Webhook})
	}
	return eps
}
