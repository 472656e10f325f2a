package twiliofake

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/citizeninbox/inbox/internal/channels/twilio"
)

// Posts Twilio makes to a number's webhook, for tests, benchmarks and the
// network simulator.

// Inbound is a resident's SMS from their number to the council's, as
// Twilio posts it to the number's messaging webhook.
func Inbound(accountSID, sid, from, to, body string) url.Values {
	return url.Values{
		"MessageSid": {sid}, "SmsMessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {accountSID},
		"From": {from}, "To": {to}, "Body": {body}, "NumMedia": {"0"},
		"NumSegments": {"1"}, "SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"},
		"FromCountry": {"GB"}, "ToCountry": {"GB"},
	}
}

// Status is Twilio's status callback for a message the council sent
// (from its number to the resident's), with errorCode for undelivered
// and failed.
func Status(accountSID, sid, status, from, to, errorCode string) url.Values {
	p := url.Values{
		"MessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {accountSID}, "MessageStatus": {status}, "SmsStatus": {status},
		"From": {from}, "To": {to}, "ApiVersion": {"2010-04-01"},
	}
	if errorCode != "" {
		p.Set("ErrorCode", errorCode)
	}
	return p
}

// Post builds Twilio's POST of params to webhookURL, signed with the auth
// token over webhookURL as Twilio signs it: the URL it calls.
func Post(webhookURL, authToken string, params url.Values) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, webhookURL, strings.NewReader(params.Encode()))
	if err != nil {
		return nil, err
	}
	Sign(req, authToken, params)
	return req, nil
}

// Sign sets the content type and signature Twilio sends with a post of
// params to req's URL.
func Sign(req *http.Request, authToken string, params url.Values) {
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	req.Header.Set(twilio.SignatureHeader, twilio.Sign(authToken, req.URL.String(), params))
}
