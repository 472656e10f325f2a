package x_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/citizeninbox/inbox/internal/channels/x"
	"golang.org/x/text/unicode/norm"
)

// suffix matches the part number SplitThread appends.
var suffix = regexp.MustCompile(` \((\d+)/(\d+)\)$`)

// bodies checks the numbering of parts and returns them without it.
func bodies(t testing.TB, parts []string) []string {
	t.Helper()
	out := make([]string, len(parts))
	for i, p := range parts {
		m := suffix.FindStringSubmatch(p)
		if m == nil {
			t.Fatalf("part %d has no (i/n) suffix: %q", i+1, p)
		}
		if m[1] != strconv.Itoa(i+1) || m[2] != strconv.Itoa(len(parts)) {
			t.Fatalf("part %d is numbered (%s/%s), want (%d/%d)", i+1, m[1], m[2], i+1, len(parts))
		}
		out[i] = strings.TrimSuffix(p, m[0])
		if out[i] != strings.TrimSpace(out[i]) || out[i] == "" {
			t.Fatalf("part %d body %q is empty or has whitespace at its edges", i+1, out[i])
		}
	}
	return out
}

func checkFits(t testing.TB, parts []string, limit int) {
	t.Helper()
	for i, p := range parts {
		if w := x.WeightedLength(p); w > limit {
			t.Fatalf("part %d weighs %d, over %d: %q", i+1, w, limit, p)
		}
	}
}

// sameWords reports whether two texts have the same words in the same order.
func sameWords(a, b string) bool {
	return strings.Join(strings.Fields(a), "\x00") == strings.Join(strings.Fields(b), "\x00")
}

// residentAnswer builds a reply of about n characters made of real words.
func residentAnswer(n int) string {
	sentences := []string{
		"Thank you for letting us know about the missed collection on Elm Street.",
		"Our waste team will return within two working days to empty the bins.",
		"If the recycling is still not collected by Friday, please reply here and quote your case reference.",
		"You can also check your collection days at https://www.exampleshire.gov.uk/bins/collection-days?postcode=EX1+1AA at any time.",
		"We are sorry for the inconvenience.",
	}
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString(sentences[i%len(sentences)])
	}
	return b.String()[:n]
}

func TestSplitThreadShortTextIsOnePart(t *testing.T) {
	for _, text := range []string{
		"",
		"Thanks, we've passed this on.",
		strings.Repeat("a", 280),
		strings.Repeat("你", 140),
		"Details: https://www.exampleshire.gov.uk/" + strings.Repeat("x", 400),
	} {
		parts := x.SplitThread(text, x.MaxPostWeight)
		if len(parts) != 1 || parts[0] != text {
			t.Errorf("SplitThread(%.30q…) = %d parts, want the text itself", text, len(parts))
		}
	}
}

func TestSplitThread(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		limit     int
		wantParts int
	}{
		{"600 characters", residentAnswer(600), x.MaxPostWeight, 3},
		{"281 characters", residentAnswer(281), x.MaxPostWeight, 2},
		{"CJK weighs double", strings.Repeat("你好 ", 100), x.MaxPostWeight, 2},
		{"30,000 characters", residentAnswer(30000), x.MaxPostWeight, 0},
		{"small limit", residentAnswer(1000), 50, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := x.SplitThread(tt.text, tt.limit)
			if tt.wantParts != 0 && len(parts) != tt.wantParts {
				t.Errorf("got %d parts, want %d", len(parts), tt.wantParts)
			}
			checkFits(t, parts, tt.limit)
			b := bodies(t, parts)
			if joined := strings.Join(b, " "); !sameWords(joined, tt.text) {
				t.Errorf("words changed:\n got %q\nwant %q", joined, tt.text)
			}
		})
	}
}

func TestSplitThreadNumberWidthGrows(t *testing.T) {
	// With a limit of 20, " (i/n)" leaves room for one 13-letter word while
	// n < 10, but ten such words make ten parts, and with two-digit numbers
	// the words no longer fit: the split must be worked out again.
	text := strings.TrimSpace(strings.Repeat("abcdefghijklm ", 10))
	parts := x.SplitThread(text, 20)
	checkFits(t, parts, 20)
	b := bodies(t, parts)
	if len(parts) <= 10 {
		t.Errorf("got %d parts; 10 thirteen-letter words with two-digit numbering need more", len(parts))
	}
	if got := strings.Join(b, ""); got != strings.ReplaceAll(text, " ", "") {
		t.Errorf("letters changed: %q", got)
	}

	// And with thousands of parts.
	long := residentAnswer(30000)
	parts = x.SplitThread(long, x.MaxPostWeight)
	if len(parts) < 100 {
		t.Fatalf("got %d parts for 30,000 characters", len(parts))
	}
	checkFits(t, parts, x.MaxPostWeight)
	if last := parts[len(parts)-1]; !strings.HasSuffix(last, fmt.Sprintf(" (%d/%d)", len(parts), len(parts))) {
		t.Errorf("last part %q is misnumbered", last)
	}
}

func TestSplitThreadNeverSplitsALink(t *testing.T) {
	link := "https://www.exampleshire.gov.uk/council-tax/pay-by-direct-debit?ref=abcdefghijklmnopqrstuvwxyz0123456789"
	// Put the link at every position around the end of the first part.
	for pad := 230; pad < 290; pad++ {
		text := strings.Repeat("x", pad%7+1) + " " + strings.Repeat("word ", pad/5) + link + " " + residentAnswer(300)
		parts := x.SplitThread(text, x.MaxPostWeight)
		checkFits(t, parts, x.MaxPostWeight)
		whole := 0
		for _, p := range parts {
			whole += strings.Count(p, link)
		}
		if whole != 1 {
			t.Fatalf("pad %d: link is split or lost: %q", pad, parts)
		}
	}

	// A long word holding a link is cut around the link, not through it.
	word := strings.Repeat("z", 260) + "," + link
	parts := x.SplitThread(word, x.MaxPostWeight)
	checkFits(t, parts, x.MaxPostWeight)
	if !strings.Contains(strings.Join(parts, ""), link) {
		t.Errorf("link was cut: %q", parts)
	}
}

func TestSplitThreadCutsLongWords(t *testing.T) {
	tests := []struct {
		name string
		word string
		unit string // the word is made of these, which must stay whole
	}{
		{"letters", strings.Repeat("a", 700), "a"},
		{"CJK", strings.Repeat("漢", 400), "漢"},
		{"emoji with skin tone", strings.Repeat("👍🏽", 200), "👍🏽"},
		{"ZWJ family", strings.Repeat("👨‍👩‍👧‍👦", 200), "👨‍👩‍👧‍👦"},
		{"flags", strings.Repeat("🇬🇧", 200), "🇬🇧"},
		{"text-style emoji with skin tone", strings.Repeat("✌🏽", 200), "✌🏽"},
		// An old-style Hangul syllable: a leading consonant before a
		// syllable, which NFC leaves apart but which is one character.
		{"Hangul jamo", strings.Repeat("\u1100\uAC00", 200), "\u1100\uAC00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "Before " + tt.word + " after"
			parts := x.SplitThread(text, x.MaxPostWeight)
			checkFits(t, parts, x.MaxPostWeight)
			b := bodies(t, parts)
			noSpace := func(s string) string { return strings.ReplaceAll(s, " ", "") }
			if noSpace(strings.Join(b, "")) != noSpace(text) {
				t.Errorf("characters changed: %q", b)
			}
			for i, body := range b {
				for _, w := range strings.Fields(body) {
					if w == "Before" || w == "after" {
						continue
					}
					if strings.ReplaceAll(w, tt.unit, "") != "" {
						t.Errorf("part %d cuts inside %q: %q", i+1, tt.unit, w)
					}
				}
			}
		})
	}
}

func TestSplitThreadPrefersParagraphsAndSentences(t *testing.T) {
	first := "We have logged your report about the fly-tipping on Mill Lane. " +
		"A crew will clear it this week, and our enforcement officers will look for evidence of who left it there."
	second := strings.Repeat("If you see anyone dumping rubbish, please do not approach them but note the time and any vehicle details. ", 3)

	parts := x.SplitThread(first+"\n\n"+second, x.MaxPostWeight)
	b := bodies(t, parts)
	if b[0] != first {
		t.Errorf("first part does not end at the paragraph:\n%q", b[0])
	}

	parts = x.SplitThread(first+" "+second, x.MaxPostWeight)
	b = bodies(t, parts)
	if !strings.HasSuffix(b[0], ".") {
		t.Errorf("first part does not end at a sentence:\n%q", b[0])
	}

	// A paragraph break kept inside a part.
	parts = x.SplitThread("Hello Jo,\n\n"+residentAnswer(400), x.MaxPostWeight)
	if !strings.HasPrefix(parts[0], "Hello Jo,\n\nThank you") {
		t.Errorf("paragraph break lost: %q", parts[0])
	}
}

func TestSplitThreadWhitespace(t *testing.T) {
	// Collapsing runs of spaces may be enough to fit.
	parts := x.SplitThread("Thanks"+strings.Repeat(" ", 300)+"Jo", x.MaxPostWeight)
	if len(parts) != 1 || parts[0] != "Thanks Jo" {
		t.Errorf("got %q, want one part \"Thanks Jo\"", parts)
	}
	parts = x.SplitThread(strings.Repeat(" \n", 300), x.MaxPostWeight)
	if len(parts) != 1 || parts[0] != "" {
		t.Errorf("got %q, want one empty part", parts)
	}
}

func FuzzSplitThread(f *testing.F) {
	f.Add(residentAnswer(120), 40)
	f.Add(strings.Repeat("👍🏽", 20), 40)
	f.Add("a"+strings.Repeat("\u0301", 50), 40)
	f.Add("https://example.com/"+strings.Repeat("a", 40)+" x y", 40)
	f.Add(strings.Repeat("abcdefghijklm ", 5), 40)
	f.Add("Hello,\n\nworld. "+strings.Repeat("你好 ", 10), 40)
	f.Add(strings.Repeat("\u1100\uAC00✌🏽❶\uFE0F", 10)+" exampleshire.github.io/bins", 40)
	f.Fuzz(func(t *testing.T, text string, limit int) {
		if len(text) > 5000 {
			return
		}
		// Limits below 40 cannot hold a part number and a link.
		if limit < 40 || limit > 1040 {
			l := limit % 1000
			if l < 0 {
				l = -l
			}
			limit = 40 + l
		}

		parts := x.SplitThread(text, limit)
		checkFits(t, parts, limit)
		if x.WeightedLength(text) <= limit {
			if len(parts) != 1 || parts[0] != text {
				t.Fatalf("text that fits was changed: %q", parts)
			}
			return
		}
		nfc := norm.NFC.String(text)
		var b []string
		if len(parts) == 1 {
			// Fitted once whitespace collapsed: no numbering.
			b = parts
		} else {
			b = bodies(t, parts)
		}
		joined := strings.Join(b, " ")
		if strings.Join(strings.Fields(joined), "") != strings.Join(strings.Fields(nfc), "") {
			t.Fatalf("text changed:\n got %q\nwant %q", joined, nfc)
		}
		// Unless a word had to be cut, the words are the same.
		room := limit - len(fmt.Sprintf(" (%d/%d)", len(parts), len(parts)))
		for _, w := range strings.Fields(nfc) {
			if x.WeightedLength(w) > room {
				return
			}
		}
		if !sameWords(joined, nfc) {
			t.Fatalf("words changed:\n got %q\nwant %q", joined, nfc)
		}
	})
}
