package x_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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
