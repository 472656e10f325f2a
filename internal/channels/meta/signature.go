package meta

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// SignatureHeader is the request header in which Meta signs deliveries.
const SignatureHeader = "X-Hub-Signature-256"

const signaturePrefix = "sha256="

// ErrMalformedSignature is a signature header that cannot be Meta's:
// missing, without its sha256= prefix, or not the hex of a SHA-256 digest.
var ErrMalformedSignature = errors.New("meta: signature header is missing or malformed")

// ErrBadSignature is a well-formed signature that does not sign the body
// under the app secret.
var ErrBadSignature = errors.New("meta: signature does not match the body")

// Sign returns the signature Meta puts in SignatureHeader for body:
// "sha256=" and the hex of HMAC-SHA256(app secret, body).
func Sign(appSecret string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(digest(appSecret, body))
}

func digest(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

// ParseSignature checks the header's shape and returns its digest, from
// the header alone, so that a request that cannot be genuine is refused
// before its body is read.
func ParseSignature(header string) ([]byte, error) {
	encoded, ok := strings.CutPrefix(strings.TrimSpace(header), signaturePrefix)
	if !ok || len(encoded) != 2*sha256.Size {
		return nil, ErrMalformedSignature
	}
	got, err := hex.DecodeString(strings.ToLower(encoded))
	if err != nil {
		return nil, ErrMalformedSignature
	}
	return got, nil
}

// CheckSignature checks header against the raw body, exactly as received
// (Meta signs its compact JSON with \uXXXX escapes; re-serialising would
// break it), in constant time. An empty secret never verifies.
func CheckSignature(appSecret string, body []byte, header string) error {
	got, err := ParseSignature(header)
	if err != nil {
		return err
	}
	if appSecret == "" || !hmac.Equal(got, digest(appSecret, body)) {
		return ErrBadSignature
	}
	return nil
}
