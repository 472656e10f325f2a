package server_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/reports"
)

// monthlyFigure is a row of the monthly summary: its key, the month's
// figure, the previous month's and the change.
var monthlyFigure = regexp.MustCompile(`(?s)<tr class="govuk-table__row" data-figure="([^"]+)">.*?data-current>([^<]*)</td>.*?data-previous>([^<]*)</td>.*?data-change>([^<]*)</td>`)

// monthlySpan writes a duration as the page does ("2 h 15 min").
func monthlySpan(d time.Duration) string {
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
	}
	days, h, m := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	s := fmt.Sprintf("%d days", days)
	if days == 1 {
		s = "1 day"
	}
	if h > 0 || m > 0 {
		s += fmt.Sprintf(" %d h", h)
	}
	if m > 0 {
		s += fmt.Sprintf(" %d min", m)
	}
	return s
}

// The monthly summary shows reports.Compute's figures of the team's month
// and the month before, each with its change in words; "no figures for
// October" when October had none; a supervisor sees only their teams, an
// admin any, an adviser none; what admins typed is escaped.
func TestUIReportMonthly(t *testing.T) {
	h := newHarness(t)
	f := newReportFixture(t, h)
	at, respond, london := f.at, f.respond, f.london

	// November: two cases, one answered in 2 h 15 min; October: one case
	// answered in 2 h 27 min; highways: one case in November.
	nov, moved, oct := f.nov, f.moved, f.oct
	respond(nov, at("2026-11-03 11:30"))
	respond(oct, at("2026-10-20 12:27"))
	respond(moved, at("2026-11-05 16:00"))
	var cc int64
	h.direct.Raw(`SELECT id FROM teams WHERE slug = 'contact-centre'`).Scan(&cc)
	compute := func(from, to string) reports.Figures {
		t.Helper()
		f, err := reports.Compute(context.Background(), h.srv.DB, reports.Filter{From: at(from), To: at(to), Teams: []int64{cc}}, time.Now(), london)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	cur, prev := compute("2026-11-01 00:00", "2026-12-01 00:00"), compute("2026-10-01 00:00", "2026-11-01 00:00")
	// November: one met, one breached (still unanswered past its
	// deadline); October: one met.
	if cur.Cases != 2 || prev.Cases != 1 || cur.FirstResponse.Count != 1 || prev.FirstResponse.Count != 1 ||
		cur.Attainment[reports.FirstResponse] != (reports.Attainment{Met: 1, Breached: 1}) || prev.Attainment[reports.FirstResponse] != (reports.Attainment{Met: 1}) {
		t.Fatalf("the fixture's figures: %+v / %+v", cur, prev)
	}
	rows := func(body string) map[string][3]string {
		out := map[string][3]string{}
		for _, m := range monthlyFigure.FindAllStringSubmatch(body, -1) {
			out[m[1]] = [3]string{html.UnescapeString(m[2]), html.UnescapeString(m[3]), html.UnescapeString(m[4])}
		}
		return out
	}
	change := func(d time.Duration) string {
		switch {
		case d > 0:
			return "up " + monthlySpan(d)
		case d < 0:
			return "down " + monthlySpan(-d)
		}
		return "no change"
	}
	rate := func(a reports.Attainment) string {
		r, ok := a.Rate()
		if !ok {
			return "No figures"
		}
		return fmt.Sprintf("%.1f%%", r*100)
	}

	sam := newBrowser(t, h.srv.URL())
	sam.mustSignIn("sam@example.gov.uk")
	a := sam.get("/reports/monthly?team=contact-centre&month=2026-11")
	if a.status != http.StatusOK {
		t.Fatalf("GET the monthly summary as a supervisor: %d\n%s", a.status, a.body)
	}
	got := rows(a.body)
	want := map[string][3]string{
		"working.median.first_response": {monthlySpan(cur.FirstResponse.Median), monthlySpan(prev.FirstResponse.Median),
			change(cur.FirstResponse.Median - prev.FirstResponse.Median)},
		"working.p90.first_response": {monthlySpan(cur.FirstResponse.P90), monthlySpan(prev.FirstResponse.P90),
			change(cur.FirstResponse.P90 - prev.FirstResponse.P90)},
		"calendar.median.first_response": {"2 h 15 min", "2 h 27 min", "down 12 min"},
		"calendar.p90.first_response":    {"2 h 15 min", "2 h 27 min", "down 12 min"},
		"working.median.resolution":      {"No figures", "No figures", "no figures for October"},
		"attainment.first_response":      {rate(cur.Attainment[reports.FirstResponse]), rate(prev.Attainment[reports.FirstResponse]), "down 50.0 points"},
		"cases":                          {"2", "1", "up 1"},
		"reopen":                         {"No figures", "No figures", "no figures for October"},
	}
	for key, w := range want {
		if got[key] != w {
			t.Errorf("row %s shows %q, want %q", key, got[key], w)
		}
	}
	for _, w := range []string{
		`<h1 class="govuk-heading-l">Monthly summary</h1>`,
		`Contact centre, November 2026, compared with October 2026`,
		`<p class="govuk-body app-print-only" id="printed">Printed `,
		`<label class="govuk-label govuk-label--s" for="month">Month</label>`,
		`<label class="govuk-label govuk-label--s" for="team">Team</label>`,
	} {
		if !strings.Contains(a.body, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
	if a := sam.get("/reports/response-times"); !strings.Contains(a.body, `<a class="govuk-link" href="/reports/monthly">Monthly summary</a>`) {
		t.Error("the response times do not link to the monthly summary")
	}

	// October against a September without figures.
	a = sam.get("/reports/monthly?team=contact-centre&month=2026-10")
	got = rows(a.body)
	if a.status != http.StatusOK || got["calendar.median.first_response"] != [3]string{"2 h 27 min", "No figures", "no figures for September"} ||
		got["cases"] != [3]string{"1", "0", "no figures for September"} ||
		got["attainment.first_response"][2] != "no figures for September" {
		t.Errorf("October beside an empty September (%d): %v", a.status, got)
	}

	// The defaults: the supervisor's first team, the last full month.
	a = sam.get("/reports/monthly")
	last := time.Now().In(london)
	last = time.Date(last.Year(), last.Month()-1, 1, 0, 0, 0, 0, london)
	if a.status != http.StatusOK || !strings.Contains(a.body, "Contact centre, "+last.Format("January 2006")+", compared with") ||
		!strings.Contains(a.body, `value="`+last.Format("2006-01")+`"`) {
		t.Errorf("the default summary (%d):\n%s", a.status, a.body)
	}

	// A supervisor may not see another team's; a wrong month is refused.
	for query, msg := range map[string]string{
		"team=highways&month=2026-11":                            "Choose one of your teams",
		"team=%3Cscript%3Ealert(1)%3C%2Fscript%3E&month=2026-11": "Choose one of your teams",
		"team=contact-centre&month=November":                     "Enter the month as a year and month",
	} {
		a := sam.get("/reports/monthly?" + query)
		if a.status != http.StatusBadRequest || !strings.Contains(a.body, `<div class="govuk-error-summary`) || !strings.Contains(a.body, msg) ||
			strings.Contains(a.body, "data-figure") || strings.Contains(a.body, "<script>alert") || !strings.Contains(a.body, "<title>Error: ") {
			t.Errorf("GET with %s: %d\n%s", query, a.status, a.body)
		}
	}
	if strings.Contains(sam.get("/reports/monthly").body, "Highways") {
		t.Error("the supervisor's summary offers another team")
	}

	// An admin sees any team, its name escaped.
	root := newBrowser(t, h.srv.URL())
	root.mustSignIn("root@example.gov.uk")
	a = root.get("/reports/monthly?team=highways&month=2026-11")
	if a.status != http.StatusOK || !strings.Contains(a.body, `Highways &lt;b&gt;&amp;&lt;/b&gt; &#34;roads&#34;, November 2026`) ||
		strings.Contains(a.body, "<b>&</b>") || rows(a.body)["cases"] != [3]string{"1", "0", "no figures for October"} {
		t.Errorf("the admin's summary of highways (%d):\n%s", a.status, a.body)
	}

	// Advisers may not see it.
	ada := newBrowser(t, h.srv.URL())
	ada.mustSignIn("ada@example.gov.uk")
	if a := ada.get("/reports/monthly?team=contact-centre&month=2026-11"); a.status != http.StatusForbidden || strings.Contains(a.body, "data-figure") {
		t.Errorf("an adviser's GET of the monthly summary: %d\n%s", a.status, a.body)
	}
}
