package twilio

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Account is what parsing needs of the channel account a webhook serves.
type Account struct {
	Slug string
	// AccountSID is the Twilio account; Number the account's own number
	// in E.164 (+447700900002).
	AccountSID string
	Number     string
}

// Ignored counts, by kind, what a delivery carried that makes no message:
// "status" (a status callback for a step that is no receipt: queued,
// sending, accepted…), "account" (another Twilio account or number than
// the account's), "unsupported" (a post that is neither a message nor a
// status callback, or a WhatsApp message through Twilio).
type Ignored map[string]int

// maxMedia bounds the MediaUrlN read from one MMS (Twilio sends at most 10).
const maxMedia = 10

// ErrNoID is a message or status callback without its MessageSid or its
// resident's number.
var ErrNoID = errors.New("twilio: the post has no MessageSid, From or To")

// Parse reads a verified, form-encoded post of Twilio's: a resident's SMS
// (or MMS, its media as links) into one private Inbound, threaded by the
// resident's number and ours and deduplicated on MessageSid; a status
// callback into a receipt for our message MessageSid (sent, delivered,
// failed with Twilio's error code), never a case. What makes neither is
// counted in Ignored. Verify the signature first.
func Parse(body []byte, acct Account, receivedAt time.Time) ([]channels.Inbound, Ignored, error) {
	params, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, nil, fmt.Errorf("twilio: the post is not form-encoded: %w", err)
	}
	return parseParams(params, acct, receivedAt)
}

func parseParams(p url.Values, acct Account, receivedAt time.Time) ([]channels.Inbound, Ignored, error) {
	ig := Ignored{}
	if sid := p.Get("AccountSid"); sid != "" && acct.AccountSID != "" && sid != acct.AccountSID {
		ig["account"]++
		return nil, ig, nil
	}
	status := p.Get("MessageStatus")
	if status == "" && p.Get("SmsStatus") != "" && p.Get("SmsStatus") != "received" {
		status = p.Get("SmsStatus")
	}
	switch {
	case status != "":
		in, kind, err := receipt(p, status, acct, receivedAt)
		if err != nil || kind != "" {
			if kind != "" {
				ig[kind]++
			}
			return nil, ig, err
		}
		return []channels.Inbound{in}, ig, nil
	case p.Has("MessageSid") || p.Has("SmsMessageSid") || p.Has("Body"):
		in, kind, err := message(p, acct, receivedAt)
		if err != nil || kind != "" {
			if kind != "" {
				ig[kind]++
			}
			return nil, ig, err
		}
		return []channels.Inbound{in}, ig, nil
	}
	ig["unsupported"]++
	return nil, ig, nil
}

// messageSID is the message's id: MessageSid, or the older names that
// repeat it.
func messageSID(p url.Values) string {
	for _, k := range []string{"MessageSid", "SmsMessageSid", "SmsSid"} {
		if v := p.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// message reads a resident's text to the account's number.
func message(p url.Values, acct Account, receivedAt time.Time) (channels.Inbound, string, error) {
	from, to := p.Get("From"), p.Get("To")
	if strings.HasPrefix(from, "whatsapp:") || strings.HasPrefix(to, "whatsapp:") {
		return channels.Inbound{}, "unsupported", nil
	}
	sid := messageSID(p)
	if sid == "" || from == "" || to == "" {
		return channels.Inbound{}, "", ErrNoID
	}
	if acct.Number != "" && to != acct.Number {
		return channels.Inbound{}, "account", nil
	}
	text := p.Get("Body")
	media, _ := strconv.Atoi(p.Get("NumMedia"))
	for i := range min(max(media, 0), maxMedia) {
		u := p.Get(fmt.Sprintf("MediaUrl%d", i))
		if u == "" {
			continue
		}
		kind := p.Get(fmt.Sprintf("MediaContentType%d", i))
		if kind == "" {
			kind = "media"
		}
		text = joinLine(text, "["+kind+"] "+u)
	}
	return channels.Inbound{
		Channel: Channel, Account: acct.Slug, DedupeKey: Channel + ":" + sid, ExternalID: sid,
		Visibility: channels.Private, Text: text,
		Author: channels.Identity{ExternalID: from, Handle: from},
		// Our number: the thread is (From, To), To being the account.
		ConversationID: to,
		SentAt:         receivedAt, ReceivedAt: receivedAt, Raw: raw(p),
	}, "", nil
}

// receipts maps Twilio's message statuses to receipt statuses; the others
// (queued, sending, accepted, scheduled, canceled, receiving, received)
// are steps before the network has the message, or not ours.
var receipts = map[string]string{
	"sent": "sent", "delivered": "delivered", "read": "read", "undelivered": "failed", "failed": "failed",
}

// receipt reads a status callback for a message the account sent.
func receipt(p url.Values, status string, acct Account, receivedAt time.Time) (channels.Inbound, string, error) {
	st, ok := receipts[status]
	if !ok {
		return channels.Inbound{}, "status", nil
	}
	sid, to := messageSID(p), p.Get("To")
	if sid == "" || to == "" {
		return channels.Inbound{}, "", ErrNoID
	}
	if from := p.Get("From"); acct.Number != "" && from != "" && from != acct.Number {
		return channels.Inbound{}, "account", nil
	}
	r := &channels.Receipt{Status: st}
	if st == "failed" {
		r.Error = failure(status, p.Get("ErrorCode"), p.Get("ErrorMessage"))
	}
	return channels.Inbound{
		Channel: Channel, Account: acct.Slug, DedupeKey: Channel + ":status:" + sid + ":" + status, ExternalID: sid,
		Visibility: channels.Private, Author: channels.Identity{ExternalID: to},
		SentAt: receivedAt, ReceivedAt: receivedAt, Receipt: r, Raw: raw(p),
	}, "", nil
}

// deliveryErrors explain the error codes of status callbacks advisers
// meet most.
var deliveryErrors = map[string]string{
	"30003": "the phone is switched off or out of coverage",
	"30004": "the recipient's network blocked the message",
	"30005": "the number is unknown or no longer in service",
	"30006": "the number is a landline or its network cannot take SMS",
	"30007": "the carrier filtered the message as spam",
	"30008": "unknown error from the recipient's network",
	"21610": "the resident has opted out of messages from this number (STOP)",
}

// failure is the reason of a failed or undelivered message.
func failure(status, code, message string) string {
	reason := "Twilio: " + status
	if code != "" {
		reason += ", error " + code
		if why, ok := deliveryErrors[code]; ok {
			reason += ": " + why
		} else if message != "" {
			reason += ": " + message
		}
	}
	return reason
}

// raw keeps the post's parameters as JSON, with the message.
func raw(p url.Values) json.RawMessage {
	flat := make(map[string]any, len(p))
	for k, v := range p {
		if len(v) == 1 {
			flat[k] = v[0]
		} else {
			flat[k] = v
		}
	}
	b, _ := json.Marshal(flat)
	return b
}

func joinLine(a, b string) string {
	if a == "" {
		return b
	}
	return a + "\n" + b
}
