package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/citizeninbox/inbox/internal/auth"
)

const supervisorEmail = "sam@example.gov.uk"

// A supervisor opens the dashboard; a resident's new case changes the
// backlog without a reload (announced politely, the focus left where it
// was); the supervisor follows the figure to the queue, filtered to the
// same cases, and opens one. The dashboard, before and after its live
// refresh, has no WCAG 2.2 AA violations.
func TestBrowserDashboard(t *testing.T) {
	s := startSite(t)
	if _, err := s.srv.Auth.CreateUser(context.Background(), auth.NewUser{Email: supervisorEmail, Name: "Sam Supervisor",
		Role: "supervisor", Teams: []string{"contact-centre"}, Password: password}); err != nil {
		t.Fatal(err)
	}
	// Every part of the page shows: a cap, an adviser online, an account
	// whose credential the network refused.
	s.srv.DB.Exec(`UPDATE teams SET max_open_per_adviser = 5`)
	s.srv.DB.Exec(`UPDATE users SET last_seen_at = now() WHERE email = ?`, email)
	s.srv.DB.Exec(`UPDATE channel_accounts SET credential_refused_at = now(), credential_reason = 'Invalid OAuth access token' WHERE slug = 'council-whatsapp'`)
	first := s.mention("alice_resident", "Alice Example", "@ExampleCouncil the streetlight on Mill Lane is out")

	ctx := s.signIn(t, tab(t), supervisorEmail)
	do(t, ctx, "open the dashboard from the navigation",
		chromedp.Click(`//nav[@aria-label="Primary navigation"]//a[normalize-space()="Dashboard"]`),
		chromedp.WaitVisible(`//h1[normalize-space()="Dashboard"]`))
	live(t, ctx)
	backlog := `document.querySelector('a[data-figure="contact-centre.cases"]')`
	if got := read(t, ctx, "the backlog", chromedp.Evaluate[string](backlog+`.firstChild.textContent`)); got != "1 case" {
		t.Fatalf("the backlog shows %q, want 1 case", got)
	}
	if got := read(t, ctx, "the oldest waiting", chromedp.Text(chromedp.CSS(`a[href="/cases/`+first+`"]`))); got != first {
		t.Errorf("the oldest waiting case shows %q, want %s", got, first)
	}
	if banner := read(t, ctx, "the unhealthy account", chromedp.Text(chromedp.CSS(".govuk-notification-banner"))); !strings.Contains(banner, "Council on WhatsApp (WhatsApp)") ||
		!strings.Contains(banner, "Invalid OAuth access token") {
		t.Errorf("the notification banner says %q", banner)
	}
	checkAccessible(t, ctx, "dashboard")

	// The focus on the navigation, a page that has not reloaded.
	read(t, ctx, "mark the page and focus the navigation", chromedp.Evaluate[bool](`window.__same = true;
		document.querySelector('nav[aria-label="Primary navigation"] a[href="/dashboard"]').focus(); true`))
	second := s.mention("bob_resident", "Bob Example", "@ExampleCouncil graffiti on the library wall")
	read(t, ctx, "the backlog grows without a reload", chromedp.Poll[bool](backlog+`.firstChild.textContent === "2 cases" || undefined`))
	announced := read(t, ctx, "announcement", chromedp.Poll[string](`document.getElementById("announcer").textContent || undefined`))
	if want := "Contact centre: 2 cases in the queue, 1 more"; !strings.Contains(announced, want) {
		t.Errorf("the live region announced %q, want it to say %q", announced, want)
	}
	if !read(t, ctx, "the same page", chromedp.Evaluate[bool](`window.__same === true`)) {
		t.Error("the dashboard reloaded")
	}
	if !read(t, ctx, "the focus stayed", chromedp.Evaluate[bool](`document.activeElement && document.activeElement.getAttribute("href") === "/dashboard"`)) {
		t.Error("the live refresh moved the focus")
	}
	checkAccessible(t, ctx, "dashboard after a live refresh")
	screenshot(t, ctx, "dashboard")

	// The figure leads to its cases, and on to each case.
	do(t, ctx, "follow the backlog figure", chromedp.Click(`a[data-figure="contact-centre.cases"]`),
		chromedp.WaitVisible(`//h1[normalize-space()="Queue"]`))
	location := read(t, ctx, "location", chromedp.Location())
	if !strings.Contains(location, "team=contact-centre") || !strings.Contains(location, "status=awaiting_resident") {
		t.Errorf("the figure led to %s", location)
	}
	if caption := read(t, ctx, "the queue's caption", chromedp.Text(chromedp.CSS("#queue-results caption"))); !strings.Contains(caption, "of 2 in Contact centre") {
		t.Errorf("the queue behind the figure says %q", caption)
	}
	for _, id := range []string{"filter-status-new", "filter-status-open", "filter-status-awaiting_resident"} {
		if !read(t, ctx, id, chromedp.Evaluate[bool](`document.getElementById("`+id+`").checked`)) {
			t.Errorf("the queue's filter %s is not checked", id)
		}
	}
	do(t, ctx, "open a case from it", chromedp.Click(`//a[normalize-space()="`+second+`"]`),
		chromedp.WaitVisible(`//h1[normalize-space()="`+second+`"]`))
}
