package cases_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels"
)

// A reply written against an older view of the case is held when the
// resident wrote, or another adviser replied, after it; the adviser's own
// replies, notes and automatic replies do not hold it; nothing is written
// for a held reply.
func TestReplyGuard(t *testing.T) {
	svc, db := newService(t)
	who := newActors(t, db)
	ctx := context.Background()
	first := storeBatch(t, svc, db, msg(channels.Private, "alice", "hello", ""))[0]
	ref := itoa(first.CaseID)
	seen := first.MessageID

	reply := func(actor cases.Actor, seen int64) error {
		_, err := svc.Reply(ctx, actor, ref, cases.ReplyInput{Text: "Hi", Visibility: channels.Private, SeenMessageID: seen})
		return err
	}
	if _, err := svc.AddNote(ctx, who.supervisor, ref, "a note"); err != nil {
		t.Fatal(err)
	}
	// An automatic reply (written as the acknowledgement sender writes it).
	if err := db.Exec(`INSERT INTO messages (case_id, channel_account_id, direction, visibility, body, delivery_status, automatic)
		SELECT id, channel_account_id, 'outbound', 'private', 'Thanks, your reference is …', 'queued', 'acknowledgement'
		FROM cases WHERE id = ?`, first.CaseID).Error; err != nil {
		t.Fatal(err)
	}
	if err := reply(who.adviser, seen); err != nil {
		t.Fatalf("a note or an automatic reply held the reply: %v", err)
	}
	// The adviser's own reply since the view does not hold the next one.
	if err := reply(who.adviser, seen); err != nil {
		t.Fatalf("the adviser's own reply held theirs: %v", err)
	}
	// Another adviser's reply does.
	if err := reply(who.supervisor, seen); !errors.Is(err, cases.ErrConversationMoved) {
		t.Fatalf("after the adviser's replies, the supervisor's reply from an older view: %v", err)
	}
	second := storeBatch(t, svc, db, msg(channels.Private, "alice", "are you there?", ""))[0]
	if second.CaseID != first.CaseID {
		t.Fatal("the follow-up opened another case")
	}
	var before int64
	db.Raw(`SELECT count(*) FROM messages WHERE case_id = ?`, first.CaseID).Scan(&before)
	if err := reply(who.adviser, seen); !errors.Is(err, cases.ErrConversationMoved) {
		t.Fatalf("after the resident wrote again: %v, want ErrConversationMoved", err)
	}
	var after int64
	db.Raw(`SELECT count(*) FROM messages WHERE case_id = ?`, first.CaseID).Scan(&after)
	if after != before {
		t.Errorf("a held reply wrote %d messages", after-before)
	}
	if err := reply(who.adviser, second.MessageID); err != nil {
		t.Errorf("a reply from the newest view: %v", err)
	}
	if err := reply(who.adviser, 0); err != nil {
		t.Errorf("a reply sent anyway: %v", err)
	}
}

// Tags are normalised and checked; another team's case is not found.
func TestSetTags(t *testing.T) {
	svc, db := newService(t)
	who := newActors(t, db)
	ctx := context.Background()
	c := storeBatch(t, svc, db, msg(channels.Private, "alice", "hello", ""))[0]
	ref := itoa(c.CaseID)
	d, err := svc.SetTags(ctx, who.adviser, ref, []string{" Flooding", "repeat-caller", "flooding", ""})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Tags, []string{"flooding", "repeat-caller"}) {
		t.Errorf("tags %q", d.Tags)
	}
	many := make([]string, cases.MaxTags+1)
	for i := range many {
		many[i] = "t" + itoa(int64(i))
	}
	for _, bad := range [][]string{{"two words"}, {"<b>"}, {strings.Repeat("a", 41)}, many} {
		if _, err := svc.SetTags(ctx, who.adviser, ref, bad); !errors.Is(err, cases.ErrInvalidTag) {
			t.Errorf("tags %q: %v, want ErrInvalidTag", bad, err)
		}
	}
	if _, err := svc.SetTags(ctx, who.adviser, ref, []string{strings.Repeat("a", 40)}); err != nil {
		t.Errorf("a 40-character tag: %v", err)
	}
	if _, err := svc.SetTags(ctx, who.outsider, ref, []string{"x"}); !errors.Is(err, cases.ErrNotFound) {
		t.Errorf("another team's adviser tags the case: %v", err)
	}
	var n int64
	db.Raw(`SELECT count(*) FROM audit_events WHERE action = 'case.tagged' AND case_id = ?`, c.CaseID).Scan(&n)
	if n != 2 {
		t.Errorf("%d audit entries for tagging, want 2", n)
	}
}

// The resident panel lists the resident's identities and the cases the
// actor may see, counts the others, and is audited as a consultation.
func TestResidentOf(t *testing.T) {
	svc, db := newService(t)
	who := newActors(t, db)
	ctx := context.Background()
	first := storeBatch(t, svc, db, msg(channels.Private, "alice", "hello", ""))[0]
	if _, err := svc.SetStatus(ctx, who.adviser, itoa(first.CaseID), cases.StatusClosed); err != nil {
		t.Fatal(err)
	}
	second := storeBatch(t, svc, db, msg(channels.Private, "alice", "hello again", ""))[0]
	if second.CaseID == first.CaseID {
		t.Fatal("a closed case took the new message")
	}
	// One of her cases moves to the other team.
	db.Exec(`UPDATE cases SET team_id = (SELECT id FROM teams WHERE slug = 'highways') WHERE id = ?`, first.CaseID)

	r, err := svc.ResidentOf(ctx, who.adviser, itoa(second.CaseID))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Identities) != 1 || r.Identities[0].ExternalID != "alice" || r.Identities[0].Channel != "x" {
		t.Errorf("identities %+v", r.Identities)
	}
	if len(r.Cases) != 1 || r.Cases[0].ID != second.CaseID || r.OtherTeams != 1 {
		t.Errorf("cases %+v, %d in other teams; want only the second, and one other", r.Cases, r.OtherTeams)
	}
	if _, err := svc.ResidentOf(ctx, who.outsider, itoa(second.CaseID)); !errors.Is(err, cases.ErrNotFound) {
		t.Errorf("another team's adviser reads the resident: %v", err)
	}
	var n int64
	db.Raw(`SELECT count(*) FROM audit_events WHERE action = 'contact.viewed' AND user_id = ?`, who.adviser.UserID).Scan(&n)
	if n != 1 {
		t.Errorf("%d contact.viewed entries, want 1", n)
	}
}

// Canned responses: placeholders filled, unknown ones found.
func TestCannedFill(t *testing.T) {
	c := cases.Canned{Text: "Hello {resident_name}, {team} has {case_reference}."}
	if got := c.Fill("Alice", "C-2026-000001", "Highways"); got != "Hello Alice, Highways has C-2026-000001." {
		t.Errorf("filled %q", got)
	}
	if got := c.Fill(" ", "C-1", "T"); got != "Hello there, T has C-1." {
		t.Errorf("filled without a name %q", got)
	}
	if got := c.Fill("@bob see https://evil.example #win", "C-1", "T"); got != "Hello bob see win, T has C-1." {
		t.Errorf("filled with a hostile name %q", got)
	}
	if bad := cases.UnknownPlaceholders("Hi {name} {team} {name}"); !slices.Equal(bad, []string{"{name}"}) {
		t.Errorf("unknown placeholders %q", bad)
	}
}

// An adviser taking a case from its page is held to the team's cap, as
// Next is; a supervisor assigning is not. Taking against an assignment
// that changed meanwhile changes nothing.
func TestTakeWithinCapAndAgainstTheAssignmentShown(t *testing.T) {
	svc, db := newService(t)
	who := newActors(t, db)
	ctx := context.Background()
	db.Exec(`UPDATE teams SET max_open_per_adviser = 1 WHERE slug = 'contact-centre'`)
	one := storeBatch(t, svc, db, msg(channels.Private, "alice", "hello", ""))[0]
	two := storeBatch(t, svc, db, msg(channels.Private, "bob", "hello", ""))[0]
	me := who.adviser.UserID
	take := cases.Assignment{AssigneeID: &me, Expect: true, ExpectUnassigned: true}
	if _, err := svc.Assign(ctx, who.adviser, itoa(one.CaseID), take); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Assign(ctx, who.adviser, itoa(two.CaseID), take); !errors.Is(err, cases.ErrAtCapacity) {
		t.Errorf("a second take over the cap of 1: %v, want ErrAtCapacity", err)
	}
	if _, err := svc.Assign(ctx, who.supervisor, itoa(two.CaseID), cases.Assignment{AssigneeID: &me}); err != nil {
		t.Errorf("a supervisor assigning over the cap: %v", err)
	}
	// The supervisor's take of the adviser's case, made against the page
	// that showed it unassigned, changes nothing.
	sup := who.supervisor.UserID
	if _, err := svc.Assign(ctx, who.supervisor, itoa(one.CaseID), cases.Assignment{AssigneeID: &sup, Expect: true, ExpectUnassigned: true}); !errors.Is(err, cases.ErrAssignmentChanged) {
		t.Errorf("a take against a stale page: %v, want ErrAssignmentChanged", err)
	}
	var assignee int64
	db.Raw(`SELECT assignee_id FROM cases WHERE id = ?`, one.CaseID).Scan(&assignee)
	if assignee != me {
		t.Errorf("the case is %d's, want the adviser's", assignee)
	}
	// Nor does the outsider learn anything: not found.
	if _, err := svc.Assign(ctx, who.outsider, itoa(one.CaseID), cases.Assignment{Unassign: true, Expect: true, ExpectAssignee: 999}); !errors.Is(err, cases.ErrNotFound) {
		t.Errorf("another team's adviser: %v, want ErrNotFound", err)
	}
}
