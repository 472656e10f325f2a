package bluesky

import (
	"strconv"
	"strings"

	"github.com/rivo/uniseg"
)

// Graphemes counts the user-perceived characters of text, as Bluesky
// measures a post.
func Graphemes(text string) int { return uniseg.GraphemeClusterCount(text) }

// Split cuts a text longer than limit graphemes into numbered parts
// ("… (1/3)"), each within limit, at a paragraph, line or sentence end
// where it can, else at a space, else between two graphemes (never inside
// an emoji sequence). A text within limit is one part, unnumbered.
func Split(text string, limit int) []string {
	if limit <= 0 || Graphemes(text) <= limit {
		return []string{text}
	}
	room := limit - len(" (9/9)")
	for {
		parts := pack(text, max(room, 1))
		if len(parts) == 0 {
			return []string{strings.TrimSpace(text)}
		}
		n := strconv.Itoa(len(parts))
		suffix := len(" (" + n + "/" + n + ")")
		if room+suffix <= limit || room <= 1 {
			for i := range parts {
				parts[i] += " (" + strconv.Itoa(i+1) + "/" + n + ")"
			}
			return parts
		}
		room = limit - suffix
	}
}

// graphemes cuts text into its grapheme clusters.
func graphemes(text string) []string {
	var out []string
	g := uniseg.NewGraphemes(text)
	for g.Next() {
		out = append(out, g.Str())
	}
	return out
}

// pack cuts text into pieces of at most room graphemes, trimmed, each
// ending at the best break within its room.
func pack(text string, room int) []string {
	var parts []string
	rest := graphemes(strings.TrimSpace(text))
	for len(rest) > 0 {
		if len(rest) <= room {
			parts = append(parts, strings.Join(rest, ""))
			break
		}
		cut := breakAt(rest[:room+1])
		part := strings.TrimSpace(strings.Join(rest[:cut], ""))
		if part != "" {
			parts = append(parts, part)
		}
		rest = rest[cut:]
		for len(rest) > 0 && strings.TrimSpace(rest[0]) == "" {
			rest = rest[1:]
		}
	}
	return parts
}

// breakAt is where to end a part that may take window[:len(window)-1]:
// after the last paragraph break, line break, sentence end or space in
// its second half, else at the end of its room.
func breakAt(window []string) int {
	room := len(window) - 1
	half := room / 2
	last := func(match func(i int) bool) int {
		for i := room; i > half; i-- {
			if match(i) {
				return i
			}
		}
		return -1
	}
	space := func(s string) bool { return s == " " || s == "\n" || s == "\t" || s == "\r\n" }
	for _, match := range []func(i int) bool{
		func(i int) bool { return i >= 2 && window[i-1] == "\n" && window[i-2] == "\n" },
		func(i int) bool { return window[i-1] == "\n" || window[i-1] == "\r\n" },
		func(i int) bool {
			return window[i] == " " && (window[i-1] == "." || window[i-1] == "!" || window[i-1] == "?")
		},
		func(i int) bool { return space(window[i]) },
	} {
		if i := last(match); i > 0 {
			return i
		}
	}
	return room
}
