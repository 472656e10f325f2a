package cases_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"testing"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/metrics"
)

// actors gives the service a second team and users to act as: an adviser
// and a supervisor of the case's team, and an adviser of the other one.
type actors struct {
	adviser, supervisor, outsider cases.Actor
}

func newActors(t *testing.T, db *gorm.DB) actors {
	t.Helper()
	var a actors
	var home, other int64
	db.Raw(`SELECT id FROM teams WHERE slug = 'contact-centre'`).Scan(&home)
	db.Raw(`INSERT INTO teams (slug, name) VALUES ('highways', 'Highways') RETURNING id`).Scan(&other)
	for _, u := range []struct {
		who  *cases.Actor
		role string
		team int64
	}{{&a.adviser, "adviser", home}, {&a.supervisor, "supervisor", home}, {&a.outsider, "adviser", other}} {
		var id int64
		if err := db.Raw(`INSERT INTO users (email, name, role) VALUES (?, 'Test', ?) RETURNING id`,
			u.role+"-"+itoa(u.team)+"@example.gov.uk", u.role).Scan(&id).Error; err != nil {
			t.Fatal(err)
		}
		db.Exec(`INSERT INTO user_teams (user_id, team_id) VALUES (?, ?)`, id, u.team)
		*u.who = cases.Actor{UserID: id, Role: u.role, TeamIDs: []int64{u.team}}
	}
	return a
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A reply is answered as its transaction wrote it, queued; it is not the
// case's first response until the network accepts it (the sender's part).
// Every time the action writes is the database's clock for its transaction.
func TestReplyIsQueuedAndNotYetAFirstResponse(t *testing.T) {
	svc, db := newService(t)
	who := newActors(t, db)
	c := storeBatch(t, svc, db, msg(channels.Private, "alice", "hello", ""))[0]

	m, err := svc.Reply(context.Background(), who.adviser, itoa(c.CaseID), cases.ReplyInput{Text: "Hi", Visibility: channels.Private})
	if err != nil {
		t.Fatal(err)
	}
	if m.DeliveryStatus != "queued" || m.Direction != "outbound" {
		t.Errorf("reply answered as %s %s, want outbound queued", m.Direction, m.DeliveryStatus)
	}
	var row struct {
		FirstResponseSet bool
		SameClock        bool
	}
	db.Raw(`SELECT c.first_response_at IS NOT NULL AS first_response_set,
		c.updated_at = m.created_at AND m.created_at = a.created_at AND a.created_at = o.created_at AS same_clock
		FROM cases c JOIN messages m ON m.id = ? JOIN audit_events a ON a.action = 'case.replied'
		JOIN outbox o ON o.subject LIKE 'outbound.%'
		WHERE c.id = ?`, m.ID, c.CaseID).Scan(&row)
	if row.FirstResponseSet {
		t.Error("a queued reply counted as the first response")
	}
	if !row.SameClock {
		t.Error("the reply's times are not all the database's clock for its transaction")
	}
}

// Status changes and assignments write the database's clock: every time
// they set equals the audit row's, which the database stamps.
func TestActionTimesAreTheDatabaseClock(t *testing.T) {
	svc, db := newService(t)
	who := newActors(t, db)
	ctx := context.Background()
	c := storeBatch(t, svc, db, msg(channels.Private, "bob", "hello", ""))[0]
	ref := itoa(c.CaseID)
	same := func(what, cond, action string) {
		t.Helper()
		var ok bool
		db.Raw(`SELECT `+cond+` FROM cases c, audit_events a WHERE c.id = ? AND a.id = (SELECT max(id) FROM audit_events WHERE action = ?)`,
			c.CaseID, action).Scan(&ok)
		if !ok {
			t.Errorf("%s: %s does not hold", what, cond)
		}
	}
	if _, err := svc.SetStatus(ctx, who.adviser, ref, cases.StatusResolved); err != nil {
		t.Fatal(err)
	}
	same("resolve", "c.updated_at = a.created_at AND c.resolved_at = a.created_at", "case.status_changed")
	if _, err := svc.Assign(ctx, who.supervisor, ref, cases.Assignment{AssigneeID: &who.adviser.UserID}); err != nil {
		t.Fatal(err)
	}
	same("assign", "c.updated_at = a.created_at", "case.assigned")
	if _, err := svc.SetStatus(ctx, who.adviser, ref, cases.StatusClosed); err != nil {
		t.Fatal(err)
	}
	same("close", "c.updated_at = a.created_at AND c.closed_at = a.created_at AND c.resolved_at < a.created_at", "case.status_changed")
}

// A note is a message with direction note and nothing queued to send.
func TestNoteIsNeverQueuedForSending(t *testing.T) {
	svc, db := newService(t)
	who := newActors(t, db)
	c := storeBatch(t, svc, db, msg(channels.Public, "carol", "pothole", ""))[0]
	db.Exec(`DELETE FROM outbox`)
	n, err := svc.AddNote(context.Background(), who.adviser, itoa(c.CaseID), "Reported to the highways contractor.")
	if err != nil {
		t.Fatal(err)
	}
	if n.Direction != "note" || n.DeliveryStatus != "received" || n.AuthorUserID == nil || *n.AuthorUserID != who.adviser.UserID {
		t.Errorf("note %+v", n)
	}
	var subjects []string
	db.Raw(`SELECT subject FROM outbox`).Scan(&subjects)
	if len(subjects) != 1 || subjects[0] != "case.note_added.contact-centre" {
		t.Errorf("outbox holds %v, want only the note's case event", subjects)
	}
	if _, err := svc.AddNote(context.Background(), who.adviser, itoa(c.CaseID), " \n "); !errors.Is(err, cases.ErrEmptyNote) {
		t.Errorf("empty note: %v", err)
	}
}

// The case service itself refuses what an actor may not do, whatever
// calls it: another team's case is not found (and the attempt audited), a
// role's missing action is forbidden, and nothing changes.
func TestTheCaseServiceEnforcesRolesAndTeams(t *testing.T) {
	svc, db := newService(t)
	who := newActors(t, db)
	ctx := context.Background()
	c := storeBatch(t, svc, db, msg(channels.Public, "dan", "streetlight", ""))[0]
	ref := itoa(c.CaseID)

	out := who.outsider
	for name, err := range map[string]error{
		"get": func() error { _, err := svc.Get(ctx, out, ref); return err }(),
		"reply": func() error {
			_, err := svc.Reply(ctx, out, ref, cases.ReplyInput{Text: "x", Visibility: channels.Public})
			return err
		}(),
		"note":   func() error { _, err := svc.AddNote(ctx, out, ref, "x"); return err }(),
		"status": func() error { _, err := svc.SetStatus(ctx, out, ref, cases.StatusResolved); return err }(),
		"assign": func() error {
			_, err := svc.Assign(ctx, out, ref, cases.Assignment{AssigneeID: &out.UserID})
			return err
		}(),
	} {
		if !errors.Is(err, cases.ErrNotFound) {
			t.Errorf("%s on another team's case: %v, want ErrNotFound", name, err)
		}
	}
	var denied int64
	db.Raw(`SELECT count(*) FROM audit_events WHERE action = 'case.access_denied' AND case_id = ? AND user_id = ?
		AND detail->>'reason' = 'other_team'`, c.CaseID, out.UserID).Scan(&denied)
	if denied != 5 {
		t.Errorf("%d denied attempts audited, want 5", denied)
	}
	if p, err := svc.List(ctx, out, cases.Filter{}); err != nil || len(p.Cases) != 0 {
		t.Errorf("outsider's list: %d cases, %v", len(p.Cases), err)
	}
	if p, err := svc.List(ctx, who.adviser, cases.Filter{}); err != nil || len(p.Cases) != 1 {
		t.Errorf("adviser's list: %d cases, %v", len(p.Cases), err)
	}

	if _, err := svc.Assign(ctx, who.adviser, ref, cases.Assignment{AssigneeID: &who.supervisor.UserID}); !errors.Is(err, cases.ErrForbidden) {
		t.Errorf("adviser assigning someone else: %v, want ErrForbidden", err)
	}
	if _, err := svc.Assign(ctx, who.adviser, ref, cases.Assignment{Team: "highways"}); !errors.Is(err, cases.ErrForbidden) {
		t.Errorf("adviser moving a case: %v, want ErrForbidden", err)
	}
	if _, err := svc.List(ctx, cases.Actor{UserID: who.adviser.UserID}, cases.Filter{}); !errors.Is(err, cases.ErrForbidden) {
		t.Errorf("an actor with no role listed cases: %v", err)
	}
	var state struct {
		Status     string
		AssigneeID *int64
		Messages   int64
	}
	db.Raw(`SELECT status, assignee_id, (SELECT count(*) FROM messages WHERE case_id = cases.id) AS messages FROM cases WHERE id = ?`,
		c.CaseID).Scan(&state)
	if state.Status != "new" || state.AssigneeID != nil || state.Messages != 1 {
		t.Errorf("refused actions changed the case: %+v", state)
	}
}

// The answer to a reply is the row as its transaction wrote it, even when
// the sender, woken as the transaction commits, has claimed it already.
func TestReplyAnswersFromTheRowAsWritten(t *testing.T) {
	_, db := newService(t)
	who := newActors(t, db)
	fastSender := func() {
		db.Exec(`UPDATE messages SET delivery_status = 'sending', send_attempts = 1 WHERE delivery_status = 'queued'`)
	}
	svc := cases.New(db, bus.Names{}, metrics.New(), slog.New(slog.DiscardHandler), fastSender)
	c := storeBatch(t, svc, db, msg(channels.Private, "erin", "hello", ""))[0]
	m, err := svc.Reply(context.Background(), who.adviser, itoa(c.CaseID), cases.ReplyInput{Text: "Hi Erin", Visibility: channels.Private})
	if err != nil {
		t.Fatal(err)
	}
	var now string
	db.Raw(`SELECT delivery_status FROM messages WHERE id = ?`, m.ID).Scan(&now)
	if now != "sending" {
		t.Fatalf("the sender stand-in did not run (status %q)", now)
	}
	if m.DeliveryStatus != "queued" || m.SendAttempts != 0 {
		t.Errorf("reply answered as %q after %d attempts, want queued as written", m.DeliveryStatus, m.SendAttempts)
	}
}
