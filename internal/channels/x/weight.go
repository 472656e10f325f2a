package x

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

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
// https://, and bare domains such as council.gov.uk/bins whose top-level
// domain is a known one. The count is exact for the text advisers write; it
// can differ from X's own by a few characters for contrived input (unusual
// top-level domains, emoji sequences X does not recognise).
func WeightedLength(s string) int {
	s = norm.NFC.String(s)
	w, pos := 0, 0
	for _, span := range linkSpans(s) {
		w += plainWeight(s[pos:span[0]]) + linkWeight
		pos = span[1]
	}
	return w + plainWeight(s[pos:])
}

// plainWeight measures text that holds no links.
func plainWeight(s string) int {
	w := 0
	for len(s) > 0 {
		n, emoji := cluster(s)
		if emoji {
			w += 2
		} else {
			for _, r := range s[:n] {
				w += runeWeight(r)
			}
		}
		s = s[n:]
	}
	return w
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

// --- clusters and emoji -----------------------------------------------------

const (
	zwj          = '\u200D'
	textStyle    = '\uFE0E' // variation selector 15: show as text
	emojiStyle   = '\uFE0F' // variation selector 16: show as emoji
	keycapEnding = '\u20E3'
)

// cluster returns the length in bytes of the user-perceived character that
// starts s, and whether it is an emoji sequence (which counts 2 as a whole).
// It follows Unicode's grapheme rules closely enough to never separate an
// emoji sequence, a flag or a letter from its combining marks.
func cluster(s string) (n int, emoji bool) {
	r, n := utf8.DecodeRuneInString(s)
	next := func() (rune, int) { return utf8.DecodeRuneInString(s[n:]) }

	switch {
	case isRegionalIndicator(r):
		// Two regional indicators make one flag.
		if r2, n2 := next(); isRegionalIndicator(r2) {
			n += n2
		}
		return n, true

	case r == '#' || r == '*' || ('0' <= r && r <= '9'):
		// A keycap: the character, an optional U+FE0F, then U+20E3.
		m := n
		if r2, n2 := next(); r2 == emojiStyle {
			m += n2
		}
		if r3, n3 := utf8.DecodeRuneInString(s[m:]); r3 == keycapEnding {
			return m + n3, true
		}

	case isPictographic(r):
		r2, n2 := next()
		if r2 == textStyle {
			// Asked to be shown as text: not counted as an emoji.
			return n + n2, false
		}
		if runeWeight(r) == 1 && r2 != emojiStyle {
			// ©, ® and the like are emoji only with U+FE0F.
			break
		}
		for {
			r2, n2 := next()
			switch {
			case r2 == emojiStyle || r2 == keycapEnding || isSkinTone(r2) || isTag(r2):
				n += n2
				continue
			case r2 == zwj:
				if r3, n3 := utf8.DecodeRuneInString(s[n+n2:]); isPictographic(r3) {
					n += n2 + n3
					continue
				}
			}
			return n, true
		}
	}

	// An ordinary character and whatever extends it.
	if r == '\r' {
		if r2, n2 := next(); r2 == '\n' {
			return n + n2, false
		}
	}
	for {
		r2, n2 := next()
		if n2 == 0 || !extends(r2) {
			return n, false
		}
		n += n2
	}
}

// extends reports whether r attaches to the character before it.
func extends(r rune) bool {
	return unicode.Is(unicode.M, r) || r == zwj || r == '\u200C' || isSkinTone(r) || isTag(r)
}

func isRegionalIndicator(r rune) bool { return 0x1F1E6 <= r && r <= 0x1F1FF }
func isSkinTone(r rune) bool          { return 0x1F3FB <= r && r <= 0x1F3FF }

// isTag reports whether r is a tag character, as in the flags of England,
// Scotland and Wales (a black flag followed by tags spelling "gbeng").
func isTag(r rune) bool { return 0xE0020 <= r && r <= 0xE007F }

// isPictographic reports whether r can start an emoji sequence. It covers
// Unicode's Extended_Pictographic property, widened to whole blocks where
// that is simpler; every rune it adds would count 2 anyway.
func isPictographic(r rune) bool {
	switch {
	case r == 0x00A9, r == 0x00AE, r == 0x203C, r == 0x2049, r == 0x2122, r == 0x2139,
		0x2194 <= r && r <= 0x2199, 0x21A9 <= r && r <= 0x21AA,
		0x231A <= r && r <= 0x231B, r == 0x2328, r == 0x23CF,
		0x23E9 <= r && r <= 0x23F3, 0x23F8 <= r && r <= 0x23FA,
		r == 0x24C2, 0x25AA <= r && r <= 0x25AB, r == 0x25B6, r == 0x25C0,
		0x25FB <= r && r <= 0x25FE, 0x2600 <= r && r <= 0x27BF,
		0x2934 <= r && r <= 0x2935, 0x2B05 <= r && r <= 0x2B07,
		0x2B1B <= r && r <= 0x2B1C, r == 0x2B50, r == 0x2B55,
		r == 0x3030, r == 0x303D, r == 0x3297, r == 0x3299,
		0x1F000 <= r && r <= 0x1FAFF:
		return true
	}
	return false
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
		link := s[start:end]

		if m[2] < 0 {
			// With a scheme: the host must at least contain a dot.
			rest := link[strings.Index(link, "//")+2:]
			if i := strings.IndexAny(rest, "/?#"); i >= 0 {
				rest = rest[:i]
			}
			if !strings.Contains(rest, ".") || strings.HasSuffix(rest, ".") {
				continue
			}
		} else {
			// A bare domain: X wants a top-level domain it knows, and
			// does not link a short country-code domain such as "it.is"
			// unless a path follows.
			tld := strings.ToLower(s[m[2]:m[3]])
			_, cc := countryTLDs[tld]
			_, g := genericTLDs[tld]
			if !cc && !g {
				continue
			}
			hasPath := end > m[3]
			domain := s[start:m[3]]
			if cc && !hasPath && strings.Count(domain, ".") == 1 && !strings.EqualFold(domain, "t.co") {
				continue
			}
		}
		spans = append(spans, [2]int{start, end})
	}
	return spans
}

// mayHoldLink is a quick test that saves running linkCandidate on most
// words: every link has a dot followed by a letter or digit.
func mayHoldLink(s string) bool {
	for i := strings.IndexByte(s, '.'); i >= 0 && i+1 < len(s); {
		if c := s[i+1] | 0x20; ('a' <= c && c <= 'z') || ('0' <= s[i+1] && s[i+1] <= '9') {
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

// genericTLDs are the generic top-level domains recognised in bare links: the
// originals and the newer ones in common use. X knows many more; a bare
// domain under an unlisted one is counted character by character.
var genericTLDs = wordSet(`
	com org net gov edu mil int info biz name pro mobi aero asia cat coop jobs
	museum tel travel post xxx
	app dev page blog shop store online site tech xyz club live news cloud
	email digital website space top vip wiki art design media agency services
	solutions network systems software support help community events team
	group global world today life earth eco energy green health care clinic
	hospital school college university academy education london scot wales
	cymru irish scot bbc google amazon youtube microsoft apple`)

// countryTLDs are the two-letter country-code top-level domains.
var countryTLDs = wordSet(`
	ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi
	bj bm bn bo br bs bt bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu
	cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu fi fj fk fm fo fr ga
	gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id
	ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la
	lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms
	mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph
	pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sj sk
	sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt
	tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw`)

func wordSet(words string) map[string]struct{} {
	set := make(map[string]struct{})
	for _, w := range strings.Fields(words) {
		set[w] = struct{}{}
	}
	return set
}
