package sla

import (
	"maps"
	"slices"
	"time"
)

// Priority is a case's priority.
type Priority string

// Priorities, lowest first.
const (
	Low    Priority = "low"
	Normal Priority = "normal"
	High   Priority = "high"
	Urgent Priority = "urgent"
)

// Priorities returns every priority, lowest first.
func Priorities() []Priority { return []Priority{Low, Normal, High, Urgent} }

// Valid reports whether p is one of [Priorities].
func (p Priority) Valid() bool { return slices.Contains(Priorities(), p) }

// NoTarget, as a next_response, says a level has no next-response target
// even though a level it inherits from has one.
const NoTarget = "none"

// Targets are one priority's targets at one level of a policy. An empty
// field inherits from the level below.
type Targets struct {
	// FirstResponse is the time to the first reply to a new case.
	FirstResponse string `yaml:"first_response" json:"first_response,omitempty"`
	// NextResponse restarts on each resident message after a reply;
	// optional, and [NoTarget] removes an inherited one.
	NextResponse string `yaml:"next_response" json:"next_response,omitempty"`
	// Resolution is the time to resolve the case, not counting the time it
	// awaits the resident.
	Resolution string `yaml:"resolution" json:"resolution,omitempty"`
	// Calendar names the calendar of this priority's working time.
	Calendar string `yaml:"calendar" json:"calendar,omitempty"`
	// WarnBefore is how long before each deadline to warn, for this
	// priority.
	WarnBefore string `yaml:"warn_before" json:"warn_before,omitempty"`
}

// Level is the part of a policy any level may set: the default policy, a
// team's override or a team's override for one service. An empty field
// inherits from the level below.
type Level struct {
	// Calendar names the calendar of working-time targets.
	Calendar string `yaml:"calendar" json:"calendar,omitempty"`
	// WarnBefore is how long before each deadline the warning falls, in
	// minutes or hours ("1 working hour", "30 minutes"). It is counted in
	// each target's own time: working time for a working-time target,
	// calendar time otherwise.
	WarnBefore string `yaml:"warn_before" json:"warn_before,omitempty"`
	// Escalation names the escalation policy applied at a breach.
	Escalation string `yaml:"escalation" json:"escalation,omitempty"`
	// Priorities are the targets per priority.
	Priorities map[Priority]Targets `yaml:"priorities" json:"priorities,omitempty"`
}

// PolicySpec is the SLA policy as written in the configuration file's sla
// block: a default policy that must set every priority's first response and
// resolution, with overrides per team and per team and service. The most
// specific setting wins: a service's override, then its team's, then the
// default; within a level, a priority's own calendar or warn_before comes
// before the level's.
type PolicySpec struct {
	Level `yaml:",inline"`
	// Teams are overrides by team name.
	Teams map[string]TeamPolicy `yaml:"teams" json:"teams,omitempty"`
}

// TeamPolicy overrides the default policy for one team, and may override it
// further for some of its services.
type TeamPolicy struct {
	Level `yaml:",inline"`
	// Services are overrides by service code.
	Services map[string]Level `yaml:"services" json:"services,omitempty"`
}

// Policies are compiled SLA policies; safe for concurrent use.
type Policies struct {
	clocks map[policyKey]Clock
}

type policyKey struct {
	team, service string
	priority      Priority
}

// Clock is the set of deadlines rules that apply to one case. NextResponse
// is nil when the policy sets no next-response target.
type Clock struct {
	FirstResponse, NextResponse, Resolution *Rule
	// Escalation names the escalation policy for a breach, or is empty.
	Escalation string
}

// For returns the clock for a case of a team and service ("" for none) at a
// priority. A team or service without an override gets the policy it
// inherits; an unknown priority gets the zero Clock, which has no rules.
func (p *Policies) For(team, service string, pr Priority) Clock {
	for _, k := range []policyKey{{team, service, pr}, {team, "", pr}, {"", "", pr}} {
		if c, ok := p.clocks[k]; ok {
			return c
		}
	}
	return Clock{}
}

// level is one level of a spec with where it sits in the configuration.
type level struct {
	path string
	Level
}

// BuildPolicies compiles a policy spec against the configuration's calendars,
// team names, service codes and escalation policy names. Every problem is
// reported as a [*FieldError] naming the field, such as
//
//	sla.teams.highways.priorities.high.resolution: "5 workng days" is not a target: …
func BuildPolicies(spec PolicySpec, cals Calendars, teams, services, escalations []string) (*Policies, error) {
	var errs fieldErrors
	def := level{"sla", spec.Level}
	checkLevel(def, cals, escalations, &errs)
	overrides := map[policyKey][]level{{}: {def}}
	for _, team := range slices.Sorted(maps.Keys(spec.Teams)) {
		tp := spec.Teams[team]
		tl := level{"sla.teams." + team, tp.Level}
		if !slices.Contains(teams, team) {
			errs.add(tl.path, "no team is called %q", team)
		}
		checkLevel(tl, cals, escalations, &errs)
		overrides[policyKey{team: team}] = []level{tl, def}
		for _, svc := range slices.Sorted(maps.Keys(tp.Services)) {
			sl := level{tl.path + ".services." + svc, tp.Services[svc]}
			if !slices.Contains(services, svc) {
				errs.add(sl.path, "no service has the code %q", svc)
			}
			checkLevel(sl, cals, escalations, &errs)
			overrides[policyKey{team: team, service: svc}] = []level{sl, tl, def}
		}
	}
	for _, pr := range Priorities() {
		t, ok := spec.Priorities[pr]
		path := "sla.priorities." + string(pr)
		switch {
		case !ok:
			errs.add(path, "missing: the default policy sets every priority (%v)", Priorities())
		case t.FirstResponse == "":
			errs.add(path+".first_response", "missing")
		case t.Resolution == "":
			errs.add(path+".resolution", "missing")
		case t.Calendar == "" && spec.Calendar == "":
			errs.add(path+".calendar", "missing, and sla.calendar names none")
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}

	p := &Policies{clocks: map[policyKey]Clock{}}
	for k, levels := range overrides {
		for _, pr := range Priorities() {
			k.priority = pr
			p.clocks[k] = resolve(levels, pr, cals)
		}
	}
	return p, nil
}

// checkLevel reports the problems of one level's own fields.
func checkLevel(l level, cals Calendars, escalations []string, errs *fieldErrors) {
	checkCalendar := func(path, name string) {
		if name != "" && cals[name] == nil {
			errs.add(path, "no calendar is called %q", name)
		}
	}
	checkWarn := func(path, s string) {
		if s == "" {
			return
		}
		t, err := ParseTarget(s)
		if err != nil {
			errs.add(path, "%w", err)
		} else if _, ok := t.Duration(); !ok {
			errs.add(path, "%q is not in minutes or hours", s)
		}
	}
	checkCalendar(l.path+".calendar", l.Calendar)
	checkWarn(l.path+".warn_before", l.WarnBefore)
	if l.Escalation != "" && !slices.Contains(escalations, l.Escalation) {
		errs.add(l.path+".escalation", "no escalation policy is called %q", l.Escalation)
	}
	for _, pr := range slices.Sorted(maps.Keys(l.Priorities)) {
		path := l.path + ".priorities." + string(pr)
		if !pr.Valid() {
			errs.add(path, "not a priority (%v)", Priorities())
			continue
		}
		t := l.Priorities[pr]
		checkCalendar(path+".calendar", t.Calendar)
		checkWarn(path+".warn_before", t.WarnBefore)
		for _, f := range []struct{ name, value string }{
			{"first_response", t.FirstResponse}, {"next_response", t.NextResponse}, {"resolution", t.Resolution},
		} {
			if f.value == "" || (f.name == "next_response" && f.value == NoTarget) {
				continue
			}
			if _, err := ParseTarget(f.value); err != nil {
				errs.add(path+"."+f.name, "%w", err)
			}
		}
	}
}

// resolve builds a priority's clock from levels, most specific first; the
// levels have been checked.
func resolve(levels []level, pr Priority, cals Calendars) Clock {
	first := func(get func(level) string) string {
		for _, l := range levels {
			if v := get(l); v != "" {
				return v
			}
		}
		return ""
	}
	nearest := func(get func(Targets) string, getLevel func(Level) string) string {
		for _, l := range levels {
			if v := get(l.Priorities[pr]); v != "" {
				return v
			}
			if v := getLevel(l.Level); v != "" {
				return v
			}
		}
		return ""
	}
	cal := cals[nearest(func(t Targets) string { return t.Calendar }, func(l Level) string { return l.Calendar })]
	var warn time.Duration
	if s := nearest(func(t Targets) string { return t.WarnBefore }, func(l Level) string { return l.WarnBefore }); s != "" {
		t, _ := ParseTarget(s)
		warn, _ = t.Duration()
	}
	rule := func(get func(Targets) string) *Rule {
		s := first(func(l level) string { return get(l.Priorities[pr]) })
		if s == "" || s == NoTarget {
			return nil
		}
		t, _ := ParseTarget(s)
		return &Rule{target: t, cal: cal, warn: warn}
	}
	return Clock{
		FirstResponse: rule(func(t Targets) string { return t.FirstResponse }),
		NextResponse:  rule(func(t Targets) string { return t.NextResponse }),
		Resolution:    rule(func(t Targets) string { return t.Resolution }),
		Escalation:    first(func(l level) string { return l.Escalation }),
	}
}

// Rule is one resolved target with its calendar and warning time.
type Rule struct {
	target Target
	cal    *Calendar
	warn   time.Duration
}

// NewRule makes a rule from a target, the calendar of its working time and
// how long before the deadline to warn.
func NewRule(t Target, cal *Calendar, warnBefore time.Duration) *Rule {
	return &Rule{target: t, cal: cal, warn: warnBefore}
}

// Target returns the rule's target.
func (r *Rule) Target() Target { return r.target }

// Calendar returns the calendar of the rule's working time.
func (r *Rule) Calendar() *Calendar { return r.cal }

// WarnBefore returns how long before the deadline the warning falls, in the
// rule's own time.
func (r *Rule) WarnBefore() time.Duration { return r.warn }

// Due returns the deadline for a clock started at start. Working minutes and
// hours count open time from start, so a start out of hours counts from the
// next opening; working days end at the closing time of the nth working day
// after the day of receipt (see [Calendar.AddWorkingDays]). Calendar time
// is plain elapsed time, except that calendar days keep the wall-clock time
// in the calendar's time zone across a daylight-saving change.
func (r *Rule) Due(start time.Time) time.Time {
	d, fixed := r.target.Duration()
	switch {
	case r.target.working && fixed:
		return r.cal.AddWorking(start, d)
	case r.target.working:
		return r.cal.AddWorkingDays(start, r.target.amount)
	case fixed:
		return start.Add(d)
	default:
		return start.In(r.cal.Location()).AddDate(0, 0, r.target.amount)
	}
}

// WarnAt returns when to warn of a deadline: WarnBefore earlier, counted in
// working time for a working-time target (one working hour before 09:30 on
// a 08:30 opening is 08:30 that day) and in calendar time otherwise. It is
// due itself when the policy sets no warning, and may fall before the clock
// started when the warning is longer than the target.
func (r *Rule) WarnAt(due time.Time) time.Time {
	if r.target.working {
		return r.cal.AddWorking(due, -r.warn)
	}
	return due.Add(-r.warn)
}

// Remaining returns the time left at at before due, in the rule's own time:
// open time for a working-time target, elapsed time otherwise. It is
// negative when due has passed. A clock paused at at keeps this amount.
func (r *Rule) Remaining(at, due time.Time) time.Duration {
	if r.target.working {
		return r.cal.WorkingBetween(at, due)
	}
	return due.Sub(at)
}

// Resume returns the new deadline of a clock resumed at at with remaining
// time left (from [Rule.Remaining] when it was paused): the time the clock
// was paused does not count. A resumption out of hours counts from the next
// opening.
func (r *Rule) Resume(at time.Time, remaining time.Duration) time.Time {
	if r.target.working {
		return r.cal.AddWorking(at, remaining)
	}
	return at.Add(remaining)
}
