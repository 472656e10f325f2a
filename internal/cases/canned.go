package cases

import (
	"regexp"
	"slices"
	"strings"
)

// Canned is a text an adviser can start a reply from, offered on the
// cases of its teams (every team's when Teams is empty).
type Canned struct {
	Name  string
	Title string
	Text  string
	Teams []string
}

// Placeholders a canned response may hold, and what fills them.
const (
	PlaceholderResident  = "{resident_name}"
	PlaceholderReference = "{case_reference}"
	PlaceholderTeam      = "{team}"
)

var placeholder = regexp.MustCompile(`\{[a-z_]+\}`)

// UnknownPlaceholders lists the {words} in text that are not placeholders.
func UnknownPlaceholders(text string) []string {
	var out []string
	for _, p := range placeholder.FindAllString(text, -1) {
		if p != PlaceholderResident && p != PlaceholderReference && p != PlaceholderTeam && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// Fill puts a case's resident name, reference and team name into the
// canned text. A resident with no name is greeted as "there", so that
// "Hello {resident_name}" still reads well.
func (c Canned) Fill(resident, reference, team string) string {
	resident = safeName(resident)
	if resident == "" {
		resident = "there"
	}
	return strings.NewReplacer(PlaceholderResident, resident, PlaceholderReference, reference, PlaceholderTeam, team).Replace(c.Text)
}

// CannedFor lists the canned responses offered on a team's cases, in the
// configuration's order.
func (s *Service) CannedFor(team string) []Canned {
	s.mu.RLock()
	all := s.cfg.Canned
	s.mu.RUnlock()
	var out []Canned
	for _, c := range all {
		if len(c.Teams) == 0 || slices.Contains(c.Teams, team) {
			out = append(out, c)
		}
	}
	return out
}

// safeName is a resident's self-chosen display name as the council may
// repeat it in a public post: no @mentions or #tags (which would notify
// or tag others), no web addresses, at most 40 characters.
func safeName(name string) string {
	var words []string
	for _, w := range strings.Fields(name) {
		lw := strings.ToLower(w)
		if strings.Contains(lw, "://") || strings.HasPrefix(lw, "www.") {
			continue
		}
		w = strings.NewReplacer("@", "", "#", "").Replace(w)
		if w != "" {
			words = append(words, w)
		}
	}
	out := []rune(strings.Join(words, " "))
	if len(out) > 40 {
		out = out[:40]
	}
	return strings.TrimSpace(string(out))
}
