// Package metrics defines the Prometheus series the product exports at
// /metrics. One Metrics value is built in main and passed to the roles.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every series, registered on its own registry.
type Metrics struct {
	Registry *prometheus.Registry

	// Webhooks counts webhook deliveries by channel and result
	// (accepted, partly_malformed, ignored, forged, malformed, too_large,
	// unknown_account, publish_failed, challenge).
	Webhooks *prometheus.CounterVec
	// WebhookSeconds times webhook answers.
	WebhookSeconds *prometheus.HistogramVec
	// InboundMessages counts resident messages published to INBOUND.
	InboundMessages *prometheus.CounterVec
	// InboundIgnored counts the updates of verified deliveries and of polls
	// that made no message (echoes, unknown kinds, unconfigured accounts),
	// by driver and kind.
	InboundIgnored *prometheus.CounterVec
	// CasesCreated counts new cases by channel.
	CasesCreated *prometheus.CounterVec
	// InboundProcessed counts INBOUND messages by result (stored, duplicate, failed, rejected).
	InboundProcessed *prometheus.CounterVec
	// Outbound counts outbound send results by channel (sent, failed,
	// retried, rate_limited, unauthorised (the network refused the
	// account's credential), ambiguous, record_retried, lost_claim,
	// abandoned).
	Outbound *prometheus.CounterVec
	// OutboxPublished counts outbox rows published to JetStream.
	OutboxPublished prometheus.Counter
	// APIRequests counts REST calls by route and status.
	APIRequests *prometheus.CounterVec
	// SLAAlerts counts SLA warnings and breaches announced, by target
	// (first_response, next_response, resolution) and kind (warning, breach).
	SLAAlerts *prometheus.CounterVec
	// AutomaticReplies counts acknowledgements and emergency replies queued.
	AutomaticReplies *prometheus.CounterVec
}

// New builds and registers the series, plus Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inbox_webhooks_total",
			Help: "Webhook deliveries by channel and result.",
		}, []string{"channel", "result"}),
		WebhookSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "inbox_webhook_duration_seconds",
			Help:    "Time to answer a webhook delivery.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"channel"}),
		InboundMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inbox_inbound_messages_total",
			Help: "Resident messages published to the INBOUND stream.",
		}, []string{"channel"}),
		CasesCreated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inbox_cases_created_total",
			Help: "Cases created, by channel.",
		}, []string{"channel"}),
		InboundProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inbox_inbound_processed_total",
			Help: "INBOUND messages handled by the case service, by result.",
		}, []string{"result"}),
		Outbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inbox_outbound_total",
			Help: "Outbound send attempts by channel and result.",
		}, []string{"channel", "result"}),
		OutboxPublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "inbox_outbox_published_total",
			Help: "Outbox rows published to JetStream.",
		}),
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inbox_api_requests_total",
			Help: "REST API requests by route and status code.",
		}, []string{"route", "code"}),
		InboundIgnored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inbox_inbound_ignored_total",
			Help: "Updates of verified webhook deliveries, and of polls, that made no message, by driver and kind.",
		}, []string{"driver", "kind"}),
		SLAAlerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inbox_sla_alerts_total",
			Help: "SLA warnings and breaches announced, by target and kind.",
		}, []string{"target", "kind"}),
		AutomaticReplies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inbox_automatic_replies_total",
			Help: "Automatic replies queued, by kind (acknowledgement, emergency).",
		}, []string{"kind"}),
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Webhooks, m.WebhookSeconds, m.InboundMessages, m.InboundIgnored, m.CasesCreated,
		m.InboundProcessed, m.Outbound, m.OutboxPublished, m.APIRequests, m.SLAAlerts, m.AutomaticReplies,
	)
	return m
}
