package x_test

import (
	"strings"
	"testing"

	"github.com/citizeninbox/inbox/internal/channels/x"
)

func TestWeightedLength(t *testing.T) {
	tests := []struct {
		name string
		text string
		want int
	}{
		{"empty", "", 0},
		{"ASCII", "Your bin will be emptied on Tuesday.", 36},
		{"280 ASCII", strings.Repeat("a", 280), 280},
		{"newlines count", "a\nb\n\nc", 6},
		{"Latin accents", "Café crème, Llanfairpwllgwyngyll", 32},
		{"pound sign", "£10", 3},
		{"euro sign", "€10", 4},
		{"Welsh circumflex", "Ŵ ŷ", 3},
		{"Hindi", "नमस्ते", 6},
		{"Chinese", "你好", 4},
		{"Japanese with ASCII", "ごみ collection", 15},
		{"Korean", "안녕", 4},
		{"en dash and curly quotes", "“Yes” – ok", 10},
		{"ellipsis counts 2", "wait…", 6},
		{"simple emoji", "👍", 2},
		{"emoji with skin tone", "👍🏽", 2},
		{"emoji with variation selector", "❤️", 2},
		{"text-style symbol", "☀︎", 4},
		{"ZWJ family", "👨‍👩‍👧‍👦", 2},
		{"ZWJ profession with selector", "👩‍⚕️", 2},
		{"rainbow flag", "🏳️‍🌈", 2},
		{"UK flag", "🇬🇧", 2},
		{"two flags", "🇬🇧🇫🇷", 4},
		{"England flag (tag sequence)", "🏴󠁧󠁢󠁥󠁮󠁧󠁿", 2},
		{"Wales flag (tag sequence)", "🏴󠁧󠁢󠁷󠁬󠁳󠁿", 2},
		{"keycap", "1️⃣", 2},
		{"keycap without selector", "#⃣", 2},
		{"hashtag is text", "#bins", 5},
		{"copyright alone", "©", 1},
		{"copyright as emoji", "©️", 2},
		{"emoji in a sentence", "Thanks 🙏🏻 see you", 7 + 2 + 8},
		{"text-style emoji with skin tone", "✌🏽", 2},
		{"text-style emoji with selector", "☝️", 2},
		{"dingbat is no emoji, even with selector", "❶\uFE0F", 4},
		{"emoji with a stray accent", "👍\u0301", 3},
		{"emoji with a trailing joiner", "👍\u200D", 3},
		{"joiner before a letter", "👍\u200Da", 4},
		{"CJK with an accent", "你\u0301", 3},
		{"CJK with a variation selector", "葛\U000E0100", 4},
		{"mixed emoji (twitter-text)", "H🐱☺👨‍👩‍👧‍👦", 7},
		{"Unicode 10 emoji (twitter-text)", "Unicode 10.0 emoji: 🤪; 🧕; 🧕🏾; 🏴󠁧󠁢󠁥󠁮󠁧󠁿", 34},
		{"skin tone and ZWJ (twitter-text)", "🙋🏽👨‍🎤", 4},
		{"https link", "https://www.exampleshire.gov.uk/bins/collection-days?postcode=EX1+1AA", 23},
		{"http link", "http://example.com", 23},
		{"short link", "https://t.co/x", 23},
		{"link in a sentence", "See https://exampleshire.gov.uk/bins for dates", 4 + 23 + 10},
		{"trailing full stop is not the link", "Visit https://example.com.", 6 + 23 + 1},
		{"link in brackets", "(https://example.com/a)", 1 + 23 + 1},
		{"balanced brackets stay in the link", "https://en.wikipedia.org/wiki/Bin_(container)", 23},
		{"emoji after a link", "https://example.com/👍", 23 + 2},
		{"two links", "https://a.example.com https://b.example.com", 23 + 1 + 23},
		{"bare domain", "exampleshire.gov.uk", 23},
		{"bare domain with path", "Go to exampleshire.gov.uk/bins.", 6 + 23 + 1},
		{"bare www domain", "www.example.com", 23},
		{"bare .com", "example.com", 23},
		{"short country domain", "it.is", 23},
		{"short country domains (twitter-text)", "twitter.jp日本語it.so中国語foo.jp it.so foo.jp", 5*23 + 6 + 6 + 2},
		{"tv and co domains (twitter-text)", "MLB.tv vine.co twitch.tv t.co", 4*23 + 3},
		{"short country domain with path", "bins.uk/x", 23},
		{"email address is not a link", "jo@example.com", 14},
		{"email address with a dot", "jo.green@example.com", 20},
		{"domain glued to @ (twitter-text)", "john.doe.jp@mail.com", 20},
		{"domain glued to -", "example.com-based", 17},
		{"unknown top-level domain", "file.txt", 8},
		{"newer generic top-level domain", "example.berlin", 23},
		{"country domain with only wildcard rules", "example.ck/x", 23},
		{"domain under a private suffix", "exampleshire.github.io", 23},
		{"abbreviations", "e.g. i.e. a.m.", 14},
		{"decimal", "3.30pm 1.5kg", 12},
		{"scheme without a host", "https://localhost", 17},
		{"scheme and unknown top-level domain (twitter-text)", "text http://tld-too-short.x", 27},
		{"scheme, unknown top-level domain and path", "https://notes.txt/a", 19},
		{"scheme and IP address", "http://10.0.0.1/bins", 20},
		{"scheme and user", "https://jo@example.com", 22},
		{"scheme and port", "https://example.com:8080/bins", 23},
		{"scheme and non-Latin top-level domain (twitter-text)", "\u2066\u202Ahttp://foobar.پاکستان/\u202C\u2069", 31},
		{"label over 63 letters (twitter-text)", strings.Repeat("randomurl", 7) + "s.com", 68},
		{"scheme and label over 63 letters", "https://" + strings.Repeat("a", 64) + ".com/", 77},
		{"scheme glued to a word", "xhttps://example.com", 20},
		{"NFC: combining accent", "cafe\u0301", 4},
		{"NFC: Hangul jamo compose", "\u1100\u1161", 2},
		{"invalid UTF-8", "a\xffb", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := x.WeightedLength(tt.text); got != tt.want {
				t.Errorf("WeightedLength(%q) = %d, want %d", tt.text, got, tt.want)
			}
		})
	}
}
