package bluesky

import (
	"github.com/rivo/uniseg"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Graphemes counts the user-perceived characters of text.
func Graphemes(text string) int { return uniseg.GraphemeClusterCount(text) }

// BytesPerGrapheme is the bytes Bluesky allows a text for each grapheme it
// allows: a post holds 300 graphemes and 3,000 bytes of UTF-8, a direct
// message 1,000 and 10,000.
const BytesPerGrapheme = 10

// Length measures text as Bluesky limits it: its graphemes, or a tenth of
// its UTF-8 bytes when that is more (emoji sequences of many code points),
// so that a text of Length at most 300 fits a post on both counts.
func Length(text string) int {
	return max(Graphemes(text), (len(text)+BytesPerGrapheme-1)/BytesPerGrapheme)
}

// Split cuts a text longer than limit (as Length measures it) into
// numbered parts ("… (1/3)"), each within limit, at a paragraph, line or
// sentence end where it can, else at a space, else between two graphemes
// (never inside an emoji sequence). A text within limit is one part,
// unnumbered.
func Split(text string, limit int) []string { return channels.SplitNumberedBy(text, limit, Length) }
