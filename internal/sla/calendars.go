package sla

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Calendars holds calendars by name. The calendar named [AlwaysOpen] is
// always present.
type Calendars map[string]*Calendar

// CalendarSpec is a calendar as written in the configuration file.
type CalendarSpec struct {
	// Name is how policies refer to the calendar.
	Name string `yaml:"name" json:"name"`
	// TimeZone is an IANA time zone name; empty means [DefaultTimeZone].
	TimeZone string `yaml:"time_zone" json:"time_zone"`
	// Hours maps a lower-case weekday name to its shifts, each "HH:MM-HH:MM"
	// ("08:30-12:30", "13:30-17:00"; "24:00" ends a shift at midnight).
	// A day left out is closed.
	Hours map[string][]string `yaml:"hours" json:"hours"`
	// BankHolidays names the bank holidays the calendar closes on: one of
	// [EnglandAndWales], [Scotland], [NorthernIreland], or empty for none.
	BankHolidays string `yaml:"bank_holidays" json:"bank_holidays"`
	// Closures are further closed days, "2006-01-02", in the calendar's
	// time zone.
	Closures []string `yaml:"closures" json:"closures"`
}

// FieldError is a problem with one field of a calendar or policy spec. Path
// names the field from the top of the configuration, such as
// "calendars.council-hours.hours.monday[1]" or
// "sla.teams.highways.priorities.high.resolution".
type FieldError struct {
	Path string
	Err  error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// fieldErrors collects the problems of a spec.
type fieldErrors []error

func (fe *fieldErrors) add(path, format string, args ...any) {
	*fe = append(*fe, &FieldError{Path: path, Err: fmt.Errorf(format, args...)})
}

func (fe fieldErrors) err() error { return errors.Join(fe...) }

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday,
	"wednesday": time.Wednesday, "thursday": time.Thursday,
	"friday": time.Friday, "saturday": time.Saturday,
}

// BuildCalendars compiles calendar specs, adding the always-open calendar
// [AlwaysOpen] (in [DefaultTimeZone], which only matters for where its days
// end). Every problem found is reported as a [*FieldError] naming the
// calendar and the field, such as
//
//	calendars.council-hours.hours.monday[1]: "13:30-12:00" ends before it starts
func BuildCalendars(specs []CalendarSpec) (Calendars, error) {
	holidays, err := loadBankHolidays()
	if err != nil {
		return nil, err
	}
	london, err := time.LoadLocation(DefaultTimeZone)
	if err != nil {
		return nil, fmt.Errorf("sla: %w", err)
	}
	cals := Calendars{AlwaysOpen: {name: AlwaysOpen, loc: london}}
	var errs fieldErrors
	for i, spec := range specs {
		where := fmt.Sprintf("calendars[%d]", i)
		if spec.Name != "" && !strings.ContainsAny(spec.Name, ". ") {
			where = "calendars." + spec.Name
		}
		switch name := spec.Name; {
		case strings.TrimSpace(name) == "":
			errs.add(where+".name", "missing")
		case name == AlwaysOpen:
			errs.add(where+".name", "%q is built in and always open", name)
		case cals[name] != nil:
			errs.add(where+".name", "%q is used twice", name)
		}
		before := len(errs)
		c := buildCalendar(where, spec, holidays, &errs)
		if len(errs) == before && cals[spec.Name] == nil {
			cals[spec.Name] = c
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return cals, nil
}

func buildCalendar(where string, spec CalendarSpec, holidays map[string][]Holiday, errs *fieldErrors) *Calendar {
	before := len(*errs)
	fail := func(field, format string, args ...any) { errs.add(where+"."+field, format, args...) }
	c := &Calendar{name: spec.Name, limited: true, closed: map[civilDate]string{}}

	tz := cmp.Or(spec.TimeZone, DefaultTimeZone)
	loc, err := time.LoadLocation(tz)
	switch {
	case tz == "Local":
		// The host's zone would give two servers two answers.
		fail("time_zone", "%q depends on the server; name a zone such as %q", tz, DefaultTimeZone)
	case err != nil:
		fail("time_zone", "%q is not a time zone", tz)
	default:
		c.loc = loc
	}

	open := false
	for _, day := range slices.Sorted(maps.Keys(spec.Hours)) {
		wd, ok := weekdays[day]
		if !ok {
			fail("hours."+day, "not a weekday (monday to sunday)")
			continue
		}
		var shifts []shift
		for j, s := range spec.Hours[day] {
			sh, err := parseShift(s)
			if err != nil {
				fail(fmt.Sprintf("hours.%s[%d]", day, j), "%q %w", s, err)
				continue
			}
			shifts = append(shifts, sh)
		}
		slices.SortFunc(shifts, func(a, b shift) int { return cmp.Compare(a.from, b.from) })
		for j := 1; j < len(shifts); j++ {
			if shifts[j].from < shifts[j-1].to {
				fail("hours."+day, "%s overlaps %s", shifts[j-1], shifts[j])
			}
		}
		c.week[wd] = shifts
		open = open || len(shifts) > 0
	}
	if !open && len(*errs) == before {
		fail("hours", "no open hours in the week")
	}

	if spec.BankHolidays != "" {
		list, ok := holidays[spec.BankHolidays]
		if !ok {
			fail("bank_holidays", "%q is not one of %s, %s or %s", spec.BankHolidays, EnglandAndWales, Scotland, NorthernIreland)
		}
		for _, h := range list {
			c.closed[h.date] = h.Name
		}
	}
	for j, s := range spec.Closures {
		d, err := parseDate(s)
		if err != nil {
			fail(fmt.Sprintf("closures[%d]", j), "%q is not a date (2006-01-02)", s)
			continue
		}
		if _, ok := c.closed[d]; !ok {
			c.closed[d] = "closure"
		}
	}
	return c
}

// parseShift reads "HH:MM-HH:MM".
func parseShift(s string) (shift, error) {
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return shift{}, errors.New(`is not a shift such as "08:30-17:00"`)
	}
	f, err1 := parseClock(strings.TrimSpace(from))
	t, err2 := parseClock(strings.TrimSpace(to))
	switch {
	case err1 != nil || err2 != nil:
		return shift{}, errors.New(`is not a shift such as "08:30-17:00"`)
	case f == 24*60:
		return shift{}, errors.New("starts at midnight at the end of the day")
	case t <= f:
		return shift{}, errors.New("ends before it starts")
	}
	return shift{f, t}, nil
}

// parseClock reads "HH:MM" as minutes after midnight, allowing "24:00".
func parseClock(s string) (int, error) {
	if s == "24:00" {
		return 24 * 60, nil
	}
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

func (s shift) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", s.from/60, s.from%60, s.to/60, s.to%60)
}
