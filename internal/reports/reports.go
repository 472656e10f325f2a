// Package reports computes the supervisors' figures from the read model the
// case service writes as cases change (case_responses, case_resolutions and
// the cases' own columns), never from the messages: response and
// resolution times as nearest-rank percentiles in working and calendar
// time, SLA attainment, volumes by hour and day, and the reopen rate.
//
// A response belongs to the period of the resident's message it answered;
// a resolution to the period it happened in. Working time is counted on
// the calendar of the SLA target that applied when the response or
// resolution was made, and leaves out the time a case awaited the
// resident; calendar time is the time on the clock.
package reports

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/store"
)

// Targets, as the case service names them.
const (
	FirstResponse = "first_response"
	NextResponse  = "next_response"
	Resolution    = "resolution"
)

// Filter chooses the cases a figure counts. Empty lists do not filter.
type Filter struct {
	// From and To bound the period, From included and To not.
	From, To   time.Time
	Teams      []int64
	Channels   []string
	Accounts   []int64
	Services   []string
	Priorities []string
	// Advisers are the responders of responses, the resolvers of
	// resolutions and the assignees of cases.
	Advisers []int64
}

// Validate says what is wrong with a filter's period.
func (f Filter) Validate() error {
	switch {
	case f.From.IsZero() || f.To.IsZero():
		return fmt.Errorf("reports: a period needs a start and an end")
	case !f.To.After(f.From):
		return fmt.Errorf("reports: the period ends (%s) before it starts (%s)", f.To.Format(time.RFC3339), f.From.Format(time.RFC3339))
	}
	return nil
}

// Durations are how long one kind of response or resolution took.
// Percentiles are nearest-rank: the p-th of n sorted values is the one at
// rank ⌈p·n⌉, so every figure is a time some case really took.
type Durations struct {
	Count                                    int64
	Median, P90, Max                         time.Duration // working time
	CalendarMedian, CalendarP90, CalendarMax time.Duration
}

// Attainment is how a target fared: met or breached, and, apart, those
// still running (not answered or resolved yet, deadline not passed).
type Attainment struct {
	Met, Breached, Running int64
}

// Rate is Met / (Met + Breached); ok is false when neither happened.
func (a Attainment) Rate() (rate float64, ok bool) {
	if a.Met+a.Breached == 0 {
		return 0, false
	}
	return float64(a.Met) / float64(a.Met+a.Breached), true
}

// Figures are the response-times page's figures for one filter.
type Figures struct {
	FirstResponse, NextResponse, Resolution Durations
	// Attainment per target (FirstResponse, NextResponse, Resolution).
	Attainment map[string]Attainment
	// Cases are the cases whose resident first wrote in the period, by
	// hour of day (0–23) and by day of week (Monday first), in the
	// report's time zone.
	Cases     int64
	ByHour    [24]int64
	ByWeekday [7]int64
	// Resolutions in the period, and how many of them were reopened
	// since.
	Resolutions, Reopened int64
}

// ReopenRate is Reopened / Resolutions; ok is false without resolutions.
func (f Figures) ReopenRate() (rate float64, ok bool) {
	if f.Resolutions == 0 {
		return 0, false
	}
	return float64(f.Reopened) / float64(f.Resolutions), true
}

// reportWorkMem is the memory each of a report's queries may sort in
// before spilling to disk: a month's responses sort in it.
const reportWorkMem = "32MB"

// Compute computes the figures of filter f at now, hours and days in loc.
// Its three reads (the distributions, what is still awaited, the volumes)
// run side by side, each in a read-only transaction of its own.
func Compute(ctx context.Context, db *gorm.DB, f Filter, now time.Time, loc *time.Location) (Figures, error) {
	if err := f.Validate(); err != nil {
		return Figures{}, err
	}
	var parts [3]Figures
	g, gctx := errgroup.WithContext(ctx)
	for i, read := range []func(*gorm.DB, *Figures) error{
		func(tx *gorm.DB, out *Figures) error { return durations(tx, f, out) },
		func(tx *gorm.DB, out *Figures) error { return awaited(tx, f, now, out) },
		func(tx *gorm.DB, out *Figures) error { return volumes(tx, f, loc, out) },
	} {
		parts[i].Attainment = map[string]Attainment{}
		g.Go(func() error {
			return db.WithContext(gctx).Transaction(func(tx *gorm.DB) error {
				if err := tx.Exec(`SET LOCAL work_mem = '` + reportWorkMem + `'`).Error; err != nil {
					return err
				}
				return read(tx, &parts[i])
			}, &sql.TxOptions{ReadOnly: true})
		})
	}
	if err := g.Wait(); err != nil {
		return Figures{}, err
	}
	out := parts[0]
	for target, a := range parts[1].Attainment {
		x := out.Attainment[target]
		x.Met, x.Breached, x.Running = x.Met+a.Met, x.Breached+a.Breached, x.Running+a.Running
		out.Attainment[target] = x
	}
	out.Cases, out.ByHour, out.ByWeekday = parts[2].Cases, parts[2].ByHour, parts[2].ByWeekday
	return out, nil
}

// where builds the conditions of a filter on a table's columns: the time
// column bounded by the period, and the filter's lists on the snapshot
// columns (the adviser's column named by adviser).
func where(f Filter, timeColumn, adviser string) (string, []any) {
	return whereOn(f, "", timeColumn, adviser)
}

// whereOn is where on the columns of the table aliased by prefix ("c.").
func whereOn(f Filter, prefix, timeColumn, adviser string) (string, []any) {
	conds := []string{prefix + timeColumn + " >= ?", prefix + timeColumn + " < ?"}
	args := []any{f.From.UTC(), f.To.UTC()}
	add := func(column string, n int, v any) {
		if n > 0 {
			conds = append(conds, prefix+column+" = ANY(?)")
			args = append(args, v)
		}
	}
	add("team_id", len(f.Teams), store.Int64s(f.Teams))
	add("channel", len(f.Channels), store.Strings(f.Channels))
	add("channel_account_id", len(f.Accounts), store.Int64s(f.Accounts))
	add("service_code", len(f.Services), store.Strings(f.Services))
	add("priority", len(f.Priorities), store.Strings(f.Priorities))
	add(adviser, len(f.Advisers), store.Int64s(f.Advisers))
	return strings.Join(conds, " AND "), args
}

// percentiles selects the distribution of a milliseconds column as
// <prefix>med, <prefix>p90 and <prefix>max. percentile_disc is the
// nearest-rank percentile: the first value whose rank reaches p·n.
func percentiles(column, prefix string) string {
	return `percentile_disc(0.5) WITHIN GROUP (ORDER BY ` + column + `) AS ` + prefix + `med,
		percentile_disc(0.9) WITHIN GROUP (ORDER BY ` + column + `) AS ` + prefix + `p90, max(` + column + `) AS ` + prefix + `max`
}

// distributions selects a fact table's working and calendar distributions.
var distributions = percentiles("working_ms", "") + `, ` + percentiles("calendar_ms", "cal_")

type distributionRow struct {
	Target                  string
	N                       int64
	Med, P90, Max           *int64
	CalMed, CalP90, CalMax  *int64
	Met, Breached, Reopened int64
}

func (r distributionRow) durations() Durations {
	ms := func(v *int64) time.Duration {
		if v == nil {
			return 0
		}
		return time.Duration(*v) * time.Millisecond
	}
	return Durations{Count: r.N, Median: ms(r.Med), P90: ms(r.P90), Max: ms(r.Max),
		CalendarMedian: ms(r.CalMed), CalendarP90: ms(r.CalP90), CalendarMax: ms(r.CalMax)}
}

// durations reads the responses and resolutions of the period.
func durations(db *gorm.DB, f Filter, out *Figures) error {
	cond, args := where(f, "asked_at", "responder_id")
	var rows []distributionRow
	if err := db.Raw(`SELECT target, count(*) AS n, `+distributions+`,
			count(*) FILTER (WHERE outcome = 'met') AS met, count(*) FILTER (WHERE outcome = 'breached') AS breached, 0 AS reopened
		FROM case_responses WHERE `+cond+` GROUP BY target`, args...).Scan(&rows).Error; err != nil {
		return err
	}
	cond, args = where(f, "resolved_at", "resolver_id")
	var res distributionRow
	if err := db.Raw(`SELECT 'resolution' AS target, count(*) AS n, `+distributions+`,
			count(*) FILTER (WHERE outcome = 'met') AS met, count(*) FILTER (WHERE outcome = 'breached') AS breached,
			count(*) FILTER (WHERE reopened_at IS NOT NULL) AS reopened
		FROM case_resolutions WHERE `+cond, args...).Scan(&res).Error; err != nil {
		return err
	}
	rows = append(rows, res)
	for _, r := range rows {
		switch r.Target {
		case FirstResponse:
			out.FirstResponse = r.durations()
		case NextResponse:
			out.NextResponse = r.durations()
		case Resolution:
			out.Resolution = r.durations()
			out.Resolutions, out.Reopened = r.N, r.Reopened
		}
		a := out.Attainment[r.Target]
		a.Met += r.Met
		a.Breached += r.Breached
		out.Attainment[r.Target] = a
	}
	return nil
}

// live is the SQL condition of a case still being worked on.
const live = `status IN ('new', 'open', 'awaiting_resident')`

// awaited counts the responses still awaited on the period's messages,
// and the resolutions still awaited on the period's cases: breached when
// the deadline passed before the answer (or before the case was closed
// without one), running while it has not; a case closed without a
// response before its deadline needed none and is not counted.
func awaited(db *gorm.DB, f Filter, now time.Time, out *Figures) error {
	classify := func(due string) string {
		return `count(*) FILTER (WHERE (` + live + ` AND ` + due + ` < ?) OR (NOT ` + live + ` AND ` + due + ` < coalesce(resolved_at, closed_at))) AS breached,
			count(*) FILTER (WHERE ` + live + ` AND ` + due + ` >= ?) AS running`
	}
	type counts struct{ Breached, Running int64 }
	count := func(target, timeColumn, due, pending string) error {
		cond, args := where(f, timeColumn, "assignee_id")
		var c counts
		if err := db.Raw(`SELECT `+classify(due)+` FROM cases WHERE `+cond+` AND `+due+` IS NOT NULL AND `+pending,
			append([]any{now.UTC(), now.UTC()}, args...)...).Scan(&c).Error; err != nil {
			return err
		}
		a := out.Attainment[target]
		a.Breached += c.Breached
		a.Running += c.Running
		out.Attainment[target] = a
		return nil
	}
	if err := count(FirstResponse, "first_message_at", "first_response_due", "first_response_at IS NULL"); err != nil {
		return err
	}
	if err := count(NextResponse, "next_response_started_at", "next_response_due",
		"(last_response_at IS NULL OR last_response_at < next_response_started_at)"); err != nil {
		return err
	}
	// Resolutions still awaited: running apart whatever their deadline, as
	// a resolution belongs to the period it happens in.
	cond, args := where(f, "first_message_at", "assignee_id")
	var running int64
	if err := db.Raw(`SELECT count(*) FROM cases WHERE `+cond+` AND `+live+` AND resolution_due IS NOT NULL`, args...).
		Scan(&running).Error; err != nil {
		return err
	}
	a := out.Attainment[Resolution]
	a.Running += running
	out.Attainment[Resolution] = a
	return nil
}

// volumes counts the period's new cases by hour of day and day of week.
func volumes(db *gorm.DB, f Filter, loc *time.Location, out *Figures) error {
	if loc == nil {
		loc = time.UTC
	}
	cond, args := where(f, "first_message_at", "assignee_id")
	var rows []struct {
		Hour, Dow int
		N         int64
	}
	if err := db.Raw(`SELECT extract(hour FROM first_message_at AT TIME ZONE ?)::int AS hour,
			extract(isodow FROM first_message_at AT TIME ZONE ?)::int AS dow, count(*) AS n
		FROM cases WHERE `+cond+` GROUP BY 1, 2`, append([]any{loc.String(), loc.String()}, args...)...).Scan(&rows).Error; err != nil {
		return err
	}
	for _, r := range rows {
		out.Cases += r.N
		out.ByHour[r.Hour] += r.N
		out.ByWeekday[r.Dow-1] += r.N
	}
	return nil
}
