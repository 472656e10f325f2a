package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
	"unicode/utf16"
)

// SignatureHeader is the request header in which Twilio signs webhooks.
const SignatureHeader = "X-Twilio-Signature"

// ErrMalformedSignature is a signature header that cannot be Twilio's:
// missing, or not the base64 of an HMAC-SHA1 digest.
var ErrMalformedSignature = errors.New("twilio: X-Twilio-Signature is missing or malformed")

// ErrBadSignature is a well-formed signature that does not sign the
// request under the account's auth token.
var ErrBadSignature = errors.New("twilio: X-Twilio-Signature does not match the URL and parameters")

// Sign returns what Twilio puts in SignatureHeader for a POST of params to
// webhookURL: the base64 of HMAC-SHA1(auth token, the URL exactly as
// configured in Twilio, query string included, followed by each parameter
// name and value, by name in order). A name with several values is
// followed by each distinct value, in order, as Twilio's helper libraries
// compute it. Names and values are ordered by UTF-16 code units, as the
// helper library's JavaScript sort does (the same as byte order for the
// ASCII names Twilio sends).
func Sign(authToken, webhookURL string, params url.Values) string {
	return base64.StdEncoding.EncodeToString(digest(authToken, webhookURL, params))
}

func digest(authToken, webhookURL string, params url.Values) []byte {
	m := hmac.New(sha1.New, []byte(authToken))
	m.Write([]byte(webhookURL))
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	slices.SortFunc(names, compareUTF16)
	for _, name := range names {
		values := slices.Clone(params[name])
		slices.SortFunc(values, compareUTF16)
		for _, v := range slices.Compact(values) {
			m.Write([]byte(name))
			m.Write([]byte(v))
		}
	}
	return m.Sum(nil)
}

// compareUTF16 orders strings by their UTF-16 code units, as JavaScript's
// default sort does: it differs from byte order only where a character
// beyond U+FFFF meets one between U+E000 and U+FFFF.
func compareUTF16(a, b string) int {
	if isASCII(a) && isASCII(b) {
		return strings.Compare(a, b)
	}
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// ParseSignature checks the header's shape and returns its digest, from
// the header alone, so that a request that cannot be genuine is refused
// before its body is read.
func ParseSignature(header string) ([]byte, error) {
	// Strict: a last character whose unused bits are set is another
	// string than Twilio's, which the helper libraries refuse too.
	got, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(header))
	if err != nil || len(got) != sha1.Size {
		return nil, ErrMalformedSignature
	}
	return got, nil
}

// CheckSignature checks header against a POST of params to webhookURL, in
// constant time. Like Twilio's helper libraries, it accepts the URL with
// or without the scheme's default port (Twilio signs the URL as
// configured, which a proxy may have changed). An empty auth token or URL
// never verifies.
func CheckSignature(authToken, webhookURL string, params url.Values, header string) error {
	got, err := ParseSignature(header)
	if err != nil {
		return err
	}
	if authToken == "" || webhookURL == "" {
		return ErrBadSignature
	}
	ok := false
	for _, u := range portVariants(webhookURL) {
		// Every variant is computed, so the time taken does not say which
		// one matched.
		if hmac.Equal(got, digest(authToken, u, params)) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// portVariants are the URL without its port and with the scheme's default
// port (":443" for https, ":80" otherwise) when it names none.
func portVariants(raw string) []string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return []string{raw}
	}
	authority, path := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	userinfo, host := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, host = authority[:i+1], authority[i+1:]
	}
	port := ""
	if i := strings.Index(host[strings.LastIndex(host, "]")+1:], ":"); i >= 0 {
		at := strings.LastIndex(host, "]") + 1 + i
		host, port = host[:at], host[at:]
	}
	without := scheme + "://" + userinfo + host + path
	if port != "" {
		return []string{without, raw}
	}
	def := ":80"
	if strings.EqualFold(scheme, "https") {
		def = ":443"
	}
	return []string{without, scheme + "://" + userinfo + host + def + path}
}
