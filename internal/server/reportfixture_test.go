package server_test

import (
	"testing"
	"time"

	"gorm.io/gorm"
)

// reportFixture is what the supervisors' pages are tested on: a
// supervisor, an admin and an adviser who may sign in; a team whose name
// needs escaping; and four cases whose clocks are set by hand, three of
// November 2026 (one moved to highways) and one of October.
type reportFixture struct {
	t                        *testing.T
	h                        *harness
	london                   *time.Location
	nov, waiting, moved, oct int64
}

func newReportFixture(t *testing.T, h *harness) *reportFixture {
	t.Helper()
	h.webUser("sam@example.gov.uk", "supervisor", "contact-centre")
	h.webUser("root@example.gov.uk", "admin")
	h.webUser("ada@example.gov.uk", "adviser", "contact-centre")
	h.direct.Exec(`UPDATE teams SET name = 'Highways <b>&</b> "roads"' WHERE slug = 'highways'`)
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	f := &reportFixture{t: t, h: h, london: london}
	_, f.nov = h.mentionCase(alice, "@ExampleCouncil the streetlight on Elm Road is out")
	_, f.waiting = h.dmCase(bob, "When is the bulky waste collection?")
	_, f.moved = h.mentionCase(carol, "@ExampleCouncil pothole on Mill Lane")
	_, f.oct = h.dmCase(resident{ID: "2200000000000000009", Handle: "dan_resident", Name: "Dan Example"}, "Bins not collected")
	for id, first := range map[int64]string{f.nov: "2026-11-03 09:15", f.waiting: "2026-11-03 14:40", f.moved: "2026-11-05 09:30", f.oct: "2026-10-20 10:00"} {
		h.direct.Exec(`UPDATE cases SET first_message_at = ?, first_response_due = ?, resolution_started_at = ?,
			next_response_started_at = NULL, next_response_due = NULL WHERE id = ?`, f.at(first), f.at(first).Add(4*time.Hour), f.at(first), id)
	}
	h.direct.Exec(`UPDATE cases SET team_id = (SELECT id FROM teams WHERE slug = 'highways') WHERE id = ?`, f.moved)
	return f
}

// at reads "2006-01-02 15:04" as London wall time.
func (f *reportFixture) at(s string) time.Time {
	v, err := time.ParseInLocation("2006-01-02 15:04", s, f.london)
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// respond records the council's reply at when as the sender does: the
// response first, then the case's columns.
func (f *reportFixture) respond(id int64, when time.Time) {
	if err := f.h.direct.Transaction(func(tx *gorm.DB) error {
		if err := f.h.srv.Cases.RecordResponse(tx, id, nil, when); err != nil {
			return err
		}
		return tx.Exec(`UPDATE cases SET first_response_at = ?, last_response_at = ? WHERE id = ?`, when, when, id).Error
	}); err != nil {
		f.t.Fatal(err)
	}
}
