// Package twilio is the driver of SMS through Twilio. Each SMS account is
// one Twilio phone number, with its own webhook, /webhooks/twilio/<account
// slug>, set in Twilio as the number's messaging webhook; the same address
// receives the status callbacks of the messages the account sends.
//
// The driver verifies X-Twilio-Signature over the account's public webhook
// URL and the form's parameters, reads residents' texts (threaded by their
// number and ours, deduplicated on MessageSid) and status callbacks
// (delivery receipts for our messages, never cases), answers Twilio with
// an empty TwiML document, and sends replies through the Messages REST API
// with a status callback, one message of at most the account's
// max_segments segments, counted as GSM 03.38 or UCS-2 encodes the text.
// twiliofake is its fake Messages API and simulation.
package twilio

// Names of the driver and of the one channel it serves.
const (
	DriverName = "twilio"
	Channel    = "sms"
)
