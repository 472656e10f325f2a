package reports

import (
	"context"
	"sort"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/store"
)

// OnlineWithin is how recently a user must have had a page open to count
// as online (pages tell the server every half minute or so).
const OnlineWithin = 2 * time.Minute

// AtRiskWithin is how soon a deadline must fall for its case to be at risk.
const AtRiskWithin = store.SLAAtRiskWithin

// Live are the figures of the supervisors' dashboard and of /metrics, read
// from PostgreSQL at one moment so every replica shows the same.
type Live struct {
	At        time.Time
	Teams     []TeamBacklog
	Unhealthy []UnhealthyAccount
}

// TeamBacklog is one team's open work.
type TeamBacklog struct {
	TeamID     int64
	Slug, Name string
	// Cases still being worked on, by status (new, open,
	// awaiting_resident) and by channel.
	Cases     int64
	ByStatus  map[string]int64
	ByChannel map[string]int64
	// Oldest is the case that has waited longest for the council's
	// answer (a first response, or a response to the resident's latest
	// message); nil when none waits.
	Oldest *WaitingCase
	// Breached counts cases with a target past its deadline now; Warned
	// those past a warning but not yet the deadline; AtRisk those whose
	// next deadline falls within AtRiskWithin.
	Breached, Warned, AtRisk int64
	// Advisers are the team's advisers with their open cases in the team.
	Advisers []AdviserLoad
	// Online counts the team's advisers online.
	Online int64
}

// WaitingCase is a case waiting for the council since Since.
type WaitingCase struct {
	ID        int64
	Reference string
	Since     time.Time
}

// AdviserLoad is an adviser's open cases in a team against its cap.
type AdviserLoad struct {
	UserID int64
	Name   string
	Open   int64
	// Cap is the team's most open cases per adviser; nil for no cap.
	Cap    *int64
	Online bool
}

// UnhealthyAccount is a channel account whose network refused its
// credential.
type UnhealthyAccount struct {
	Slug, Channel, Name string
	Since               time.Time
	Reason              string
}

// Live conditions on cases: still being worked on; waiting for the
// council's answer, and since when. The SLA states are store.SLAState's,
// as the queue filters by them.
const (
	liveCase    = `c.status IN ('new', 'open', 'awaiting_resident')`
	waitingCase = `(c.status IN ('new', 'open') AND (c.first_response_at IS NULL OR (c.next_response_started_at IS NOT NULL AND (c.last_response_at IS NULL OR c.last_response_at < c.next_response_started_at))))`
	waitingFrom = `CASE WHEN c.first_response_at IS NULL THEN c.first_message_at ELSE c.next_response_started_at END`
)

// LiveFigures reads the live figures at now of the teams given (every team
// when nil).
func LiveFigures(ctx context.Context, db *gorm.DB, teams []int64, now time.Time) (Live, error) {
	db = db.WithContext(ctx)
	now = now.UTC()
	out := Live{At: now}
	scope, args := "TRUE", []any{}
	if teams != nil {
		scope, args = "t.id = ANY(?)", []any{store.Int64s(teams)}
	}
	var ts []struct {
		ID         int64
		Slug, Name string
	}
	if err := db.Raw(`SELECT t.id, t.slug, t.name FROM teams t WHERE `+scope+` ORDER BY t.name`, args...).Scan(&ts).Error; err != nil {
		return Live{}, err
	}
	byID := map[int64]*TeamBacklog{}
	ids := make(store.Int64s, 0, len(ts))
	for _, t := range ts {
		out.Teams = append(out.Teams, TeamBacklog{TeamID: t.ID, Slug: t.Slug, Name: t.Name,
			ByStatus: map[string]int64{}, ByChannel: map[string]int64{}})
		ids = append(ids, t.ID)
	}
	for i := range out.Teams {
		byID[out.Teams[i].TeamID] = &out.Teams[i]
	}
	if len(ids) == 0 {
		return out, unhealthy(db, &out)
	}

	var counts []struct {
		TeamID          int64
		Status, Channel string
		N               int64
	}
	if err := db.Raw(`SELECT c.team_id, c.status, c.channel, count(*) AS n FROM cases c
		WHERE `+liveCase+` AND c.team_id = ANY(?) GROUP BY 1, 2, 3`, ids).Scan(&counts).Error; err != nil {
		return Live{}, err
	}
	for _, r := range counts {
		t := byID[r.TeamID]
		t.Cases += r.N
		t.ByStatus[r.Status] += r.N
		t.ByChannel[r.Channel] += r.N
	}

	var sla []struct {
		TeamID                   int64
		Breached, Warned, AtRisk int64
	}
	breached, bArgs, _ := store.SLAState(store.SLABreached, now)
	warned, wArgs, _ := store.SLAState(store.SLAWarned, now)
	atRisk, rArgs, _ := store.SLAState(store.SLAAtRisk, now)
	args = append(append(append(bArgs, wArgs...), rArgs...), ids)
	if err := db.Raw(`SELECT c.team_id,
			count(*) FILTER (WHERE `+breached+`) AS breached,
			count(*) FILTER (WHERE `+warned+`) AS warned,
			count(*) FILTER (WHERE `+atRisk+`) AS at_risk
		FROM cases c WHERE `+liveCase+` AND c.team_id = ANY(?) AND c.sla_due_at IS NOT NULL GROUP BY 1`,
		args...).Scan(&sla).Error; err != nil {
		return Live{}, err
	}
	for _, r := range sla {
		t := byID[r.TeamID]
		t.Breached, t.Warned, t.AtRisk = r.Breached, r.Warned, r.AtRisk
	}

	var oldest []struct {
		TeamID    int64
		ID        int64
		Reference string
		Since     time.Time
	}
	if err := db.Raw(`SELECT DISTINCT ON (c.team_id) c.team_id, c.id, c.reference, `+waitingFrom+` AS since
		FROM cases c WHERE `+waitingCase+` AND c.team_id = ANY(?) ORDER BY c.team_id, since, c.id`, ids).Scan(&oldest).Error; err != nil {
		return Live{}, err
	}
	for _, r := range oldest {
		byID[r.TeamID].Oldest = &WaitingCase{ID: r.ID, Reference: r.Reference, Since: r.Since.UTC()}
	}

	var load []struct {
		TeamID, UserID int64
		Name           string
		Open           int64
		Cap            *int64
		Online         bool
	}
	if err := db.Raw(`SELECT ut.team_id, u.id AS user_id, u.name, t.max_open_per_adviser AS cap,
			coalesce(u.last_seen_at > ?, false) AS online,
			(SELECT count(*) FROM cases c WHERE c.assignee_id = u.id AND c.team_id = ut.team_id AND `+liveCase+`) AS open
		FROM user_teams ut JOIN users u ON u.id = ut.user_id JOIN teams t ON t.id = ut.team_id
		WHERE ut.team_id = ANY(?) AND u.role = 'adviser' AND u.disabled_at IS NULL`,
		now.Add(-OnlineWithin), ids).Scan(&load).Error; err != nil {
		return Live{}, err
	}
	for _, r := range load {
		t := byID[r.TeamID]
		t.Advisers = append(t.Advisers, AdviserLoad{UserID: r.UserID, Name: r.Name, Open: r.Open, Cap: r.Cap, Online: r.Online})
		if r.Online {
			t.Online++
		}
	}
	for i := range out.Teams {
		a := out.Teams[i].Advisers
		sort.Slice(a, func(i, j int) bool {
			if a[i].Open != a[j].Open {
				return a[i].Open > a[j].Open
			}
			return a[i].Name < a[j].Name
		})
	}
	return out, unhealthy(db, &out)
}

// unhealthy reads the accounts whose credential was refused.
func unhealthy(db *gorm.DB, out *Live) error {
	return db.Raw(`SELECT slug, channel, name, credential_refused_at AS since, credential_reason AS reason
		FROM channel_accounts WHERE credential_refused_at IS NOT NULL ORDER BY slug`).Scan(&out.Unhealthy).Error
}
