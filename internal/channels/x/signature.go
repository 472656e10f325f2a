package x

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// SignatureHeader is the request header in which X signs webhook deliveries.
const SignatureHeader = "X-Twitter-Webhooks-Signature"

// signaturePrefix precedes the base64 digest in signatures and CRC answers.
const signaturePrefix = "sha256="

// Sign returns the signature X puts in SignatureHeader for body: "sha256="
// followed by the standard base64 encoding of HMAC-SHA256(secret, body).
// The secret is the app's consumer secret.
func Sign(secret string, body []byte) string {
	return signaturePrefix + base64.StdEncoding.EncodeToString(digest(secret, body))
}

// Verify reports whether header is a valid signature of body under secret.
// It must be called on the raw request body, before any parsing. An empty
// secret, an empty or malformed header all give false. The comparison runs
// in constant time.
func Verify(secret string, body []byte, header string) bool {
	if secret == "" {
		return false
	}
	encoded, ok := strings.CutPrefix(strings.TrimSpace(header), signaturePrefix)
	if !ok || encoded == "" {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	return hmac.Equal(got, digest(secret, body))
}

// CRCResponse answers X's challenge-response check: the webhook must reply
// to GET ?crc_token=T with {"response_token": CRCResponse(secret, T)}.
func CRCResponse(secret, crcToken string) string {
	return Sign(secret, []byte(crcToken))
}

func digest(secret string, msg []byte) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(msg)
	return mac.Sum(nil)
}
