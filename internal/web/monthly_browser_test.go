package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/citizeninbox/inbox/internal/auth"
)

// A supervisor opens the monthly summary from the response times, shows
// this month's, and prints it: the navigation, header buttons, form and
// skip link are hidden in print, the tables and the "Printed" line shown.
// The page has no WCAG 2.2 AA violations.
func TestBrowserReportMonthly(t *testing.T) {
	s := startSite(t)
	if _, err := s.srv.Auth.CreateUser(context.Background(), auth.NewUser{Email: supervisorEmail, Name: "Sam Supervisor",
		Role: "supervisor", Teams: []string{"contact-centre"}, Password: password}); err != nil {
		t.Fatal(err)
	}
	s.mention("alice_resident", "Alice Example", "@ExampleCouncil the streetlight on Mill Lane is out")
	london, _ := time.LoadLocation("Europe/London")
	month := time.Now().In(london).Format("2006-01")

	ctx := s.signIn(t, tab(t), supervisorEmail)
	do(t, ctx, "open the monthly summary from the response times",
		chromedp.Click(`//nav[@aria-label="Primary navigation"]//a[normalize-space()="Response times"]`),
		chromedp.WaitVisible(`//h1[normalize-space()="Response times"]`),
		chromedp.Click(`//a[normalize-space()="Monthly summary"]`),
		chromedp.WaitVisible(`//h1[normalize-space()="Monthly summary"]`))
	do(t, ctx, "show this month's",
		chromedp.SetValue(chromedp.CSS(`#month`), month),
		chromedp.Click(`//button[normalize-space()="Show summary"]`),
		chromedp.WaitVisible(`//p[@id="summary-of" and starts-with(normalize-space(), "Contact centre, `+time.Now().In(london).Format("January 2006")+`")]`))
	if got := read(t, ctx, "the cases received", chromedp.Text(chromedp.CSS(`tr[data-figure="cases"] td[data-current]`))); got != "1" {
		t.Errorf("the cases received show %q, want 1", got)
	}
	checkAccessible(t, ctx, "monthly summary")
	screenshot(t, ctx, "monthly-summary")

	display := func(selector string) string {
		return read(t, ctx, "the display of "+selector, chromedp.Evaluate[string](`getComputedStyle(document.querySelector(`+"`"+selector+"`"+`)).display`))
	}
	if got := display(`nav[aria-label="Primary navigation"]`); got == "none" {
		t.Fatalf("the navigation is hidden on screen")
	}
	if got := display(`#printed`); got != "none" {
		t.Errorf("the printed line shows on screen (%s)", got)
	}
	do(t, ctx, "emulate print", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
		return err
	}))
	for _, hidden := range []string{`nav[aria-label="Primary navigation"]`, `.moj-header__content`, `.govuk-skip-link`, `form[action="/reports/monthly"]`, `.govuk-footer`} {
		if got := display(hidden); got != "none" {
			t.Errorf("in print %s shows (display %s)", hidden, got)
		}
	}
	for _, shown := range []string{`#attainment`, `#working`, `#calendar`, `#volumes`, `h1`, `#summary-of`, `#printed`} {
		if got := display(shown); got == "none" {
			t.Errorf("in print %s is hidden", shown)
		}
	}
	if got := read(t, ctx, "the printed line", chromedp.Text(chromedp.CSS(`#printed`))); !strings.HasPrefix(got, "Printed ") {
		t.Errorf("the printed line says %q", got)
	}
	after := read(t, ctx, "a link's print suffix", chromedp.Evaluate[string](`getComputedStyle(document.querySelector("main a.govuk-link, a.moj-header__link"), "::after").content`))
	if strings.Contains(after, "attr") || strings.Contains(after, "/") {
		t.Errorf("links print their address: %q", after)
	}
}
