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
			got, hit := analyse(tt.text).find(p, tt.gap)
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
