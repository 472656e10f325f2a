package cases

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/sla"
	"github.com/citizeninbox/inbox/internal/store"
)

// caseClocks is a stored case's SLA inputs: what its policy is chosen by
// and its clocks.
type caseClocks struct {
	ID              int64
	TeamID          int64
	Priority        string
	ServiceCode     *string
	FirstMessageAt  time.Time
	FirstResponseAt *time.Time
	LastResponseAt  *time.Time
	Clocks
}

func readClocks(tx *gorm.DB, id int64) (caseClocks, error) {
	var c caseClocks
	err := tx.Raw(`SELECT id, team_id, priority, service_code, first_message_at, first_response_at, last_response_at, `+
		clockColumns+` FROM cases WHERE id = ?`, id).Scan(&c).Error
	return c, err
}

// clockFor is the SLA clock of a case of the team, service and priority
// under the running policy; the zero Clock (no targets) without one.
func (s *Service) clockFor(tx *gorm.DB, teamID int64, service *string, priority string) sla.Clock {
	s.mu.RLock()
	pol := s.cfg.Policies
	s.mu.RUnlock()
	if pol == nil {
		return sla.Clock{}
	}
	svc := ""
	if service != nil {
		svc = *service
	}
	return pol.For(s.teamSlug(tx, teamID), svc, sla.Priority(priority))
}

// saveClocks writes a case's clocks.
func saveClocks(tx *gorm.DB, id int64, c Clocks) error {
	row, err := json.Marshal(struct {
		ID int64 `json:"id"`
		Clocks
	}{id, c})
	if err != nil {
		return err
	}
	return tx.Exec(`UPDATE cases c SET `+setClocks+`
		FROM jsonb_populate_record(NULL::cases, ?::jsonb) AS v WHERE c.id = v.id`, string(row)).Error
}

// statusClocks moves a case's clocks with a status change at now: waiting
// on the resident stops the resolution clock, leaving that state starts it
// again, and reopening a resolved case starts it afresh.
func (s *Service) statusClocks(tx *gorm.DB, id int64, from, to string, now time.Time) error {
	c, err := readClocks(tx, id)
	if err != nil {
		return err
	}
	clk := s.clockFor(tx, c.TeamID, c.ServiceCode, c.Priority)
	if from == StatusAwaitingResident && c.ResolutionPausedAt != nil {
		c.resumeResolution(clk, now)
		if err := tx.Exec(`UPDATE case_pauses SET ended_at = ? WHERE case_id = ? AND ended_at IS NULL`, now, id).Error; err != nil {
			return err
		}
	}
	if from == StatusResolved && (to == StatusOpen || to == StatusAwaitingResident) {
		c.restartResolution(clk, now)
	}
	if to == StatusAwaitingResident {
		c.pauseResolution(clk, now)
		if c.ResolutionPausedAt != nil {
			if err := tx.Exec(`INSERT INTO case_pauses (case_id, started_at) VALUES (?, ?)`, id, now).Error; err != nil {
				return err
			}
		}
	}
	return saveClocks(tx, id, c.Clocks)
}

// recomputeClocks computes a case's deadlines again, after its team,
// priority or service, or the policy, changed.
func (s *Service) recomputeClocks(tx *gorm.DB, id int64) error {
	c, err := readClocks(tx, id)
	if err != nil {
		return err
	}
	pauses, err := loadPauses(tx, id)
	if err != nil {
		return err
	}
	c.recompute(s.clockFor(tx, c.TeamID, c.ServiceCode, c.Priority), c.FirstMessageAt, pauses)
	return saveClocks(tx, id, c.Clocks)
}

// EventPriorityChanged announces a new priority on a case.
const EventPriorityChanged = "priority_changed"

// SetPriority gives a case another priority, and computes its deadlines
// again for it.
func (s *Service) SetPriority(ctx context.Context, actor Actor, ref, priority string) (Detail, error) {
	if !slices.Contains(Priorities, priority) {
		return Detail{}, ErrInvalidPriority
	}
	var d Detail
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		c, err := lockCase(tx, ref)
		if err != nil {
			return err
		}
		if err := check(actor, c.ID, c.TeamID, ActPrioritise); err != nil {
			return err
		}
		if c.Status == StatusClosed {
			return ErrClosed
		}
		if c.Priority == priority {
			return ErrPriorityUnchanged
		}
		if err := tx.Exec(`UPDATE cases SET priority = ?, updated_at = now() WHERE id = ?`, priority, c.ID).Error; err != nil {
			return err
		}
		if err := s.recomputeClocks(tx, c.ID); err != nil {
			return err
		}
		if err := audit(tx, actor, "case.priority_changed", c.ID, map[string]any{"from": c.Priority, "to": priority}); err != nil {
			return err
		}
		if d, err = readDetail(tx, c.ID); err != nil {
			return err
		}
		return s.emit(tx, Event{Kind: EventPriorityChanged, CaseID: c.ID, Reference: c.Reference, Team: d.Team,
			Channel: c.Channel, Status: c.Status, Priority: priority, At: d.UpdatedAt})
	})
	if err != nil {
		return Detail{}, s.auditDenied(ctx, actor, err)
	}
	s.wake()
	return d, nil
}

// settingSLAPolicy names the setting that holds the fingerprint of the SLA
// policy the stored deadlines were computed with.
const settingSLAPolicy = "sla_policy"

// RecomputeIfPolicyChanged computes the deadlines of every open case again
// when the SLA policy in force (identified by fingerprint) is not the one
// they were computed with, in batches, then records it. Two processes
// starting together may both do it; the result is the same.
func (s *Service) RecomputeIfPolicyChanged(ctx context.Context, fingerprint string) error {
	db := s.ctxDB(ctx)
	var stored string
	if err := db.Raw(`SELECT value FROM settings WHERE name = ?`, settingSLAPolicy).Scan(&stored).Error; err != nil {
		return err
	}
	if stored == fingerprint {
		return nil
	}
	var last int64
	n := 0
	for {
		var ids []int64
		err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
			if err := tx.Raw(`SELECT id FROM cases WHERE id > ? AND status IN ('new', 'open', 'awaiting_resident')
				ORDER BY id LIMIT 500 FOR UPDATE`, last).Scan(&ids).Error; err != nil {
				return err
			}
			for _, id := range ids {
				if err := s.recomputeClocks(tx, id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			break
		}
		n += len(ids)
		last = ids[len(ids)-1]
	}
	if n > 0 {
		s.log.Info("deadlines computed again for the SLA policy", "cases", n)
	}
	return db.Exec(`INSERT INTO settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = now()`, settingSLAPolicy, fingerprint).Error
}
