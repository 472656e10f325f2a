package routing

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every error Compile returns.
var ErrInvalid = errors.New("invalid routing configuration")

// RuleError names the rule (or service) a configuration error is about.
type RuleError struct {
	Set  string // rule set name, "emergency", "safeguarding" or "services"
	Rule string // rule name (service code for the catalogue); "" for the set itself
	Err  error
}

func (e *RuleError) Error() string {
	switch {
	case e.Set == "services":
		return fmt.Sprintf("routing: service %q: %v", e.Rule, e.Err)
	case e.Rule == "":
		return fmt.Sprintf("routing: rule set %q: %v", e.Set, e.Err)
	default:
		return fmt.Sprintf("routing: rule %q (set %q): %v", e.Rule, e.Set, e.Err)
	}
}

func (e *RuleError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

// Hours tells whether a business calendar is open at a time.
type Hours interface {
	IsOpen(time.Time) bool
}

// Priorities, lowest first.
var priorities = []string{"low", "normal", "high", "urgent"}

func priorityRank(p string) int { return slices.Index(priorities, p) }

// set kinds
const (
	kindRules = iota
	kindEmergency
	kindSafeguarding
)

// Router routes messages with compiled rules. It is safe for concurrent use.
type Router struct {
	sets     []*ruleSet
	services map[string]ServiceSpec
	typos    *typoIndex // nil when no rule allows typos
	// Rules whose text condition needs one of their words, by the first
	// term of each word or phrase: a message's words pick the only rules
	// worth evaluating. Rules with a regex or no words are always tried.
	byStem, byWord  map[string][]int
	nrules          int
	loc             *time.Location
	defaultTeam     string
	defaultPriority string
}

type ruleSet struct {
	name       string
	kind       int
	firstMatch bool
	rules      []*rule
}

type rule struct {
	name string
	set  *ruleSet
	id   int
	// gated: the rule can only fire when one of its words occurs, so it
	// is skipped unless the message holds a first term of one of them.
	gated bool

	any      []phrase
	regex    []*regexp.Regexp
	and      [][]phrase
	gap      int
	not      []phrase
	notRegex []*regexp.Regexp

	channels, accounts []string
	visibility         string
	times              []dayRange
	inHours            Hours
	inHoursName        string
	outHours           Hours
	outHoursName       string
	contactTags        []string
	followUp           *bool

	team, priority, service, ack, escalation string
	tags                                     []string
	notify, stop, reroute                    bool
}

type dayRange struct {
	src        string
	start, end int // minutes after midnight; end may be < start (passes midnight)
}

func (d dayRange) contains(m int) bool {
	if d.start < d.end {
		return m >= d.start && m < d.end
	}
	return m >= d.start || m < d.end
}

// Compile checks spec against the service catalogue and the names the rest
// of the configuration defines, and builds a Router. It reports every
// problem found, each naming its rule, joined in one error wrapping
// ErrInvalid.
func Compile(spec Spec, services []ServiceSpec, names Names) (*Router, error) {
	c := compiler{names: names, services: map[string]ServiceSpec{}, seen: map[string]string{}, typos: newTypoIndex()}
	r := &Router{services: c.services, defaultTeam: spec.DefaultTeam, defaultPriority: spec.DefaultPriority}

	for _, s := range services {
		switch {
		case s.Code == "":
			c.fail("services", s.Name, errors.New("service without a code"))
		case c.services[s.Code].Code != "":
			c.fail("services", s.Code, errors.New("duplicate service code"))
		case !slices.Contains(names.Teams, s.Team):
			c.fail("services", s.Code, fmt.Errorf("unknown team %q", s.Team))
		}
		if s.Code != "" {
			c.services[s.Code] = s
		}
	}

	tz := spec.TimeZone
	if tz == "" {
		tz = "Europe/London"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		c.fail("routing", "", fmt.Errorf("time_zone %q: %w", tz, err))
		loc = time.UTC
	}
	r.loc = loc

	if r.defaultPriority == "" {
		r.defaultPriority = "normal"
	}
	if !slices.Contains(names.Teams, r.defaultTeam) {
		c.fail("routing", "", fmt.Errorf("default_team %q is not a team", r.defaultTeam))
	}
	if priorityRank(r.defaultPriority) < 0 {
		c.fail("routing", "", fmt.Errorf("default_priority %q is not low, normal, high or urgent", r.defaultPriority))
	}

	r.sets = append(r.sets,
		c.phraseSet("emergency", kindEmergency, spec.Emergency),
		c.phraseSet("safeguarding", kindSafeguarding, spec.Safeguarding))
	setNames := map[string]bool{"emergency": true, "safeguarding": true}
	for i, rs := range spec.RuleSets {
		name := rs.Name
		if name == "" {
			name = "#" + strconv.Itoa(i+1)
			c.fail(name, "", errors.New("rule set without a name"))
		} else if setNames[name] {
			c.fail(name, "", errors.New("duplicate rule set name"))
		}
		setNames[name] = true
		set := &ruleSet{name: name, kind: kindRules}
		switch rs.Mode {
		case "", FirstMatch:
			set.firstMatch = true
		case AllMatches:
		default:
			c.fail(name, "", fmt.Errorf("mode %q is not first_match or all_matches", rs.Mode))
		}
		for _, rsp := range rs.Rules {
			if ru := c.rule(set, rsp); ru != nil {
				set.rules = append(set.rules, ru)
			}
		}
		r.sets = append(r.sets, set)
	}

	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	if c.anyTypos {
		r.typos = c.typos
	}
	r.index()
	return r, nil
}

// index numbers the rules and files the gated ones under the first term of
// each of their words.
func (r *Router) index() {
	r.byStem, r.byWord = map[string][]int{}, map[string][]int{}
	for _, set := range r.sets {
		for _, ru := range set.rules {
			ru.id = r.nrules
			r.nrules++
			ru.gated = len(ru.any) > 0 && len(ru.regex) == 0
			if !ru.gated {
				continue
			}
			for _, p := range ru.any {
				tm := p.terms[0]
				if tm.exact {
					r.byWord[tm.key] = append(r.byWord[tm.key], ru.id)
				} else {
					r.byStem[tm.key] = append(r.byStem[tm.key], ru.id)
				}
			}
		}
	}
}

type compiler struct {
	names    Names
	services map[string]ServiceSpec
	seen     map[string]string // rule name → set
	typos    *typoIndex
	anyTypos bool
	errs     []error
}

func (c *compiler) fail(set, rule string, err error) {
	c.errs = append(c.errs, &RuleError{Set: set, Rule: rule, Err: err})
}

func (c *compiler) phraseSet(name string, kind int, ps PhraseSet) *ruleSet {
	set := &ruleSet{name: name, kind: kind}
	if len(ps.Rules) == 0 {
		return set
	}
	team, service, tags := ps.Team, ps.Service, ps.Tags
	if team == "" {
		team = "duty"
	}
	if service == "" {
		if _, ok := c.services[name]; ok {
			service = name
		}
	}
	if tags == nil {
		tags = []string{name}
	}
	for _, rsp := range ps.Rules {
		if rsp.Team == "" {
			rsp.Team = team
		}
		if rsp.Service == "" {
			rsp.Service = service
		}
		if rsp.Priority == "" {
			rsp.Priority = "urgent"
		}
		rsp.Tags = append(slices.Clone(tags), rsp.Tags...)
		if rsp.Acknowledgement == "" {
			rsp.Acknowledgement = ps.Acknowledgement
		}
		if rsp.Escalation == "" {
			rsp.Escalation = ps.Escalation
		}
		rsp.Reroute = true
		if kind == kindSafeguarding {
			rsp.NotifySupervisors = true
		}
		if ru := c.rule(set, rsp); ru != nil {
			set.rules = append(set.rules, ru)
		}
	}
	return set
}

func (c *compiler) rule(set *ruleSet, s RuleSpec) *rule {
	n := len(c.errs)
	bad := func(format string, a ...any) { c.fail(set.name, s.Name, fmt.Errorf(format, a...)) }
	if s.Name == "" {
		bad("rule without a name")
	} else if other, dup := c.seen[s.Name]; dup {
		bad("duplicate rule name (also in set %q)", other)
	} else {
		c.seen[s.Name] = set.name
	}

	ru := &rule{name: s.Name, set: set, gap: s.Gap, visibility: s.Visibility, followUp: s.FollowUp,
		channels: s.Channels, accounts: s.Accounts, team: s.Team, priority: s.Priority, service: s.Service,
		ack: s.Acknowledgement, escalation: s.Escalation, tags: s.Tags,
		notify: s.NotifySupervisors, stop: s.Stop, reroute: s.Reroute}
	for _, t := range s.ContactTags {
		ru.contactTags = append(ru.contactTags, strings.ToLower(t))
	}

	phrases := func(field string, src []string) []phrase {
		var out []phrase
		for _, w := range src {
			p, ok := parsePhrase(w)
			if !ok {
				bad("%s: %q holds no word", field, w)
				continue
			}
			out = append(out, p)
		}
		return out
	}
	regexes := func(field string, src []string) []*regexp.Regexp {
		var out []*regexp.Regexp
		for _, x := range src {
			re, err := regexp.Compile(x)
			if err != nil {
				bad("%s: bad regular expression %q: %v", field, x, err)
				continue
			}
			out = append(out, re)
		}
		return out
	}
	ru.any = c.allowTypos(phrases("words", s.Words), s.Typos)
	ru.regex = regexes("regex", s.Regex)
	for _, group := range s.And {
		if len(group) == 0 {
			bad("and: empty word list")
			continue
		}
		ru.and = append(ru.and, c.allowTypos(phrases("and", group), s.Typos))
	}
	ru.not = c.allowTypos(phrases("not", s.Not), false)
	ru.notRegex = regexes("not_regex", s.NotRegex)
	if s.Gap < 0 || s.Gap > 10 {
		bad("gap %d is not between 0 and 10", s.Gap)
	}

	for _, ch := range s.Channels {
		if !slices.Contains(c.names.Channels, ch) {
			bad("unknown channel %q", ch)
		}
	}
	for _, a := range s.Accounts {
		if !slices.Contains(c.names.Accounts, a) {
			bad("unknown account %q", a)
		}
	}
	if s.Visibility != "" && s.Visibility != "public" && s.Visibility != "private" {
		bad("visibility %q is not public or private", s.Visibility)
	}
	for _, tr := range s.Time {
		d, err := parseDayRange(tr)
		if err != nil {
			bad("time: %v", err)
			continue
		}
		ru.times = append(ru.times, d)
	}
	calendar := func(field, name string) Hours {
		if name == "" {
			return nil
		}
		h, ok := c.names.Calendars[name]
		if !ok || h == nil {
			bad("%s: unknown calendar %q", field, name)
			return nil
		}
		return h
	}
	ru.inHours, ru.inHoursName = calendar("in_hours", s.InHours), s.InHours
	ru.outHours, ru.outHoursName = calendar("out_of_hours", s.OutOfHours), s.OutOfHours
	if s.FollowUp != nil && *s.FollowUp && !s.Reroute {
		bad("follow_up: true needs reroute: true, or the rule can never fire")
	}

	if s.Team != "" && !slices.Contains(c.names.Teams, s.Team) {
		bad("unknown team %q", s.Team)
	}
	if s.Service != "" {
		if sv, ok := c.services[s.Service]; !ok {
			bad("unknown service %q", s.Service)
		} else if ru.team == "" {
			ru.team = sv.Team
		}
	}
	if s.Priority != "" && priorityRank(s.Priority) < 0 {
		bad("priority %q is not low, normal, high or urgent", s.Priority)
	}
	if s.Acknowledgement != "" && !slices.Contains(c.names.Acknowledgements, s.Acknowledgement) {
		bad("unknown acknowledgement %q", s.Acknowledgement)
	}
	if s.Escalation != "" && !slices.Contains(c.names.Escalations, s.Escalation) {
		bad("unknown escalation policy %q", s.Escalation)
	}

	hasCondition := len(s.Words)+len(s.Regex)+len(s.And)+len(s.Not)+len(s.NotRegex)+len(s.Channels)+
		len(s.Accounts)+len(s.Time)+len(s.ContactTags) > 0 ||
		s.Visibility != "" || s.InHours != "" || s.OutOfHours != "" || s.FollowUp != nil
	if !hasCondition {
		bad("empty rule: no condition")
	}
	hasAction := s.Team != "" || s.Priority != "" || s.Service != "" || len(s.Tags) > 0 ||
		s.Acknowledgement != "" || s.Escalation != "" || s.NotifySupervisors || s.Stop
	if !hasAction {
		bad("empty rule: no action")
	}
	if len(c.errs) > n {
		return nil
	}
	return ru
}

// allowTypos records the words of ps as configured vocabulary and, when
// typos is set, lets those long enough match one typo away.
func (c *compiler) allowTypos(ps []phrase, typos bool) []phrase {
	for i := range ps {
		for j, tm := range ps[i].terms {
			c.typos.known(tm)
			if typos && !tm.exact && c.typos.add(tm) {
				ps[i].terms[j].typos = true
				c.anyTypos = true
			}
		}
	}
	return ps
}

func parseDayRange(s string) (dayRange, error) {
	a, b, ok := strings.Cut(strings.ReplaceAll(s, " ", ""), "-")
	if !ok {
		return dayRange{}, fmt.Errorf("%q is not HH:MM-HH:MM", s)
	}
	start, err1 := parseClock(a)
	end, err2 := parseClock(b)
	if err := errors.Join(err1, err2); err != nil {
		return dayRange{}, fmt.Errorf("%q: %w", s, err)
	}
	if start == end {
		return dayRange{}, fmt.Errorf("%q is empty", s)
	}
	return dayRange{src: s, start: start, end: end}, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not a time of day", s)
	}
	return hh*60 + mm, nil
}
