// Package x is the adapter for X (formerly Twitter). It verifies and parses
// the webhook deliveries of both the Account Activity API and the X Activity
// API into channels.Inbound messages, measures and splits reply text the way
// X counts it, and posts public replies and direct messages through the X
// API v2. It knows X and nothing of the database or the bus.
package x

// Channel is the channel name carried by every message of this adapter.
const Channel = "x"

// Account is the council's own presence on X.
type Account struct {
	// Slug names the channel account in the inbox.
	Slug string
	// UserID is the account's numeric X user id. Posts and direct messages
	// written by this user are the council's own and are never ingested.
	UserID string
}
