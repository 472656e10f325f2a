package x

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
	"golang.org/x/text/unicode/norm"
)

// MaxPostWeight is the longest post X accepts, in weighted characters.
const MaxPostWeight = 280

// linkWeight is what X counts for any link, whatever its length: every link
// is shortened to a t.co address.
const linkWeight = 23

// WeightedLength measures s the way X does (twitter-text version 3) when it
// checks a post against MaxPostWeight:
//
//   - the text is NFC-normalised first;
//   - every link counts 23, however long;
//   - an emoji counts 2, including sequences joined by U+200D, with skin-tone
//     modifiers or variation selectors, flags and keycaps;
//   - any other code point counts 1 if it lies in U+0000–U+10FF (Latin,
//     Greek, Cyrillic, Hebrew, Arabic, Indic scripts and more) or in the
//     general punctuation ranges U+2000–U+200D, U+2010–U+201F and
//     U+2032–U+2037, and 2 otherwise (CJK, most symbols).
//
// Links are found as X finds them: addresses starting with http:// or
// https://, and bare domains such as council.gov.uk/bins, whose host ends in
// a known top-level domain. The count is exact for the text advisers write;
// it can differ from X's own by a few characters for contrived input
// (unusual top-level domains, emoji sequences X does not recognise).
func WeightedLength(s string) int {
	s = norm.NFC.String(s)
	w, pos := 0, 0
	for _, span := range linkSpans(s) {
		w += plainWeight(s[pos:span[0]]) + linkWeight
		pos = span[1]
	}
	return w + plainWeight(s[pos:])
}

// plainWeight measures text that holds no links, one user-perceived
// character (grapheme cluster) at a time.
func plainWeight(s string) int {
	w, state := 0, -1
	for s != "" {
		var c string
		c, s, _, state = uniseg.FirstGraphemeClusterInString(s, state)
		w += clusterWeight(c)
	}
	return w
}

// clusterWeight is the weight of one grapheme cluster outside links: 2 for
// an emoji sequence, else the sum of its code points' weights.
func clusterWeight(c string) int {
	r, n := utf8.DecodeRuneInString(c)
	if n == len(c) {
		return runeWeight(r)
	}
	if !isEmoji(c) {
		w := 0
		for _, r := range c {
			w += runeWeight(r)
		}
		return w
	}
	// The cluster can carry a combining mark or a joiner after the emoji
	// sequence; X counts those on their own.
	w := 2
	for {
		r, n := utf8.DecodeLastRuneInString(c)
		if r == emojiStyle || r == keycapEnding || (r != zwj && !unicode.Is(unicode.M, r)) {
			return w
		}
		w += runeWeight(r)
		c = c[:len(c)-n]
	}
}

// runeWeight is the weight of a code point outside links and emoji.
func runeWeight(r rune) int {
	switch {
	case r <= 0x10FF,
		0x2000 <= r && r <= 0x200D,
		0x2010 <= r && r <= 0x201F,
		0x2032 <= r && r <= 0x2037:
		return 1
	}
	return 2
}

const (
	zwj          = '\u200D'
	textStyle    = '\uFE0E' // variation selector 15: show as text
	emojiStyle   = '\uFE0F' // variation selector 16: show as emoji
	keycapEnding = '\u20E3'
)

// isEmoji reports whether the grapheme cluster c is an emoji sequence as X
// recognises them: a flag, a keycap, or a pictograph with its modifiers
// (skin tones, U+FE0F, tags, pictographs joined by U+200D), unless U+FE0E
// asks for it to be shown as text. ©, ® and the like, which count 1 alone,
// are emoji only with U+FE0F.
func isEmoji(c string) bool {
	r, n := utf8.DecodeRuneInString(c)
	switch {
	case strings.ContainsRune(c, textStyle):
		return false
	case 0x1F1E6 <= r && r <= 0x1F1FF: // regional indicators, two to a flag
		return true
	case r == '#' || r == '*' || ('0' <= r && r <= '9'):
		return c[n:] == string(keycapEnding) || c[n:] == string(emojiStyle)+string(keycapEnding)
	case pictographic(r):
		return runeWeight(r) == 2 || strings.ContainsRune(c, emojiStyle)
	}
	return false
}

// pictographic reports whether r has Unicode's Extended_Pictographic
// property, that of the characters emoji sequences start with. uniseg keeps
// its property tables to itself but applies this one in grapheme rule GB11:
// r, U+200D and a pictograph make one cluster only if r is a pictograph.
func pictographic(r rune) bool {
	var buf [16]byte
	probe := append(utf8.AppendRune(buf[:0], r), "\u200D\U0001F600"...)
	c, _, _, _ := uniseg.FirstGraphemeCluster(probe, -1)
	return len(c) == len(probe)
}

// --- links ------------------------------------------------------------------

// linkCandidate finds what may be a link: an http(s) address, or a bare
// domain (ASCII labels and a top-level domain) with an optional port and
// path. linkSpans then applies the rules X applies.
var linkCandidate = regexp.MustCompile(
	`(?i)https?://\S+` +
		`|(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+([a-z]{2,63})\b(?::[0-9]{1,5})?([/?#]\S*)?`)

// linkSpans returns the byte ranges of s that X counts as links, in order.
func linkSpans(s string) [][2]int {
	if !mayHoldLink(s) {
		return nil
	}
	var spans [][2]int
	for _, m := range linkCandidate.FindAllStringSubmatchIndex(s, -1) {
		start, end := m[0], m[1]
		if !linkMayStartAfter(s[:start], m[2] >= 0) {
			continue
		}
		end = start + linkEnd(s[start:end])

		var host string
		if m[2] < 0 {
			// With a scheme: the host runs to the port, path, query or
			// fragment.
			host = s[start:end]
			host = host[strings.Index(host, "//")+2:]
			if i := strings.IndexAny(host, ":/?#"); i >= 0 {
				host = host[:i]
			}
		} else {
			// A bare domain glued to @, + or - is no link for X (the
			// start of an e-mail address, a word).
			if m[3] < len(s) && strings.IndexByte("@+-", s[m[3]]) >= 0 {
				continue
			}
			host = s[start:m[3]]
		}
		if !linkHost(strings.ToLower(host)) {
			continue
		}
		spans = append(spans, [2]int{start, end})
	}
	return spans
}

// mayHoldLink is a quick test that saves running linkCandidate on most
// words: every link has a dot followed by a letter or digit (or, in a
// domain name that is not ASCII, any other character).
func mayHoldLink(s string) bool {
	for i := strings.IndexByte(s, '.'); i >= 0 && i+1 < len(s); {
		if c := s[i+1] | 0x20; ('a' <= c && c <= 'z') || ('0' <= s[i+1] && s[i+1] <= '9') || s[i+1] >= utf8.RuneSelf {
			return true
		}
		j := strings.IndexByte(s[i+1:], '.')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

// linkMayStartAfter reports whether a link may start right after before.
// Like X, it does not link text glued to a word, a mention, a hashtag or a
// cashtag, and (for bare domains) text after - _ . or /.
func linkMayStartAfter(before string, bare bool) bool {
	r, _ := utf8.DecodeLastRuneInString(before)
	switch {
	case before == "":
		return true
	case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)),
		r == '@', r == '＠', r == '$', r == '#', r == '＃':
		return false
	case bare && strings.ContainsRune("-_./", r):
		return false
	}
	return true
}

// linkEnd returns how much of a candidate is the link: it stops before the
// first character that cannot be part of an address (an emoji, CJK
// punctuation) and drops trailing punctuation, keeping a closing bracket
// only when the link opened it, as in Wikipedia addresses.
func linkEnd(link string) int {
	for i, r := range link {
		if r >= utf8.RuneSelf && !unicode.In(r, unicode.L, unicode.N, unicode.M) {
			link = link[:i]
			break
		}
	}
	for link != "" {
		last := link[len(link)-1]
		switch {
		case strings.IndexByte(".,:;!?'\"*", last) >= 0:
		case last == ')' && strings.Count(link, "(") < strings.Count(link, ")"):
		case last == ']' && strings.Count(link, "[") < strings.Count(link, "]"):
		case last == '}' && strings.Count(link, "{") < strings.Count(link, "}"):
		default:
			return len(link)
		}
		link = link[:len(link)-1]
	}
	return 0
}

// linkHost reports whether X takes host, with or without a scheme, as the
// host of a link: labels of letters, digits, - and _, none longer than DNS
// allows (63 characters, once Punycode-encoded), and a known top-level
// domain.
func linkHost(host string) bool {
	ascii, err := idna.ToASCII(host)
	if err != nil || !strings.Contains(ascii, ".") {
		return false
	}
	labels := strings.Split(ascii, ".")
	for _, label := range labels {
		if label == "" || len(label) > 63 || strings.IndexFunc(label, notHostChar) >= 0 {
			return false
		}
	}
	// Top-level domains start with a letter; an IP address is no host
	// for X.
	if tld := labels[len(labels)-1]; tld[0] < 'a' || tld[0] > 'z' {
		return false
	}
	return knownTLD(ascii)
}

func notHostChar(r rune) bool {
	return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_'
}

// knownTLD reports whether domain (in lower case) ends in a top-level domain
// of the public suffix list. For an unknown one the list's default rule
// makes the last label a suffix on its own, outside ICANN's section.
func knownTLD(domain string) bool {
	suffix, icann := publicsuffix.PublicSuffix(domain)
	return icann || strings.Contains(suffix, ".")
}
