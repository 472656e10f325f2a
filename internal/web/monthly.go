package web

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/reports"
)

// The monthly summary: one team's month for a committee, beside the month
// before it. Two reports.Compute calls make every figure; each figure
// carries its change from the previous month in words and numbers ("down
// 12 min", "up 3.1 points"), never colour alone. The page prints on its
// own (the print rules in app.css): no navigation, forms or buttons.

type monthlyForm struct{ Team, Month string }

type monthlyData struct {
	Form   monthlyForm
	Errors []fieldError
	Teams  []option
	// Shown is false when the form has errors: no figures.
	Shown bool
	// TeamName, Month and Previous name the team and the two months
	// ("November 2026").
	TeamName, Month, Previous string
	Printed                   string
	Attainment                []monthlyAttainment
	Working, Calendar         []monthlyRow
	Volumes                   []monthlyRow
}

// ErrorFor is the message of a field, "" when it has none.
func (d monthlyData) ErrorFor(field string) string {
	for _, e := range d.Errors {
		if e.Field == field {
			return e.Text
		}
	}
	return ""
}

// monthlyRow is one figure of the month, the month before and the change.
type monthlyRow struct {
	Key, Label                string
	Current, Previous, Change string
}

type monthlyAttainment struct {
	monthlyRow
	Met, Breached, PreviousMet, PreviousBreached int64
}

// monthlySummary is the page.
func (u *UI) monthlySummary(r *request) error {
	if u.reports == nil {
		return echoNotFound()
	}
	q := r.QueryParams()
	now := time.Now().In(u.zone)
	d := monthlyData{Form: monthlyForm{Team: q.Get("team"), Month: q.Get("month")}, Printed: now.Format("2 January 2006")}
	if !q.Has("month") || d.Form.Month == "" {
		d.Form.Month = time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, u.zone).Format("2006-01")
	}
	var teams []int64
	if !cases.EveryTeam(r.user.Role) {
		teams = append([]int64{0}, r.user.TeamIDs...) // 0: none when they have none
	}
	choices, err := u.reports.Choices(r.ctx(), teams)
	if err != nil {
		return err
	}
	if d.Form.Team == "" && len(choices.Teams) > 0 {
		d.Form.Team = choices.Teams[0].Slug
		for _, t := range choices.Teams {
			if len(r.user.TeamIDs) > 0 && t.ID == r.user.TeamIDs[0] {
				d.Form.Team = t.Slug
			}
		}
	}
	var team *ReportChoice
	for i, t := range choices.Teams {
		d.Teams = append(d.Teams, option{Value: t.Slug, Label: t.Name, Selected: d.Form.Team == t.Slug})
		if d.Form.Team == t.Slug {
			team = &choices.Teams[i]
		}
	}
	month, err := time.ParseInLocation("2006-01", d.Form.Month, londonZone)
	if err != nil {
		d.Errors = append(d.Errors, fieldError{"month", "Enter the month as a year and month, like 2026-11"})
	}
	if team == nil {
		d.Errors = append(d.Errors, fieldError{"team", "Choose one of your teams"})
	}
	if len(d.Errors) > 0 {
		return u.render(r, http.StatusBadRequest, "monthly.html", page{Title: "Monthly summary", Nav: "reports", Error: true, Data: d})
	}
	prev := month.AddDate(0, -1, 0)
	compute := func(from time.Time) (reports.Figures, error) {
		return u.reports.Compute(r.ctx(), reports.Filter{From: from, To: from.AddDate(0, 1, 0), Teams: []int64{team.ID}}, time.Now(), u.zone)
	}
	cur, err := compute(month)
	if err != nil {
		return err
	}
	before, err := compute(prev)
	if err != nil {
		return err
	}
	d.TeamName, d.Month, d.Previous, d.Shown = team.Name, month.Format("January 2006"), prev.Format("January 2006"), true
	monthlyView(&d, cur, before, month.Format("January"), prev.Format("January"))
	return u.render(r, http.StatusOK, "monthly.html", page{Title: "Monthly summary", Nav: "reports", Data: d})
}

// monthlyView lays out the figures of the month (cur) and the month
// before (prev), named curName and prevName in the changes.
func monthlyView(d *monthlyData, cur, prev reports.Figures, curName, prevName string) {
	none := func(name string) string { return "no figures for " + name }
	rate := func(r float64, ok bool) string {
		if !ok {
			return "No figures"
		}
		return percent(r)
	}
	rateChange := func(c float64, cok bool, p float64, pok bool) string {
		switch {
		case !pok:
			return none(prevName)
		case !cok:
			return none(curName)
		}
		diff := math.Round((c-p)*1000) / 10
		switch {
		case diff > 0:
			return "up " + strconv.FormatFloat(diff, 'f', 1, 64) + " points"
		case diff < 0:
			return "down " + strconv.FormatFloat(-diff, 'f', 1, 64) + " points"
		}
		return "no change"
	}
	for _, t := range []struct{ key, label string }{
		{reports.FirstResponse, "First response"}, {reports.NextResponse, "Next response"}, {reports.Resolution, "Resolution"},
	} {
		c, p := cur.Attainment[t.key], prev.Attainment[t.key]
		cr, cok := c.Rate()
		pr, pok := p.Rate()
		d.Attainment = append(d.Attainment, monthlyAttainment{
			monthlyRow: monthlyRow{Key: "attainment." + t.key, Label: t.label, Current: rate(cr, cok), Previous: rate(pr, pok),
				Change: rateChange(cr, cok, pr, pok)},
			Met: c.Met, Breached: c.Breached, PreviousMet: p.Met, PreviousBreached: p.Breached,
		})
	}
	duration := func(key, label string, c, p time.Duration, cn, pn int64) monthlyRow {
		row := monthlyRow{Key: key, Label: label, Current: "No figures", Previous: "No figures"}
		if cn > 0 {
			row.Current = span(c)
		}
		if pn > 0 {
			row.Previous = span(p)
		}
		switch {
		case pn == 0:
			row.Change = none(prevName)
		case cn == 0:
			row.Change = none(curName)
		default:
			row.Change = durationChange(c - p)
		}
		return row
	}
	for _, t := range []struct {
		key, label string
		c, p       reports.Durations
	}{
		{reports.FirstResponse, "First response", cur.FirstResponse, prev.FirstResponse},
		{reports.NextResponse, "Next response", cur.NextResponse, prev.NextResponse},
		{reports.Resolution, "Resolution", cur.Resolution, prev.Resolution},
	} {
		d.Working = append(d.Working,
			duration("working.median."+t.key, t.label+", median", t.c.Median, t.p.Median, t.c.Count, t.p.Count),
			duration("working.p90."+t.key, t.label+", 90th percentile", t.c.P90, t.p.P90, t.c.Count, t.p.Count))
		d.Calendar = append(d.Calendar,
			duration("calendar.median."+t.key, t.label+", median", t.c.CalendarMedian, t.p.CalendarMedian, t.c.Count, t.p.Count),
			duration("calendar.p90."+t.key, t.label+", 90th percentile", t.c.CalendarP90, t.p.CalendarP90, t.c.Count, t.p.Count))
	}
	received := monthlyRow{Key: "cases", Label: "Cases received", Current: strconv.FormatInt(cur.Cases, 10),
		Previous: strconv.FormatInt(prev.Cases, 10), Change: countChange(cur.Cases - prev.Cases)}
	if prev.Cases == 0 {
		received.Change = none(prevName)
	}
	cr, cok := cur.ReopenRate()
	pr, pok := prev.ReopenRate()
	d.Volumes = []monthlyRow{received,
		{Key: "reopen", Label: "Reopen rate", Current: rate(cr, cok), Previous: rate(pr, pok), Change: rateChange(cr, cok, pr, pok)}}
}

// durationChange is a change of a time in words: "down 12 min",
// "up 1 h 5 min", "no change" (to the minute, or the second under one).
func durationChange(diff time.Duration) string {
	abs := diff.Abs()
	if abs >= time.Minute {
		abs = abs.Truncate(time.Minute)
	}
	switch {
	case abs < time.Second:
		return "no change"
	case diff > 0:
		return "up " + span(abs)
	default:
		return "down " + span(abs)
	}
}

// countChange is a change of a count in words: "up 5", "down 2".
func countChange(diff int64) string {
	switch {
	case diff > 0:
		return fmt.Sprintf("up %d", diff)
	case diff < 0:
		return fmt.Sprintf("down %d", -diff)
	}
	return "no change"
}
