package demodata

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/sla"
)

// topic is what a case is about: a service of a team (or no service).
type topic struct {
	team    string
	teamID  int64
	service string // "" for an enquiry no service fits
	subject string
	weight  float64
	season  int
	// the chances of low, high and urgent priority
	low, high, urgent float64
	emergency         bool
	safeguarding      bool
	advisers          []int64
}

// account is a configured channel account.
type account struct {
	id              int64
	slug            string
	public, private bool // the replies it can send
}

// pool is the residents of one channel, and its accounts.
type pool struct {
	channel string
	share   float64
	public  float64
	// first is the global index of its first resident; n how many.
	first, n int64
	accounts []account
}

// message is one message of a case's conversation.
type message struct {
	at      time.Time
	inbound bool
	body    string
}

type response struct {
	target           string
	asked, responded time.Time
	due              *time.Time
	outcome          string
	working, elapsed int64 // milliseconds
}

type resolution struct {
	started, resolved        time.Time
	due                      *time.Time
	outcome                  string
	working, elapsed, paused int64 // milliseconds
	reopenedAt               *time.Time
}

// kase is one generated case with everything written about it, as it
// stands at the end of the year.
type kase struct {
	id, reference        int64
	status               string
	topic                *topic
	pool                 *pool
	account              *account
	visibility           string
	contact, identity    int64
	assignee             *int64
	priority             string
	first, last, updated time.Time
	firstResponseAt      *time.Time
	resolvedAt, closedAt *time.Time
	reopened             int
	frDue, frWarn        *time.Time
	lastResponseAt       *time.Time
	nrStarted, nrDue     *time.Time
	nrWarn               *time.Time
	resStarted           time.Time
	resDue, resWarn      *time.Time
	resPausedAt          *time.Time
	resRemaining         *int64
	pausedMS             int64
	frAlerted, nrAlerted int16
	resAlerted           int16
	messages             []message
	pauses               []cases.Pause
	responses            []response
	resolutions          []resolution

	// the plan the case follows, before it is cut at the end of the year
	times []time.Time
	asks  []bool
}

func ptr[T any](v T) *T { return &v }

// expDuration is an exponentially distributed duration of mean mean, at
// least least.
func expDuration(r *rand.Rand, mean, least time.Duration) time.Duration {
	return max(time.Duration(r.ExpFloat64()*float64(mean)), least)
}

// respond is when the council answers a message at asked whose deadline
// is due (nil for none), timed by rule (nil: no policy at all): within
// the deadline, or, with the chance breach, after it.
func respond(r *rand.Rand, rule *sla.Rule, asked time.Time, due *time.Time, breach float64) time.Time {
	if rule == nil {
		return asked.Add(expDuration(r, 3*time.Hour, 2*time.Minute))
	}
	d := rule.Due(asked)
	if due != nil {
		d = *due
	}
	total := rule.Remaining(asked, d)
	if total <= 0 {
		total = time.Hour
	}
	if due != nil && r.Float64() < breach {
		late := max(time.Duration((0.05+1.2*r.Float64())*float64(total)), time.Minute)
		return rule.Resume(d, late)
	}
	at := rule.Resume(asked, time.Duration((0.05+0.9*math.Pow(r.Float64(), 1.5))*float64(total)))
	if due != nil && at.After(*due) {
		at = *due
	}
	if !at.After(asked) {
		at = asked.Add(time.Second)
	}
	return at
}

func dueOf(rule *sla.Rule, start time.Time) (due, warn *time.Time) {
	if rule == nil {
		return nil, nil
	}
	d := rule.Due(start).UTC()
	return &d, ptr(rule.WarnAt(d).UTC())
}

// alerted is the alert level the monitor would have reached on a target
// still pending at now: 2 past its deadline, 1 past its warning.
func alerted(due, warn *time.Time, now time.Time) int16 {
	switch {
	case due == nil:
		return 0
	case !now.Before(*due):
		return 2
	case warn != nil && !now.Before(*warn):
		return 1
	}
	return 0
}

// build makes case k: number i of the year, first written at t0 about tp.
func (g *generator) build(k *kase, t0 time.Time, tp *topic) {
	r := g.rng
	*k = kase{messages: k.messages[:0], pauses: k.pauses[:0], responses: k.responses[:0],
		resolutions: k.resolutions[:0], times: k.times[:0], asks: k.asks[:0]}
	k.id = g.caseBase + g.made
	k.reference = g.refBase + g.made
	k.topic = tp
	k.first = t0
	switch u := r.Float64(); {
	case u < tp.urgent:
		k.priority = string(sla.Urgent)
	case u < tp.urgent+tp.high:
		k.priority = string(sla.High)
	case u < tp.urgent+tp.high+tp.low:
		k.priority = string(sla.Low)
	default:
		k.priority = string(sla.Normal)
	}
	k.pool = g.pickPool()
	k.account = &k.pool.accounts[r.IntN(len(k.pool.accounts))]
	k.visibility = "private"
	if (r.Float64() < k.pool.public && k.account.public) || !k.account.private {
		k.visibility = "public"
	}
	resident := k.pool.first + r.Int64N(k.pool.n)
	k.contact, k.identity = g.contactBase+resident, g.identityBase+resident
	if len(tp.advisers) > 0 {
		k.assignee = &tp.advisers[r.IntN(len(tp.advisers))]
	}
	var clk sla.Clock
	if g.policies != nil {
		clk = g.policies.For(tp.team, tp.service, sla.Priority(k.priority))
	}
	surging := g.surging(t0, tp)
	frBreach, nrBreach := g.baseBreach, nextBreach
	if surging {
		frBreach, nrBreach = surgeBreach, surgeNext
	}

	// The plan: alternating messages, the resident first; the replies
	// that ask the resident for something; a reopening; the resolutions.
	n := g.messageCount()
	reopenAt := -1
	if n >= 4 && r.Float64() < reopenShare {
		reopenAt = 2 + 2*r.IntN((n-1)/2)
	}
	k.frDue, k.frWarn = dueOf(clk.FirstResponse, t0)
	k.times = append(k.times, t0)
	k.asks = append(k.asks, false)
	var resolved1 time.Time
	for j := 1; j < n; j++ {
		prev := k.times[j-1]
		var t time.Time
		switch {
		case j == 1:
			t = respond(r, cases.ResponseRule(clk, cases.TargetFirstResponse), t0, k.frDue, frBreach)
		case j == reopenAt:
			resolved1 = prev.Add(expDuration(r, time.Hour, 5*time.Minute)).Truncate(time.Millisecond)
			t = resolved1.Add(expDuration(r, 2*24*time.Hour, time.Hour))
		case j%2 == 0:
			gap := replyGap
			if k.asks[j-1] {
				gap = awaitGap
			}
			t = prev.Add(expDuration(r, gap, 2*time.Minute))
		default:
			due, _ := dueOf(clk.NextResponse, prev)
			t = respond(r, cases.ResponseRule(clk, cases.TargetNextResponse), prev, due, nrBreach)
		}
		k.times = append(k.times, t.UTC().Truncate(time.Millisecond))
		// A reply the resident answers may have asked them something.
		k.asks = append(k.asks, j%2 == 1 && j+1 < n && j+1 != reopenAt && r.Float64() < askShare)
	}
	g.replay(k, clk, reopenAt, resolved1)
}

// replay lives the plan of k up to the end of the year, as the case
// service would have recorded it, and decides its final resolution.
func (g *generator) replay(k *kase, clk sla.Clock, reopenAt int, resolved1 time.Time) {
	r, now := g.rng, g.end
	rule := clk.Resolution
	k.status = "new"
	k.resStarted = k.first
	k.resDue, k.resWarn = dueOf(rule, k.first)
	resolve := func(at time.Time) {
		worked, paused := cases.ResolutionWorking(rule, k.resStarted, at, k.pauses)
		k.resolutions = append(k.resolutions, resolution{started: k.resStarted, resolved: at, due: k.resDue,
			outcome: cases.Outcome(k.resDue, at), working: worked.Milliseconds(),
			elapsed: at.Sub(k.resStarted).Milliseconds(), paused: paused.Milliseconds()})
		k.resolvedAt, k.status, k.updated = ptr(at), "resolved", at
	}
	done := 0
	for j, t := range k.times {
		if j == reopenAt {
			if resolved1.After(now) {
				break
			}
			resolve(resolved1)
		}
		if t.After(now) {
			break
		}
		done++
		k.last, k.updated = t, t
		if j%2 == 0 {
			k.messages = append(k.messages, message{at: t, inbound: true, body: residentText(r, k.topic.team, j == 0)})
			if j == 0 {
				continue
			}
			if j == reopenAt {
				k.reopened++
				k.resolutions[len(k.resolutions)-1].reopenedAt = ptr(t)
				k.resolvedAt, k.status = nil, "open"
				k.resStarted = t
				k.resDue, k.resWarn = dueOf(rule, t)
			}
			if k.resPausedAt != nil {
				k.pauses[len(k.pauses)-1].EndedAt = ptr(t)
				k.pausedMS += t.Sub(*k.resPausedAt).Milliseconds()
				if rule != nil && k.resRemaining != nil {
					d := rule.Resume(t, time.Duration(*k.resRemaining)*time.Millisecond).UTC()
					k.resDue, k.resWarn = &d, ptr(rule.WarnAt(d).UTC())
				}
				k.resPausedAt, k.resRemaining = nil, nil
				k.status = "open"
			}
			k.nrStarted = ptr(t)
			k.nrDue, k.nrWarn = dueOf(clk.NextResponse, t)
			continue
		}
		// The council's reply.
		target, asked, due := cases.TargetFirstResponse, k.first, k.frDue
		if k.firstResponseAt != nil {
			target, asked, due = cases.TargetNextResponse, *k.nrStarted, k.nrDue
		}
		k.responses = append(k.responses, response{target: target, asked: asked, responded: t, due: due,
			outcome: cases.Outcome(due, t), working: cases.Working(cases.ResponseRule(clk, target), asked, t).Milliseconds(),
			elapsed: t.Sub(asked).Milliseconds()})
		if k.firstResponseAt == nil {
			k.firstResponseAt = ptr(t)
		}
		k.lastResponseAt = ptr(t)
		k.messages = append(k.messages, message{at: t, body: councilText(r)})
		k.status = "open"
		if k.asks[j] {
			k.status = "awaiting_resident"
			k.pauses = append(k.pauses, cases.Pause{StartedAt: t})
			k.resPausedAt = ptr(t)
			if rule != nil && k.resDue != nil {
				k.resRemaining = ptr(rule.Remaining(t, *k.resDue).Milliseconds())
			}
		}
	}
	if done == len(k.times) {
		last := k.times[len(k.times)-1]
		var at time.Time
		switch {
		case len(k.times)%2 == 1:
			// The resident's last message (thanks) needed no reply: the
			// case is resolved before the next response falls due.
			at = last.Add(expDuration(r, 30*time.Minute, 2*time.Minute))
			if k.nrDue != nil && !at.Before(*k.nrDue) {
				at = last.Add(k.nrDue.Sub(last) / 2)
			}
		case rule != nil && k.resDue != nil && r.Float64() < longShare:
			left := rule.Remaining(last, *k.resDue)
			if left <= 0 {
				left = 8 * time.Hour
			}
			at = rule.Resume(last, max(time.Duration((0.1+1.3*r.Float64())*float64(left)), time.Minute))
		default:
			at = last.Add(expDuration(r, 2*time.Hour, 5*time.Minute))
		}
		if at = at.UTC().Truncate(time.Millisecond); !at.After(now) {
			resolve(at)
			if closed := at.Add(closeAfter); !closed.After(now) {
				k.closedAt, k.status, k.updated = ptr(closed), "closed", closed
			}
		}
	}
	if k.status == "new" && r.Float64() < 0.7 {
		k.assignee = nil
	}
	if k.status == "new" || k.status == "open" || k.status == "awaiting_resident" {
		if k.firstResponseAt == nil {
			k.frAlerted = alerted(k.frDue, k.frWarn, now)
		}
		if k.nrStarted != nil && (k.lastResponseAt == nil || k.lastResponseAt.Before(*k.nrStarted)) {
			k.nrAlerted = alerted(k.nrDue, k.nrWarn, now)
		}
		if k.resPausedAt == nil {
			k.resAlerted = alerted(k.resDue, k.resWarn, now)
		}
	}
}

// referenceText is a case's reference, as the database's default makes
// them: the year the resident first wrote and a number of at least six
// digits from case_reference_seq.
func (k *kase) referenceText(loc *time.Location) string {
	return fmt.Sprintf("C-%04d-%06d", k.first.In(loc).Year(), k.reference)
}
