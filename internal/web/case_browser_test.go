package web_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/citizeninbox/inbox/internal/auth"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
)

// live waits for the page's live updates to be connected.
func live(t *testing.T, ctx context.Context) {
	t.Helper()
	read(t, ctx, "live updates connected", chromedp.Poll[bool](`(() => {
		const m = document.querySelector("main[sse-connect]")
		const d = m && m["htmx-internal-data"]
		return d && d.sseEventSource && d.sseEventSource.readyState === 1 || undefined
	})()`))
}

// addAdviser adds another adviser of the site's team, with the tests'
// password.
func (s *site) addAdviser(email, name string) {
	s.t.Helper()
	if _, err := s.srv.Auth.CreateUser(context.Background(), auth.NewUser{Email: email, Name: name, Role: "adviser",
		Teams: []string{"contact-centre"}, Password: password}); err != nil {
		s.t.Fatal(err)
	}
}

// isolatedTab opens a tab in a browser context of its own: its own
// cookies, so its own session.
func isolatedTab(t *testing.T) context.Context {
	t.Helper()
	return tab(t, chromedp.WithNewBrowserContext())
}

// waitSent waits for the fake X API to have received n posts or messages.
func (s *site) waitSent(n int) []xfake.Sent {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		sent := s.x.Sent()
		if len(sent) >= n {
			return sent
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the X API received %d posts, want %d: %+v", len(sent), n, sent)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// The whole flow, by keyboard where an adviser would use it: a resident's
// post appears in the open queue without a reload (and is announced); the
// adviser takes it with "n", writes with "r" and sends with Ctrl+Enter a
// public reply that the X API receives in the resident's thread, and
// resolves the case with "e". The case page has no WCAG 2.2 AA
// violations, and the resident's HTML is shown as text.
func TestBrowserTakeReplyResolve(t *testing.T) {
	s := startSite(t)
	ctx := s.signedInTab(t)
	do(t, ctx, "the empty queue", chromedp.WaitVisible(`//p[contains(., "No cases match")]`))
	live(t, ctx)

	ref, postID := s.post(resident("alice_resident", "Alice Example"), "@ExampleCouncil the streetlight on Mill Lane is out "+xss, "")
	do(t, ctx, "the new case appears without a reload", chromedp.WaitVisible(`//a[normalize-space()="`+ref+`"]`))
	announced := read(t, ctx, "announcement", chromedp.Poll[string](`document.getElementById("announcer").textContent || undefined`))
	if want := "New case " + ref + " from X"; announced != want {
		t.Errorf("the live region announced %q, want %q", announced, want)
	}

	if read(t, ctx, "window.__pwned", chromedp.Evaluate[bool](`window.__pwned !== undefined`)) ||
		read(t, ctx, "injected elements", chromedp.Evaluate[int](`document.querySelectorAll("main script, main img").length`)) != 0 {
		t.Error("the resident's HTML ran or was rendered in the queue's live refresh")
	}
	// Paused, the queue holds its refresh until resumed.
	do(t, ctx, "pause live updates", chromedp.Click(`//button[normalize-space()="Pause live updates"]`))
	later := s.mention("bob_resident", "Bob Example", "@ExampleCouncil the same streetlight is still out")
	read(t, ctx, "the refresh held", chromedp.Poll[bool](`document.getElementById("queue-results").dataset.held === "true" || undefined`))
	if n := read(t, ctx, "rows while paused", chromedp.Evaluate[int](`document.querySelectorAll('#queue-results a[href="/cases/`+later+`"]').length`)); n != 0 {
		t.Error("the queue refreshed while live updates were paused")
	}
	do(t, ctx, "resume live updates", chromedp.Click(`//button[normalize-space()="Pause live updates"]`),
		chromedp.WaitVisible(`//a[normalize-space()="`+later+`"]`))
	do(t, ctx, "back to the first case at the top", chromedp.WaitVisible(`//a[normalize-space()="`+ref+`"]`))

	do(t, ctx, "n takes the next case", press("n"), chromedp.WaitVisible(`//h1[normalize-space()="`+ref+`"]`))
	do(t, ctx, "the resident's post in the timeline", chromedp.WaitVisible(`//li[contains(@class, "app-timeline__item--inbound")]`))
	body := read(t, ctx, "timeline body", chromedp.Text(chromedp.CSS(".app-timeline__item--inbound .app-timeline__body")))
	if !strings.Contains(body, xss) {
		t.Errorf("the timeline shows %q, want the resident's text with %q as text", body, xss)
	}
	if read(t, ctx, "window.__pwned", chromedp.Evaluate[bool](`window.__pwned !== undefined`)) {
		t.Error("the resident's script ran on the case page")
	}
	do(t, ctx, "assigned to the adviser", chromedp.WaitVisible(`//p[contains(., "Assigned to you")]`))
	checkAccessible(t, ctx, "case")

	const reply = "Thanks Alice, we have reported the light on Mill Lane to our contractor."
	do(t, ctx, "r moves to the reply box", press("r"))
	read(t, ctx, "focus in the reply box", chromedp.Poll[bool](`document.activeElement && document.activeElement.id === "reply" || undefined`))
	do(t, ctx, "write the reply", chromedp.KeyEvent(reply))
	read(t, ctx, "the counter follows the text",
		chromedp.Poll[bool](`document.getElementById("reply-count").textContent.includes("`+fmt.Sprintf("%d of 280 weighted characters", x.WeightedLength(reply))+`") || undefined`))
	if checked := read(t, ctx, "public reply chosen", chromedp.Evaluate[bool](`document.querySelector('input[name=visibility][value=public]').checked`)); !checked {
		t.Error("a public post is not answered publicly by default")
	}
	screenshot(t, ctx, "case")
	do(t, ctx, "Ctrl+Enter sends the reply",
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		chromedp.WaitVisible(`//p[normalize-space()="Reply queued for sending."]`),
	)
	sent := s.waitSent(1)
	if got := sent[0]; got.Kind != "post" || got.InReplyTo != postID || !strings.Contains(got.Text, reply) {
		t.Errorf("the X API received %+v, want a reply to post %s with the adviser's text", got, postID)
	}
	do(t, ctx, "the reply in the timeline, and its delivery shown live without a reload",
		chromedp.WaitVisible(`//li[contains(@class, "app-timeline__item--outbound")]//p[contains(., "Sent")]`))

	do(t, ctx, "e resolves the case", press("e"),
		chromedp.WaitVisible(`//p[normalize-space()="Case resolved."]`),
		chromedp.WaitVisible(`//strong[normalize-space()="Resolved"]`))
	var status string
	s.srv.DB.Raw(`SELECT status FROM cases WHERE reference = ?`, ref).Scan(&status)
	if status != "resolved" {
		t.Errorf("the case is %q, want resolved", status)
	}
}

// Two advisers pressing Next case at the same moment get different cases.
func TestBrowserNextCaseTogether(t *testing.T) {
	s := startSite(t)
	const other = "grace@example.gov.uk"
	s.addAdviser(other, "Grace Adviser")
	first := s.mention("resident_one", "Resident One", "@ExampleCouncil bins not collected on Oak Road")
	second := s.mention("resident_two", "Resident Two", "@ExampleCouncil pothole on Elm Street")

	tabs := []context.Context{s.signIn(t, isolatedTab(t), email), s.signIn(t, isolatedTab(t), other)}
	got := make([]string, len(tabs))
	var wg sync.WaitGroup
	errs := make([]error, len(tabs))
	for i, ctx := range tabs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = chromedp.Do(ctx, chromedp.Click(`//button[normalize-space()="Next case"]`),
				chromedp.WaitVisible(`//h1[starts-with(normalize-space(), "C-")]`))
			if errs[i] == nil {
				got[i], errs[i] = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("adviser %d pressing Next case: %v", i+1, err)
		}
	}
	if fair := (got[0] == first && got[1] == second) || (got[0] == second && got[1] == first); !fair {
		t.Fatalf("the advisers got %q and %q, want %s and %s one each", got[0], got[1], first, second)
	}
	// Nothing is left: the next press says so.
	do(t, tabs[0], "nothing left", chromedp.Navigate(s.srv.URL()+"/queue"),
		chromedp.Click(`//button[normalize-space()="Next case"]`),
		chromedp.WaitVisible(`//p[normalize-space()="There is no unassigned case waiting in your teams."]`))
}

// A reply written while the resident wrote again is held, the new message
// is shown, and "Send anyway" sends it. Another adviser on the case, on
// another server process, sees who is viewing and replying, and is seen.
func TestBrowserReplyGuardAndPresence(t *testing.T) {
	s := startSite(t)
	const other = "grace@example.gov.uk"
	s.addAdviser(other, "Grace Adviser")
	alice := resident("alice_resident", "Alice Example")
	ref, first := s.post(alice, "@ExampleCouncil there is a fallen tree on Ash Grove", "")

	ctx := s.signedInTab(t)
	replica := s.replica("127.0.0.1:0")
	watcher := signInAt(t, isolatedTab(t), replica.URL(), other)
	do(t, watcher, "the colleague opens the case on the other server", chromedp.Navigate(replica.URL()+"/cases/"+ref),
		chromedp.WaitVisible(`//h1[normalize-space()="`+ref+`"]`))
	do(t, ctx, "open the case and start a reply", chromedp.Navigate(s.srv.URL()+"/cases/"+ref),
		chromedp.WaitVisible(`//h1[normalize-space()="`+ref+`"]`),
		chromedp.WaitVisible(`//div[@id="presence"]//p[contains(., "Grace Adviser is viewing")]`),
		chromedp.Click(`#reply`),
		chromedp.KeyEvent("Thanks, we will send someone to clear it today."),
	)
	do(t, watcher, "the colleague sees who is replying",
		chromedp.WaitVisible(`//div[@id="presence"]//p[contains(., "Ada Adviser is replying")]`))

	s.post(alice, "@ExampleCouncil it is blocking the whole road now", first)
	do(t, ctx, "the reply is held",
		chromedp.Click(`//button[normalize-space()="Send reply"]`),
		chromedp.WaitVisible(`//h2[normalize-space()="Your reply has not been sent"]`),
		chromedp.WaitVisible(`//li[contains(@class, "app-timeline__item--new")]//div[contains(., "blocking the whole road")]`),
	)
	outbound := func() int {
		var n int
		s.srv.DB.Raw(`SELECT count(*) FROM messages m JOIN cases c ON c.id = m.case_id WHERE c.reference = ? AND m.direction = 'outbound'`, ref).Scan(&n)
		return n
	}
	if n := outbound(); n != 0 {
		t.Fatalf("a held reply was stored for sending: %d replies", n)
	}
	text := read(t, ctx, "the reply kept", chromedp.Evaluate[string](`document.getElementById("reply").value`))
	if text != "Thanks, we will send someone to clear it today." {
		t.Errorf("the held reply reads %q", text)
	}
	checkAccessible(t, ctx, "case with a held reply")
	do(t, ctx, "send anyway", chromedp.Click(`//button[normalize-space()="Send anyway"]`),
		chromedp.WaitVisible(`//p[normalize-space()="Reply queued for sending."]`))
	if sent := s.waitSent(1); len(sent) != 1 || sent[0].InReplyTo == "" {
		t.Errorf("the X API received %+v, want one reply in the thread", sent)
	}
	if n := outbound(); n != 1 {
		t.Errorf("%d replies stored, want 1", n)
	}
}
