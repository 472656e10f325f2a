package cases

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/routing"
	"github.com/citizeninbox/inbox/internal/sla"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/threading"
)

// Routing is why a case is where it is: the explanation an adviser reads
// and the rules that fired, with the words they matched.
type Routing struct {
	Explanation string          `json:"explanation"`
	Rules       []routing.Fired `json:"rules"`
}

// routingOf is what a case stores of a routing decision.
func routingOf(d routing.Decision) []byte {
	rules := d.Rules
	if rules == nil {
		rules = []routing.Fired{}
	}
	b, _ := json.Marshal(Routing{Explanation: d.Explain(), Rules: rules})
	return b
}

// route decides, for each new case, its team, priority, service and tags
// from the message that opened it. A message joining a stored case re-routes
// it only when a rule says so, or when it is an emergency or a
// safeguarding concern, which always take the case to where those go.
func (b *batch) route() error {
	if b.cfg.Router == nil {
		return nil
	}
	tags, err := b.contactTags()
	if err != nil {
		return err
	}
	for j := range b.decisions {
		i := b.fresh[j]
		c := b.caseOf[i]
		in := b.ins[i]
		created := b.res[i].Created
		if !created && !c.existing {
			continue // a follow-up to a case this batch opened: the opener routed it
		}
		dec := b.cfg.Router.Route(routing.Input{
			Text: in.Text, Channel: in.Channel, Account: in.Account, Visibility: string(in.Visibility),
			ReceivedAt: in.SentAt, FollowUp: !created, ContactTags: tags[b.identity[i].ContactID],
		})
		if !created && !dec.Reroute && !dec.Emergency && !dec.Safeguarding {
			continue
		}
		if err := b.apply(c, dec, i, created); err != nil {
			return err
		}
	}
	return nil
}

// contactTags reads the tags of the batch's residents, by contact id.
func (b *batch) contactTags() (map[int64][]string, error) {
	ids := make(store.Int64s, 0, len(b.fresh))
	for _, i := range b.fresh {
		ids = append(ids, b.identity[i].ContactID)
	}
	var rows []struct {
		ID   int64
		Tags store.Strings
	}
	if err := b.tx.Raw(`SELECT id, tags FROM contacts WHERE id = ANY(?::bigint[]) AND tags <> '{}'`, ids).Scan(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[int64][]string, len(rows))
	for _, r := range rows {
		out[r.ID] = r.Tags
	}
	return out, nil
}

// apply makes a routing decision the case's. An emergency or safeguarding
// flag, once set, stays; priority never drops below urgent for either.
func (b *batch) apply(c *caseState, d routing.Decision, i int, created bool) error {
	if d.Team != "" {
		id, err := b.svc.teamID(b.tx, d.Team)
		if err != nil {
			return err
		}
		c.TeamID = id
	}
	if d.Priority != "" {
		c.Priority = d.Priority
	}
	if d.Service != "" {
		svc := d.Service
		c.ServiceCode = &svc
	} else if created {
		c.ServiceCode = nil
	}
	for _, t := range d.Tags {
		if !slices.Contains(c.Tags, t) {
			c.Tags = append(c.Tags, t)
		}
	}
	if d.Escalation != "" {
		c.Escalation = d.Escalation
	}
	c.Routing = routingOf(d)
	if d.Emergency && !c.Emergency {
		c.Emergency, c.emergencyMsg = true, i+1
	}
	if d.Safeguarding {
		c.Safeguarding = true
	}
	if c.Emergency || c.Safeguarding {
		c.Priority = "urgent"
	}
	c.notify = c.notify || d.NotifySupervisors
	c.ackTemplate = d.Acknowledgement
	c.rerouted = !created
	c.touched = true
	return nil
}

// clock computes the SLA deadlines of the batch's cases: a new case's
// clocks start at its first message; a resident's message on a stored case
// resumes a paused resolution clock, restarts it on a reopened case, and
// starts the next-response clock where we had answered; a re-routed case's
// deadlines are computed again for its new team, priority and service.
func (b *batch) clock() error {
	pol := b.cfg.Policies
	if pol == nil {
		return nil
	}
	for _, c := range b.newCases {
		c.start(b.policy(c), c.FirstMessageAt)
	}
	var resumed []*caseState
	var resumedAt store.Strings
	for j, d := range b.decisions {
		i := b.fresh[j]
		c := b.caseOf[i]
		if b.res[i].Created || !c.existing {
			continue
		}
		t := b.ins[i].SentAt
		clk := b.policy(c)
		if c.storedStatus == StatusAwaitingResident && c.ResolutionPausedAt != nil {
			c.resumeResolution(clk, t)
			resumed = append(resumed, c)
			resumedAt = append(resumedAt, t.UTC().Format(time.RFC3339Nano))
		}
		if d.Action == threading.Reopen {
			c.restartResolution(clk, t)
		}
		c.residentWrote(clk, t, c.FirstResponseAt, c.LastResponseAt)
	}
	if len(resumed) > 0 {
		ids := make(store.Int64s, len(resumed))
		for k, c := range resumed {
			ids[k] = c.ID
		}
		if err := b.tx.Exec(`UPDATE case_pauses p SET ended_at = v.at
			FROM unnest(?::bigint[], ?::timestamptz[]) AS v(id, at)
			WHERE p.case_id = v.id AND p.ended_at IS NULL`, ids, resumedAt).Error; err != nil {
			return err
		}
	}
	for _, c := range b.cases {
		if !c.rerouted {
			continue
		}
		pauses, err := loadPauses(b.tx, c.ID)
		if err != nil {
			return err
		}
		c.recompute(b.policy(c), c.FirstMessageAt, pauses)
	}
	return nil
}

// policy is the SLA clock for the case as it now stands.
func (b *batch) policy(c *caseState) sla.Clock {
	svc := ""
	if c.ServiceCode != nil {
		svc = *c.ServiceCode
	}
	return b.cfg.Policies.For(b.svc.teamSlug(b.tx, c.TeamID), svc, sla.Priority(c.Priority))
}

func loadPauses(tx *gorm.DB, caseID int64) ([]pause, error) {
	var ps []pause
	err := tx.Raw(`SELECT started_at, ended_at FROM case_pauses WHERE case_id = ? ORDER BY id`, caseID).Scan(&ps).Error
	return ps, err
}

// caseRow is what writeCases stores of a case: its routing and its clocks.
type caseRow struct {
	ID             int64           `json:"id"`
	TeamID         int64           `json:"team_id"`
	Priority       string          `json:"priority"`
	ServiceCode    *string         `json:"service_code"`
	Tags           []string        `json:"tags"`
	Escalation     string          `json:"escalation"`
	Emergency      bool            `json:"emergency"`
	Safeguarding   bool            `json:"safeguarding"`
	Routing        json.RawMessage `json:"routing"`
	AcknowledgedAt *time.Time      `json:"acknowledged_at"`
	Clocks
}

// writeCases stores the routing and clocks of every case the batch opened
// or touched, in one statement.
func (b *batch) writeCases() error {
	var rows []caseRow
	add := func(c *caseState) {
		tags := []string(c.Tags)
		if tags == nil {
			tags = []string{}
		}
		r := c.Routing
		if len(bytes.TrimSpace(r)) == 0 {
			r = json.RawMessage(`{}`)
		}
		rows = append(rows, caseRow{ID: c.ID, TeamID: c.TeamID, Priority: c.Priority, ServiceCode: c.ServiceCode, Tags: tags,
			Escalation: c.Escalation, Emergency: c.Emergency, Safeguarding: c.Safeguarding, Routing: r,
			AcknowledgedAt: c.AcknowledgedAt, Clocks: c.Clocks})
	}
	for _, c := range b.newCases {
		add(c)
	}
	for _, c := range b.cases {
		if c.touched {
			add(c)
		}
	}
	if len(rows) == 0 || (b.cfg.Router == nil && b.cfg.Policies == nil && !b.acked) {
		return nil
	}
	payload, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	return b.tx.Exec(`UPDATE cases c SET team_id = v.team_id, priority = v.priority, service_code = v.service_code,
			tags = v.tags, escalation = v.escalation, emergency = v.emergency, safeguarding = v.safeguarding,
			routing = v.routing, acknowledged_at = v.acknowledged_at, `+setClocks+`
		FROM jsonb_populate_recordset(NULL::cases, ?::jsonb) AS v
		WHERE c.id = v.id`, string(payload)).Error
}

// automatic is one automatic reply the batch queues.
type automatic struct {
	c     *caseState
	kind  string // acknowledgement or emergency
	vis   channels.Visibility
	text  string
	reply string // the post answered, for a public reply
	to    string // the resident, for a private one
}

// autoReplies queues the emergency reply for every message routing found
// to be an emergency, and an acknowledgement for each new (or reopened)
// case whose account sends them and has not sent one within its period.
// They go out through the outbox and the sender like advisers' replies,
// are marked automatic, and never count as a response.
func (b *batch) autoReplies() error {
	var out []automatic
	now := time.Now()
	for j, d := range b.decisions {
		i := b.fresh[j]
		c := b.caseOf[i]
		if c.emergencyMsg == i+1 && b.cfg.EmergencyReply != nil {
			if a, ok := b.automatic(c, i, "emergency"); ok {
				out = append(out, a)
			}
			continue
		}
		opens := b.res[i].Created || d.Action == threading.Reopen
		if !opens || c.Emergency {
			continue
		}
		ack, ok := b.cfg.Acknowledgements[b.accts[i].Slug]
		if !ok || (ack.PrivateOnly && b.ins[i].Visibility != channels.Private) {
			continue
		}
		if c.AcknowledgedAt != nil && now.Sub(*c.AcknowledgedAt) < ack.Period {
			continue
		}
		if a, ok := b.automatic(c, i, "acknowledgement"); ok {
			out = append(out, a)
			c.AcknowledgedAt, b.acked = at(now), true
		}
	}
	return b.queueAutomatic(out)
}

// automatic composes case c's automatic reply of the kind to message i, in
// the visibility the resident used. A text the channel would refuse is
// logged and not sent (configuration checks every template against the
// channels' limits at start-up).
func (b *batch) automatic(c *caseState, i int, kind string) (automatic, bool) {
	in := b.ins[i]
	a := automatic{c: c, kind: kind, vis: in.Visibility}
	if a.vis == channels.Public {
		a.reply = in.ExternalID
	} else {
		a.to = b.identity[i].ExternalID
	}
	data := b.ackData(c)
	var buf bytes.Buffer
	var err error
	if kind == "emergency" {
		err = b.cfg.EmergencyReply.Execute(&buf, data)
	} else {
		ack := b.cfg.Acknowledgements[in.Account]
		name := c.ackTemplate
		if _, ok := ack.Templates[name]; !ok {
			name = ack.Default
		}
		tpl := ack.Templates[name]
		t := tpl.InHours
		if cal := b.calendar(c); cal != nil && !cal.IsOpen(in.SentAt) && tpl.OutOfHours != nil {
			t = tpl.OutOfHours
		}
		if t == nil {
			return automatic{}, false
		}
		err = t.Execute(&buf, data)
	}
	if err == nil {
		a.text = buf.String()
		err = b.svc.checkReply(in.Account, a.vis, a.text)
	}
	if err != nil {
		b.svc.log.Error("automatic reply not sent", "kind", kind, "case_id", c.ID, "account", in.Account, "err", err)
		return automatic{}, false
	}
	return a, true
}

// calendar is the calendar the case's first response is counted on.
func (b *batch) calendar(c *caseState) *sla.Calendar {
	if b.cfg.Policies == nil {
		return nil
	}
	r := b.policy(c).FirstResponse
	if r == nil {
		return nil
	}
	return r.Calendar()
}

// ackData is what the templates are given for case c.
func (b *batch) ackData(c *caseState) AckData {
	d := AckData{Reference: c.Reference, Team: b.svc.teamName(b.tx, c.TeamID)}
	cal := b.calendar(c)
	loc := time.UTC
	if cal != nil {
		loc = cal.Location()
	}
	now := time.Now()
	if c.FirstResponseDue != nil {
		d.ReplyBy = replyTime(*c.FirstResponseDue, now, loc)
	}
	if cal != nil {
		d.Opens = replyTime(cal.NextOpen(now), now, loc)
	}
	return d
}

// queueAutomatic writes the automatic replies' messages and outbox rows,
// one statement each.
func (b *batch) queueAutomatic(out []automatic) error {
	if len(out) == 0 {
		return nil
	}
	var ids store.Int64s
	if err := b.tx.Raw(`SELECT array_agg(nextval('messages_id_seq')) FROM generate_series(1, ?)`, len(out)).Row().Scan(&ids); err != nil {
		return err
	}
	var (
		caseIDs, accts              = make(store.Int64s, len(out)), make(store.Int64s, len(out))
		kinds, vis, bodies, replies = make(store.Strings, len(out)), make(store.Strings, len(out)), make(store.Strings, len(out)), make(store.Strings, len(out))
		subjects, msgIDs, payloads  = make(store.Strings, len(out)), make(store.Strings, len(out)), make(store.Strings, len(out))
		evs                         []Event
	)
	for k, a := range out {
		c := a.c
		caseIDs[k], accts[k], kinds[k], vis[k], bodies[k], replies[k] = c.ID, c.account.ID, a.kind, string(a.vis), a.text, a.reply
		o := channels.Outbound{MessageID: ids[k], Channel: c.account.Channel, Account: c.account.Slug, Visibility: a.vis,
			Text: a.text, InReplyTo: a.reply, Recipient: a.to, Automatic: a.kind}
		p, err := json.Marshal(o)
		if err != nil {
			return err
		}
		subjects[k], msgIDs[k], payloads[k] = b.svc.names.OutboundSubject(o.Channel, o.Account), fmt.Sprintf("outbound-%d", ids[k]), string(p)
		evs = append(evs, Event{Kind: EventReplied, CaseID: c.ID, Reference: c.Reference, Team: b.svc.teamSlug(b.tx, c.TeamID),
			Channel: c.Channel, Status: c.Status, MessageID: ids[k], At: time.Now().UTC()})
		b.svc.metrics.AutomaticReplies.WithLabelValues(a.kind).Inc()
	}
	if err := b.tx.Exec(`INSERT INTO messages (id, case_id, channel_account_id, direction, visibility, body, in_reply_to,
			delivery_status, automatic, external_ids)
		SELECT id, case_id, acct, 'outbound', vis, body, reply, 'queued', kind, '{}'
		FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[])
		  AS t(id, case_id, acct, vis, body, reply, kind)`,
		ids, caseIDs, accts, vis, bodies, replies, kinds).Error; err != nil {
		return err
	}
	if err := b.tx.Exec(`INSERT INTO outbox (subject, msg_id, payload)
		SELECT subject, msg_id, payload::jsonb FROM unnest(?::text[], ?::text[], ?::text[]) AS t(subject, msg_id, payload)`,
		subjects, msgIDs, payloads).Error; err != nil {
		return err
	}
	b.autoEvents = evs
	return nil
}
