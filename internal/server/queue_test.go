package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/citizeninbox/inbox/internal/server"
)

// withTeamCap caps each adviser's open cases in the team.
func withTeamCap(team string, limit int) harnessOption {
	return func(o *server.Options, _ *harness) {
		for i := range o.File.Teams {
			if o.File.Teams[i].Slug == team {
				o.File.Teams[i].MaxOpenPerAdviser = &limit
			}
		}
	}
}

type problemJSON struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// claim calls POST /queue/next as the token and returns the answer, with
// the claimed case or the problem.
func (h *harness) claim(token, query string, body any) (int, caseJSON, problemJSON, http.Header) {
	h.t.Helper()
	var reqBody []byte
	if body != nil {
		if raw, ok := body.(string); ok {
			reqBody = []byte(raw)
		} else {
			reqBody, _ = json.Marshal(body)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL()+"/api/v1/queue/next"+query, bytes.NewReader(reqBody))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	h.checkContract(req, reqBody, resp, buf.Bytes())
	var c caseJSON
	var p problemJSON
	if resp.StatusCode == http.StatusOK {
		_ = json.Unmarshal(buf.Bytes(), &c)
	} else {
		_ = json.Unmarshal(buf.Bytes(), &p)
	}
	return resp.StatusCode, c, p, resp.Header
}

// An adviser claims the most urgent unassigned case, then the next one,
// until none is left.
func TestClaimNextCase(t *testing.T) {
	h := newHarness(t)
	_, first := h.mentionCase(alice, "@ExampleCouncil the bins were missed")
	_, second := h.mentionCase(bob, "@ExampleCouncil a streetlight is out")

	code, c, p, hdr := h.claim(h.token, "", nil)
	if code != http.StatusOK {
		t.Fatalf("claim: %d %+v", code, p)
	}
	if c.ID != first || c.AssigneeID == nil || *c.AssigneeID != h.adviserID {
		t.Errorf("claimed case %d assigned to %v, want case %d assigned to %d", c.ID, c.AssigneeID, first, h.adviserID)
	}
	if loc := hdr.Get("Location"); loc != "/api/v1/cases/"+c.Reference {
		t.Errorf("Location %q, want /api/v1/cases/%s", loc, c.Reference)
	}
	if got := h.caseDetail(first); got.AssigneeID == nil || *got.AssigneeID != h.adviserID {
		t.Errorf("GET shows the claimed case assigned to %v", got.AssigneeID)
	}

	// The second claim gets the other case; the team can be named in the
	// body or the query.
	code, c, p, _ = h.claim(h.token, "?team=contact-centre", map[string]string{})
	if code != http.StatusOK || c.ID != second || c.ID == first {
		t.Fatalf("second claim: %d case %d %+v, want case %d", code, c.ID, p, second)
	}
	if got := h.caseDetail(second); got.AssigneeID == nil || *got.AssigneeID != h.adviserID {
		t.Errorf("GET shows the second case assigned to %v", got.AssigneeID)
	}

	code, _, p, _ = h.claim(h.token, "", map[string]string{"team": "contact-centre"})
	if code != http.StatusConflict || p.Type != "nothing_to_claim" || p.Title != "Nothing to claim" ||
		p.Detail != "No unassigned case is waiting in your teams." {
		t.Errorf("claim with none left: %d %+v, want 409 nothing_to_claim", code, p)
	}
	if got := h.count(`SELECT count(*) FROM audit_events WHERE action = 'case.claimed' AND user_id = ?`, h.adviserID); got != 2 {
		t.Errorf("%d claims audited, want 2", got)
	}
}

// Bad input, another team and no token are refused.
func TestClaimNextCaseRefusals(t *testing.T) {
	h := newHarness(t)
	_, desk := h.user("desk@example.gov.uk", "adviser", "contact-centre")
	_, caseID := h.mentionCase(alice, "@ExampleCouncil the bins were missed")

	if code, _, p, _ := h.claim("", "", nil); code != http.StatusUnauthorized || p.Type != "unauthorized" {
		t.Errorf("no token: %d %+v, want 401", code, p)
	}
	for _, tc := range []struct {
		name, query string
		body        any
		code        int
		typ         string
	}{
		{"unknown team", "", map[string]string{"team": "nope"}, 422, "unprocessable"},
		{"another team", "?team=highways", nil, 422, "unprocessable"},
		{"two teams", "?team=contact-centre", map[string]string{"team": "highways"}, 422, "validation"},
		{"team too long", "", map[string]string{"team": strings.Repeat("a", 64)}, 422, "validation"},
		{"team too long in the query", "?team=" + strings.Repeat("a", 64), nil, 422, "validation"},
		{"wrong type", "", map[string]any{"team": 5}, 422, "validation"},
		{"unknown field", "", map[string]string{"colour": "red"}, 400, "bad_request"},
		{"not JSON", "", "{", 400, "bad_request"},
	} {
		if code, _, p, _ := h.claim(desk, tc.query, tc.body); code != tc.code || p.Type != tc.typ {
			t.Errorf("%s: %d %+v, want %d %s", tc.name, code, p, tc.code, tc.typ)
		}
	}
	if code, raw := h.raw(http.MethodPost, "/queue/next", "text/plain", `{"team":"contact-centre"}`); code != http.StatusUnsupportedMediaType {
		t.Errorf("wrong content type: %d %s, want 415", code, raw)
	}
	if got := h.caseDetail(caseID); got.AssigneeID != nil {
		t.Errorf("refused claims assigned the case to %d", *got.AssigneeID)
	}
	// Every role may take a case (assign_self), so no role is refused 403.
}

// An adviser who holds the team's cap of open cases claims no more of its
// cases; another adviser still can.
func TestClaimNextCaseStopsAtTheTeamsCap(t *testing.T) {
	h := newHarness(t, withTeamCap("contact-centre", 1))
	_, other := h.user("desk@example.gov.uk", "adviser", "contact-centre")
	_, first := h.mentionCase(alice, "@ExampleCouncil the bins were missed")
	_, second := h.mentionCase(bob, "@ExampleCouncil a streetlight is out")

	if code, c, p, _ := h.claim(h.token, "", nil); code != http.StatusOK || c.ID != first {
		t.Fatalf("first claim: %d case %d %+v, want case %d", code, c.ID, p, first)
	}
	code, _, p, _ := h.claim(h.token, "", nil)
	if code != http.StatusConflict || p.Type != "at_capacity" || p.Title != "At capacity" || !strings.Contains(p.Detail, "cap of open cases") {
		t.Errorf("claim at the cap: %d %+v, want 409 at_capacity", code, p)
	}
	if got := h.caseDetail(second); got.AssigneeID != nil {
		t.Errorf("the claim at the cap assigned case %d to %d", second, *got.AssigneeID)
	}
	if code, c, p, _ := h.claim(other, "", nil); code != http.StatusOK || c.ID != second {
		t.Errorf("another adviser's claim: %d case %d %+v, want case %d", code, c.ID, p, second)
	}
}
