package channels

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// SplitNumberedBy keeps every part within the limit in the network's own
// unit, numbers the parts, never cuts a grapheme cluster, and loses no
// words.
func TestSplitNumberedBy(t *testing.T) {
	// A unit where an emoji counts two, as some networks weigh it.
	weighted := func(s string) int {
		n := 0
		for _, c := range clusters(s) {
			if utf8.RuneCountInString(c) > 1 || c > "\u2000" {
				n += 2
			} else {
				n++
			}
		}
		return n
	}
	family := "👨‍👩‍👧‍👦"
	for _, tc := range []struct {
		name    string
		text    string
		limit   int
		measure func(string) int
		parts   int
	}{
		{"within the limit", strings.Repeat("a", 50), 50, utf8.RuneCountInString, 1},
		{"sentences", strings.Repeat("The bin crew will come back tomorrow. ", 10), 100, utf8.RuneCountInString, 5},
		{"paragraphs first", "First paragraph here.\n\nSecond one, which is longer than the first.", 40, utf8.RuneCountInString, 3},
		{"weighted emoji", strings.Repeat(family+" ok ", 40), 60, weighted, 5},
		{"one long word", strings.Repeat("x", 250), 100, utf8.RuneCountInString, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := SplitNumberedBy(tc.text, tc.limit, tc.measure)
			if len(parts) != tc.parts {
				t.Fatalf("%d parts, want %d: %q", len(parts), tc.parts, parts)
			}
			var joined strings.Builder
			for i, p := range parts {
				if n := tc.measure(p); n > tc.limit {
					t.Errorf("part %d measures %d", i+1, n)
				}
				if strings.HasPrefix(p, "\u200d") || strings.Contains(p, "\u200d ") {
					t.Errorf("part %d cuts a ZWJ sequence", i+1)
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
		})
	}
	if got := SplitNumberedBy("First paragraph here.\n\nSecond one, which is longer than the first.", 40, utf8.RuneCountInString); got[0] != "First paragraph here. (1/3)" {
		t.Errorf("did not cut at the paragraph: %q", got)
	}
}

func FuzzSplitNumberedBy(f *testing.F) {
	f.Add("One. Two three. "+strings.Repeat("x", 50), 20)
	f.Add(strings.Repeat("👨‍👩‍👧‍👦 ok ", 40), 30)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		if limit < 20 || limit > 5000 || len(text) > 4000 || !utf8.ValidString(text) {
			return
		}
		graphemes := func(s string) int { return len(clusters(s)) }
		parts := SplitNumberedBy(text, limit, graphemes)
		var joined strings.Builder
		for i, p := range parts {
			if n := graphemes(p); n > limit {
				t.Errorf("part %d measures %d, over %d", i, n, limit)
			}
			if !utf8.ValidString(p) {
				t.Errorf("part %d is not UTF-8", i)
			}
			if len(parts) > 1 {
				p = strings.TrimSuffix(p, fmt.Sprintf(" (%d/%d)", i+1, len(parts)))
			}
			joined.WriteString(p)
		}
		if strings.Join(strings.Fields(joined.String()), "") != strings.Join(strings.Fields(text), "") {
			t.Errorf("the parts do not hold the text: %q", parts)
		}
	})
}
