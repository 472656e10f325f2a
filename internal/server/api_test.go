package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	apispec "github.com/citizeninbox/inbox/api"
	"github.com/citizeninbox/inbox/internal/api"
)

// sampleBodies are valid request bodies for each operation that takes one.
var sampleBodies = map[string]string{
	"replyToCase":     `{"text":"Thank you, we are looking into it.","visibility":"private"}`,
	"addCaseNote":     `{"text":"Resident phoned: the bin is at the back of the house."}`,
	"setCaseStatus":   `{"status":"resolved"}`,
	"assignCase":      `{"unassign":true}`,
	"setCasePriority": `{"priority":"high"}`,
	"claimNextCase":   `{"team":"contact-centre"}`,
	"measureReply":    `{"text":"Thank you, we are looking into it.","visibility":"public"}`,

	"linkContactIdentity": `{"identity_id":1}`,
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
			if tc.code == http.StatusNotFound && !strings.Contains(path, "{case}") {
				continue // not a call on one case
			}
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
	supervisorID, supervisor := h.user("sam@example.gov.uk", "supervisor", "contact-centre", "highways")

	// The adviser takes the case; the supervisor hands it back to them in
	// another team.
	code, raw := h.api(http.MethodPut, base+"/assignment", map[string]any{"assignee_id": h.adviserID})
	if code != 200 {
		t.Fatalf("take the case: %d %s", code, raw)
	}
	code, raw = h.apiAs(supervisor, http.MethodPut, base+"/assignment", map[string]any{"assignee_id": h.adviserID, "team": "highways"})
	if code != 200 {
		t.Fatalf("assign and move: %d %s", code, raw)
	}
	var c caseJSON
	_ = json.Unmarshal(raw, &c)
	if c.AssigneeID == nil || *c.AssigneeID != h.adviserID || c.Team != "highways" {
		t.Errorf("after assignment: assignee %v team %q", c.AssigneeID, c.Team)
	}
	if code, _ := h.apiAs(supervisor, http.MethodPut, base+"/assignment", map[string]any{"assignee_id": 424242}); code != 422 {
		t.Errorf("unknown assignee: %d, want 422", code)
	}
	if code, _ := h.apiAs(supervisor, http.MethodPut, base+"/assignment", map[string]any{"team": "nope"}); code != 422 {
		t.Errorf("unknown team: %d, want 422", code)
	}
	if code, _ := h.api(http.MethodPut, base+"/assignment", map[string]any{}); code != 422 {
		t.Errorf("empty assignment: %d, want 422", code)
	}
	if code, raw := h.api(http.MethodPut, base+"/assignment", map[string]any{"unassign": true}); code != 200 ||
		!strings.Contains(string(raw), `"assignee_id":null`) {
		t.Errorf("give the case back: %d %s", code, raw)
	}

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
	// A closed case is neither reassigned nor moved, by anyone.
	for _, body := range []map[string]any{{"assignee_id": supervisorID}, {"unassign": true}, {"team": "contact-centre"}} {
		if code, raw := h.apiAs(supervisor, http.MethodPut, base+"/assignment", body); code != http.StatusConflict {
			t.Errorf("%v on a closed case: %d %s, want 409", body, code, raw)
		}
	}
	if got := h.count(`SELECT count(*) FROM cases WHERE id = ? AND assignee_id IS NULL AND team_id = (SELECT id FROM teams WHERE slug = 'highways')`, caseID); got != 1 {
		t.Error("the closed case was changed")
	}
	// Every action is in the audit log.
	if got := h.count(`SELECT count(*) FROM audit_events WHERE case_id = ? AND action = 'case.status_changed'`, caseID); got != 4 {
		t.Errorf("%d status changes audited, want 4", got)
	}
	if got := h.count(`SELECT count(*) FROM audit_events WHERE case_id = ? AND action = 'case.assigned'`, caseID); got != 3 {
		t.Errorf("%d assignments audited, want 3", got)
	}
}

// An internal note is stored on the case, shown with the conversation and
// audited; it is not a response, and it is never sent.
func TestNotesAreShownAndNeverSent(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.mentionCase(alice, "@ExampleCouncil a tree has fallen across Elm Road")
	base := "/cases/" + itoa(caseID)

	code, raw := h.api(http.MethodPost, base+"/notes", map[string]string{"text": "  Tree surgeon booked for Friday.  "})
	if code != http.StatusCreated {
		t.Fatalf("add note: %d %s", code, raw)
	}
	var note struct {
		messageJSON
		AuthorUserID *int64 `json:"author_user_id"`
	}
	_ = json.Unmarshal(raw, &note)
	if note.Direction != "note" || note.Visibility != "private" || note.Body != "Tree surgeon booked for Friday." ||
		note.AuthorUserID == nil || *note.AuthorUserID != h.adviserID {
		t.Errorf("note %s", raw)
	}
	if c := h.caseDetail(caseID); c.Status != "new" {
		t.Errorf("a note moved the case to %q; it is not a response", c.Status)
	}

	m := h.reply(caseID, "public", "Thanks, a tree surgeon is booked for Friday.")
	if sent := h.waitDelivery(caseID, m.ID); sent.DeliveryStatus != "sent" {
		t.Fatalf("reply %q: %s", sent.DeliveryStatus, sent.FailureReason)
	}
	if got := h.fake.Sent(); len(got) != 1 || got[0].Text != "Thanks, a tree surgeon is booked for Friday." {
		t.Errorf("the network got %+v, want only the reply", got)
	}
	c := h.caseDetail(caseID)
	var directions []string
	for _, m := range c.Messages {
		directions = append(directions, m.Direction)
	}
	if !slices.Equal(directions, []string{"inbound", "note", "outbound"}) || c.Messages[1].Body != "Tree surgeon booked for Friday." {
		t.Errorf("conversation %v", directions)
	}
	if got := h.count(`SELECT count(*) FROM messages WHERE id = ? AND delivery_status = 'received' AND send_attempts = 0 AND sent_at IS NULL`, note.ID); got != 1 {
		t.Error("the note was handled as a reply")
	}
	if got := h.count(`SELECT count(*) FROM audit_events WHERE case_id = ? AND action = 'case.note_added' AND user_id = ?`, caseID, h.adviserID); got != 1 {
		t.Errorf("%d notes audited, want 1", got)
	}

	for _, tc := range []struct {
		name string
		body any
		code int
	}{
		{"empty text", map[string]string{"text": "   "}, 422},
		{"no text", map[string]string{}, 422},
		{"too long", map[string]string{"text": strings.Repeat("a", 10001)}, 422},
		{"unknown field", map[string]string{"text": "hi", "visibility": "public"}, 400},
	} {
		if code, raw := h.api(http.MethodPost, base+"/notes", tc.body); code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, code, raw, tc.code)
		}
	}
	if code, raw := h.api(http.MethodPut, base+"/status", map[string]string{"status": "closed"}); code != 200 {
		t.Fatalf("close: %d %s", code, raw)
	}
	if code, raw := h.api(http.MethodPost, base+"/notes", map[string]string{"text": "one more"}); code != http.StatusConflict {
		t.Errorf("note on a closed case: %d %s, want 409", code, raw)
	}
	if got := h.count(`SELECT count(*) FROM messages WHERE case_id = ? AND direction = 'note'`, caseID); got != 1 {
		t.Errorf("%d notes stored, want 1", got)
	}
}

// A query string that cannot be decoded is refused on every route, rather
// than answered as if it had not been given (an unfiltered page).
func TestUndecodableQueryStringIsRefused(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.dmCase(alice, "hello")
	doc, err := openapi3.NewLoader().LoadFromData(apispec.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range api.Routes() {
		path := strings.TrimPrefix(r.Path, api.Prefix)
		var body any
		if item := doc.Paths.Find(strings.ReplaceAll(path, ":case", "{case}")); item != nil && item.GetOperation(r.Method) != nil {
			if b, ok := sampleBodies[item.GetOperation(r.Method).OperationID]; ok {
				body = b
			}
		}
		for _, query := range []string{"?status=%zz", "?status=new&channel=x%zz"} {
			code, raw := h.api(r.Method, strings.ReplaceAll(path, ":case", itoa(caseID))+query, body)
			var p struct {
				Type   string `json:"type"`
				Detail string `json:"detail"`
			}
			_ = json.Unmarshal(raw, &p)
			if code != http.StatusBadRequest || p.Type != "bad_request" || !strings.Contains(p.Detail, "query string") {
				t.Errorf("%s %s%s: %d %s, want 400", r.Method, r.Path, query, code, raw)
			}
		}
	}
	c := h.caseDetail(caseID)
	if c.Status != "new" || c.AssigneeID != nil || len(c.Messages) != 1 {
		t.Errorf("refused requests changed the case: %+v", c)
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

// A reply that cannot go out even in parts is refused with the measure and
// the limit; one that only needs parts is queued.
func TestReplyTooLongForTheChannelIsRefusedWithItsLimit(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.mentionCase(alice, "The bins on Elm Road were missed again")
	path := "/cases/" + itoa(caseID) + "/replies"

	// 9,000 characters make about 34 posts of 280: over X's cap of 25.
	code, raw := h.api(http.MethodPost, path, map[string]string{"text": strings.Repeat("word ", 1800), "visibility": "public"})
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("a reply of 34 posts answered %d %s, want 422", code, raw)
	}
	var p struct {
		Detail string                            `json:"detail"`
		Errors []struct{ Field, Message string } `json:"errors"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Detail, "280 weighted characters") || !strings.Contains(p.Detail, "the limit is 25 parts") ||
		len(p.Errors) != 1 || p.Errors[0].Field != "text" {
		t.Errorf("refusal %s does not name the measure, the limit and the field", raw)
	}
	if got := h.count(`SELECT count(*) FROM messages WHERE direction = 'outbound'`); got != 0 {
		t.Errorf("the refused reply stored %d messages", got)
	}

	// 2,000 characters go out as a thread of a few posts.
	if code, raw := h.api(http.MethodPost, path, map[string]string{"text": strings.Repeat("word ", 400), "visibility": "public"}); code != http.StatusAccepted {
		t.Errorf("a reply of 8 posts answered %d %s, want 202", code, raw)
	}
}
