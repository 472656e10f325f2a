// Package routing decides, for each resident message, which team handles
// it, with what priority and service, and why.
//
// Rules come from the business configuration: a `services:` catalogue and a
// `routing:` block. Evaluation order is fixed: the emergency phrase set,
// then the safeguarding phrase set, then each rule set in the order written.
// A set in `first_match` mode stops at its first firing rule; one in
// `all_matches` mode fires every rule that matches. A rule with `stop` ends
// evaluation altogether. When several rules fire:
//
//   - the team comes from the first fired rule that names one, directly or
//     through its service (a service implies its catalogue team);
//   - the service, acknowledgement and escalation come from the first fired
//     rule that names each;
//   - the priority is the highest any fired rule gives;
//   - tags are the union, in order of first appearance.
//
// Unset fields fall back to default_team and default_priority.
//
// A follow-up message on an open case is not re-routed: only the emergency
// and safeguarding sets and rules with `reroute: true` apply to it, and the
// decision then carries only what those rules set (see Decision.Reroute).
//
// Text matching works on folded words: case, accents and punctuation are
// ignored, words are compared by their English stem ("bins" matches "bin",
// "flooding" matches "flooded"), and only whole words match ("bin" does not
// match "cabinet"). See RuleSpec for the conditions a rule can state.
package routing

// Spec is the `routing:` block of the business configuration.
type Spec struct {
	// TimeZone is where `time:` ranges are read; default Europe/London.
	TimeZone string `yaml:"time_zone,omitempty" json:"time_zone,omitempty"`
	// Emergency phrases: immediate danger. Evaluated first.
	Emergency PhraseSet `yaml:"emergency" json:"emergency"`
	// Safeguarding phrases: self-harm, a child or adult at risk, threats.
	// Evaluated second; its rules always alert supervisors.
	Safeguarding PhraseSet `yaml:"safeguarding" json:"safeguarding"`
	// RuleSets are evaluated in order after the phrase sets.
	RuleSets []RuleSetSpec `yaml:"rule_sets" json:"rule_sets"`
	// DefaultTeam receives messages no rule gave a team.
	DefaultTeam string `yaml:"default_team" json:"default_team"`
	// DefaultPriority applies when no rule gave a priority; default normal.
	DefaultPriority string `yaml:"default_priority,omitempty" json:"default_priority,omitempty"`
}

// PhraseSet is the emergency or the safeguarding set: rules that fire before
// any other, with defaults for their actions. Every rule of a phrase set
// makes the case urgent and also applies to follow-up messages.
type PhraseSet struct {
	// Team for the set's rules that name none; default duty.
	Team string `yaml:"team,omitempty" json:"team,omitempty"`
	// Service for the set's rules that name none; default the service
	// coded "emergency" or "safeguarding" when the catalogue has it.
	Service string `yaml:"service,omitempty" json:"service,omitempty"`
	// Tags added by every rule of the set; default [emergency] or
	// [safeguarding].
	Tags []string `yaml:"tags,omitempty" json:"tags,omitempty"`
	// Acknowledgement template sent instead of the account's own.
	Acknowledgement string `yaml:"acknowledgement,omitempty" json:"acknowledgement,omitempty"`
	// Escalation policy for the set's cases.
	Escalation string     `yaml:"escalation,omitempty" json:"escalation,omitempty"`
	Rules      []RuleSpec `yaml:"rules" json:"rules"`
}

// Rule set modes.
const (
	FirstMatch = "first_match"
	AllMatches = "all_matches"
)

// RuleSetSpec is one ordered set of rules.
type RuleSetSpec struct {
	Name string `yaml:"name" json:"name"`
	// Mode is first_match (the default) or all_matches.
	Mode  string     `yaml:"mode,omitempty" json:"mode,omitempty"`
	Rules []RuleSpec `yaml:"rules" json:"rules"`
}

// RuleSpec is one rule. All the conditions it states must hold (AND); a
// list within a condition is "any of". A rule must state at least one
// condition and one action.
//
// Words and phrases: an entry of several words is a phrase, matched in
// order with at most Gap other words between consecutive phrase words
// (`bin collected` with gap 2 matches "bin was not collected"). Each word
// matches its other English forms (plural, -ed, -ing); written with a
// leading "=" a word matches only itself ("=park" does not match
// "parking").
type RuleSpec struct {
	Name string `yaml:"name" json:"name"`

	// Words: any of these words or phrases.
	Words []string `yaml:"words,omitempty" json:"words,omitempty"`
	// Regex: any of these RE2 expressions, matched against the folded
	// text (lower case, accents removed, punctuation and spacing kept as
	// one space), so write them in lower case. Words and Regex together
	// form one "any of" condition.
	Regex []string `yaml:"regex,omitempty" json:"regex,omitempty"`
	// And: further word lists, each of which must also match (any of its
	// entries), e.g. words [bin] and [[missed, not collected]].
	And [][]string `yaml:"and,omitempty" json:"and,omitempty"`
	// Gap is the number of other words allowed between consecutive words of
	// a phrase, for every phrase of the rule (Words, And and Not).
	Gap int `yaml:"gap,omitempty" json:"gap,omitempty"`
	// Typos: words of seven letters or more (or whose stem has six) also
	// match a message word one typo away ("recyling", "pothloes"), unless
	// that word is itself one a rule names.
	Typos bool `yaml:"typos,omitempty" json:"typos,omitempty"`
	// Not: the rule does not fire when any of these words or phrases, or
	// any of NotRegex, matches.
	Not      []string `yaml:"not,omitempty" json:"not,omitempty"`
	NotRegex []string `yaml:"not_regex,omitempty" json:"not_regex,omitempty"`

	// Channels: any of these channel names (x, facebook…).
	Channels []string `yaml:"channels,omitempty" json:"channels,omitempty"`
	// Accounts: any of these channel account slugs.
	Accounts []string `yaml:"accounts,omitempty" json:"accounts,omitempty"`
	// Visibility: public or private.
	Visibility string `yaml:"visibility,omitempty" json:"visibility,omitempty"`
	// Time: any of these local time-of-day ranges, "HH:MM-HH:MM", start
	// included, end excluded; a range may pass midnight ("22:00-06:00").
	Time []string `yaml:"time,omitempty" json:"time,omitempty"`
	// InHours / OutOfHours: the message arrived while the named calendar
	// was open / closed.
	InHours    string `yaml:"in_hours,omitempty" json:"in_hours,omitempty"`
	OutOfHours string `yaml:"out_of_hours,omitempty" json:"out_of_hours,omitempty"`
	// ContactTags: the resident carries any of these tags.
	ContactTags []string `yaml:"contact_tags,omitempty" json:"contact_tags,omitempty"`
	// FollowUp: true matches only follow-ups on an open case (the rule
	// then needs Reroute), false only new cases; unset both.
	FollowUp *bool `yaml:"follow_up,omitempty" json:"follow_up,omitempty"`

	// Team, or implied by Service.
	Team string `yaml:"team,omitempty" json:"team,omitempty"`
	// Priority: low, normal, high or urgent.
	Priority string `yaml:"priority,omitempty" json:"priority,omitempty"`
	// Service: a service_code of the catalogue.
	Service         string   `yaml:"service,omitempty" json:"service,omitempty"`
	Tags            []string `yaml:"tags,omitempty" json:"tags,omitempty"`
	Acknowledgement string   `yaml:"acknowledgement,omitempty" json:"acknowledgement,omitempty"`
	Escalation      string   `yaml:"escalation,omitempty" json:"escalation,omitempty"`
	// NotifySupervisors alerts the team's supervisors (always on for the
	// safeguarding set).
	NotifySupervisors bool `yaml:"notify_supervisors,omitempty" json:"notify_supervisors,omitempty"`
	// Stop ends evaluation after this rule fires.
	Stop bool `yaml:"stop,omitempty" json:"stop,omitempty"`
	// Reroute makes the rule apply to follow-up messages on an open case.
	Reroute bool `yaml:"reroute,omitempty" json:"reroute,omitempty"`
}

// ServiceSpec is one entry of the `services:` catalogue: an Open311-style
// service code, its name as residents see it, and the team that handles it.
type ServiceSpec struct {
	Code string `yaml:"code" json:"service_code"`
	Name string `yaml:"name" json:"service_name"`
	Team string `yaml:"team" json:"team"`
}

// Names are what rules may refer to, from the rest of the configuration.
type Names struct {
	Teams, Accounts, Channels, Acknowledgements, Escalations []string
	Calendars                                                map[string]Hours
}
