package email

import "strings"

// AuthResults is one Authentication-Results header field (RFC 8601):
// the authserv-id of the server that wrote it and each method's results
// ("spf" → ["pass"], "dkim" → ["fail", "pass"]), lower-cased.
type AuthResults struct {
	AuthservID string
	Results    map[string][]string
}

// ParseAuthResults reads an Authentication-Results field's value. It is
// lenient: comments are dropped, and what is not "method=result" is
// skipped. ok is false when the value names no authserv-id.
func ParseAuthResults(value string) (AuthResults, bool) {
	value = stripComments(value)
	parts := strings.Split(value, ";")
	id := strings.Fields(parts[0])
	if len(id) == 0 || strings.Trim(id[0], `"`) == "" {
		return AuthResults{}, false
	}
	ar := AuthResults{AuthservID: strings.ToLower(strings.Trim(id[0], `"`)), Results: map[string][]string{}}
	for _, p := range parts[1:] {
		f := strings.Fields(p)
		if len(f) == 0 {
			continue
		}
		method, result, ok := strings.Cut(f[0], "=")
		if !ok || method == "" || result == "" {
			continue
		}
		method, _, _ = strings.Cut(method, "/") // a method's version
		if method = strings.ToLower(method); method == "" {
			continue
		}
		ar.Results[method] = append(ar.Results[method], strings.ToLower(result))
	}
	return ar, true
}

// stripComments removes RFC 5322 comments, "(...)", nested or not,
// outside quoted strings.
func stripComments(s string) string {
	var b strings.Builder
	depth, quoted, escaped := 0, false, false
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
			if depth > 0 {
				continue
			}
		case r == '\\':
			escaped = true
			if depth > 0 {
				continue
			}
		case quoted:
			if r == '"' {
				quoted = false
			}
		case r == '"' && depth == 0:
			quoted = true
		case r == '(':
			depth++
			continue
		case r == ')' && depth > 0:
			depth--
			continue
		}
		if depth == 0 {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Forged says the results show mail claiming a sender it may not use:
// DMARC failed, or neither SPF nor DKIM passed and each that was checked
// failed, soft-failed or found nothing.
func (ar AuthResults) Forged() bool {
	if has(ar.Results["dmarc"], "fail") {
		return true
	}
	spf, dkim := ar.Results["spf"], ar.Results["dkim"]
	if len(spf) == 0 && len(dkim) == 0 {
		return false
	}
	for _, r := range append(append([]string(nil), spf...), dkim...) {
		switch r {
		case "fail", "softfail", "none", "hardfail":
		default:
			return false // a pass, or neutral, temperror...: not shown forged
		}
	}
	return true
}

func has(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// forged says whether mail with these Authentication-Results fields,
// topmost first, is forged by the word of the server trusted: only the
// topmost field from trusted counts, fields from other authserv-ids
// (which the sender may have written) being ignored. A mail with no field
// from trusted is not judged.
func forged(fields []string, trusted string) bool {
	if trusted == "" {
		return false
	}
	for _, f := range fields {
		if ar, ok := ParseAuthResults(f); ok && ar.AuthservID == strings.ToLower(trusted) {
			return ar.Forged()
		}
	}
	return false
}
