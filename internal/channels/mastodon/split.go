package mastodon

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Split cuts a text longer than limit characters into numbered parts
// ("… (1/3)"), each within limit, at a paragraph, line or sentence end
// where it can, else at a space, else anywhere. A text within limit is one
// part, unnumbered.
func Split(text string, limit int) []string {
	if limit <= 0 || utf8.RuneCountInString(text) <= limit {
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

// pack cuts text into pieces of at most room characters, trimmed, each
// ending at the best break within its room.
func pack(text string, room int) []string {
	var parts []string
	rest := []rune(strings.TrimSpace(text))
	for len(rest) > 0 {
		if len(rest) <= room {
			parts = append(parts, string(rest))
			break
		}
		cut := breakAt(rest[:room+1])
		part := strings.TrimSpace(string(rest[:cut]))
		if part != "" {
			parts = append(parts, part)
		}
		rest = []rune(strings.TrimLeft(string(rest[cut:]), " \n\t"))
	}
	return parts
}

// breakAt is where to end a part that may take window[:len(window)-1]:
// after the last paragraph break, line break, sentence end or space in
// its second half, else at the end of its room.
func breakAt(window []rune) int {
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
	for _, match := range []func(i int) bool{
		func(i int) bool { return i >= 2 && window[i-1] == '\n' && window[i-2] == '\n' },
		func(i int) bool { return window[i-1] == '\n' },
		func(i int) bool {
			return window[i] == ' ' && (window[i-1] == '.' || window[i-1] == '!' || window[i-1] == '?')
		},
		func(i int) bool { return window[i] == ' ' || window[i] == '\n' },
	} {
		if i := last(match); i > 0 {
			return i
		}
	}
	return room
}
