package cases_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/reports"
)

// The queue lists waiting cases by SLA deadline, then priority, then age;
// its filters and counts hold; another team's cases never show.
func TestQueueOrderFiltersAndCounts(t *testing.T) {
	svc, db := newService(t)
	who := newActors(t, db)
	ctx := context.Background()
	var ins []channels.Inbound
	for i := range 5 {
		ins = append(ins, msg(channels.Private, fmt.Sprint("q", i), fmt.Sprint("message ", i), ""))
	}
	st := storeBatch(t, svc, db, ins...)
	id := func(i int) int64 { return st[i].CaseID }
	// Deadlines: case 3 earliest; cases 0 and 1 share one (1 urgent);
	// cases 2 and 4 have none (4 older).
	db.Exec(`UPDATE cases SET first_response_due = NULL, resolution_due = NULL, next_response_due = NULL`)
	db.Exec(`UPDATE cases SET first_response_due = now() + interval '1 hour' WHERE id IN (?, ?)`, id(0), id(1))
	db.Exec(`UPDATE cases SET first_response_due = now() + interval '10 minutes' WHERE id = ?`, id(3))
	db.Exec(`UPDATE cases SET priority = 'urgent' WHERE id = ?`, id(1))
	db.Exec(`UPDATE cases SET first_message_at = now() - interval '1 day' WHERE id = ?`, id(4))
	db.Exec(`UPDATE cases SET assignee_id = ? WHERE id = ?`, who.adviser.UserID, id(2))
	var other int64
	db.Raw(`SELECT id FROM teams WHERE slug = 'highways'`).Scan(&other)

	p, err := svc.Queue(ctx, who.adviser, cases.QueueFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range p.Rows {
		got = append(got, r.ID)
	}
	want := []int64{id(3), id(1), id(0), id(4), id(2)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("queue order %v, want %v", got, want)
	}
	if p.Total != 5 || p.Counts.Unassigned != 4 || p.Counts.Mine != 1 || p.Counts.Priority["urgent"] != 1 || p.Counts.Channel["x"] != 5 {
		t.Errorf("total %d, counts %+v", p.Total, p.Counts)
	}
	if p.Rows[0].Latest == nil || p.Rows[0].Latest.Body != "message 3" {
		t.Errorf("latest inbound of the first row: %+v", p.Rows[0].Latest)
	}
	p, err = svc.Queue(ctx, who.adviser, cases.QueueFilter{Unassigned: true, Priority: "normal", PageSize: 2, Page: 2})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 3 || p.Pages != 2 || len(p.Rows) != 1 || p.Rows[0].ID != id(4) {
		t.Errorf("unassigned normal, page 2: total %d pages %d rows %d", p.Total, p.Pages, len(p.Rows))
	}
	p, err = svc.Queue(ctx, who.adviser, cases.QueueFilter{Mine: true})
	if err != nil || p.Total != 1 || p.Rows[0].ID != id(2) {
		t.Errorf("mine: %v %+v", err, p)
	}
	// The other team's adviser sees none of them, and cannot name the team.
	p, err = svc.Queue(ctx, who.outsider, cases.QueueFilter{})
	if err != nil || p.Total != 0 || p.Counts.All != 0 {
		t.Errorf("outsider: %v total %d", err, p.Total)
	}
	if _, err := svc.Queue(ctx, who.outsider, cases.QueueFilter{Team: "contact-centre"}); !errors.Is(err, cases.ErrUnknownTeam) {
		t.Errorf("outsider naming the team: %v", err)
	}
	if _, err := svc.Queue(ctx, who.adviser, cases.QueueFilter{Statuses: []string{"bogus"}}); !errors.Is(err, cases.ErrInvalidStatus) {
		t.Errorf("bad status: %v", err)
	}
	var audited int
	db.Raw(`SELECT count(*) FROM audit_events WHERE action = 'queue.listed'`).Scan(&audited)
	if audited == 0 {
		t.Error("queue reads are not audited")
	}
	// Next takes the queue's first unassigned case.
	c, err := svc.Next(ctx, who.adviser, "")
	if err != nil || c.ID != id(3) {
		t.Fatalf("next: %v, case %d", err, c.ID)
	}
	d, err := svc.Get(ctx, who.adviser, c.Reference)
	if err != nil || d.AssigneeID == nil || *d.AssigneeID != who.adviser.UserID {
		t.Errorf("the claimed case: %v, assignee %v", err, d.AssigneeID)
	}
	var claims, events int64
	db.Raw(`SELECT count(*) FROM audit_events WHERE action = 'case.claimed' AND case_id = ? AND user_id = ?`, c.ID, who.adviser.UserID).Scan(&claims)
	db.Raw(`SELECT count(*) FROM outbox WHERE subject = 'case.assigned.contact-centre' AND payload->>'reference' = ?
		AND payload->>'kind' = 'assigned' AND (payload->>'case_id')::bigint = ?`, c.Reference, c.ID).Scan(&events)
	if claims != 1 || events != 1 {
		t.Errorf("the claim wrote %d audit entries and %d events, want 1 and 1", claims, events)
	}
	if _, err := svc.Next(ctx, who.outsider, ""); !errors.Is(err, cases.ErrNothingToClaim) {
		t.Errorf("outsider's next: %v", err)
	}
}

// Concurrent claims never take the same case twice, and one adviser's
// concurrent claims never pass the team's cap.
func TestNextUnderConcurrency(t *testing.T) {
	svc, db := newService(t)
	who := newActors(t, db)
	ctx := context.Background()
	var ins []channels.Inbound
	for i := range 60 {
		ins = append(ins, msg(channels.Private, fmt.Sprint("n", i), "help", ""))
	}
	storeBatch(t, svc, db, ins...)
	// Five advisers of the team; the first one capped at 3 open cases.
	var team int64
	db.Raw(`SELECT id FROM teams WHERE slug = 'contact-centre'`).Scan(&team)
	db.Exec(`UPDATE teams SET max_open_per_adviser = 3 WHERE id = ?`, team)
	advisers := []cases.Actor{who.adviser}
	for i := range 4 {
		var uid int64
		db.Raw(`INSERT INTO users (email, name, role) VALUES (?, 'T', 'adviser') RETURNING id`, fmt.Sprint("a", i, "@example.gov.uk")).Scan(&uid)
		db.Exec(`INSERT INTO user_teams (user_id, team_id) VALUES (?, ?)`, uid, team)
		advisers = append(advisers, cases.Actor{UserID: uid, Role: "adviser", TeamIDs: []int64{team}})
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var capped, errs int
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() {
			for range 5 {
				d, err := svc.Next(ctx, advisers[g%len(advisers)], "contact-centre")
				mu.Lock()
				switch {
				case err == nil:
					seen[d.ID]++
				case errors.Is(err, cases.ErrAtCapacity), errors.Is(err, cases.ErrNothingToClaim):
					capped++
				default:
					errs++
					t.Error(err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for id, n := range seen {
		if n > 1 {
			t.Errorf("case %d claimed %d times", id, n)
		}
	}
	var held []int
	db.Raw(`SELECT count(*) FROM cases WHERE assignee_id IS NOT NULL GROUP BY assignee_id ORDER BY 1 DESC`).Scan(&held)
	if len(held) != 5 || held[0] != 3 {
		t.Errorf("open cases per adviser %v, want 5 advisers at 3 (the cap)", held)
	}
	if len(seen) != 15 || capped != 100-15 {
		t.Errorf("%d claims, %d refused, %d errors", len(seen), capped, errs)
	}
	var claimed int
	db.Raw(`SELECT count(*) FROM audit_events WHERE action = 'case.claimed'`).Scan(&claimed)
	if claimed != 15 {
		t.Errorf("%d claims audited, want 15", claimed)
	}
}

// The queue filtered by an SLA state, or by an adviser, lists exactly the
// cases the supervisors' figure of that name counts, so following a
// figure of the dashboard shows the cases behind it.
func TestQueueSLAAndAssigneeFiltersMatchTheFigures(t *testing.T) {
	svc, db := newService(t)
	who := newActors(t, db)
	ctx := context.Background()
	var ins []channels.Inbound
	for i := range 5 {
		ins = append(ins, msg(channels.Private, fmt.Sprint("s", i), fmt.Sprint("message ", i), ""))
	}
	st := storeBatch(t, svc, db, ins...)
	id := func(i int) int64 { return st[i].CaseID }
	db.Exec(`UPDATE cases SET first_response_due = NULL, first_response_warn_at = NULL, resolution_due = NULL,
		resolution_warn_at = NULL, next_response_due = NULL, next_response_warn_at = NULL`)
	// 0 breached; 1 warned and due within the hour; 2 due in three hours;
	// 3 none running, assigned to the adviser; 4 open, breached, the
	// adviser's too.
	db.Exec(`UPDATE cases SET first_response_due = now() - interval '1 hour', first_response_warn_at = now() - interval '2 hours' WHERE id = ?`, id(0))
	db.Exec(`UPDATE cases SET first_response_due = now() + interval '30 minutes', first_response_warn_at = now() - interval '5 minutes' WHERE id = ?`, id(1))
	db.Exec(`UPDATE cases SET first_response_due = now() + interval '3 hours', first_response_warn_at = now() + interval '2 hours' WHERE id = ?`, id(2))
	db.Exec(`UPDATE cases SET assignee_id = ? WHERE id IN (?, ?)`, who.adviser.UserID, id(3), id(4))
	db.Exec(`UPDATE cases SET status = 'open', first_response_due = now() - interval '10 minutes' WHERE id = ?`, id(4))

	all := []string{cases.StatusNew, cases.StatusOpen, cases.StatusAwaitingResident}
	list := func(f cases.QueueFilter) (cases.QueuePage, []int64) {
		t.Helper()
		f.Statuses = all
		p, err := svc.Queue(ctx, who.supervisor, f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, r := range p.Rows {
			ids = append(ids, r.ID)
		}
		slices.Sort(ids)
		return p, ids
	}
	var team int64
	db.Raw(`SELECT id FROM teams WHERE slug = 'contact-centre'`).Scan(&team)
	live, err := reports.LiveFigures(ctx, db, []int64{team}, time.Now())
	if err != nil || len(live.Teams) != 1 {
		t.Fatalf("live figures: %v %+v", err, live.Teams)
	}
	figures := live.Teams[0]
	for _, tc := range []struct {
		state  string
		figure int64
		want   []int64
	}{
		{cases.CaseBreached, figures.Breached, []int64{id(0), id(4)}},
		{cases.CaseWarned, figures.Warned, []int64{id(1)}},
		{cases.CaseAtRisk, figures.AtRisk, []int64{id(1)}},
	} {
		p, got := list(cases.QueueFilter{SLA: tc.state})
		if !slices.Equal(got, tc.want) || int64(p.Total) != tc.figure || int64(p.Counts.SLA[tc.state]) != tc.figure {
			t.Errorf("%s: the queue lists %v (total %d, counted %d), want %v; the figure says %d",
				tc.state, got, p.Total, p.Counts.SLA[tc.state], tc.want, tc.figure)
		}
	}
	p, got := list(cases.QueueFilter{AssigneeID: who.adviser.UserID})
	var open int64 = -1
	for _, a := range figures.Advisers {
		if a.UserID == who.adviser.UserID {
			open = a.Open
		}
	}
	if !slices.Equal(got, []int64{id(3), id(4)}) || int64(p.Total) != open {
		t.Errorf("the adviser's cases: %v (total %d), the figure says %d", got, p.Total, open)
	}
	if _, got := list(cases.QueueFilter{AssigneeID: who.adviser.UserID, SLA: cases.CaseBreached}); !slices.Equal(got, []int64{id(4)}) {
		t.Errorf("the adviser's breached cases: %v", got)
	}
	if _, err := svc.Queue(ctx, who.supervisor, cases.QueueFilter{SLA: "late"}); !errors.Is(err, cases.ErrInvalidSLAState) {
		t.Errorf("an unknown SLA state: %v", err)
	}
	for _, f := range []cases.QueueFilter{{Measure: "replies"}, {Outcome: "met"}, {Measure: "first_response", Outcome: "late"},
		{Reopened: true}, {Measure: "first_response", Reopened: true}} {
		if _, err := svc.Queue(ctx, who.supervisor, f); !errors.Is(err, cases.ErrInvalidMeasure) {
			t.Errorf("the measure %+v: %v", f, err)
		}
	}
	// Another team's supervisor sees none of them, whatever the filter.
	p, err = svc.Queue(ctx, who.outsider, cases.QueueFilter{SLA: cases.CaseBreached, Statuses: all})
	if err != nil || p.Total != 0 {
		t.Errorf("outsider: %v total %d", err, p.Total)
	}
}

// The period, hour, day, account and service filters list the cases the
// response-times report counts (reports.Compute), resolved and closed
// ones too.
func TestQueuePeriodFiltersMatchTheReport(t *testing.T) {
	svc, db := newService(t)
	who := newActors(t, db)
	ctx := context.Background()
	var ins []channels.Inbound
	for i := range 4 {
		ins = append(ins, msg(channels.Private, fmt.Sprint("p", i), fmt.Sprint("message ", i), ""))
	}
	st := storeBatch(t, svc, db, ins...)
	id := func(i int) int64 { return st[i].CaseID }
	london, _ := time.LoadLocation("Europe/London")
	at := func(s string) time.Time {
		v, _ := time.ParseInLocation("2006-01-02 15:04", s, london)
		return v
	}
	// 0 Tuesday 09:15, resolved; 1 Tuesday 14:40, service "waste"; 2
	// Thursday 09:30, closed; 3 in October.
	for i, first := range []string{"2026-11-03 09:15", "2026-11-03 14:40", "2026-11-05 09:30", "2026-10-20 09:00"} {
		db.Exec(`UPDATE cases SET first_message_at = ? WHERE id = ?`, at(first), id(i))
	}
	db.Exec(`UPDATE cases SET status = 'resolved' WHERE id = ?`, id(0))
	db.Exec(`UPDATE cases SET status = 'closed' WHERE id = ?`, id(2))
	db.Exec(`UPDATE cases SET service_code = 'waste' WHERE id = ?`, id(1))
	var team, account int64
	db.Raw(`SELECT id FROM teams WHERE slug = 'contact-centre'`).Scan(&team)
	db.Raw(`SELECT channel_account_id FROM cases WHERE id = ?`, id(0)).Scan(&account)
	from, to := at("2026-11-01 00:00"), at("2026-12-01 00:00")
	figs, err := reports.Compute(ctx, db, reports.Filter{From: from, To: to, Teams: []int64{team}}, time.Now(), london)
	if err != nil {
		t.Fatal(err)
	}
	list := func(f cases.QueueFilter) []int64 {
		t.Helper()
		f.Statuses, f.From, f.To, f.Zone = cases.Statuses, from, to, london
		p, err := svc.Queue(ctx, who.supervisor, f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, r := range p.Rows {
			ids = append(ids, r.ID)
		}
		slices.Sort(ids)
		if len(ids) != p.Total {
			t.Errorf("%d rows, total %d", len(ids), p.Total)
		}
		return ids
	}
	n := func(v int) *int { return &v }
	for _, tc := range []struct {
		name   string
		f      cases.QueueFilter
		figure int64
		want   []int64
	}{
		{"the period", cases.QueueFilter{}, figs.Cases, []int64{id(0), id(1), id(2)}},
		{"09:00", cases.QueueFilter{Hour: n(9)}, figs.ByHour[9], []int64{id(0), id(2)}},
		{"14:00", cases.QueueFilter{Hour: n(14)}, figs.ByHour[14], []int64{id(1)}},
		{"Tuesday", cases.QueueFilter{Weekday: n(2)}, figs.ByWeekday[1], []int64{id(0), id(1)}},
		{"Tuesday 09:00", cases.QueueFilter{Weekday: n(2), Hour: n(9)}, 1, []int64{id(0)}},
		{"Thursday", cases.QueueFilter{Weekday: n(4)}, figs.ByWeekday[3], []int64{id(2)}},
		{"the account", cases.QueueFilter{AccountID: account}, figs.Cases, []int64{id(0), id(1), id(2)}},
		{"waste", cases.QueueFilter{Service: "waste"}, 1, []int64{id(1)}},
	} {
		if got := list(tc.f); !slices.Equal(got, tc.want) || int64(len(got)) != tc.figure {
			t.Errorf("%s: the queue lists %v, want %v; the report counts %d", tc.name, got, tc.want, tc.figure)
		}
	}
	if got := list(cases.QueueFilter{AccountID: account + 1000}); len(got) != 0 {
		t.Errorf("another account's cases: %v", got)
	}
	// Another team's supervisor sees none of them.
	p, err := svc.Queue(ctx, who.outsider, cases.QueueFilter{Statuses: cases.Statuses, From: from, To: to})
	if err != nil || p.Total != 0 {
		t.Errorf("outsider: %v total %d", err, p.Total)
	}
}
