package cases

import (
	"time"

	"github.com/citizeninbox/inbox/internal/sla"
)

// SLA targets, as the API, the events and the alerts name them.
const (
	TargetFirstResponse = "first_response"
	TargetNextResponse  = "next_response"
	TargetResolution    = "resolution"
)

// SLA states of one target.
const (
	SLARunning  = "running"
	SLAPaused   = "paused"
	SLAMet      = "met"
	SLABreached = "breached"
)

// Clocks are a case's SLA columns: what the case service computes on the
// policy's calendars and stores. Which targets are running follows from
// them and the case's status (a trigger keeps sla_due_at and sla_check_at).
type Clocks struct {
	FirstResponseDue      *time.Time `json:"first_response_due"`
	FirstResponseWarnAt   *time.Time `json:"first_response_warn_at"`
	NextResponseStartedAt *time.Time `json:"next_response_started_at"`
	NextResponseDue       *time.Time `json:"next_response_due"`
	NextResponseWarnAt    *time.Time `json:"next_response_warn_at"`
	ResolutionStartedAt   *time.Time `json:"resolution_started_at"`
	ResolutionDue         *time.Time `json:"resolution_due"`
	ResolutionWarnAt      *time.Time `json:"resolution_warn_at"`
	ResolutionPausedAt    *time.Time `json:"resolution_paused_at"`
	ResolutionRemainingMS *int64     `json:"resolution_remaining_ms"`
	PausedMS              int64      `json:"paused_ms"`
}

// clockColumns lists the columns of Clocks, for SELECT.
const clockColumns = `first_response_due, first_response_warn_at, next_response_started_at, next_response_due,
	next_response_warn_at, resolution_started_at, resolution_due, resolution_warn_at, resolution_paused_at,
	resolution_remaining_ms, paused_ms`

// setClocks assigns every column of Clocks from v, a row of
// jsonb_populate_recordset(NULL::cases, …) built from Clocks' JSON.
const setClocks = `first_response_due = v.first_response_due, first_response_warn_at = v.first_response_warn_at,
	next_response_started_at = v.next_response_started_at, next_response_due = v.next_response_due,
	next_response_warn_at = v.next_response_warn_at, resolution_started_at = v.resolution_started_at,
	resolution_due = v.resolution_due, resolution_warn_at = v.resolution_warn_at,
	resolution_paused_at = v.resolution_paused_at, resolution_remaining_ms = v.resolution_remaining_ms,
	paused_ms = v.paused_ms`

// clockColumnsC is clockColumns of the table aliased c.
const clockColumnsC = `c.first_response_due, c.first_response_warn_at, c.next_response_started_at, c.next_response_due,
	c.next_response_warn_at, c.resolution_started_at, c.resolution_due, c.resolution_warn_at, c.resolution_paused_at,
	c.resolution_remaining_ms, c.paused_ms`

// Pause is one stretch of time a case's resolution clock stood still
// (case_pauses); EndedAt is nil while it lasts.
type Pause struct {
	StartedAt time.Time
	EndedAt   *time.Time
}

type pause = Pause

func at(t time.Time) *time.Time { t = t.UTC(); return &t }

// due sets a target's deadline from when it started, and its warning.
func due(r *sla.Rule, start time.Time, dueAt, warnAt **time.Time) {
	if r == nil {
		*dueAt, *warnAt = nil, nil
		return
	}
	d := r.Due(start)
	*dueAt, *warnAt = at(d), at(r.WarnAt(d))
}

// start starts a new case's first-response and resolution clocks at the
// resident's first message.
func (c *Clocks) start(clk sla.Clock, first time.Time) {
	due(clk.FirstResponse, first, &c.FirstResponseDue, &c.FirstResponseWarnAt)
	c.ResolutionStartedAt = at(first)
	due(clk.Resolution, first, &c.ResolutionDue, &c.ResolutionWarnAt)
}

// residentWrote is a resident's message at t on a case we have answered
// before: it starts the next-response clock unless one is already running
// for an earlier unanswered message. lastResponse is our last reply.
func (c *Clocks) residentWrote(clk sla.Clock, t time.Time, firstResponse, lastResponse *time.Time) {
	if firstResponse == nil {
		return // the first response is still awaited
	}
	running := c.NextResponseStartedAt != nil && (lastResponse == nil || lastResponse.Before(*c.NextResponseStartedAt))
	if running {
		return
	}
	c.NextResponseStartedAt = at(t)
	due(clk.NextResponse, t, &c.NextResponseDue, &c.NextResponseWarnAt)
}

// pauseResolution stops the resolution clock at t, keeping what was left.
func (c *Clocks) pauseResolution(clk sla.Clock, t time.Time) {
	if c.ResolutionPausedAt != nil || c.ResolutionDue == nil || clk.Resolution == nil {
		return
	}
	left := clk.Resolution.Remaining(t, *c.ResolutionDue).Milliseconds()
	c.ResolutionPausedAt, c.ResolutionRemainingMS = at(t), &left
}

// resumeResolution starts the resolution clock again at t with what was
// left when it stopped, and records the time it stood still.
func (c *Clocks) resumeResolution(clk sla.Clock, t time.Time) {
	if c.ResolutionPausedAt == nil {
		return
	}
	if t.After(*c.ResolutionPausedAt) {
		c.PausedMS += t.Sub(*c.ResolutionPausedAt).Milliseconds()
	}
	if clk.Resolution != nil && c.ResolutionRemainingMS != nil {
		d := clk.Resolution.Resume(t, time.Duration(*c.ResolutionRemainingMS)*time.Millisecond)
		c.ResolutionDue, c.ResolutionWarnAt = at(d), at(clk.Resolution.WarnAt(d))
	}
	c.ResolutionPausedAt, c.ResolutionRemainingMS = nil, nil
}

// restartResolution starts the resolution clock afresh at t: a resolved
// case the resident wrote to again.
func (c *Clocks) restartResolution(clk sla.Clock, t time.Time) {
	c.ResolutionStartedAt = at(t)
	c.ResolutionPausedAt, c.ResolutionRemainingMS = nil, nil
	due(clk.Resolution, t, &c.ResolutionDue, &c.ResolutionWarnAt)
}

// recompute computes every deadline again on clk, after the case's team,
// priority or service, or the policy itself, changed: each from when its
// clock started, the resolution deadline moved on by the pauses since it
// started (measured in the new target's own time).
func (c *Clocks) recompute(clk sla.Clock, firstMessage time.Time, pauses []pause) {
	due(clk.FirstResponse, firstMessage, &c.FirstResponseDue, &c.FirstResponseWarnAt)
	if c.NextResponseStartedAt != nil {
		due(clk.NextResponse, *c.NextResponseStartedAt, &c.NextResponseDue, &c.NextResponseWarnAt)
	}
	start := firstMessage
	if c.ResolutionStartedAt != nil {
		start = *c.ResolutionStartedAt
	}
	r := clk.Resolution
	if r == nil {
		c.ResolutionDue, c.ResolutionWarnAt, c.ResolutionRemainingMS = nil, nil, nil
		return
	}
	d := r.Due(start)
	var stood time.Duration
	for _, p := range pauses {
		if p.EndedAt == nil || p.StartedAt.Before(start) {
			continue
		}
		stood += r.Remaining(p.StartedAt, *p.EndedAt)
	}
	if stood > 0 {
		d = r.Resume(d, stood)
	}
	c.ResolutionDue, c.ResolutionWarnAt = at(d), at(r.WarnAt(d))
	if c.ResolutionPausedAt != nil {
		left := r.Remaining(*c.ResolutionPausedAt, d).Milliseconds()
		c.ResolutionRemainingMS = &left
	}
}

// SLATarget is one target's state on a case.
type SLATarget struct {
	State string     `json:"state"`
	DueAt *time.Time `json:"due_at"`
	// MetAt is when the target was met (the reply, the resolution); null
	// while it runs.
	MetAt *time.Time `json:"met_at"`
}

// SLA is a case's service-level state, per target; a target the policy
// does not set, or whose clock has not started, is null.
type SLA struct {
	FirstResponse *SLATarget `json:"first_response"`
	NextResponse  *SLATarget `json:"next_response"`
	Resolution    *SLATarget `json:"resolution"`
	// PausedSeconds is how long the resolution clock has stood still while
	// the case awaited the resident.
	PausedSeconds int64 `json:"paused_seconds"`
}

// slaState describes a case's targets at now.
func slaState(c Clocks, status string, firstResponse, lastResponse, resolved *time.Time, now time.Time) SLA {
	live := status == StatusNew || status == StatusOpen || status == StatusAwaitingResident
	target := func(dueAt, metAt *time.Time, running, paused bool) *SLATarget {
		if dueAt == nil {
			return nil
		}
		t := &SLATarget{DueAt: dueAt}
		switch {
		case metAt != nil:
			t.MetAt, t.State = metAt, SLAMet
			if metAt.After(*dueAt) {
				t.State = SLABreached
			}
		case paused:
			t.State = SLAPaused
		case !running:
			// Closed without the target met: it counts as breached only
			// when its deadline had passed.
			t.State = SLAMet
			if now.After(*dueAt) {
				t.State = SLABreached
			}
		case now.Before(*dueAt):
			t.State = SLARunning
		default:
			t.State = SLABreached
		}
		return t
	}
	out := SLA{PausedSeconds: c.PausedMS / 1000}
	out.FirstResponse = target(c.FirstResponseDue, firstResponse, live, false)
	if c.NextResponseStartedAt != nil {
		var met *time.Time
		if lastResponse != nil && !lastResponse.Before(*c.NextResponseStartedAt) {
			met = lastResponse
		}
		out.NextResponse = target(c.NextResponseDue, met, live, false)
	}
	if c.ResolutionPausedAt != nil {
		out.PausedSeconds += int64(now.Sub(*c.ResolutionPausedAt).Seconds())
	}
	out.Resolution = target(c.ResolutionDue, resolved, live, c.ResolutionPausedAt != nil)
	return out
}
