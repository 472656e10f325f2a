package config

import (
	"bytes"
	"errors"
	"fmt"
	"text/template"
	"time"

	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/routing"
	"github.com/citizeninbox/inbox/internal/sla"
)

// DefaultAckPeriod is the least time between two acknowledgements on one
// case when an account's period is not set.
const DefaultAckPeriod = 24 * time.Hour

// templateSample is what the templates are tried with at load, with the
// fields the case service gives them.
var templateSample = map[string]string{
	"Reference": "C-2026-000123", "ReplyBy": "10:30 on Tuesday", "Opens": "08:30 tomorrow", "Team": "Highways",
}

// parseTemplate parses and tries one reply template.
func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, templateSample); err != nil {
		return nil, fmt.Errorf("%w (the fields are .Reference, .ReplyBy, .Opens and .Team)", err)
	}
	return t, nil
}

// compile checks and compiles the calendars, SLA policy, routing rules,
// reply templates and escalations, which refer to teams, accounts and each
// other by name.
func (f *File) compile(drivers Drivers) error {
	var errs []error
	teams := make([]string, len(f.Teams))
	teamSet := map[string]bool{}
	for i, t := range f.Teams {
		teams[i], teamSet[t.Slug] = t.Slug, true
	}
	accounts := make([]string, len(f.ChannelAccounts))
	for i, a := range f.ChannelAccounts {
		accounts[i] = a.Slug
	}
	services := make([]string, len(f.Services))
	for i, s := range f.Services {
		services[i] = s.Code
	}

	cals, err := sla.BuildCalendars(f.Calendars)
	if err != nil {
		return err
	}
	f.Compiled.Calendars = cals

	f.Compiled.Acknowledgements = map[string]AckTemplates{}
	acks := make([]string, 0, len(f.Acknowledgements))
	for i, a := range f.Acknowledgements {
		at := fmt.Sprintf("acknowledgements[%d]", i)
		if _, dup := f.Compiled.Acknowledgements[a.Name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q is used twice", at, a.Name))
			continue
		}
		var t AckTemplates
		if t.InHours, err = parseTemplate(a.Name, a.InHours); err != nil {
			errs = append(errs, fmt.Errorf("%s.in_hours: %w", at, err))
		}
		if a.OutOfHours != "" {
			if t.OutOfHours, err = parseTemplate(a.Name, a.OutOfHours); err != nil {
				errs = append(errs, fmt.Errorf("%s.out_of_hours: %w", at, err))
			}
		}
		f.Compiled.Acknowledgements[a.Name] = t
		acks = append(acks, a.Name)
	}
	for i, a := range f.ChannelAccounts {
		ack := a.Acknowledgement
		if ack == nil {
			continue
		}
		at := fmt.Sprintf("channel_accounts[%d].acknowledgement", i)
		if _, ok := f.Compiled.Acknowledgements[ack.Template]; !ok {
			errs = append(errs, fmt.Errorf("%s.template: no acknowledgement is named %q", at, ack.Template))
		}
		if ack.Period != "" {
			if d, err := time.ParseDuration(ack.Period); err != nil || d < 0 {
				errs = append(errs, fmt.Errorf("%s.period: %q is not a duration such as 24h", at, ack.Period))
			}
		}
	}
	if f.EmergencyReply != "" {
		if f.Compiled.EmergencyReply, err = parseTemplate("emergency_reply", f.EmergencyReply); err != nil {
			errs = append(errs, fmt.Errorf("emergency_reply: %w", err))
		}
	}

	escalations := make([]string, 0, len(f.Escalations))
	seen := map[string]bool{}
	for i, e := range f.Escalations {
		if seen[e.Name] {
			errs = append(errs, fmt.Errorf("escalations[%d].name: %q is used twice", i, e.Name))
		}
		seen[e.Name] = true
		escalations = append(escalations, e.Name)
		for j, st := range e.Steps {
			if st.MoveToTeam != "" && !teamSet[st.MoveToTeam] {
				errs = append(errs, fmt.Errorf("escalations[%d].steps[%d].move_to_team: no team has slug %q", i, j, st.MoveToTeam))
			}
			if !st.RaisePriority && st.MoveToTeam == "" && !st.NotifySupervisors {
				errs = append(errs, fmt.Errorf("escalations[%d].steps[%d]: does nothing (raise_priority, move_to_team or notify_supervisors)", i, j))
			}
		}
	}

	seen = map[string]bool{}
	for i, c := range f.CannedResponses {
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("canned_responses[%d].name: %q is used twice", i, c.Name))
		}
		seen[c.Name] = true
		for j, t := range c.Teams {
			if !teamSet[t] {
				errs = append(errs, fmt.Errorf("canned_responses[%d].teams[%d]: no team has slug %q", i, j, t))
			}
		}
		if bad := cases.UnknownPlaceholders(c.Text); len(bad) > 0 {
			errs = append(errs, fmt.Errorf("canned_responses[%d].text: unknown placeholder %s (use {resident_name}, {case_reference} or {team})", i, bad[0]))
		}
	}

	if f.SLA != nil {
		if f.Compiled.Policies, err = sla.BuildPolicies(*f.SLA, cals, teams, services, escalations); err != nil {
			errs = append(errs, err)
		}
	}
	if f.Routing != nil {
		hours := make(map[string]routing.Hours, len(cals))
		for name, c := range cals {
			hours[name] = c
		}
		var channels []string
		if drivers != nil {
			channels = drivers.Channels()
		}
		if f.Compiled.Router, err = routing.Compile(*f.Routing, f.Services, routing.Names{
			Teams: teams, Accounts: accounts, Channels: channels, Acknowledgements: acks, Escalations: escalations,
			Calendars: hours,
		}); err != nil {
			errs = append(errs, err)
		}
	} else if len(f.Services) > 0 {
		errs = append(errs, errors.New("services: a service catalogue needs routing rules (a routing block)"))
	}
	return errors.Join(errs...)
}

// AckPeriod is the account's least time between two acknowledgements on
// one case.
func (a AccountAcknowledgement) AckPeriod() time.Duration {
	if d, err := time.ParseDuration(a.Period); err == nil && a.Period != "" {
		return d
	}
	return DefaultAckPeriod
}
