package sla

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite holidays.json from the bank holiday rules")

// published are the bank holidays as gov.uk publishes them.
var published = map[string]map[int]string{
	EnglandAndWales: {
		2024: "01-01 03-29 04-01 05-06 05-27 08-26 12-25 12-26",
		2025: "01-01 04-18 04-21 05-05 05-26 08-25 12-25 12-26",
		2026: "01-01 04-03 04-06 05-04 05-25 08-31 12-25 12-28",
		2027: "01-01 03-26 03-29 05-03 05-31 08-30 12-27 12-28",
	},
	Scotland: {
		2024: "01-01 01-02 03-29 05-06 05-27 08-05 12-02 12-25 12-26",
		2025: "01-01 01-02 04-18 05-05 05-26 08-04 12-01 12-25 12-26",
		2026: "01-01 01-02 04-03 05-04 05-25 08-03 11-30 12-25 12-28",
		2027: "01-01 01-04 03-26 05-03 05-31 08-02 11-30 12-27 12-28",
	},
	NorthernIreland: {
		2024: "01-01 03-18 03-29 04-01 05-06 05-27 07-12 08-26 12-25 12-26",
		2025: "01-01 03-17 04-18 04-21 05-05 05-26 07-14 08-25 12-25 12-26",
		2026: "01-01 03-17 04-03 04-06 05-04 05-25 07-13 08-31 12-25 12-28",
		2027: "01-01 03-17 03-26 03-29 05-03 05-31 07-12 08-30 12-27 12-28",
	},
}

// TestBankHolidaysPublished checks the shipped data against every date
// gov.uk publishes for the years it covers, in all three divisions.
func TestBankHolidaysPublished(t *testing.T) {
	for division, years := range published {
		list, err := BankHolidays(division)
		if err != nil {
			t.Fatal(err)
		}
		for year, days := range years {
			var want []string
			for _, md := range strings.Fields(days) {
				want = append(want, time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).Format("2006")+"-"+md)
			}
			var got []string
			for _, h := range list {
				if h.date.year == year {
					got = append(got, h.Date())
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s %d:\n got %v\nwant %v", division, year, got, want)
			}
		}
	}
}

// TestBankHolidaysFollowRules checks that every year 2024–2028 of the data
// follows the bank holiday rules, substitute days included; with -update it
// rewrites the data from the rules.
func TestBankHolidaysFollowRules(t *testing.T) {
	want := ruleFile(2024, 2028)
	if *update {
		if err := os.WriteFile("holidays.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !*update && !bytes.Equal(holidaysJSON, want) {
		t.Errorf("holidays.json does not follow the rules for 2024–2028; compare with go test -run TestBankHolidaysFollowRules -update and git diff")
	}
	for _, division := range []string{EnglandAndWales, Scotland, NorthernIreland} {
		list, err := BankHolidays(division)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range list {
			if wd := h.date.weekday(); wd == time.Saturday || wd == time.Sunday {
				t.Errorf("%s %s %s falls on a %s", division, h.Date(), h.Name, wd)
			}
		}
	}
}

func TestBankHolidays2028(t *testing.T) {
	want := map[string]string{
		EnglandAndWales: "2028-01-03 2028-04-14 2028-04-17 2028-05-01 2028-05-29 2028-08-28 2028-12-25 2028-12-26",
		Scotland:        "2028-01-03 2028-01-04 2028-04-14 2028-05-01 2028-05-29 2028-08-07 2028-11-30 2028-12-25 2028-12-26",
		NorthernIreland: "2028-01-03 2028-03-17 2028-04-14 2028-04-17 2028-05-01 2028-05-29 2028-07-12 2028-08-28 2028-12-25 2028-12-26",
	}
	for division, days := range want {
		list, err := BankHolidays(division)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, h := range list {
			if h.date.year == 2028 {
				got = append(got, h.Date())
			}
		}
		if strings.Join(got, " ") != days {
			t.Errorf("%s 2028: got %v, want %s", division, got, days)
		}
	}
}

func TestBankHolidaysUnknownDivision(t *testing.T) {
	if _, err := BankHolidays("wales"); err == nil {
		t.Error("no error for an unknown division")
	}
}

// The rules below derive the bank holidays; they generate holidays.json.

type govukEvent struct {
	Title   string `json:"title"`
	Date    string `json:"date"`
	Notes   string `json:"notes"`
	Bunting bool   `json:"bunting"`
}

type govukDivision struct {
	Division string       `json:"division"`
	Events   []govukEvent `json:"events"`
}

func ruleFile(from, to int) []byte {
	f := map[string]govukDivision{}
	for _, division := range []string{EnglandAndWales, Scotland, NorthernIreland} {
		d := govukDivision{Division: division, Events: []govukEvent{}}
		for y := from; y <= to; y++ {
			d.Events = append(d.Events, ruleYear(division, y)...)
		}
		f[division] = d
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

func ruleYear(division string, y int) []govukEvent {
	date := func(m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	firstMonday := func(m time.Month) time.Time {
		t := date(m, 1)
		for t.Weekday() != time.Monday {
			t = t.AddDate(0, 0, 1)
		}
		return t
	}
	lastMonday := func(m time.Month) time.Time {
		t := date(m+1, 1).AddDate(0, 0, -1)
		for t.Weekday() != time.Monday {
			t = t.AddDate(0, 0, -1)
		}
		return t
	}
	easter := easterSunday(y)

	type fixed struct {
		title string
		day   time.Time
	}
	// Holidays on fixed dates move to the next weekday that is not already
	// a holiday when they fall at a weekend, in date order.
	var fixedDays []fixed
	var moving []govukEvent
	add := func(title string, t time.Time) {
		moving = append(moving, govukEvent{Title: title, Date: t.Format(time.DateOnly), Bunting: true})
	}
	fixedDays = append(fixedDays, fixed{"New Year’s Day", date(time.January, 1)})
	if division == Scotland {
		fixedDays = append(fixedDays, fixed{"2nd January", date(time.January, 2)})
	}
	if division == NorthernIreland {
		fixedDays = append(fixedDays, fixed{"St Patrick’s Day", date(time.March, 17)})
	}
	add("Good Friday", easter.AddDate(0, 0, -2))
	if division != Scotland {
		add("Easter Monday", easter.AddDate(0, 0, 1))
	}
	add("Early May bank holiday", firstMonday(time.May))
	add("Spring bank holiday", lastMonday(time.May))
	if division == NorthernIreland {
		fixedDays = append(fixedDays, fixed{"Battle of the Boyne (Orangemen’s Day)", date(time.July, 12)})
	}
	if division == Scotland {
		add("Summer bank holiday", firstMonday(time.August))
		fixedDays = append(fixedDays, fixed{"St Andrew’s Day", date(time.November, 30)})
	} else {
		add("Summer bank holiday", lastMonday(time.August))
	}
	fixedDays = append(fixedDays, fixed{"Christmas Day", date(time.December, 25)}, fixed{"Boxing Day", date(time.December, 26)})

	taken := map[string]bool{}
	for _, e := range moving {
		taken[e.Date] = true
	}
	for _, f := range fixedDays {
		taken[f.day.Format(time.DateOnly)] = true
	}
	events := moving
	for _, f := range fixedDays {
		day, note := f.day, ""
		if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
			note = substituteNote
			for {
				day = day.AddDate(0, 0, 1)
				if wd := day.Weekday(); wd != time.Saturday && wd != time.Sunday && !taken[day.Format(time.DateOnly)] {
					break
				}
			}
			taken[day.Format(time.DateOnly)] = true
		}
		events = append(events, govukEvent{Title: f.title, Date: day.Format(time.DateOnly), Notes: note, Bunting: true})
	}
	slices.SortFunc(events, func(a, b govukEvent) int { return strings.Compare(a.Date, b.Date) })
	return events
}

// easterSunday is the Gregorian Easter (the anonymous algorithm published
// by Nature in 1876).
func easterSunday(y int) time.Time {
	a := y % 19
	b, c := y/100, y%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return time.Date(y, time.Month(month), day, 0, 0, 0, 0, time.UTC)
}
