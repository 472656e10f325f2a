// Package sla computes the deadlines of cases: business calendars (weekly
// open hours, a time zone, bank holidays and closure days), targets such as
// "8 working hours", "10 working days" or "1 hour 24/7", and the policies
// that give each team, service and priority its targets.
//
// Everything here is pure arithmetic on instants: nothing reads the clock or
// stores anything, so two server processes given the same configuration
// compute the same deadlines. Working time is counted in the calendar's own
// time zone, so open hours keep their wall-clock times across daylight-saving
// changes while durations stay exact.
//
// The rules of the arithmetic:
//
//   - A shift includes its opening minute and excludes its closing minute:
//     on 08:30–17:00, 17:00 is closed.
//   - Working minutes and hours count open time. A clock started out of
//     hours starts at the next opening, and time that runs out exactly at a
//     closing time is due at that closing time.
//   - N working days end at the closing time of the Nth working day after
//     the day of receipt, as statutory working days are counted. The day of
//     receipt is the day of the next opening: a message received before
//     closing on a working day is received that day; one received at or
//     after closing, at a weekend or on a holiday is received on the next
//     working day, which is then day 0.
//   - Calendar time ("24 hours", "1 hour 24/7") is elapsed time.
//   - A warning falls the policy's warn_before ahead of a deadline, counted
//     the way the target is: working time back from the deadline for a
//     working-time target, elapsed time otherwise.
//   - A paused clock keeps the working (or elapsed) time it had left and
//     spends it from the resumption on, so the paused time never counts.
package sla

import (
	"iter"
	"slices"
	"time"

	// Deadlines must not depend on the host's zoneinfo: the time zone database
	// is embedded as a fallback.
	_ "time/tzdata"
)

// AlwaysOpen names the calendar that is always present and always open: its
// working time is calendar time.
const AlwaysOpen = "24/7"

// DefaultTimeZone is the time zone of a calendar whose spec names none.
const DefaultTimeZone = "Europe/London"

// Calendar is a business calendar: weekly open hours (a day may have several
// shifts, such as 08:30–12:30 and 13:30–17:00), a time zone, and closed days
// (bank holidays and closures). An instant is open when it falls in a shift
// of a day that is not closed; a shift includes its opening minute and
// excludes its closing minute, so 17:00 on a 08:30–17:00 day is closed.
//
// Calendars are built by [BuildCalendars] and are safe for concurrent use.
// A nil Calendar is always open in UTC.
type Calendar struct {
	name    string
	loc     *time.Location
	limited bool                 // false: open at every instant
	week    [7][]shift           // by time.Weekday, sorted, not overlapping
	closed  map[civilDate]string // closed day → why (holiday name or "closure")
}

// shift is a daily opening in minutes after local midnight; to may be 1440.
type shift struct{ from, to int }

// span is a shift on one day, as instants: [start, end).
type span struct{ start, end time.Time }

// Name returns the calendar's name.
func (c *Calendar) Name() string {
	if c == nil {
		return AlwaysOpen
	}
	return c.name
}

// Location returns the time zone the calendar's hours are in.
func (c *Calendar) Location() *time.Location {
	if c == nil || c.loc == nil {
		return time.UTC
	}
	return c.loc
}

func (c *Calendar) alwaysOpen() bool { return c == nil || !c.limited }

// IsOpen reports whether t falls inside open hours on a day that is not
// closed. A shift's closing minute is closed.
func (c *Calendar) IsOpen(t time.Time) bool {
	if c.alwaysOpen() {
		return true
	}
	for _, s := range c.spans(c.dateOf(t)) {
		if !t.Before(s.start) && t.Before(s.end) {
			return true
		}
	}
	return false
}

// Closed reports whether the day of t (in the calendar's time zone) is a
// bank holiday or a closure day, and why.
func (c *Calendar) Closed(t time.Time) (reason string, closed bool) {
	if c.alwaysOpen() {
		return "", false
	}
	reason, closed = c.closed[c.dateOf(t)]
	return reason, closed
}

// NextOpen returns t itself when the calendar is open at t, and otherwise
// the next opening after t.
func (c *Calendar) NextOpen(t time.Time) time.Time {
	if c.alwaysOpen() {
		return t
	}
	for s := range c.forward(t) {
		return s.start
	}
	panic("sla: calendar never opens") // BuildCalendars refuses such calendars
}

// AddWorking returns the instant at which d of open time has passed since t.
// When the time runs out exactly at a closing time, the result is that
// closing time (16:00 plus one working hour is 17:00 the same day, not the
// next opening); AddWorking(t, 0) is NextOpen(t). A negative d counts back
// from t, and when it runs out exactly at an opening time, the result is that
// opening time.
func (c *Calendar) AddWorking(t time.Time, d time.Duration) time.Time {
	if c.alwaysOpen() {
		return t.Add(d)
	}
	if d < 0 {
		d = -d
		for s := range c.backward(t) {
			avail := s.end.Sub(s.start)
			if d <= avail {
				return s.end.Add(-d)
			}
			d -= avail
		}
		panic("sla: calendar never opens")
	}
	for s := range c.forward(t) {
		avail := s.end.Sub(s.start)
		if d <= avail {
			return s.start.Add(d)
		}
		d -= avail
	}
	panic("sla: calendar never opens")
}

// WorkingBetween returns the open time in [a, b); it is negative when b is
// before a.
func (c *Calendar) WorkingBetween(a, b time.Time) time.Duration {
	if b.Before(a) {
		return -c.WorkingBetween(b, a)
	}
	if c.alwaysOpen() {
		return b.Sub(a)
	}
	var total time.Duration
	for s := range c.forward(a) {
		if !s.start.Before(b) {
			break
		}
		total += minTime(s.end, b).Sub(s.start)
	}
	return total
}

// AddWorkingDays returns the closing time of the nth working day after the
// day of receipt of a message received at t, as statutory working days are
// counted. The day of receipt is the day of NextOpen(t): a message received
// in or before the day's open hours is received that day, one received after
// closing, on a closed day or at the closing minute is received on the next
// working day. A working day is a day with open hours that is not closed;
// its closing time is the end of its last shift. For n ≤ 0 the result is the
// closing time of the day of receipt. On an always-open calendar a day closes
// at the following midnight.
func (c *Calendar) AddWorkingDays(t time.Time, n int) time.Time {
	d := c.dateOf(c.NextOpen(t))
	for i := 0; i < n; {
		d = d.next()
		if len(c.spans(d)) > 0 {
			i++
		}
	}
	s := c.spans(d)
	return s[len(s)-1].end
}

// forward yields the open spans from t on, in order, the first one clipped
// to start at t.
func (c *Calendar) forward(t time.Time) iter.Seq[span] {
	return func(yield func(span) bool) {
		for d := c.dateOf(t); ; d = d.next() {
			for _, s := range c.spans(d) {
				if !s.end.After(t) {
					continue
				}
				if s.start.Before(t) {
					s.start = t
				}
				if !yield(s) {
					return
				}
			}
		}
	}
}

// backward yields the open spans before t, latest first, the first one
// clipped to end at t.
func (c *Calendar) backward(t time.Time) iter.Seq[span] {
	return func(yield func(span) bool) {
		for d := c.dateOf(t); ; d = d.prev() {
			spans := c.spans(d)
			for _, s := range slices.Backward(spans) {
				if !s.start.Before(t) {
					continue
				}
				if s.end.After(t) {
					s.end = t
				}
				if !yield(s) {
					return
				}
			}
		}
	}
}

// spans returns the open spans of a local day, as instants.
func (c *Calendar) spans(d civilDate) []span {
	if c.alwaysOpen() {
		return []span{{d.at(0, c.Location()), d.next().at(0, c.Location())}}
	}
	if _, closed := c.closed[d]; closed {
		return nil
	}
	shifts := c.week[d.weekday()]
	out := make([]span, 0, len(shifts))
	for _, sh := range shifts {
		// Shifts touching a change of clocks may come out shorter, even
		// empty, but never reversed.
		s := span{d.at(sh.from, c.loc), d.at(sh.to, c.loc)}
		if s.end.After(s.start) {
			out = append(out, s)
		}
	}
	return out
}

func (c *Calendar) dateOf(t time.Time) civilDate {
	y, m, d := t.In(c.Location()).Date()
	return civilDate{y, m, d}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// civilDate is a day on the wall calendar, without a time zone.
type civilDate struct {
	year  int
	month time.Month
	day   int
}

func parseDate(s string) (civilDate, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return civilDate{}, err
	}
	y, m, d := t.Date()
	return civilDate{y, m, d}, nil
}

func (d civilDate) noon() time.Time { return time.Date(d.year, d.month, d.day, 12, 0, 0, 0, time.UTC) }

func (d civilDate) next() civilDate { return dateOfUTC(d.noon().AddDate(0, 0, 1)) }
func (d civilDate) prev() civilDate { return dateOfUTC(d.noon().AddDate(0, 0, -1)) }

func (d civilDate) weekday() time.Weekday { return d.noon().Weekday() }

// at returns the instant at which clocks in loc show a wall-clock time, in
// minutes after midnight (1440 is the next midnight), on the day. A time the
// clocks skip when they go forward maps to the instant they change; a time
// they show twice when they go back maps to its first showing.
func (d civilDate) at(minutes int, loc *time.Location) time.Time {
	wall := time.Date(d.year, d.month, d.day, 0, minutes, 0, 0, time.UTC)
	// The offsets in force a day either side; they differ only across a
	// change of clocks, and each gives one reading of the wall time.
	var readings []time.Time
	for _, probe := range []time.Time{wall.Add(-24 * time.Hour), wall.Add(24 * time.Hour)} {
		_, offset := probe.In(loc).Zone()
		t := wall.Add(-time.Duration(offset) * time.Second).In(loc)
		if _, actual := t.Zone(); actual == offset {
			readings = append(readings, t)
		}
	}
	switch len(readings) {
	case 0:
		// In a gap: the reading by the earlier offset lies after the
		// change, which is where its zone starts.
		_, offset := wall.Add(-24 * time.Hour).In(loc).Zone()
		start, _ := wall.Add(-time.Duration(offset) * time.Second).In(loc).ZoneBounds()
		return start
	case 1:
		return readings[0]
	default:
		return minTime(readings[0], readings[1])
	}
}

func (d civilDate) String() string { return d.noon().Format(time.DateOnly) }

func dateOfUTC(t time.Time) civilDate {
	y, m, d := t.Date()
	return civilDate{y, m, d}
}
