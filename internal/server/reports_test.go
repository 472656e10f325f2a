package server_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/reports"
)

// reportFigure is a number of the response-times page and where it leads.
var reportFigure = regexp.MustCompile(`<a class="govuk-link" href="(/queue\?[^"]+)" data-figure="([^"]+)" data-value="(\d+)"`)

// The response-times page shows reports.Compute's figures for the filter
// chosen: a supervisor's teams, an admin's every team, advisers refused;
// a wrong filter is an error that shows nothing; every number links to
// the queue, exactly the cases it counts; the exports carry
// the page's filter; what admins typed is escaped.
func TestUIReportResponseTimes(t *testing.T) {
	h := newHarness(t)
	f := newReportFixture(t, h)
	at, respond, london := f.at, f.respond, f.london

	// Three cases in November: two answered, one resolved; one moved to
	// highways; one in October, outside the period.
	answered, waiting, moved, october := f.nov, f.waiting, f.moved, f.oct
	respond(answered, at("2026-11-03 11:30"))
	respond(moved, at("2026-11-05 16:00"))
	if err := h.direct.Transaction(func(tx *gorm.DB) error {
		if err := h.srv.Cases.RecordResolution(tx, answered, nil, at("2026-11-04 12:00")); err != nil {
			return err
		}
		return tx.Exec(`UPDATE cases SET status = 'resolved', resolved_at = ? WHERE id = ?`, at("2026-11-04 12:00"), answered).Error
	}); err != nil {
		t.Fatal(err)
	}
	// Its resolution was reopened since (the case resolved again).
	h.direct.Exec(`UPDATE case_resolutions SET reopened_at = ? WHERE case_id = ?`, at("2026-11-06 10:00"), answered)
	answeredRef := h.caseDetail(answered).Reference
	var cc int64
	h.direct.Raw(`SELECT id FROM teams WHERE slug = 'contact-centre'`).Scan(&cc)

	const period = "from=2026-11-01&to=2026-11-30"
	want := func(teams []int64) reports.Figures {
		t.Helper()
		f, err := reports.Compute(context.Background(), h.srv.DB, reports.Filter{From: at("2026-11-01 00:00"), To: at("2026-12-01 00:00"), Teams: teams},
			time.Now(), london)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	sam := newBrowser(t, h.srv.URL())
	sam.mustSignIn("sam@example.gov.uk")
	a := sam.get("/reports/response-times?" + period)
	if a.status != http.StatusOK {
		t.Fatalf("GET the response times as a supervisor: %d\n%s", a.status, a.body)
	}
	figs := want([]int64{cc})
	if figs.Cases != 2 || figs.FirstResponse.Count != 1 || figs.Resolutions != 1 || figs.Reopened != 1 ||
		figs.Attainment[reports.FirstResponse] != (reports.Attainment{Met: 1, Breached: 1}) {
		t.Fatalf("the fixture's figures: %+v", figs)
	}
	shown := map[string]int64{}
	links := map[string]string{}
	for _, m := range reportFigure.FindAllStringSubmatch(a.body, -1) {
		n, _ := strconv.ParseInt(m[3], 10, 64)
		shown[m[2]], links[m[2]] = n, html.UnescapeString(m[1])
	}
	expect := map[string]int64{
		"cases": figs.Cases, "resolutions": figs.Resolutions, "reopened": figs.Reopened,
		"durations.first_response": figs.FirstResponse.Count, "durations.next_response": figs.NextResponse.Count,
		"durations.resolution": figs.Resolution.Count,
	}
	for target, att := range figs.Attainment {
		expect["met."+target], expect["breached."+target], expect["running."+target] = att.Met, att.Breached, att.Running
	}
	for hr, n := range figs.ByHour {
		expect["hour."+strconv.Itoa(hr)] = n
	}
	for d, n := range figs.ByWeekday {
		expect["weekday."+strconv.Itoa(d+1)] = n
	}
	for key, n := range expect {
		got, ok := shown[key]
		if !ok || got != n {
			t.Errorf("figure %s shows %d (%v), reports.Compute says %d", key, got, ok, n)
		}
	}
	if shown["hour.9"] != 1 || shown["hour.14"] != 1 || shown["weekday.2"] != 2 {
		t.Errorf("the volumes: %v", shown)
	}
	for _, w := range []string{
		`<h1 class="govuk-heading-l">Response times</h1>`,
		`aria-current="page">Response times</a>`,
		`Figures for 1 November 2026 to 30 November 2026`,
		// Calendar time of the one first response: 09:15 to 11:30.
		`<td class="govuk-table__cell govuk-table__cell--numeric">2 h 15 min</td>`,
		// Resolution: 09:15 to 12:00 the next day.
		`<td class="govuk-table__cell govuk-table__cell--numeric">1 day 2 h 45 min</td>`,
		`<svg class="app-chart" role="img" aria-labelledby="by-hour-title by-hour-desc"`,
		`<title id="by-hour-title">Cases by hour of day</title>`,
		`Cases by day of week, as a table</caption>`,
		`<th scope="row" class="govuk-table__header">09:00 to 09:59</th>`,
		`href="/reports/export/cases?from=2026-11-01&amp;to=2026-11-30"`,
		`No responses yet`,
	} {
		if !strings.Contains(a.body, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
	if r, ok := figs.ReopenRate(); !ok || !strings.Contains(a.body, fmt.Sprintf(">%.1f%%</td>", r*100)) {
		t.Errorf("the reopen rate (%v %v) is not shown", r, ok)
	}
	if r, ok := figs.Attainment[reports.FirstResponse].Rate(); !ok || !strings.Contains(a.body, fmt.Sprintf(">%.1f%%</td>", r*100)) {
		t.Errorf("the first response attainment (%v %v) is not shown", r, ok)
	}
	if strings.Contains(a.body, "Highways") {
		t.Error("the supervisor's page offers another team")
	}

	// Every number leads to its cases in the queue.
	for key, link := range links {
		q := sam.get(link)
		total := 0
		if tm := queueTotal.FindStringSubmatch(q.body); tm != nil {
			total, _ = strconv.Atoi(tm[1])
		} else if !strings.Contains(q.body, "No cases match these filters") {
			t.Errorf("figure %s: %s answers %d without results\n%s", key, link, q.status, q.body)
		}
		switch {
		case q.status != http.StatusOK:
			t.Errorf("figure %s: %s answers %d", key, link, q.status)
		case int64(total) != shown[key]:
			t.Errorf("figure %s says %d, its link %s lists %d", key, shown[key], link, total)
		}
	}
	// The very cases: the answered one met its first response and was
	// resolved; the waiting one breached it.
	waitingRef := h.caseDetail(waiting).Reference
	for key, want := range map[string]string{"met.first_response": answeredRef, "durations.first_response": answeredRef,
		"breached.first_response": waitingRef, "resolutions": answeredRef, "reopened": answeredRef} {
		other := waitingRef
		if want == waitingRef {
			other = answeredRef
		}
		if body := sam.get(links[key]).body; !strings.Contains(body, `href="/cases/`+want+`"`) || strings.Contains(body, `href="/cases/`+other+`"`) {
			t.Errorf("figure %s's queue (%s) does not list just %s:\n%s", key, links[key], want, body)
		}
	}
	if q := sam.get(links["breached.first_response"]); !strings.Contains(q.body, `<input type="hidden" name="measure" value="first_response">`) ||
		!strings.Contains(q.body, "Only the cases of the first responses breached of the period from 1 November 2026 to 30 November 2026") {
		t.Errorf("the breached first responses' queue:\n%s", q.body)
	}

	// The period's cases, resolved ones too, with the filter kept.
	q := sam.get(links["hour.9"])
	if !strings.Contains(q.body, `href="/cases/`+answeredRef+`"`) || !strings.Contains(q.body, `<input type="hidden" name="hour" value="9">`) ||
		!strings.Contains(q.body, `id="filter-status-resolved" name="status" type="checkbox" value="resolved" checked`) ||
		!strings.Contains(q.body, "Only cases whose resident first wrote from 1 November 2026 to 30 November 2026, between 09:00 and 09:59.") {
		t.Errorf("the 09:00 cases' queue:\n%s", q.body)
	}

	// The exports of the page's filter: the supervisor's teams' cases.
	e := sam.get("/reports/export/cases?" + period)
	if e.status != http.StatusOK || !strings.HasPrefix(e.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(e.header.Get("Content-Disposition"), "cases-2026-11-01-2026-11-30.csv") ||
		!strings.Contains(e.body, answeredRef) || strings.Contains(e.body, h.caseDetail(moved).Reference) ||
		strings.Contains(e.body, h.caseDetail(october).Reference) {
		t.Errorf("the cases export: %d %v\n%s", e.status, e.header, e.body)
	}
	if n := h.count(`SELECT count(*) FROM audit_events WHERE action = 'export.cases'`); n != 1 {
		t.Errorf("%d exports audited, want 1", n)
	}
	if e := sam.get("/reports/export/messages?" + period + "&team=highways"); e.status != http.StatusBadRequest {
		t.Errorf("a supervisor's export of another team: %d", e.status)
	}

	// A wrong filter shows the errors and no figures.
	for query, msg := range map[string]string{
		"from=2026-11-30&to=2026-11-01":                      "The last day of the period must be the same as or after the first day",
		period + "&team=highways":                            "Choose one of your teams",
		period + "&team=%3Cscript%3Ealert(1)%3C%2Fscript%3E": "Choose one of your teams",
		"from=yesterday&to=2026-11-01":                       "Enter the first day of the period as a date",
	} {
		a := sam.get("/reports/response-times?" + query)
		if a.status != http.StatusBadRequest || !strings.Contains(a.body, `<div class="govuk-error-summary"`) ||
			!strings.Contains(a.body, msg) || !strings.Contains(a.body, `class="govuk-error-message"`) ||
			strings.Contains(a.body, "data-figure") || strings.Contains(a.body, "<script>alert") ||
			!strings.Contains(a.body, "<title>Error: ") {
			t.Errorf("GET with %s: %d\n%s", query, a.status, a.body)
		}
	}

	// An admin sees every team, the names escaped.
	root := newBrowser(t, h.srv.URL())
	root.mustSignIn("root@example.gov.uk")
	a = root.get("/reports/response-times?" + period)
	all := want(nil)
	if a.status != http.StatusOK || !strings.Contains(a.body, `data-figure="cases" data-value="`+strconv.FormatInt(all.Cases, 10)+`"`) || all.Cases != 3 ||
		!strings.Contains(a.body, `>Highways &lt;b&gt;&amp;&lt;/b&gt; &#34;roads&#34;</option>`) || strings.Contains(a.body, "<b>&</b>") {
		t.Errorf("the admin's page (%d):\n%s", a.status, a.body)
	}
	if a := root.get("/reports/response-times?" + period + "&team=highways"); a.status != http.StatusOK ||
		!strings.Contains(a.body, `data-figure="cases" data-value="1"`) {
		t.Errorf("the admin's page of highways (%d)", a.status)
	}

	// Advisers may not see it, nor find it in the navigation.
	ada := newBrowser(t, h.srv.URL())
	ada.mustSignIn("ada@example.gov.uk")
	for _, path := range []string{"/reports/response-times", "/reports/export/cases?" + period, "/reports/export/messages?" + period} {
		if a := ada.get(path); a.status != http.StatusForbidden || strings.Contains(a.body, "data-figure") {
			t.Errorf("an adviser's GET %s: %d\n%s", path, a.status, a.body)
		}
	}
	if strings.Contains(ada.get("/queue").body, `href="/reports/response-times"`) {
		t.Error("the adviser's navigation offers the response times")
	}
}
