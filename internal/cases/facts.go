package cases

import (
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/sla"
)

// Outcomes of a response or a resolution against its target.
const (
	OutcomeMet      = "met"
	OutcomeBreached = "breached"
	// OutcomeNone is a response or resolution the policy set no target for.
	OutcomeNone = "none"
)

// factCase is what a fact keeps of its case, as the case was then.
type factCase struct {
	caseClocks
	Channel          string
	ChannelAccountID int64
}

func readFactCase(tx *gorm.DB, id int64) (factCase, error) {
	c, err := readClocks(tx, id)
	if err != nil || c.ID == 0 {
		return factCase{}, err
	}
	f := factCase{caseClocks: c}
	err = tx.Raw(`SELECT channel, channel_account_id FROM cases WHERE id = ?`, id).Row().Scan(&f.Channel, &f.ChannelAccountID)
	return f, err
}

// Outcome says whether done met the deadline due (none without one).
func Outcome(due *time.Time, done time.Time) string {
	switch {
	case due == nil:
		return OutcomeNone
	case done.After(*due):
		return OutcomeBreached
	}
	return OutcomeMet
}

// Working is the time between a and b in rule's own time: open time on
// its calendar for a working-time target, elapsed time otherwise; elapsed
// time without a rule. Never negative.
func Working(rule *sla.Rule, a, b time.Time) time.Duration {
	if !b.After(a) {
		return 0
	}
	if rule == nil {
		return b.Sub(a)
	}
	return max(rule.Remaining(a, b), 0)
}

// ResponseRule is the rule a response to target (TargetFirstResponse or
// TargetNextResponse) is timed by: the target's own, or the next one the
// policy sets (first response, then resolution); nil when none is set.
func ResponseRule(clk sla.Clock, target string) *sla.Rule {
	if target == TargetNextResponse {
		return firstRule(clk.NextResponse, clk.FirstResponse, clk.Resolution)
	}
	return firstRule(clk.FirstResponse, clk.Resolution)
}

// ResolutionWorking is the working time of a resolution made at at whose
// clock started at started, on rule (the resolution target's, nil for
// none), less the pauses since it started (one still open ends at at);
// paused is the part left out, in the rule's own time.
func ResolutionWorking(rule *sla.Rule, started, at time.Time, pauses []Pause) (worked, paused time.Duration) {
	for _, p := range pauses {
		from, to := p.StartedAt, at
		if p.EndedAt != nil {
			to = *p.EndedAt
		}
		from, to = later(from, started), earlier(to, at)
		paused += Working(rule, from, to)
	}
	return max(Working(rule, started, at)-paused, 0), paused
}

// firstRule is the first of rules that is set.
func firstRule(rules ...*sla.Rule) *sla.Rule {
	for _, r := range rules {
		if r != nil {
			return r
		}
	}
	return nil
}

// RecordResponse records, in tx, the reply of responder (nil for none)
// that the network accepted at at on a case, as a response when it is one:
// the case's first, or the first since the resident last wrote. It must
// run before the case's first_response_at and last_response_at record the
// reply, in the transaction that records it.
func (s *Service) RecordResponse(tx *gorm.DB, caseID int64, responder *int64, at time.Time) error {
	c, err := readFactCase(tx, caseID)
	if err != nil || c.ID == 0 {
		return err
	}
	clk := s.clockFor(tx, c.TeamID, c.ServiceCode, c.Priority)
	var (
		target string
		asked  time.Time
		due    *time.Time
		rule   *sla.Rule
	)
	switch {
	case c.FirstResponseAt == nil:
		target, asked, due = TargetFirstResponse, c.FirstMessageAt, c.FirstResponseDue
		rule = ResponseRule(clk, target)
	case c.NextResponseStartedAt != nil && (c.LastResponseAt == nil || c.LastResponseAt.Before(*c.NextResponseStartedAt)):
		target, asked, due = TargetNextResponse, *c.NextResponseStartedAt, c.NextResponseDue
		rule = ResponseRule(clk, target)
	default:
		return nil // a further reply to what was already answered
	}
	now := at.UTC()
	return tx.Exec(`INSERT INTO case_responses (case_id, target, asked_at, responded_at, due_at, outcome,
			working_ms, calendar_ms, responder_id, team_id, channel, channel_account_id, service_code, priority)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (case_id, target, asked_at) DO NOTHING`,
		c.ID, target, asked, now, due, Outcome(due, now),
		Working(rule, asked, now).Milliseconds(), max(now.Sub(asked), 0).Milliseconds(),
		responder, c.TeamID, c.Channel, c.ChannelAccountID, c.ServiceCode, c.Priority).Error
}

// RecordResolution records, in tx, that the case was resolved at at by
// resolver (nil for none): timed from when its resolution clock started,
// its working time leaving out the pauses since (one still open ends at
// at). It runs in the transaction that resolves the case, once a pause
// the resolution ends is closed.
func (s *Service) RecordResolution(tx *gorm.DB, caseID int64, resolver *int64, at time.Time) error {
	c, err := readFactCase(tx, caseID)
	if err != nil || c.ID == 0 {
		return err
	}
	pauses, err := loadPauses(tx, caseID)
	if err != nil {
		return err
	}
	rule := s.clockFor(tx, c.TeamID, c.ServiceCode, c.Priority).Resolution
	now := at.UTC()
	started := c.FirstMessageAt
	if c.ResolutionStartedAt != nil {
		started = *c.ResolutionStartedAt
	}
	worked, paused := ResolutionWorking(rule, started, now, pauses)
	return tx.Exec(`INSERT INTO case_resolutions (case_id, started_at, resolved_at, due_at, outcome, working_ms,
			calendar_ms, paused_ms, resolver_id, team_id, channel, channel_account_id, service_code, priority)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (case_id, resolved_at) DO NOTHING`,
		c.ID, started, now, c.ResolutionDue, Outcome(c.ResolutionDue, now), worked.Milliseconds(),
		max(now.Sub(started), 0).Milliseconds(), paused.Milliseconds(), resolver,
		c.TeamID, c.Channel, c.ChannelAccountID, c.ServiceCode, c.Priority).Error
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
