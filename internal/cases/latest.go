package cases

import (
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/store"
)

// Latest is the newest message a resident sent on a case.
type Latest struct {
	CaseID     int64  `json:"-"`
	Body       string `json:"body"`
	Visibility string `json:"visibility"`
	// At is when the network says it was sent, or when we received it.
	At time.Time `json:"at"`
}

// latestInbound returns the newest message the resident sent on each of
// the cases (the caller has checked the reader may see them), by case id.
func latestInbound(db *gorm.DB, caseIDs []int64) (map[int64]Latest, error) {
	out := make(map[int64]Latest, len(caseIDs))
	if len(caseIDs) == 0 {
		return out, nil
	}
	var rows []Latest
	if err := db.Raw(`SELECT DISTINCT ON (m.case_id) m.case_id, m.body, m.visibility,
		coalesce(m.network_sent_at, m.received_at, m.created_at) AS at
		FROM messages m WHERE m.case_id = ANY(?) AND m.direction = 'inbound'
		ORDER BY m.case_id, m.id DESC`, store.Int64s(caseIDs)).Scan(&rows).Error; err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.CaseID] = r
	}
	return out, nil
}
