// Package networks is the list of the networks the inbox serves: one line
// per network's driver. cmd/inbox serves them, and the tests that load the
// example configuration read it with the same list.
package networks

import (
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/bluesky"
	"github.com/citizeninbox/inbox/internal/channels/email"
	"github.com/citizeninbox/inbox/internal/channels/mastodon"
	"github.com/citizeninbox/inbox/internal/channels/meta"
	"github.com/citizeninbox/inbox/internal/channels/telegram"
	"github.com/citizeninbox/inbox/internal/channels/twilio"
	"github.com/citizeninbox/inbox/internal/channels/x"
)

// Registry is the registry of every network's driver.
func Registry() (*channels.Registry, error) {
	return channels.NewRegistry(
		x.Driver{},
		meta.Driver{},
		twilio.Driver{},
		telegram.Driver{},
		bluesky.Driver{},
		mastodon.Driver{},
		email.Driver{},
	)
}
