package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/citizeninbox/inbox/internal/cases"
)

// Prefix is where the API is served.
const Prefix = "/api/v1"

// routes is the whole API: every call, and who may make it.
//
// Access names the actions a call carries out; internal/cases/access.go
// says which roles may do each, and the case service enforces it on every
// case it touches:
//
//	adviser     read, reply, note, status, assign_self,         their teams' cases
//	            link_contacts
//	supervisor  … and assign_team (anyone in the team), move,   their teams' cases
//	            prioritise, read_rules, export
//	admin       everything                                      every team's cases
//
// Another team's case answers 404, as a case that does not exist, and the
// attempt is audited; an action the role may not do on a case it sees
// answers 403. The list holds only the caller's teams' cases.
var routes = []Route{
	{http.MethodGet, "/openapi.yaml", public, (*handlers).openapi},
	{http.MethodGet, "/cases", may(cases.ActRead), (*handlers).listCases},
	{http.MethodGet, "/cases/:case", may(cases.ActRead), (*handlers).getCase},
	{http.MethodPost, "/cases/:case/replies", may(cases.ActReply), (*handlers).reply},
	// How a reply's text measures on the case's channel (characters,
	// weighted characters, SMS segments), before sending it.
	{http.MethodPost, "/cases/:case/replies/measure", may(cases.ActReply), (*handlers).measureReply},
	{http.MethodPost, "/cases/:case/notes", may(cases.ActNote), (*handlers).addNote},
	{http.MethodPut, "/cases/:case/status", may(cases.ActStatus), (*handlers).setStatus},
	// Taking or giving back a case is assign_self; assigning or unassigning
	// someone else is assign_team; a new team is move.
	{http.MethodPut, "/cases/:case/assignment", may(cases.ActAssignSelf, cases.ActAssignTeam, cases.ActMove), (*handlers).assign},
	// A new priority moves the SLA deadlines: supervisors and admins.
	{http.MethodPut, "/cases/:case/priority", may(cases.ActPrioritise), (*handlers).setPriority},
	// Claiming the most urgent unassigned case is taking it: assign_self.
	{http.MethodPost, "/queue/next", may(cases.ActAssignSelf), (*handlers).claimNext},
	{http.MethodGet, "/routing", may(cases.ActReadRules), (*handlers).getRouting},
	{http.MethodGet, "/sla", may(cases.ActReadRules), (*handlers).getSLA},
	// Whether each account's network takes its credential: anyone who
	// answers residents needs to know when replies wait.
	{http.MethodGet, "/channel-accounts", may(cases.ActRead), (*handlers).listChannelAccounts},
	// A contact is seen through its cases: one of them in the caller's
	// teams (any, for admins), else it answers 404 and the attempt is
	// audited. Its cases of other teams are only counted.
	{http.MethodGet, "/contacts/:contact", may(cases.ActRead), (*handlers).getContact},
	{http.MethodPost, "/contacts/:contact/identities", may(cases.ActLinkContacts), (*handlers).linkIdentity},
	{http.MethodDelete, "/contacts/:contact/identities/:identity", may(cases.ActLinkContacts), (*handlers).unlinkIdentity},
	// Same phone number elsewhere: only suggested, never linked.
	{http.MethodGet, "/contacts/:contact/suggestions", may(cases.ActRead), (*handlers).contactSuggestions},
	// The rows behind the supervisors' figures, streamed, every row, each
	// export audited as a disclosure; message text for admins only.
	{http.MethodGet, "/exports/cases", may(cases.ActExport), (*handlers).exportCases},
	{http.MethodGet, "/exports/messages", may(cases.ActExport), (*handlers).exportMessages},
}

// Route is one call of the API.
type Route struct {
	Method string
	Path   string
	Access Access
	handle func(*handlers, echo.Context) error
}

// Access says who may make a call.
type Access struct {
	// Public calls need no token.
	Public bool
	// Actions are what the call may do; a caller's role must allow at least
	// one of them (cases.Allowed), and the case service checks the one a
	// request asks for against the case's team.
	Actions []cases.Action
}

var public = Access{Public: true}

func may(actions ...cases.Action) Access { return Access{Actions: actions} }

// String lists the roles that may make the call, with their scope.
func (a Access) String() string {
	if a.Public {
		return "anyone"
	}
	var who []string
	for _, role := range []string{cases.RoleAdviser, cases.RoleSupervisor, cases.RoleAdmin} {
		if a.allows(role) {
			scope := "their teams"
			if cases.EveryTeam(role) {
				scope = "every team"
			}
			who = append(who, role+" ("+scope+")")
		}
	}
	return strings.Join(who, ", ")
}

func (a Access) allows(role string) bool {
	for _, act := range a.Actions {
		if cases.Allowed(role, act) {
			return true
		}
	}
	return false
}

// Routes returns the routes table with each path as served.
func Routes() []Route {
	out := make([]Route, len(routes))
	for i, r := range routes {
		r.Path = Prefix + r.Path
		out[i] = r
	}
	return out
}
