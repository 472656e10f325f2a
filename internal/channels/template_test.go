package channels

import (
	"errors"
	"strings"
	"testing"
)

func TestTemplateParameters(t *testing.T) {
	for body, want := range map[string]int{
		"No parameters":                     0,
		"Hello {{1}}":                       1,
		"{{2}} then {{1}}, and {{1}} again": 2,
		"Spaced {{ 1 }}":                    1,
	} {
		if n, err := (Template{Body: body}).Parameters(); err != nil || n != want {
			t.Errorf("%q: %d %v, want %d", body, n, err, want)
		}
	}
	for _, body := range []string{"{{0}}", "Hello {{2}}", "{{1}} {{3}}"} {
		if _, err := (Template{Body: body}).Parameters(); err == nil {
			t.Errorf("%q: accepted", body)
		}
	}
}

func TestTemplateRender(t *testing.T) {
	tm := Template{Name: "case_update", Body: "Hello {{1}}, case {{2}}; {{1}}."}
	if got, err := tm.Render([]string{"Erin", "HSG-1"}); err != nil || got != "Hello Erin, case HSG-1; Erin." {
		t.Errorf("render: %q %v", got, err)
	}
	for name, params := range map[string][]string{
		"too few":    {"Erin"},
		"too many":   {"Erin", "HSG-1", "x"},
		"empty":      {"Erin", " "},
		"line break": {"Erin", "a\nb"},
		"tab":        {"Erin", "a\tb"},
		"too long":   {"Erin", strings.Repeat("é", MaxTemplateParameter+1)},
	} {
		if _, err := tm.Render(params); !errors.Is(err, ErrTemplateParameters) {
			t.Errorf("%s: %v, want ErrTemplateParameters", name, err)
		}
	}
	// A parameter that looks like a placeholder is text, not filled again.
	if got, _ := tm.Render([]string{"{{2}}", "B"}); got != "Hello {{2}}, case B; {{2}}." {
		t.Errorf("a placeholder in a parameter: %q", got)
	}
}
