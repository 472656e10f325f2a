package bluesky

import (
	"fmt"
	"strings"
	"testing"
)

func TestGraphemes(t *testing.T) {
	for _, tc := range []struct {
		text string
		want int
	}{
		{"", 0},
		{"hello", 5},
		{"café", 4},
		{"e\u0301", 1},        // e + combining acute
		{"👍🏽", 1},             // emoji with a skin tone
		{"👨‍👩‍👧‍👦", 1},        // a family: ZWJ sequence
		{"🇬🇧🇫🇷", 2},           // two flags
		{"bins 🗑️ today", 12}, // emoji with variation selector
	} {
		if got := Graphemes(tc.text); got != tc.want {
			t.Errorf("Graphemes(%q) = %d, want %d", tc.text, got, tc.want)
		}
	}
}

func TestSplit(t *testing.T) {
	family := "👨‍👩‍👧‍👦"
	for _, tc := range []struct {
		name  string
		text  string
		parts int
	}{
		{"within the limit", strings.Repeat("a", 300), 1},
		{"emoji within both limits", strings.Repeat("👍🏽", 300), 1}, // 8 bytes each: 2,400 of 3,000
		{"emoji over the bytes", strings.Repeat(family, 300), 4},   // 25 bytes each: 7,500 of 3,000
		{"words", strings.Repeat("The bin crew will come back tomorrow. ", 20), 3},
		{"ZWJ sequences only", strings.Repeat(family, 700), 8},
		{"flags and words", strings.Repeat("🇬🇧 ok ", 200), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := Split(tc.text, MaxPostLength)
			if len(parts) != tc.parts {
				t.Fatalf("%d parts, want %d", len(parts), tc.parts)
			}
			var joined strings.Builder
			for i, p := range parts {
				if n := Graphemes(p); n > MaxPostLength {
					t.Errorf("part %d has %d graphemes", i+1, n)
				}
				if n := len(p); n > MaxPostLength*BytesPerGrapheme {
					t.Errorf("part %d has %d bytes", i+1, n)
				}
				if strings.Contains(p, "\u200d ") || strings.HasPrefix(p, "\u200d") {
					t.Errorf("part %d cuts a ZWJ sequence: %q", i+1, p)
				}
				if len(parts) > 1 {
					suffix := fmt.Sprintf(" (%d/%d)", i+1, len(parts))
					if !strings.HasSuffix(p, suffix) {
						t.Errorf("part %d does not end %q", i+1, suffix)
					}
					p = strings.TrimSuffix(p, suffix)
				}
				joined.WriteString(p)
			}
			squash := func(s string) string { return strings.Join(strings.Fields(s), "") }
			if squash(joined.String()) != squash(tc.text) {
				t.Error("the parts do not make up the text")
			}
			if tc.name == "ZWJ sequences only" {
				for i, p := range parts {
					body := strings.TrimSuffix(p, fmt.Sprintf(" (%d/%d)", i+1, len(parts)))
					if strings.ReplaceAll(body, family, "") != "" {
						t.Errorf("part %d splits a family emoji", i+1)
					}
				}
			}
		})
	}
}
