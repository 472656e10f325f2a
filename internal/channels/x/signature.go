package x

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// SignatureHeader is the request header in which X signs webhook deliveries.
const SignatureHeader = "X-Twitter-Webhooks-Signature"

// signaturePrefix precedes the base64 digest in signatures and CRC answers.
const signaturePrefix = "sha256="

// maxCRCToken is the longest crc_token X sends.
const maxCRCToken = 128

// ErrMalformedSignature is returned for a signature header that cannot be
// an X signature: missing, without its sha256= prefix, or not the base64
// of a SHA-256 digest.
var ErrMalformedSignature = errors.New("x: signature header is missing or malformed")

// ErrBadSignature is returned for a well-formed signature that does not
// sign the body under the account's consumer secret.
var ErrBadSignature = errors.New("x: signature does not match the body")

// ErrBadCRCToken is returned for a crc_token that is not of the shape X
// sends. Such a token is never signed: the key that answers challenges
// also signs deliveries, so signing whatever a caller sends would hand out
// valid signatures for forged deliveries.
var ErrBadCRCToken = errors.New("x: crc_token must be 1 to 128 characters of A-Z a-z 0-9 _ - = + /")

// Sign returns the signature X puts in SignatureHeader for body: "sha256="
// followed by the standard base64 encoding of HMAC-SHA256(secret, body).
// The secret is the app's consumer secret.
func Sign(secret string, body []byte) string {
	return signaturePrefix + base64.StdEncoding.EncodeToString(digest(secret, body))
}

// ParseSignature checks that header has the shape of an X signature and
// returns its digest. It looks at the header alone, so a request that
// cannot be genuine is refused before its body is read.
func ParseSignature(header string) ([]byte, error) {
	encoded, ok := strings.CutPrefix(strings.TrimSpace(header), signaturePrefix)
	if !ok || encoded == "" {
		return nil, ErrMalformedSignature
	}
	got, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil || len(got) != sha256.Size {
		return nil, ErrMalformedSignature
	}
	return got, nil
}

// Verify reports whether header is a valid signature of body under secret.
// It must be called on the raw request body, before any parsing. An empty
// secret, an empty or malformed header all give false. The comparison runs
// in constant time.
func Verify(secret string, body []byte, header string) bool {
	return CheckSignature(secret, body, header) == nil
}

// CheckSignature is Verify with the reason: ErrMalformedSignature or
// ErrBadSignature.
func CheckSignature(secret string, body []byte, header string) error {
	got, err := ParseSignature(header)
	if err != nil {
		return err
	}
	if secret == "" || !hmac.Equal(got, digest(secret, body)) {
		return ErrBadSignature
	}
	return nil
}

// CRCResponse computes the answer to X's challenge-response check for
// crcToken: the webhook replies to GET ?crc_token=T with
// {"response_token": CRCResponse(secret, T)}. It signs any token; a
// webhook answers with AnswerCRC, which signs only tokens X could have
// sent.
func CRCResponse(secret, crcToken string) string {
	return Sign(secret, []byte(crcToken))
}

// AnswerCRC answers a challenge X sent: the response token for crcToken,
// or ErrBadCRCToken, and no signature, when the token is not of the shape
// X sends.
func AnswerCRC(secret, crcToken string) (string, error) {
	if !ValidCRCToken(crcToken) {
		return "", ErrBadCRCToken
	}
	return CRCResponse(secret, crcToken), nil
}

// ValidCRCToken reports whether token has the shape of the crc_token X
// sends: 1 to 128 characters of the base64 and base64url alphabets.
func ValidCRCToken(token string) bool {
	if len(token) == 0 || len(token) > maxCRCToken {
		return false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '_', c == '-', c == '=', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

func digest(secret string, msg []byte) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(msg)
	return mac.Sum(nil)
}
