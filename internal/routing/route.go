package routing

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Input is one resident message as routing sees it.
type Input struct {
	Text       string
	Channel    string // channel name: x, facebook…
	Account    string // channel account slug
	Visibility string // public or private
	ReceivedAt time.Time
	// FollowUp: the message continues an open case.
	FollowUp    bool
	ContactTags []string
}

// Decision is where a message goes and why.
type Decision struct {
	Team, Priority string
	Service        string // a service_code, or ""
	Tags           []string
	// Acknowledgement template name, or "" for the account's own.
	Acknowledgement string
	// Escalation policy name, or "" for the SLA policy's own.
	Escalation        string
	Emergency         bool
	Safeguarding      bool
	NotifySupervisors bool
	// Rules that fired, in evaluation order.
	Rules []Fired
	// Reroute is set for a follow-up on an open case when a rule applied to
	// it (an emergency or safeguarding phrase, or a rule with reroute). The
	// caller then applies the non-empty fields to the case; with Reroute
	// false the case keeps its team, priority and service. Follow-up
	// decisions carry no defaults.
	Reroute bool
}

// Fired is one rule that fired, and why.
type Fired struct {
	Name string `json:"name"`
	Set  string `json:"set"`
	// Matched holds the message's words (or regular expression matches)
	// that satisfied the rule's text conditions.
	Matched []string `json:"matched"`
	// Reason sums up the conditions that held: "matched 'pothole'",
	// "out of hours (council-hours)".
	Reason string `json:"reason"`
	// Team is set on the rule that gave the case its team.
	Team string `json:"team,omitempty"`
}

// Route decides where in goes. It never fails: a message no rule matches
// goes to the default team with the default priority.
func (r *Router) Route(in Input) Decision {
	t := analyse(in.Text, r.typos)
	var d Decision
	rank := -1
	local := in.ReceivedAt.In(r.loc)
	minute := local.Hour()*60 + local.Minute()

	candidate := make([]bool, r.nrules)
	mark := func(ids []int) {
		for _, id := range ids {
			candidate[id] = true
		}
	}
	for _, tk := range t.tokens {
		mark(r.byStem[tk.stem])
		mark(r.byWord[tk.word])
		for _, k := range tk.alts {
			mark(r.byStem[k])
		}
	}

sets:
	for _, set := range r.sets {
		for _, ru := range set.rules {
			if in.FollowUp && !ru.reroute || ru.gated && !candidate[ru.id] {
				continue
			}
			matched, ok := ru.match(t, in, minute)
			if !ok {
				continue
			}
			f := ru.fired(in, minute, matched)
			if d.Team == "" && ru.team != "" {
				d.Team = ru.team
				f.Team = ru.team
			}
			if d.Service == "" {
				d.Service = ru.service
			}
			if pr := priorityRank(ru.priority); pr > rank {
				rank, d.Priority = pr, ru.priority
			}
			for _, tag := range ru.tags {
				if !slices.Contains(d.Tags, tag) {
					d.Tags = append(d.Tags, tag)
				}
			}
			if d.Acknowledgement == "" {
				d.Acknowledgement = ru.ack
			}
			if d.Escalation == "" {
				d.Escalation = ru.escalation
			}
			d.Emergency = d.Emergency || set.kind == kindEmergency
			d.Safeguarding = d.Safeguarding || set.kind == kindSafeguarding
			d.NotifySupervisors = d.NotifySupervisors || ru.notify
			d.Rules = append(d.Rules, f)
			if ru.stop {
				break sets
			}
			if set.firstMatch {
				break
			}
		}
	}

	if in.FollowUp {
		d.Reroute = len(d.Rules) > 0
		return d
	}
	if d.Team == "" {
		d.Team = r.defaultTeam
	}
	if d.Priority == "" {
		d.Priority = r.defaultPriority
	}
	return d
}

// match tells whether the rule fires for the message: cheap conditions
// first, then the text. It returns the text that matched.
func (ru *rule) match(t *text, in Input, minute int) ([]string, bool) {
	switch {
	case len(ru.channels) > 0 && !slices.Contains(ru.channels, in.Channel),
		len(ru.accounts) > 0 && !slices.Contains(ru.accounts, in.Account),
		ru.visibility != "" && in.Visibility != ru.visibility,
		ru.followUp != nil && in.FollowUp != *ru.followUp,
		len(ru.times) > 0 && ru.timeRange(minute) < 0:
		return nil, false
	}
	if len(ru.contactTags) > 0 {
		if _, ok := anyTag(ru.contactTags, in.ContactTags); !ok {
			return nil, false
		}
	}
	if ru.inHours != nil && !ru.inHours.IsOpen(in.ReceivedAt) || ru.outHours != nil && ru.outHours.IsOpen(in.ReceivedAt) {
		return nil, false
	}
	var matched []string
	if len(ru.any) > 0 || len(ru.regex) > 0 {
		m, ok := t.first(ru.any, ru.regex, ru.gap)
		if !ok {
			return nil, false
		}
		matched = append(matched, m)
	}
	for _, group := range ru.and {
		m, ok := t.first(group, nil, ru.gap)
		if !ok {
			return nil, false
		}
		matched = append(matched, m)
	}
	if _, hit := t.first(ru.not, ru.notRegex, ru.gap); hit {
		return nil, false
	}
	return matched, true
}

func (ru *rule) timeRange(minute int) int {
	return slices.IndexFunc(ru.times, func(d dayRange) bool { return d.contains(minute) })
}

// fired explains a rule that matched: the words, then the conditions.
func (ru *rule) fired(in Input, minute int, matched []string) Fired {
	var reasons []string
	if len(matched) > 0 {
		quoted := make([]string, len(matched))
		for i, m := range matched {
			quoted[i] = "'" + m + "'"
		}
		reasons = append(reasons, "matched "+strings.Join(quoted, ", "))
	}
	if len(ru.channels) > 0 {
		reasons = append(reasons, "channel "+in.Channel)
	}
	if len(ru.accounts) > 0 {
		reasons = append(reasons, "account "+in.Account)
	}
	if ru.visibility != "" {
		reasons = append(reasons, ru.visibility)
	}
	if ru.followUp != nil {
		if in.FollowUp {
			reasons = append(reasons, "follow-up")
		} else {
			reasons = append(reasons, "new case")
		}
	}
	if len(ru.contactTags) > 0 {
		tag, _ := anyTag(ru.contactTags, in.ContactTags)
		reasons = append(reasons, "contact tag "+tag)
	}
	if len(ru.times) > 0 {
		reasons = append(reasons, "received "+ru.times[ru.timeRange(minute)].src)
	}
	if ru.inHours != nil {
		reasons = append(reasons, "in hours ("+ru.inHoursName+")")
	}
	if ru.outHours != nil {
		reasons = append(reasons, "out of hours ("+ru.outHoursName+")")
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "none of its not list")
	}
	return Fired{Name: ru.name, Set: ru.set.name, Matched: matched, Reason: strings.Join(reasons, "; ")}
}

// first returns the first matching phrase (in configured order) or regular
// expression.
func (t *text) first(ps []phrase, res []*regexp.Regexp, gap int) (string, bool) {
	for _, p := range ps {
		if m, ok := t.find(p, gap); ok {
			return m, true
		}
	}
	for _, re := range res {
		if m := re.FindString(t.folded); m != "" {
			return m, true
		}
	}
	return "", false
}

func anyTag(want, have []string) (string, bool) {
	for _, h := range have {
		if slices.Contains(want, strings.ToLower(h)) {
			return h, true
		}
	}
	return "", false
}

// Explain tells an adviser, in one line, why the case went where it did:
// "routed to highways by rule `potholes`: matched 'pothole'".
func (d Decision) Explain() string {
	var b strings.Builder
	var teamRule *Fired
	for i := range d.Rules {
		if d.Rules[i].Team != "" {
			teamRule = &d.Rules[i]
			break
		}
	}
	switch {
	case len(d.Rules) == 0 && d.Team == "":
		return "follow-up: not re-routed"
	case len(d.Rules) == 0:
		return "no rule matched: default team " + d.Team
	}
	if d.Emergency {
		b.WriteString("emergency: ")
	} else if d.Safeguarding {
		b.WriteString("safeguarding: ")
	}
	if d.Reroute {
		b.WriteString("follow-up re-")
	}
	switch {
	case teamRule != nil:
		fmt.Fprintf(&b, "routed to %s by rule `%s`: %s", d.Team, teamRule.Name, teamRule.Reason)
	case d.Team != "":
		fmt.Fprintf(&b, "routed to default team %s", d.Team)
	default:
		b.WriteString("routed without a team change")
	}
	for i := range d.Rules {
		if &d.Rules[i] == teamRule {
			continue
		}
		fmt.Fprintf(&b, "; also rule `%s`: %s", d.Rules[i].Name, d.Rules[i].Reason)
	}
	return b.String()
}
