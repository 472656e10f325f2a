package cases

import (
	"context"
	"time"

	"github.com/citizeninbox/inbox/internal/store"
)

// Latest is the newest message a resident sent on a case.
type Latest struct {
	CaseID     int64
	Body       string
	Visibility string
	// At is when the network says it was sent, or when we received it.
	At time.Time
}

// LatestInbound returns, for those of the cases given that the actor
// sees, the newest message the resident sent, by case id. The queue shows
// it beside each case listed.
func (s *Service) LatestInbound(ctx context.Context, actor Actor, caseIDs []int64) (map[int64]Latest, error) {
	if !actor.Can(ActRead) {
		return nil, s.auditDenied(ctx, actor, &denied{err: ErrForbidden, action: ActRead})
	}
	out := make(map[int64]Latest, len(caseIDs))
	if len(caseIDs) == 0 {
		return out, nil
	}
	q := `SELECT DISTINCT ON (m.case_id) m.case_id, m.body, m.visibility,
		coalesce(m.network_sent_at, m.received_at, m.created_at) AS at
		FROM messages m JOIN cases c ON c.id = m.case_id
		WHERE m.case_id = ANY(?) AND m.direction = 'inbound'`
	args := []any{store.Int64s(caseIDs)}
	if !EveryTeam(actor.Role) {
		q += ` AND c.team_id = ANY(?)`
		args = append(args, store.Int64s(actor.TeamIDs))
	}
	q += ` ORDER BY m.case_id, m.id DESC`
	var rows []Latest
	if err := s.ctxDB(ctx).Raw(q, args...).Scan(&rows).Error; err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.CaseID] = r
	}
	return out, nil
}
