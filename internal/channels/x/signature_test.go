package x_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/citizeninbox/inbox/internal/channels/x"
)

// independentSign computes a signature without the package under test.
func independentSign(secret, msg string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(msg))
	return "sha256=" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestCRCResponse(t *testing.T) {
	tests := []struct {
		name, secret, token, want string
	}{
		// Computed outside Go: HMAC-SHA256 of "challenge" under "secret".
		{"known vector", "secret", "challenge", "sha256=oeUF6Wxqoezggrue+wbIDxKRPSF6esKwizR2MHh9HaA="},
		{"independent", "consumer-secret", "a-crc-token-from-x", independentSign("consumer-secret", "a-crc-token-from-x")},
		{"empty token", "secret", "", independentSign("secret", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := x.CRCResponse(tt.secret, tt.token); got != tt.want {
				t.Errorf("CRCResponse(%q, %q) = %q, want %q", tt.secret, tt.token, got, tt.want)
			}
		})
	}
}

func TestSign(t *testing.T) {
	body := `{"for_user_id":"1"}`
	// Computed outside Go.
	const want = "sha256=Hlco0COzwYOsSzVcCoqAGpNZdK3BYQku/gWz9SSGVjA="
	if got := x.Sign("consumer-secret", []byte(body)); got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
	if got, want := x.Sign("s", []byte("body")), independentSign("s", "body"); got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	const secret = "consumer-secret"
	body := []byte(`{"for_user_id":"1","tweet_create_events":[]}`)
	good := independentSign(secret, string(body))

	tests := []struct {
		name   string
		secret string
		body   []byte
		header string
		want   bool
	}{
		{"valid", secret, body, good, true},
		{"valid with surrounding space", secret, body, " " + good + " ", true},
		{"other body", secret, []byte(`{"for_user_id":"2","tweet_create_events":[]}`), good, false},
		{"other secret", "another-secret", body, good, false},
		{"empty secret", "", body, x.Sign("", body), false},
		{"empty header", secret, body, "", false},
		{"prefix only", secret, body, "sha256=", false},
		{"no prefix", secret, body, good[len("sha256="):], false},
		{"wrong prefix", secret, body, "sha1=" + good[len("sha256="):], false},
		{"not base64", secret, body, "sha256=!!!not-base64!!!", false},
		{"truncated digest", secret, body, good[:len(good)-8] + "====", false},
		{"hex instead of base64", secret, body, "sha256=" + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := x.Verify(tt.secret, tt.body, tt.header); got != tt.want {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("consumer-secret", []byte(`{"for_user_id":"1"}`), "sha256=Hlco0COzwYOsSzVcCoqAGpNZdK3BYQku/gWz9SSGVjA=", 0)
	f.Add("s", []byte(""), "", 3)
	f.Add("", []byte("x"), "sha256=", 1)
	f.Fuzz(func(t *testing.T, secret string, body []byte, header string, flip int) {
		// Arbitrary headers must never panic.
		_ = x.Verify(secret, body, header)

		if secret == "" {
			if x.Verify(secret, body, x.Sign(secret, body)) {
				t.Fatal("Verify accepted an empty secret")
			}
			return
		}
		sig := x.Sign(secret, body)
		if !x.Verify(secret, body, sig) {
			t.Fatalf("Verify rejected its own signature %q", sig)
		}
		if len(body) == 0 {
			return
		}
		changed := append([]byte(nil), body...)
		i := flip % len(changed)
		if i < 0 {
			i = -i
		}
		changed[i] ^= 0x01
		if x.Verify(secret, changed, sig) {
			t.Fatalf("Verify accepted a body with byte %d changed", i)
		}
	})
}

// The key that answers challenges also signs deliveries: a token of any
// other shape than X's would make the CRC endpoint sign forged bodies.
func TestAnswerCRCSignsOnlyTokensOfXsShape(t *testing.T) {
	const secret = "consumer-secret"
	delivery := `{"for_user_id":"1","tweet_create_events":[{"id_str":"9","text":"forged"}]}`
	tests := []struct {
		name, token string
		ok          bool
	}{
		{"base64", "ZmY3ZTIwNzEtNjQ0Mi00ZTk1LWIxYjMtNDgzN2NhNmYzOGQw", true},
		{"base64 with padding and symbols", "a+b/c=", true},
		{"base64url", "a-b_c", true},
		{"hex", "0123456789abcdef0123456789abcdef", true},
		{"one character", "a", true},
		{"128 characters", strings.Repeat("A", 128), true},
		{"empty", "", false},
		{"129 characters", strings.Repeat("A", 129), false},
		{"a JSON delivery", delivery, false},
		{"space", "a b", false},
		{"dot", "a.b", false},
		{"newline", "ab\n", false},
		{"NUL", "ab\x00", false},
		{"non-ASCII", "abcé", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := x.AnswerCRC(secret, tt.token)
			if tt.ok {
				if err != nil || got != independentSign(secret, tt.token) {
					t.Errorf("AnswerCRC(%q) = %q, %v; want the token's HMAC", tt.token, got, err)
				}
				return
			}
			if !errors.Is(err, x.ErrBadCRCToken) || got != "" {
				t.Errorf("AnswerCRC(%q) = %q, %v; want no answer and ErrBadCRCToken", tt.token, got, err)
			}
		})
	}
}

func TestParseSignatureLooksAtTheHeaderAlone(t *testing.T) {
	good := x.Sign("s", []byte("body"))
	for _, tt := range []struct {
		header string
		ok     bool
	}{
		{good, true},
		{" " + good + " ", true},
		{"", false},
		{"sha256=", false},
		{"sha1=" + good[len("sha256="):], false},
		{"sha256=!!!", false},
		{"sha256=" + base64.StdEncoding.EncodeToString([]byte("short")), false},
	} {
		if _, err := x.ParseSignature(tt.header); (err == nil) != tt.ok {
			t.Errorf("ParseSignature(%q) = %v, want ok %v", tt.header, err, tt.ok)
		}
		if tt.ok {
			continue
		}
		if err := x.CheckSignature("s", []byte("body"), tt.header); !errors.Is(err, x.ErrMalformedSignature) {
			t.Errorf("CheckSignature(%q) = %v, want ErrMalformedSignature", tt.header, err)
		}
	}
	if err := x.CheckSignature("other", []byte("body"), good); !errors.Is(err, x.ErrBadSignature) {
		t.Errorf("CheckSignature under another secret = %v, want ErrBadSignature", err)
	}
	if err := x.CheckSignature("s", []byte("body"), good); err != nil {
		t.Errorf("CheckSignature of a good signature = %v", err)
	}
}
