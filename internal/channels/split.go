package channels

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// SplitNumbered cuts a message longer than limit characters (code points)
// into numbered parts ("… (1/3)"), each within limit, at sentence
// boundaries where it can, else at word boundaries, else anywhere: for
// networks whose long messages go as several (Messenger, WhatsApp,
// Telegram). A text within limit is one part, unnumbered.
func SplitNumbered(text string, limit int) []string {
	if limit <= 0 || utf8.RuneCountInString(text) <= limit {
		return []string{text}
	}
	// Leave room for the numbers; more parts than the guess need more.
	room := limit - len(" (9/9)")
	for {
		parts := pack(text, max(room, 1))
		if len(parts) == 0 {
			return []string{strings.TrimSpace(text)} // nothing but spaces
		}
		suffix := len(" (" + strconv.Itoa(len(parts)) + "/" + strconv.Itoa(len(parts)) + ")")
		if room+suffix <= limit || room <= 1 {
			for i := range parts {
				parts[i] += " (" + strconv.Itoa(i+1) + "/" + strconv.Itoa(len(parts)) + ")"
			}
			return parts
		}
		room = limit - suffix
	}
}

// pack fills parts of at most room characters with whole sentences, else
// words, else pieces of words.
func pack(text string, room int) []string {
	var parts []string
	var cur strings.Builder
	n := 0
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			parts = append(parts, s)
		}
		cur.Reset()
		n = 0
	}
	add := func(piece string, size int) {
		if n+size > room {
			flush()
		}
		cur.WriteString(piece)
		n += size
	}
	rest, state := text, -1
	for len(rest) > 0 {
		var sentence string
		sentence, rest, state = uniseg.FirstSentenceInString(rest, state)
		if size := utf8.RuneCountInString(sentence); size <= room {
			add(sentence, size)
			continue
		}
		for _, w := range strings.SplitAfter(sentence, " ") {
			r := []rune(w)
			for len(r) > room {
				add(string(r[:room]), room)
				r = r[room:]
			}
			add(string(r), len(r))
		}
	}
	flush()
	return parts
}
