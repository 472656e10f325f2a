package bluesky

import (
	"github.com/rivo/uniseg"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Graphemes counts the user-perceived characters of text, as Bluesky
// measures a post.
func Graphemes(text string) int { return uniseg.GraphemeClusterCount(text) }

// Split cuts a text longer than limit graphemes into numbered parts
// ("… (1/3)"), each within limit, at a paragraph, line or sentence end
// where it can, else at a space, else between two graphemes (never inside
// an emoji sequence). A text within limit is one part, unnumbered.
func Split(text string, limit int) []string { return channels.SplitNumberedBy(text, limit, Graphemes) }
