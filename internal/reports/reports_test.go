package reports_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/metrics"
	"github.com/citizeninbox/inbox/internal/reports"
	"github.com/citizeninbox/inbox/internal/sla"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// london reads "2006-01-02 15:04" as London wall time (GMT in December).
func london(s string) time.Time {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	t, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		panic(err)
	}
	return t
}

func hours(h float64) time.Duration { return time.Duration(h * float64(time.Hour)) }

// fixture is a database and a case service whose SLA policy is, for every
// priority: first response 4 working hours, next response 2, resolution
// 16, on weekdays 09:00–17:00 in London closed on England's bank holidays
// (in December 2026: Friday 25th and Monday 28th, Boxing Day's substitute).
type fixture struct {
	t   *testing.T
	db  *gorm.DB
	svc *cases.Service
	// team and account of the fixture's cases.
	team, account, other int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, testenv.Database(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(db) })
	f := &fixture{t: t, db: db}
	db.Raw(`INSERT INTO teams (slug, name) VALUES ('contact-centre', 'Contact centre') RETURNING id`).Scan(&f.team)
	db.Raw(`INSERT INTO teams (slug, name) VALUES ('highways', 'Highways') RETURNING id`).Scan(&f.other)
	db.Raw(`INSERT INTO channel_accounts (slug, channel, name, team_id) VALUES ('council-x', 'x', 'Council', ?) RETURNING id`, f.team).Scan(&f.account)

	cals, err := sla.BuildCalendars([]sla.CalendarSpec{{Name: "office", TimeZone: "Europe/London", BankHolidays: sla.EnglandAndWales,
		Hours: map[string][]string{"monday": {"09:00-17:00"}, "tuesday": {"09:00-17:00"}, "wednesday": {"09:00-17:00"},
			"thursday": {"09:00-17:00"}, "friday": {"09:00-17:00"}}}})
	if err != nil {
		t.Fatal(err)
	}
	targets := sla.Targets{FirstResponse: "4 working hours", NextResponse: "2 working hours", Resolution: "16 working hours"}
	pol, err := sla.BuildPolicies(sla.PolicySpec{Level: sla.Level{Calendar: "office", Priorities: map[sla.Priority]sla.Targets{
		sla.Low: targets, sla.Normal: targets, sla.High: targets, sla.Urgent: targets}}}, cals, []string{"contact-centre", "highways"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = cases.New(db, bus.Names{}, metrics.New(), slog.New(slog.DiscardHandler), nil)
	f.svc.UseConfiguration(cases.Configuration{Policies: pol})
	return f
}

// kase is one fixture case: what it is, and its deadlines, worked out by
// hand on the policy above.
type kase struct {
	status                  string
	team                    int64
	first                   string // when the resident first wrote
	firstDue, resolutionDue string
	closedAt                string // for a case closed or resolved
}

func (f *fixture) add(k kase) int64 {
	f.t.Helper()
	var contact, identity, id int64
	if err := f.db.Raw(`INSERT INTO contacts DEFAULT VALUES RETURNING id`).Scan(&contact).Error; err != nil {
		f.t.Fatal(err)
	}
	if err := f.db.Raw(`INSERT INTO contact_identities (contact_id, channel, external_id) VALUES (?, 'x', ?) RETURNING id`,
		contact, fmt.Sprint("resident-", contact)).Scan(&identity).Error; err != nil {
		f.t.Fatal(err)
	}
	team := k.team
	if team == 0 {
		team = f.team
	}
	var closed any
	if k.closedAt != "" {
		closed = london(k.closedAt)
	}
	if err := f.db.Raw(`INSERT INTO cases (status, channel, channel_account_id, contact_id, contact_identity_id, team_id,
			first_message_at, last_message_at, first_response_due, resolution_started_at, resolution_due, resolved_at, closed_at)
		VALUES (?, 'x', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? = 'closed' THEN ?::timestamptz END) RETURNING id`,
		k.status, f.account, contact, identity, team, london(k.first), london(k.first), london(k.firstDue), london(k.first),
		london(k.resolutionDue), closed, k.status, closed).Scan(&id).Error; err != nil {
		f.t.Fatal(err)
	}
	return id
}

// respond records the council's reply at at as the case service does when
// the network accepts it: the response first, then the case's columns.
func (f *fixture) respond(id int64, at string) {
	f.t.Helper()
	t := london(at)
	err := store.Write(context.Background(), f.db, func(tx *gorm.DB) error {
		if err := f.svc.RecordResponse(tx, id, nil, t); err != nil {
			return err
		}
		return tx.Exec(`UPDATE cases SET first_response_at = coalesce(first_response_at, ?), last_response_at = ? WHERE id = ?`, t, t, id).Error
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// residentWrites starts the next-response clock at at, due at due.
func (f *fixture) residentWrites(id int64, at, due string) {
	f.t.Helper()
	if err := f.db.Exec(`UPDATE cases SET next_response_started_at = ?, next_response_due = ? WHERE id = ?`,
		london(at), london(due), id).Error; err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) pause(id int64, from, to string) {
	f.t.Helper()
	if err := f.db.Exec(`INSERT INTO case_pauses (case_id, started_at, ended_at) VALUES (?, ?, ?)`, id, london(from), london(to)).Error; err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) resolve(id int64, at string) {
	f.t.Helper()
	err := store.Write(context.Background(), f.db, func(tx *gorm.DB) error {
		return f.svc.RecordResolution(tx, id, nil, london(at))
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// reopen reopens a resolved case at at, its resolution clock started
// afresh and due at due.
func (f *fixture) reopen(id int64, at, due string) {
	f.t.Helper()
	if err := f.db.Exec(`UPDATE cases SET reopened_count = reopened_count + 1, resolution_started_at = ?, resolution_due = ? WHERE id = ?`,
		london(at), london(due), id).Error; err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) durations(table string, id int64) (working, calendar time.Duration) {
	f.t.Helper()
	var row struct{ WorkingMS, CalendarMS int64 }
	f.db.Raw(`SELECT working_ms, calendar_ms FROM `+table+` WHERE case_id = ? ORDER BY id DESC LIMIT 1`, id).Scan(&row)
	return time.Duration(row.WorkingMS) * time.Millisecond, time.Duration(row.CalendarMS) * time.Millisecond
}

// The figures of December 2026 on a fixture whose every answer was worked
// out by hand (the comments show the working).
func TestFiguresOfAHandWorkedMonth(t *testing.T) {
	f := newFixture(t)
	now := london("2026-12-30 12:00")

	// A: Monday 10:00, answered 11:30 (due 14:00): 1.5 h both ways.
	a := f.add(kase{status: "open", first: "2026-12-07 10:00", firstDue: "2026-12-07 14:00", resolutionDue: "2026-12-09 10:00"})
	f.respond(a, "2026-12-07 11:30")
	// A again: the resident writes at 16:30, answered Tuesday 09:30 (due
	// 10:30): 30 min on Monday and 30 on Tuesday, 17 h on the clock.
	f.residentWrites(a, "2026-12-07 16:30", "2026-12-08 10:30")
	f.respond(a, "2026-12-08 09:30")
	// B: Monday 16:00 (an evening), answered Tuesday 10:00 (due 12:00):
	// 1 h + 1 h working, 18 h on the clock.
	b := f.add(kase{status: "resolved", first: "2026-12-07 16:00", firstDue: "2026-12-08 12:00", resolutionDue: "2026-12-11 16:00",
		closedAt: "2026-12-11 12:00"})
	f.respond(b, "2026-12-08 10:00")
	// B awaited the resident from Tuesday 10:00 to Thursday 10:00 and was
	// resolved on Friday 12:00 (its deadline, 16 working hours plus the 16
	// it stood still, Friday 16:00): Mon 1 + Tue 8 + Wed 8 + Thu 8 + Fri 3
	// = 28 h, less the pause's Tue 7 + Wed 8 + Thu 1 = 16 h: 12 h; 92 h on
	// the clock.
	f.pause(b, "2026-12-08 10:00", "2026-12-10 10:00")
	f.resolve(b, "2026-12-11 12:00")
	// C: Friday 15:00, answered Monday 14:00 (due Monday 11:00: breached):
	// Fri 2 + Mon 5 = 7 h working over a weekend, 71 h on the clock. Its
	// resolution on Friday 18th 17:00 (due Tuesday 15th 15:00: breached):
	// Fri 2 + four days of 8 + Fri 8 = 42 h; 170 h on the clock.
	c := f.add(kase{status: "resolved", first: "2026-12-11 15:00", firstDue: "2026-12-14 11:00", resolutionDue: "2026-12-15 15:00",
		closedAt: "2026-12-18 17:00"})
	f.respond(c, "2026-12-14 14:00")
	f.resolve(c, "2026-12-18 17:00")
	// D: Christmas Eve 16:00, answered Tuesday 29th 09:30 (due 12:00):
	// Thu 1 h, Christmas Day, the weekend and the Boxing Day holiday
	// closed, Tue 0.5 h: 1.5 h working, 113.5 h on the clock.
	d := f.add(kase{status: "open", first: "2026-12-24 16:00", firstDue: "2026-12-29 12:00", resolutionDue: "2026-12-31 10:00"})
	f.respond(d, "2026-12-29 09:30")
	// E: Saturday 12:00, answered Monday 09:45 (due 13:00): 45 min working,
	// 45.75 h on the clock. Resolved Monday 10:00 (1 h working, 46 h), the
	// resident wrote again at 11:00 (reopened, due Wednesday 11:00), and it
	// was resolved again at 15:00 (4 h both ways).
	e := f.add(kase{status: "resolved", first: "2026-12-05 12:00", firstDue: "2026-12-07 13:00", resolutionDue: "2026-12-08 17:00",
		closedAt: "2026-12-07 15:00"})
	f.respond(e, "2026-12-07 09:45")
	f.resolve(e, "2026-12-07 10:00")
	f.reopen(e, "2026-12-07 11:00", "2026-12-09 11:00")
	f.resolve(e, "2026-12-07 15:00")
	// F: Wednesday 16th 09:00, never answered, due 13:00: breached.
	f.add(kase{status: "open", first: "2026-12-16 09:00", firstDue: "2026-12-16 13:00", resolutionDue: "2026-12-18 09:00"})
	// G: today 10:00, not answered yet, due 14:00: running.
	f.add(kase{status: "new", first: "2026-12-30 10:00", firstDue: "2026-12-30 14:00", resolutionDue: "2027-01-04 10:00"})
	// H: Tuesday 1st 09:00, closed at 09:30 unanswered ("sorted, thanks")
	// before its deadline: needed no response. Its resolution: 30 min.
	h := f.add(kase{status: "closed", first: "2026-12-01 09:00", firstDue: "2026-12-01 13:00", resolutionDue: "2026-12-02 17:00",
		closedAt: "2026-12-01 09:30"})
	f.resolve(h, "2026-12-01 09:30")
	// In another team, outside the month: not counted below.
	f.add(kase{status: "new", team: f.other, first: "2026-11-30 10:00", firstDue: "2026-11-30 14:00", resolutionDue: "2026-12-02 10:00"})

	// The durations written as each response and resolution happened.
	for _, tc := range []struct {
		name              string
		table             string
		id                int64
		working, calendar time.Duration
	}{
		{"A's next response", "case_responses", a, hours(1), hours(17)},
		{"B's first response across an evening", "case_responses", b, hours(2), hours(18)},
		{"C's first response across a weekend", "case_responses", c, hours(7), hours(71)},
		{"D's first response across Christmas", "case_responses", d, hours(1.5), hours(113.5)},
		{"E's first response on a Monday after a Saturday", "case_responses", e, hours(0.75), hours(45.75)},
		{"B's resolution less its pause", "case_resolutions", b, hours(12), hours(92)},
		{"C's resolution over a week", "case_resolutions", c, hours(42), hours(170)},
		{"E's second resolution", "case_resolutions", e, hours(4), hours(4)},
	} {
		if w, cal := f.durations(tc.table, tc.id); w != tc.working || cal != tc.calendar {
			t.Errorf("%s: %v working, %v on the clock; want %v and %v", tc.name, w, cal, tc.working, tc.calendar)
		}
	}

	month := reports.Filter{From: london("2026-12-01 00:00"), To: london("2027-01-01 00:00")}
	got, err := reports.Compute(context.Background(), f.db, month, now, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	// First responses A 1.5, B 2, C 7, D 1.5, E 0.75 h: sorted 0.75, 1.5,
	// 1.5, 2, 7; median rank ⌈2.5⌉ = 3, 90th ⌈4.5⌉ = 5. On the clock 1.5,
	// 18, 45.75, 71, 113.5.
	want := reports.Durations{Count: 5, Median: hours(1.5), P90: hours(7), Max: hours(7),
		CalendarMedian: hours(45.75), CalendarP90: hours(113.5), CalendarMax: hours(113.5)}
	if got.FirstResponse != want {
		t.Errorf("first response %+v, want %+v", got.FirstResponse, want)
	}
	if want := (reports.Durations{Count: 1, Median: hours(1), P90: hours(1), Max: hours(1),
		CalendarMedian: hours(17), CalendarP90: hours(17), CalendarMax: hours(17)}); got.NextResponse != want {
		t.Errorf("next response %+v, want %+v", got.NextResponse, want)
	}
	// Resolutions H 0.5, E 1 and 4, B 12, C 42 h: median rank 3, 90th 5.
	// On the clock 0.5, 4, 46, 92, 170.
	if want := (reports.Durations{Count: 5, Median: hours(4), P90: hours(42), Max: hours(42),
		CalendarMedian: hours(46), CalendarP90: hours(170), CalendarMax: hours(170)}); got.Resolution != want {
		t.Errorf("resolution %+v, want %+v", got.Resolution, want)
	}
	// First response: A, B, D, E met; C late and F unanswered past due
	// breached; G running; H needed none. Resolution: B, E twice, H met,
	// C breached; A, D, F and G still open.
	for target, want := range map[string]reports.Attainment{
		reports.FirstResponse: {Met: 4, Breached: 2, Running: 1},
		reports.NextResponse:  {Met: 1},
		reports.Resolution:    {Met: 4, Breached: 1, Running: 4},
	} {
		if got.Attainment[target] != want {
			t.Errorf("%s attainment %+v, want %+v", target, got.Attainment[target], want)
		}
	}
	if rate, ok := got.Attainment[reports.FirstResponse].Rate(); !ok || rate != 4.0/6 {
		t.Errorf("first-response attainment %v (%v), want 4/6", rate, ok)
	}
	// E's first resolution was reopened: 1 of 5.
	if rate, ok := got.ReopenRate(); got.Resolutions != 5 || got.Reopened != 1 || !ok || rate != 0.2 {
		t.Errorf("reopened %d of %d (%v), want 1 of 5", got.Reopened, got.Resolutions, rate)
	}
	// New cases by hour (GMT): 09 F H, 10 A G, 12 E, 15 C, 16 B D; by day
	// Mon A B, Tue H, Wed F G, Thu D, Fri C, Sat E.
	var hoursWant [24]int64
	hoursWant[9], hoursWant[10], hoursWant[12], hoursWant[15], hoursWant[16] = 2, 2, 1, 1, 2
	if got.Cases != 8 || got.ByHour != hoursWant || got.ByWeekday != [7]int64{2, 1, 2, 1, 1, 1, 0} {
		t.Errorf("%d cases, by hour %v, by day %v", got.Cases, got.ByHour, got.ByWeekday)
	}

	// The other team's November case only: nothing answered, one breached.
	nov := reports.Filter{From: london("2026-11-01 00:00"), To: london("2026-12-01 00:00"), Teams: []int64{f.other}}
	got, err = reports.Compute(context.Background(), f.db, nov, now, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if got.FirstResponse.Count != 0 || got.Attainment[reports.FirstResponse] != (reports.Attainment{Breached: 1}) || got.Cases != 1 {
		t.Errorf("November, highways: %+v", got)
	}
	// A filter that matches nothing: no figures, and no rate.
	none := month
	none.Channels = []string{"sms"}
	if got, err = reports.Compute(context.Background(), f.db, none, now, time.UTC); err != nil || got.Cases != 0 || got.FirstResponse.Count != 0 {
		t.Errorf("no SMS: %+v %v", got, err)
	}
	if _, ok := got.Attainment[reports.FirstResponse].Rate(); ok {
		t.Error("a rate without any response met or breached")
	}
	if _, err := reports.Compute(context.Background(), f.db, reports.Filter{From: month.To, To: month.From}, now, time.UTC); err == nil {
		t.Error("a period ending before it starts was computed")
	}
}

// The dashboard's live figures on cases in every state of their clocks.
func TestLiveFigures(t *testing.T) {
	f := newFixture(t)
	now := time.Now().UTC().Truncate(time.Second)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	in := func(d time.Duration) time.Time { return now.Add(d) }
	f.db.Exec(`UPDATE teams SET max_open_per_adviser = 5 WHERE id = ?`, f.team)
	var alex, bo int64
	f.db.Raw(`INSERT INTO users (email, name, role, last_seen_at) VALUES ('alex@example.gov.uk', 'Alex', 'adviser', ?) RETURNING id`, ago(30*time.Second)).Scan(&alex)
	f.db.Raw(`INSERT INTO users (email, name, role, last_seen_at) VALUES ('bo@example.gov.uk', 'Bo', 'adviser', ?) RETURNING id`, ago(10*time.Minute)).Scan(&bo)
	f.db.Exec(`INSERT INTO user_teams (user_id, team_id) VALUES (?, ?), (?, ?)`, alex, f.team, bo, f.team)

	type row map[string]any
	add := func(r row) int64 {
		t.Helper()
		id := f.add(kase{status: r["status"].(string), team: r["team"].(int64), first: "2026-12-01 09:00", firstDue: "2026-12-01 13:00",
			resolutionDue: "2026-12-03 09:00"})
		sets := []string{}
		args := []any{}
		for k, v := range r {
			if k == "status" || k == "team" {
				continue
			}
			sets = append(sets, k+" = ?")
			args = append(args, v)
		}
		if err := f.db.Exec(`UPDATE cases SET `+strings.Join(sets, ", ")+` WHERE id = ?`, append(args, id)...).Error; err != nil {
			t.Fatal(err)
		}
		return id
	}
	// 1: new, unanswered, past its first-response deadline.
	one := add(row{"status": "new", "team": f.team, "first_message_at": ago(5 * time.Hour), "first_response_due": ago(time.Hour),
		"first_response_warn_at": ago(2 * time.Hour), "resolution_due": in(48 * time.Hour), "resolution_warn_at": in(47 * time.Hour)})
	// 2: answered, resolution due in 30 minutes, warned 10 minutes ago; Alex's.
	add(row{"status": "open", "team": f.team, "channel": "whatsapp", "first_message_at": ago(3 * time.Hour), "first_response_at": ago(2 * time.Hour),
		"first_response_due": ago(time.Hour), "resolution_due": in(30 * time.Minute), "resolution_warn_at": ago(10 * time.Minute), "assignee_id": alex})
	// 3: awaiting the resident, its resolution clock paused.
	add(row{"status": "awaiting_resident", "team": f.team, "first_message_at": ago(9 * time.Hour), "first_response_at": ago(8 * time.Hour),
		"resolution_due": ago(time.Hour), "resolution_paused_at": ago(2 * time.Hour)})
	// 4: new, first response due in 3 hours; Alex's.
	add(row{"status": "new", "team": f.team, "first_message_at": ago(time.Hour), "first_response_due": in(3 * time.Hour),
		"first_response_warn_at": in(2 * time.Hour), "resolution_due": in(72 * time.Hour), "resolution_warn_at": in(71 * time.Hour), "assignee_id": alex})
	// 5: closed.
	add(row{"status": "closed", "team": f.team, "first_message_at": ago(30 * time.Hour), "first_response_at": ago(29 * time.Hour)})
	// 6: highways, the resident wrote again two hours ago, next response due in 10 minutes.
	six := add(row{"status": "open", "team": f.other, "first_message_at": ago(20 * time.Hour), "first_response_at": ago(19 * time.Hour),
		"last_response_at": ago(19 * time.Hour), "next_response_started_at": ago(2 * time.Hour), "next_response_due": in(10 * time.Minute),
		"next_response_warn_at": ago(5 * time.Minute), "resolution_due": in(24 * time.Hour), "resolution_warn_at": in(23 * time.Hour)})
	f.db.Exec(`UPDATE channel_accounts SET credential_refused_at = ?, credential_reason = 'Unauthorized' WHERE id = ?`, ago(time.Minute), f.account)

	live, err := reports.LiveFigures(context.Background(), f.db, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(live.Teams) != 2 || live.Teams[0].Slug != "contact-centre" || live.Teams[1].Slug != "highways" {
		t.Fatalf("teams %+v", live.Teams)
	}
	cc, hw := live.Teams[0], live.Teams[1]
	if cc.Cases != 4 || cc.ByStatus["new"] != 2 || cc.ByStatus["open"] != 1 || cc.ByStatus["awaiting_resident"] != 1 ||
		cc.ByChannel["x"] != 3 || cc.ByChannel["whatsapp"] != 1 {
		t.Errorf("contact centre backlog: %d cases, %v, %v", cc.Cases, cc.ByStatus, cc.ByChannel)
	}
	if cc.Breached != 1 || cc.Warned != 1 || cc.AtRisk != 1 {
		t.Errorf("contact centre: %d breached, %d warned, %d at risk; want 1, 1, 1", cc.Breached, cc.Warned, cc.AtRisk)
	}
	if cc.Oldest == nil || cc.Oldest.ID != one || !cc.Oldest.Since.Equal(ago(5*time.Hour)) {
		t.Errorf("contact centre's oldest waiting %+v, want case %d since 5 hours ago", cc.Oldest, one)
	}
	five := int64(5)
	if want := []reports.AdviserLoad{{UserID: alex, Name: "Alex", Open: 2, Cap: &five, Online: true}, {UserID: bo, Name: "Bo", Open: 0, Cap: &five}}; len(cc.Advisers) != 2 || cc.Advisers[0].UserID != alex || cc.Advisers[0].Open != 2 || *cc.Advisers[0].Cap != 5 || !cc.Advisers[0].Online ||
		cc.Advisers[1].UserID != bo || cc.Advisers[1].Online || cc.Online != 1 {
		t.Errorf("advisers %+v (online %d), want %+v", cc.Advisers, cc.Online, want)
	}
	if hw.Cases != 1 || hw.Breached != 0 || hw.Warned != 1 || hw.AtRisk != 1 || hw.Oldest == nil || hw.Oldest.ID != six ||
		!hw.Oldest.Since.Equal(ago(2*time.Hour)) || len(hw.Advisers) != 0 {
		t.Errorf("highways %+v", hw)
	}
	if len(live.Unhealthy) != 1 || live.Unhealthy[0].Slug != "council-x" || live.Unhealthy[0].Reason != "Unauthorized" {
		t.Errorf("unhealthy %+v", live.Unhealthy)
	}

	// One team only.
	live, err = reports.LiveFigures(context.Background(), f.db, []int64{f.other}, now)
	if err != nil || len(live.Teams) != 1 || live.Teams[0].TeamID != f.other {
		t.Errorf("highways only: %+v %v", live.Teams, err)
	}
}

// The hand-worked month exported: one row per case with its figures, and
// its messages with or without their text, formula-like cells defused.
func TestExports(t *testing.T) {
	f := newFixture(t)
	now := london("2026-12-30 12:00")
	c := f.add(kase{status: "resolved", first: "2026-12-11 15:00", firstDue: "2026-12-14 11:00", resolutionDue: "2026-12-15 15:00",
		closedAt: "2026-12-18 17:00"})
	f.respond(c, "2026-12-14 14:00")
	f.resolve(c, "2026-12-18 17:00")
	g := f.add(kase{status: "new", first: "2026-12-30 10:00", firstDue: "2026-12-30 14:00", resolutionDue: "2027-01-04 10:00"})
	var ref string
	f.db.Raw(`SELECT reference FROM cases WHERE id = ?`, c).Scan(&ref)
	for _, body := range []string{"=HYPERLINK(\"http://evil.example\")", "-2+3", "Bins, \"again\"\nsecond line"} {
		if err := f.db.Exec(`INSERT INTO messages (case_id, channel_account_id, direction, visibility, body, dedupe_key, delivery_status)
			VALUES (?, ?, 'inbound', 'private', ?, ?, 'received')`, g, f.account, body, "k"+body).Error; err != nil {
			t.Fatal(err)
		}
	}
	month := reports.Filter{From: london("2026-12-01 00:00"), To: london("2027-01-01 00:00")}

	var out strings.Builder
	n, err := reports.ExportCases(context.Background(), f.db, month, reports.CSV, now, &out)
	if err != nil || n != 2 {
		t.Fatalf("exported %d cases: %v", n, err)
	}
	records, err := csv.NewReader(strings.NewReader(out.String())).ReadAll()
	if err != nil || len(records) != 3 {
		t.Fatalf("CSV of %d records (%v):\n%s", len(records), err, out.String())
	}
	row := map[string]string{}
	for i, col := range records[0] {
		row[col] = records[1][i]
	}
	for col, want := range map[string]string{
		"reference": ref, "status": "resolved", "team": "contact-centre", "channel": "x", "channel_account": "council-x",
		"first_message_at": "2026-12-11T15:00:00Z", "first_response_at": "2026-12-14T14:00:00Z", "first_response_outcome": "breached",
		"first_response_working_seconds": "25200", "first_response_calendar_seconds": "255600",
		"resolution_outcome": "breached", "resolution_working_seconds": "151200", "resolution_calendar_seconds": "612000",
		"service": "", "reopened_count": "0",
	} {
		if row[col] != want {
			t.Errorf("%s = %q, want %q", col, row[col], want)
		}
	}
	if got := records[2][slices.Index(records[0], "first_response_outcome")]; got != "running" {
		t.Errorf("G's first response %q, want running", got)
	}

	out.Reset()
	if n, err = reports.ExportMessages(context.Background(), f.db, month, reports.CSV, false, &out); err != nil || n != 3 {
		t.Fatalf("exported %d messages: %v", n, err)
	}
	if strings.Contains(out.String(), "HYPERLINK") || strings.Contains(records[0][len(records[0])-1], "text") {
		t.Errorf("message text exported without being asked for:\n%s", out.String())
	}
	out.Reset()
	if _, err = reports.ExportMessages(context.Background(), f.db, month, reports.CSV, true, &out); err != nil {
		t.Fatal(err)
	}
	records, err = csv.NewReader(strings.NewReader(out.String())).ReadAll()
	if err != nil || len(records) != 4 || records[0][len(records[0])-1] != "text" {
		t.Fatalf("messages CSV (%v):\n%s", err, out.String())
	}
	texts := []string{records[1][len(records[0])-1], records[2][len(records[0])-1], records[3][len(records[0])-1]}
	if want := []string{"'=HYPERLINK(\"http://evil.example\")", "'-2+3", "Bins, \"again\"\nsecond line"}; !slices.Equal(texts, want) {
		t.Errorf("texts %q, want %q", texts, want)
	}

	out.Reset()
	if n, err = reports.ExportCases(context.Background(), f.db, month, reports.JSONL, now, &out); err != nil || n != 2 {
		t.Fatalf("JSON lines: %d, %v", n, err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || len(lines) != 2 {
		t.Fatalf("JSON lines %q: %v", lines, err)
	}
	if first["reference"] != ref || first["first_response_working_seconds"] != 25200.0 || first["service"] != nil {
		t.Errorf("first line %v", first)
	}
	if _, err := reports.ExportCases(context.Background(), f.db, month, "xlsx", now, &out); err == nil {
		t.Error("an unknown format was exported")
	}
}

func TestSafeCell(t *testing.T) {
	for in, want := range map[string]string{
		"=1+1": "'=1+1", "+44 7700 900123": "'+44 7700 900123", "-5": "'-5", "@SUM(A1)": "'@SUM(A1)",
		"\tx": "'\tx", "\rx": "'\rx", "bins": "bins", "": "", "a=b": "a=b",
	} {
		if got := reports.SafeCell(in); got != want {
			t.Errorf("SafeCell(%q) = %q, want %q", in, got, want)
		}
	}
}
