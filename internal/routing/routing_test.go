package routing_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/citizeninbox/inbox/internal/routing"
)

// officeHours is open 09:00–17:00 UTC, every day: enough for conditions.
type officeHours struct{}

func (officeHours) IsOpen(t time.Time) bool {
	h := t.UTC().Hour()
	return h >= 9 && h < 17
}

var testNames = routing.Names{
	Teams:            []string{"waste", "highways", "housing", "duty", "general", "parking", "vip-desk", "night"},
	Accounts:         []string{"council-x", "council-fb"},
	Channels:         []string{"x", "facebook"},
	Acknowledgements: []string{"standard", "emergency-999"},
	Escalations:      []string{"supervisor"},
	Calendars:        map[string]routing.Hours{"office": officeHours{}},
}

var testServices = []routing.ServiceSpec{
	{Code: "missed-bin", Name: "Missed bin collection", Team: "waste"},
	{Code: "pothole", Name: "Pothole", Team: "highways"},
	{Code: "drainage", Name: "Drainage and flooding", Team: "highways"},
	{Code: "emergency", Name: "Emergency", Team: "duty"},
	{Code: "safeguarding", Name: "Safeguarding", Team: "duty"},
	{Code: "threat", Name: "Threat", Team: "duty"},
	{Code: "illegal-parking", Name: "Illegal parking", Team: "parking"},
}

const testSpec = `
default_team: general
default_priority: normal
time_zone: UTC
emergency:
  acknowledgement: emergency-999
  rules:
    - name: fire
      words: [house on fire, flat on fire, smoke coming]
      gap: 1
    - name: violence
      words: [stabbed, being followed now]
safeguarding:
  rules:
    - name: self-harm
      words: [kill myself, suicidal, end it all]
    - name: threats
      service: threat
      words: [i'll kill, ill hurt]
      not: [kill myself]
rule_sets:
  - name: services
    mode: first_match
    rules:
      - name: missed-bins
        words: [bin, wheelie bin]
        and: [[missed, not collected, not emptied]]
        gap: 2
        service: missed-bin
        acknowledgement: standard
      - name: potholes
        words: [pothole, pot hole]
        service: pothole
      - name: flooding
        words: [flood, blocked drain]
        not: [flood light]
        service: drainage
      - name: parking
        regex: ['\bpcn\s*[a-z]{2}\d{6,8}\b']
        words: [=parked]
        service: illegal-parking
  - name: flags
    mode: all_matches
    rules:
      - name: danger
        words: [dangerous, injured]
        priority: high
        tags: [hazard]
      - name: vip
        contact_tags: [vip]
        priority: high
        tags: [vip]
      - name: night
        time: ["22:00-06:00"]
        tags: [night]
      - name: out-of-hours
        out_of_hours: office
        tags: [ooh]
      - name: in-hours-private
        in_hours: office
        visibility: private
        tags: [private-in-hours]
      - name: facebook
        channels: [facebook]
        accounts: [council-fb]
        tags: [fb]
      - name: chase
        follow_up: true
        reroute: true
        words: [still waiting, chasing]
        priority: high
        tags: [chased]
`

func compileSpec(t testing.TB, src string) *routing.Router {
	t.Helper()
	var spec routing.Spec
	if err := yaml.Unmarshal([]byte(src), &spec); err != nil {
		t.Fatal(err)
	}
	r, err := routing.Compile(spec, testServices, testNames)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// noon is a weekday noon, in office hours and outside the night range.
var noon = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

func ruleNames(d routing.Decision) []string {
	var out []string
	for _, f := range d.Rules {
		out = append(out, f.Name)
	}
	return out
}

func TestRoute(t *testing.T) {
	r := compileSpec(t, testSpec)
	tests := []struct {
		name     string
		in       routing.Input
		team     string
		priority string
		service  string
		tags     []string
		rules    []string
	}{
		{"default", routing.Input{Text: "Thank you for the lovely flowers in the park"},
			"general", "normal", "", nil, nil},
		{"missed bin with gap", routing.Input{Text: "My bins were not been collected on Tuesday"},
			"waste", "normal", "missed-bin", nil, []string{"missed-bins"}},
		{"bin alone is not a missed bin", routing.Input{Text: "Can I have a new bin please"},
			"general", "normal", "", nil, nil},
		{"cabinet is not a bin", routing.Input{Text: "kitchen cabinet missed by the fitters"},
			"general", "normal", "", nil, nil},
		{"plural pothole", routing.Input{Text: "POTHOLES everywhere on the A470"},
			"highways", "normal", "pothole", nil, []string{"potholes"}},
		{"stemmed flood", routing.Input{Text: "Road flooded outside the school"},
			"highways", "normal", "drainage", nil, []string{"flooding"}},
		{"negation", routing.Input{Text: "the flood lights at the pitch are on all night"},
			"general", "normal", "", nil, nil},
		{"regex", routing.Input{Text: "I got PCN WK12345678 unfairly"},
			"parking", "normal", "illegal-parking", nil, []string{"parking"}},
		{"exact word", routing.Input{Text: "a van parked on the pavement"},
			"parking", "normal", "illegal-parking", nil, []string{"parking"}},
		{"exact word not other forms", routing.Input{Text: "parking is awful here"},
			"general", "normal", "", nil, nil},
		{"first match in set, all matches in flags", routing.Input{Text: "Dangerous pothole, my son was injured", Channel: "facebook", Account: "council-fb"},
			"highways", "high", "pothole", []string{"hazard", "fb"}, []string{"potholes", "danger", "facebook"}},
		{"account must match too", routing.Input{Text: "hello", Channel: "facebook", Account: "council-x"},
			"general", "normal", "", nil, nil},
		{"contact tag", routing.Input{Text: "hello", ContactTags: []string{"VIP"}},
			"general", "high", "", []string{"vip"}, []string{"vip"}},
		{"night range passes midnight", routing.Input{Text: "hello", ReceivedAt: time.Date(2026, 3, 2, 23, 30, 0, 0, time.UTC)},
			"general", "normal", "", []string{"night", "ooh"}, []string{"night", "out-of-hours"}},
		{"night range end excluded", routing.Input{Text: "hello", ReceivedAt: time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)},
			"general", "normal", "", []string{"ooh"}, []string{"out-of-hours"}},
		{"in hours and private", routing.Input{Text: "hello", Visibility: "private"},
			"general", "normal", "", []string{"private-in-hours"}, []string{"in-hours-private"}},
		{"new-case rule does not need follow-up", routing.Input{Text: "still waiting for my bin, it was missed"},
			"waste", "normal", "missed-bin", nil, []string{"missed-bins"}},
		{"emergency first", routing.Input{Text: "The house is on fire, also a pothole"},
			"duty", "urgent", "emergency", []string{"emergency"}, []string{"fire", "potholes"}},
		{"safeguarding", routing.Input{Text: "I feel suicidal and my bin was missed"},
			"duty", "urgent", "safeguarding", []string{"safeguarding"}, []string{"self-harm", "missed-bins"}},
		{"threat service", routing.Input{Text: "I'll kill the next binman I see"},
			"duty", "urgent", "threat", []string{"safeguarding"}, []string{"threats"}},
		{"bonfire is no emergency", routing.Input{Text: "neighbour's bonfire every weekend"},
			"general", "normal", "", nil, nil},
		{"fire the manager is no emergency", routing.Input{Text: "you should fire the manager of the house"},
			"general", "normal", "", nil, nil},
		{"killing it is no threat", routing.Input{Text: "the bin crew are killing it this week"},
			"general", "normal", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in.ReceivedAt.IsZero() {
				tt.in.ReceivedAt = noon
			}
			if tt.in.Visibility == "" {
				tt.in.Visibility = "public"
			}
			d := r.Route(tt.in)
			if d.Team != tt.team || d.Priority != tt.priority || d.Service != tt.service ||
				!slices.Equal(d.Tags, tt.tags) || !slices.Equal(ruleNames(d), tt.rules) {
				t.Errorf("Route(%q) = team %q priority %q service %q tags %q rules %q; want %q %q %q %q %q\n%s",
					tt.in.Text, d.Team, d.Priority, d.Service, d.Tags, ruleNames(d),
					tt.team, tt.priority, tt.service, tt.tags, tt.rules, d.Explain())
			}
		})
	}
}

func TestRouteFlags(t *testing.T) {
	r := compileSpec(t, testSpec)
	d := r.Route(routing.Input{Text: "someone has been STABBED outside", ReceivedAt: noon})
	if !d.Emergency || d.Safeguarding || d.NotifySupervisors || d.Acknowledgement != "emergency-999" {
		t.Errorf("emergency decision = %+v", d)
	}
	d = r.Route(routing.Input{Text: "I want to kill myself", ReceivedAt: noon})
	if d.Emergency || !d.Safeguarding || !d.NotifySupervisors || d.Service != "safeguarding" {
		t.Errorf("safeguarding decision = %+v", d)
	}
	d = r.Route(routing.Input{Text: "bin missed again", ReceivedAt: noon})
	if d.Emergency || d.Safeguarding || d.NotifySupervisors || d.Acknowledgement != "standard" {
		t.Errorf("ordinary decision = %+v", d)
	}
}

func TestRouteFollowUp(t *testing.T) {
	r := compileSpec(t, testSpec)
	tests := []struct {
		name          string
		text          string
		reroute       bool
		team, service string
		priority      string
		rules         []string
	}{
		{"ordinary rules do not re-route", "also there is a pothole", false, "", "", "", nil},
		{"nothing matched", "thanks", false, "", "", "", nil},
		{"reroute rule", "still waiting for an answer", true, "", "", "high", []string{"chase"}},
		{"emergency always applies", "he is back, I am being followed now", true, "duty", "emergency", "urgent", []string{"violence"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := r.Route(routing.Input{Text: tt.text, FollowUp: true, ReceivedAt: noon, Visibility: "public"})
			if d.Reroute != tt.reroute || d.Team != tt.team || d.Service != tt.service || d.Priority != tt.priority ||
				!slices.Equal(ruleNames(d), tt.rules) {
				t.Errorf("follow-up %q = %+v", tt.text, d)
			}
		})
	}
	// The same chase on a new case does not fire: follow_up: true.
	d := r.Route(routing.Input{Text: "still waiting for an answer", ReceivedAt: noon})
	if slices.Contains(ruleNames(d), "chase") {
		t.Errorf("chase fired on a new case: %v", ruleNames(d))
	}
}

func TestModesAndStop(t *testing.T) {
	src := `
default_team: general
rule_sets:
  - name: one
    mode: all_matches
    rules:
      - name: low-housing
        words: [damp]
        team: housing
        priority: low
        tags: [a]
      - name: urgent-waste
        words: [damp]
        team: waste
        priority: urgent
        tags: [b, a]
      - name: stopper
        words: [stop]
        stop: true
        tags: [stopped]
  - name: two
    mode: first_match
    rules:
      - name: first
        words: [damp]
        tags: [first]
      - name: second
        words: [damp]
        tags: [second]
`
	r := compileSpec(t, src)
	tests := []struct {
		text, team, priority string
		tags, rules          []string
	}{
		// Team from the first rule naming one, priority the highest, tags a union.
		{"damp", "housing", "urgent", []string{"a", "b", "first"}, []string{"low-housing", "urgent-waste", "first"}},
		// stop ends evaluation: set two never runs.
		{"damp stop", "housing", "urgent", []string{"a", "b", "stopped"}, []string{"low-housing", "urgent-waste", "stopper"}},
		{"stop", "general", "normal", []string{"stopped"}, []string{"stopper"}},
	}
	for _, tt := range tests {
		d := r.Route(routing.Input{Text: tt.text, ReceivedAt: noon})
		if d.Team != tt.team || d.Priority != tt.priority || !slices.Equal(d.Tags, tt.tags) || !slices.Equal(ruleNames(d), tt.rules) {
			t.Errorf("%q = team %q priority %q tags %q rules %q; want %q %q %q %q",
				tt.text, d.Team, d.Priority, d.Tags, ruleNames(d), tt.team, tt.priority, tt.tags, tt.rules)
		}
	}
}

func TestExplain(t *testing.T) {
	r := compileSpec(t, testSpec)
	tests := []struct {
		in   routing.Input
		want string
	}{
		{routing.Input{Text: "pothole on Main St"}, "routed to highways by rule `potholes`: matched 'pothole'"},
		{routing.Input{Text: "hello there"}, "no rule matched: default team general"},
		{routing.Input{Text: "a dangerous pothole"},
			"routed to highways by rule `potholes`: matched 'pothole'; also rule `danger`: matched 'dangerous'"},
		{routing.Input{Text: "my house is on fire"}, "emergency: routed to duty by rule `fire`: matched 'house is on fire'"},
		{routing.Input{Text: "hi", ContactTags: []string{"vip"}}, "routed to default team general; also rule `vip`: contact tag vip"},
		{routing.Input{Text: "pothole", FollowUp: true}, "follow-up: not re-routed"},
		{routing.Input{Text: "chasing this", FollowUp: true}, "follow-up re-routed without a team change; also rule `chase`: matched 'chasing'; follow-up"},
	}
	for _, tt := range tests {
		tt.in.ReceivedAt = noon
		tt.in.Visibility = "public"
		if got := r.Route(tt.in).Explain(); got != tt.want {
			t.Errorf("Explain(%q) =\n %s\nwant\n %s", tt.in.Text, got, tt.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []string // substrings of the error
	}{
		{"unknown team", `
default_team: general
rule_sets: [{name: s, rules: [{name: r1, words: [x], team: nope}]}]`, []string{`rule "r1" (set "s"): unknown team "nope"`}},
		{"unknown service", `
default_team: general
rule_sets: [{name: s, rules: [{name: r1, words: [x], service: nope}]}]`, []string{`rule "r1"`, `unknown service "nope"`}},
		{"unknown names", `
default_team: general
rule_sets: [{name: s, rules: [{name: r1, words: [x], channels: [tiktok], accounts: [acc], in_hours: cal, out_of_hours: cal2, acknowledgement: ack, escalation: esc, tags: [t]}]}]`,
			[]string{`unknown channel "tiktok"`, `unknown account "acc"`, `unknown calendar "cal"`, `unknown calendar "cal2"`, `unknown acknowledgement "ack"`, `unknown escalation policy "esc"`}},
		{"bad regex", `
default_team: general
rule_sets: [{name: s, rules: [{name: rx, regex: ['(unclosed'], tags: [t]}]}]`, []string{`rule "rx"`, "bad regular expression"}},
		{"bad not regex", `
default_team: general
rule_sets: [{name: s, rules: [{name: rx, words: [a], not_regex: ['[z-a]'], tags: [t]}]}]`, []string{`rule "rx"`, "not_regex: bad regular expression"}},
		{"bad priority", `
default_team: general
rule_sets: [{name: s, rules: [{name: p, words: [x], priority: critical}]}]`, []string{`rule "p"`, `priority "critical"`}},
		{"empty rule", `
default_team: general
rule_sets: [{name: s, rules: [{name: e1, team: waste}, {name: e2, words: [x]}]}]`, []string{`rule "e1" (set "s"): empty rule: no condition`, `rule "e2" (set "s"): empty rule: no action`}},
		{"duplicate rule", `
default_team: general
emergency: {rules: [{name: d, words: [x]}]}
rule_sets: [{name: s, rules: [{name: d, words: [x], tags: [t]}]}]`, []string{`rule "d" (set "s"): duplicate rule name (also in set "emergency")`}},
		{"word without letters", `
default_team: general
rule_sets: [{name: s, rules: [{name: w, words: ["!!"], tags: [t]}]}]`, []string{`rule "w"`, `"!!" holds no word`}},
		{"bad time", `
default_team: general
rule_sets: [{name: s, rules: [{name: tm, time: ["25:00-06:00", "10:00"], tags: [t]}]}]`, []string{`rule "tm"`, `"25:00" is not a time of day`, `"10:00" is not HH:MM-HH:MM`}},
		{"bad visibility and mode", `
default_team: general
rule_sets: [{name: s, mode: every, rules: [{name: v, visibility: secret, tags: [t]}]}]`, []string{`rule set "s": mode "every"`, `rule "v"`, `visibility "secret"`}},
		{"follow_up without reroute", `
default_team: general
rule_sets: [{name: s, rules: [{name: f, follow_up: true, tags: [t]}]}]`, []string{`rule "f"`, "needs reroute"}},
		{"defaults", `
default_team: nobody
default_priority: asap
rule_sets: []`, []string{`default_team "nobody"`, `default_priority "asap"`}},
		{"phrase set team", `
default_team: general
safeguarding: {team: social-care, rules: [{name: sg, words: [x]}]}`, []string{`rule "sg" (set "safeguarding"): unknown team "social-care"`}},
		{"unnamed", `
default_team: general
rule_sets: [{rules: [{words: [x], tags: [t]}]}, {name: s}, {name: s}]`, []string{`rule set "#1": rule set without a name`, "rule without a name", `rule set "s": duplicate rule set name`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spec routing.Spec
			if err := yaml.Unmarshal([]byte(tt.spec), &spec); err != nil {
				t.Fatal(err)
			}
			_, err := routing.Compile(spec, testServices, testNames)
			if err == nil {
				t.Fatal("Compile accepted an invalid spec")
			}
			if !errors.Is(err, routing.ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestCompileServiceErrors(t *testing.T) {
	services := []routing.ServiceSpec{
		{Code: "a", Team: "waste"},
		{Code: "a", Team: "waste"},
		{Code: "b", Team: "refuse"},
		{Name: "No code", Team: "waste"},
	}
	_, err := routing.Compile(routing.Spec{DefaultTeam: "general"}, services, testNames)
	var re *routing.RuleError
	if !errors.As(err, &re) || re.Set != "services" {
		t.Fatalf("error %v is not a service RuleError", err)
	}
	for _, w := range []string{`service "a": duplicate service code`, `service "b": unknown team "refuse"`, `service "No code": service without a code`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

func FuzzRoute(f *testing.F) {
	r := compileSpec(f, testSpec)
	for _, s := range []string{"", "bin missed", "house on fire", "\xff\xfe", "é́́́́", "PCN ab1234567", strings.Repeat("a b ", 200), "🔥🔥 on fire"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, followUp bool) {
		d := r.Route(routing.Input{Text: s, ReceivedAt: noon, FollowUp: followUp})
		if !followUp && (d.Team == "" || d.Priority == "") {
			t.Fatalf("Route(%q) left team or priority empty: %+v", s, d)
		}
		_ = d.Explain()
	})
}

func BenchmarkRoute(b *testing.B) {
	// The test spec plus 300 rules of their own words, phrases and, for one
	// in ten, a regular expression: a large council's configuration.
	var spec routing.Spec
	if err := yaml.Unmarshal([]byte(testSpec), &spec); err != nil {
		b.Fatal(err)
	}
	for i := range 10 {
		set := routing.RuleSetSpec{Name: fmt.Sprintf("bulk-%d", i), Mode: routing.AllMatches}
		for j := range 30 {
			n := i*30 + j
			ru := routing.RuleSpec{
				Name:  fmt.Sprintf("bulk-rule-%d", n),
				Words: []string{fmt.Sprintf("word%d", n), fmt.Sprintf("phrase%d of words", n), fmt.Sprintf("bins%d", n)},
				Not:   []string{fmt.Sprintf("never%d", n)},
				Gap:   1,
				Tags:  []string{fmt.Sprintf("t%d", n)},
			}
			if n%10 == 0 {
				ru.Regex = []string{fmt.Sprintf(`\bref%d-\d+\b`, n)}
			}
			set.Rules = append(set.Rules, ru)
		}
		spec.RuleSets = append(spec.RuleSets, set)
	}
	r, err := routing.Compile(spec, testServices, testNames)
	if err != nil {
		b.Fatal(err)
	}
	in := routing.Input{
		Text:       "Hi, my wheelie bins were not collected again on Heol Ŵyn and there is a dangerous pothole by no. 4 #bins",
		ReceivedAt: noon, Channel: "x", Account: "council-x", Visibility: "public",
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Route(in)
	}
}
