package cases_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/metrics"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newService(t *testing.T) (*cases.Service, *gorm.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, testenv.Database(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(db) })
	if err := db.Exec(`INSERT INTO teams (slug, name) VALUES ('contact-centre', 'Contact centre');
		INSERT INTO channel_accounts (slug, channel, name, team_id) VALUES ('council-x', 'x', 'Council', (SELECT id FROM teams))`).Error; err != nil {
		t.Fatal(err)
	}
	return cases.New(db, bus.Names{}, metrics.New(), slog.New(slog.DiscardHandler), nil), db
}

var seq int

func msg(vis channels.Visibility, author, text, inReplyTo string) channels.Inbound {
	seq++
	id := fmt.Sprint(1000 + seq)
	now := time.Now().UTC()
	return channels.Inbound{
		Channel: "x", Account: "council-x", DedupeKey: "x:" + id, ExternalID: id, Visibility: vis, Text: text,
		Author: channels.Identity{ExternalID: author, Handle: "h" + author}, InReplyTo: inReplyTo,
		SentAt: now, ReceivedAt: now,
	}
}

func storeBatch(t *testing.T, svc *cases.Service, db *gorm.DB, ins ...channels.Inbound) []cases.Stored {
	t.Helper()
	var res []cases.Stored
	err := store.Write(context.Background(), db, func(tx *gorm.DB) error {
		var err error
		res, err = svc.StoreBatch(tx, ins)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Within one batch, messages thread onto cases earlier messages opened.
func TestBatchThreadsWithinItself(t *testing.T) {
	svc, db := newService(t)
	post := msg(channels.Public, "alice", "pothole", "")
	reply := msg(channels.Public, "bob", "same here", post.ExternalID)
	dm1 := msg(channels.Private, "carol", "hello", "")
	dm2 := msg(channels.Private, "carol", "my account number", "")
	dup := dm2
	other := msg(channels.Private, "dave", "hi", "")

	res := storeBatch(t, svc, db, post, reply, dm1, dm2, dup, other)
	if !res[0].Created || res[1].Created || res[1].CaseID != res[0].CaseID {
		t.Errorf("reply to a post in the same batch: %+v %+v", res[0], res[1])
	}
	if !res[2].Created || res[3].Created || res[3].CaseID != res[2].CaseID {
		t.Errorf("follow-up DM in the same batch: %+v %+v", res[2], res[3])
	}
	if !res[4].Duplicate || res[4].CaseID != res[3].CaseID {
		t.Errorf("second copy in the same batch: %+v", res[4])
	}
	if !res[5].Created || res[5].CaseID == res[2].CaseID {
		t.Errorf("another resident's DM: %+v", res[5])
	}
	var n int64
	db.Raw(`SELECT count(*) FROM messages`).Scan(&n)
	if n != 5 {
		t.Errorf("%d messages stored, want 5", n)
	}
	db.Raw(`SELECT count(*) FROM outbox`).Scan(&n)
	if n != 5 {
		t.Errorf("%d case events queued, want 5", n)
	}
	db.Raw(`SELECT count(*) FROM contacts`).Scan(&n)
	if n != 4 {
		t.Errorf("%d contacts, want 4", n)
	}

	// Redelivering the whole batch changes nothing.
	again := storeBatch(t, svc, db, post, reply, dm1, dm2, dup, other)
	for i, r := range again {
		if !r.Duplicate || r.CaseID != res[i].CaseID {
			t.Errorf("redelivered message %d: %+v", i, r)
		}
	}
	db.Raw(`SELECT count(*) FROM messages`).Scan(&n)
	if n != 5 {
		t.Errorf("%d messages after redelivery, want 5", n)
	}
}

func TestResolvedCaseReopensAndClosedCaseDoesNot(t *testing.T) {
	svc, db := newService(t)
	post := msg(channels.Public, "alice", "bins", "")
	first := storeBatch(t, svc, db, post)[0]
	db.Exec(`UPDATE cases SET status = 'resolved', resolved_at = now() WHERE id = ?`, first.CaseID)

	reply := msg(channels.Public, "alice", "still not collected", post.ExternalID)
	r := storeBatch(t, svc, db, reply)[0]
	if r.Created || r.CaseID != first.CaseID {
		t.Fatalf("reply to a resolved case: %+v", r)
	}
	var c struct {
		Status        string
		ResolvedAt    *time.Time
		ReopenedCount int
	}
	db.Raw(`SELECT status, resolved_at, reopened_count FROM cases WHERE id = ?`, first.CaseID).Scan(&c)
	if c.Status != "open" || c.ResolvedAt != nil || c.ReopenedCount != 1 {
		t.Errorf("reopened case %+v", c)
	}
	var kind string
	db.Raw(`SELECT payload->>'kind' FROM outbox ORDER BY id DESC LIMIT 1`).Scan(&kind)
	if kind != cases.EventReopened {
		t.Errorf("event %q, want %q", kind, cases.EventReopened)
	}

	db.Exec(`UPDATE cases SET status = 'closed', closed_at = now() WHERE id = ?`, first.CaseID)
	late := storeBatch(t, svc, db, msg(channels.Public, "alice", "hello?", reply.ExternalID))[0]
	if !late.Created || late.CaseID == first.CaseID {
		t.Errorf("reply to a closed case: %+v", late)
	}
}

func TestAwaitingResidentCaseReturnsToOpen(t *testing.T) {
	svc, db := newService(t)
	first := storeBatch(t, svc, db, msg(channels.Private, "erin", "question", ""))[0]
	db.Exec(`UPDATE cases SET status = 'awaiting_resident' WHERE id = ?`, first.CaseID)
	r := storeBatch(t, svc, db, msg(channels.Private, "erin", "answer", ""))[0]
	var status string
	db.Raw(`SELECT status FROM cases WHERE id = ?`, first.CaseID).Scan(&status)
	if r.CaseID != first.CaseID || status != "open" {
		t.Errorf("resident's answer: case %d status %q", r.CaseID, status)
	}
}

func TestTextThatPostgreSQLRefusesIsCleaned(t *testing.T) {
	svc, db := newService(t)
	m := msg(channels.Private, "frank", "nul\x00byte", "")
	m.Raw = []byte(`{"text":"nul\u0000byte"}`)
	r := storeBatch(t, svc, db, m)[0]
	var body string
	db.Raw(`SELECT body FROM messages WHERE id = ?`, r.MessageID).Scan(&body)
	if body != "nul\uFFFDbyte" {
		t.Errorf("body %q", body)
	}
}

func TestUnknownAccountIsAnError(t *testing.T) {
	svc, db := newService(t)
	m := msg(channels.Private, "gina", "hi", "")
	m.Account = "nobody"
	err := store.Write(context.Background(), db, func(tx *gorm.DB) error {
		_, err := svc.StoreBatch(tx, []channels.Inbound{m})
		return err
	})
	if err == nil {
		t.Fatal("a message for an unknown account was stored")
	}
}

// A resident's DM joins the case their public post opened, whether the two
// arrive in one batch or in two.
func TestDirectMessageJoinsTheResidentsOpenCaseWhateverTheBatching(t *testing.T) {
	svc, db := newService(t)
	together := storeBatch(t, svc, db, msg(channels.Public, "hana", "fly-tipping", ""), msg(channels.Private, "hana", "photo attached", ""))
	if together[1].CaseID != together[0].CaseID {
		t.Errorf("in one batch: DM on case %d, post on case %d", together[1].CaseID, together[0].CaseID)
	}
	first := storeBatch(t, svc, db, msg(channels.Public, "ivan", "fly-tipping", ""))
	second := storeBatch(t, svc, db, msg(channels.Private, "ivan", "photo attached", ""))
	if second[0].CaseID != first[0].CaseID {
		t.Errorf("in two batches: DM on case %d, post on case %d", second[0].CaseID, first[0].CaseID)
	}
}

// Replies to a closed case's post share one new case, not one each.
func TestRepliesToAClosedCasesPostShareOneNewCase(t *testing.T) {
	svc, db := newService(t)
	post := msg(channels.Public, "jack", "bins", "")
	closed := storeBatch(t, svc, db, post)[0]
	db.Exec(`UPDATE cases SET status = 'closed', closed_at = now() WHERE id = ?`, closed.CaseID)

	first := storeBatch(t, svc, db, msg(channels.Public, "jack", "they missed us again", post.ExternalID))[0]
	second := storeBatch(t, svc, db, msg(channels.Public, "kate", "us too", post.ExternalID))[0]
	together := storeBatch(t, svc, db,
		msg(channels.Public, "liam", "and us", post.ExternalID), msg(channels.Public, "mia", "same", post.ExternalID))
	if !first.Created || first.CaseID == closed.CaseID {
		t.Fatalf("first reply to the closed case: %+v", first)
	}
	for i, r := range append([]cases.Stored{second}, together...) {
		if r.CaseID != first.CaseID || r.Created {
			t.Errorf("reply %d: %+v, want it on case %d", i+2, r, first.CaseID)
		}
	}
}

func TestReferencesKeepEveryDigit(t *testing.T) {
	svc, db := newService(t)
	db.Exec(`SELECT setval('case_reference_seq', 999999)`)
	r := storeBatch(t, svc, db, msg(channels.Public, "noor", "hello", ""))[0]
	var ref string
	db.Raw(`SELECT reference FROM cases WHERE id = ?`, r.CaseID).Scan(&ref)
	if len(ref) != len("C-2026-1000000") || ref[len(ref)-7:] != "1000000" {
		t.Errorf("reference %q, want one ending 1000000", ref)
	}
}
