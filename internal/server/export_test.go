package server_test

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

// The contract check reads JSON lines as the text they are.
func init() {
	openapi3filter.RegisterBodyDecoder("application/x-ndjson",
		func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
			raw, err := io.ReadAll(body)
			return string(raw), err
		})
}

// Exports stream every row of the period's cases, only the caller's
// teams' for a supervisor, message text only for admins, each export in
// the audit trail.
func TestExports(t *testing.T) {
	h := newHarness(t)
	_, first := h.dmCase(alice, "=cmd|' /C calc'!A0 my bin was missed")
	_, second := h.mentionCase(bob, "@ExampleCouncil streetlight out")
	h.direct.Exec(`UPDATE cases SET team_id = (SELECT id FROM teams WHERE slug = 'highways') WHERE id = ?`, second)
	supervisor, supToken := h.user("sup@example.gov.uk", "supervisor", "contact-centre")
	admin, adminToken := h.user("boss@example.gov.uk", "admin")
	today := time.Now().In(london()).Format(time.DateOnly)
	tomorrow := time.Now().In(london()).AddDate(0, 0, 1).Format(time.DateOnly)
	period := "from=" + today + "&to=" + tomorrow

	// A supervisor's export holds their team's case only.
	code, raw := h.apiAs(supToken, http.MethodGet, "/exports/cases?"+period, nil)
	records, err := csv.NewReader(strings.NewReader(string(raw))).ReadAll()
	if code != http.StatusOK || err != nil || len(records) != 2 {
		t.Fatalf("supervisor's export: %d %v\n%s", code, err, raw)
	}
	if records[0][0] != "reference" || records[1][0] != h.caseDetail(first).Reference || records[1][2] != "contact-centre" {
		t.Errorf("export rows %q", records)
	}
	if n := h.count(`SELECT count(*) FROM audit_events WHERE action = 'export.cases' AND user_id = ?`, supervisor); n != 1 {
		t.Errorf("%d export audit entries for the supervisor, want 1", n)
	}
	// Another team's cases, or message text: not for a supervisor.
	if code, raw := h.apiAs(supToken, http.MethodGet, "/exports/cases?"+period+"&team=highways", nil); code != http.StatusForbidden {
		t.Errorf("supervisor exporting highways: %d %s, want 403", code, raw)
	}
	if code, raw := h.apiAs(supToken, http.MethodGet, "/exports/messages?"+period+"&text=true", nil); code != http.StatusForbidden {
		t.Errorf("supervisor exporting message text: %d %s, want 403", code, raw)
	}

	// An admin's: every team; message text when asked, defused for
	// spreadsheets.
	code, raw = h.apiAs(adminToken, http.MethodGet, "/exports/cases?"+period+"&format=jsonl", nil)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if code != http.StatusOK || len(lines) != 2 {
		t.Fatalf("admin's export: %d %s", code, raw)
	}
	teams := map[string]bool{}
	for _, line := range lines {
		var row map[string]any
		if err := json.Unmarshal([]byte(line), &row); err != nil || row["first_response_outcome"] != "none" {
			t.Errorf("line %s (%v)", line, err)
		}
		teams[row["team"].(string)] = true
	}
	if !teams["highways"] || !teams["contact-centre"] {
		t.Errorf("admin's export holds the teams %v, want both", teams)
	}
	code, raw = h.apiAs(adminToken, http.MethodGet, "/exports/messages?"+period+"&channel=x&text=true", nil)
	records, err = csv.NewReader(strings.NewReader(string(raw))).ReadAll()
	if code != http.StatusOK || err != nil || len(records) != 3 {
		t.Fatalf("messages with text: %d %v\n%s", code, err, raw)
	}
	var texts []string
	for _, r := range records[1:] {
		texts = append(texts, r[len(r)-1])
	}
	slices.Sort(texts)
	if want := []string{"'=cmd|' /C calc'!A0 my bin was missed", "'@ExampleCouncil streetlight out"}; !slices.Equal(texts, want) {
		t.Errorf("messages' text %q, want %q, defused", texts, want)
	}
	if n := h.count(`SELECT count(*) FROM audit_events WHERE action = 'export.messages' AND user_id = ? AND detail->>'with_text' = 'true'`, admin); n != 1 {
		t.Errorf("%d audited exports with text, want 1", n)
	}
	if _, raw := h.apiAs(adminToken, http.MethodGet, "/exports/messages?"+period, nil); strings.Contains(string(raw), "my bin") {
		t.Errorf("message text exported without being asked for: %s", raw)
	}

	// Bad filters are refused with what is wrong, and export nothing.
	audited := h.count(`SELECT count(*) FROM audit_events WHERE action LIKE 'export.%'`)
	for query, field := range map[string]string{
		"to=" + tomorrow:                    "from",
		period + "&format=xlsx":             "format",
		"from=" + tomorrow + "&to=" + today: "to",
		period + "&priority=whenever":       "priority",
		period + "&channel=fax":             "channel",
		period + "&account=council-fax":     "account",
		period + "&adviser=me":              "adviser",
	} {
		code, raw := h.apiAs(adminToken, http.MethodGet, "/exports/cases?"+query, nil)
		if code != http.StatusUnprocessableEntity || !strings.Contains(string(raw), `"field":"`+field+`"`) {
			t.Errorf("%s: %d %s, want 422 naming %s", query, code, raw, field)
		}
	}
	if code, raw := h.apiAs(adminToken, http.MethodGet, "/exports/messages?"+period+"&text=maybe", nil); code != http.StatusUnprocessableEntity ||
		!strings.Contains(string(raw), `"field":"text"`) {
		t.Errorf("text=maybe: %d %s, want 422 naming text", code, raw)
	}
	if code, raw := h.apiAs(adminToken, http.MethodGet, "/exports/cases?"+period+"&team=nowhere", nil); code != http.StatusUnprocessableEntity {
		t.Errorf("unknown team: %d %s, want 422", code, raw)
	}
	if n := h.count(`SELECT count(*) FROM audit_events WHERE action LIKE 'export.%'`); n != audited {
		t.Errorf("refused exports were audited: %d entries, want %d", n, audited)
	}
}

func london() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return loc
}
