package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/sla"
)

// rulesYAML is the routing, SLA and reply configuration the routing tests
// run with: a working-hours calendar, targets per priority, a pothole
// rule, emergency and safeguarding phrases, and acknowledgements.
const rulesYAML = `
calendars:
  - name: office
    time_zone: Europe/London
    hours:
      monday: ["08:30-17:00"]
      tuesday: ["08:30-17:00"]
      wednesday: ["08:30-17:00"]
      thursday: ["08:30-17:00"]
      friday: ["08:30-17:00"]
    bank_holidays: england-and-wales
sla:
  calendar: office
  warn_before: 1 hour
  escalation: standard
  priorities:
    low: {first_response: 2 working days, resolution: 20 working days}
    normal: {first_response: 8 working hours, next_response: 8 working hours, resolution: 10 working days}
    high: {first_response: 4 working hours, resolution: 5 working days}
    urgent: {calendar: 24/7, warn_before: 15 minutes, first_response: 1 hour, resolution: 24 hours}
  teams:
    contact-centre:
      priorities:
        normal: {calendar: 24/7, first_response: 2 hours, next_response: 2 hours, resolution: 3 days}
escalations:
  - name: standard
    steps:
      - {on: breach, target: first_response, raise_priority: true, notify_supervisors: true}
acknowledgements:
  - name: standard
    in_hours: "Thanks. Your reference is {{.Reference}}. We aim to reply by {{.ReplyBy}}."
    out_of_hours: "Thanks. Your reference is {{.Reference}}. We are closed; we aim to reply by {{.ReplyBy}}."
emergency_reply: "If someone is in danger now, call 999. For non-emergencies call 101. Ref {{.Reference}}."
services:
  - {code: pothole, name: Pothole, team: highways}
  - {code: emergency, name: Emergency, team: duty}
  - {code: safeguarding, name: Safeguarding, team: duty}
routing:
  emergency:
    team: duty
    rules:
      - name: stabbing
        words: ["been stabbed", "stabbed"]
  safeguarding:
    team: duty
    rules:
      - name: self-harm
        words: ["end it all", "hurt myself"]
  rule_sets:
    - name: services
      mode: first_match
      rules:
        - name: potholes
          words: [pothole]
          service: pothole
          priority: high
  default_team: contact-centre
`

// withRules runs the harness with rulesYAML, the harness's X account
// acknowledging new cases (ack: true) or not.
func withRules(ack bool) harnessOption {
	return func(o *server.Options, h *harness) {
		a := o.File.ChannelAccounts[0]
		ackBlock := ""
		if ack {
			ackBlock = "    acknowledgement: {template: standard, period: 24h}\n"
		}
		raw := fmt.Sprintf(`teams:
  - {slug: contact-centre, name: Contact centre}
  - {slug: highways, name: Highways}
  - {slug: duty, name: Duty}
channel_accounts:
  - slug: %s
    channel: x
    name: Council on X
    team: contact-centre
    api_base_url: %s
%s    x: {user_id: %q, consumer_secret: %q, access_token: %q}
%s`, a.Slug, a.APIBaseURL, ackBlock, councilID, consumerKey, accessToken, rulesYAML)
		f, err := config.Parse([]byte(raw), func(string) string { return "" }, o.Drivers)
		if err != nil {
			h.t.Fatalf("rules configuration: %v", err)
		}
		o.File = f
		o.SLAInterval = 100 * time.Millisecond
	}
}

type slaTargetJSON struct {
	State string     `json:"state"`
	DueAt time.Time  `json:"due_at"`
	MetAt *time.Time `json:"met_at"`
}

type routedJSON struct {
	ID             int64     `json:"id"`
	Reference      string    `json:"reference"`
	Team           string    `json:"team"`
	Status         string    `json:"status"`
	Priority       string    `json:"priority"`
	Service        *string   `json:"service"`
	Tags           []string  `json:"tags"`
	Emergency      bool      `json:"emergency"`
	Safeguarding   bool      `json:"safeguarding"`
	FirstMessageAt time.Time `json:"first_message_at"`
	FirstResponse  *string   `json:"first_response_at"`
	SLA            struct {
		FirstResponse *slaTargetJSON `json:"first_response"`
		NextResponse  *slaTargetJSON `json:"next_response"`
		Resolution    *slaTargetJSON `json:"resolution"`
		PausedSeconds int64          `json:"paused_seconds"`
	} `json:"sla"`
	Routing struct {
		Explanation string `json:"explanation"`
		Rules       []struct {
			Name    string   `json:"name"`
			Matched []string `json:"matched"`
		} `json:"rules"`
	} `json:"routing"`
	Messages []struct {
		ID             int64  `json:"id"`
		Direction      string `json:"direction"`
		Visibility     string `json:"visibility"`
		Body           string `json:"body"`
		Automatic      string `json:"automatic"`
		DeliveryStatus string `json:"delivery_status"`
	} `json:"messages"`
}

func (h *harness) routed(id int64) routedJSON {
	h.t.Helper()
	code, raw := h.apiAs(h.adminToken(), http.MethodGet, fmt.Sprintf("/cases/%d", id), nil)
	if code != http.StatusOK {
		h.t.Fatalf("get case %d: %d %s", id, code, raw)
	}
	var c routedJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		h.t.Fatal(err)
	}
	return c
}

// clock is the SLA clock the harness's policy gives a case.
func (h *harness) clock(team, service string, pr sla.Priority) sla.Clock {
	return h.opts.File.Compiled.Policies.For(team, service, pr)
}

func TestRuleRoutesACaseWithItsPriorityServiceAndDeadlinesAndSaysWhy(t *testing.T) {
	h := newHarness(t, withRules(false))
	_, id := h.mentionCase(alice, "@ExampleCouncil huge POTHOLES on Mill Lane again")
	c := h.routed(id)
	if c.Team != "highways" || c.Priority != "high" || c.Service == nil || *c.Service != "pothole" {
		t.Fatalf("routed to %s, %s, service %v; want highways, high, pothole", c.Team, c.Priority, c.Service)
	}
	if want := "routed to highways by rule `potholes`: matched 'POTHOLES'"; !strings.EqualFold(c.Routing.Explanation, want) {
		t.Errorf("explanation %q, want %q", c.Routing.Explanation, want)
	}
	if len(c.Routing.Rules) != 1 || c.Routing.Rules[0].Name != "potholes" || len(c.Routing.Rules[0].Matched) == 0 {
		t.Errorf("rules %+v, want potholes with its match", c.Routing.Rules)
	}
	clk := h.clock("highways", "pothole", sla.High)
	first, res := c.SLA.FirstResponse, c.SLA.Resolution
	if first == nil || res == nil || c.SLA.NextResponse != nil {
		t.Fatalf("sla %+v: want first response and resolution, no next response before we answer", c.SLA)
	}
	if want := clk.FirstResponse.Due(c.FirstMessageAt); !first.DueAt.Equal(want) || first.State != cases.SLARunning {
		t.Errorf("first response %+v, want running, due %v", first, want)
	}
	if want := clk.Resolution.Due(c.FirstMessageAt); !res.DueAt.Equal(want) {
		t.Errorf("resolution due %v, want %v", res.DueAt, want)
	}
	var stored struct {
		FirstResponseDue time.Time
		SLADueAt         time.Time
	}
	h.direct.Raw(`SELECT first_response_due, sla_due_at FROM cases WHERE id = ?`, id).Scan(&stored)
	if !stored.FirstResponseDue.Equal(first.DueAt) || !stored.SLADueAt.Equal(first.DueAt) {
		t.Errorf("stored deadlines %+v, want the first response's %v, for the queue to sort by", stored, first.DueAt)
	}

	// A follow-up in the case does not route it again.
	_, other := h.mentionCase(alice, "@ExampleCouncil nobody has replied")
	if other == id {
		t.Fatal("a new post opened no case of its own")
	}
	dm, dmCase := h.dmCase(bob, "my street light is out")
	h.signed(directMessage(nextID(), bob, "and there's a pothole by my house"))
	h.eventually("follow-up stored", func() bool { return len(h.routed(dmCase).Messages) == 2 })
	if c := h.routed(dmCase); c.Team != "contact-centre" || c.Service != nil {
		t.Errorf("after a follow-up naming a pothole the case is %s/%v; a follow-up does not re-route (%s)", c.Team, c.Service, dm)
	}
	if c := h.routed(other); c.Team != "contact-centre" || !strings.Contains(c.Routing.Explanation, "default") {
		t.Errorf("unmatched case: team %s, explanation %q; want contact-centre, explained as the default", c.Team, c.Routing.Explanation)
	}
}

func TestEmergencyGetsThe999ReplyFirstAndIsEscalated(t *testing.T) {
	h := newHarness(t, withRules(true))
	post, id := h.mentionCase(carol, "@ExampleCouncil help my brother has been stabbed outside the chip shop")
	h.eventually("the 999 reply is sent", func() bool { return len(h.fake.Sent()) > 0 })
	sent := h.fake.Sent()
	if !strings.Contains(sent[0].Text, "999") || sent[0].Kind != "post" || sent[0].InReplyTo != post {
		t.Fatalf("first reply %+v: want the 999 reply in the resident's thread", sent[0])
	}
	c := h.routed(id)
	if !c.Emergency || c.Priority != "urgent" || c.Team != "duty" {
		t.Errorf("emergency case: emergency %v, priority %s, team %s; want true, urgent, duty", c.Emergency, c.Priority, c.Team)
	}
	if !strings.Contains(c.Routing.Explanation, "stabbed") {
		t.Errorf("explanation %q does not say what matched", c.Routing.Explanation)
	}
	var auto []string
	for _, m := range c.Messages {
		if m.Automatic != "" {
			auto = append(auto, m.Automatic)
		}
	}
	if len(auto) != 1 || auto[0] != "emergency" {
		t.Errorf("automatic replies %v: want only the emergency reply, no acknowledgement", auto)
	}
	h.eventually("reply recorded as sent", func() bool {
		return h.count(`SELECT count(*) FROM messages WHERE case_id = ? AND automatic = 'emergency' AND delivery_status = 'sent'`, id) == 1
	})
	if c := h.routed(id); c.FirstResponse != nil {
		t.Error("the emergency reply counted as the first response")
	}

	// Privately, the reply goes privately.
	_, dmID := h.dmCase(bob, "someone has been stabbed on my road")
	h.eventually("the private 999 reply is sent", func() bool {
		for _, s := range h.fake.Sent() {
			if s.Kind == "dm" && s.Participant == bob.ID && strings.Contains(s.Text, "999") {
				return true
			}
		}
		return false
	})
	if c := h.routed(dmID); !c.Emergency {
		t.Error("private emergency not flagged")
	}
}

func TestSafeguardingGoesToDutyAndAlertsSupervisors(t *testing.T) {
	h := newHarness(t, withRules(false))
	cons := h.caseEvents(t, cases.EventSupervisorsAlerted)
	_, id := h.dmCase(alice, "i just want to end it all tonight")
	c := h.routed(id)
	if !c.Safeguarding || c.Team != "duty" || c.Priority != "urgent" {
		t.Fatalf("safeguarding case: %v %s %s; want flagged, duty, urgent", c.Safeguarding, c.Team, c.Priority)
	}
	ev := cons.next(t)
	if ev.CaseID != id || ev.Team != "duty" || ev.Reason == "" {
		t.Errorf("supervisors alerted with %+v", ev)
	}
}

func TestAcknowledgementCarriesTheReferenceAndTheExpectedReplyTime(t *testing.T) {
	h := newHarness(t, withRules(true))
	dm, id := h.dmCase(alice, "hello, a question about my account")
	h.eventually("acknowledgement sent", func() bool { return len(h.fake.Sent()) == 1 })
	c := h.routed(id)
	ack := h.fake.Sent()[0]
	london, _ := time.LoadLocation("Europe/London")
	due := c.SLA.FirstResponse.DueAt.In(london)
	if ack.Kind != "dm" || ack.Participant != alice.ID || !strings.Contains(ack.Text, c.Reference) ||
		!strings.Contains(ack.Text, "We aim to reply by "+due.Format("15:04")) {
		t.Fatalf("acknowledgement %+v: want a private reply with %s and the first-response time %s", ack, c.Reference, due.Format("15:04"))
	}
	if c.Team != "contact-centre" || due.Sub(c.FirstMessageAt) != 2*time.Hour {
		t.Errorf("due %v for a message at %v: want two hours later on 24/7", due, c.FirstMessageAt)
	}
	// At most one per case within the period; never a response.
	h.signed(directMessage(nextID(), alice, "any news?"))
	h.eventually("follow-up stored", func() bool { return len(h.routed(id).Messages) == 3 })
	h.settled("OUTBOUND", "sender-"+accountSlug)
	if n := len(h.fake.Sent()); n != 1 {
		t.Errorf("%d replies sent after a follow-up, want the one acknowledgement (%s)", n, dm)
	}
	if c := h.routed(id); c.FirstResponse != nil || c.SLA.FirstResponse.State != cases.SLARunning {
		t.Errorf("after the acknowledgement: first response %v, state %s; want none, running", c.FirstResponse, c.SLA.FirstResponse.State)
	}

	// The adviser's reply meets the first response; the resident's next
	// message starts the next-response clock.
	m := h.reply(id, "private", "Your account is fine.")
	h.waitDelivery(id, m.ID)
	c = h.routed(id)
	if c.SLA.FirstResponse.State != cases.SLAMet || c.SLA.NextResponse != nil {
		t.Fatalf("after our reply: %+v / %+v; want first response met, no next response running", c.SLA.FirstResponse, c.SLA.NextResponse)
	}
	h.signed(directMessage(nextID(), alice, "thanks, one more thing"))
	h.eventually("next response clock started", func() bool {
		c = h.routed(id)
		return c.SLA.NextResponse != nil
	})
	if c.SLA.NextResponse.State != cases.SLARunning {
		t.Errorf("next response %+v, want running", c.SLA.NextResponse)
	}
}

func TestResolutionClockPausesWhileAwaitingTheResident(t *testing.T) {
	h := newHarness(t, withRules(false))
	_, id := h.dmCase(alice, "question about my bin day")
	before := h.routed(id).SLA.Resolution.DueAt
	if code, raw := h.api(http.MethodPut, fmt.Sprintf("/cases/%d/status", id), map[string]string{"status": "awaiting_resident"}); code != http.StatusOK {
		t.Fatalf("awaiting resident: %d %s", code, raw)
	}
	if c := h.routed(id); c.SLA.Resolution.State != cases.SLAPaused {
		t.Fatalf("resolution %+v while awaiting the resident, want paused", c.SLA.Resolution)
	}
	var pausedAt time.Time
	h.direct.Raw(`SELECT started_at FROM case_pauses WHERE case_id = ?`, id).Scan(&pausedAt)
	time.Sleep(1100 * time.Millisecond) // a pause long enough to see in seconds
	h.signed(directMessage(nextID(), alice, "it's Tuesday isn't it"))
	var c routedJSON
	h.eventually("resident's answer resumes the clock", func() bool {
		c = h.routed(id)
		return c.Status == "open" && c.SLA.Resolution.State == cases.SLARunning
	})
	var endedAt time.Time
	h.direct.Raw(`SELECT ended_at FROM case_pauses WHERE case_id = ?`, id).Scan(&endedAt)
	paused := endedAt.Sub(pausedAt)
	if moved := c.SLA.Resolution.DueAt.Sub(before); moved < paused-time.Millisecond || moved > paused+time.Millisecond {
		t.Errorf("resolution due moved by %v after a pause of %v (24/7 target), want the same", moved, paused)
	}
	if c.SLA.PausedSeconds < 1 {
		t.Errorf("paused %d s recorded, want at least 1", c.SLA.PausedSeconds)
	}
}

func TestPriorityChangeRecomputesDeadlinesAndIsForSupervisors(t *testing.T) {
	h := newHarness(t, withRules(false))
	_, supervisor := h.user("sam@example.gov.uk", "supervisor", "contact-centre", "highways")
	_, id := h.dmCase(alice, "a general question")
	path := fmt.Sprintf("/cases/%d/priority", id)
	if code, _ := h.api(http.MethodPut, path, map[string]string{"priority": "urgent"}); code != http.StatusForbidden {
		t.Errorf("adviser changing priority: %d, want 403", code)
	}
	if code, raw := h.apiAs(supervisor, http.MethodPut, path, map[string]string{"priority": "bumped"}); code != http.StatusBadRequest && code != http.StatusUnprocessableEntity {
		t.Errorf("unknown priority: %d %s, want 400 or 422", code, raw)
	}
	code, raw := h.apiAs(supervisor, http.MethodPut, path, map[string]string{"priority": "urgent"})
	if code != http.StatusOK {
		t.Fatalf("supervisor changing priority: %d %s", code, raw)
	}
	c := h.routed(id)
	if want := c.FirstMessageAt.Add(time.Hour); c.Priority != "urgent" || !c.SLA.FirstResponse.DueAt.Equal(want) {
		t.Errorf("urgent case due %v, want %v (1 hour 24/7)", c.SLA.FirstResponse.DueAt, want)
	}
	if code, _ := h.apiAs(supervisor, http.MethodPut, path, map[string]string{"priority": "urgent"}); code != http.StatusConflict {
		t.Errorf("same priority again: %d, want 409", code)
	}
	if code, raw := h.apiAs(supervisor, http.MethodGet, "/routing", nil); code != http.StatusOK || !strings.Contains(string(raw), "potholes") {
		t.Errorf("routing rules for a supervisor: %d %s", code, raw)
	}
	if code, raw := h.apiAs(supervisor, http.MethodGet, "/sla", nil); code != http.StatusOK || !strings.Contains(string(raw), "8 working hours") {
		t.Errorf("SLA policy for a supervisor: %d %s", code, raw)
	}
	if code, _ := h.api(http.MethodGet, "/routing", nil); code != http.StatusForbidden {
		t.Errorf("routing rules for an adviser: %d, want 403", code)
	}
}

func TestBreachIsAnnouncedExactlyOnceWithTwoServers(t *testing.T) {
	h := newHarness(t, withRules(false))
	other, _ := h.replica(nil)
	warnings := h.caseEvents(t, cases.EventSLAWarning)
	breaches := h.caseEvents(t, cases.EventSLABreached)
	// A message three hours old: its 2-hour first response (24/7) is
	// breached already, its resolution not.
	post := nextID()
	h.signedTo(other, accountSlug, xfake.DirectMessage(council, post, alice, "old question", time.Now().Add(-3*time.Hour)))
	id := h.waitCaseOf(post)
	h.eventually("first response announced", func() bool {
		return h.count(`SELECT first_response_alerted FROM cases WHERE id = ?`, id) == 2
	})
	h.eventually("outbox published", func() bool { return h.count(`SELECT count(*) FROM outbox`) == 0 })
	if ev := warnings.next(t); ev.CaseID != id || ev.Target != cases.TargetFirstResponse {
		t.Errorf("warning %+v", ev)
	}
	ev := breaches.next(t)
	if ev.CaseID != id || ev.Target != cases.TargetFirstResponse || ev.DueAt == nil {
		t.Fatalf("breach %+v", ev)
	}
	// Both servers sweep every 100ms; the breach stays announced once.
	for range 5 {
		if _, err := other.Cases.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := h.srv.Cases.Sweep(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := breaches.count(t); n != 1 {
		t.Errorf("%d breach events, want 1", n)
	}
	if n := warnings.count(t); n != 1 {
		t.Errorf("%d warning events, want 1", n)
	}
	// The escalation raised the priority, once.
	if c := h.routed(id); c.Priority != "high" || c.SLA.FirstResponse.State != cases.SLABreached {
		t.Errorf("after the breach: priority %s, first response %s; want high, breached", c.Priority, c.SLA.FirstResponse.State)
	}
}

// eventStream reads one kind of case event from CASE_EVENTS, from the
// start of the stream.
type eventStream struct {
	h       *harness
	subject string
	cons    jetstream.Consumer
}

func (h *harness) caseEvents(t *testing.T, kind string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	subject := h.opts.Names.CaseEventSubject(kind, "*")
	cons, err := h.srv.Bus.JS.OrderedConsumer(ctx, h.srv.Bus.Stream(bus.CaseEvents), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &eventStream{h: h, subject: subject, cons: cons}
}

func (s *eventStream) next(t *testing.T) cases.Event {
	t.Helper()
	msg, err := s.cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("no event on %s: %v", s.subject, err)
	}
	var ev cases.Event
	if err := json.Unmarshal(msg.Data(), &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// count is how many events of the kind the stream holds.
func (s *eventStream) count(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.h.srv.Bus.JS.Stream(ctx, s.h.srv.Bus.Stream(bus.CaseEvents))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(s.subject))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}
