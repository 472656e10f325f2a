package cases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/store"
)

// Event kinds of the breach monitor.
const (
	EventSLAWarning         = "sla_warning"
	EventSLABreached        = "sla_breached"
	EventEscalated          = "escalated"
	EventSupervisorsAlerted = "supervisors_alerted"
)

// Alert kinds, as sla_alerts stores them.
const (
	alertWarning = "warning"
	alertBreach  = "breach"
)

// Escalation is what happens to a case when one of its deadlines nears or
// passes: the steps whose kind and target match, in order.
type Escalation struct {
	Steps []EscalationStep
}

// EscalationStep is one step of an escalation policy.
type EscalationStep struct {
	// On is "warning" or "breach".
	On string
	// Target is the SLA target the step is for; empty for any.
	Target string
	// RaisePriority moves the case one priority up (normal to high).
	RaisePriority bool
	// MoveToTeam moves the case to that team (its adviser stays only if
	// they belong to it).
	MoveToTeam string
	// NotifySupervisors sends a supervisors_alerted case event.
	NotifySupervisors bool
}

// Monitor announces SLA warnings and breaches: every few seconds it takes
// the cases whose next warning or deadline has come (sla_check_at, kept by
// a trigger), records each alert in sla_alerts, whose key makes it exactly
// once whichever process finds it first and however often it looks, and
// writes the case events and escalation in the same transaction. Nothing is
// lost across a restart: what is not yet announced is still due in the
// database.
type Monitor struct {
	svc      *Service
	interval time.Duration
	log      *slog.Logger
	cancel   context.CancelFunc
	done     chan struct{}
}

// monitorBatch bounds the cases one sweep takes.
const monitorBatch = 200

// StartMonitor starts the breach monitor, looking every interval.
func (s *Service) StartMonitor(ctx context.Context, interval time.Duration) *Monitor {
	ctx, cancel := context.WithCancel(ctx)
	m := &Monitor{svc: s, interval: interval, log: s.log.With("component", "sla_monitor"), cancel: cancel, done: make(chan struct{})}
	go m.run(ctx)
	return m
}

// Stop stops the monitor and waits for its sweep to end.
func (m *Monitor) Stop() {
	m.cancel()
	<-m.done
}

func (m *Monitor) run(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		for {
			n, err := m.svc.Sweep(ctx)
			if err != nil {
				if ctx.Err() == nil {
					m.log.Error("sla sweep failed", "err", err)
				}
				break
			}
			if n < monitorBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watchedCase is a case the monitor looks at.
type watchedCase struct {
	ID                    int64
	Reference             string
	Status                string
	Channel               string
	TeamID                int64
	AssigneeID            *int64
	Priority              string
	ServiceCode           *string
	Escalation            string
	FirstResponseAt       *time.Time
	FirstResponseDue      *time.Time
	FirstResponseWarnAt   *time.Time
	FirstResponseAlerted  int
	LastResponseAt        *time.Time
	NextResponseStartedAt *time.Time
	NextResponseDue       *time.Time
	NextResponseWarnAt    *time.Time
	NextResponseAlerted   int
	ResolvedAt            *time.Time
	ResolutionPausedAt    *time.Time
	ResolutionDue         *time.Time
	ResolutionWarnAt      *time.Time
	ResolutionAlerted     int
	Now                   time.Time
}

type alert struct {
	target, kind string
	due          time.Time
}

// due lists the alerts the case has come to, and the levels it reaches.
func (w *watchedCase) due() (alerts []alert, levels [3]int) {
	live := w.Status == StatusNew || w.Status == StatusOpen || w.Status == StatusAwaitingResident
	targets := []struct {
		name         string
		running      bool
		due, warn    *time.Time
		alertedLevel int
	}{
		{TargetFirstResponse, w.FirstResponseAt == nil, w.FirstResponseDue, w.FirstResponseWarnAt, w.FirstResponseAlerted},
		{TargetNextResponse, w.NextResponseStartedAt != nil &&
			(w.LastResponseAt == nil || w.LastResponseAt.Before(*w.NextResponseStartedAt)), w.NextResponseDue, w.NextResponseWarnAt, w.NextResponseAlerted},
		{TargetResolution, w.ResolvedAt == nil && w.ResolutionPausedAt == nil, w.ResolutionDue, w.ResolutionWarnAt, w.ResolutionAlerted},
	}
	for i, t := range targets {
		levels[i] = t.alertedLevel
		if !live || !t.running || t.due == nil {
			continue
		}
		if levels[i] == 0 && t.warn != nil && !t.warn.After(w.Now) {
			alerts = append(alerts, alert{t.name, alertWarning, *t.due})
			levels[i] = 1
		}
		if levels[i] <= 1 && !t.due.After(w.Now) {
			alerts = append(alerts, alert{t.name, alertBreach, *t.due})
			levels[i] = 2
		}
	}
	return alerts, levels
}

// Sweep announces the warnings and breaches that have come, for up to one
// batch of cases, and returns how many cases it looked at. Cases another
// process is sweeping are skipped, not waited for.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	n := 0
	var announced []alert
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		announced = announced[:0]
		var rows []watchedCase
		if err := tx.Raw(`SELECT id, reference, status, channel, team_id, assignee_id, priority, service_code, escalation,
				first_response_at, first_response_due, first_response_warn_at, first_response_alerted,
				last_response_at, next_response_started_at, next_response_due, next_response_warn_at, next_response_alerted,
				resolved_at, resolution_paused_at, resolution_due, resolution_warn_at, resolution_alerted, now() AS now
			FROM cases WHERE sla_check_at <= now()
			ORDER BY sla_check_at LIMIT ? FOR UPDATE SKIP LOCKED`, monitorBatch).Scan(&rows).Error; err != nil {
			return err
		}
		n = len(rows)
		for i := range rows {
			if err := s.announce(tx, &rows[i], &announced); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && n > 0 {
		for _, a := range announced {
			s.metrics.SLAAlerts.WithLabelValues(a.target, a.kind).Inc()
		}
		s.wake()
	}
	return n, err
}

// announce records one case's alerts and escalates it.
func (s *Service) announce(tx *gorm.DB, w *watchedCase, announced *[]alert) error {
	alerts, levels := w.due()
	if err := tx.Exec(`UPDATE cases SET first_response_alerted = ?, next_response_alerted = ?, resolution_alerted = ?
		WHERE id = ?`, levels[0], levels[1], levels[2], w.ID).Error; err != nil {
		return err
	}
	for _, a := range alerts {
		res := tx.Exec(`INSERT INTO sla_alerts (case_id, target, kind, due_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			w.ID, a.target, a.kind, a.due)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			continue // announced before
		}
		kind := EventSLAWarning
		if a.kind == alertBreach {
			kind = EventSLABreached
		}
		*announced = append(*announced, a)
		dueAt := a.due.UTC()
		team := s.teamSlug(tx, w.TeamID)
		if err := s.emit(tx, Event{Kind: kind, CaseID: w.ID, Reference: w.Reference, Team: team, Channel: w.Channel,
			Status: w.Status, Target: a.target, DueAt: &dueAt, At: dueAt}); err != nil {
			return err
		}
		if err := s.escalate(tx, w, a); err != nil {
			return err
		}
	}
	return nil
}

// escalate carries out the steps of the case's escalation policy that
// match the alert. Escalation leaves the deadlines as they are: the
// breach it answers stands.
func (s *Service) escalate(tx *gorm.DB, w *watchedCase, a alert) error {
	name := w.Escalation
	if name == "" {
		name = s.clockFor(tx, w.TeamID, w.ServiceCode, w.Priority).Escalation
	}
	s.mu.RLock()
	policy, ok := s.cfg.Escalations[name]
	s.mu.RUnlock()
	if !ok {
		return nil
	}
	reason := fmt.Sprintf("%s %s", a.target, map[string]string{alertWarning: "due soon", alertBreach: "breached"}[a.kind])
	for _, step := range policy.Steps {
		if step.On != a.kind || (step.Target != "" && step.Target != a.target) {
			continue
		}
		changes := map[string]any{}
		if step.RaisePriority {
			if up := raise(w.Priority); up != w.Priority {
				changes["priority"], w.Priority = up, up
			}
		}
		if step.MoveToTeam != "" {
			var teamID int64
			if err := tx.Raw(`SELECT id FROM teams WHERE slug = ?`, step.MoveToTeam).Scan(&teamID).Error; err != nil {
				return err
			}
			if teamID != 0 && teamID != w.TeamID {
				changes["team_id"], w.TeamID = teamID, teamID
				if w.AssigneeID != nil {
					switch err := eligible(tx, *w.AssigneeID, teamID); {
					case errors.Is(err, ErrAssigneeNotInTeam), errors.Is(err, ErrUnknownAssignee):
						changes["assignee_id"], w.AssigneeID = nil, nil
					case err != nil:
						return err
					}
				}
			}
		}
		team := s.teamSlug(tx, w.TeamID)
		if len(changes) > 0 {
			changes["updated_at"] = gorm.Expr("now()")
			if err := tx.Model(&store.Case{}).Where("id = ?", w.ID).Updates(changes).Error; err != nil {
				return err
			}
			detail, _ := json.Marshal(map[string]any{"policy": name, "reason": reason, "priority": w.Priority, "team": team})
			if err := tx.Exec(`INSERT INTO audit_events (action, case_id, detail) VALUES ('case.escalated', ?, ?::jsonb)`,
				w.ID, string(detail)).Error; err != nil {
				return err
			}
			if err := s.emit(tx, Event{Kind: EventEscalated, CaseID: w.ID, Reference: w.Reference, Team: team, Channel: w.Channel,
				Status: w.Status, Target: a.target, Reason: reason, At: w.Now}); err != nil {
				return err
			}
		}
		if step.NotifySupervisors {
			if err := s.emit(tx, Event{Kind: EventSupervisorsAlerted, CaseID: w.ID, Reference: w.Reference, Team: team,
				Channel: w.Channel, Status: w.Status, Target: a.target, Reason: reason, At: w.Now}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Priorities lists the case priorities from lowest to highest.
var Priorities = []string{"low", "normal", "high", "urgent"}

// raise is the priority one above p; urgent stays urgent.
func raise(p string) string {
	for i, q := range Priorities[:len(Priorities)-1] {
		if q == p {
			return Priorities[i+1]
		}
	}
	return p
}
