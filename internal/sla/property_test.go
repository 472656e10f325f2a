package sla

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The properties are checked on instants in whole minutes from 2024 to
// 2028, the years the bank holiday data covers, on every test calendar.
var (
	propertyFrom    = lon("2024-01-01 00:00")
	propertyMinutes = int64(5 * 366 * 24 * 60)
	propertyCals    = []string{"council-hours", "split", "scotland", "ni", "closing-eve", "all-days", "weekend-nights", "sunday-small-hours", AlwaysOpen}
)

func minuteAt(m int64) time.Time {
	return propertyFrom.Add(time.Duration(m%propertyMinutes) * time.Minute)
}

// checkRoundTrip: counting the working time from t to an open u and adding
// it to t lands on u. When u is the first minute of a shift, the time runs
// out at the previous closing, which is the same working moment: no working
// time lies between it and u.
func checkRoundTrip(t *testing.T, c *Calendar, a, b time.Time) {
	if b.Before(a) {
		a, b = b, a
	}
	d := c.WorkingBetween(a, b)
	got := c.AddWorking(a, d)
	switch {
	case !c.IsOpen(b):
		// Only the working time is determined.
		if w := c.WorkingBetween(a, got); w != d {
			t.Fatalf("%s: WorkingBetween(%s, AddWorking(%s, %s) = %s) = %s", c.Name(), a, a, d, got, w)
		}
	case got.Equal(b):
	case d > 0 && !c.IsOpen(b.Add(-time.Nanosecond)) && !got.After(b) && c.WorkingBetween(got, b) == 0:
	default:
		t.Fatalf("%s: AddWorking(%s, WorkingBetween(%s, %s) = %s) = %s, want %s", c.Name(), a, a, b, d, got, b)
	}
	if back := c.AddWorking(b, -c.WorkingBetween(a, b)); c.IsOpen(a) && c.IsOpen(a.Add(-time.Nanosecond)) && !back.Equal(a) {
		t.Fatalf("%s: AddWorking(%s, -%s) = %s, want %s", c.Name(), b, d, back, a)
	}
}

// checkMonotonic: a later start never gives an earlier deadline.
func checkMonotonic(t *testing.T, p *Policies, a, b time.Time) {
	if b.Before(a) {
		a, b = b, a
	}
	for _, pr := range Priorities() {
		c := p.For("waste", "", pr)
		for _, r := range []*Rule{c.FirstResponse, c.Resolution} {
			if da, db := r.Due(a), r.Due(b); db.Before(da) {
				t.Fatalf("%s %s: Due(%s) = %s after Due(%s) = %s", pr, r.Target(), a, da, b, db)
			}
			if w := r.WarnAt(r.Due(a)); w.After(r.Due(a)) {
				t.Fatalf("%s %s: warning %s after the deadline %s", pr, r.Target(), w, r.Due(a))
			}
		}
	}
}

func TestProperties(t *testing.T) {
	cals := testCalendars(t)
	p := buildPolicies(t, councilSpec())
	rng := rand.New(rand.NewPCG(7, 2026))
	for range 1000 {
		a := minuteAt(rng.Int64N(propertyMinutes))
		// Mostly within a fortnight, sometimes up to a quarter apart.
		span := int64(14 * 24 * 60)
		if rng.IntN(4) == 0 {
			span = 92 * 24 * 60
		}
		b := a.Add(time.Duration(rng.Int64N(span)) * time.Minute)
		for _, name := range propertyCals {
			checkRoundTrip(t, cals[name], a, b)
		}
		checkMonotonic(t, p, a, b)
	}
}

func FuzzProperties(f *testing.F) {
	// The clock changes of 2026, Christmas and a lunch break.
	for _, s := range [][2]string{
		{"2026-03-27 16:00", "2026-03-30 09:00"},
		{"2026-10-24 05:00", "2026-10-25 01:30"},
		{"2026-12-24 16:59", "2026-12-29 08:30"},
		{"2026-03-02 12:30", "2026-03-02 13:30"},
	} {
		f.Add(int64(lon(s[0]).Sub(propertyFrom)/time.Minute), int64(lon(s[1]).Sub(propertyFrom)/time.Minute), uint8(0))
	}
	cals := testCalendars(f)
	p := buildPolicies(f, councilSpec())
	f.Fuzz(func(t *testing.T, am, bm int64, cal uint8) {
		if am < 0 || bm < 0 {
			return
		}
		a, b := minuteAt(am), minuteAt(bm)
		checkRoundTrip(t, cals[propertyCals[int(cal)%len(propertyCals)]], a, b)
		checkMonotonic(t, p, a, b)
	})
}
