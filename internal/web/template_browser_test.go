package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/citizeninbox/inbox/internal/channels/meta"
	"github.com/citizeninbox/inbox/internal/channels/meta/metafake"
)

// whatsApp has a resident write to the site's WhatsApp number at the
// time given and waits for the case; it returns its reference.
func (s *site) whatsApp(id, from, name, text string, at time.Time) string {
	s.t.Helper()
	body := metafake.WhatsAppMessage(metaNumber, metafake.Message{ID: id, From: metafake.User{ID: from, Name: name}, Text: text, At: at})
	return s.deliver("/webhooks/meta/council-meta", meta.SignatureHeader, metafake.Sign(body, metaSecret), body, id)
}

// A WhatsApp resident who last wrote 25 hours ago: the case page says the
// window has closed, offers the number's approved templates, refuses a
// template without its parameters, and sends one with them. The page
// stays free of WCAG 2.2 AA violations, the error included.
func TestBrowserWhatsAppTemplate(t *testing.T) {
	s := startSite(t)
	ctx := s.signedInTab(t)
	ref := s.whatsApp("wamid.late1", "447700900777", "Erin Resident", "Any news on my housing repair? "+xss, time.Now().Add(-25*time.Hour))

	do(t, ctx, "open the case", chromedp.Navigate(s.srv.URL()+"/cases/"+ref),
		chromedp.WaitVisible(`//h1[normalize-space()="`+ref+`"]`),
		chromedp.WaitVisible(`//div[contains(@class, "govuk-hint") and contains(., "Private messages could be sent until")]`),
		chromedp.WaitVisible(`//h3[normalize-space()="Send an approved template"]`))
	checkAccessible(t, ctx, "case with templates")

	do(t, ctx, "a template without its parameters",
		chromedp.SetValue(`#template`, "case_update"),
		chromedp.Click(`//button[normalize-space()="Send template"]`),
		chromedp.WaitVisible(`//p[@id="template-error" and contains(., "takes 2, not 0")]`))
	checkAccessible(t, ctx, "template error")
	if n := len(s.meta.Sent()); n != 0 {
		t.Fatalf("a refused template reached WhatsApp: %d sends", n)
	}

	do(t, ctx, "fill in the parameters and send",
		chromedp.SetValue(`#template`, "case_update"),
		chromedp.SendKeys(`#parameter-1`, "Erin"),
		chromedp.SendKeys(`#parameter-2`, ref),
		chromedp.Click(`//button[normalize-space()="Send template"]`),
		chromedp.WaitVisible(`//p[normalize-space()="Template queued for sending."]`),
		chromedp.WaitVisible(`//li[contains(@class, "app-timeline__item--outbound") and contains(., "Hello Erin, there is news on your case `+ref+`")]`))
	deadline := time.Now().Add(20 * time.Second)
	for len(s.meta.Sent()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the template never reached WhatsApp")
		}
		time.Sleep(25 * time.Millisecond)
	}
	if got := s.meta.Sent()[0]; got.Template != "case_update" || got.Recipient != "447700900777" {
		t.Errorf("WhatsApp received %+v, want the case_update template to the resident", got)
	}
	if strings.Contains(read(t, ctx, "page", chromedp.Evaluate[string](`document.body.innerHTML`)), "<script>window.__pwned") {
		t.Error("the resident's HTML was rendered")
	}
}
