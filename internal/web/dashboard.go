package web

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/reports"
)

// The supervisors' dashboard: each team's backlog by status and channel,
// the oldest waiting case, the cases breached, warned and at risk, the
// advisers' load, and the channel accounts that are not working. Every
// figure of cases links to the queue filtered to exactly those cases (the
// same team, statuses, channel, adviser or SLA state; store.SLAState is
// the one definition of each state). The page holds the case events
// stream; dashboard.mjs fetches the figures again (GET /dashboard/figures)
// when a case changes, at most every two seconds, and every 30 seconds
// anyway, as time passing breaches cases.

type dashboardData struct {
	// At is when the figures were read: in words, and exactly.
	At, AtExact string
	Teams       []teamFigures
	Unhealthy   []unhealthyAccount
	// Unwell is a figure of how many accounts are not working, for the
	// announcements.
	Unwell figure
	// NoTeams: a supervisor who belongs to no team.
	NoTeams bool
}

// figure is one number on the dashboard and the cases behind it.
type figure struct {
	// Key names the figure for dashboard.mjs, which announces a change.
	Key string
	N   int64
	// Label is what the number counts, shown beside it.
	Label string
	// Link is the queue of the cases behind it.
	Link string
	// Say is the figure in words, for the announcement of a change
	// ("Waste: 12 cases in the queue").
	Say string
}

type teamFigures struct {
	// ID is the team's place on the page, for its headings' ids.
	ID         string
	Slug, Name string
	// Headline: in the queue, breached, past the warning, due within the
	// hour.
	Headline  []figure
	ByStatus  []figure
	ByChannel []figure
	Oldest    *oldestCase
	Online    int64
	Advisers  []adviserRow
}

type oldestCase struct {
	Reference string
	// Wait is how long it has waited, in words; Local when it began, in
	// the council's time zone; Exact that in RFC 3339.
	Wait, Local, Exact string
}

type adviserRow struct {
	Name string
	Open figure
	// Cap is the team's cap, "" for none; AtCap says the adviser holds it.
	Cap    string
	AtCap  bool
	Online bool
}

type unhealthyAccount struct {
	Name, Channel, Reason string
	Since, SinceExact     string
}

// dashboard is the page.
func (u *UI) dashboard(r *request) error {
	live := u.liveURL(r.ctx(), "")
	data, err := u.dashboardData(r)
	if err != nil {
		return err
	}
	return u.render(r, http.StatusOK, "dashboard.html", page{Title: "Dashboard", Nav: "dashboard", Live: live, OwnNews: true, Data: data})
}

// dashboardFigures is the page's figures, for the live refresh.
func (u *UI) dashboardFigures(r *request) error {
	data, err := u.dashboardData(r)
	if err != nil {
		return err
	}
	return u.renderFragment(r, "dashboard.html", "figures", data)
}

func (u *UI) dashboardData(r *request) (dashboardData, error) {
	if u.reports == nil {
		return dashboardData{}, echoNotFound()
	}
	// A supervisor's own teams; an admin's every team.
	var teams []int64
	if !cases.EveryTeam(r.user.Role) {
		teams = append([]int64{}, r.user.TeamIDs...)
	}
	now := time.Now()
	live, err := u.reports.Live(r.ctx(), teams, now)
	if err != nil {
		return dashboardData{}, err
	}
	return dashboardView(live, now, u.zone, teams != nil && len(teams) == 0), nil
}

// dashboardView is the page's view of the figures.
func dashboardView(live reports.Live, now time.Time, zone *time.Location, noTeams bool) dashboardData {
	d := dashboardData{At: clock(live.At, now, zone), AtExact: live.At.UTC().Format(time.RFC3339), NoTeams: noTeams}
	for i, t := range live.Teams {
		tf := teamFigures{ID: "team-" + strconv.Itoa(i+1), Slug: t.Slug, Name: t.Name, Online: t.Online}
		// Still being worked on: every status the figures count.
		all := queueFilter{Team: t.Slug, Statuses: queueStatuses}
		fig := func(key string, n int64, label, say string, f queueFilter) figure {
			return figure{Key: t.Slug + "." + key, N: n, Label: label, Link: "/queue?" + f.query(),
				Say: t.Name + ": " + casesIn(n) + " " + say}
		}
		withSLA := func(st string) queueFilter { f := all; f.SLA = st; return f }
		tf.Headline = []figure{
			fig("cases", t.Cases, "In the queue", "in the queue", all),
			fig("breached", t.Breached, "Breached now", "breached", withSLA(cases.CaseBreached)),
			fig("warned", t.Warned, "Past the warning time", "past the warning time", withSLA(cases.CaseWarned)),
			fig("at_risk", t.AtRisk, "Due within the hour", "due within the hour", withSLA(cases.CaseAtRisk)),
		}
		for _, st := range queueStatuses {
			f := all
			f.Statuses = []string{st}
			tf.ByStatus = append(tf.ByStatus, fig("status."+st, t.ByStatus[st], name(statusNames, st), name(statusNames, st), f))
		}
		channels := make([]string, 0, len(t.ByChannel))
		for ch := range t.ByChannel {
			channels = append(channels, ch)
		}
		slices.SortFunc(channels, func(a, b string) int {
			if t.ByChannel[a] != t.ByChannel[b] {
				return int(t.ByChannel[b] - t.ByChannel[a])
			}
			return strings.Compare(a, b)
		})
		for _, ch := range channels {
			f := all
			f.Channel = ch
			tf.ByChannel = append(tf.ByChannel, fig("channel."+ch, t.ByChannel[ch], name(channelNames, ch), "on "+name(channelNames, ch), f))
		}
		if o := t.Oldest; o != nil {
			tf.Oldest = &oldestCase{Reference: o.Reference, Wait: waiting(o.Since, now), Local: clock(o.Since, now, zone),
				Exact: o.Since.UTC().Format(time.RFC3339)}
		}
		for _, a := range t.Advisers {
			f := all
			f.Assigned, f.Assignee = strconv.FormatInt(a.UserID, 10), a.UserID
			row := adviserRow{Name: a.Name, Online: a.Online,
				Open: fig("adviser."+strconv.FormatInt(a.UserID, 10), a.Open, "open cases", "assigned to "+a.Name, f)}
			if a.Cap != nil {
				row.Cap = strconv.FormatInt(*a.Cap, 10)
				row.AtCap = a.Open >= *a.Cap
			}
			tf.Advisers = append(tf.Advisers, row)
		}
		d.Teams = append(d.Teams, tf)
	}
	for _, a := range live.Unhealthy {
		d.Unhealthy = append(d.Unhealthy, unhealthyAccount{Name: a.Name, Channel: name(channelNames, a.Channel), Reason: a.Reason,
			Since: clock(a.Since, now, zone), SinceExact: a.Since.UTC().Format(time.RFC3339)})
	}
	n := int64(len(live.Unhealthy))
	d.Unwell = figure{Key: "unhealthy", N: n, Say: plural(n, "channel account", "channel accounts") + " not working"}
	return d
}

// casesIn is "1 case", "12 cases".
func casesIn(n int64) string { return plural(n, "case", "cases") }

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
