package server_test

import (
	"context"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/citizeninbox/inbox/internal/auth"
)

var (
	// figureLink is a number of the dashboard and where it leads.
	figureLink = regexp.MustCompile(`<a class="govuk-link" href="(/queue\?[^"]+)" data-figure="([^"]+)" data-value="(\d+)"`)
	// queueTotal is how many cases the queue's results say they hold.
	queueTotal = regexp.MustCompile(`Cases \d+ to \d+ of (\d+) in `)
)

// The dashboard shows a supervisor their own teams' figures, an admin
// every team's, and refuses advisers; every figure links to the queue
// filtered to exactly the cases it counts; names and reasons that admins
// typed are escaped.
func TestUIDashboard(t *testing.T) {
	h := newHarness(t)
	h.webUser("sam@example.gov.uk", "supervisor", "contact-centre")
	h.webUser("root@example.gov.uk", "admin")
	h.webUser("ada@example.gov.uk", "adviser", "contact-centre")
	// One whose teams an admin has since taken away.
	lone := h.webUser("lone@example.gov.uk", "supervisor", "highways")
	h.direct.Exec(`DELETE FROM user_teams WHERE user_id = ?`, lone)
	ann, err := h.srv.Auth.CreateUser(context.Background(), auth.NewUser{Email: "ann@example.gov.uk", Name: `Ann <i>Adviser</i>`,
		Role: "adviser", Teams: []string{"contact-centre"}, Password: webPassword})
	if err != nil {
		t.Fatal(err)
	}
	h.direct.Exec(`UPDATE users SET last_seen_at = now() WHERE id = ?`, ann.ID)
	h.direct.Exec(`UPDATE teams SET name = 'Highways <b>&</b> "roads"' WHERE slug = 'highways'`)
	h.direct.Exec(`UPDATE teams SET max_open_per_adviser = 1 WHERE slug = 'contact-centre'`)

	_, breached := h.mentionCase(alice, "@ExampleCouncil the streetlight on Elm Road is out")
	_, waiting := h.dmCase(bob, "When is the bulky waste collection?")
	_, moved := h.mentionCase(carol, "@ExampleCouncil pothole on Mill Lane")
	h.direct.Exec(`UPDATE cases SET first_response_due = now() - interval '1 hour', assignee_id = ? WHERE id = ?`, ann.ID, breached)
	h.direct.Exec(`UPDATE cases SET first_response_due = now() + interval '20 minutes', first_response_warn_at = now() - interval '1 minute' WHERE id = ?`, waiting)
	h.direct.Exec(`UPDATE cases SET team_id = (SELECT id FROM teams WHERE slug = 'highways') WHERE id = ?`, moved)
	h.direct.Exec(`UPDATE channel_accounts SET credential_refused_at = now() - interval '5 minutes',
		credential_reason = '<script>alert(1)</script> Unauthorized'`)
	oldest := h.caseDetail(breached).Reference

	sam := newBrowser(t, h.srv.URL())
	sam.mustSignIn("sam@example.gov.uk")
	a := sam.get("/dashboard")
	if a.status != http.StatusOK {
		t.Fatalf("GET /dashboard as a supervisor: %d\n%s", a.status, a.body)
	}
	for _, want := range []string{
		`<h1 class="govuk-heading-l">Dashboard</h1>`,
		`<h2 class="govuk-heading-m" id="team-1-title">Contact centre</h2>`,
		`aria-current="page">Dashboard</a>`,
		`<a class="govuk-link" href="/cases/` + oldest + `">` + oldest + `</a>, waiting <time datetime="`,
		`Ann &lt;i&gt;Adviser&lt;/i&gt;`,
		`<strong class="govuk-tag govuk-tag--green">Online</strong>`,
		`<strong class="govuk-tag govuk-tag--orange">At the cap</strong>`,
		`1 channel account not working`,
		`&lt;script&gt;alert(1)&lt;/script&gt; Unauthorized`,
		`hx-get="/dashboard/figures"`,
		`sse-connect="/events?after=`,
	} {
		if !strings.Contains(a.body, want) {
			t.Errorf("the supervisor's dashboard lacks %q", want)
		}
	}
	for _, unwanted := range []string{"Highways", "<script>alert(1)", "<i>Adviser</i>", `sse-swap="announce"`} {
		if strings.Contains(a.body, unwanted) {
			t.Errorf("the supervisor's dashboard shows %q", unwanted)
		}
	}

	// Every figure leads to the queue holding exactly the cases it counts.
	links := figureLink.FindAllStringSubmatch(a.body, -1)
	want := map[string]int{
		"contact-centre.cases": 2, "contact-centre.breached": 1, "contact-centre.warned": 1, "contact-centre.at_risk": 1,
		"contact-centre.status.new": 2, "contact-centre.status.open": 0, "contact-centre.status.awaiting_resident": 0,
		"contact-centre.channel.x": 2, "contact-centre.adviser." + strconv.FormatInt(ann.ID, 10): 1,
	}
	seen := map[string]bool{}
	for _, m := range links {
		link, key := html.UnescapeString(m[1]), m[2]
		n, _ := strconv.Atoi(m[3])
		seen[key] = true
		if w, ok := want[key]; ok && n != w {
			t.Errorf("figure %s is %d, want %d", key, n, w)
		}
		q := sam.get(link)
		total := 0
		if tm := queueTotal.FindStringSubmatch(q.body); tm != nil {
			total, _ = strconv.Atoi(tm[1])
		} else if !strings.Contains(q.body, "No cases match these filters") {
			t.Errorf("figure %s: %s answers %d without results\n%s", key, link, q.status, q.body)
		}
		if q.status != http.StatusOK || total != n {
			t.Errorf("figure %s says %d, its link %s lists %d (%d)", key, n, link, total, q.status)
		}
	}
	for key := range want {
		if !seen[key] {
			t.Errorf("no figure %s links to its cases", key)
		}
	}
	// The breached figure's cases open from the queue.
	for _, m := range links {
		if m[2] == "contact-centre.breached" {
			q := sam.get(html.UnescapeString(m[1]))
			if !strings.Contains(q.body, `href="/cases/`+oldest+`"`) || !strings.Contains(q.body, `<option value="breached" selected>`) {
				t.Errorf("the breached cases' queue lacks the case or its filter:\n%s", q.body)
			}
		}
	}

	// The figures alone, for the live refresh.
	f := sam.get("/dashboard/figures", "HX-Request", "true")
	if f.status != http.StatusOK || strings.Contains(f.body, "<html") || !strings.Contains(f.body, `data-figure="contact-centre.cases" data-value="2"`) {
		t.Errorf("GET /dashboard/figures: %d\n%s", f.status, f.body)
	}

	// An admin sees every team, the names escaped.
	root := newBrowser(t, h.srv.URL())
	root.mustSignIn("root@example.gov.uk")
	a = root.get("/dashboard")
	if a.status != http.StatusOK || !strings.Contains(a.body, ">Contact centre</h2>") ||
		!strings.Contains(a.body, `>Highways &lt;b&gt;&amp;&lt;/b&gt; &#34;roads&#34;</h2>`) ||
		!strings.Contains(a.body, `data-figure="highways.cases" data-value="1"`) || strings.Contains(a.body, "<b>&</b>") {
		t.Errorf("the admin's dashboard (%d):\n%s", a.status, a.body)
	}

	// A supervisor of no team sees no team's figures.
	alone := newBrowser(t, h.srv.URL())
	alone.mustSignIn("lone@example.gov.uk")
	if a := alone.get("/dashboard"); a.status != http.StatusOK || !strings.Contains(a.body, "You belong to no team") ||
		strings.Contains(a.body, "data-figure=\"contact-centre") || strings.Contains(a.body, "data-figure=\"highways") {
		t.Errorf("the dashboard of a supervisor of no team (%d):\n%s", a.status, a.body)
	}

	// Advisers may not see it, nor find it in the navigation.
	ada := newBrowser(t, h.srv.URL())
	ada.mustSignIn("ada@example.gov.uk")
	for _, path := range []string{"/dashboard", "/dashboard/figures"} {
		if a := ada.get(path); a.status != http.StatusForbidden || !strings.Contains(a.body, "You cannot see this page") || strings.Contains(a.body, "data-figure") {
			t.Errorf("an adviser's GET %s: %d\n%s", path, a.status, a.body)
		}
	}
	if strings.Contains(ada.get("/queue").body, `href="/dashboard"`) {
		t.Error("the adviser's navigation offers the dashboard")
	}
	if !strings.Contains(sam.get("/queue").body, `href="/dashboard"`) {
		t.Error("the supervisor's navigation lacks the dashboard")
	}
}
