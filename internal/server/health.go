package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/store"
)

// AccountHealth is one configured channel account as the API shows it:
// whether its network takes its credential, and how many replies wait to
// go out on it.
type AccountHealth struct {
	Slug    string `json:"slug"`
	Channel string `json:"channel"`
	Name    string `json:"name"`
	Team    string `json:"team"`
	Healthy bool   `json:"healthy"`
	// UnhealthySince is when the network first refused the credential;
	// Reason is what it said.
	UnhealthySince *time.Time `json:"unhealthy_since"`
	Reason         string     `json:"reason"`
	RepliesWaiting int        `json:"replies_waiting"`
	// Templates are the account's approved templates, for replies after
	// the network's window for free text has closed.
	Templates []channels.Template `json:"templates" gorm:"-"`
}

// accountHealth reads the configured accounts' health from the database,
// which every replica shares, in the configuration's order.
func (s *Server) accountHealth(ctx context.Context) ([]AccountHealth, error) {
	f := s.file.Load()
	slugs := make([]string, len(f.ChannelAccounts))
	for i, a := range f.ChannelAccounts {
		slugs[i] = a.Slug
	}
	var rows []AccountHealth
	err := s.DB.WithContext(ctx).Raw(`SELECT a.slug, a.channel, a.name, t.slug AS team,
			a.credential_refused_at IS NULL AS healthy, a.credential_refused_at AS unhealthy_since,
			a.credential_reason AS reason,
			(SELECT count(*) FROM messages m WHERE m.channel_account_id = a.id
				AND m.delivery_status IN ('queued', 'sending')) AS replies_waiting
		FROM unnest(?::text[]) WITH ORDINALITY AS c(slug, n)
		JOIN channel_accounts a ON a.slug = c.slug
		JOIN teams t ON t.id = a.team_id
		ORDER BY c.n`, store.Strings(slugs)).Scan(&rows).Error
	if rows == nil {
		rows = []AccountHealth{}
	}
	for i := range rows {
		if rows[i].Templates = s.Cases.Templates(rows[i].Slug); rows[i].Templates == nil {
			rows[i].Templates = []channels.Template{}
		}
	}
	return rows, err
}

// ChannelAccounts lists the configured accounts and their health, for the
// API.
func (r *rulesInForce) ChannelAccounts(ctx context.Context) (any, error) {
	return (*Server)(r).accountHealth(ctx)
}

// healthCollector exports the accounts' health to /metrics, read from the
// database at each scrape so every replica reports the same.
type healthCollector struct {
	// base is the server's start context without its cancellation: a
	// scrape has no context of its own.
	base    context.Context
	s       *Server
	healthy *prometheus.Desc
	waiting *prometheus.Desc
}

func newHealthCollector(ctx context.Context, s *Server) *healthCollector {
	return &healthCollector{
		base: context.WithoutCancel(ctx),
		s:    s,
		healthy: prometheus.NewDesc("inbox_channel_account_healthy",
			"1 while the channel account's network takes its credential, 0 once it refused it (replies wait).",
			[]string{"account", "channel"}, nil),
		waiting: prometheus.NewDesc("inbox_channel_account_replies_waiting",
			"Replies queued or being sent on the channel account.",
			[]string{"account", "channel"}, nil),
	}
}

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.healthy
	ch <- c.waiting
}

// scrapeTimeout bounds the database read of one scrape.
const scrapeTimeout = 5 * time.Second

func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(c.base, scrapeTimeout)
	defer cancel()
	rows, err := c.s.accountHealth(ctx)
	if err != nil {
		// No series rather than an error: /metrics stays up while the
		// database is down, which is when operators read it most.
		c.s.log.Warn("metrics: channel account health unavailable", "err", err)
		return
	}
	for _, r := range rows {
		v := 0.0
		if r.Healthy {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, v, r.Slug, r.Channel)
		ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(r.RepliesWaiting), r.Slug, r.Channel)
	}
}
