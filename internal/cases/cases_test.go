package cases_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
	reply := msg(channels.Public, "alice", "it is getting bigger", post.ExternalID)
	dm1 := msg(channels.Private, "carol", "hello", "")
	dm2 := msg(channels.Private, "carol", "my account number", "")
	dup := dm2
	other := msg(channels.Private, "dave", "hi", "")
	bobs := msg(channels.Public, "bob", "same here", post.ExternalID)

	res := storeBatch(t, svc, db, post, reply, dm1, dm2, dup, other, bobs)
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
	if !res[6].Created || res[6].CaseID == res[0].CaseID {
		t.Errorf("another resident's reply to a post of the same batch: %+v", res[6])
	}
	if got := contextOf(t, db, res[6].CaseID); got != (caseContext{post.ExternalID, res[0].CaseID}) {
		t.Errorf("context of the other resident's case: %+v", got)
	}
	var n int64
	db.Raw(`SELECT count(*) FROM messages`).Scan(&n)
	if n != 6 {
		t.Errorf("%d messages stored, want 6", n)
	}
	db.Raw(`SELECT count(*) FROM outbox`).Scan(&n)
	if n != 6 {
		t.Errorf("%d case events queued, want 6", n)
	}
	db.Raw(`SELECT count(*) FROM contacts`).Scan(&n)
	if n != 4 {
		t.Errorf("%d contacts, want 4", n)
	}

	// Redelivering the whole batch changes nothing.
	again := storeBatch(t, svc, db, post, reply, dm1, dm2, dup, other, bobs)
	for i, r := range again {
		if !r.Duplicate || r.CaseID != res[i].CaseID {
			t.Errorf("redelivered message %d: %+v", i, r)
		}
	}
	db.Raw(`SELECT count(*) FROM messages`).Scan(&n)
	if n != 6 {
		t.Errorf("%d messages after redelivery, want 6", n)
	}
}

// caseContext is a case's context columns.
type caseContext struct {
	Post string
	Case int64
}

func contextOf(t *testing.T, db *gorm.DB, caseID int64) caseContext {
	t.Helper()
	var c struct {
		ContextPostID string
		ContextCaseID *int64
	}
	if err := db.Raw(`SELECT context_post_id, context_case_id FROM cases WHERE id = ?`, caseID).Scan(&c).Error; err != nil {
		t.Fatal(err)
	}
	got := caseContext{Post: c.ContextPostID}
	if c.ContextCaseID != nil {
		got.Case = *c.ContextCaseID
	}
	return got
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

// A resident's replies to their closed case's post share one new case, not
// one each; other residents' replies are cases of their own.
func TestRepliesToAClosedCasesPostShareOneNewCase(t *testing.T) {
	svc, db := newService(t)
	post := msg(channels.Public, "jack", "bins", "")
	closed := storeBatch(t, svc, db, post)[0]
	db.Exec(`UPDATE cases SET status = 'closed', closed_at = now() WHERE id = ?`, closed.CaseID)

	first := storeBatch(t, svc, db, msg(channels.Public, "jack", "they missed us again", post.ExternalID))[0]
	second := storeBatch(t, svc, db, msg(channels.Public, "jack", "still nothing", post.ExternalID))[0]
	together := storeBatch(t, svc, db,
		msg(channels.Public, "jack", "hello?", post.ExternalID), msg(channels.Public, "jack", "anyone?", post.ExternalID))
	if !first.Created || first.CaseID == closed.CaseID {
		t.Fatalf("first reply to the closed case: %+v", first)
	}
	if got := contextOf(t, db, first.CaseID); got != (caseContext{post.ExternalID, closed.CaseID}) {
		t.Errorf("the new case's context %+v, want the closed case's post", got)
	}
	for i, r := range append([]cases.Stored{second}, together...) {
		if r.CaseID != first.CaseID || r.Created {
			t.Errorf("reply %d: %+v, want it on case %d", i+2, r, first.CaseID)
		}
	}
	kate := storeBatch(t, svc, db, msg(channels.Public, "kate", "us too", post.ExternalID))[0]
	if !kate.Created || kate.CaseID == first.CaseID || kate.CaseID == closed.CaseID {
		t.Errorf("another resident's reply to the closed case's post: %+v", kate)
	}
}

// A case is one resident's: another resident answering in their thread,
// whether to the resident's post or the council's reply, gets a case of
// their own that records what they answered; their later replies join it.
func TestAnotherResidentsReplyOpensTheirOwnCase(t *testing.T) {
	svc, db := newService(t)
	post := msg(channels.Public, "alice", "the streetlight is out", "")
	alices := storeBatch(t, svc, db, post)[0]
	// The council's answer, as the sender records it once posted.
	ours := fmt.Sprint(900000 + seq)
	if err := db.Exec(`WITH m AS (
			INSERT INTO messages (case_id, channel_account_id, direction, visibility, body, external_id, delivery_status)
			SELECT ?, id, 'outbound', 'public', 'We will fix it', ?, 'sent' FROM channel_accounts
			RETURNING id, case_id, channel_account_id, external_id)
		INSERT INTO message_posts (channel_account_id, external_id, message_id, case_id)
		SELECT channel_account_id, external_id, id, case_id FROM m`, alices.CaseID, ours).Error; err != nil {
		t.Fatal(err)
	}

	toOurs := storeBatch(t, svc, db, msg(channels.Public, "bob", "and the one on Elm Road", ours))[0]
	if !toOurs.Created || toOurs.CaseID == alices.CaseID {
		t.Fatalf("bob's reply to the council's post in alice's case: %+v, want a case of his own", toOurs)
	}
	if got := contextOf(t, db, toOurs.CaseID); got != (caseContext{ours, alices.CaseID}) {
		t.Errorf("bob's case context %+v, want the council's post in alice's case", got)
	}
	again := storeBatch(t, svc, db, msg(channels.Public, "bob", "any news?", ours))[0]
	toPost := storeBatch(t, svc, db, msg(channels.Public, "bob", "it is dark", post.ExternalID))[0]
	if again.CaseID != toOurs.CaseID || again.Created {
		t.Errorf("bob replying again to the council's post: %+v, want his case %d", again, toOurs.CaseID)
	}
	if !toPost.Created || toPost.CaseID == alices.CaseID {
		t.Errorf("bob replying to alice's own post: %+v, want a case of his own", toPost)
	}
	if got := contextOf(t, db, toPost.CaseID); got != (caseContext{post.ExternalID, alices.CaseID}) {
		t.Errorf("context %+v, want alice's post", got)
	}
	alice := storeBatch(t, svc, db, msg(channels.Public, "alice", "thank you", ours))[0]
	if alice.CaseID != alices.CaseID || alice.Created {
		t.Errorf("alice's reply to the council: %+v, want her case %d", alice, alices.CaseID)
	}
	var mixed int64
	db.Raw(`SELECT count(*) FROM messages m JOIN cases c ON c.id = m.case_id
		WHERE m.direction = 'inbound' AND m.contact_identity_id <> c.contact_identity_id`).Scan(&mixed)
	if mixed != 0 {
		t.Errorf("%d messages on another resident's case", mixed)
	}

	// The API shows the context.
	d, err := svc.Get(context.Background(), cases.Actor{Role: cases.RoleAdmin}, fmt.Sprint(toOurs.CaseID))
	if err != nil {
		t.Fatal(err)
	}
	if d.Context == nil || d.Context.PostID != ours || d.Context.CaseID == nil || *d.Context.CaseID != alices.CaseID ||
		d.Context.CaseReference == nil || !strings.HasPrefix(*d.Context.CaseReference, "C-") {
		t.Errorf("case detail context %+v", d.Context)
	}
	own, err := svc.Get(context.Background(), cases.Actor{Role: cases.RoleAdmin}, fmt.Sprint(alices.CaseID))
	if err != nil {
		t.Fatal(err)
	}
	if own.Context != nil {
		t.Errorf("a case that answered no post has context %+v", own.Context)
	}
}

// The council posts a road closure and fifty residents reply: fifty cases.
// One of them replying again under the same post joins their own case.
func TestFiftyRepliesUnderOneBroadcastAreFiftyCases(t *testing.T) {
	svc, db := newService(t)
	const broadcast = "road-closure"
	var first []channels.Inbound
	for i := range 30 {
		first = append(first, msg(channels.Public, fmt.Sprint("resident", i), "which roads?", broadcast))
	}
	res := storeBatch(t, svc, db, first...)
	for i := 30; i < 50; i++ {
		res = append(res, storeBatch(t, svc, db, msg(channels.Public, fmt.Sprint("resident", i), "how long?", broadcast))...)
	}
	seen := map[int64]bool{}
	for i, r := range res {
		if !r.Created || seen[r.CaseID] {
			t.Errorf("reply %d: %+v, want a case of its own", i, r)
		}
		seen[r.CaseID] = true
		if got := contextOf(t, db, r.CaseID); got != (caseContext{Post: broadcast}) {
			t.Errorf("reply %d: context %+v, want the broadcast", i, got)
		}
	}
	again := storeBatch(t, svc, db,
		msg(channels.Public, "resident7", "and tomorrow?", broadcast), msg(channels.Public, "resident42", "thanks", broadcast))
	if again[0].CaseID != res[7].CaseID || again[1].CaseID != res[42].CaseID || again[0].Created || again[1].Created {
		t.Errorf("second replies %+v, want cases %d and %d", again, res[7].CaseID, res[42].CaseID)
	}
	var n int64
	db.Raw(`SELECT count(*) FROM cases`).Scan(&n)
	if n != 50 {
		t.Errorf("%d cases, want 50", n)
	}
}

// Messages in an X conversation with no known parent (a reply to a council
// broadcast delivered with its conversation id) thread per resident.
func TestConversationFallbackIsPerResident(t *testing.T) {
	svc, db := newService(t)
	inConv := func(who, inReplyTo string) channels.Inbound {
		m := msg(channels.Public, who, "about the closure", inReplyTo)
		m.ConversationID = "root-1"
		return m
	}
	a := storeBatch(t, svc, db, inConv("alice", "root-1"))[0]
	b := storeBatch(t, svc, db, inConv("bob", "root-1"))[0]
	a2 := storeBatch(t, svc, db, inConv("alice", "some-reply-we-never-saw"))[0]
	if b.CaseID == a.CaseID || a2.CaseID != a.CaseID {
		t.Errorf("alice %d, bob %d, alice again %d: want alice's two on one case, bob's on another", a.CaseID, b.CaseID, a2.CaseID)
	}
}

// A reply that overtook its parent (stored first) is joined by the parent.
func TestParentStoredAfterItsReplyJoinsIt(t *testing.T) {
	svc, db := newService(t)
	parent := msg(channels.Public, "erin", "1/2 the footpath is flooded", "")
	reply := msg(channels.Public, "erin", "2/2 by the school", parent.ExternalID)
	r := storeBatch(t, svc, db, reply)[0]
	p := storeBatch(t, svc, db, parent)[0]
	if p.CaseID != r.CaseID || p.Created {
		t.Errorf("parent %+v, want it on the reply's case %d", p, r.CaseID)
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

// holdOpen stores ins in a transaction it leaves open, and returns what was
// stored and a function that commits it.
func holdOpen(t *testing.T, svc *cases.Service, db *gorm.DB, ins ...channels.Inbound) ([]cases.Stored, func()) {
	t.Helper()
	stored := make(chan []cases.Stored, 1)
	release, finished := make(chan struct{}), make(chan error, 1)
	go func() {
		finished <- store.Write(context.Background(), db, func(tx *gorm.DB) error {
			res, err := svc.StoreBatch(tx, ins)
			if err != nil {
				return err
			}
			stored <- res
			<-release
			return nil
		})
	}()
	select {
	case res := <-stored:
		var once sync.Once
		commit := func() {
			once.Do(func() {
				close(release)
				if err := <-finished; err != nil {
					t.Errorf("commit the held batch: %v", err)
				}
			})
		}
		t.Cleanup(commit)
		return res, commit
	case err := <-finished:
		t.Fatalf("store the held batch: %v", err)
		return nil, nil
	}
}

type outcome struct {
	res []cases.Stored
	err error
}

// storeAsync stores ins in a transaction of its own, in the background.
func storeAsync(svc *cases.Service, db *gorm.DB, ins ...channels.Inbound) <-chan outcome {
	out := make(chan outcome, 1)
	go func() {
		var res []cases.Stored
		err := store.Write(context.Background(), db, func(tx *gorm.DB) error {
			var err error
			res, err = svc.StoreBatch(tx, ins)
			return err
		})
		out <- outcome{res, err}
	}()
	return out
}

// waitsForLock requires the background batch to be waiting for one of the
// held batch's advisory locks: it must not finish first.
func waitsForLock(t *testing.T, db *gorm.DB, pending <-chan outcome) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case o := <-pending:
			t.Fatalf("the second batch finished while the first was uncommitted: %+v %v", o.res, o.err)
		default:
		}
		var n int64
		if err := db.Raw(`SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
			WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()`).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the second batch never waited for the first")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func settled(t *testing.T, pending <-chan outcome) []cases.Stored {
	t.Helper()
	select {
	case o := <-pending:
		if o.err != nil {
			t.Fatalf("the second batch failed: %v", o.err)
		}
		return o.res
	case <-time.After(15 * time.Second):
		t.Fatal("the second batch did not finish after the first committed")
		return nil
	}
}

// A reply handled while its parent is still being stored (on another
// replica) waits for the parent to commit, then threads on what it stored.
func TestReplyWaitsForItsParentInFlight(t *testing.T) {
	for _, tt := range []struct {
		name, author string
		sameCase     bool
	}{
		{"the resident's own reply joins the parent's case", "alice", true},
		{"another resident's reply opens their case with the parent's as context", "bob", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc, db := newService(t)
			parent := msg(channels.Public, "alice", "the bus shelter is smashed", "")
			reply := msg(channels.Public, tt.author, "glass everywhere", parent.ExternalID)
			held, commit := holdOpen(t, svc, db, parent)
			pending := storeAsync(svc, db, reply)
			waitsForLock(t, db, pending)
			commit()
			r := settled(t, pending)[0]
			if tt.sameCase {
				if r.CaseID != held[0].CaseID || r.Created {
					t.Errorf("reply %+v, want it on the parent's case %d", r, held[0].CaseID)
				}
				return
			}
			if !r.Created || r.CaseID == held[0].CaseID {
				t.Fatalf("reply %+v, want a case of its own", r)
			}
			if got := contextOf(t, db, r.CaseID); got != (caseContext{parent.ExternalID, held[0].CaseID}) {
				t.Errorf("context %+v, want the parent's post and case %d", got, held[0].CaseID)
			}
		})
	}
}

// A copy of a message that arrives while the first copy is still being
// stored is a duplicate, not an error that sends its batch back.
func TestCopyInFlightIsADuplicate(t *testing.T) {
	for _, tt := range []struct {
		name string
		copy func(channels.Inbound) channels.Inbound
	}{
		{"the same message", func(m channels.Inbound) channels.Inbound { return m }},
		{"the same dedupe key under another id", func(m channels.Inbound) channels.Inbound {
			m.ExternalID += "-copy"
			return m
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc, db := newService(t)
			m := msg(channels.Private, "gwen", "my bin was not emptied", "")
			first, other := msg(channels.Public, "hal", "one", ""), msg(channels.Public, "ian", "two", "")
			held, commit := holdOpen(t, svc, db, first, m)
			pending := storeAsync(svc, db, tt.copy(m), other)
			waitsForLock(t, db, pending)
			commit()
			got := settled(t, pending)
			if !got[0].Duplicate || got[0].CaseID != held[1].CaseID || got[0].MessageID != held[1].MessageID {
				t.Errorf("copy %+v, want a duplicate of %+v", got[0], held[1])
			}
			if got[1].Duplicate || !got[1].Created {
				t.Errorf("the other message of the batch: %+v", got[1])
			}
			var n int64
			db.Raw(`SELECT count(*) FROM messages`).Scan(&n)
			if n != 3 {
				t.Errorf("%d messages, want 3", n)
			}
		})
	}
}

// statements counts the SQL statements run through db.
func statements(db *gorm.DB) *atomic.Int64 {
	var n atomic.Int64
	count := func(*gorm.DB) { n.Add(1) }
	cb := db.Callback()
	_ = cb.Query().After("gorm:query").Register("test:count", count)
	_ = cb.Raw().After("gorm:raw").Register("test:count", count)
	_ = cb.Row().After("gorm:row").Register("test:count", count)
	_ = cb.Create().After("gorm:create").Register("test:count", count)
	_ = cb.Update().After("gorm:update").Register("test:count", count)
	return &n
}

// StoreBatch runs a fixed number of statements whatever the batch's size.
func TestBatchRunsAFixedNumberOfStatements(t *testing.T) {
	svc, db := newService(t)
	// A batch that uses every step: new and known residents, replies to
	// known posts, a reopened case, conversations and direct messages.
	mix := func(n int) []channels.Inbound {
		var ins []channels.Inbound
		for i := range n {
			who := fmt.Sprint("r", i%7)
			switch i % 4 {
			case 0:
				ins = append(ins, msg(channels.Public, who, "post", ""))
			case 1:
				ins = append(ins, msg(channels.Public, who, "reply", ins[i-1].ExternalID))
			case 2:
				m := msg(channels.Public, who, "in conversation", "elsewhere")
				m.ConversationID = "conv"
				ins = append(ins, m)
			default:
				ins = append(ins, msg(channels.Private, who, "dm", ""))
			}
		}
		return ins
	}
	warm := storeBatch(t, svc, db, mix(8)...) // residents and the account are known now
	db.Exec(`UPDATE cases SET status = 'resolved' WHERE id = ?`, warm[0].CaseID)
	n := statements(db)
	count := func(ins []channels.Inbound) int64 {
		before := n.Load()
		storeBatch(t, svc, db, ins...)
		return n.Load() - before
	}
	small, large := count(mix(8)), count(mix(200))
	if small != large {
		t.Errorf("a batch of 8 ran %d statements, one of 200 ran %d", small, large)
	}
}

// A batch that takes longer than the ack wait (here, waiting for another
// replica's locks) keeps its messages: JetStream is told they are in
// progress, so it does not hand them to another replica meanwhile.
func TestLongBatchKeepsItsMessagesInProgress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	names := testenv.Namespace(t)
	b, err := bus.Connect(ctx, testenv.NATSURL(), names)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	_, db := newService(t)
	svc := cases.New(db, names, metrics.New(), slog.New(slog.DiscardHandler), nil)
	const ackWait = time.Second
	cons, err := svc.StartConsumer(ctx, b, 50*time.Millisecond, cases.WithAckWait(ackWait))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cons.Drain(context.Background()) })

	// The parent is being stored elsewhere; the reply's batch must wait.
	parent := msg(channels.Public, "jane", "the park gate is broken", "")
	held, commit := holdOpen(t, svc, db, parent)
	reply := msg(channels.Public, "jane", "it swings into the road", parent.ExternalID)
	data, _ := json.Marshal(reply)
	if _, err := b.JS.Publish(ctx, names.InboundSubject("x", "council-x"), data, jetstream.WithMsgID(reply.DedupeKey)); err != nil {
		t.Fatal(err)
	}
	waitsForLock(t, db, nil)

	// Let more than the ack wait pass, as JetStream counts it: a message
	// fetched now, never acknowledged, comes back twice.
	clock := names.Stream("CLOCK")
	stream, err := b.JS.CreateStream(ctx, jetstream.StreamConfig{Name: clock, Subjects: []string{clock}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.JS.DeleteStream(context.Background(), clock) })
	tick, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "tick", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.JS.Publish(ctx, clock, []byte("tick")); err != nil {
		t.Fatal(err)
	}
	for delivery := uint64(1); delivery <= 3; {
		m, err := tick.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("the clock message: %v", err)
		}
		if md, _ := m.Metadata(); md != nil && md.NumDelivered >= delivery {
			delivery = md.NumDelivered + 1
		}
	}

	// The reply is still the waiting batch's: nothing is there to take.
	inbound, err := b.JS.Consumer(ctx, names.Stream(bus.Inbound), cases.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	stolen, err := inbound.FetchNoWait(1)
	if err != nil {
		t.Fatal(err)
	}
	for m := range stolen.Messages() {
		md, _ := m.Metadata()
		t.Errorf("the reply was handed out again while its batch was storing it (delivery %d)", md.NumDelivered)
	}

	commit()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var caseID int64
		db.Raw(`SELECT coalesce(max(case_id), 0) FROM messages WHERE external_id = ?`, reply.ExternalID).Scan(&caseID)
		if caseID != 0 {
			if caseID != held[0].CaseID {
				t.Errorf("reply on case %d, want the parent's %d", caseID, held[0].CaseID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reply was never stored")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
