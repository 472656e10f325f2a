package routing

import (
	"slices"
	"testing"
)

func TestFold(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Café  CRÈME", "cafe creme"},
		{"Ffordd Pen-y-ŵyn, Llanfair Caereinion — ŷ â", "ffordd pen-y-wyn, llanfair caereinion — y a"},
		{"I\u2019ll  \n phone", "i'll phone"},
		{"STRASSE Straße", "strasse strasse"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := fold(tt.in); got != tt.want {
			t.Errorf("fold(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWords(t *testing.T) {
	tests := []struct {
		in    string
		words []string
		stems []string
	}{
		{"Bins NOT collected!!", []string{"bins", "not", "collected"}, []string{"bin", "not", "collect"}},
		{"fly-tipping, again 😡", []string{"fly", "tipping", "again"}, []string{"fli", "tip", "again"}},
		{"I'll call 999", []string{"ill", "call", "999"}, []string{"ill", "call", "999"}},
		{"potholes flooded flooding", []string{"potholes", "flooded", "flooding"}, []string{"pothol", "flood", "flood"}},
		{"cabinet", []string{"cabinet"}, []string{"cabinet"}},
		{"...!?", nil, nil},
	}
	for _, tt := range tests {
		toks := words(fold(tt.in))
		var ws, ss []string
		for _, tk := range toks {
			ws = append(ws, tk.word)
			ss = append(ss, tk.stem)
		}
		if !slices.Equal(ws, tt.words) || !slices.Equal(ss, tt.stems) {
			t.Errorf("words(%q) = %q stems %q, want %q stems %q", tt.in, ws, ss, tt.words, tt.stems)
		}
	}
}

func TestFind(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		gap     int
		text    string
		want    string // "" means no match
	}{
		{"plural", "bin", 0, "My BINS were left", "bins"},
		{"stem -ed", "flood", 0, "the road flooded again", "flooded"},
		{"stem -ing", "flooded", 0, "Flooding outside no 4", "flooding"},
		{"word boundary", "bin", 0, "kitchen cabinet broken", ""},
		{"word boundary inside compound", "fire", 0, "neighbours bonfire smoke", ""},
		{"accents", "cafe", 0, "the CAFÉ on Heol Ŵyn", "cafe"},
		{"welsh circumflex in pattern", "heol wyn", 0, "outside Heol Ŵyn", "heol wyn"},
		{"punctuation between words", "fly tipping", 0, "fly-tipping in the lane", "fly tipping"},
		{"apostrophe folded", "i'll kill", 0, "Ill kill you", "ill kill"},
		{"phrase exact order", "bin collected", 0, "bin collected late", "bin collected"},
		{"phrase no gap allowed", "bin collected", 0, "bin not collected", ""},
		{"phrase with gap", "bin collected", 2, "bin was not collected", "bin was not collected"},
		{"phrase gap too small", "bin collected", 1, "bin was not collected", ""},
		{"phrase wrong order", "bin collected", 2, "collected the bin", ""},
		{"phrase later candidate", "a b c", 1, "a b b x c", "a b b x c"},
		{"phrase second start", "house on fire", 1, "house is ok. house is on fire", "house is on fire"},
		{"exact word only", "=park", 0, "parking outside", ""},
		{"exact word hit", "=park", 0, "the park gates", "park"},
		{"digits", "999", 0, "call 999 now", "999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := parsePhrase(tt.pattern)
			if !ok {
				t.Fatalf("parsePhrase(%q) holds no word", tt.pattern)
			}
			got, hit := analyse(tt.text, nil).find(p, tt.gap)
			if hit != (tt.want != "") || got != tt.want {
				t.Errorf("find(%q, gap %d) in %q = %q, %v; want %q", tt.pattern, tt.gap, tt.text, got, hit, tt.want)
			}
		})
	}
}

func TestParsePhraseEmpty(t *testing.T) {
	for _, s := range []string{"", "  ", "!!", "="} {
		if _, ok := parsePhrase(s); ok {
			t.Errorf("parsePhrase(%q) reported a word", s)
		}
	}
}

func TestOneEdit(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"recycling", "recycling", true},
		{"recyling", "recycling", true},   // letter missing
		{"recycliing", "recycling", true}, // letter added
		{"recucling", "recycling", true},  // letter changed
		{"reyccling", "recycling", true},  // neighbours swapped
		{"recyclign", "recycling", true},  // last two swapped
		{"recycling", "recyclings", true}, // added at the end
		{"rcyclign", "recycling", false},  // two edits
		{"abc", "cab", false},
		{"", "a", true},
		{"ŵyn", "wyn", true},
	}
	for _, tt := range tests {
		if got := oneEdit(tt.a, tt.b); got != tt.want {
			t.Errorf("oneEdit(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := oneEdit(tt.b, tt.a); got != tt.want {
			t.Errorf("oneEdit(%q, %q) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestTypos(t *testing.T) {
	x := newTypoIndex()
	var typo, plain phrase
	for _, src := range []string{"pothole", "recycling", "barking"} {
		p, _ := parsePhrase(src)
		x.known(p.terms[0])
		if src != "barking" {
			p.terms[0].typos = x.add(p.terms[0])
		}
		if src == "pothole" {
			typo = p
		}
	}
	plain, _ = parsePhrase("parking")
	x.known(plain.terms[0])
	short, _ := parsePhrase("bin")
	short.terms[0].typos = x.add(short.terms[0])
	if short.terms[0].typos {
		t.Error("a three-letter word accepted typos")
	}
	tests := []struct {
		p    phrase
		text string
		want string
	}{
		{typo, "massive pothloes on the A48", "pothloes"},
		{typo, "poth0le outside", "poth0le"},
		{typo, "pothole", "pothole"},
		{typo, "pothouse", ""},
		{short, "the bun fight", ""},
	}
	for _, tt := range tests {
		got, _ := analyse(tt.text, x).find(tt.p, 0)
		if got != tt.want {
			t.Errorf("find(%q) in %q = %q, want %q", tt.p.src, tt.text, got, tt.want)
		}
	}
	// "barking" is configured, so it is never a typo of "parking", and a
	// rule without typos never matches one.
	if got := x.lookup("barking", "bark"); got != nil {
		t.Errorf("configured word read as a typo of %q", got)
	}
	if _, ok := analyse("recyling", x).find(plain, 0); ok {
		t.Error("a rule without typos matched a typo")
	}
}
