package sla

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var (
	testTeams       = []string{"waste", "highways", "housing", "council-tax", "parking", "environmental-health", "community-safety", "duty", "general"}
	testServices    = []string{"missed-bin", "pothole", "street-light", "damp-mould", "emergency"}
	testEscalations = []string{"standard", "highways-out-of-hours"}
)

// councilYAML is the example council's SLA block.
const councilYAML = `
calendar: council-hours
warn_before: 1 working hour
escalation: standard
priorities:
  low:    {first_response: 2 working days, resolution: 20 working days}
  normal: {first_response: 8 working hours, resolution: 10 working days}
  high:   {first_response: 4 working hours, resolution: 5 working days}
  urgent: {first_response: 1 hour, resolution: 24 hours, calendar: 24/7, warn_before: 15 minutes}
`

func councilSpec() PolicySpec {
	return PolicySpec{Level: Level{
		Calendar:   "council-hours",
		WarnBefore: "1 working hour",
		Escalation: "standard",
		Priorities: map[Priority]Targets{
			Low:    {FirstResponse: "2 working days", Resolution: "20 working days"},
			Normal: {FirstResponse: "8 working hours", Resolution: "10 working days"},
			High:   {FirstResponse: "4 working hours", Resolution: "5 working days"},
			Urgent: {FirstResponse: "1 hour", Resolution: "24 hours", Calendar: AlwaysOpen, WarnBefore: "15 minutes"},
		},
	}}
}

func buildPolicies(t testing.TB, spec PolicySpec) *Policies {
	t.Helper()
	p, err := BuildPolicies(spec, testCalendars(t), testTeams, testServices, testEscalations)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicySpecYAML(t *testing.T) {
	var got PolicySpec
	if err := yaml.Unmarshal([]byte(councilYAML), &got); err != nil {
		t.Fatal(err)
	}
	if want := councilSpec(); !reflect.DeepEqual(got, want) {
		t.Errorf("YAML gives\n%+v\nwant\n%+v", got, want)
	}
	var withTeams PolicySpec
	if err := yaml.Unmarshal([]byte(councilYAML+overridesYAML), &withTeams); err != nil {
		t.Fatal(err)
	}
	if want := overridesSpec(); !reflect.DeepEqual(withTeams, want) {
		t.Errorf("YAML with overrides gives\n%+v\nwant\n%+v", withTeams, want)
	}
	var cal CalendarSpec
	const calYAML = `
name: council-hours
hours:
  monday: ["08:30-12:30", "13:30-17:00"]
bank_holidays: england-and-wales
closures: ["2026-12-24"]
`
	if err := yaml.Unmarshal([]byte(calYAML), &cal); err != nil {
		t.Fatal(err)
	}
	want := CalendarSpec{Name: "council-hours", Hours: map[string][]string{"monday": {"08:30-12:30", "13:30-17:00"}}, BankHolidays: EnglandAndWales, Closures: []string{"2026-12-24"}}
	if !reflect.DeepEqual(cal, want) {
		t.Errorf("calendar YAML gives %+v, want %+v", cal, want)
	}
}

// TestCouncilDeadlines checks the example council's default policy.
func TestCouncilDeadlines(t *testing.T) {
	p := buildPolicies(t, councilSpec())
	tests := []struct {
		name     string
		pr       Priority
		rule     func(Clock) *Rule
		start    time.Time
		due      time.Time
		warnAt   time.Time
		calendar string
	}{
		{"normal first response", Normal, first, lon("2026-03-02 10:00"), lon("2026-03-03 09:30"), lon("2026-03-03 08:30"), "council-hours"},
		{"normal resolution", Normal, resolution, lon("2026-03-02 10:00"), lon("2026-03-16 17:00"), lon("2026-03-16 16:00"), "council-hours"},
		{"normal first response from saturday", Normal, first, lon("2026-03-07 23:00"), lon("2026-03-09 16:30"), lon("2026-03-09 15:30"), "council-hours"},
		{"normal resolution at the closing minute", Normal, resolution, lon("2026-03-02 17:00"), lon("2026-03-17 17:00"), lon("2026-03-17 16:00"), "council-hours"},
		{"normal first response on good friday", Normal, first, lon("2026-04-03 11:00"), lon("2026-04-07 16:30"), lon("2026-04-07 15:30"), "council-hours"},
		{"low first response", Low, first, lon("2026-03-02 10:00"), lon("2026-03-04 17:00"), lon("2026-03-04 16:00"), "council-hours"},
		{"low resolution over easter", Low, resolution, lon("2026-03-30 10:00"), lon("2026-04-29 17:00"), lon("2026-04-29 16:00"), "council-hours"},
		{"high first response", High, first, lon("2026-03-02 15:00"), lon("2026-03-03 10:30"), lon("2026-03-03 09:30"), "council-hours"},
		{"high resolution", High, resolution, lon("2026-03-02 10:00"), lon("2026-03-09 17:00"), lon("2026-03-09 16:00"), "council-hours"},
		{"high first response to the closing minute", High, first, lon("2026-03-02 13:00"), lon("2026-03-02 17:00"), lon("2026-03-02 16:00"), "council-hours"},
		{"runs out at closing", Normal, first, lon("2026-03-02 09:00"), lon("2026-03-02 17:00"), lon("2026-03-02 16:00"), "council-hours"},
		{"warning back to the previous day", Normal, first, lon("2026-03-02 09:30"), lon("2026-03-03 09:00"), lon("2026-03-02 16:30"), "council-hours"},
		{"urgent first response at night", Urgent, first, lon("2026-03-07 23:00"), lon("2026-03-08 00:00"), lon("2026-03-07 23:45"), AlwaysOpen},
		{"urgent resolution over the march change", Urgent, resolution, lon("2026-03-28 12:00"), lon("2026-03-29 13:00"), lon("2026-03-29 12:45"), AlwaysOpen},
		{"urgent resolution over the october change", Urgent, resolution, lon("2026-10-24 12:00"), lon("2026-10-25 11:00"), lon("2026-10-25 10:45"), AlwaysOpen},
		{"urgent on christmas day", Urgent, first, lon("2026-12-25 10:00"), lon("2026-12-25 11:00"), lon("2026-12-25 10:45"), AlwaysOpen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := p.For("highways", "", tc.pr)
			r := tc.rule(c)
			if r.Calendar().Name() != tc.calendar {
				t.Errorf("calendar %s, want %s", r.Calendar().Name(), tc.calendar)
			}
			due := r.Due(tc.start)
			if !due.Equal(tc.due) {
				t.Fatalf("Due(%s) = %s, want %s", tc.start, due, tc.due)
			}
			if got := r.WarnAt(due); !got.Equal(tc.warnAt) {
				t.Errorf("WarnAt(%s) = %s, want %s", due, got, tc.warnAt)
			}
			if c.Escalation != "standard" {
				t.Errorf("escalation %q", c.Escalation)
			}
		})
	}
	if c := p.For("highways", "", Normal); c.NextResponse != nil {
		t.Errorf("next response %v without a target", c.NextResponse.Target())
	}
}

func first(c Clock) *Rule      { return c.FirstResponse }
func resolution(c Clock) *Rule { return c.Resolution }
func next(c Clock) *Rule       { return c.NextResponse }

func TestPauseResume(t *testing.T) {
	p := buildPolicies(t, councilSpec())
	tests := []struct {
		name                 string
		pr                   Priority
		rule                 func(Clock) *Rule
		start, pause, resume time.Time
		remaining            time.Duration
		due                  time.Time
	}{
		// Paused Friday 16:00, resumed Monday 10:00: the hour on Friday and
		// the hour and a half on Monday morning do not count.
		{"first response over a weekend", Normal, first, lon("2026-03-06 15:00"), lon("2026-03-06 16:00"), lon("2026-03-09 10:00"), 7 * time.Hour, lon("2026-03-09 17:00")},
		{"resolution over a weekend", Normal, resolution, lon("2026-03-02 10:00"), lon("2026-03-06 16:00"), lon("2026-03-09 10:00"), 52 * time.Hour, lon("2026-03-17 11:00")},
		{"paused and resumed out of hours", Normal, first, lon("2026-03-06 15:00"), lon("2026-03-06 18:00"), lon("2026-03-07 11:00"), 6 * time.Hour, lon("2026-03-09 14:30")},
		{"resumed on a holiday", Normal, first, lon("2026-04-02 15:00"), lon("2026-04-02 16:00"), lon("2026-04-06 12:00"), 7 * time.Hour, lon("2026-04-07 15:30")},
		{"resumed after christmas", High, resolution, lon("2026-12-21 10:00"), lon("2026-12-23 10:00"), lon("2026-12-29 10:00"), 3*(8*time.Hour+30*time.Minute) + 7*time.Hour, lon("2027-01-04 17:00")},
		{"calendar time", Urgent, resolution, lon("2026-03-28 12:00"), lon("2026-03-28 18:00"), lon("2026-03-29 09:00"), 18 * time.Hour, lon("2026-03-30 03:00")},
		{"paused after the deadline", Normal, first, lon("2026-03-02 10:00"), lon("2026-03-03 10:30"), lon("2026-03-04 09:30"), -time.Hour, lon("2026-03-04 08:30")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.rule(p.For("waste", "", tc.pr))
			due := r.Due(tc.start)
			rem := r.Remaining(tc.pause, due)
			if rem != tc.remaining {
				t.Fatalf("Remaining(%s, %s) = %s, want %s", tc.pause, due, rem, tc.remaining)
			}
			if got := r.Resume(tc.resume, rem); !got.Equal(tc.due) {
				t.Errorf("Resume(%s, %s) = %s, want %s", tc.resume, rem, got, tc.due)
			}
		})
	}
}

// overridesSpec is the council's policy with overrides for two teams and
// two of highways' services.
func overridesSpec() PolicySpec {
	spec := councilSpec()
	spec.Teams = map[string]TeamPolicy{
		"highways": {
			Level: Level{
				Escalation: "highways-out-of-hours",
				Priorities: map[Priority]Targets{
					High:   {Resolution: "3 working days", NextResponse: "4 working hours"},
					Normal: {WarnBefore: "2 working hours"},
				},
			},
			Services: map[string]Level{
				"pothole": {Priorities: map[Priority]Targets{High: {Resolution: "2 working days"}}},
				"street-light": {Calendar: "split", Priorities: map[Priority]Targets{
					High: {NextResponse: NoTarget},
				}},
			},
		},
		"housing": {Level: Level{Calendar: "split", WarnBefore: "30 minutes"}},
	}
	return spec
}

// overridesYAML is overridesSpec's teams as written in the configuration.
const overridesYAML = `
teams:
  highways:
    escalation: highways-out-of-hours
    priorities:
      high: {resolution: 3 working days, next_response: 4 working hours}
      normal: {warn_before: 2 working hours}
    services:
      pothole:
        priorities:
          high: {resolution: 2 working days}
      street-light:
        calendar: split
        priorities:
          high: {next_response: none}
  housing: {calendar: split, warn_before: 30 minutes}
`

func TestOverrides(t *testing.T) {
	spec := overridesSpec()
	p := buildPolicies(t, spec)
	tests := []struct {
		name, team, service string
		pr                  Priority
		rule                func(Clock) *Rule
		target, calendar    string
		warn                time.Duration
		escalation          string
	}{
		{"default", "waste", "", High, resolution, "5 working days", "council-hours", time.Hour, "standard"},
		{"unknown team gets the default", "no-such-team", "", High, resolution, "5 working days", "council-hours", time.Hour, "standard"},
		{"service without an override gets the default", "waste", "missed-bin", High, resolution, "5 working days", "council-hours", time.Hour, "standard"},
		{"team override", "highways", "", High, resolution, "3 working days", "council-hours", time.Hour, "highways-out-of-hours"},
		{"team inherits what it does not set", "highways", "", High, first, "4 working hours", "council-hours", time.Hour, "highways-out-of-hours"},
		{"team adds a next response", "highways", "", High, next, "4 working hours", "council-hours", time.Hour, "highways-out-of-hours"},
		{"team's priority warning", "highways", "", Normal, first, "8 working hours", "council-hours", 2 * time.Hour, "highways-out-of-hours"},
		{"service beats team", "highways", "pothole", High, resolution, "2 working days", "council-hours", time.Hour, "highways-out-of-hours"},
		{"service inherits from team", "highways", "pothole", High, next, "4 working hours", "council-hours", time.Hour, "highways-out-of-hours"},
		{"service inherits from default", "highways", "pothole", Low, resolution, "20 working days", "council-hours", time.Hour, "highways-out-of-hours"},
		{"service calendar", "highways", "street-light", High, resolution, "3 working days", "split", time.Hour, "highways-out-of-hours"},
		{"unknown service gets its team's", "highways", "graffiti", High, resolution, "3 working days", "council-hours", time.Hour, "highways-out-of-hours"},
		{"team calendar beats a default priority's", "housing", "", Urgent, first, "1 hour", "split", 30 * time.Minute, "standard"},
		{"team warning beats the default", "housing", "", Low, first, "2 working days", "split", 30 * time.Minute, "standard"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := p.For(tc.team, tc.service, tc.pr)
			r := tc.rule(c)
			if r == nil {
				t.Fatal("no rule")
			}
			if r.Target().String() != tc.target || r.Calendar().Name() != tc.calendar || r.WarnBefore() != tc.warn || c.Escalation != tc.escalation {
				t.Errorf("got %s on %s warning %s escalating to %q; want %s on %s warning %s escalating to %q",
					r.Target(), r.Calendar().Name(), r.WarnBefore(), c.Escalation, tc.target, tc.calendar, tc.warn, tc.escalation)
			}
		})
	}
	if r := p.For("highways", "street-light", High).NextResponse; r != nil {
		t.Errorf("next response %s, want none", r.Target())
	}
	if c := p.For("waste", "", "critical"); c != (Clock{}) {
		t.Errorf("unknown priority gives %+v", c)
	}
	// Split shifts: 7.5 working hours a day.
	due := p.For("highways", "street-light", High).FirstResponse.Due(lon("2026-03-02 15:00"))
	if want := lon("2026-03-03 10:30"); !due.Equal(want) {
		t.Errorf("split-shift first response due %s, want %s", due, want)
	}
}

func TestBuildPoliciesErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(*PolicySpec)
		want   string
	}{
		{"misspelt target", func(s *PolicySpec) {
			s.Teams = map[string]TeamPolicy{"highways": {Level: Level{Priorities: map[Priority]Targets{High: {Resolution: "5 workng days"}}}}}
		}, `sla.teams.highways.priorities.high.resolution: "5 workng days" is not a target`},
		{"bad default target", func(s *PolicySpec) { s.Priorities[Low] = Targets{FirstResponse: "soon", Resolution: "1 day"} },
			`sla.priorities.low.first_response: "soon" is not a target`},
		{"bad next response", func(s *PolicySpec) {
			s.Priorities[Low] = Targets{FirstResponse: "1 day", NextResponse: "never", Resolution: "1 day"}
		},
			`sla.priorities.low.next_response: "never" is not a target`},
		{"unknown calendar", func(s *PolicySpec) { s.Calendar = "council-hour" }, `sla.calendar: no calendar is called "council-hour"`},
		{"unknown priority calendar", func(s *PolicySpec) {
			s.Priorities[Urgent] = Targets{FirstResponse: "1 hour", Resolution: "1 day", Calendar: "24x7"}
		},
			`sla.priorities.urgent.calendar: no calendar is called "24x7"`},
		{"unknown team", func(s *PolicySpec) { s.Teams = map[string]TeamPolicy{"highway": {}} }, `sla.teams.highway: no team is called "highway"`},
		{"unknown service", func(s *PolicySpec) {
			s.Teams = map[string]TeamPolicy{"highways": {Services: map[string]Level{"potholes": {}}}}
		}, `sla.teams.highways.services.potholes: no service has the code "potholes"`},
		{"bad service target", func(s *PolicySpec) {
			s.Teams = map[string]TeamPolicy{"highways": {Services: map[string]Level{"pothole": {Priorities: map[Priority]Targets{Urgent: {FirstResponse: "1 hour 24/8"}}}}}}
		}, `sla.teams.highways.services.pothole.priorities.urgent.first_response: "1 hour 24/8" is not a target`},
		{"unknown escalation", func(s *PolicySpec) { s.Teams = map[string]TeamPolicy{"duty": {Level: Level{Escalation: "panic"}}} },
			`sla.teams.duty.escalation: no escalation policy is called "panic"`},
		{"unknown priority", func(s *PolicySpec) { s.Priorities["critical"] = Targets{FirstResponse: "1 hour", Resolution: "1 day"} },
			`sla.priorities.critical: not a priority`},
		{"missing priority", func(s *PolicySpec) { delete(s.Priorities, Urgent) }, "sla.priorities.urgent: missing"},
		{"missing first response", func(s *PolicySpec) { s.Priorities[High] = Targets{Resolution: "5 working days"} }, "sla.priorities.high.first_response: missing"},
		{"missing resolution", func(s *PolicySpec) { s.Priorities[High] = Targets{FirstResponse: "4 working hours"} }, "sla.priorities.high.resolution: missing"},
		{"missing calendar", func(s *PolicySpec) { s.Calendar = "" }, "sla.priorities.low.calendar: missing, and sla.calendar names none"},
		{"warning in days", func(s *PolicySpec) { s.WarnBefore = "1 working day" }, `sla.warn_before: "1 working day" is not in minutes or hours`},
		{"bad warning", func(s *PolicySpec) { s.Teams = map[string]TeamPolicy{"waste": {Level: Level{WarnBefore: "a bit"}}} },
			`sla.teams.waste.warn_before: "a bit" is not a target`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := councilSpec()
			tc.change(&spec)
			_, err := BuildPolicies(spec, testCalendars(t), testTeams, testServices, testEscalations)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %v is not a *FieldError", err)
			}
		})
	}
	t.Run("every problem reported", func(t *testing.T) {
		spec := councilSpec()
		spec.Escalation = "nope"
		delete(spec.Priorities, Low)
		spec.Teams = map[string]TeamPolicy{"highways": {Level: Level{Calendar: "nope"}}}
		_, err := BuildPolicies(spec, testCalendars(t), testTeams, testServices, testEscalations)
		for _, want := range []string{"sla.escalation", "sla.priorities.low", "sla.teams.highways.calendar"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not name %s", err, want)
			}
		}
	})
}

func TestNewRule(t *testing.T) {
	cals := testCalendars(t)
	target, err := ParseTarget("2 days")
	if err != nil {
		t.Fatal(err)
	}
	r := NewRule(target, cals["council-hours"], time.Hour)
	// Calendar days keep the wall-clock time over the clock change.
	if got, want := r.Due(lon("2026-03-28 12:00")), lon("2026-03-30 12:00"); !got.Equal(want) {
		t.Errorf("Due = %s, want %s", got, want)
	}
	if got, want := r.WarnAt(lon("2026-03-30 12:00")), lon("2026-03-30 11:00"); !got.Equal(want) {
		t.Errorf("WarnAt = %s, want %s", got, want)
	}
}
