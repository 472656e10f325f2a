package twilio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// peerDir holds Twilio's helper library, pinned (package-lock.json) and
// installed by `make peers`.
const peerDir = "testdata/peer"

type peerCheck struct {
	URL       string `json:"url"`
	Signature string `json:"signature"`
}

type peerCase struct {
	Token string `json:"token"`
	URL   string `json:"url"`
	// Params keep their order, and a name's values.
	Params [][2]any    `json:"params"`
	Checks []peerCheck `json:"checks"`

	values url.Values
}

type peerAnswer struct {
	Expected string `json:"expected"`
	Valid    []bool `json:"valid"`
}

// Our signing and checking agree with Twilio's own helper library (the npm
// package twilio) on generated webhooks: Twilio's usual parameters and
// odd ones, empty values, repeated names, non-ASCII names and values, URLs
// with and without query strings and ports. Both ways: the library accepts
// what we sign, we accept what it signs, and neither accepts a signature
// the other would refuse.
func TestSignatureAgreesWithTwilioHelperLibrary(t *testing.T) {
	if _, err := os.Stat(filepath.Join(peerDir, "node_modules", "twilio")); err != nil {
		t.Fatalf("Twilio's helper library is not installed in %s: run `make peers` (npm ci there): %v", peerDir, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed to run Twilio's helper library: %v", err)
	}
	cases := peerCases(400)
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, "check.js")
	cmd.Dir = peerDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node check.js: %v\n%s", err, stderr.String())
	}
	var answers []peerAnswer
	if err := json.Unmarshal(out, &answers); err != nil || len(answers) != len(cases) {
		t.Fatalf("node answered %d answers for %d cases (%v): %.500s", len(answers), len(cases), err, out)
	}
	failures := 0
	for i, c := range cases {
		a := answers[i]
		fail := func(format string, args ...any) {
			failures++
			if failures <= 10 {
				t.Errorf("case %d (url %q, params %q): %s", i, c.URL, c.values, fmt.Sprintf(format, args...))
			}
		}
		if ours := Sign(c.Token, c.URL, c.values); ours != a.Expected {
			fail("we sign %s, Twilio's library %s", ours, a.Expected)
		}
		for j, k := range c.Checks {
			ours := CheckSignature(c.Token, k.URL, c.values, k.Signature) == nil
			if ours != a.Valid[j] {
				fail("signature %q over %q: we accept it %v, Twilio's library %v", k.Signature, k.URL, ours, a.Valid[j])
			}
		}
	}
	if failures > 10 {
		t.Errorf("… and %d more disagreements", failures-10)
	}
	// The cases must exercise acceptance and refusal both.
	accepted, refused := 0, 0
	for _, a := range answers {
		for _, v := range a.Valid {
			if v {
				accepted++
			} else {
				refused++
			}
		}
	}
	if accepted < len(cases) || refused < len(cases) {
		t.Errorf("the library accepted %d and refused %d checks: the cases test too little", accepted, refused)
	}
}

// peerCases generates n signing cases, the same every run.
func peerCases(n int) []peerCase {
	rng := rand.New(rand.NewPCG(20260101, 3))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	bases := []string{"https://inbox.example.gov.uk", "http://127.0.0.1:8080", "https://inbox.example.gov.uk:443",
		"https://inbox.example.gov.uk:8443", "http://localhost", "https://[2001:db8::1]:8443"}
	queries := []string{"", "", "?source=sms", "?a=1&b=2", "?bodySHA256=x&%C3%A9=%E2%82%AC", "?empty="}
	twilioNames := []string{"MessageSid", "SmsSid", "SmsMessageSid", "AccountSid", "MessagingServiceSid", "From", "To", "Body",
		"NumMedia", "NumSegments", "SmsStatus", "MessageStatus", "ErrorCode", "ApiVersion", "FromCity", "FromCountry",
		"MediaUrl0", "MediaContentType0", "ProfileName", "WaId"}
	oddNames := []string{"a", "A", "b", "_x", "Ünïcode", "😀", "Ａ", "ŵ", "名前", "with space", "amp&er", "eq=ual", "plus+", "x[]"}
	values := []string{"", "", "SM0123456789abcdef0123456789abcdef", "+447700900123", "Hello", "Bins not collected on Elm Road.",
		"Diolch yn fawr ŵ â", "€10 & more = less", "100% + 1", "emoji 😀👍🏽", "名前と住所", "line\nbreak", "tab\there",
		"  spaces  ", "a&b=c", "quote\"s and 'apostrophes'", "<xml>", "ç`^{}\\[~]|"}
	tokens := []string{"demo-twilio-auth-token", "0123456789abcdef0123456789abcdef", "ŧøĸēn"}
	out := make([]peerCase, 0, n)
	for i := range n {
		base := pick(bases)
		c := peerCase{Token: pick(tokens), URL: base + "/webhooks/twilio/council-sms" + pick(queries), Params: [][2]any{}, values: url.Values{}}
		count := rng.IntN(8)
		if i%10 == 0 {
			count = 0 // no parameters at all
		}
		for range count {
			name := pick(twilioNames)
			if rng.IntN(3) == 0 {
				name = pick(oddNames)
			}
			repeats := 1
			if rng.IntN(5) == 0 {
				repeats = 2 + rng.IntN(3) // a repeated name, values perhaps equal
			}
			for range repeats {
				c.values[name] = append(c.values[name], pick(values))
			}
		}
		for name, vs := range c.values {
			arr := make([]any, len(vs))
			for j, v := range vs {
				arr[j] = v
			}
			c.Params = append(c.Params, [2]any{name, arr})
		}
		ours := Sign(c.Token, c.URL, c.values)
		other := Sign(c.Token+"x", c.URL, c.values)
		tampered := []byte(ours)
		tampered[rng.IntN(len(tampered)-1)] ^= 1
		variants := portVariants(c.URL)
		c.Checks = []peerCheck{
			{c.URL, ours}, {c.URL, other}, {c.URL, string(tampered)}, {c.URL, ""},
			{strings.Replace(c.URL, "council-sms", "council-x", 1), ours},
		}
		for _, v := range variants {
			c.Checks = append(c.Checks, peerCheck{v, ours}, peerCheck{v, Sign(c.Token, v, c.values)})
		}
		out = append(out, c)
	}
	return out
}
