package twilio

import (
	"errors"
	"net/url"
	"slices"
	"testing"
)

// Twilio's worked example from its webhook security documentation; the
// signature is what the helper library (testdata/peer) computes for it.
var docExample = struct {
	token, url, signature string
	params                url.Values
}{
	token: "12345",
	url:   "https://mycompany.com/myapp.php?foo=1&bar=2",
	params: url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675310"}, "Digits": {"1234"},
		"From": {"+14158675310"}, "To": {"+18005551212"}},
	signature: "GvWf1cFY/Q7PnoempGyD5oXAezc=",
}

func TestSign(t *testing.T) {
	if got := Sign(docExample.token, docExample.url, docExample.params); got != docExample.signature {
		t.Errorf("Sign = %s, want Twilio's %s", got, docExample.signature)
	}
}

func TestCheckSignature(t *testing.T) {
	e := docExample
	params := func(edit func(url.Values)) url.Values {
		p := url.Values{}
		for k, v := range e.params {
			p[k] = slices.Clone(v)
		}
		if edit != nil {
			edit(p)
		}
		return p
	}
	tests := []struct {
		name, token, url, header string
		params                   url.Values
		want                     error
	}{
		{"genuine", e.token, e.url, e.signature, params(nil), nil},
		{"surrounding spaces", e.token, e.url, " " + e.signature + " ", params(nil), nil},
		{"with the default port", e.token, "https://mycompany.com:443/myapp.php?foo=1&bar=2", e.signature, params(nil), nil},
		{"another port", e.token, "https://mycompany.com:8443/myapp.php?foo=1&bar=2", e.signature, params(nil), nil},
		{"http is not https", e.token, "http://mycompany.com/myapp.php?foo=1&bar=2", e.signature, params(nil), ErrBadSignature},
		{"another path", e.token, "https://mycompany.com/other.php?foo=1&bar=2", e.signature, params(nil), ErrBadSignature},
		{"without the query", e.token, "https://mycompany.com/myapp.php", e.signature, params(nil), ErrBadSignature},
		{"another token", "54321", e.url, e.signature, params(nil), ErrBadSignature},
		{"empty token", "", e.url, e.signature, params(nil), ErrBadSignature},
		{"empty URL", e.token, "", e.signature, params(nil), ErrBadSignature},
		{"a changed value", e.token, e.url, e.signature, params(func(p url.Values) { p.Set("Digits", "1235") }), ErrBadSignature},
		{"an added parameter", e.token, e.url, e.signature, params(func(p url.Values) { p.Set("Body", "") }), ErrBadSignature},
		{"a removed parameter", e.token, e.url, e.signature, params(func(p url.Values) { p.Del("To") }), ErrBadSignature},
		{"a value moved to another name", e.token, e.url, e.signature,
			params(func(p url.Values) { p.Set("Digits", ""); p.Set("Digit", "s1234") }), ErrBadSignature},
		{"missing", e.token, e.url, "", params(nil), ErrMalformedSignature},
		{"not base64", e.token, e.url, "not base64!", params(nil), ErrMalformedSignature},
		{"a SHA-256 digest", e.token, e.url, "GvWf1cFY/Q7PnoempGyD5oXAezcGvWf1cFY/Q7PnoempGyD5oXAezc=", params(nil), ErrMalformedSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckSignature(tt.token, tt.url, tt.params, tt.header); !errors.Is(got, tt.want) {
				t.Errorf("CheckSignature = %v, want %v", got, tt.want)
			}
		})
	}
}

// Repeated names sign each distinct value, in order, whatever order they
// came in.
func TestSignRepeatedNames(t *testing.T) {
	a := Sign("t", "https://x.example/h", url.Values{"MediaUrl": {"b", "a", "b"}, "To": {"+1"}})
	b := Sign("t", "https://x.example/h", url.Values{"MediaUrl": {"a", "b"}, "To": {"+1"}})
	if a != b {
		t.Error("the order or repetition of a name's values changed the signature")
	}
	if c := Sign("t", "https://x.example/h", url.Values{"MediaUrl": {"a"}, "To": {"+1"}}); c == b {
		t.Error("a dropped value did not change the signature")
	}
}

func TestCompareUTF16(t *testing.T) {
	// U+FF21 (Ａ) comes after U+1F600 (😀) in code points, before it in
	// UTF-16, where 😀 is the surrogates D83D DE00.
	if compareUTF16("😀", "Ａ") >= 0 {
		t.Error("😀 should sort before Ａ, as JavaScript sorts")
	}
	if compareUTF16("a", "b") >= 0 || compareUTF16("b", "a") <= 0 || compareUTF16("é", "é") != 0 {
		t.Error("compareUTF16 mis-orders simple strings")
	}
}

func TestPortVariants(t *testing.T) {
	for in, want := range map[string][]string{
		"https://h.example/w":            {"https://h.example/w", "https://h.example:443/w"},
		"http://h.example/w?a=b":         {"http://h.example/w?a=b", "http://h.example:80/w?a=b"},
		"http://127.0.0.1:8080/webhooks": {"http://127.0.0.1/webhooks", "http://127.0.0.1:8080/webhooks"},
		"https://u:p@[::1]:8443/x":       {"https://u:p@[::1]/x", "https://u:p@[::1]:8443/x"},
		"https://[::1]/x":                {"https://[::1]/x", "https://[::1]:443/x"},
		"no scheme":                      {"no scheme"},
	} {
		if got := portVariants(in); !slices.Equal(got, want) {
			t.Errorf("portVariants(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzCheckSignature: whatever the header and body, checking never panics,
// and a signature made by Sign always verifies.
func FuzzCheckSignature(f *testing.F) {
	f.Add("https://h.example/webhooks/twilio/a", "MessageSid=SM1&Body=hi", "")
	f.Add("http://[::1]:80/x?y=z", "a=1&a=2&b=%E2%82%AC", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
	f.Add("", "", "====")
	f.Fuzz(func(t *testing.T, u, body, header string) {
		params, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		_ = CheckSignature("token", u, params, header)
		if u == "" {
			return
		}
		if err := CheckSignature("token", u, params, Sign("token", u, params)); err != nil {
			t.Fatalf("own signature over %q %q: %v", u, body, err)
		}
	})
}
