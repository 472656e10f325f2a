package store

import "time"

// SLA states of a case still being worked on, as the supervisors'
// figures count them and the queue filters by them: one definition, so a
// figure and the list of cases behind it always agree.
const (
	// SLABreached: a target past its deadline (sla_due_at, the earliest
	// deadline running, has passed).
	SLABreached = "breached"
	// SLAWarned: a running target past its warning time but not yet its
	// deadline.
	SLAWarned = "warned"
	// SLAAtRisk: the next deadline falls within SLAAtRiskWithin.
	SLAAtRisk = "at_risk"
)

// SLAAtRiskWithin is how soon a deadline must fall for its case to be at
// risk.
const SLAAtRiskWithin = time.Hour

// The targets that run, as the cases_sla_refresh trigger decides, on
// cases aliased c.
const (
	slaFirstRunning = `(c.first_response_at IS NULL AND c.first_response_due IS NOT NULL)`
	slaNextRunning  = `(c.next_response_due IS NOT NULL AND (c.last_response_at IS NULL OR c.last_response_at < c.next_response_started_at))`
	slaResRunning   = `(c.resolved_at IS NULL AND c.resolution_paused_at IS NULL AND c.resolution_due IS NOT NULL)`
)

// SLAState is the condition, on cases aliased c, that a case is in the
// state at now, with its arguments; ok is false for an unknown state.
func SLAState(state string, now time.Time) (cond string, args []any, ok bool) {
	switch state {
	case SLABreached:
		return `c.sla_due_at < ?`, []any{now}, true
	case SLAWarned:
		return `(c.sla_due_at IS NOT NULL AND ((` + slaFirstRunning + ` AND c.first_response_warn_at <= ? AND c.first_response_due > ?) OR (` +
				slaNextRunning + ` AND c.next_response_warn_at <= ? AND c.next_response_due > ?) OR (` +
				slaResRunning + ` AND c.resolution_warn_at <= ? AND c.resolution_due > ?)))`,
			[]any{now, now, now, now, now, now}, true
	case SLAAtRisk:
		return `(c.sla_due_at >= ? AND c.sla_due_at < ?)`, []any{now, now.Add(SLAAtRiskWithin)}, true
	}
	return "", nil, false
}
