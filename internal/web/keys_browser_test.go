package web_test

import (
	"context"

	"testing"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// signedInTab opens a tab signed in as the site's adviser, on the queue.
func (s *site) signedInTab(t *testing.T) context.Context {
	t.Helper()
	return s.signIn(t, tab(t), email)
}

// signIn signs the tab in as the user with the email (and the tests'
// password), on the queue.
func (s *site) signIn(t *testing.T, ctx context.Context, email string) context.Context {
	t.Helper()
	return signInAt(t, ctx, s.srv.URL(), email)
}

// signInAt signs the tab in at the server at base.
func signInAt(t *testing.T, ctx context.Context, base, email string) context.Context {
	t.Helper()
	do(t, ctx, "sign in",
		chromedp.Navigate(base+"/sign-in"),
		chromedp.SendKeys(`//label[normalize-space()="Email address"]/following::input[1]`, email),
		chromedp.SendKeys(`//label[normalize-space()="Password"]/following::input[1]`, password),
		chromedp.Click(`//button[normalize-space()="Sign in"]`),
		chromedp.WaitVisible(`//h1[normalize-space()="Queue"]`),
	)
	return ctx
}

// The help overlay opens with "?" and with its button, lists the
// shortcuts, closes with Escape, passes axe-core while open, and the
// single-key shortcuts can be turned off (WCAG 2.2 SC 2.1.4).
func TestBrowserShortcutsHelp(t *testing.T) {
	s := startSite(t)
	ctx := s.signedInTab(t)
	open := func() bool {
		return read(t, ctx, "overlay state", chromedp.Evaluate[bool](`document.getElementById("shortcuts").open`))
	}

	do(t, ctx, "press ?", chromedp.KeyEvent("?"), chromedp.WaitVisible(`//dialog//h2[normalize-space()="Keyboard shortcuts"]`))
	do(t, ctx, "the overlay lists its own key", chromedp.WaitVisible(`//dialog//td[normalize-space()="Show these shortcuts"]`))
	// The queue has no reply box: the overlay lists Next case, ? and Esc.
	listed := read(t, ctx, "rows listed", chromedp.Evaluate[int](`[...document.querySelectorAll("#shortcuts tbody tr")].filter(r => !r.hidden).length`))
	if hidden := read(t, ctx, "reply row hidden", chromedp.Evaluate[bool](`document.querySelector('#shortcuts tr[data-shortcut-for="reply"]').hidden`)); !hidden || listed != 3 {
		t.Errorf("on the queue the overlay lists %d shortcuts (reply listed: %v), want 3 (n, ?, Esc)", listed, !hidden)
	}
	checkAccessible(t, ctx, "queue with the shortcuts overlay")
	do(t, ctx, "press Escape", chromedp.KeyEvent("\x1b"), chromedp.WaitNotVisible(`#shortcuts`))
	if open() {
		t.Fatal("Escape left the overlay open")
	}

	// Turned off, "?" does nothing; the button still opens the overlay.
	do(t, ctx, "open with the button", chromedp.Click(`//button[normalize-space()="Keyboard shortcuts"]`),
		chromedp.WaitVisible(`#shortcuts`),
		chromedp.Click(`//label[normalize-space()="Use single-key shortcuts"]`),
		chromedp.Click(`//dialog//button[normalize-space()="Close"]`),
		chromedp.WaitNotVisible(`#shortcuts`),
		chromedp.KeyEvent("?"),
	)
	if open() {
		t.Error(`with single-key shortcuts off, "?" opened the overlay`)
	}
	// The choice is kept across pages.
	do(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(`//h1[normalize-space()="Queue"]`), chromedp.KeyEvent("?"))
	if open() {
		t.Error(`after a reload, "?" opened the overlay though shortcuts were turned off`)
	}
	do(t, ctx, "turn them on again", chromedp.Click(`//button[normalize-space()="Keyboard shortcuts"]`),
		chromedp.WaitVisible(`#shortcuts`),
		chromedp.Click(`//label[normalize-space()="Use single-key shortcuts"]`),
		chromedp.KeyEvent("\x1b"),
		chromedp.WaitNotVisible(`#shortcuts`),
		chromedp.KeyEvent("?"),
		chromedp.WaitVisible(`#shortcuts`),
	)
}

// press presses a single-key shortcut as a person does. chromedp types a
// key as keyDown then a separate char event, and a page cannot cancel that
// char event from keydown as it can a real key press; here the keyDown
// carries the text, as Chromium's own key presses do, and the char event
// none.
func press(key string) chromedp.Action[chromedp.Void] {
	return chromedp.KeyEvent(key, func(p *input.DispatchKeyEventParams) {
		switch p.Type {
		case input.DispatchKeyEventTypeKeyDown:
			p.Text, p.UnmodifiedText = key, key
		case input.DispatchKeyEventTypeChar:
			p.Text, p.UnmodifiedText = "", ""
		}
	})
}
