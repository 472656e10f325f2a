package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/reports"
)

// The response-times report: for a period and filters chosen in a GET
// form, the first response, next response and resolution times (median,
// 90th percentile and maximum, in working and in calendar time), SLA
// attainment per target, the reopen rate, and the period's cases by hour
// of day and by day of week as server-rendered SVG charts, each beside
// its table. reports.Compute makes every figure. Each number links to
// the queue with the same filters and the cases it counts: the period's
// cases by when the resident first wrote; responses, resolutions,
// attainment and reopened cases by the queue's measure, outcome and
// reopened filters (cases.QueueFilter.Measure).

// ReportChoices are what a report's filters offer a user: the teams,
// channel accounts, services and advisers within their reach.
type ReportChoices struct {
	Teams    []ReportChoice
	Accounts []ReportChoice
	Advisers []ReportChoice
	Services []string
}

// ReportChoice is one choice of a filter.
type ReportChoice struct {
	ID         int64
	Slug, Name string
}

type reportForm struct {
	From, To                                           string
	Team, Channel, Account, Service, Priority, Adviser string
}

type reportData struct {
	Form    reportForm
	Errors  []fieldError
	Teams   []option
	Selects []filterSelect
	// Shown is false when the form has errors: no figures.
	Shown bool
	// Period is the period in words.
	Period     string
	Durations  []durationRow
	Attainment []attainmentRow
	Reopen     reopenRow
	Cases      figure
	Charts     []chart
	// ExportCases and ExportMessages are the exports of the filter.
	ExportCases, ExportMessages string
	MayExport                   bool
}

// ErrorFor is the message of a field, "" when it has none.
func (d reportData) ErrorFor(field string) string {
	for _, e := range d.Errors {
		if e.Field == field {
			return e.Text
		}
	}
	return ""
}

type durationRow struct {
	Label                             string
	Count                             figure
	Median, P90, Max                  string
	CalendarMedian, CalendarP90, CalM string
}

type attainmentRow struct {
	Label                  string
	Met, Breached, Running figure
	Rate                   string
}

type reopenRow struct {
	Resolutions, Reopened figure
	Rate                  string
}

// chart is a bar chart of the cases and its table.
type chart struct {
	ID, Title, Desc, Column string
	Bars                    []bar
	Width, Height, Base     int
	Ticks                   []tick
}

type bar struct {
	Label, Short string
	N            figure
	X, Y, W, H   int
	// TextX is where the bar's label is written.
	TextX int
}

type tick struct {
	Y     int
	Label string
}

var weekdayNames = []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}

// reportDate reads a date of a report's form (midnight in London).
func reportDate(v string) (time.Time, bool) {
	t, err := time.ParseInLocation(time.DateOnly, v, londonZone)
	return t, err == nil
}

var londonZone = func() *time.Location {
	z, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err) // time/tzdata is embedded
	}
	return z
}()

// responseTimes is the page.
func (u *UI) responseTimes(r *request) error {
	d, f, err := u.reportFilter(r)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if len(d.Errors) > 0 {
		status = http.StatusBadRequest
	} else {
		now := time.Now()
		figs, err := u.reports.Compute(r.ctx(), f, now, u.zone)
		if err != nil {
			return err
		}
		u.reportView(&d, figs)
		d.Shown = true
		d.MayExport = cases.Allowed(r.user.Role, cases.ActExport)
	}
	return u.render(r, status, "response-times.html", page{Title: "Response times", Nav: "reports", Error: len(d.Errors) > 0, Data: d})
}

// reportFilter reads and checks the form, resolving its choices to the
// filter; a supervisor's filter is their teams' at most.
func (u *UI) reportFilter(r *request) (reportData, reports.Filter, error) {
	if u.reports == nil {
		return reportData{}, reports.Filter{}, echoNotFound()
	}
	q := r.QueryParams()
	now := time.Now().In(u.zone)
	form := reportForm{From: q.Get("from"), To: q.Get("to"), Team: q.Get("team"), Channel: q.Get("channel"),
		Account: q.Get("account"), Service: q.Get("service"), Priority: q.Get("priority"), Adviser: q.Get("adviser")}
	if !q.Has("from") && !q.Has("to") {
		form.From = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, u.zone).Format(time.DateOnly)
		form.To = now.Format(time.DateOnly)
	}
	d := reportData{Form: form}
	var teams []int64
	if !cases.EveryTeam(r.user.Role) {
		teams = append([]int64{0}, r.user.TeamIDs...) // 0: none when they have none
	}
	choices, err := u.reports.Choices(r.ctx(), teams)
	if err != nil {
		return d, reports.Filter{}, err
	}
	bad := func(field, msg string) { d.Errors = append(d.Errors, fieldError{field, msg}) }
	f := reports.Filter{Teams: teams}
	from, okFrom := reportDate(form.From)
	to, okTo := reportDate(form.To)
	switch {
	case !okFrom:
		bad("from", "Enter the first day of the period as a date, like 2026-12-01")
	case !okTo:
		bad("to", "Enter the last day of the period as a date, like 2026-12-31")
	case to.Before(from):
		bad("to", "The last day of the period must be the same as or after the first day")
	default:
		f.From, f.To = from, to.AddDate(0, 0, 1)
		d.Period = from.Format("2 January 2006") + " to " + to.Format("2 January 2006")
	}

	d.Teams = []option{{Value: "", Label: everyTeam(r.user.Role), Selected: form.Team == ""}}
	teamFound := form.Team == ""
	for _, t := range choices.Teams {
		d.Teams = append(d.Teams, option{Value: t.Slug, Label: t.Name, Selected: form.Team == t.Slug})
		if form.Team == t.Slug {
			teamFound, f.Teams = true, []int64{t.ID}
		}
	}
	if !teamFound {
		bad("team", "Choose one of your teams")
	}
	channels := []option{{Value: "", Label: "All channels", Selected: form.Channel == ""}}
	for _, ch := range []string{"x", "facebook", "instagram", "whatsapp", "telegram", "sms", "mastodon", "bluesky", "email"} {
		channels = append(channels, option{Value: ch, Label: name(channelNames, ch), Selected: form.Channel == ch})
	}
	if form.Channel != "" {
		if !slices.ContainsFunc(channels, func(o option) bool { return o.Value == form.Channel }) {
			bad("channel", "Choose a channel from the list")
		}
		f.Channels = []string{form.Channel}
	}
	idChoice := func(field, all, value string, list []ReportChoice, msg string) ([]option, []int64) {
		opts := []option{{Value: "", Label: all, Selected: value == ""}}
		var ids []int64
		for _, c := range list {
			v := strconv.FormatInt(c.ID, 10)
			opts = append(opts, option{Value: v, Label: c.Name, Selected: value == v})
			if value == v {
				ids = []int64{c.ID}
			}
		}
		if value != "" && ids == nil {
			bad(field, msg)
		}
		return opts, ids
	}
	accounts, ids := idChoice("account", "All channel accounts", form.Account, choices.Accounts, "Choose a channel account from the list")
	f.Accounts = ids
	services := []option{{Value: "", Label: "All services", Selected: form.Service == ""}}
	for _, s := range choices.Services {
		services = append(services, option{Value: s, Label: s, Selected: form.Service == s})
	}
	if form.Service != "" {
		if !slices.Contains(choices.Services, form.Service) {
			bad("service", "Choose a service from the list")
		}
		f.Services = []string{form.Service}
	}
	priorities := []option{{Value: "", Label: "All priorities", Selected: form.Priority == ""}}
	for _, p := range []string{"urgent", "high", "normal", "low"} {
		priorities = append(priorities, option{Value: p, Label: name(priorityNames, p), Selected: form.Priority == p})
	}
	if form.Priority != "" {
		if !slices.Contains(cases.Priorities, form.Priority) {
			bad("priority", "Choose a priority from the list")
		}
		f.Priorities = []string{form.Priority}
	}
	advisers, ids := idChoice("adviser", "All advisers", form.Adviser, choices.Advisers, "Choose an adviser from the list")
	f.Advisers = ids
	d.Selects = []filterSelect{
		{"channel", "Channel", channels},
		{"account", "Channel account", accounts},
		{"service", "Service", services},
		{"priority", "Priority", priorities},
		{"adviser", "Adviser", advisers},
	}
	// The errors in the form's order.
	order := []string{"from", "to", "team", "channel", "account", "service", "priority", "adviser"}
	slices.SortStableFunc(d.Errors, func(a, b fieldError) int { return slices.Index(order, a.Field) - slices.Index(order, b.Field) })
	return d, f, nil
}

func everyTeam(role string) string {
	if cases.EveryTeam(role) {
		return "All teams"
	}
	return "All your teams"
}

// queueFilter is the queue's filter of the form's cases.
func (f reportForm) queueFilter() queueFilter {
	q := queueFilter{Team: f.Team, Channel: f.Channel, Priority: f.Priority, From: f.From, To: f.To,
		Account: f.Account, Service: f.Service, Statuses: cases.Statuses}
	if f.Adviser != "" {
		q.Assigned = f.Adviser
	}
	return q
}

// exportQuery is the export's query of the form's filter.
func (f reportForm) exportQuery() string {
	v := url.Values{}
	for k, val := range map[string]string{"from": f.From, "to": f.To, "team": f.Team, "channel": f.Channel,
		"account": f.Account, "service": f.Service, "priority": f.Priority, "adviser": f.Adviser} {
		if val != "" {
			v.Set(k, val)
		}
	}
	return v.Encode()
}

func (u *UI) reportView(d *reportData, figs reports.Figures) {
	base := d.Form.queueFilter()
	link := func(key string, n int64, label string, q queueFilter) figure {
		return figure{Key: key, N: n, Label: label, Link: "/queue?" + q.query()}
	}
	period := func(key string, n int64, label string) figure { return link(key, n, label, base) }
	for _, t := range []struct {
		key, label string
		d          reports.Durations
	}{
		{reports.FirstResponse, "First response", figs.FirstResponse},
		{reports.NextResponse, "Next response", figs.NextResponse},
		{reports.Resolution, "Resolution", figs.Resolution},
	} {
		measured := func(outcome string) queueFilter {
			q := base
			q.Measure, q.Outcome = t.key, outcome
			return q
		}
		row := durationRow{Label: t.label, Count: link("durations."+t.key, t.d.Count, t.label, measured(""))}
		if t.d.Count > 0 {
			row.Median, row.P90, row.Max = span(t.d.Median), span(t.d.P90), span(t.d.Max)
			row.CalendarMedian, row.CalendarP90, row.CalM = span(t.d.CalendarMedian), span(t.d.CalendarP90), span(t.d.CalendarMax)
		}
		d.Durations = append(d.Durations, row)
		a := figs.Attainment[t.key]
		ar := attainmentRow{Label: t.label, Met: link("met."+t.key, a.Met, "met", measured("met")),
			Breached: link("breached."+t.key, a.Breached, "breached", measured("breached")),
			Running:  link("running."+t.key, a.Running, "running", measured("running")), Rate: "No responses yet"}
		if t.key == reports.Resolution {
			ar.Rate = "No resolutions yet"
		}
		if rate, ok := a.Rate(); ok {
			ar.Rate = percent(rate)
		}
		d.Attainment = append(d.Attainment, ar)
	}
	resolutions, reopened := base, base
	resolutions.Measure, reopened.Measure, reopened.Reopened = reports.Resolution, reports.Resolution, "true"
	d.Reopen = reopenRow{Resolutions: link("resolutions", figs.Resolutions, "resolutions", resolutions),
		Reopened: link("reopened", figs.Reopened, "reopened", reopened), Rate: "No resolutions yet"}
	if rate, ok := figs.ReopenRate(); ok {
		d.Reopen.Rate = percent(rate)
	}
	d.Cases = period("cases", figs.Cases, "cases")
	hours := make([]bar, 24)
	for h := range 24 {
		q := base
		q.Hour = strconv.Itoa(h)
		label := fmt.Sprintf("%02d:00 to %02d:59", h, h)
		hours[h] = bar{Label: label, Short: fmt.Sprintf("%02d", h), N: link("hour."+strconv.Itoa(h), figs.ByHour[h], label, q)}
	}
	days := make([]bar, 7)
	for i := range 7 {
		q := base
		q.Weekday = strconv.Itoa(i + 1)
		days[i] = bar{Label: weekdayNames[i], Short: weekdayNames[i][:3], N: link("weekday."+strconv.Itoa(i+1), figs.ByWeekday[i], weekdayNames[i], q)}
	}
	d.Charts = []chart{
		barChart("by-hour", "Cases by hour of day", "Hour of day (London)", "the hour of day the resident first wrote", hours, figs.Cases),
		barChart("by-weekday", "Cases by day of week", "Day of week", "the day of the week the resident first wrote", days, figs.Cases),
	}
	d.ExportCases = "/reports/export/cases?" + d.Form.exportQuery()
	d.ExportMessages = "/reports/export/messages?" + d.Form.exportQuery()
}

// barChart lays out the bars of a chart, 600 by 240 units, the tallest
// bar reaching the top.
func barChart(id, title, column, by string, bars []bar, total int64) chart {
	const width, height, top, base, left = 600, 240, 10, 210, 40
	var most int64
	for _, b := range bars {
		most = max(most, b.N.N)
	}
	scale := max(most, 1)
	slot := (width - left) / len(bars)
	for i := range bars {
		b := &bars[i]
		b.W = slot * 3 / 4
		b.X = left + i*slot + (slot-b.W)/2
		b.H = int(int64(base-top) * b.N.N / scale)
		b.Y = base - b.H
		b.TextX = b.X + b.W/2
	}
	c := chart{ID: id, Title: title, Column: column, Bars: bars, Width: width, Height: height, Base: base,
		Desc: fmt.Sprintf("A bar chart of the %s of the period by %s: the most in one bar is %s. The table beside it gives every figure.",
			plural(total, "case", "cases"), by, plural(most, "case", "cases"))}
	for _, v := range []int64{0, scale / 2, scale} {
		if v == scale/2 && (scale < 2) {
			continue
		}
		c.Ticks = append(c.Ticks, tick{Y: base - int(int64(base-top)*v/scale), Label: strconv.FormatInt(v, 10)})
	}
	return c
}

// span writes a duration as people read it: "45 s", "25 min",
// "2 h 15 min", "3 days 4 h 10 min".
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	default:
		days, h, m := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
		s := plural(int64(days), "day", "days")
		if h > 0 || m > 0 {
			s += fmt.Sprintf(" %d h", h)
		}
		if m > 0 {
			s += fmt.Sprintf(" %d min", m)
		}
		return s
	}
}

// percent is a rate as a percentage with one decimal: "87.5%".
func percent(rate float64) string { return strconv.FormatFloat(rate*100, 'f', 1, 64) + "%" }

// reportExport streams the cases or messages of the report's filter, as
// the export API does (cases.Service.Export: the same checks and audit),
// for the signed-in user.
func reportExport(kind string) func(*UI, *request) error {
	return func(u *UI, r *request) error {
		d, f, err := u.reportFilter(r)
		if err != nil {
			return err
		}
		if len(d.Errors) > 0 {
			return echoBadRequest()
		}
		// The team by its slug, which the service checks against the
		// actor's teams (and limits a supervisor to theirs without one).
		req := cases.ExportRequest{Kind: kind, Format: reports.CSV, Filter: f}
		req.Filter.Teams = nil
		if d.Form.Team != "" {
			req.Teams = []string{d.Form.Team}
		}
		name := fmt.Sprintf("%s-%s-%s.csv", kind, d.Form.From, d.Form.To)
		w := &pageExport{r: r, name: name}
		_, err = u.cases.Export(r.ctx(), r.actor(), req, w)
		if err != nil && !w.started {
			if errors.Is(err, cases.ErrForbidden) {
				return errForbiddenPage
			}
			return err
		}
		if err != nil {
			u.log.WarnContext(r.ctx(), "export ended early", "kind", kind, "err", err)
			return nil
		}
		if !w.started {
			w.start()
		}
		return nil
	}
}

// pageExport writes an export's answer, its headers on the first write.
type pageExport struct {
	r       *request
	name    string
	started bool
}

var _ io.Writer = (*pageExport)(nil)

func (w *pageExport) start() {
	w.started = true
	h := w.r.Response().Header()
	h.Set(echo.HeaderContentType, reports.ContentType(reports.CSV))
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+w.name+`"`)
	w.r.Response().WriteHeader(http.StatusOK)
}

func (w *pageExport) Write(p []byte) (int, error) {
	if !w.started {
		w.start()
	}
	return w.r.Response().Write(p)
}
