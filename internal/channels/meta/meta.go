// Package meta is the driver of Meta's networks: Facebook (Messenger and
// Page comments), Instagram (messages and comments) and WhatsApp Cloud.
// One Meta app delivers the webhooks of every Page, Instagram account and
// WhatsApp number it serves to one endpoint, /webhooks/meta/<app slug>;
// each update is routed to its channel account by the Page id, Instagram
// account id or WhatsApp phone number id it names.
//
// The driver reads deliveries (Messenger and Instagram messages, Page and
// Instagram comments, WhatsApp messages; WhatsApp statuses as delivery
// receipts for our messages; Page comment edits and removals as changes
// to the stored comment) and sends replies through the Graph API
// (Messenger and Instagram messages, tagged HUMAN_AGENT when Meta says the
// 24-hour window has closed; the one private reply to a comment; public
// replies to comments; WhatsApp text quoting the message answered, and
// approved templates), split into numbered parts, with failures
// classified by Meta's error code. metafake is its fake Graph API and
// simulation.
package meta

// Channels the driver serves.
const (
	Facebook  = "facebook"
	Instagram = "instagram"
	WhatsApp  = "whatsapp"
)
