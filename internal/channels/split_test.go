package channels

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplit(t *testing.T) {
	if got := SplitNumbered("Short.", 2000); len(got) != 1 || got[0] != "Short." {
		t.Errorf("short text %q", got)
	}
	text := strings.Repeat("One sentence here. ", 300) // 5,700 characters
	parts := SplitNumbered(text, 2000)
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	for i, p := range parts {
		if n := utf8.RuneCountInString(p); n > 2000 {
			t.Errorf("part %d is %d characters", i, n)
		}
		if !strings.HasSuffix(p, fmt.Sprintf("here. (%d/3)", i+1)) {
			t.Errorf("part %d does not end at a sentence with its number: …%q", i, p[len(p)-20:])
		}
	}
	if got := SplitNumbered(strings.Repeat("\n", 3000), 2000); len(got) != 1 || got[0] != "" {
		t.Errorf("blank text split into %q", got)
	}
	// No sentence breaks: words; no spaces: anywhere.
	for _, s := range []string{strings.Repeat("word ", 1000), strings.Repeat("é", 5000)} {
		for i, p := range SplitNumbered(s, 1000) {
			if n := utf8.RuneCountInString(p); n > 1000 {
				t.Errorf("part %d is %d characters", i, n)
			}
		}
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("One. Two three. "+strings.Repeat("x", 50), 20)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		if limit < 20 || limit > 5000 || !utf8.ValidString(text) {
			return
		}
		for i, p := range SplitNumbered(text, limit) {
			if n := utf8.RuneCountInString(p); n > limit {
				t.Errorf("part %d of %d characters over %d", i, n, limit)
			}
		}
	})
}
