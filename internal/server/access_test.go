package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/citizeninbox/inbox/internal/api"
	"github.com/citizeninbox/inbox/internal/auth"
	"github.com/citizeninbox/inbox/internal/cases"
)

// promised is who may do what, as the product promises it: advisers
// read, reply, add notes, set status and take or give back cases;
// supervisors also assign anyone and move cases; admins everything.
var promised = map[cases.Action][]string{
	cases.ActRead:       {"adviser", "supervisor", "admin"},
	cases.ActReply:      {"adviser", "supervisor", "admin"},
	cases.ActNote:       {"adviser", "supervisor", "admin"},
	cases.ActStatus:     {"adviser", "supervisor", "admin"},
	cases.ActAssignSelf: {"adviser", "supervisor", "admin"},
	cases.ActAssignTeam: {"supervisor", "admin"},
	cases.ActMove:       {"supervisor", "admin"},
	cases.ActPrioritise: {"supervisor", "admin"},
	cases.ActReadRules:  {"supervisor", "admin"},

	cases.ActLinkContacts: {"adviser", "supervisor", "admin"},

	cases.ActReport:     {"supervisor", "admin"},
	cases.ActExport:     {"supervisor", "admin"},
	cases.ActExportText: {"admin"},
}

// accessSample is a request that does one action of a route.
type accessSample struct {
	action cases.Action
	name   string
	// assigned, when set, is who the case is assigned to before the call.
	assigned func(actor, colleague int64) *int64
	body     func(actor, colleague int64) any
	code     int // the answer when the caller may do it
	// effect is the case's assignee and team (or its last message's
	// direction) after an allowed call.
	effect func(actor, colleague int64) string
	// claims marks a call that assigns the caller some waiting case of
	// their teams, not the sample's: such trials run after all the others,
	// so they never take another trial's case.
	claims bool
	// query is added to the route's path.
	query string
}

func ptr(n int64) *int64 { return &n }

// accessSamples holds, for every route of the table, a request for each
// action it carries out.
var accessSamples = map[string][]accessSample{
	"GET /api/v1/cases":       {{action: cases.ActRead, name: "list", code: http.StatusOK}},
	"GET /api/v1/cases/:case": {{action: cases.ActRead, name: "view", code: http.StatusOK}},
	"POST /api/v1/cases/:case/replies": {{action: cases.ActReply, name: "reply", code: http.StatusAccepted,
		body:   func(_, _ int64) any { return map[string]string{"text": "We are on it.", "visibility": "private"} },
		effect: func(_, _ int64) string { return "outbound" }}},
	"POST /api/v1/cases/:case/replies/measure": {{action: cases.ActReply, name: "measure a reply", code: http.StatusOK,
		body: func(_, _ int64) any { return map[string]string{"text": "We are on it.", "visibility": "private"} }}},
	"POST /api/v1/cases/:case/notes": {{action: cases.ActNote, name: "note", code: http.StatusCreated,
		body:   func(_, _ int64) any { return map[string]string{"text": "Called the resident back."} },
		effect: func(_, _ int64) string { return "note" }}},
	"PUT /api/v1/cases/:case/status": {{action: cases.ActStatus, name: "resolve", code: http.StatusOK,
		body:   func(_, _ int64) any { return map[string]string{"status": "resolved"} },
		effect: func(_, _ int64) string { return "resolved" }}},
	"PUT /api/v1/cases/:case/priority": {{action: cases.ActPrioritise, name: "raise the priority", code: http.StatusOK,
		body: func(_, _ int64) any { return map[string]string{"priority": "urgent"} }}},
	// Claiming takes the most urgent unassigned case of the caller's
	// teams: 200 while one waits there, 409 once none does.
	"POST /api/v1/queue/next": {{action: cases.ActAssignSelf, name: "claim the next case", code: http.StatusOK, claims: true}},
	"GET /api/v1/routing":     {{action: cases.ActReadRules, name: "read the routing rules", code: http.StatusOK}},
	"GET /api/v1/sla":         {{action: cases.ActReadRules, name: "read the SLA policy", code: http.StatusOK}},
	// Every role reads the channel accounts' health.
	"GET /api/v1/channel-accounts": {{action: cases.ActRead, name: "list the channel accounts", code: http.StatusOK}},
	// Calls on the contact of the sample's case (its resident's): seen
	// through its cases, as a case is through its team.
	"GET /api/v1/contacts/:contact":             {{action: cases.ActRead, name: "view the contact", code: http.StatusOK}},
	"GET /api/v1/contacts/:contact/suggestions": {{action: cases.ActRead, name: "list suggestions", code: http.StatusOK}},
	"POST /api/v1/contacts/:contact/identities": {{action: cases.ActLinkContacts, name: "link the identity already linked", code: http.StatusOK}},
	"DELETE /api/v1/contacts/:contact/identities/:identity": {{action: cases.ActLinkContacts, name: "unlink the only identity",
		code: http.StatusConflict}},
	// Exports: the role decides; the rows are the caller's teams' cases.
	"GET /api/v1/exports/cases": {{action: cases.ActExport, name: "export the cases", code: http.StatusOK,
		query: "from=2026-01-01&to=2027-01-01"}},
	"GET /api/v1/exports/messages": {{action: cases.ActExport, name: "export the messages", code: http.StatusOK,
		query: "from=2026-01-01&to=2027-01-01&format=jsonl"}},
	"PUT /api/v1/cases/:case/assignment": {
		{action: cases.ActAssignSelf, name: "take an unassigned case", code: http.StatusOK,
			body:   func(actor, _ int64) any { return map[string]any{"assignee_id": actor} },
			effect: func(actor, _ int64) string { return fmt.Sprintf("%d contact-centre", actor) }},
		{action: cases.ActAssignSelf, name: "give back one's own case", code: http.StatusOK,
			assigned: func(actor, _ int64) *int64 { return ptr(actor) },
			body:     func(_, _ int64) any { return map[string]any{"unassign": true} },
			effect:   func(_, _ int64) string { return "none contact-centre" }},
		{action: cases.ActAssignTeam, name: "assign a colleague", code: http.StatusOK,
			body:   func(_, colleague int64) any { return map[string]any{"assignee_id": colleague} },
			effect: func(_, colleague int64) string { return fmt.Sprintf("%d contact-centre", colleague) }},
		{action: cases.ActAssignTeam, name: "take a colleague's case", code: http.StatusOK,
			assigned: func(_, colleague int64) *int64 { return ptr(colleague) },
			body:     func(actor, _ int64) any { return map[string]any{"assignee_id": actor} },
			effect:   func(actor, _ int64) string { return fmt.Sprintf("%d contact-centre", actor) }},
		{action: cases.ActAssignTeam, name: "unassign a colleague", code: http.StatusOK,
			assigned: func(_, colleague int64) *int64 { return ptr(colleague) },
			body:     func(_, _ int64) any { return map[string]any{"unassign": true} },
			effect:   func(_, _ int64) string { return "none contact-centre" }},
		{action: cases.ActMove, name: "move to another team", code: http.StatusOK,
			body:   func(_, _ int64) any { return map[string]any{"team": "highways"} },
			effect: func(_, _ int64) string { return "none highways" }},
	},
}

// The routes table says who may make each call; this walks it and proves
// each route's rule for every role, on a case of the caller's team and on
// another team's case: allowed calls do what they say, a role's missing
// action is 403 and changes nothing, another team's case is 404 exactly as
// a missing one (admins excepted) and the attempt is audited.
func TestEveryRoutesRuleForEveryRoleInAndOutOfTeam(t *testing.T) {
	for act, roles := range promised {
		for _, role := range auth.Roles {
			if got, want := cases.Allowed(role, act), slices.Contains(roles, role); got != want {
				t.Errorf("cases.Allowed(%s, %s) = %v, the product promises %v", role, act, got, want)
			}
		}
	}
	if !cases.EveryTeam("admin") || cases.EveryTeam("supervisor") || cases.EveryTeam("adviser") {
		t.Error("only admins work every team's cases")
	}

	h := newHarness(t)
	colleague, _ := h.user("colleague@example.gov.uk", "adviser", "contact-centre")
	type caller struct {
		role, scope, team string
		id                int64
		token             string
	}
	var callers []caller
	for _, role := range auth.Roles {
		for scope, team := range map[string]string{"in-team": "contact-centre", "out-of-team": "highways"} {
			id, token := h.user(role+"-"+scope+"@example.gov.uk", role, team)
			callers = append(callers, caller{role, scope, team, id, token})
		}
	}

	type trial struct {
		route  api.Route
		sample accessSample
		caller caller
		post   string
	}
	var trials []trial
	for _, r := range api.Routes() {
		key := r.Method + " " + r.Path
		if r.Access.Public {
			for _, c := range callers {
				if code, raw := h.apiAs(c.token, r.Method, strings.TrimPrefix(r.Path, api.Prefix), nil); code != http.StatusOK {
					t.Errorf("public %s as %s: %d %s", key, c.role, code, raw)
				}
			}
			continue
		}
		samples, ok := accessSamples[key]
		if !ok {
			t.Errorf("%s is in the routes table but has no access samples", key)
			continue
		}
		for _, act := range r.Access.Actions {
			if !slices.ContainsFunc(samples, func(s accessSample) bool { return s.action == act }) {
				t.Errorf("%s does %s, which no sample tries", key, act)
			}
		}
		for _, s := range samples {
			if !slices.Contains(r.Access.Actions, s.action) {
				t.Errorf("%s: sample %q does %s, which the route does not declare", key, s.name, s.action)
			}
			for _, c := range callers {
				post, from := nextID(), alice
				if strings.Contains(r.Path, ":contact") {
					from = newResident() // a contact of one case, in contact-centre
				}
				h.signed(mention(post, from, "@ExampleCouncil "+s.name, ""))
				trials = append(trials, trial{r, s, c, post})
			}
		}
	}

	slices.SortStableFunc(trials, func(a, b trial) int {
		switch {
		case a.sample.claims == b.sample.claims:
			return 0
		case a.sample.claims:
			return 1
		}
		return -1
	})

	state := func(caseID int64) string {
		var st struct {
			Status, Team, Direction string
			AssigneeID              *int64
		}
		h.direct.Raw(`SELECT c.status, t.slug AS team, c.assignee_id,
			(SELECT direction FROM messages WHERE case_id = c.id ORDER BY id DESC LIMIT 1) AS direction
			FROM cases c JOIN teams t ON t.id = c.team_id WHERE c.id = ?`, caseID).Scan(&st)
		assignee := "none"
		if st.AssigneeID != nil {
			assignee = itoa(*st.AssigneeID)
		}
		return strings.Join([]string{st.Status, assignee, st.Team, st.Direction}, " ")
	}
	for _, tr := range trials {
		caseID := h.waitCaseOf(tr.post)
		c, s := tr.caller, tr.sample
		what := fmt.Sprintf("%s %s (%s; allowed: %s) as %s %s", tr.route.Method, tr.route.Path, s.name, tr.route.Access, c.scope, c.role)
		if s.assigned != nil {
			h.direct.Exec(`UPDATE cases SET assignee_id = ? WHERE id = ?`, s.assigned(c.id, colleague), caseID)
		}
		var body any
		if s.body != nil {
			body = s.body(c.id, colleague)
		}
		if strings.Contains(tr.route.Path, ":contact") {
			checkContactTrial(t, h, what, tr.route, s, c.id, c.scope == "in-team" || cases.EveryTeam(c.role), c.token, caseID)
			continue
		}
		path := strings.TrimPrefix(strings.ReplaceAll(tr.route.Path, ":case", itoa(caseID)), api.Prefix)
		if path == "/cases" {
			path += "?limit=200"
		}
		if s.query != "" {
			path += "?" + s.query
		}
		before := state(caseID)
		code, raw := h.apiAs(c.token, tr.route.Method, path, body)
		after := state(caseID)
		sees := c.scope == "in-team" || cases.EveryTeam(c.role)
		denials := func(reason string) int64 {
			return h.count(`SELECT count(*) FROM audit_events WHERE action = 'case.access_denied' AND case_id = ? AND user_id = ?
				AND detail->>'reason' = ? AND detail->>'action' = ?`, caseID, c.id, reason, string(s.action))
		}

		if !strings.Contains(tr.route.Path, ":case") && path != "/cases?limit=200" {
			// Not about a case: the role alone decides.
			want := http.StatusForbidden
			if cases.Allowed(c.role, s.action) {
				want = s.code
			}
			if s.claims && want == s.code && h.count(`SELECT count(*) FROM cases c JOIN teams t ON t.id = c.team_id
				WHERE c.assignee_id IS NULL AND c.status IN ('new', 'open') AND (? OR t.slug = ?)`,
				cases.EveryTeam(c.role), c.team) == 0 {
				want = http.StatusConflict
			}
			if code != want {
				t.Errorf("%s: %d %s, want %d", what, code, raw, want)
			}
			if s.claims && code == http.StatusOK && !strings.Contains(string(raw), fmt.Sprintf(`"assignee_id":%d,`, c.id)) {
				t.Errorf("%s: %s is not assigned to the caller", what, raw)
			}
			continue
		}
		if path == "/cases?limit=200" {
			listed := strings.Contains(string(raw), fmt.Sprintf(`{"id":%d,`, caseID))
			if code != http.StatusOK || listed != sees {
				t.Errorf("%s: %d, case listed %v, want 200 and listed %v", what, code, listed, sees)
			}
			continue
		}
		switch {
		case !sees:
			missing := strings.Replace(path, "/cases/"+itoa(caseID), "/cases/999999", 1)
			_, rawMissing := h.apiAs(c.token, tr.route.Method, missing, body)
			if code != http.StatusNotFound || string(raw) != string(rawMissing) {
				t.Errorf("%s: %d %s, want 404 as for a missing case (%s)", what, code, raw, rawMissing)
			}
			if after != before {
				t.Errorf("%s changed the case: %s → %s", what, before, after)
			}
			if n := denials("other_team"); n != 1 {
				t.Errorf("%s: %d denials audited, want 1", what, n)
			}
		case !cases.Allowed(c.role, s.action):
			if code != http.StatusForbidden {
				t.Errorf("%s: %d %s, want 403", what, code, raw)
			}
			if after != before {
				t.Errorf("%s changed the case: %s → %s", what, before, after)
			}
			if n := denials("role"); n != 1 {
				t.Errorf("%s: %d denials audited, want 1", what, n)
			}
		default:
			if code != s.code {
				t.Errorf("%s: %d %s, want %d", what, code, raw, s.code)
				continue
			}
			if s.effect != nil && !strings.Contains(after, s.effect(c.id, colleague)) {
				t.Errorf("%s: case is %q, want it to show %q", what, after, s.effect(c.id, colleague))
			}
			if s.action == cases.ActRead && !strings.Contains(string(raw), fmt.Sprintf(`"id":%d,`, caseID)) {
				t.Errorf("%s: %s is not the case", what, raw)
			}
		}
	}
}

// A supervisor assigns only people who belong to the case's team (admins,
// who see every team, may always be assigned); a case moved to a team its
// adviser is not in loses its adviser.
func TestAssigneesBelongToTheCasesTeam(t *testing.T) {
	h := newHarness(t)
	_, supervisor := h.user("sam@example.gov.uk", "supervisor", "contact-centre", "highways")
	roads, _ := h.user("roads@example.gov.uk", "adviser", "highways")
	admin, _ := h.user("root@example.gov.uk", "admin")
	gone, _ := h.user("gone@example.gov.uk", "adviser", "contact-centre")
	if _, _, err := h.srv.Auth.DisableUser(t.Context(), "gone@example.gov.uk"); err != nil {
		t.Fatal(err)
	}
	_, caseID := h.mentionCase(alice, "@ExampleCouncil pothole on Mill Lane")
	path := "/cases/" + itoa(caseID) + "/assignment"
	assign := func(body map[string]any) (int, caseJSON) {
		t.Helper()
		code, raw := h.apiAs(supervisor, http.MethodPut, path, body)
		var c caseJSON
		_ = json.Unmarshal(raw, &c)
		return code, c
	}

	if code, _ := assign(map[string]any{"assignee_id": roads}); code != http.StatusUnprocessableEntity {
		t.Errorf("assigning an adviser of another team: %d, want 422", code)
	}
	if code, _ := assign(map[string]any{"assignee_id": gone}); code != http.StatusUnprocessableEntity {
		t.Errorf("assigning a disabled user: %d, want 422", code)
	}
	if code, c := assign(map[string]any{"assignee_id": admin}); code != http.StatusOK || c.AssigneeID == nil || *c.AssigneeID != admin {
		t.Errorf("assigning an admin: %d %+v", code, c.AssigneeID)
	}
	// Moved with an assignee of the new team: both apply.
	if code, c := assign(map[string]any{"assignee_id": roads, "team": "highways"}); code != http.StatusOK ||
		c.AssigneeID == nil || *c.AssigneeID != roads || c.Team != "highways" {
		t.Errorf("assign and move: %d %+v %q", code, c.AssigneeID, c.Team)
	}
	// Moved back, the highways adviser cannot see it any more: unassigned.
	if code, c := assign(map[string]any{"team": "contact-centre"}); code != http.StatusOK || c.AssigneeID != nil || c.Team != "contact-centre" {
		t.Errorf("move away from the assignee's team: %d %+v %q", code, c.AssigneeID, c.Team)
	}
	if got := h.count(`SELECT count(*) FROM audit_events WHERE case_id = ? AND action = 'case.assigned' AND detail->>'unassigned_by_move' = 'true'`, caseID); got != 1 {
		t.Errorf("%d moves audited as unassigning, want 1", got)
	}
	// An assignee who belongs to the new team stays.
	if code, _ := assign(map[string]any{"assignee_id": h.adviserID}); code != http.StatusOK {
		t.Fatalf("assign the adviser of both teams: %d", code)
	}
	if code, c := assign(map[string]any{"team": "highways"}); code != http.StatusOK || c.AssigneeID == nil || *c.AssigneeID != h.adviserID {
		t.Errorf("move within the assignee's teams: %d %+v", code, c.AssigneeID)
	}
}

// The list holds the caller's teams' cases only; admins see every team's.
func TestListShowsOnlyTheCallersTeams(t *testing.T) {
	h := newHarness(t)
	_, desk := h.user("desk@example.gov.uk", "adviser", "contact-centre")
	_, roads := h.user("roads@example.gov.uk", "adviser", "highways")
	_, admin := h.user("root@example.gov.uk", "admin")
	_, supervisor := h.user("sam@example.gov.uk", "supervisor", "contact-centre", "highways")
	_, stays := h.mentionCase(alice, "@ExampleCouncil bins")
	_, moved := h.mentionCase(bob, "@ExampleCouncil pothole")
	if code, raw := h.apiAs(supervisor, http.MethodPut, "/cases/"+itoa(moved)+"/assignment", map[string]any{"team": "highways"}); code != 200 {
		t.Fatalf("move: %d %s", code, raw)
	}
	list := func(token, query string) []int64 {
		t.Helper()
		code, raw := h.apiAs(token, http.MethodGet, "/cases"+query, nil)
		if code != http.StatusOK {
			t.Fatalf("list: %d %s", code, raw)
		}
		var p struct {
			Cases []struct {
				ID int64 `json:"id"`
			} `json:"cases"`
		}
		_ = json.Unmarshal(raw, &p)
		var ids []int64
		for _, c := range p.Cases {
			ids = append(ids, c.ID)
		}
		return ids
	}
	for _, tc := range []struct {
		who, token, query string
		want              []int64
	}{
		{"contact-centre adviser", desk, "", []int64{stays}},
		{"highways adviser", roads, "", []int64{moved}},
		{"contact-centre adviser asking for highways", desk, "?team=highways", nil},
		{"adviser of both teams", h.token, "", []int64{moved, stays}},
		{"admin in no team", admin, "", []int64{moved, stays}},
		{"admin asking for highways", admin, "?team=highways", []int64{moved}},
	} {
		if got := list(tc.token, tc.query); !slices.Equal(got, tc.want) {
			t.Errorf("%s sees %v, want %v", tc.who, got, tc.want)
		}
	}
}

// checkContactTrial makes a call on the contact of a case and checks it
// as TestEveryRoutesRuleForEveryRoleInAndOutOfTeam does a call on a case:
// a caller who sees the case gets the sample's answer; one who does not
// gets 404 exactly as for a missing contact, the attempt audited and
// nothing changed.
func checkContactTrial(t *testing.T, h *harness, what string, route api.Route, s accessSample, userID int64, sees bool, token string, caseID int64) {
	t.Helper()
	var ids struct{ ContactID, ContactIdentityID int64 }
	h.direct.Raw(`SELECT contact_id, contact_identity_id FROM cases WHERE id = ?`, caseID).Scan(&ids)
	path := func(contact int64) string {
		return strings.TrimPrefix(strings.NewReplacer(":contact", itoa(contact), ":identity", itoa(ids.ContactIdentityID)).Replace(route.Path), api.Prefix)
	}
	var body any
	if route.Method == http.MethodPost {
		body = map[string]any{"identity_id": ids.ContactIdentityID}
	}
	denials := func() int64 {
		return h.count(`SELECT count(*) FROM audit_events WHERE action = 'contact.access_denied' AND user_id = ?
			AND detail->>'contact_id' = ? AND detail->>'action' = ?`, userID, itoa(ids.ContactID), string(s.action))
	}
	identities := func() int64 {
		return h.count(`SELECT count(*) FROM contact_identities WHERE contact_id = ?`, ids.ContactID)
	}
	deniedBefore, identitiesBefore := denials(), identities()
	code, raw := h.apiAs(token, route.Method, path(ids.ContactID), body)
	if !sees {
		_, rawMissing := h.apiAs(token, route.Method, path(999999), body)
		if code != http.StatusNotFound || string(raw) != string(rawMissing) {
			t.Errorf("%s: %d %s, want 404 as for a missing contact (%s)", what, code, raw, rawMissing)
		}
		if n := denials() - deniedBefore; n != 1 {
			t.Errorf("%s: %d denials audited, want 1", what, n)
		}
	} else if code != s.code {
		t.Errorf("%s: %d %s, want %d", what, code, raw, s.code)
	}
	if n := identities(); n != identitiesBefore {
		t.Errorf("%s changed the contact's identities: %d → %d", what, identitiesBefore, n)
	}
}
