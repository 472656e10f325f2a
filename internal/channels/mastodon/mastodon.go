// Package mastodon is the driver of a council's Mastodon account.
// Mastodon has no per-account webhooks, so the account's mentions are
// polled from its notifications (GET /api/v1/notifications, mentions
// only), from the cursor the poll runner commits with the messages they
// made: the id of the newest notification taken. Ids are numeric strings
// compared as numbers, and each poll asks for the page just after the
// cursor (min_id), so a backlog is worked through page by page, oldest
// first, never skipped.
//
// A mention in a status of visibility direct is a private message; any
// other mention is public. Statuses are HTML: their content is turned
// into plain text. A status's dedupe key is its id, and it threads by the
// status it answers (in_reply_to_id).
//
// Replies go out with POST /api/v1/statuses in reply to the resident's
// status, starting with the resident's @acct (which, for a direct status,
// is what addresses it): public replies with the visibility the resident
// used, private ones with visibility direct. Each part carries an
// Idempotency-Key made of the reply's message id and the part's index, so
// a retried send never posts twice. The instance's character limit is
// read from GET /api/v2/instance (configuration.statuses.max_characters)
// on the first send and kept; longer replies are a thread of numbered
// parts, each answering the one before. A 429 waits until
// X-RateLimit-Reset; a refused token (401, 403) marks the account
// unhealthy. mastodonfake is its fake API and simulation.
package mastodon

// Channel is the channel the driver serves.
const Channel = "mastodon"

// DefaultMaxCharacters is a status's limit when the instance does not say
// (Mastodon's own default).
const DefaultMaxCharacters = 500
