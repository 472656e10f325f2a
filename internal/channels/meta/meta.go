// Package meta is the driver of Meta's networks: Facebook (Messenger and
// Page comments), Instagram (messages and comments) and WhatsApp Cloud.
// One Meta app delivers the webhooks of every Page, Instagram account and
// WhatsApp number it serves to one endpoint, /webhooks/meta/<app slug>;
// each update is routed to its channel account by the Page id, Instagram
// account id or WhatsApp phone number id it names.
//
// This file set is the inbound side: the hub.challenge handshake, the
// X-Hub-Signature-256 check and the parsing of deliveries. The driver is
// not registered yet: sending, messaging windows and channel health come
// with it.
package meta

// Channels the driver serves.
const (
	Facebook  = "facebook"
	Instagram = "instagram"
	WhatsApp  = "whatsapp"
)
