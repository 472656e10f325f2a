package server

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/reports"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/web"
)

// liveCollector exports the supervisors' live figures per team to
// /metrics: read from PostgreSQL at each scrape (reports.LiveFigures), so
// every replica reports the same values.
type liveCollector struct {
	base                                    context.Context
	s                                       *Server
	cases, oldest, breached, warned, atRisk *prometheus.Desc
	online                                  *prometheus.Desc
}

func newLiveCollector(ctx context.Context, s *Server) *liveCollector {
	team := []string{"team"}
	return &liveCollector{
		base: context.WithoutCancel(ctx),
		s:    s,
		cases: prometheus.NewDesc("inbox_queue_cases",
			"Cases still being worked on (new, open, awaiting the resident), by team and status.", []string{"team", "status"}, nil),
		oldest: prometheus.NewDesc("inbox_queue_oldest_waiting_seconds",
			"How long the case that has waited longest for the council's answer has waited, by team; 0 when none waits.", team, nil),
		breached: prometheus.NewDesc("inbox_sla_breached_cases",
			"Cases with an SLA target past its deadline now, by team.", team, nil),
		warned: prometheus.NewDesc("inbox_sla_warned_cases",
			"Cases past an SLA warning whose deadline has not passed yet, by team.", team, nil),
		atRisk: prometheus.NewDesc("inbox_sla_at_risk_cases",
			"Cases whose next SLA deadline falls within the hour, by team.", team, nil),
		online: prometheus.NewDesc("inbox_advisers_online",
			"Advisers with a page of the inbox open in the last two minutes, by team.", team, nil),
	}
}

func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cases, c.oldest, c.breached, c.warned, c.atRisk, c.online} {
		ch <- d
	}
}

func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(c.base, scrapeTimeout)
	defer cancel()
	live, err := reports.LiveFigures(ctx, c.s.DB, nil, time.Now())
	if err != nil {
		// No series rather than an error: /metrics stays up without the
		// database.
		c.s.log.Warn("metrics: live figures unavailable", "err", err)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, t := range live.Teams {
		for _, status := range []string{"new", "open", "awaiting_resident"} {
			gauge(c.cases, float64(t.ByStatus[status]), t.Slug, status)
		}
		waited := 0.0
		if t.Oldest != nil {
			waited = max(live.At.Sub(t.Oldest.Since).Seconds(), 0)
		}
		gauge(c.oldest, waited, t.Slug)
		gauge(c.breached, float64(t.Breached), t.Slug)
		gauge(c.warned, float64(t.Warned), t.Slug)
		gauge(c.atRisk, float64(t.AtRisk), t.Slug)
		gauge(c.online, float64(t.Online), t.Slug)
	}
}

// liveReports gives the pages the live figures (the supervisors'
// dashboard), from the same query as /metrics.
type liveReports struct{ db *gorm.DB }

func (l liveReports) Live(ctx context.Context, teams []int64, now time.Time) (reports.Live, error) {
	return reports.LiveFigures(ctx, l.db, teams, now)
}

func (l liveReports) Compute(ctx context.Context, f reports.Filter, now time.Time, loc *time.Location) (reports.Figures, error) {
	return reports.Compute(ctx, l.db, f, now, loc)
}

// Choices are the teams, channel accounts, services and advisers within
// reach of the teams given (every team's when nil).
func (l liveReports) Choices(ctx context.Context, teams []int64) (web.ReportChoices, error) {
	db := l.db.WithContext(ctx)
	var out web.ReportChoices
	cond, args := "true", []any{}
	if teams != nil {
		cond, args = "team_id = ANY(?)", []any{store.Int64s(teams)}
	}
	teamCond := strings.Replace(cond, "team_id", "id", 1)
	if err := db.Raw(`SELECT id, slug, name FROM teams WHERE `+teamCond+` ORDER BY name, slug`, args...).Scan(&out.Teams).Error; err != nil {
		return out, err
	}
	if err := db.Raw(`SELECT id, slug, name FROM channel_accounts WHERE `+cond+` ORDER BY name, slug`, args...).Scan(&out.Accounts).Error; err != nil {
		return out, err
	}
	if err := db.Raw(`SELECT DISTINCT service_code FROM cases WHERE service_code IS NOT NULL AND `+cond+` ORDER BY 1`, args...).
		Scan(&out.Services).Error; err != nil {
		return out, err
	}
	userCond := "true"
	if teams != nil {
		userCond = "id IN (SELECT user_id FROM user_teams WHERE team_id = ANY(?))"
	}
	err := db.Raw(`SELECT id, name FROM users WHERE `+userCond+` ORDER BY name, id`, args...).
		Scan(&out.Advisers).Error
	return out, err
}
