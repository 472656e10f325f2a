package twilio

import "unicode/utf16"

// Segment sizes. A single SMS holds 160 GSM-7 septets or 70 UCS-2 units; a
// message over that is sent as concatenated segments, each losing room to
// the header that joins them up again: 153 septets or 67 units.
const (
	GSMSingle  = 160
	GSMPart    = 153
	UCS2Single = 70
	UCS2Part   = 67
)

// Encoding is how an SMS carries its text.
type Encoding string

// The two encodings: the GSM 03.38 default alphabet, or UCS-2 as soon as
// one character is outside it.
const (
	GSM7 Encoding = "GSM-7"
	UCS2 Encoding = "UCS-2"
)

// gsmBasic is the GSM 03.38 default alphabet: each costs one septet. The
// table is in the standard's order, 0x00 to 0x7F (0x1B, the escape to the
// extension table, left out). Ç (0x09) is a capital: ç is not in it.
var gsmBasic = func() map[rune]bool {
	const table = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ" + "ÆæßÉ" +
		" !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§" +
		"¿abcdefghijklmnopqrstuvwxyzäöñüà"
	m := make(map[rune]bool, 127)
	for _, r := range table {
		m[r] = true
	}
	return m
}()

// gsmExtension is the GSM 03.38 extension table's characters: each costs
// two septets (the escape and the character), and the two are never split
// across segments.
var gsmExtension = map[rune]bool{
	'\f': true, '^': true, '{': true, '}': true, '\\': true, '[': true, '~': true, ']': true, '|': true, '€': true,
}

// Segments counts the segments an SMS of text takes, and says in which
// encoding: GSM-7 when every character is in the GSM 03.38 alphabet or its
// extension table (which count two septets), else UCS-2, counted in UTF-16
// units (an emoji outside the Basic Multilingual Plane counts two). A text
// over one segment is cut into segments of 153 septets or 67 units, an
// extension character's two septets and a surrogate pair's two units never
// split. An empty text takes no segment.
func Segments(text string) (int, Encoding) {
	if text == "" {
		return 0, GSM7
	}
	costs, enc := septets(text)
	if enc == UCS2 {
		costs = costs[:0]
		for _, r := range text {
			costs = append(costs, utf16.RuneLen(r))
		}
		return pack(costs, UCS2Single, UCS2Part), UCS2
	}
	return pack(costs, GSMSingle, GSMPart), GSM7
}

// CountSegments is Segments without the encoding: the driver's measure.
func CountSegments(text string) int {
	n, _ := Segments(text)
	return n
}

// septets is each character's cost in GSM-7, or UCS2 when one is not in
// the alphabet.
func septets(text string) ([]int, Encoding) {
	costs := make([]int, 0, len(text))
	for _, r := range text {
		switch {
		case gsmBasic[r]:
			costs = append(costs, 1)
		case gsmExtension[r]:
			costs = append(costs, 2)
		default:
			return costs, UCS2
		}
	}
	return costs, GSM7
}

// pack counts the segments of characters of the given costs: one when
// they fit single, else parts of at most part, a character never split.
func pack(costs []int, single, part int) int {
	total := 0
	for _, c := range costs {
		total += c
	}
	if total <= single {
		return 1
	}
	n, used := 1, 0
	for _, c := range costs {
		if used+c > part {
			n++
			used = 0
		}
		used += c
	}
	return n
}
