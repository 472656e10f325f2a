package x

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"golang.org/x/text/unicode/norm"
)

// SplitThread splits text into the posts of a numbered self-reply thread,
// each no heavier than limit by WeightedLength. Text that fits is returned
// unchanged as the only part. Otherwise every part ends with " (i/n)" and:
//
//   - parts break between words, at a paragraph or sentence end when one
//     falls in the second half of a part;
//   - a link is never split;
//   - a word too long for a part on its own is cut between characters,
//     never inside an emoji sequence or a letter with its accents;
//   - runs of spaces collapse to one and paragraph breaks are kept, so the
//     words of the parts, in order, are the words of the text.
//
// Split parts are NFC-normalised, as X normalises posts itself. Every part
// fits whenever limit leaves room for the part number and a link (40 or
// more); MaxPostWeight always does.
func SplitThread(text string, limit int) []string {
	if WeightedLength(text) <= limit {
		return []string{text}
	}
	words := tokenize(norm.NFC.String(text))
	if len(words) == 0 {
		// Only whitespace, and too much of it.
		return []string{""}
	}
	// The room for text depends on how many digits n has, and n depends on
	// the room: pack for a suffix of d digits until n needs no more.
	for digits := 1; ; digits++ {
		room := limit - len(" (/)") - 2*digits
		parts := pack(words, room)
		if len(parts) == 1 {
			// Collapsing whitespace was enough.
			return parts
		}
		if n := len(parts); len(strconv.Itoa(n)) <= digits {
			for i := range parts {
				parts[i] += " (" + strconv.Itoa(i+1) + "/" + strconv.Itoa(n) + ")"
			}
			return parts
		}
	}
}

// word is one whitespace-separated piece of the text, or one piece of a
// word that had to be cut.
type word struct {
	text string
	// sep goes before the word when it follows another in the same part:
	// " ", "\n" or "\n\n" after whitespace, "" between the pieces of a cut word.
	sep string
	// sentenceEnd is set when the word ends a sentence.
	sentenceEnd bool
	// weight is the word's WeightedLength.
	weight int
}

// tokenize splits text into words, remembering line and paragraph breaks.
func tokenize(text string) []word {
	var words []word
	newlines, start := 0, -1
	for i, r := range text {
		switch {
		case unicode.IsSpace(r):
			if start >= 0 {
				words = append(words, newWord(text[start:i], newlines))
				start, newlines = -1, 0
			}
			if r == '\n' {
				newlines++
			}
		case start < 0:
			start = i
		}
	}
	if start >= 0 {
		words = append(words, newWord(text[start:], newlines))
	}
	return words
}

func newWord(text string, newlinesBefore int) word {
	sep := " "
	switch {
	case newlinesBefore == 1:
		sep = "\n"
	case newlinesBefore > 1:
		sep = "\n\n"
	}
	return word{text: text, sep: sep, sentenceEnd: endsSentence(text), weight: WeightedLength(text)}
}

// endsSentence reports whether w ends with a full stop, question or
// exclamation mark or ellipsis, perhaps inside closing quotes or brackets.
func endsSentence(w string) bool {
	w = strings.TrimRight(w, `"')]”’»`)
	r, _ := utf8.DecodeLastRuneInString(w)
	return strings.ContainsRune(".!?…", r)
}

// join renders words as the text of one part.
func join(words []word) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteString(w.sep)
		}
		b.WriteString(w.text)
	}
	return b.String()
}

// pack fills parts of at most room weight with words, in order.
func pack(words []word, room int) []string {
	words = cutLongWords(words, room)
	var parts []string
	for start := 0; start < len(words); {
		end := fill(words, start, room)
		if end < len(words) {
			end = betterBreak(words, start, end, room)
		}
		parts = append(parts, join(words[start:end]))
		start = end
	}
	return parts
}

// fill returns the end of the longest run of words from start that fits
// room; the run holds at least one word.
//
// Words separated by whitespace weigh the sum of their weights and their
// separators' (no link or emoji spans whitespace), which keeps this linear.
// The pieces of a cut word are measured together, as joining them can
// form a link.
func fill(words []word, start, room int) int {
	end, total := start+1, words[start].weight
	for ; end < len(words); end++ {
		if sep := words[end].sep; sep != "" {
			total += len(sep) + words[end].weight
		} else {
			total = WeightedLength(join(words[start : end+1]))
		}
		if total > room {
			break
		}
	}
	return end
}

// betterBreak returns where to end the part words[start:end], which is as
// full as it can be: after the last paragraph, else the last sentence or
// line, in the part's second half, else at end.
func betterBreak(words []word, start, end, room int) int {
	halfFull := func(b int) bool { return 2*WeightedLength(join(words[start:b])) >= room }
	for b := end - 1; b > start; b-- {
		if strings.Contains(words[b].sep, "\n\n") {
			if halfFull(b) {
				return b
			}
			break
		}
	}
	for b := end - 1; b > start; b-- {
		if words[b].sep != "" && (words[b-1].sentenceEnd || words[b].sep != " ") {
			if halfFull(b) {
				return b
			}
			break
		}
	}
	return end
}

// cutLongWords replaces every word heavier than room by pieces that fit.
func cutLongWords(words []word, room int) []word {
	var out []word
	for _, w := range words {
		if w.weight <= room {
			out = append(out, w)
			continue
		}
		pieces := cut(w.text, room)
		for i, p := range pieces {
			piece := word{text: p, weight: WeightedLength(p)}
			if i == 0 {
				piece.sep = w.sep
			}
			piece.sentenceEnd = i == len(pieces)-1 && w.sentenceEnd
			out = append(out, piece)
		}
	}
	return out
}

// cut splits s into pieces of at most room weight, keeping links and
// characters whole. A character heavier than room on its own (a letter with
// hundreds of accents) is cut between code points.
func cut(s string, room int) []string {
	us := units(s, room)
	var pieces []string
	for i := 0; i < len(us); {
		// Fill by the units' own weights, then make sure the piece as a
		// whole fits: joined units can form a link.
		j, total := i+1, us[i].weight
		for j < len(us) && total+us[j].weight <= room {
			total += us[j].weight
			j++
		}
		for j > i+1 && WeightedLength(joinUnits(us[i:j])) > room {
			j--
		}
		pieces = append(pieces, joinUnits(us[i:j]))
		i = j
	}
	return pieces
}

// unit is a piece of text cut never divides, with its weight.
type unit struct {
	text   string
	weight int
}

func joinUnits(us []unit) string {
	var b strings.Builder
	for _, u := range us {
		b.WriteString(u.text)
	}
	return b.String()
}

// units splits s into the smallest pieces cut may separate: links and
// characters, or code points where those are heavier than room.
func units(s string, room int) []unit {
	var out []unit
	add := func(text string) {
		if w := WeightedLength(text); w <= room {
			out = append(out, unit{text, w})
			return
		}
		for text != "" {
			_, n := utf8.DecodeRuneInString(text)
			out = append(out, unit{text[:n], WeightedLength(text[:n])})
			text = text[n:]
		}
	}
	addClusters := func(t string) {
		for state := -1; t != ""; {
			var c string
			c, t, _, state = uniseg.FirstGraphemeClusterInString(t, state)
			add(c)
		}
	}
	pos := 0
	for _, span := range linkSpans(s) {
		addClusters(s[pos:span[0]])
		add(s[span[0]:span[1]])
		pos = span[1]
	}
	addClusters(s[pos:])
	return out
}
