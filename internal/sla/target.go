package sla

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrNotTarget marks text that [ParseTarget] cannot read.
var ErrNotTarget = errors.New("not a target")

// Unit is the unit of a [Target].
type Unit int

// Units of a target.
const (
	Minutes Unit = iota + 1
	Hours
	Days
)

// maxDays bounds a target at about ten years, whatever its unit, which keeps
// the arithmetic far from overflow and its work small.
const maxDays = 10 * 366

// max returns the largest amount of the unit a target may have.
func (u Unit) max() int {
	switch u {
	case Minutes:
		return maxDays * 24 * 60
	case Hours:
		return maxDays * 24
	}
	return maxDays
}

// Target is an amount of time a case may wait: working time on a calendar
// ("8 working hours", "10 working days") or calendar time ("1 hour 24/7",
// "24 hours", "30 minutes", "2 days"). The zero Target is no target.
type Target struct {
	amount  int
	unit    Unit
	working bool
}

// ParseTarget reads a target: a positive whole amount, "working" for working
// time, and a unit (minute, hour or day, singular or plural; "min", "mins",
// "hr" and "hrs" too). Calendar time may end in "24/7" to say so. Case and
// spacing do not matter. Errors wrap [ErrNotTarget] and say what is wrong:
//
//	"5 workng days" is not a target: "workng" is not "working" or a unit (minutes, hours, days)
func ParseTarget(s string) (Target, error) {
	fail := func(format string, args ...any) (Target, error) {
		return Target{}, fmt.Errorf("%q is %w: %s", s, ErrNotTarget, fmt.Sprintf(format, args...))
	}
	words := strings.Fields(strings.ToLower(s))
	if len(words) == 0 {
		return fail("empty")
	}
	n, err := strconv.Atoi(words[0])
	switch {
	case err != nil:
		return fail("%q is not a whole number", words[0])
	case n <= 0:
		return fail("the amount must be at least 1")
	}
	t := Target{amount: n}
	rest := words[1:]
	if len(rest) > 0 && rest[0] == "working" {
		t.working = true
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return fail("no unit (minutes, hours, days)")
	}
	switch rest[0] {
	case "minute", "minutes", "min", "mins":
		t.unit = Minutes
	case "hour", "hours", "hr", "hrs":
		t.unit = Hours
	case "day", "days":
		t.unit = Days
	default:
		return fail("%q is not \"working\" or a unit (minutes, hours, days)", rest[0])
	}
	if n > t.unit.max() {
		return fail("more than ten years")
	}
	rest = rest[1:]
	if len(rest) > 0 && rest[0] == AlwaysOpen {
		if t.working {
			return fail("working time cannot be 24/7: drop \"working\" or name a calendar")
		}
		rest = rest[1:]
	}
	if len(rest) > 0 {
		return fail("unexpected %q after the unit", strings.Join(rest, " "))
	}
	return t, nil
}

// String returns the target in the form ParseTarget reads, such as
// "8 working hours" or "1 hour"; the zero Target is "".
func (t Target) String() string {
	if t.IsZero() {
		return ""
	}
	var unit string
	switch t.unit {
	case Minutes:
		unit = "minute"
	case Hours:
		unit = "hour"
	case Days:
		unit = "day"
	}
	if t.amount != 1 {
		unit += "s"
	}
	if t.working {
		return fmt.Sprintf("%d working %s", t.amount, unit)
	}
	return fmt.Sprintf("%d %s", t.amount, unit)
}

// IsZero reports whether t is no target.
func (t Target) IsZero() bool { return t.amount == 0 }

// Working reports whether t counts working time on a calendar rather than
// calendar time.
func (t Target) Working() bool { return t.working }

// Amount returns the number of units.
func (t Target) Amount() int { return t.amount }

// Unit returns the target's unit.
func (t Target) Unit() Unit { return t.unit }

// Duration returns the length of a target in minutes or hours; for a target
// in days it returns 0 and false, since a day's length depends on the
// calendar.
func (t Target) Duration() (time.Duration, bool) {
	switch t.unit {
	case Minutes:
		return time.Duration(t.amount) * time.Minute, true
	case Hours:
		return time.Duration(t.amount) * time.Hour, true
	}
	return 0, false
}

// MarshalText writes t as String does.
func (t Target) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads t as ParseTarget does.
func (t *Target) UnmarshalText(b []byte) error {
	v, err := ParseTarget(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}
