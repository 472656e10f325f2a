package channels

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Template is a message a network approved in advance for an account. It
// may go out when the network's window for free text has closed: WhatsApp
// takes nothing else 24 hours after the resident's last message.
type Template struct {
	// Name and Language are the network's names for it ("case_update",
	// "en_GB").
	Name     string `json:"name"`
	Language string `json:"language"`
	// Body is its approved text, with the placeholders {{1}} … {{n}} the
	// parameters fill.
	Body string `json:"body"`
}

// TemplateReply is a template to send, with its parameters in order.
type TemplateReply struct {
	Name       string   `json:"name"`
	Language   string   `json:"language"`
	Parameters []string `json:"parameters"`
}

var placeholder = regexp.MustCompile(`\{\{\s*([0-9]+)\s*\}\}`)

// Parameters is how many parameters the template takes: its placeholders
// must be {{1}} to {{n}}, each at least once.
func (t Template) Parameters() (int, error) {
	var seen []int
	for _, m := range placeholder.FindAllStringSubmatch(t.Body, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil || n < 1 {
			return 0, fmt.Errorf("placeholder %s: placeholders count from {{1}}", m[0])
		}
		if !slices.Contains(seen, n) {
			seen = append(seen, n)
		}
	}
	slices.Sort(seen)
	for i, n := range seen {
		if n != i+1 {
			return 0, fmt.Errorf("placeholder {{%d}} without {{%d}}: placeholders are {{1}} to {{n}}", n, i+1)
		}
	}
	return len(seen), nil
}

// ErrTemplateParameters matches every complaint about a template reply's
// parameters.
var ErrTemplateParameters = errors.New("the template's parameters are not right")

// MaxTemplateParameter is the longest parameter, in characters.
const MaxTemplateParameter = 1024

// Render fills the template's placeholders with params, checking there is
// one for each and that each is what the network takes in a parameter:
// some text, without line breaks or tabs, and not over
// MaxTemplateParameter characters.
func (t Template) Render(params []string) (string, error) {
	n, err := t.Parameters()
	if err != nil {
		return "", err
	}
	if len(params) != n {
		return "", fmt.Errorf("%w: template %s takes %d, not %d", ErrTemplateParameters, t.Name, n, len(params))
	}
	for i, p := range params {
		switch {
		case strings.TrimSpace(p) == "":
			return "", fmt.Errorf("%w: parameter %d is empty", ErrTemplateParameters, i+1)
		case strings.ContainsAny(p, "\n\r\t"):
			return "", fmt.Errorf("%w: parameter %d has a line break or tab, which templates do not take", ErrTemplateParameters, i+1)
		case utf8.RuneCountInString(p) > MaxTemplateParameter:
			return "", fmt.Errorf("%w: parameter %d is over %d characters", ErrTemplateParameters, i+1, MaxTemplateParameter)
		}
	}
	return placeholder.ReplaceAllStringFunc(t.Body, func(m string) string {
		k, _ := strconv.Atoi(placeholder.FindStringSubmatch(m)[1])
		return params[k-1]
	}), nil
}
