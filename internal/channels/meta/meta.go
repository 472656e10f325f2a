// Package meta is the driver of Meta's networks: Facebook (Messenger and
// Page comments), Instagram (messages and comments) and WhatsApp Cloud.
// One Meta app delivers the webhooks of every Page, Instagram account and
// WhatsApp number it serves to one endpoint, /webhooks/meta/<app slug>;
// each update is routed to its channel account by the Page id, Instagram
// account id or WhatsApp phone number id it names.
//
// Here so far: the hub.challenge handshake, the X-Hub-Signature-256 check,
// the parsing of deliveries (WhatsApp statuses as delivery receipts for
// our messages, Page comment edits and removals as changes to the stored
// comment), and the Graph API client that sends replies
// (Messenger and Instagram messages, tagged HUMAN_AGENT when Meta says the
// 24-hour window has closed; public replies to comments; WhatsApp text
// quoting the message answered), split into numbered parts, with failures
// classified by Meta's error code; and the driver (settings, capabilities,
// one endpoint per app). The driver is not registered in cmd/inbox yet:
// WhatsApp templates, Instagram comment edits, private replies to
// comments, channel health and the simulator come first.
package meta

// Channels the driver serves.
const (
	Facebook  = "facebook"
	Instagram = "instagram"
	WhatsApp  = "whatsapp"
)
