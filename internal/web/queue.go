package web

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/reports"
)

// queueRow is one case as the queue shows it.
type queueRow struct {
	Reference  string
	Channel    string
	Visibility string
	Resident   string
	Handle     string
	Excerpt    string
	Since      time.Time
	Status     string
	Priority   string
	// SLA is the state of the deadline the queue is ordered by, in words
	// ("Due in 25 min", "Breached 10 min ago"); empty when none runs.
	SLA      string
	Breached bool
	// Waiting is how long since the resident's latest message; Local is
	// when that was, in the council's time zone; Exact is it in RFC 3339.
	Waiting, Local, Exact string
}

type queueData struct {
	Rows  []queueRow
	Total int
	// Query is the filters as a query string (without the page), for the
	// page links and the live refresh.
	Query  string
	Filter queueFilter
	Teams  []option
	Status []option
	Assign []option
	// Selects are the filters chosen from a list: channel, priority, tag.
	Selects []filterSelect
	Page    int
	Pages   int
	Prev    string
	Next    string
	First   int
	Last    int
	// TeamName is the team chosen, or "your teams".
	TeamName string
	// Period says in words the report's filters the queue holds (the
	// period, hour, day, account, service); empty without them.
	Period string
}

// queueFilter is the queue's filters as the page's form holds them.
type queueFilter struct {
	Team     string
	Statuses []string
	Channel  string
	Priority string
	Tag      string
	// Assigned is "", "mine", "unassigned" or a user's id (the cases
	// assigned to them; Assignee).
	Assigned string
	Assignee int64
	// SLA is an SLA state: breached, warned or at_risk.
	SLA string
	// From and To are dates (2026-12-01), both included, bounding when
	// the resident first wrote; Hour (0–23) and Weekday (1 Monday to 7)
	// that moment's hour and day in London; Account a channel account's
	// id, Service a service's code: the cases behind a figure of the
	// response-times report.
	From, To, Hour, Weekday, Account, Service string
	// Measure, Outcome and Reopened ("true") list the cases behind a
	// figure of responses or resolutions (cases.QueueFilter.Measure).
	Measure, Outcome, Reopened string
	Page                       int
}

// PeriodFilters are the queue's filters that the form keeps as hidden
// fields, as they come from the response-times report.
func (f queueFilter) PeriodFilters() map[string]string {
	return map[string]string{"from": f.From, "to": f.To, "hour": f.Hour, "weekday": f.Weekday, "account": f.Account, "service": f.Service,
		"measure": f.Measure, "outcome": f.Outcome, "reopened": f.Reopened}
}

// filterSelect is a filter chosen from a list, by its query name.
type filterSelect struct {
	Name, Label string
	Options     []option
}

// option is one choice of a filter, with how many cases it would show.
type option struct {
	Value, Label string
	Count        int
	Selected     bool
	// Uncounted is a choice in the address that no case has now.
	Uncounted bool
}

// queueStatuses are the statuses the queue can show, in order.
var queueStatuses = []string{cases.StatusNew, cases.StatusOpen, cases.StatusAwaitingResident}

func parseQueueFilter(r *request) queueFilter {
	q := r.QueryParams()
	f := queueFilter{Team: q.Get("team"), Channel: q.Get("channel"), Priority: q.Get("priority"), Tag: q.Get("tag"),
		Assigned: q.Get("assigned"), SLA: q.Get("sla"), Service: q.Get("service")}
	if _, ok := reportDate(q.Get("from")); ok {
		f.From = q.Get("from")
	}
	if _, ok := reportDate(q.Get("to")); ok {
		f.To = q.Get("to")
	}
	if n, err := strconv.Atoi(q.Get("hour")); err == nil && n >= 0 && n < 24 {
		f.Hour = strconv.Itoa(n)
	}
	if n, err := strconv.Atoi(q.Get("weekday")); err == nil && n >= 1 && n <= 7 {
		f.Weekday = strconv.Itoa(n)
	}
	if n, err := strconv.ParseInt(q.Get("account"), 10, 64); err == nil && n > 0 {
		f.Account = strconv.FormatInt(n, 10)
	}
	if m := q.Get("measure"); slices.Contains(cases.QueueMeasures, m) {
		f.Measure = m
		if o := q.Get("outcome"); slices.Contains(cases.QueueOutcomes, o) {
			f.Outcome = o
		}
		if m == reports.Resolution && q.Get("reopened") == "true" {
			f.Reopened = "true"
		}
	}
	for _, st := range q["status"] {
		if slices.Contains(cases.Statuses, st) && !slices.Contains(f.Statuses, st) {
			f.Statuses = append(f.Statuses, st)
		}
	}
	if id, err := strconv.ParseInt(f.Assigned, 10, 64); err == nil && id > 0 {
		f.Assignee, f.Assigned = id, strconv.FormatInt(id, 10)
	} else if f.Assigned != "mine" && f.Assigned != "unassigned" {
		f.Assigned = ""
	}
	if !slices.Contains(cases.SLAStates, f.SLA) {
		f.SLA = ""
	}
	f.Page, _ = strconv.Atoi(q.Get("page"))
	f.Page = max(f.Page, 1)
	return f
}

// query is the filter as a query string, without the page.
func (f queueFilter) query() string {
	v := url.Values{}
	for k, val := range map[string]string{"team": f.Team, "channel": f.Channel, "priority": f.Priority, "tag": f.Tag,
		"assigned": f.Assigned, "sla": f.SLA, "from": f.From, "to": f.To, "hour": f.Hour, "weekday": f.Weekday,
		"account": f.Account, "service": f.Service, "measure": f.Measure, "outcome": f.Outcome, "reopened": f.Reopened} {
		if val != "" {
			v.Set(k, val)
		}
	}
	for _, st := range f.Statuses {
		v.Add("status", st)
	}
	return v.Encode()
}

const queuePageSize = 50

// queue lists the cases waiting for the council (new and open, unless the
// filters say otherwise) in the signed-in user's teams (every team's for
// admins), or one of them, the earliest SLA deadline first, then priority,
// then the longest waiting; with the filters and their counts, paging and
// the Next case button.
func (u *UI) queue(r *request) error {
	live := u.liveURL(r.ctx(), "")
	data, err := u.queueData(r)
	if err != nil {
		return err
	}
	return u.render(r, http.StatusOK, "queue.html", page{Title: "Queue", Nav: "queue", Live: live, Data: data})
}

// queueTable is the queue's results, for the live refresh.
func (u *UI) queueTable(r *request) error {
	data, err := u.queueData(r)
	if err != nil {
		return err
	}
	return u.renderFragment(r, "queue.html", "results", data)
}

func (u *UI) queueData(r *request) (queueData, error) {
	ctx, actor := r.ctx(), r.actor()
	f := parseQueueFilter(r)
	filter := cases.QueueFilter{
		Team: f.Team, Statuses: f.Statuses, Channel: f.Channel, Priority: f.Priority, Tag: f.Tag,
		Mine: f.Assigned == "mine", Unassigned: f.Assigned == "unassigned", AssigneeID: f.Assignee, SLA: f.SLA,
		Page: f.Page, PageSize: queuePageSize, Zone: u.zone, Service: f.Service,
	}
	if t, ok := reportDate(f.From); ok {
		filter.From = t
	}
	if t, ok := reportDate(f.To); ok {
		filter.To = t.AddDate(0, 0, 1)
	}
	if n, err := strconv.Atoi(f.Hour); err == nil {
		filter.Hour = &n
	}
	if n, err := strconv.Atoi(f.Weekday); err == nil {
		filter.Weekday = &n
	}
	filter.AccountID, _ = strconv.ParseInt(f.Account, 10, 64)
	filter.Measure, filter.Outcome, filter.Reopened = f.Measure, f.Outcome, f.Reopened == "true"
	p, err := u.cases.Queue(ctx, actor, filter)
	if err == nil && len(p.Rows) == 0 && p.Pages > 0 && f.Page > p.Pages {
		// Cases taken since the page was shown: its last page now.
		filter.Page = p.Pages
		p, err = u.cases.Queue(ctx, actor, filter)
	}
	if errors.Is(err, cases.ErrUnknownTeam) {
		return queueData{}, echo.NewHTTPError(http.StatusNotFound)
	}
	if err != nil {
		return queueData{}, err
	}
	now := time.Now()
	rows := make([]queueRow, 0, len(p.Rows))
	for _, c := range p.Rows {
		row := queueRow{
			Reference: c.Reference, Channel: c.Channel, Resident: c.Contact.DisplayName, Handle: c.Contact.Handle,
			Excerpt: c.Subject, Since: c.LastMessageAt, Status: c.Status, Priority: c.Priority,
		}
		if m := c.Latest; m != nil {
			row.Excerpt, row.Visibility, row.Since = m.Body, m.Visibility, m.At
		}
		row.Excerpt = excerpt(row.Excerpt, 12, 100)
		if c.SLADue != nil {
			row.SLA, row.Breached = due(*c.SLADue, now)
		}
		row.Waiting = waiting(row.Since, now)
		row.Local = clock(row.Since, now, u.zone)
		row.Exact = row.Since.UTC().Format(time.RFC3339)
		rows = append(rows, row)
	}
	d := queueData{Rows: rows, Total: p.Total, Filter: f, Query: f.query(), Page: p.Page, Pages: p.Pages, TeamName: "your teams",
		Period: periodWords(f)}
	if len(rows) > 0 {
		d.First = (p.Page-1)*p.PageSize + 1
		d.Last = d.First + len(rows) - 1
	}
	link := func(n int) string {
		q := d.Query
		if q != "" {
			q += "&"
		}
		return "/queue?" + q + "page=" + strconv.Itoa(n)
	}
	if p.Page > 1 {
		d.Prev = link(p.Page - 1)
	}
	if p.Page < p.Pages {
		d.Next = link(p.Page + 1)
	}

	// The filters, with their counts.
	teams, err := u.cases.Teams(ctx)
	if err != nil {
		return queueData{}, err
	}
	mine, err := u.cases.TeamSlugsOf(ctx, actor)
	if err != nil {
		return queueData{}, err
	}
	d.Teams = []option{{Value: "", Label: "All your teams", Selected: f.Team == ""}}
	for _, t := range teams {
		if mine == nil || slices.Contains(mine, t.Slug) {
			d.Teams = append(d.Teams, option{Value: t.Slug, Label: t.Name, Selected: f.Team == t.Slug})
			if f.Team == t.Slug {
				d.TeamName = t.Name
			}
		}
	}
	chosen := f.Statuses
	if len(chosen) == 0 {
		chosen = []string{cases.StatusNew, cases.StatusOpen}
	}
	for _, st := range cases.Statuses {
		o := option{Value: st, Label: name(statusNames, st), Count: p.Counts.Status[st], Selected: slices.Contains(chosen, st)}
		if !slices.Contains(queueStatuses, st) {
			// Resolved and closed cases: offered once the address asks
			// for them (a report's figure), and not counted.
			if !o.Selected {
				continue
			}
			o.Uncounted = true
		}
		d.Status = append(d.Status, o)
	}
	prio := []option{{Value: "", Label: "All priorities", Count: p.Counts.All, Selected: f.Priority == ""}}
	for _, pr := range []string{"urgent", "high", "normal", "low"} {
		prio = append(prio, option{Value: pr, Label: name(priorityNames, pr), Count: p.Counts.Priority[pr], Selected: f.Priority == pr})
	}
	tags := []option{{Value: "", Label: "Any tag", Count: p.Counts.All, Selected: f.Tag == ""}}
	tagged := false
	for _, t := range p.Counts.Tag {
		tags = append(tags, option{Value: t.Tag, Label: t.Tag, Count: t.N, Selected: f.Tag == t.Tag})
		tagged = tagged || f.Tag == t.Tag
	}
	if f.Tag != "" && !tagged {
		tags = append(tags, option{Value: f.Tag, Label: f.Tag, Selected: true, Uncounted: true})
	}
	deadline := []option{{Value: "", Label: "Any deadline", Count: p.Counts.All, Selected: f.SLA == ""}}
	for _, st := range cases.SLAStates {
		deadline = append(deadline, option{Value: st, Label: name(slaNames, st), Count: p.Counts.SLA[st], Selected: f.SLA == st})
	}
	d.Selects = []filterSelect{
		{"channel", "Channel", countOptions(p.Counts.Channel, channelNames, f.Channel, "All channels", p.Counts.All)},
		{"priority", "Priority", prio},
		{"sla", "Deadline", deadline},
		{"tag", "Tag", tags},
	}
	d.Assign = []option{
		{Value: "", Label: "Anyone or no one", Count: p.Counts.All, Selected: f.Assigned == ""},
		{Value: "mine", Label: "Assigned to me", Count: p.Counts.Mine, Selected: f.Assigned == "mine"},
		{Value: "unassigned", Label: "Unassigned", Count: p.Counts.Unassigned, Selected: f.Assigned == "unassigned"},
	}
	if f.Assignee != 0 && f.Assignee != actor.UserID {
		// From the dashboard: one adviser's cases.
		names, err := u.cases.UserNames(ctx, []int64{f.Assignee})
		if err != nil {
			return queueData{}, err
		}
		who, ok := names[f.Assignee]
		if !ok {
			who = "a user who does not exist"
		}
		d.Assign = append(d.Assign, option{Value: f.Assigned, Label: "Assigned to " + who, Selected: true, Uncounted: true})
	} else if f.Assignee != 0 {
		d.Assign[1].Selected = true
	}
	return d, nil
}

// countOptions is a select's options from counts by key, largest first,
// after an option for everything.
func countOptions(counts map[string]int, names map[string]string, selected, all string, total int) []option {
	out := []option{{Value: "", Label: all, Count: total, Selected: selected == ""}}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	found := false
	for _, k := range keys {
		out = append(out, option{Value: k, Label: name(names, k), Count: counts[k], Selected: selected == k})
		found = found || selected == k
	}
	if selected != "" && !found {
		out = append(out, option{Value: selected, Label: name(names, selected), Selected: true, Uncounted: true})
	}
	return out
}

// due says in words how a deadline stands at now, and whether it passed.
func due(at, now time.Time) (string, bool) {
	if at.After(now) {
		return "Due in " + waiting(now, at), false
	}
	return "Breached " + waiting(at, now) + " ago", true
}

// excerpt is the first words of s, at most words words and about max
// characters, on one line, with "…" when cut.
func excerpt(s string, words, max int) string {
	fields := strings.Fields(s)
	cut := len(fields) > words
	if cut {
		fields = fields[:words]
	}
	out := strings.Join(fields, " ")
	if utf8.RuneCountInString(out) > max {
		out = string([]rune(out)[:max])
		cut = true
	}
	if cut {
		out = strings.TrimRight(out, " ") + "…"
	}
	return out
}

// waiting says how long since t, as an adviser reads it: "under a
// minute", "25 min", "3 h 10 min", "2 days".
func waiting(since, now time.Time) string {
	d := now.Sub(since)
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	case d < 48*time.Hour:
		return "1 day"
	default:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
}

var channelNames = map[string]string{
	"x": "X", "facebook": "Facebook", "instagram": "Instagram", "whatsapp": "WhatsApp", "telegram": "Telegram",
	"sms": "SMS", "mastodon": "Mastodon", "bluesky": "Bluesky", "email": "Email",
}

// slaNames are the SLA states as the queue's filter and the dashboard
// name them.
var slaNames = map[string]string{
	cases.CaseBreached: "Breached", cases.CaseWarned: "Past the warning time", cases.CaseAtRisk: "Due within the hour",
}

var priorityNames = map[string]string{"low": "Low", "normal": "Normal", "high": "High", "urgent": "Urgent"}

var statusNames = map[string]string{
	"new": "New", "open": "Open", "awaiting_resident": "Awaiting resident", "resolved": "Resolved", "closed": "Closed",
}

func name(names map[string]string, k string) string {
	if n, ok := names[k]; ok {
		return n
	}
	return k
}

// funcs are the templates' helpers. Everything they return is text that
// html/template escapes; none returns template.HTML.
var funcs = template.FuncMap{
	// may says whether the role may do the action (cases.Allowed), for
	// the navigation.
	"may":    func(role, act string) bool { return cases.Allowed(role, cases.Action(act)) },
	"plural": plural,
	// list is its arguments, to range over.
	"list":     func(v ...any) []any { return v },
	"add":      func(a, b int) int { return a + b },
	"channel":  func(k string) string { return name(channelNames, k) },
	"status":   func(k string) string { return name(statusNames, k) },
	"priority": func(k string) string { return name(priorityNames, k) },
	"visibility": func(v string) string {
		switch v {
		case "public":
			return "Public"
		case "private":
			return "Private"
		}
		return ""
	},
	// index1 is the n'th (from 1) of a list, "" past its end.
	"index1": func(list []string, n int) string {
		if n < 1 || n > len(list) {
			return ""
		}
		return list[n-1]
	},
}

// clock shows t in the zone: the time alone today, with the day within a
// week, with the date before that.
func clock(t, now time.Time, zone *time.Location) string {
	t, now = t.In(zone), now.In(zone)
	switch {
	case t.YearDay() == now.YearDay() && t.Year() == now.Year():
		return t.Format("15:04")
	case now.Sub(t) < 6*24*time.Hour:
		return t.Format("Mon 15:04")
	default:
		return t.Format("2 Jan 2006 15:04")
	}
}

// periodWords says in words which of a report's filters the queue holds.
func periodWords(f queueFilter) string {
	var parts []string
	day := func(v string) string {
		t, _ := reportDate(v)
		return t.Format("2 January 2006")
	}
	if f.Measure != "" {
		what := map[string]string{reports.FirstResponse: "first responses", reports.NextResponse: "next responses", reports.Resolution: "resolutions"}[f.Measure] +
			map[string]string{"": "", "met": " met", "breached": " breached", "running": " still running"}[f.Outcome]
		if f.Reopened != "" {
			what += " reopened since"
		}
		period := ""
		if f.From != "" && f.To != "" {
			period = " from " + day(f.From) + " to " + day(f.To)
		}
		parts = append(parts, "the cases of the "+what+" of the period"+period+" as the response times count them")
	}
	switch {
	case f.Measure != "":
	case f.From != "" && f.To != "":
		parts = append(parts, "first wrote from "+day(f.From)+" to "+day(f.To))
	case f.From != "":
		parts = append(parts, "first wrote on or after "+day(f.From))
	case f.To != "":
		parts = append(parts, "first wrote on or before "+day(f.To))
	}
	if h, err := strconv.Atoi(f.Hour); err == nil {
		parts = append(parts, fmt.Sprintf("between %02d:00 and %02d:59", h, h))
	}
	if n, err := strconv.Atoi(f.Weekday); err == nil {
		parts = append(parts, "on a "+weekdayNames[n-1])
	}
	if f.Account != "" {
		parts = append(parts, "through channel account "+f.Account)
	}
	if f.Service != "" {
		parts = append(parts, "about the service "+f.Service)
	}
	if len(parts) == 0 {
		return ""
	}
	if f.Measure != "" {
		return "Only " + strings.Join(parts, ", ") + "."
	}
	return "Only cases whose resident " + strings.Join(parts, ", ") + "."
}
