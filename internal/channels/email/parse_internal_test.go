package email

import (
	"strings"
	"testing"
)

func FuzzTrimQuoted(f *testing.F) {
	for _, s := range []string{"Thanks\n\nOn Tue, Council wrote:\n> We will\n> come", "> all quoted", "a\n-----Original Message-----\nold", "", "\r\n>\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := trimQuoted(s)
		norm := strings.ReplaceAll(s, "\r\n", "\n")
		if !strings.HasPrefix(norm, got) && got != s {
			t.Errorf("trimQuoted(%q) = %q: not a beginning of the text", s, got)
		}
		if strings.TrimSpace(got) == "" && strings.TrimSpace(s) != "" {
			t.Errorf("trimQuoted(%q) lost all of the text", s)
		}
	})
}
