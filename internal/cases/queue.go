package cases

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/store"
)

// QueueFilter narrows the queue. Empty fields match everything, except
// Statuses: empty is the cases waiting for the council (new and open).
type QueueFilter struct {
	// Team is a team's slug; empty is every team of the actor's.
	Team     string
	Statuses []string
	Channel  string
	Priority string
	Tag      string
	// Mine shows only the actor's cases; Unassigned only nobody's;
	// AssigneeID only that user's.
	Mine       bool
	Unassigned bool
	AssigneeID int64
	// SLA is an SLA state of the case (CaseBreached, CaseWarned,
	// CaseAtRisk): the cases the supervisors' figure of that name counts.
	SLA string
	// From and To bound when the resident first wrote (From included, To
	// not); zero does not bound. Hour (0–23) and Weekday (1 Monday to 7)
	// are that moment's hour and day in Zone (UTC when nil); nil does not
	// filter. With AccountID and Service they list the cases a figure of
	// the response-times report counts.
	From, To      time.Time
	Hour, Weekday *int
	Zone          *time.Location
	AccountID     int64
	Service       string
	// Measure lists the cases behind a response-times figure of
	// responses or resolutions rather than of cases: first_response or
	// next_response (a response whose resident's message was asked in the
	// period, case_responses.asked_at), or resolution (a resolution in the
	// period, case_resolutions.resolved_at). The period, channel, account,
	// service, priority and adviser (the responder or resolver) then apply
	// to the response's or resolution's own record, as the report counts
	// them. Outcome narrows them to met, breached or running, as
	// reports.Compute counts attainment (breached and running take in the
	// period's cases still awaiting the answer); Reopened to the
	// resolutions reopened since.
	Measure  string
	Outcome  string
	Reopened bool
	// Page counts from 1; PageSize defaults to 50.
	Page     int
	PageSize int
}

// QueueRow is one case as the queue lists it.
type QueueRow struct {
	Summary
	// Latest is the resident's newest message; nil when there is none.
	Latest *Latest `json:"latest"`
	// SLADue is the deadline the queue is ordered by: the earliest one
	// running; nil when none runs.
	SLADue *time.Time `json:"sla_due_at"`
}

// QueueCounts are how many cases each filter option would show. They are
// counted within the team and status chosen (not the other filters), so
// one option's count does not hide the others'.
type QueueCounts struct {
	All        int            `json:"all"`
	Mine       int            `json:"mine"`
	Unassigned int            `json:"unassigned"`
	Channel    map[string]int `json:"channel"`
	Priority   map[string]int `json:"priority"`
	// SLA counts the cases in each SLA state (breached, warned, at_risk).
	SLA map[string]int `json:"sla"`
	// Status counts the cases of each status still with the council or
	// the resident (new, open, awaiting resident) in the team chosen.
	Status map[string]int `json:"status"`
	// Tag counts the most used tags within the team and status chosen,
	// most used first.
	Tag []TagCount `json:"tag"`
}

// TagCount is how many cases carry a tag.
type TagCount struct {
	Tag string `json:"tag"`
	N   int    `json:"count"`
}

// queueTagCounts is how many tags the queue counts.
const queueTagCounts = 15

// QueuePage is one page of the queue.
type QueuePage struct {
	Rows     []QueueRow  `json:"cases"`
	Total    int         `json:"total"`
	Page     int         `json:"page"`
	PageSize int         `json:"page_size"`
	Pages    int         `json:"pages"`
	Counts   QueueCounts `json:"counts"`
}

// Measures of a report's figure (QueueFilter.Measure) and outcomes.
var (
	QueueMeasures = []string{"first_response", "next_response", "resolution"}
	QueueOutcomes = []string{"met", "breached", "running"}
)

// ErrInvalidMeasure is a measure or outcome the queue does not know, or
// an outcome or reopened without a measure.
var ErrInvalidMeasure = errors.New("unknown measure or outcome")

// ErrInvalidSLAState is an SLA state the queue does not know.
var ErrInvalidSLAState = errors.New("unknown SLA state")

// SLA states of a whole case, that the queue filters by (QueueFilter.SLA)
// as the supervisors' figures count them (store.SLAState).
const (
	CaseBreached = store.SLABreached
	CaseWarned   = store.SLAWarned
	CaseAtRisk   = store.SLAAtRisk
)

// SLAStates are the SLA states of a case the queue filters by, in order.
var SLAStates = []string{CaseBreached, CaseWarned, CaseAtRisk}

// Errors of Next.
var (
	ErrNothingToClaim = errors.New("no unassigned case is waiting")
	ErrAtCapacity     = errors.New("you hold as many open cases as your team allows")
)

// queueOrder is the queue's order: the earliest SLA deadline first, then
// priority, then the longest waiting, then id.
const queueOrder = `c.sla_due_at ASC NULLS LAST,
	CASE c.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END,
	c.first_message_at, c.id`

// queueTeams resolves the filter's team to the team ids the actor sees.
func (s *Service) queueTeams(db *gorm.DB, actor Actor, team string) ([]int64, error) {
	var ids []int64
	q := `SELECT id FROM teams WHERE true`
	var args []any
	if team != "" {
		q += ` AND slug = ?`
		args = append(args, team)
	}
	if !EveryTeam(actor.Role) {
		q += ` AND id = ANY(?)`
		args = append(args, store.Int64s(actor.TeamIDs))
	}
	if err := db.Raw(q+` ORDER BY id`, args...).Scan(&ids).Error; err != nil {
		return nil, err
	}
	if team != "" && len(ids) == 0 {
		return nil, ErrUnknownTeam
	}
	return ids, nil
}

// Queue lists the cases of one team, or of every team of the actor's, in
// SLA order, with the counts of each filter option. The read is audited.
func (s *Service) Queue(ctx context.Context, actor Actor, f QueueFilter) (QueuePage, error) {
	if !actor.Can(ActRead) {
		return QueuePage{}, s.auditDenied(ctx, actor, &denied{err: ErrForbidden, action: ActRead})
	}
	if len(f.Statuses) == 0 {
		f.Statuses = []string{StatusNew, StatusOpen}
	}
	for _, st := range f.Statuses {
		if !slices.Contains(Statuses, st) {
			return QueuePage{}, ErrInvalidStatus
		}
	}
	if (f.Measure != "" && !slices.Contains(QueueMeasures, f.Measure)) || (f.Outcome != "" && !slices.Contains(QueueOutcomes, f.Outcome)) ||
		(f.Measure == "" && (f.Outcome != "" || f.Reopened)) || (f.Reopened && f.Measure != "resolution") {
		return QueuePage{}, ErrInvalidMeasure
	}
	now := time.Now()
	var slaCond string
	var slaArgs []any
	if f.SLA != "" {
		var ok bool
		if slaCond, slaArgs, ok = store.SLAState(f.SLA, now); !ok {
			return QueuePage{}, ErrInvalidSLAState
		}
	}
	if f.PageSize <= 0 || f.PageSize > 200 {
		f.PageSize = 50
	}
	if f.Page <= 0 {
		f.Page = 1
	}
	db := s.ctxDB(ctx)
	teams, err := s.queueTeams(db, actor, f.Team)
	if err != nil {
		return QueuePage{}, err
	}
	out := QueuePage{Rows: []QueueRow{}, Page: f.Page, PageSize: f.PageSize,
		Counts: QueueCounts{Channel: map[string]int{}, Priority: map[string]int{}, Status: map[string]int{}, SLA: map[string]int{}, Tag: []TagCount{}}}

	scope := ` FROM cases c WHERE c.team_id = ANY(?) AND c.status = ANY(?)`
	scopeArgs := []any{store.Int64s(teams), store.Strings(f.Statuses)}

	// Counts within the scope.
	var groups []struct {
		Channel                  string
		Priority                 string
		Unassigned               bool
		Mine                     bool
		N                        int
		Breached, Warned, AtRisk int
	}
	breached, bArgs, _ := store.SLAState(store.SLABreached, now)
	warned, wArgs, _ := store.SLAState(store.SLAWarned, now)
	atRisk, rArgs, _ := store.SLAState(store.SLAAtRisk, now)
	countArgs := append(append(append(append([]any{actor.UserID}, bArgs...), wArgs...), rArgs...), scopeArgs...)
	if err := db.Raw(`SELECT c.channel, c.priority, c.assignee_id IS NULL AS unassigned,
		coalesce(c.assignee_id = ?, false) AS mine, count(*) AS n,
		count(*) FILTER (WHERE `+breached+`) AS breached, count(*) FILTER (WHERE `+warned+`) AS warned,
		count(*) FILTER (WHERE `+atRisk+`) AS at_risk`+scope+` GROUP BY 1, 2, 3, 4`,
		countArgs...).Scan(&groups).Error; err != nil {
		return QueuePage{}, err
	}
	for _, g := range groups {
		out.Counts.All += g.N
		out.Counts.Channel[g.Channel] += g.N
		out.Counts.Priority[g.Priority] += g.N
		if g.Unassigned {
			out.Counts.Unassigned += g.N
		}
		if g.Mine {
			out.Counts.Mine += g.N
		}
		out.Counts.SLA[store.SLABreached] += g.Breached
		out.Counts.SLA[store.SLAWarned] += g.Warned
		out.Counts.SLA[store.SLAAtRisk] += g.AtRisk
	}

	var statuses []struct {
		Status string
		N      int
	}
	if err := db.Raw(`SELECT c.status, count(*) AS n FROM cases c WHERE c.team_id = ANY(?)
		AND c.status IN ('new', 'open', 'awaiting_resident') GROUP BY 1`, store.Int64s(teams)).Scan(&statuses).Error; err != nil {
		return QueuePage{}, err
	}
	for _, st := range statuses {
		out.Counts.Status[st.Status] = st.N
	}
	if err := db.Raw(`SELECT tag, count(*) AS n`+strings.Replace(scope, "FROM cases c", "FROM cases c CROSS JOIN LATERAL unnest(c.tags) AS tag", 1)+
		` GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?`, append(slices.Clone(scopeArgs), queueTagCounts)...).Scan(&out.Counts.Tag).Error; err != nil {
		return QueuePage{}, err
	}

	where := scope
	args := slices.Clone(scopeArgs)
	if f.Tag != "" {
		where += ` AND ? = ANY(c.tags)`
		args = append(args, f.Tag)
	}
	if f.Mine {
		where += ` AND c.assignee_id = ?`
		args = append(args, actor.UserID)
	}
	if f.Unassigned {
		where += ` AND c.assignee_id IS NULL`
	}
	if f.Measure == "" {
		cond, cargs := f.snapshot("c.", "first_message_at", "assignee_id")
		where += cond
		args = append(args, cargs...)
	} else {
		cond, cargs := f.measured(now)
		where += ` AND (` + cond + `)`
		args = append(args, cargs...)
	}
	zone := "UTC"
	if f.Zone != nil {
		zone = f.Zone.String()
	}
	if f.Hour != nil {
		where += ` AND extract(hour FROM c.first_message_at AT TIME ZONE ?)::int = ?`
		args = append(args, zone, *f.Hour)
	}
	if f.Weekday != nil {
		where += ` AND extract(isodow FROM c.first_message_at AT TIME ZONE ?)::int = ?`
		args = append(args, zone, *f.Weekday)
	}
	if slaCond != "" {
		where += ` AND ` + slaCond
		args = append(args, slaArgs...)
	}
	if err := db.Raw(`SELECT count(*)`+where, args...).Scan(&out.Total).Error; err != nil {
		return QueuePage{}, err
	}
	out.Pages = (out.Total + f.PageSize - 1) / f.PageSize
	// The page's cases in order, with the deadline they are ordered by.
	var order []struct {
		ID       int64
		SLADueAt *time.Time
	}
	if err := db.Raw(`SELECT c.id, c.sla_due_at`+where+` ORDER BY `+queueOrder+` LIMIT ? OFFSET ?`,
		append(args, f.PageSize, (f.Page-1)*f.PageSize)...).Scan(&order).Error; err != nil {
		return QueuePage{}, err
	}
	if len(order) > 0 {
		ids := make([]int64, len(order))
		for i, o := range order {
			ids[i] = o.ID
		}
		var rows []summaryRow
		if err := db.Raw(summarySelect+` WHERE c.id = ANY(?)`, store.Int64s(ids)).Scan(&rows).Error; err != nil {
			return QueuePage{}, err
		}
		latest, err := latestInbound(db, ids)
		if err != nil {
			return QueuePage{}, err
		}
		byID := make(map[int64]summaryRow, len(rows))
		for _, r := range rows {
			byID[r.ID] = r
		}
		for _, o := range order {
			r, ok := byID[o.ID]
			if !ok {
				continue
			}
			qr := QueueRow{Summary: r.summary(), SLADue: o.SLADueAt}
			if l, ok := latest[o.ID]; ok {
				l.Body = truncate(l.Body, 120)
				qr.Latest = &l
			}
			out.Rows = append(out.Rows, qr)
		}
	}
	err = audit(db, actor, "queue.listed", 0, map[string]any{
		"team": f.Team, "statuses": f.Statuses, "channel": f.Channel, "priority": f.Priority, "tag": f.Tag,
		"mine": f.Mine, "unassigned": f.Unassigned, "assignee_id": f.AssigneeID, "sla": f.SLA, "from": f.From, "to": f.To,
		"hour": f.Hour, "weekday": f.Weekday, "account_id": f.AccountID, "service": f.Service, "page": f.Page, "count": len(out.Rows),
	})
	return out, err
}

// Claimed is the case Next took.
type Claimed struct {
	ID        int64     `json:"id"`
	Reference string    `json:"reference"`
	Team      string    `json:"team"`
	At        time.Time `json:"at"`
}

// Next assigns the actor the most urgent unassigned case waiting for the
// council (new or open), in queue order, of the given team or of every team
// of the actor's, skipping cases another adviser is claiming at that moment
// and teams where the actor already holds the team's cap of open cases.
//
// Where no team in reach has a cap, the claim, its audit entry and its
// assigned event are one statement: nothing to wait for but the row it
// takes. Where one has, the actor's user row is locked first, in a
// transaction, so two claims by the same adviser take turns and never
// exceed the cap (the cap is counted after the lock, by a statement that
// sees what the other claim committed); claims by different advisers run
// side by side.
func (s *Service) Next(ctx context.Context, actor Actor, team string) (Claimed, error) {
	if !actor.Can(ActAssignSelf) || actor.UserID == 0 {
		return Claimed{}, s.auditDenied(ctx, actor, &denied{err: ErrForbidden, action: ActAssignSelf})
	}
	db := s.ctxDB(ctx)
	teams := actor.TeamIDs
	if team != "" || EveryTeam(actor.Role) {
		var err error
		if teams, err = s.queueTeams(db, actor, team); err != nil {
			return Claimed{}, err
		}
	}
	c, err := s.claim(db, actor, team, teams, false)
	if err == nil && c.ID == 0 {
		// Nothing claimed: a team in reach may have a cap, which only the
		// locked claim applies.
		var capped bool
		if err := db.Raw(`SELECT EXISTS (SELECT 1 FROM teams WHERE id = ANY(?) AND max_open_per_adviser IS NOT NULL)`,
			store.Int64s(teams)).Scan(&capped).Error; err != nil {
			return Claimed{}, err
		}
		if capped {
			err = store.Write(ctx, s.db, func(tx *gorm.DB) error {
				var locked int64
				if err := tx.Raw(`SELECT id FROM users WHERE id = ? FOR UPDATE`, actor.UserID).Scan(&locked).Error; err != nil {
					return err
				}
				c, err = s.claim(tx, actor, team, teams, true)
				return err
			})
		}
	}
	if err != nil {
		return Claimed{}, err
	}
	if c.ID == 0 {
		var waiting bool
		if err := db.Raw(`SELECT EXISTS (SELECT 1 FROM cases WHERE team_id = ANY(?)
			AND status IN ('new', 'open') AND assignee_id IS NULL)`, store.Int64s(teams)).Scan(&waiting).Error; err != nil {
			return Claimed{}, err
		}
		if waiting {
			return Claimed{}, ErrAtCapacity
		}
		return Claimed{}, ErrNothingToClaim
	}
	s.wake()
	return c, nil
}

// claim runs the claim statement: it takes the case, audits the claim and
// writes the assigned event to the outbox, in one statement. Unlocked, it
// claims only where no team in reach has a cap (and so has no cap to
// count, which keeps the statement quick to plan as well as to run);
// locked (the actor's user row held by the caller's transaction), it
// counts each team's cap.
func (s *Service) claim(db *gorm.DB, actor Actor, team string, teams []int64, locked bool) (Claimed, error) {
	var (
		id        sql.NullInt64
		ref, slug sql.NullString
		at        sql.NullTime
	)
	var token *int64
	if actor.TokenID != 0 {
		token = &actor.TokenID
	}
	pick := claimFree
	if locked {
		pick = claimCapped
	}
	// Through database/sql, not gorm: this is the hottest statement an
	// adviser runs, and the machine it runs on is the database's too.
	err := db.Statement.ConnPool.QueryRowContext(db.Statement.Context, `WITH claimed AS (
			UPDATE cases SET assignee_id = $1, updated_at = now()
			WHERE id = (`+pick+`
				ORDER BY `+queueOrder+`
				LIMIT 1 FOR UPDATE OF c SKIP LOCKED)
			AND assignee_id IS NULL
			RETURNING id, reference, channel, status, updated_at, (SELECT slug FROM teams WHERE teams.id = cases.team_id) AS team
		), audited AS (
			INSERT INTO audit_events (action, user_id, token_id, case_id, detail)
			SELECT 'case.claimed', $1, $3::bigint, id, jsonb_build_object('reference', reference, 'team', $4::text) FROM claimed
		), emitted AS (
			INSERT INTO outbox (subject, msg_id, payload)
			SELECT $5::text || team,
				'case-' || id || '-' || $6::text || '-0-' || (extract(epoch FROM updated_at) * 1000000000)::bigint,
				jsonb_build_object('kind', $6::text, 'case_id', id, 'reference', reference, 'team', team,
					'channel', channel, 'status', status, 'at', updated_at)
			FROM claimed
		)
		SELECT id, reference, team, updated_at FROM claimed`,
		actor.UserID, store.Int64s(teams), token, team, s.names.CaseEventSubject(EventAssigned, ""), EventAssigned,
	).Scan(&id, &ref, &slug, &at)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	return Claimed{ID: id.Int64, Reference: ref.String, Team: slug.String, At: at.Time}, err
}

// The claim's choice of case ($1 the adviser, $2 their teams): where no
// team has a cap, and where each team's cap is counted.
const (
	claimFree = `SELECT c.id FROM cases c
		WHERE NOT EXISTS (SELECT 1 FROM teams WHERE id = ANY($2) AND max_open_per_adviser IS NOT NULL)
		AND c.team_id = ANY($2) AND c.status IN ('new', 'open') AND c.assignee_id IS NULL`
	claimCapped = `SELECT c.id FROM cases c JOIN teams t ON t.id = c.team_id
		WHERE c.team_id = ANY($2) AND c.status IN ('new', 'open') AND c.assignee_id IS NULL
		AND (t.max_open_per_adviser IS NULL OR (
			SELECT count(*) FROM cases o WHERE o.assignee_id = $1 AND o.team_id = c.team_id
			AND o.status IN ('new', 'open', 'awaiting_resident')
		) < t.max_open_per_adviser)`
)

// snapshot is the conditions of the period (on the time column), channel,
// priority, account, service and adviser (the adviser column) on the
// columns of the table aliased by prefix ("c.", "x."), each beginning
// " AND ".
func (f QueueFilter) snapshot(prefix, timeColumn, adviser string) (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		conds = append(conds, " AND "+prefix+cond)
		args = append(args, v)
	}
	if !f.From.IsZero() {
		add(timeColumn+" >= ?", f.From.UTC())
	}
	if !f.To.IsZero() {
		add(timeColumn+" < ?", f.To.UTC())
	}
	if f.Channel != "" {
		add("channel = ?", f.Channel)
	}
	if f.Priority != "" {
		add("priority = ?", f.Priority)
	}
	if f.AccountID != 0 {
		add("channel_account_id = ?", f.AccountID)
	}
	if f.Service != "" {
		add("service_code = ?", f.Service)
	}
	if f.AssigneeID != 0 {
		add(adviser+" = ?", f.AssigneeID)
	}
	return strings.Join(conds, ""), args
}

// queueLive is the condition of a case still being worked on.
const queueLive = `c.status IN ('new', 'open', 'awaiting_resident')`

// measured is the condition of the cases behind a figure of responses or
// resolutions, as reports.Compute counts them: the facts of the period
// (case_responses, case_resolutions) with the outcome asked, and, for
// breached and running, the period's cases still awaiting the answer.
func (f QueueFilter) measured(now time.Time) (string, []any) {
	var fact, timeColumn, adviser string
	var args []any
	if f.Measure == "resolution" {
		fact, timeColumn, adviser = `SELECT 1 FROM case_resolutions x WHERE x.case_id = c.id`, "resolved_at", "resolver_id"
	} else {
		fact, timeColumn, adviser = `SELECT 1 FROM case_responses x WHERE x.case_id = c.id AND x.target = ?`, "asked_at", "responder_id"
		args = append(args, f.Measure)
	}
	cond, cargs := f.snapshot("x.", timeColumn, adviser)
	fact += cond
	args = append(args, cargs...)
	if f.Outcome == "met" || f.Outcome == "breached" {
		fact += ` AND x.outcome = ?`
		args = append(args, f.Outcome)
	}
	if f.Reopened {
		fact += ` AND x.reopened_at IS NOT NULL`
	}
	if f.Outcome == "" || f.Outcome == "met" {
		return `EXISTS (` + fact + `)`, args
	}
	// Awaited on the period's cases (reports.awaited).
	var started, due, pending string
	switch f.Measure {
	case "first_response":
		started, due, pending = "first_message_at", "c.first_response_due", "c.first_response_at IS NULL"
	case "next_response":
		started, due, pending = "next_response_started_at", "c.next_response_due",
			"(c.last_response_at IS NULL OR c.last_response_at < c.next_response_started_at)"
	default:
		started, due, pending = "first_message_at", "c.resolution_due", "true"
	}
	acond, aargs := f.snapshot("c.", started, "assignee_id")
	awaited := `(true` + acond + ` AND ` + due + ` IS NOT NULL AND ` + pending
	switch {
	case f.Outcome == "running" && f.Measure == "resolution":
		awaited += ` AND ` + queueLive + `)`
		return awaited, aargs
	case f.Outcome == "running":
		awaited += ` AND ` + queueLive + ` AND ` + due + ` >= ?)`
		return awaited, append(aargs, now.UTC())
	case f.Measure == "resolution":
		// A resolution still awaited counts as running, whatever its
		// deadline.
		return `EXISTS (` + fact + `)`, args
	}
	awaited += ` AND ((` + queueLive + ` AND ` + due + ` < ?) OR (NOT ` + queueLive + ` AND ` + due + ` < coalesce(c.resolved_at, c.closed_at))))`
	return `EXISTS (` + fact + `) OR ` + awaited, append(append(args, aargs...), now.UTC())
}
