package routing_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/networks"
	"github.com/citizeninbox/inbox/internal/routing"
)

// fragment is the part of the business configuration deploy/routing.*.yaml
// holds.
type fragment struct {
	Services []routing.ServiceSpec `yaml:"services"`
	Routing  routing.Spec          `yaml:"routing"`
}

// weekdayHours stands for a council's calendar: Monday to Friday
// 08:30–17:00 in London. Bank holidays do not matter to the corpus.
type weekdayHours struct{ loc *time.Location }

func (h weekdayHours) IsOpen(t time.Time) bool {
	t = t.In(h.loc)
	if t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
		return false
	}
	m := t.Hour()*60 + t.Minute()
	return m >= 8*60+30 && m < 17*60
}

func london(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func loadFragment(t testing.TB, path string, teams []string, calendars map[string]routing.Hours) *routing.Router {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f fragment
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r, err := routing.Compile(f.Routing, f.Services, routing.Names{
		Teams:     teams,
		Channels:  []string{"x", "facebook"},
		Accounts:  []string{"council-x"},
		Calendars: calendars,
	})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return r
}

// councilRouter is the router of the shipped example council
// configuration, deploy/config.example.yaml, compiled as the server does.
func councilRouter(t testing.TB) *routing.Router {
	t.Helper()
	reg, err := networks.Registry()
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.LoadAllowingUnset(filepath.Join("..", "..", "deploy", "config.example.yaml"),
		func(string) string { return "" }, reg)
	if err != nil {
		t.Fatal(err)
	}
	if f.Compiled.Router == nil {
		t.Fatal("the example configuration has no routing rules")
	}
	return f.Compiled.Router
}

// example is one labelled corpus line.
type example struct {
	Text       string  `json:"text"`
	Team       string  `json:"team"`
	Service    *string `json:"service"`
	Channel    string  `json:"channel"`
	Visibility string  `json:"visibility"`
}

func loadCorpus(t testing.TB, name string) []example {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "corpus", name))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}()
	var out []example
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e example
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s:%d: %v", name, n, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// score is how a router does on a corpus.
type score struct {
	n, team, service int
	misses           []string
}

func (s score) teamAccuracy() float64    { return float64(s.team) / float64(s.n) }
func (s score) serviceAccuracy() float64 { return float64(s.service) / float64(s.n) }

func (s score) String() string {
	return fmt.Sprintf("%d messages: team accuracy %.1f%%, service accuracy %.1f%%",
		s.n, 100*s.teamAccuracy(), 100*s.serviceAccuracy())
}

// A Tuesday mid-morning: in office hours, so no time rule changes routing.
var corpusTime = time.Date(2026, 3, 3, 10, 30, 0, 0, time.UTC)

func evaluate(r *routing.Router, corpus []example) score {
	s := score{n: len(corpus)}
	for _, e := range corpus {
		vis := e.Visibility
		if vis == "" {
			vis = "public"
		}
		ch := e.Channel
		if ch == "" {
			ch = "x"
		}
		d := r.Route(routing.Input{Text: e.Text, Channel: ch, Account: "council-x", Visibility: vis, ReceivedAt: corpusTime})
		want := ""
		if e.Service != nil {
			want = *e.Service
		}
		if d.Team == e.Team {
			s.team++
		}
		if d.Service == want {
			s.service++
		}
		if d.Team != e.Team || d.Service != want {
			text := e.Text
			if r := []rune(text); len(r) > 90 {
				text = string(r[:90]) + "…"
			}
			s.misses = append(s.misses, fmt.Sprintf("%s/%s → %s/%s: %q", e.Team, orNone(want), d.Team, orNone(d.Service), text))
		}
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Corpus sets: the training sets rules are written and tuned from, and the
// held-out check set that measures the rules on wording nobody tuned them
// for.
var (
	trainSets = []string{"council-train.jsonl", "council-train-2.jsonl"}
	checkSet  = "council-check.jsonl"
)

// TestCouncilCorpusAccuracy is the acceptance target of the example
// council's rules: at least 90% of messages reach the right team, on the
// sets the rules were written from and on the held-out check set. Misses
// are listed for the training sets only: listing the check set's would
// invite tuning rules to it (make bench lists them for the record).
func TestCouncilCorpusAccuracy(t *testing.T) {
	r := councilRouter(t)
	for _, set := range append(slices.Clone(trainSets), checkSet) {
		t.Run(strings.TrimSuffix(set, ".jsonl"), func(t *testing.T) {
			corpus := loadCorpus(t, set)
			if len(corpus) < 100 {
				t.Fatalf("%s holds %d messages, want at least 100", set, len(corpus))
			}
			s := evaluate(r, corpus)
			t.Log(s)
			floor := 0.90
			if set == "council-train-2.jsonl" {
				// Written after the rules, in wordings they did not know;
				// its first-contact figure was 81.9%. A floor that catches
				// a rule change that breaks it.
				floor = 0.85
			}
			if s.teamAccuracy() < floor {
				t.Errorf("%s: team accuracy %.1f%% is below %.0f%%", set, 100*s.teamAccuracy(), 100*floor)
				if set != checkSet {
					for _, m := range s.misses {
						t.Log(m)
					}
				}
			}
		})
	}
}

// BenchmarkRoutingCorpus prints team and service accuracy on both corpus
// sets with the confusion list of misses (expected → got), and measures
// routing one corpus message.
func BenchmarkRoutingCorpus(b *testing.B) {
	r := councilRouter(b)
	var all []example
	for _, set := range append(slices.Clone(trainSets), checkSet) {
		corpus := loadCorpus(b, set)
		s := evaluate(r, corpus)
		b.Logf("%s: %s", set, s)
		for _, m := range s.misses {
			b.Logf("  %s", m)
		}
		all = append(all, corpus...)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e := all[i%len(all)]
		r.Route(routing.Input{Text: e.Text, Channel: "x", Account: "council-x", Visibility: "public", ReceivedAt: corpusTime})
		i++
	}
}

var policeTeams = []string{"control-room", "neighbourhood-policing", "roads-policing", "public-protection",
	"public-contact", "professional-standards"}

// TestPoliceRules checks the example police force's rules compile and route
// typical messages from the public (written for this test, not from any
// corpus).
func TestPoliceRules(t *testing.T) {
	r := loadFragment(t, filepath.Join("..", "..", "deploy", "routing.police.yaml"), policeTeams,
		map[string]routing.Hours{"force-hours": weekdayHours{london(t)}})
	tests := []struct {
		text, team, service string
		emergency           bool
	}{
		{"Someone has just been stabbed outside the Wetherspoons", "control-room", "emergency", true},
		{"a man is following me now and I'm scared", "control-room", "emergency", true},
		{"He said he'll burn your house down and I know he means it", "control-room", "threat", false},
		{"My partner hits me when he drinks, I'm scared to go home", "public-protection", "domestic-abuse", false},
		{"My 15 year old daughter hasn't come home since last night", "public-protection", "missing-person", false},
		{"I want to end it all tonight", "public-protection", "safeguarding", false},
		{"My bike was stolen from outside the station, how do I get a crime number?", "public-contact", "crime-report", false},
		{"I've been scammed out of £2,000 by a fake website", "public-contact", "fraud", false},
		{"Cars racing up and down the bypass every night, dangerous driving", "roads-policing", "road-traffic", false},
		{"I have dashcam footage of a driver on his phone", "roads-policing", "road-traffic", false},
		{"Youths on scramblers tearing up the playing fields", "neighbourhood-policing", "asb", false},
		{"Obvious drug dealing from the flat above the chippy", "neighbourhood-policing", "drugs", false},
		{"The officer who came to my house was rude and unprofessional, I want to complain", "professional-standards", "complaint", false},
		{"How long does a shotgun certificate renewal take?", "public-contact", "firearms-licensing", false},
		{"Lost my wallet in town on Saturday, has anyone handed one in?", "public-contact", "lost-property", false},
		{"Someone lit a bonfire in the field behind us", "public-contact", "", false},
		{"What time does the front counter at the station open?", "public-contact", "", false},
	}
	for _, tt := range tests {
		d := r.Route(routing.Input{Text: tt.text, Channel: "x", Account: "council-x", Visibility: "public", ReceivedAt: corpusTime})
		if d.Team != tt.team || d.Service != tt.service || d.Emergency != tt.emergency {
			t.Errorf("%q = %s/%s emergency %v, want %s/%s %v\n%s", tt.text, d.Team, d.Service, d.Emergency,
				tt.team, tt.service, tt.emergency, d.Explain())
		}
	}
}

// TestCouncilRules pins down how the example council's rules read residents'
// idioms, typos and place names (messages written for this test).
func TestCouncilRules(t *testing.T) {
	r := councilRouter(t)
	tests := []struct {
		text, team, service  string
		emergency, safeguard bool
	}{
		{"Neighbours having a bonfire every Sunday, smoke everywhere in the house", "environmental-health", "", false, false},
		{"You should fire the manager of the leisure centre", "general", "", false, false},
		{"Parking permits cost a bomb here", "parking", "parking-permit", false, false},
		{"Thanks to the council my road is flooded again", "highways", "drainage", false, false},
		{"I can't go on like this with the damp in my flat", "housing", "damp-mould", false, false},
		{"Bins not collected in Mold since Friday", "waste", "missed-bin", false, false},
		{"Recyling not colected on our street", "waste", "recycling", false, false},
		{"massive pothloes on the bypass", "highways", "pothole", false, false},
		{"The flat next door is on fire and people are still inside", "duty", "emergency", true, false},
		{"I'm being followed home right now by two men", "duty", "emergency", true, false},
		{"I'm going to kill myself tonight", "duty", "safeguarding", false, true},
		{"If my bin isn't emptied I'll come down and smash the place up", "duty", "threat", false, true},
		{"The bin man was really rude to my mum, I want to complain", "general", "", false, false},
		{"Thank you to the crew who fixed our street light so quickly", "general", "", false, false},
		{"Could you collect my bin? I'd be grateful, it was missed on Monday", "waste", "missed-bin", false, false},
		{"Golau stryd wedi torri ar Heol y Bont", "highways", "street-light", false, false},
		{"Cheap crypto signals, DM me for the link", "general", "", false, false},
	}
	for _, tt := range tests {
		d := r.Route(routing.Input{Text: tt.text, Channel: "x", Account: "council-x", Visibility: "public", ReceivedAt: corpusTime})
		if d.Team != tt.team || d.Service != tt.service || d.Emergency != tt.emergency || d.Safeguarding != tt.safeguard {
			t.Errorf("%q = %s/%s emergency %v safeguarding %v, want %s/%s %v %v\n%s", tt.text, d.Team, d.Service,
				d.Emergency, d.Safeguarding, tt.team, tt.service, tt.emergency, tt.safeguard, d.Explain())
		}
	}
}
