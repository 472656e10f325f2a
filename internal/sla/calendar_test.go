package sla

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var weekdayNames = []string{"monday", "tuesday", "wednesday", "thursday", "friday"}

func weekdaysOf(shifts ...string) map[string][]string {
	h := map[string][]string{}
	for _, d := range weekdayNames {
		h[d] = shifts
	}
	return h
}

// testSpecs are the calendars the tests use.
var testSpecs = []CalendarSpec{
	{Name: "council-hours", Hours: weekdaysOf("08:30-17:00"), BankHolidays: EnglandAndWales},
	{Name: "split", Hours: weekdaysOf("08:30-12:30", "13:30-17:00"), BankHolidays: EnglandAndWales},
	{Name: "scotland", Hours: weekdaysOf("09:00-17:00"), BankHolidays: Scotland},
	{Name: "ni", Hours: weekdaysOf("09:00-17:00"), BankHolidays: NorthernIreland},
	{Name: "closing-eve", Hours: weekdaysOf("08:30-17:00"), BankHolidays: EnglandAndWales, Closures: []string{"2026-12-24"}},
	// Open round the clock in London on paper: each day is 00:00–24:00 wall
	// time, so it is 23 or 25 hours long on a clock change.
	{Name: "all-days", TimeZone: "Europe/London", Hours: map[string][]string{
		"monday": {"00:00-24:00"}, "tuesday": {"00:00-24:00"}, "wednesday": {"00:00-24:00"},
		"thursday": {"00:00-24:00"}, "friday": {"00:00-24:00"}, "saturday": {"00:00-24:00"}, "sunday": {"00:00-24:00"},
	}},
	// Weekend nights straddle the clock changes, which happen at 01:00 UTC
	// on a Sunday.
	{Name: "weekend-nights", Hours: map[string][]string{"saturday": {"00:00-06:00"}, "sunday": {"00:00-06:00"}}},
	// A shift opening at a wall time the clocks skip in March and show
	// twice in October.
	{Name: "sunday-small-hours", Hours: map[string][]string{"sunday": {"01:30-03:00"}}},
}

func testCalendars(t testing.TB) Calendars {
	t.Helper()
	cals, err := BuildCalendars(testSpecs)
	if err != nil {
		t.Fatal(err)
	}
	return cals
}

var london = func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return loc
}()

// lon reads "2006-01-02 15:04" as London wall time.
func lon(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, london)
	if err != nil {
		panic(err)
	}
	return t
}

// utc reads "2006-01-02 15:04" as UTC.
func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestIsOpen(t *testing.T) {
	cals := testCalendars(t)
	tests := []struct {
		name, cal string
		at        time.Time
		want      bool
	}{
		{"a minute before opening", "council-hours", lon("2026-03-02 08:29"), false},
		{"opening minute", "council-hours", lon("2026-03-02 08:30"), true},
		{"last open minute", "council-hours", lon("2026-03-02 16:59"), true},
		{"closing minute", "council-hours", lon("2026-03-02 17:00"), false},
		{"closing minute less a nanosecond", "council-hours", lon("2026-03-02 17:00").Add(-time.Nanosecond), true},
		{"saturday", "council-hours", lon("2026-03-07 10:00"), false},
		{"good friday", "council-hours", lon("2026-04-03 10:00"), false},
		{"boxing day substitute 2026", "council-hours", lon("2026-12-28 10:00"), false},
		{"admin closure", "closing-eve", lon("2026-12-24 10:00"), false},
		{"no closure in the other calendar", "council-hours", lon("2026-12-24 10:00"), true},
		{"lunch break starts", "split", lon("2026-03-02 12:30"), false},
		{"afternoon shift opens", "split", lon("2026-03-02 13:30"), true},
		{"2 january in scotland", "scotland", lon("2026-01-02 10:00"), false},
		{"2 january in england", "council-hours", lon("2026-01-02 10:00"), true},
		{"st patrick's day in northern ireland", "ni", lon("2026-03-17 10:00"), false},
		{"st patrick's day in scotland", "scotland", lon("2026-03-17 10:00"), true},
		{"easter monday in scotland", "scotland", lon("2026-04-06 10:00"), true},
		{"st andrew's day in scotland", "scotland", lon("2026-11-30 10:00"), false},
		{"given in another zone", "council-hours", time.Date(2026, 7, 1, 9, 0, 0, 0, time.FixedZone("CEST", 2*3600)), false},
		{"summer time opening given in UTC", "council-hours", utc("2026-07-01 07:30"), true},
		{"24/7 at night on christmas", AlwaysOpen, lon("2026-12-25 03:00"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cals[tc.cal].IsOpen(tc.at); got != tc.want {
				t.Errorf("IsOpen(%s) on %s = %v, want %v", tc.at, tc.cal, got, tc.want)
			}
		})
	}
}

func TestNextOpen(t *testing.T) {
	cals := testCalendars(t)
	tests := []struct {
		name, cal string
		at, want  time.Time
	}{
		{"open already", "council-hours", lon("2026-03-02 10:00"), lon("2026-03-02 10:00")},
		{"before opening", "council-hours", lon("2026-03-02 07:00"), lon("2026-03-02 08:30")},
		{"closing minute", "council-hours", lon("2026-03-02 17:00"), lon("2026-03-03 08:30")},
		{"friday evening", "council-hours", lon("2026-03-06 19:00"), lon("2026-03-09 08:30")},
		{"lunch", "split", lon("2026-03-02 12:45"), lon("2026-03-02 13:30")},
		{"christmas eve evening 2026", "council-hours", lon("2026-12-24 17:00"), lon("2026-12-29 08:30")},
		{"christmas eve evening 2027", "council-hours", lon("2027-12-24 17:00"), lon("2027-12-29 08:30")},
		{"new year's eve 2026 in scotland", "scotland", lon("2026-12-31 17:00"), lon("2027-01-05 09:00")},
		{"new year's eve 2026 in england", "council-hours", lon("2026-12-31 17:00"), lon("2027-01-04 08:30")},
		{"new year's eve 2026 in northern ireland", "ni", lon("2026-12-31 17:00"), lon("2027-01-04 09:00")},
		{"boyne substitute 2026", "ni", lon("2026-07-10 17:00"), lon("2026-07-14 09:00")},
		{"into summer time", "council-hours", lon("2026-03-27 17:00"), utc("2026-03-30 07:30")},
		{"into winter time", "council-hours", lon("2026-10-23 17:00"), utc("2026-10-26 08:30")},
		{"24/7", AlwaysOpen, lon("2026-12-25 03:00"), lon("2026-12-25 03:00")},
		{"opening skipped by the march change opens at the change", "sunday-small-hours", lon("2026-03-28 12:00"), utc("2026-03-29 01:00")},
		{"opening shown twice in october opens at the first showing", "sunday-small-hours", lon("2026-10-24 12:00"), utc("2026-10-25 00:30")},
		{"an ordinary sunday", "sunday-small-hours", lon("2026-03-21 12:00"), utc("2026-03-22 01:30")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cals[tc.cal].NextOpen(tc.at); !got.Equal(tc.want) {
				t.Errorf("NextOpen(%s) on %s = %s, want %s", tc.at, tc.cal, got, tc.want)
			}
		})
	}
}

func TestAddWorking(t *testing.T) {
	cals := testCalendars(t)
	tests := []struct {
		name, cal string
		start     time.Time
		d         time.Duration
		want      time.Time
	}{
		{"8 working hours from monday 10:00", "council-hours", lon("2026-03-02 10:00"), 8 * time.Hour, lon("2026-03-03 09:30")},
		{"runs out at closing", "council-hours", lon("2026-03-02 16:00"), time.Hour, lon("2026-03-02 17:00")},
		{"starts at the closing minute", "council-hours", lon("2026-03-02 17:00"), time.Hour, lon("2026-03-03 09:30")},
		{"starts before opening", "council-hours", lon("2026-03-02 06:00"), time.Hour, lon("2026-03-02 09:30")},
		{"starts on saturday", "council-hours", lon("2026-03-07 10:00"), 8 * time.Hour, lon("2026-03-09 16:30")},
		{"zero out of hours is the next opening", "council-hours", lon("2026-03-07 10:00"), 0, lon("2026-03-09 08:30")},
		{"over the weekend", "council-hours", lon("2026-03-06 16:00"), 2 * time.Hour, lon("2026-03-09 09:30")},
		{"starts on good friday", "council-hours", lon("2026-04-03 10:00"), time.Hour, lon("2026-04-07 09:30")},
		{"over easter", "council-hours", lon("2026-04-02 16:00"), 2 * time.Hour, lon("2026-04-07 09:30")},
		{"christmas 2026 with the boxing day substitute", "council-hours", lon("2026-12-24 16:00"), 2 * time.Hour, lon("2026-12-29 09:30")},
		{"christmas 2027 with both substitutes", "council-hours", lon("2027-12-24 16:00"), 2 * time.Hour, lon("2027-12-29 09:30")},
		{"christmas 2026 in scotland", "scotland", lon("2026-12-24 16:00"), 2 * time.Hour, lon("2026-12-29 10:00")},
		{"christmas 2027 in northern ireland", "ni", lon("2027-12-24 16:00"), 2 * time.Hour, lon("2027-12-29 10:00")},
		{"new year 2027 in england", "council-hours", lon("2026-12-31 16:00"), 2 * time.Hour, lon("2027-01-04 09:30")},
		{"new year 2027 in scotland, 2 january substitute", "scotland", lon("2026-12-31 16:00"), 2 * time.Hour, lon("2027-01-05 10:00")},
		{"new year 2027 in northern ireland", "ni", lon("2026-12-31 16:00"), 2 * time.Hour, lon("2027-01-04 10:00")},
		{"new year 2026 in scotland", "scotland", lon("2025-12-31 16:30"), time.Hour, lon("2026-01-05 09:30")},
		{"new year 2026 in england", "council-hours", lon("2025-12-31 16:30"), time.Hour, lon("2026-01-02 09:00")},
		{"admin closure day", "closing-eve", lon("2026-12-23 16:00"), 2 * time.Hour, lon("2026-12-29 09:30")},
		{"st patrick's day", "ni", lon("2026-03-16 16:30"), time.Hour, lon("2026-03-18 09:30")},
		{"boyne substitute", "ni", lon("2026-07-10 16:30"), time.Hour, lon("2026-07-14 09:30")},
		{"split: over lunch", "split", lon("2026-03-02 12:00"), time.Hour, lon("2026-03-02 14:00")},
		{"split: starts at lunch", "split", lon("2026-03-02 12:45"), time.Hour, lon("2026-03-02 14:30")},
		{"split: runs out at lunch", "split", lon("2026-03-02 12:00"), 30 * time.Minute, lon("2026-03-02 12:30")},
		{"split: a working day is 7.5 hours", "split", lon("2026-03-02 08:30"), 8 * time.Hour, lon("2026-03-03 09:00")},
		{"into summer time", "council-hours", lon("2026-03-27 16:00"), 2 * time.Hour, utc("2026-03-30 08:30")},
		{"into winter time", "council-hours", lon("2026-10-23 16:00"), 2 * time.Hour, utc("2026-10-26 09:30")},
		{"short day of march 29", "all-days", lon("2026-03-29 00:00"), 24 * time.Hour, lon("2026-03-30 01:00")},
		{"long day of october 25", "all-days", lon("2026-10-25 00:00"), 24 * time.Hour, lon("2026-10-25 23:00")},
		{"night shift losing an hour", "weekend-nights", lon("2026-03-28 05:00"), 2 * time.Hour, utc("2026-03-29 01:00")},
		{"night shift gaining an hour", "weekend-nights", lon("2026-10-24 05:00"), 8 * time.Hour, utc("2026-10-25 06:00")},
		{"24/7 is elapsed time", AlwaysOpen, lon("2026-03-28 12:00"), 24 * time.Hour, lon("2026-03-29 13:00")},
		{"back to the opening", "council-hours", lon("2026-03-03 09:30"), -time.Hour, lon("2026-03-03 08:30")},
		{"back over the night", "council-hours", lon("2026-03-03 09:00"), -time.Hour, lon("2026-03-02 16:30")},
		{"back over christmas", "council-hours", lon("2026-12-29 09:30"), -2 * time.Hour, lon("2026-12-24 16:00")},
		{"back over lunch", "split", lon("2026-03-02 14:00"), -time.Hour, lon("2026-03-02 12:00")},
		{"back out of hours", "council-hours", lon("2026-03-07 10:00"), -time.Hour, lon("2026-03-06 16:00")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cals[tc.cal]
			got := c.AddWorking(tc.start, tc.d)
			if !got.Equal(tc.want) {
				t.Fatalf("AddWorking(%s, %s) on %s = %s, want %s", tc.start, tc.d, tc.cal, got, tc.want)
			}
			if tc.d > 0 {
				if back := c.WorkingBetween(tc.start, got); back != tc.d {
					t.Errorf("WorkingBetween(%s, %s) = %s, want %s", tc.start, got, back, tc.d)
				}
			}
		})
	}
}

func TestWorkingBetween(t *testing.T) {
	cals := testCalendars(t)
	tests := []struct {
		name, cal string
		a, b      time.Time
		want      time.Duration
	}{
		{"same shift", "council-hours", lon("2026-03-02 10:00"), lon("2026-03-02 11:15"), 75 * time.Minute},
		{"empty", "council-hours", lon("2026-03-02 10:00"), lon("2026-03-02 10:00"), 0},
		{"reversed is negative", "council-hours", lon("2026-03-02 11:00"), lon("2026-03-02 10:00"), -time.Hour},
		{"all out of hours", "council-hours", lon("2026-03-06 17:00"), lon("2026-03-09 08:30"), 0},
		{"a week", "council-hours", lon("2026-03-02 08:30"), lon("2026-03-09 08:30"), 5 * (8*time.Hour + 30*time.Minute)},
		{"easter week", "council-hours", lon("2026-03-30 08:30"), lon("2026-04-06 08:30"), 4 * (8*time.Hour + 30*time.Minute)},
		{"over the march change", "council-hours", lon("2026-03-27 12:00"), lon("2026-03-30 12:00"), 8*time.Hour + 30*time.Minute},
		{"split day", "split", lon("2026-03-02 00:00"), lon("2026-03-03 00:00"), 7*time.Hour + 30*time.Minute},
		{"23-hour day", "all-days", lon("2026-03-29 00:00"), lon("2026-03-30 00:00"), 23 * time.Hour},
		{"25-hour day", "all-days", lon("2026-10-25 00:00"), lon("2026-10-26 00:00"), 25 * time.Hour},
		{"24/7", AlwaysOpen, lon("2026-10-25 00:00"), lon("2026-10-26 00:00"), 25 * time.Hour},
		{"shift opening in the march gap", "sunday-small-hours", lon("2026-03-29 00:00"), lon("2026-03-30 00:00"), time.Hour},
		{"shift opening in the october overlap", "sunday-small-hours", lon("2026-10-25 00:00"), lon("2026-10-26 00:00"), 2*time.Hour + 30*time.Minute},
		{"shift on an ordinary sunday", "sunday-small-hours", lon("2026-03-22 00:00"), lon("2026-03-23 00:00"), 90 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cals[tc.cal].WorkingBetween(tc.a, tc.b); got != tc.want {
				t.Errorf("WorkingBetween(%s, %s) on %s = %s, want %s", tc.a, tc.b, tc.cal, got, tc.want)
			}
		})
	}
}

func TestAddWorkingDays(t *testing.T) {
	cals := testCalendars(t)
	tests := []struct {
		name, cal string
		start     time.Time
		n         int
		want      time.Time
	}{
		{"10 days from monday", "council-hours", lon("2026-03-02 10:00"), 10, lon("2026-03-16 17:00")},
		{"before opening counts that day", "council-hours", lon("2026-03-02 07:00"), 10, lon("2026-03-16 17:00")},
		{"last open minute counts that day", "council-hours", lon("2026-03-02 16:59"), 10, lon("2026-03-16 17:00")},
		{"closing minute is received next day", "council-hours", lon("2026-03-02 17:00"), 10, lon("2026-03-17 17:00")},
		{"evening is received next day", "council-hours", lon("2026-03-02 18:30"), 10, lon("2026-03-17 17:00")},
		{"saturday is received monday", "council-hours", lon("2026-03-07 10:00"), 10, lon("2026-03-23 17:00")},
		{"friday evening is received monday", "council-hours", lon("2026-03-06 20:00"), 2, lon("2026-03-11 17:00")},
		{"zero days is the day of receipt", "council-hours", lon("2026-03-02 10:00"), 0, lon("2026-03-02 17:00")},
		{"good friday is received tuesday", "council-hours", lon("2026-04-03 10:00"), 2, lon("2026-04-09 17:00")},
		{"over easter", "council-hours", lon("2026-04-02 10:00"), 2, lon("2026-04-08 17:00")},
		{"over easter in scotland", "scotland", lon("2026-04-02 10:00"), 2, lon("2026-04-07 17:00")},
		{"into summer time", "council-hours", lon("2026-03-27 10:00"), 1, utc("2026-03-30 16:00")},
		{"into winter time", "council-hours", lon("2026-10-23 10:00"), 1, utc("2026-10-26 17:00")},
		{"christmas 2026", "council-hours", lon("2026-12-24 10:00"), 1, lon("2026-12-29 17:00")},
		{"christmas 2027", "council-hours", lon("2027-12-24 10:00"), 1, lon("2027-12-29 17:00")},
		{"new year 2027 in scotland", "scotland", lon("2026-12-31 10:00"), 1, lon("2027-01-05 17:00")},
		{"new year 2027 in northern ireland", "ni", lon("2026-12-31 10:00"), 1, lon("2027-01-04 17:00")},
		{"admin closure", "closing-eve", lon("2026-12-23 10:00"), 1, lon("2026-12-29 17:00")},
		{"split shifts close at the last shift", "split", lon("2026-03-02 12:45"), 1, lon("2026-03-03 17:00")},
		{"20 days over the may bank holidays", "council-hours", lon("2026-04-20 09:00"), 20, lon("2026-05-19 17:00")},
		{"24/7 days end at midnight", AlwaysOpen, lon("2026-03-02 10:00"), 2, lon("2026-03-05 00:00")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cals[tc.cal].AddWorkingDays(tc.start, tc.n); !got.Equal(tc.want) {
				t.Errorf("AddWorkingDays(%s, %d) on %s = %s, want %s", tc.start, tc.n, tc.cal, got, tc.want)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	cals := testCalendars(t)
	if why, closed := cals["council-hours"].Closed(lon("2026-12-28 12:00")); !closed || why != "Boxing Day" {
		t.Errorf("28 Dec 2026: %q, %v; want Boxing Day, closed", why, closed)
	}
	if why, closed := cals["closing-eve"].Closed(lon("2026-12-24 12:00")); !closed || why != "closure" {
		t.Errorf("24 Dec 2026: %q, %v; want closure, closed", why, closed)
	}
	if _, closed := cals["council-hours"].Closed(lon("2026-12-24 12:00")); closed {
		t.Error("24 Dec 2026 closed on a calendar without the closure")
	}
}

func TestNilCalendarIsAlwaysOpen(t *testing.T) {
	var c *Calendar
	at := lon("2026-12-25 03:00")
	if !c.IsOpen(at) || !c.AddWorking(at, time.Hour).Equal(at.Add(time.Hour)) || c.Location() != time.UTC {
		t.Error("a nil calendar is not always open in UTC")
	}
}

func TestBuildCalendarsErrors(t *testing.T) {
	tests := []struct {
		name string
		spec CalendarSpec
		want string
	}{
		{"no name", CalendarSpec{Hours: weekdaysOf("08:30-17:00")}, "calendars[0].name: missing"},
		{"reserved name", CalendarSpec{Name: "24/7", Hours: weekdaysOf("08:30-17:00")}, `calendars.24/7.name: "24/7" is built in`},
		{"bad zone", CalendarSpec{Name: "c", TimeZone: "Europe/Londn", Hours: weekdaysOf("08:30-17:00")}, `calendars.c.time_zone: "Europe/Londn" is not a time zone`},
		{"host zone", CalendarSpec{Name: "c", TimeZone: "Local", Hours: weekdaysOf("08:30-17:00")}, `calendars.c.time_zone: "Local" depends on the server`},
		{"bad day", CalendarSpec{Name: "c", Hours: map[string][]string{"mon": {"08:30-17:00"}}}, "calendars.c.hours.mon: not a weekday"},
		{"reversed shift", CalendarSpec{Name: "c", Hours: map[string][]string{"monday": {"08:30-12:30", "13:30-12:00"}}}, `calendars.c.hours.monday[1]: "13:30-12:00" ends before it starts`},
		{"bad shift", CalendarSpec{Name: "c", Hours: map[string][]string{"monday": {"8.30 to 5"}}}, `calendars.c.hours.monday[0]: "8.30 to 5" is not a shift`},
		{"past midnight", CalendarSpec{Name: "c", Hours: map[string][]string{"monday": {"08:30-24:30"}}}, `calendars.c.hours.monday[0]: "08:30-24:30" is not a shift`},
		{"overlap", CalendarSpec{Name: "c", Hours: map[string][]string{"monday": {"08:30-13:00", "12:30-17:00"}}}, "calendars.c.hours.monday: 08:30-13:00 overlaps 12:30-17:00"},
		{"never open", CalendarSpec{Name: "c"}, "calendars.c.hours: no open hours"},
		{"bad holidays", CalendarSpec{Name: "c", Hours: weekdaysOf("08:30-17:00"), BankHolidays: "wales"}, `calendars.c.bank_holidays: "wales" is not one of`},
		{"bad closure", CalendarSpec{Name: "c", Hours: weekdaysOf("08:30-17:00"), Closures: []string{"24/12/2026"}}, `calendars.c.closures[0]: "24/12/2026" is not a date`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := BuildCalendars([]CalendarSpec{tc.spec})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %v is not a *FieldError", err)
			}
		})
	}
	t.Run("duplicate name", func(t *testing.T) {
		spec := CalendarSpec{Name: "c", Hours: weekdaysOf("08:30-17:00")}
		_, err := BuildCalendars([]CalendarSpec{spec, spec})
		if err == nil || !strings.Contains(err.Error(), `calendars.c.name: "c" is used twice`) {
			t.Errorf("error %v", err)
		}
	})
	t.Run("every problem reported", func(t *testing.T) {
		_, err := BuildCalendars([]CalendarSpec{{Name: "a", TimeZone: "Mars/Olympus", Hours: weekdaysOf("9-5")}, {Name: "b"}})
		for _, want := range []string{"calendars.a.time_zone", "calendars.a.hours.friday[0]", "calendars.b.hours"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not name %s", err, want)
			}
		}
	})
}

func TestBuildCalendarsAlwaysOpen(t *testing.T) {
	cals, err := BuildCalendars(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := cals[AlwaysOpen]
	if c == nil || c.Name() != AlwaysOpen || !c.IsOpen(lon("2026-12-25 03:00")) {
		t.Fatalf("24/7 calendar %+v", c)
	}
	if c.Location().String() != DefaultTimeZone {
		t.Errorf("24/7 is in %s", c.Location())
	}
}
