package twilio

import (
	"strings"
	"testing"
)

func TestGSMAlphabetIsGSM0338(t *testing.T) {
	if n := len(gsmBasic); n != 127 {
		t.Errorf("the basic set has %d characters, want 127 (128 less the escape)", n)
	}
	if n := len(gsmExtension); n != 10 {
		t.Errorf("the extension table has %d characters, want 10", n)
	}
	for r := range gsmExtension {
		if gsmBasic[r] {
			t.Errorf("%q is in both tables", r)
		}
	}
}

// Worked examples of SMS segments, at each boundary.
func TestSegments(t *testing.T) {
	a := strings.Repeat
	tests := []struct {
		name     string
		text     string
		segments int
		enc      Encoding
	}{
		{"empty", "", 0, GSM7},
		{"short", "Your bin will be collected tomorrow.", 1, GSM7},
		{"160 GSM characters fit one SMS", a("a", 160), 1, GSM7},
		{"161 take two segments", a("a", 161), 2, GSM7},
		{"153×2 fill two segments", a("a", 306), 2, GSM7},
		{"153×2+1 take three", a("a", 307), 3, GSM7},
		{"the whole basic set is GSM-7", "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà", 1, GSM7},
		{"extension characters count two", "^{}\\[~]|€", 1, GSM7},
		{"80 euro signs are 160 septets", a("€", 80), 1, GSM7},
		{"81 euro signs are 162 septets", a("€", 81), 2, GSM7},
		{"159 septets and one extension character", a("a", 159) + "€", 2, GSM7},
		{"158 septets and one extension character", a("a", 158) + "[", 1, GSM7},
		// 306 septets would fill two segments, but the brace cannot straddle
		// them.
		{"an extension character is never split", a("a", 152) + "{" + a("a", 152), 3, GSM7},
		{"…but fills a segment's last two septets", a("a", 151) + "{" + a("a", 152), 2, GSM7},
		{"form feed is an extension character", a("a", 159) + "\f", 2, GSM7},
		{"70 UCS-2 characters fit one SMS", a("ж", 70), 1, UCS2},
		{"71 take two segments", a("ж", 71), 2, UCS2},
		{"67×2 fill two segments", a("ж", 134), 2, UCS2},
		{"67×2+1 take three", a("ж", 135), 3, UCS2},
		{"one non-GSM character makes it all UCS-2", a("a", 69) + "ç", 1, UCS2},
		{"lowercase ç is not GSM", a("a", 70) + "ç", 2, UCS2},
		{"a backtick is not GSM", "`", 1, UCS2},
		{"a curly apostrophe is not GSM", "We’ll be there", 1, UCS2},
		{"an emoji counts two UTF-16 units", a("😀", 35), 1, UCS2},
		{"36 emoji are 72 units", a("😀", 36), 2, UCS2},
		// 134 units would fill two segments, but the pair cannot straddle
		// them.
		{"a surrogate pair is never split", a("ж", 66) + "😀" + a("ж", 66), 3, UCS2},
		{"…but fills a segment's last two units", a("ж", 65) + "😀" + a("ж", 66), 2, UCS2},
		{"Welsh with ŵ is UCS-2", "Diolch, byddwn yn cysylltu â chi cyn bo hir ŵ", 1, UCS2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, enc := Segments(tt.text)
			if n != tt.segments || enc != tt.enc {
				t.Errorf("Segments = %d %s, want %d %s", n, enc, tt.segments, tt.enc)
			}
			if CountSegments(tt.text) != n {
				t.Errorf("CountSegments disagrees with Segments")
			}
		})
	}
}
