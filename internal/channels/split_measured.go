package channels

import (
	"strconv"
	"strings"

	"github.com/rivo/uniseg"
)

// SplitNumberedBy cuts a message that measures more than limit into
// numbered parts ("… (1/3)"), each measuring at most limit, for networks
// that count text in a unit of their own (Bluesky's graphemes): measure
// measures a text in that unit. It cuts only between grapheme clusters
// (never inside an emoji sequence), after the last paragraph break, line
// break, sentence end or space in the second half of a part where there
// is one. A text within limit is one part, unnumbered.
func SplitNumberedBy(text string, limit int, measure func(string) int) []string {
	if limit <= 0 || measure(text) <= limit {
		return []string{text}
	}
	room := limit - measure(" (9/9)")
	for {
		parts := packClusters(text, max(room, 1), measure)
		if len(parts) == 0 {
			return []string{strings.TrimSpace(text)} // nothing but spaces
		}
		n := strconv.Itoa(len(parts))
		suffix := measure(" (" + n + "/" + n + ")")
		if room+suffix <= limit || room <= 1 {
			for i := range parts {
				parts[i] += " (" + strconv.Itoa(i+1) + "/" + n + ")"
			}
			return parts
		}
		room = limit - suffix
	}
}

// clusters cuts text into its grapheme clusters.
func clusters(text string) []string {
	var out []string
	g := uniseg.NewGraphemes(text)
	for g.Next() {
		out = append(out, g.Str())
	}
	return out
}

// packClusters cuts text into pieces measuring at most room, trimmed,
// each ending at the best break within its room.
func packClusters(text string, room int, measure func(string) int) []string {
	var parts []string
	rest := clusters(strings.TrimSpace(text))
	for len(rest) > 0 {
		// fit clusters of rest fit in room (at least one: a cluster is
		// never cut).
		fit, size := 0, 0
		for fit < len(rest) {
			s := measure(rest[fit])
			if size+s > room && fit > 0 {
				break
			}
			size += s
			fit++
		}
		if fit == len(rest) {
			parts = append(parts, strings.Join(rest, ""))
			break
		}
		cut := breakAfter(rest[:fit+1])
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

// breakAfter is where to end a part that may take window[:len(window)-1]:
// after the last paragraph break, line break, sentence end or space in
// its second half, else at the end of its room.
func breakAfter(window []string) int {
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
