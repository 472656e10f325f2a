package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/citizeninbox/inbox/internal/auth"
)

// A supervisor opens the response times from the navigation (the current
// month so far), chooses a team and shows its figures, sees a wrong
// period refused with the error summary focused, and follows the period's
// cases to the queue and on to a case. The page, with figures and with
// errors, has no WCAG 2.2 AA violations.
func TestBrowserReportResponseTimes(t *testing.T) {
	s := startSite(t)
	if _, err := s.srv.Auth.CreateUser(context.Background(), auth.NewUser{Email: supervisorEmail, Name: "Sam Supervisor",
		Role: "supervisor", Teams: []string{"contact-centre"}, Password: password}); err != nil {
		t.Fatal(err)
	}
	first := s.mention("alice_resident", "Alice Example", "@ExampleCouncil the streetlight on Mill Lane is out")

	ctx := s.signIn(t, tab(t), supervisorEmail)
	do(t, ctx, "open the response times from the navigation",
		chromedp.Click(`//nav[@aria-label="Primary navigation"]//a[normalize-space()="Response times"]`),
		chromedp.WaitVisible(`//h1[normalize-space()="Response times"]`))
	cases := `document.querySelector('a[data-figure="cases"]')`
	if got := read(t, ctx, "the period's cases", chromedp.Evaluate[string](cases+`.dataset.value`)); got != "1" {
		t.Fatalf("the period's cases show %q, want 1", got)
	}
	do(t, ctx, "choose the team and show its figures",
		chromedp.SetValue(chromedp.CSS(`#team`), "contact-centre"),
		chromedp.Click(`//button[normalize-space()="Show figures"]`),
		// The answer's own choice: the figures were on the page before.
		chromedp.WaitReady(`//select[@id="team"]/option[@value="contact-centre" and @selected]`),
		chromedp.WaitVisible(`//h2[starts-with(normalize-space(), "Figures for")]`))
	if location := read(t, ctx, "location", chromedp.Location()); !strings.Contains(location, "team=contact-centre") {
		t.Errorf("the form led to %s", location)
	}
	if got := read(t, ctx, "the team's cases", chromedp.Evaluate[string](cases+`.dataset.value`)); got != "1" {
		t.Errorf("the team's cases show %q, want 1", got)
	}
	if table := read(t, ctx, "the hours' table", chromedp.Text(chromedp.CSS("#by-hour-table caption"))); table != "Cases by hour of day, as a table" {
		t.Errorf("the hours' table is captioned %q", table)
	}
	checkAccessible(t, ctx, "response times")
	screenshot(t, ctx, "response-times")

	// A period that ends before it starts is refused, the summary focused.
	do(t, ctx, "ask for a period backwards",
		chromedp.SetValue(chromedp.CSS(`#from`), "2026-11-30"),
		chromedp.SetValue(chromedp.CSS(`#to`), "2026-11-01"),
		chromedp.Click(`//button[normalize-space()="Show figures"]`),
		chromedp.WaitVisible(chromedp.CSS(".govuk-error-summary")))
	read(t, ctx, "the focus on the error summary",
		chromedp.Poll[bool](`document.activeElement && document.activeElement.classList.contains("govuk-error-summary") || undefined`))
	if msg := read(t, ctx, "the inline message", chromedp.Text(chromedp.CSS("#to-error"))); !strings.Contains(msg, "must be the same as or after the first day") {
		t.Errorf("the inline message says %q", msg)
	}
	if read(t, ctx, "no figures", chromedp.Evaluate[bool](`document.querySelector("[data-figure]") !== null`)) {
		t.Error("a wrong period shows figures")
	}
	checkAccessible(t, ctx, "response times with errors")

	// Back to the figures; the period's cases lead to the queue.
	do(t, ctx, "clear the filters", chromedp.Click(`//a[normalize-space()="Clear filters"]`),
		chromedp.WaitVisible(chromedp.CSS(`a[data-figure="cases"]`)))
	do(t, ctx, "follow the period's cases", chromedp.Click(`a[data-figure="cases"]`),
		chromedp.WaitVisible(`//h1[normalize-space()="Queue"]`))
	if caption := read(t, ctx, "the queue's caption", chromedp.Text(chromedp.CSS("#queue-results caption"))); !strings.Contains(caption, "of 1 in") {
		t.Errorf("the queue behind the figure says %q", caption)
	}
	if period := read(t, ctx, "the period", chromedp.Text(chromedp.CSS("#filter-period"))); !strings.HasPrefix(period, "Only cases whose resident first wrote from") {
		t.Errorf("the queue's period says %q", period)
	}
	checkAccessible(t, ctx, "queue of a report's figure")
	do(t, ctx, "open the case from it", chromedp.Click(`//a[normalize-space()="`+first+`"]`),
		chromedp.WaitVisible(`//h1[normalize-space()="`+first+`"]`))
}
