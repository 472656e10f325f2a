package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"text/template"

	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/routing"
	"github.com/citizeninbox/inbox/internal/sla"
)

// caseConfiguration is what the case service follows of the file, with
// the channel drivers and the accounts as opened. Every automatic reply's text is tried
// against the limits of the channels it may go out on, so a template too
// long for a network stops start-up instead of failing a resident.
func caseConfiguration(f *config.File, drivers *channels.Registry, accts *channels.Accounts) (cases.Configuration, error) {
	cfg := cases.Configuration{
		PhoneChannels:    phoneChannels(drivers),
		Replies:          accts,
		Router:           f.Compiled.Router,
		Policies:         f.Compiled.Policies,
		Acknowledgements: map[string]cases.Acknowledgement{},
		EmergencyReply:   f.Compiled.EmergencyReply,
		Escalations:      map[string]cases.Escalation{},
	}
	for _, c := range f.CannedResponses {
		cfg.Canned = append(cfg.Canned, cases.Canned{Name: c.Name, Title: c.Title, Text: c.Text, Teams: c.Teams})
	}
	templates := map[string]cases.AckTemplate{}
	for name, t := range f.Compiled.Acknowledgements {
		templates[name] = cases.AckTemplate{InHours: t.InHours, OutOfHours: t.OutOfHours}
	}
	sample := cases.AckData{Reference: "C-2026-000123", ReplyBy: "10:30 on Wednesday 30 September", Opens: "08:30 on Monday", Team: "Environmental health"}
	var errs []error
	check := func(at, account string, vis channels.Visibility, t *template.Template) {
		var buf bytes.Buffer
		if err := t.Execute(&buf, sample); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
			return
		}
		err := accts.CheckReply(account, vis, buf.String())
		if err != nil && !errors.Is(err, channels.ErrVisibilityNotSupported) {
			errs = append(errs, fmt.Errorf("%s: too long for %s %s replies: %w", at, account, vis, err))
		}
	}
	for _, a := range f.ChannelAccounts {
		for _, vis := range []channels.Visibility{channels.Public, channels.Private} {
			if t := f.Compiled.EmergencyReply; t != nil {
				check("emergency_reply", a.Slug, vis, t)
			}
		}
		if a.Acknowledgement == nil {
			continue
		}
		cfg.Acknowledgements[a.Slug] = cases.Acknowledgement{
			Templates: templates, Default: a.Acknowledgement.Template,
			PrivateOnly: a.Acknowledgement.PrivateOnly, Period: a.Acknowledgement.AckPeriod(),
		}
		for name, t := range templates {
			for _, vis := range []channels.Visibility{channels.Public, channels.Private} {
				if vis == channels.Public && a.Acknowledgement.PrivateOnly {
					continue
				}
				check("acknowledgements."+name+".in_hours", a.Slug, vis, t.InHours)
				if t.OutOfHours != nil {
					check("acknowledgements."+name+".out_of_hours", a.Slug, vis, t.OutOfHours)
				}
			}
		}
	}
	for _, e := range f.Escalations {
		steps := make([]cases.EscalationStep, len(e.Steps))
		for i, st := range e.Steps {
			steps[i] = cases.EscalationStep{On: st.On, Target: st.Target, RaisePriority: st.RaisePriority,
				MoveToTeam: st.MoveToTeam, NotifySupervisors: st.NotifySupervisors}
		}
		cfg.Escalations[e.Name] = cases.Escalation{Steps: steps}
	}
	return cfg, errors.Join(errs...)
}

// slaFingerprint identifies the SLA policy and calendars in force: when it
// differs from the one the stored deadlines were computed with, they are
// computed again.
func slaFingerprint(f *config.File) string {
	b, _ := json.Marshal(struct {
		Calendars any `json:"calendars"`
		SLA       any `json:"sla"`
	}{f.Calendars, f.SLA})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// rulesInForce shows the API the routing and SLA configuration the server
// runs.
type rulesInForce Server

func (r *rulesInForce) inForce() *config.File { return (*Server)(r).file.Load() }

// Routing is the service catalogue and routing rules.
func (r *rulesInForce) Routing() any {
	f := r.inForce()
	services := f.Services
	if services == nil {
		services = []routing.ServiceSpec{}
	}
	return map[string]any{"services": services, "routing": f.Routing}
}

// SLA is the calendars, SLA policy and escalations.
func (r *rulesInForce) SLA() any {
	f := r.inForce()
	cals := f.Calendars
	if cals == nil {
		cals = []sla.CalendarSpec{}
	}
	type step struct {
		On                string `json:"on"`
		Target            string `json:"target,omitempty"`
		RaisePriority     bool   `json:"raise_priority,omitempty"`
		MoveToTeam        string `json:"move_to_team,omitempty"`
		NotifySupervisors bool   `json:"notify_supervisors,omitempty"`
	}
	type escalation struct {
		Name  string `json:"name"`
		Steps []step `json:"steps"`
	}
	escs := []escalation{}
	for _, e := range f.Escalations {
		out := escalation{Name: e.Name, Steps: []step{}}
		for _, st := range e.Steps {
			out.Steps = append(out.Steps, step(st))
		}
		escs = append(escs, out)
	}
	return map[string]any{"calendars": cals, "sla": f.SLA, "escalations": escs}
}

// phoneChannels lists the channels whose drivers say their identities are
// phone numbers.
func phoneChannels(drivers *channels.Registry) []string {
	var out []string
	for _, ch := range drivers.Channels() {
		if caps, _ := drivers.Capabilities(ch); caps.PhoneIdentities {
			out = append(out, ch)
		}
	}
	return out
}
