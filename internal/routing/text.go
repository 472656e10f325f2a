package routing

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kljensen/snowball/english"
	"github.com/rivo/uniseg"
	"golang.org/x/text/unicode/norm"
)

// fold lower-cases s ("ß" becomes "ss"), strips accents and other
// combining marks after compatibility decomposition (so ligatures and
// full-width letters become plain ones) (é → e, the Welsh ŵ ŷ â → w y a), turns
// typographic apostrophes and quotes into plain ones and collapses runs of
// white space into one space. Regular expressions are matched against it.
func fold(s string) string {
	s = norm.NFKD.String(strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
	s = specials.Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

// specials are the foldings lower-casing leaves out: typographic quotes
// and the German sharp s.
var specials = strings.NewReplacer("\u2018", "'", "\u2019", "'", "\u02bc", "'", "\u201c", `"`, "\u201d", `"`, "ß", "ss")

// token is one word of a message: its folded form (apostrophes dropped, so
// "I'll" and "Ill" are both "ill") and its English stem ("potholes" and
// "pothole" are both "pothol", "flooded" and "flooding" both "flood").
type token struct {
	word, stem string
	alts       []string // stems of configured words this word is one typo away from
}

// text is a message prepared for matching: the folded text, its words, and
// where each word and stem occurs.
type text struct {
	folded string
	tokens []token
	byStem map[string][]int
	byWord map[string][]int
	byTypo map[string][]int // stem → positions of words one typo away from it
}

// analyse prepares a message once for every rule. With a typo index, words
// that are not themselves configured are also looked up one typo away.
func analyse(s string, typos *typoIndex) *text {
	f := fold(s)
	t := &text{folded: f, tokens: words(f)}
	t.byStem = make(map[string][]int, len(t.tokens))
	t.byWord = make(map[string][]int, len(t.tokens))
	for i := range t.tokens {
		tk := &t.tokens[i]
		t.byStem[tk.stem] = append(t.byStem[tk.stem], i)
		t.byWord[tk.word] = append(t.byWord[tk.word], i)
		if typos != nil {
			tk.alts = typos.lookup(tk.word, tk.stem)
			for _, k := range tk.alts {
				if t.byTypo == nil {
					t.byTypo = map[string][]int{}
				}
				t.byTypo[k] = append(t.byTypo[k], i)
			}
		}
	}
	return t
}

// words splits folded text at Unicode word boundaries (UAX #29), so
// punctuation and hyphens separate words ("fly-tipping" is "fly" "tipping")
// and "cabinet" stays one word that "bin" cannot match. Segments without a
// letter or digit (spaces, punctuation, emoji) are dropped.
func words(folded string) []token {
	var out []token
	state := -1
	for s := folded; s != ""; {
		var w string
		w, s, state = uniseg.FirstWordInString(s, state)
		if !hasLetterOrDigit(w) {
			continue
		}
		w = strings.ReplaceAll(w, "'", "")
		out = append(out, token{word: w, stem: stem(w)})
	}
	return out
}

func hasLetterOrDigit(w string) bool {
	for _, r := range w {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return true
		}
	}
	return false
}

// stem reduces an English word to its Porter2 (Snowball) stem. Words of
// other scripts pass through unchanged.
func stem(w string) string {
	for _, r := range w {
		if r > unicode.MaxLatin1 {
			return w
		}
	}
	return english.Stem(w, true)
}

// term is one word of a configured word or phrase.
type term struct {
	key   string // stem, or the folded word when exact
	word  string // the folded word as configured
	exact bool   // written "=word": only this very word, no other forms
	typos bool   // also matches a word one typo away (rules with typos: true)
}

// phrase is one entry of a configured word list: a single word, or several
// words that must appear in order with at most gap other words between
// consecutive ones.
type phrase struct {
	src   string
	terms []term
}

// parsePhrase turns a configured entry into terms. A word written with a
// leading "=" matches only that exact (folded) word: "=park" matches "park"
// but not "parking". It reports false when the entry holds no word.
func parsePhrase(src string) (phrase, bool) {
	p := phrase{src: src}
	for _, field := range strings.Fields(src) {
		exact := strings.HasPrefix(field, "=")
		for _, tk := range words(fold(strings.TrimPrefix(field, "="))) {
			if exact {
				p.terms = append(p.terms, term{key: tk.word, word: tk.word, exact: true})
			} else {
				p.terms = append(p.terms, term{key: tk.stem, word: tk.word})
			}
		}
	}
	return p, len(p.terms) > 0
}

func (t *text) positions(tm term) []int {
	if tm.exact {
		return t.byWord[tm.key]
	}
	if tm.typos && len(t.byTypo[tm.key]) > 0 {
		return append(slices.Clone(t.byStem[tm.key]), t.byTypo[tm.key]...)
	}
	return t.byStem[tm.key]
}

func (t *text) at(i int, tm term) bool {
	if tm.exact {
		return t.tokens[i].word == tm.key
	}
	return t.tokens[i].stem == tm.key || tm.typos && slices.Contains(t.tokens[i].alts, tm.key)
}

// find reports the message's words that match p, from its first word to its
// last (gap words included), or "" when p does not occur.
func (t *text) find(p phrase, gap int) (string, bool) {
	for _, start := range t.positions(p.terms[0]) {
		if end, ok := t.follow(p.terms[1:], start, gap); ok {
			ws := make([]string, 0, end-start+1)
			for i := start; i <= end; i++ {
				ws = append(ws, t.tokens[i].word)
			}
			return strings.Join(ws, " "), true
		}
	}
	return "", false
}

// follow matches rest after the word at prev, trying every allowed gap so
// that an early candidate cannot hide a later one that completes the phrase.
func (t *text) follow(rest []term, prev, gap int) (int, bool) {
	if len(rest) == 0 {
		return prev, true
	}
	for q := prev + 1; q <= prev+1+gap && q < len(t.tokens); q++ {
		if t.at(q, rest[0]) {
			if end, ok := t.follow(rest[1:], q, gap); ok {
				return end, true
			}
		}
	}
	return 0, false
}

// Typo tolerance. A rule with typos: true also matches a message word one
// edit (a letter added, missing or changed, or two neighbours swapped) away
// from one of its words, when the configured word has at least
// typoMinWord letters or its stem at least typoMinStem: "recyling" and
// "pothloes" match, short words never do ("bin" is not "bun"). A message
// word that any rule names ("barking", "parking") is taken as written and
// never as a typo of another.
const (
	typoMinWord = 7
	typoMinStem = 6
)

type typoIndex struct {
	variants map[string][]typoForm // a form, or the form with one letter deleted → forms
	vocab    map[string]bool       // every configured word and stem
}

type typoForm struct{ form, key string }

func newTypoIndex() *typoIndex {
	return &typoIndex{variants: map[string][]typoForm{}, vocab: map[string]bool{}}
}

// known records a configured term so that it is never read as a typo.
func (x *typoIndex) known(tm term) {
	x.vocab[tm.word] = true
	x.vocab[tm.key] = true
}

// add makes tm match one typo away; it reports whether tm is long enough.
func (x *typoIndex) add(tm term) bool {
	ok := false
	if utf8.RuneCountInString(tm.word) >= typoMinWord {
		x.addForm(tm.word, tm.key)
		ok = true
	}
	if utf8.RuneCountInString(tm.key) >= typoMinStem {
		x.addForm(tm.key, tm.key)
		ok = true
	}
	return ok
}

func (x *typoIndex) addForm(form, key string) {
	for _, v := range append(deletions(form), form) {
		f := typoForm{form: form, key: key}
		if !slices.Contains(x.variants[v], f) {
			x.variants[v] = append(x.variants[v], f)
		}
	}
}

// lookup returns the stems of configured words that word (or its stem) is
// one typo away from.
func (x *typoIndex) lookup(word, stem string) []string {
	if x.vocab[word] || x.vocab[stem] || utf8.RuneCountInString(word) < typoMinStem-1 {
		return nil
	}
	var keys []string
	for _, w := range []string{word, stem} {
		for _, v := range append(deletions(w), w) {
			for _, f := range x.variants[v] {
				if !slices.Contains(keys, f.key) && oneEdit(w, f.form) {
					keys = append(keys, f.key)
				}
			}
		}
	}
	return keys
}

// deletions lists s with each one of its letters left out.
func deletions(s string) []string {
	r := []rune(s)
	out := make([]string, 0, len(r))
	for i := range r {
		out = append(out, string(r[:i])+string(r[i+1:]))
	}
	return out
}

// oneEdit tells whether a and b differ by at most one insertion, deletion,
// substitution or swap of neighbouring letters.
func oneEdit(a, b string) bool {
	x, y := []rune(a), []rune(b)
	if len(x) > len(y) {
		x, y = y, x
	}
	if len(y)-len(x) > 1 {
		return false
	}
	i := 0
	for i < len(x) && x[i] == y[i] {
		i++
	}
	if i == len(x) {
		return true // equal, or one letter added at the end
	}
	if len(x) == len(y) {
		if string(x[i+1:]) == string(y[i+1:]) {
			return true // one letter changed
		}
		return i+1 < len(x) && x[i] == y[i+1] && x[i+1] == y[i] && string(x[i+2:]) == string(y[i+2:])
	}
	return string(x[i:]) == string(y[i+1:]) // one letter added
}
