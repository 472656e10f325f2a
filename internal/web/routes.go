package web

import (
	"net/http"
	"strings"

	"github.com/citizeninbox/inbox/internal/cases"
)

// routes is every page of the UI, and who may see it.
//
// Access names the case actions a page carries out; internal/cases/access.go
// says which roles may do each, and the case service enforces it on every
// case it shows. A signed-out request for any page but sign-in is sent to
// sign-in; every form and htmx request carries the session's CSRF token.
// The vendored assets under /assets/ are public.
var routes = []route{
	{http.MethodGet, "/", anyone, (*UI).home},
	{http.MethodGet, "/sign-in", anyone, (*UI).signInPage},
	{http.MethodPost, "/sign-in", anyone, (*UI).signIn},
	{http.MethodPost, "/sign-out", signedIn, (*UI).signOut},
	{http.MethodGet, "/queue", may(cases.ActRead), (*UI).queue},
	{http.MethodGet, "/queue/table", may(cases.ActRead), (*UI).queueTable},
	{http.MethodPost, "/queue/next", may(cases.ActAssignSelf), (*UI).next},
	{http.MethodGet, "/dashboard", may(cases.ActReport), (*UI).dashboard},
	{http.MethodGet, "/dashboard/figures", may(cases.ActReport), (*UI).dashboardFigures},
	{http.MethodGet, "/reports/response-times", may(cases.ActReport), (*UI).responseTimes},
	{http.MethodGet, "/reports/monthly", may(cases.ActReport), (*UI).monthlySummary},
	{http.MethodGet, "/reports/export/cases", may(cases.ActExport), reportExport(cases.ExportCases)},
	{http.MethodGet, "/reports/export/messages", may(cases.ActExport), reportExport(cases.ExportMessages)},
	{http.MethodGet, "/events", may(cases.ActRead), (*UI).events},
	{http.MethodGet, "/cases/:reference", may(cases.ActRead), (*UI).casePage},
	{http.MethodGet, "/cases/:reference/timeline", may(cases.ActRead), (*UI).caseTimeline},
	{http.MethodGet, "/cases/:reference/presence", may(cases.ActRead), (*UI).presenceFragment},
	{http.MethodPost, "/cases/:reference/presence", may(cases.ActRead), (*UI).markPresence},
	{http.MethodPost, "/cases/:reference/replies", may(cases.ActReply), (*UI).reply},
	{http.MethodPost, "/cases/:reference/measure", may(cases.ActReply), (*UI).measureReply},
	{http.MethodPost, "/cases/:reference/notes", may(cases.ActNote), (*UI).addNote},
	{http.MethodPost, "/cases/:reference/status", may(cases.ActStatus), (*UI).setStatus},
	{http.MethodPost, "/cases/:reference/tags", may(cases.ActStatus), (*UI).setTags},
	{http.MethodPost, "/cases/:reference/assignment", may(cases.ActAssignSelf, cases.ActAssignTeam, cases.ActMove), (*UI).assign},
}

type route struct {
	Method string
	Path   string
	Access Access
	handle func(*UI, *request) error
}

// Access says who may see a page.
type Access struct {
	// Public pages need no sign-in.
	Public bool
	// Actions are what the page does; a signed-in user's role must allow
	// at least one of them (cases.Allowed). None: any signed-in user.
	Actions []cases.Action
}

var (
	anyone   = Access{Public: true}
	signedIn = Access{}
)

func may(actions ...cases.Action) Access { return Access{Actions: actions} }

func (a Access) allows(role string) bool {
	if len(a.Actions) == 0 {
		return true
	}
	for _, act := range a.Actions {
		if cases.Allowed(role, act) {
			return true
		}
	}
	return false
}

// String lists who may see the page.
func (a Access) String() string {
	switch {
	case a.Public:
		return "anyone"
	case len(a.Actions) == 0:
		return "any signed-in user"
	}
	var who []string
	for _, role := range []string{cases.RoleAdviser, cases.RoleSupervisor, cases.RoleAdmin} {
		if a.allows(role) {
			who = append(who, role)
		}
	}
	return strings.Join(who, ", ")
}

// Route is one page of the UI as served, for listing.
type Route struct {
	Method, Path string
	Access       Access
}

// Routes lists the UI's pages.
func Routes() []Route {
	out := make([]Route, len(routes))
	for i, r := range routes {
		out[i] = Route{Method: r.Method, Path: r.Path, Access: r.Access}
	}
	return out
}
