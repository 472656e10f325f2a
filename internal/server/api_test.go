package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	apispec "github.com/citizeninbox/inbox/api"
)

// sampleBodies are valid request bodies for each operation that takes one.
var sampleBodies = map[string]string{
	"replyToCase":   `{"text":"Thank you, we are looking into it.","visibility":"private"}`,
	"setCaseStatus": `{"status":"resolved"}`,
	"assignCase":    `{"unassign":true}`,
}

// Every API route is in the contract, and every operation the contract
// does not mark public refuses a request without a valid token.
func TestEveryRouteIsInTheContractAndNeedsAToken(t *testing.T) {
	h := newHarness(t)
	doc, err := openapi3.NewLoader().LoadFromData(apispec.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range h.srv.Routes() {
		path, ok := strings.CutPrefix(r.Path, "/api/v1")
		if !ok {
			continue
		}
		path = regexp.MustCompile(`:(\w+)`).ReplaceAllString(path, "{$1}")
		if item := doc.Paths.Find(path); item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s %s is served but not in openapi.yaml", r.Method, r.Path)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			url := strings.ReplaceAll(path, "{case}", "1")
			var body any
			if b, ok := sampleBodies[op.OperationID]; ok {
				body = b
			}
			public := op.Security != nil && len(*op.Security) == 0
			for _, token := range []string{"", "cit_notarealtoken", "something-else", "Basic " + h.token} {
				code, raw := h.apiAs(token, method, url, body)
				if public && code != http.StatusOK {
					t.Errorf("public %s %s answered %d %s", method, path, code, raw)
				}
				if !public && code != http.StatusUnauthorized {
					t.Errorf("%s %s with token %q answered %d %s, want 401", method, path, token, code, raw)
				}
			}
		}
	}
}

// Each operation that takes a body refuses a wrong content type, broken
// JSON and an oversized body, and answers 404 for a case that is not there.
func TestBadRequestBodiesAreRefused(t *testing.T) {
	h := newHarness(t)
	for op, body := range sampleBodies {
		method, path := operationPath(t, op)
		missing := strings.ReplaceAll(path, "{case}", "999999")
		for _, tc := range []struct {
			name, contentType, body string
			code                    int
		}{
			{"wrong content type", "text/plain", body, http.StatusUnsupportedMediaType},
			{"broken JSON", "application/json", "{", http.StatusBadRequest},
			{"not an object", "application/json", "[1]", http.StatusBadRequest},
			{"over 1 MiB", "application/json", `{"x":"` + strings.Repeat("a", 2<<20) + `"}`, http.StatusRequestEntityTooLarge},
			{"missing case", "application/json", body, http.StatusNotFound},
		} {
			code, raw := h.raw(method, missing, tc.contentType, tc.body)
			if code != tc.code {
				t.Errorf("%s with %s: %d %s, want %d", op, tc.name, code, raw, tc.code)
			}
		}
	}
	// NUL characters, which PostgreSQL cannot store, are refused plainly.
	if code, raw := h.api(http.MethodGet, "/cases?team=a%00b", nil); code != http.StatusUnprocessableEntity {
		t.Errorf("team with NUL: %d %s", code, raw)
	}
	if code, raw := h.api(http.MethodGet, "/cases/C-%00", nil); code != http.StatusNotFound {
		t.Errorf("reference with NUL: %d %s", code, raw)
	}
}

// operationPath finds an operation's method and path in openapi.yaml.
func operationPath(t *testing.T, operationID string) (string, string) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(apispec.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == operationID {
				return method, path
			}
		}
	}
	t.Fatalf("no operation %s", operationID)
	return "", ""
}

func TestListCasesFiltersAndPages(t *testing.T) {
	h := newHarness(t)
	var ids []string
	for i := range 5 {
		id := nextID()
		ids = append(ids, id)
		from := alice
		if i%2 == 1 {
			from = bob
		}
		h.signed(mention(id, from, fmt.Sprintf("@ExampleCouncil report %d", i), ""))
	}
	for _, id := range ids {
		h.waitCaseOf(id)
	}
	first := h.caseOf(ids[0])
	if code, raw := h.api(http.MethodPut, "/cases/"+itoa(first)+"/status", map[string]string{"status": "resolved"}); code != 200 {
		t.Fatalf("resolve: %d %s", code, raw)
	}

	type page struct {
		Cases []struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
		} `json:"cases"`
		NextCursor string `json:"next_cursor"`
	}
	get := func(query string) page {
		t.Helper()
		code, raw := h.api(http.MethodGet, "/cases"+query, nil)
		if code != 200 {
			t.Fatalf("list %s: %d %s", query, code, raw)
		}
		var p page
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}

	var seen []int64
	p := get("?limit=2")
	for {
		for _, c := range p.Cases {
			seen = append(seen, c.ID)
		}
		if p.NextCursor == "" {
			break
		}
		p = get("?limit=2&cursor=" + p.NextCursor)
	}
	if len(seen) != 5 {
		t.Fatalf("paging saw %d cases, want 5: %v", len(seen), seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Errorf("cases not newest first: %v", seen)
		}
	}
	if p := get("?status=resolved"); len(p.Cases) != 1 || p.Cases[0].ID != first {
		t.Errorf("status=resolved gave %+v", p.Cases)
	}
	if p := get("?status=new&channel=x&team=contact-centre"); len(p.Cases) != 4 {
		t.Errorf("new x cases in contact-centre: %d, want 4", len(p.Cases))
	}
	if p := get("?team=highways"); len(p.Cases) != 0 {
		t.Errorf("highways has %d cases, want 0", len(p.Cases))
	}
	for _, bad := range []string{"?status=lost", "?limit=0", "?limit=abc", "?channel=fax"} {
		if code, raw := h.api(http.MethodGet, "/cases"+bad, nil); code != http.StatusUnprocessableEntity {
			t.Errorf("%s answered %d %s, want 422", bad, code, raw)
		}
	}
	if code, _ := h.api(http.MethodGet, "/cases?cursor=bm9wZQ", nil); code != http.StatusBadRequest {
		t.Errorf("a forged cursor answered %d, want 400", code)
	}
}

func TestCaseByReferenceAndNotFound(t *testing.T) {
	h := newHarness(t)
	id := nextID()
	h.signed(mention(id, alice, "@ExampleCouncil <script>alert(1)</script> & more", ""))
	c := h.caseDetail(h.waitCaseOf(id))
	code, raw := h.api(http.MethodGet, "/cases/"+c.Reference, nil)
	if code != 200 || !strings.Contains(string(raw), `"reference":"`+c.Reference+`"`) {
		t.Errorf("by reference: %d %s", code, raw)
	}
	// JSON answers escape what residents wrote; the body round-trips exactly.
	if c.Messages[0].Body != "@ExampleCouncil <script>alert(1)</script> & more" {
		t.Errorf("body %q", c.Messages[0].Body)
	}
	if strings.Contains(string(raw), "<script>") {
		t.Errorf("raw JSON carries an unescaped <script>")
	}
	for _, missing := range []string{"/cases/999999", "/cases/C-2000-000000", "/cases/nonsense"} {
		if code, raw := h.api(http.MethodGet, missing, nil); code != http.StatusNotFound {
			t.Errorf("%s answered %d %s, want 404", missing, code, raw)
		}
	}
}

func TestReplyValidation(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.dmCase(alice, "hello")
	path := "/cases/" + itoa(caseID) + "/replies"

	cases := []struct {
		name string
		body any
		code int
	}{
		{"empty text", map[string]string{"text": "  ", "visibility": "private"}, 422},
		{"no visibility", map[string]string{"text": "hi"}, 422},
		{"bad visibility", map[string]string{"text": "hi", "visibility": "shout"}, 422},
		{"too long", map[string]string{"text": strings.Repeat("a", 10001), "visibility": "private"}, 422},
		{"unknown field", map[string]string{"text": "hi", "visibility": "private", "colour": "red"}, 400},
		{"not JSON", "{", 400},
		{"wrong type", map[string]any{"text": 5, "visibility": "private"}, 422},
		{"public on a DM-only case", map[string]string{"text": "hi", "visibility": "public"}, 422},
		{"body over 1 MiB", `{"visibility":"private","text":"` + strings.Repeat("a", 2<<20) + `"}`, 413},
	}
	for _, tc := range cases {
		code, raw := h.api(http.MethodPost, path, tc.body)
		if code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, code, raw, tc.code)
		}
	}
	if code, raw := h.api(http.MethodPost, "/cases/999999/replies", map[string]string{"text": "hi", "visibility": "private"}); code != 404 {
		t.Errorf("reply to a missing case: %d %s", code, raw)
	}
	if got := h.count(`SELECT count(*) FROM messages WHERE direction = 'outbound'`); got != 0 {
		t.Errorf("rejected replies stored %d messages", got)
	}
	var field struct {
		Errors []struct{ Field, Message string } `json:"errors"`
	}
	_, raw := h.api(http.MethodPost, path, map[string]string{"text": "hi"})
	_ = json.Unmarshal(raw, &field)
	if len(field.Errors) != 1 || field.Errors[0].Field != "visibility" {
		t.Errorf("validation errors %s, want one for visibility", raw)
	}
}

func TestStatusChangesAndAssignment(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.dmCase(alice, "hello")
	base := "/cases/" + itoa(caseID)

	steps := []struct {
		status string
		code   int
	}{
		{"awaiting_resident", 200}, {"awaiting_resident", 409}, {"new", 409}, {"resolved", 200},
		{"open", 200}, {"closed", 200}, {"open", 409}, {"lost", 422},
	}
	for _, s := range steps {
		if code, raw := h.api(http.MethodPut, base+"/status", map[string]string{"status": s.status}); code != s.code {
			t.Errorf("status %s: %d %s, want %d", s.status, code, raw, s.code)
		}
	}
	if code, _ := h.api(http.MethodPost, base+"/replies", map[string]string{"text": "hi", "visibility": "private"}); code != 409 {
		t.Errorf("reply to a closed case: %d, want 409", code)
	}

	var userID int64
	h.direct.Raw(`SELECT id FROM users LIMIT 1`).Scan(&userID)
	code, raw := h.api(http.MethodPut, base+"/assignment", map[string]any{"assignee_id": userID, "team": "highways"})
	if code != 200 {
		t.Fatalf("assign: %d %s", code, raw)
	}
	var c caseJSON
	_ = json.Unmarshal(raw, &c)
	if c.AssigneeID == nil || *c.AssigneeID != userID || c.Team != "highways" {
		t.Errorf("after assignment: assignee %v team %q", c.AssigneeID, c.Team)
	}
	if code, _ := h.api(http.MethodPut, base+"/assignment", map[string]any{"assignee_id": 424242}); code != 422 {
		t.Errorf("unknown assignee: %d, want 422", code)
	}
	if code, _ := h.api(http.MethodPut, base+"/assignment", map[string]any{"team": "nope"}); code != 422 {
		t.Errorf("unknown team: %d, want 422", code)
	}
	if code, _ := h.api(http.MethodPut, base+"/assignment", map[string]any{}); code != 422 {
		t.Errorf("empty assignment: %d, want 422", code)
	}
	if code, raw := h.api(http.MethodPut, base+"/assignment", map[string]any{"unassign": true}); code != 200 ||
		!strings.Contains(string(raw), `"assignee_id":null`) {
		t.Errorf("unassign: %d %s", code, raw)
	}
	// Every action is in the audit log.
	if got := h.count(`SELECT count(*) FROM audit_events WHERE case_id = ? AND action = 'case.status_changed'`, caseID); got != 4 {
		t.Errorf("%d status changes audited, want 4", got)
	}
	if got := h.count(`SELECT count(*) FROM audit_events WHERE case_id = ? AND action = 'case.assigned'`, caseID); got != 2 {
		t.Errorf("%d assignments audited, want 2", got)
	}
}

// Metric labels come from route templates and configuration, never from
// what a caller puts in a URL.
func TestCallersCannotChooseMetricLabels(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/api/v1/cases/zz-label-probe", "/api/v1/zz-label-probe", "/webhooks/zz-label-probe/zz-label-probe"} {
		resp, err := http.Post(h.srv.URL()+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get(h.srv.OpsURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(raw), "zz-label-probe") {
		t.Error("a URL chosen by the caller became a metric label")
	}
	if !strings.Contains(string(raw), `inbox_webhooks_total{channel="unknown",result="unknown_account"} 1`) {
		t.Error("the unknown webhook endpoint was not counted")
	}
}
