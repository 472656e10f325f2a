// Package server wires the roles of the product into one running server:
// channel accounts opened by their drivers, database, bus, webhook ingest,
// pollers, case service, outbox relay, sender, REST API and operations
// endpoints (on a listener of their own) and the advisers' web pages. cmd/inbox calls it; tests start
// it in-process.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/api"
	"github.com/citizeninbox/inbox/internal/auth"
	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/ingest"
	"github.com/citizeninbox/inbox/internal/metrics"
	"github.com/citizeninbox/inbox/internal/outbound"
	"github.com/citizeninbox/inbox/internal/poll"
	"github.com/citizeninbox/inbox/internal/reqlog"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/web"
)

// Options are what a server is built from.
type Options struct {
	Env  config.Env
	File *config.File
	// Drivers are the channel drivers the configured accounts are opened
	// with.
	Drivers *channels.Registry
	Log     *slog.Logger
	// Names puts the streams in a namespace; tests use their own.
	Names bus.Names
	// Listener, when set, is used instead of listening on Env.HTTPAddr.
	// The operations endpoints listen on Env.OpsAddr, or on a free
	// loopback port when it is empty.
	Listener net.Listener
	Sender   outbound.SenderConfig
	// InboundRetry is the first wait before a message the database could
	// not take is offered again.
	InboundRetry  time.Duration
	RelayInterval time.Duration
	// HTTPClient is used for network APIs; nil means a default client.
	HTTPClient *http.Client
	Poll       poll.Config
	// Ingest are the webhook intake limits; zero fields take the defaults.
	Ingest ingest.Options
	// SLAInterval is how often the breach monitor looks for warnings and
	// breaches that have come; default 5s.
	SLAInterval time.Duration
	// SignIn bounds password guessing on the sign-in page; zero takes
	// auth.DefaultSignInLimits.
	SignIn auth.SignInLimits
}

// Server is a running server.
type Server struct {
	log      *slog.Logger
	opts     Options
	DB       *gorm.DB
	Bus      *bus.Bus
	Metrics  *metrics.Metrics
	Cases    *cases.Service
	Auth     *auth.Service
	Channels *channels.Accounts
	embedded *bus.Embedded
	pollers  *poll.Runner
	deps     channels.Deps
	// reloading serialises configuration reloads; file is the
	// configuration in force.
	reloading sync.Mutex
	file      atomic.Pointer[config.File]
	consumer  *cases.Consumer
	monitor   *cases.Monitor
	ingest    *ingest.Handler
	relay     *outbound.Relay
	sender    *outbound.Sender
	echo      *echo.Echo
	ui        *web.UI
	http      *http.Server
	listener  net.Listener
	// ops serves /metrics, /healthz and /readyz on its own listener, so
	// they are not exposed beside the public webhooks.
	ops         *http.Server
	opsListener net.Listener
	served      chan error
}

// Start builds every part and starts serving. On error, what was started is
// stopped again.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	// Every line logged with a request's context carries its request id.
	opts.Log = slog.New(reqlog.NewHandler(opts.Log.Handler()))
	s := &Server{log: opts.Log, opts: opts, Metrics: metrics.New(), served: make(chan error, 2)}
	s.file.Store(opts.File)
	defer func() {
		if err != nil {
			_ = s.closeBackends(context.WithoutCancel(ctx))
		}
	}()

	// Listen first, so a port in use is reported before anything else.
	s.listener = opts.Listener
	if s.listener == nil {
		if s.listener, err = net.Listen("tcp", opts.Env.HTTPAddr); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", opts.Env.HTTPAddr, err)
		}
	}
	opsAddr := opts.Env.OpsAddr
	if opsAddr == "" {
		opsAddr = "127.0.0.1:0"
	}
	if s.opsListener, err = net.Listen("tcp", opsAddr); err != nil {
		return nil, fmt.Errorf("listen for operations endpoints on %s: %w", opsAddr, err)
	}

	// Channels: every configured account opened by its channel's driver.
	httpClient := opts.HTTPClient
	if httpClient == nil {
		sendTimeout := opts.Sender.SendTimeout
		if sendTimeout <= 0 {
			sendTimeout = 15 * time.Second
		}
		httpClient = &http.Client{Timeout: sendTimeout}
	}
	s.deps = channels.Deps{HTTP: httpClient, Log: opts.Log.With("role", "channels"), PublicURL: opts.Env.PublicURL}
	if s.Channels, err = openChannels(opts.Drivers, opts.File, s.deps); err != nil {
		return nil, err
	}

	// Database: migrate, connect, write the configured teams and accounts.
	if err := store.Migrate(ctx, opts.Env.DatabaseURL); err != nil {
		return nil, err
	}
	if s.DB, err = store.Open(ctx, opts.Env.DatabaseURL, opts.Log); err != nil {
		return nil, err
	}
	if err := syncConfig(ctx, s.DB, opts.File, s.Channels); err != nil {
		return nil, fmt.Errorf("write configuration to the database: %w", err)
	}
	s.Metrics.Registry.MustRegister(newHealthCollector(ctx, s), newLiveCollector(ctx, s))

	// Bus: an external NATS with its credentials and TLS, or an embedded
	// one with its data on disk and credentials of its own.
	natsURL := opts.Env.NATSURL
	natsOpts := bus.Security{
		CredsFile: opts.Env.NATSCreds, CAFile: opts.Env.NATSCA,
		CertFile: opts.Env.NATSCert, KeyFile: opts.Env.NATSKey,
	}.Options()
	if natsURL == "" {
		if err := os.MkdirAll(opts.Env.NATSDir, 0o750); err != nil {
			return nil, fmt.Errorf("NATS data directory: %w", err)
		}
		if s.embedded, err = bus.StartEmbedded(opts.Env.NATSDir); err != nil {
			return nil, err
		}
		natsURL, natsOpts = s.embedded.URL(), s.embedded.ConnectOptions()
		opts.Log.Info("embedded NATS started", "dir", opts.Env.NATSDir)
	}
	names := opts.Names
	if names.Namespace == "" {
		names.Namespace = opts.Env.NATSNamespace
	}
	names.Replicas = opts.Env.NATSReplicas
	if s.Bus, err = bus.Connect(ctx, natsURL, names, natsOpts...); err != nil {
		return nil, err
	}

	// Roles: outbox relay, case service, sender.
	relayPub, err := s.Bus.NewPublisher(outbound.RelayWindow)
	if err != nil {
		return nil, err
	}
	s.relay = outbound.NewRelay(s.DB, relayPub, s.Metrics, opts.Log.With("role", "relay"), opts.RelayInterval)
	s.relay.Start(context.WithoutCancel(ctx))
	s.Cases = cases.New(s.DB, names, s.Metrics, opts.Log.With("role", "cases"), s.relay.Wake)
	caseCfg, err := caseConfiguration(opts.File, opts.Drivers, s.Channels)
	if err != nil {
		return nil, err
	}
	s.Cases.UseConfiguration(caseCfg)
	if err := s.Cases.RecomputeIfPolicyChanged(ctx, slaFingerprint(opts.File)); err != nil {
		return nil, fmt.Errorf("recompute deadlines for the SLA policy: %w", err)
	}
	interval := opts.SLAInterval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	s.monitor = s.Cases.StartMonitor(context.WithoutCancel(ctx), interval)
	if s.consumer, err = s.Cases.StartConsumer(ctx, s.Bus, opts.InboundRetry); err != nil {
		return nil, err
	}
	senderCfg := opts.Sender
	if senderCfg.Lease <= 0 {
		senderCfg.Lease = opts.Env.SendLease
	}
	if senderCfg.Responses == nil {
		senderCfg.Responses = s.Cases
	}
	s.sender = outbound.NewSender(s.DB, s.Channels.Senders(), s.Metrics, opts.Log.With("role", "sender"), senderCfg)
	if err := s.sender.Start(ctx, s.Bus); err != nil {
		return nil, err
	}
	s.Auth = auth.New(s.DB)
	if opts.SignIn != (auth.SignInLimits{}) {
		s.Auth.WithSignInLimits(opts.SignIn)
	}

	// Intake: webhooks and pollers publish through one ingest publisher.
	if s.ingest, err = ingest.New(webhookEndpoints(s.Channels), s.Bus, ingest.KeepFunc(s.keepRejected), s.Metrics,
		opts.Log.With("role", "ingest"), opts.Ingest); err != nil {
		return nil, err
	}
	// Pollers: accounts of networks without webhooks, one replica each.
	pollCfg := opts.Poll
	if pollCfg.Metrics == nil {
		pollCfg.Metrics = s.Metrics
	}
	s.opts.Poll = pollCfg
	if s.pollers, err = poll.Start(ctx, s.Bus, s.DB, s.Channels.Pollers(), s.ingest, pollCfg,
		opts.Log.With("role", "poll")); err != nil {
		return nil, err
	}

	// HTTP: webhooks, REST API, pages (sessions in the database).
	sqlDB, err := s.DB.DB()
	if err != nil {
		return nil, err
	}
	if s.ui, err = web.New(ctx, web.Options{
		Users: s.Auth, Cases: s.Cases, Reports: liveReports{s.DB}, Bus: s.Bus, DB: sqlDB, PublicURL: opts.Env.PublicURL, Log: opts.Log.With("role", "web"),
	}); err != nil {
		return nil, err
	}
	e := newEcho(opts.Log)
	// Each request gets an id and one access log line; everything it logs
	// carries the id.
	e.Use(reqlog.RequestID())
	e.Use(reqlog.AccessLog(opts.Log, slog.LevelInfo))
	e.Use(middleware.Recover())
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection: "0", ContentTypeNosniff: "nosniff", XFrameOptions: "DENY",
		ContentSecurityPolicy: "default-src 'self'; style-src 'self' 'unsafe-inline'",
		ReferrerPolicy:        "same-origin",
	}))
	s.ingest.Register(e)
	api.Register(e, s.Cases, (*rulesInForce)(s), s.Auth, s.Metrics, opts.Log.With("role", "api"))
	s.ui.Register(e)
	s.echo = e

	// Operations, on their own listener: the public one answers 404 there.
	// Probes and scrapes come every few seconds, so their access lines are
	// written at debug level.
	ops := newEcho(opts.Log)
	ops.Use(reqlog.RequestID())
	ops.Use(reqlog.AccessLog(opts.Log, slog.LevelDebug))
	ops.Use(middleware.Recover())
	ops.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	ops.GET("/readyz", s.ready)
	ops.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})))
	s.ops = &http.Server{
		Handler:           ops,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}

	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() { s.served <- s.http.Serve(s.listener) }()
	go func() { s.served <- s.ops.Serve(s.opsListener) }()
	opts.Log.Info("serving", "addr", s.listener.Addr().String(), "public_url", opts.Env.PublicURL,
		"ops_addr", s.opsListener.Addr().String())
	return s, nil
}

// newEcho returns an echo with the product's error handler.
func newEcho(log *slog.Logger) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = api.ErrorHandler(log)
	// The peer's address as TCP saw it: headers such as X-Forwarded-For are
	// the caller's to forge.
	e.IPExtractor = echo.ExtractIPDirect()
	return e
}

// keepRejected keeps in inbound_rejected what ingest accepted from a
// network but cannot publish.
func (s *Server) keepRejected(ctx context.Context, subject string, data []byte, reason string) error {
	return s.DB.WithContext(ctx).Exec(`INSERT INTO inbound_rejected (subject, data, reason) VALUES (?, ?, ?)`,
		subject, data, reason).Error
}

// Reload makes the running server follow a new configuration without a
// restart: the teams and accounts are written to the database, every
// account is opened again by its driver, and webhooks, the case service,
// the sender and the pollers switch to them. The file was parsed and
// validated already; an account its driver cannot open, or a database that
// will not take the configuration, leaves the running one in place.
func (s *Server) Reload(ctx context.Context, f *config.File) error {
	s.reloading.Lock()
	defer s.reloading.Unlock()
	accts, err := openChannels(s.opts.Drivers, f, s.deps)
	if err != nil {
		return err
	}
	caseCfg, err := caseConfiguration(f, s.opts.Drivers, accts)
	if err != nil {
		return err
	}
	if err := syncConfig(ctx, s.DB, f, accts); err != nil {
		return fmt.Errorf("write configuration to the database: %w", err)
	}
	if err := s.ingest.Use(webhookEndpoints(accts)); err != nil {
		return err
	}
	s.Cases.UseConfiguration(caseCfg)
	s.file.Store(f)
	if err := s.Cases.RecomputeIfPolicyChanged(ctx, slaFingerprint(f)); err != nil {
		return fmt.Errorf("recompute deadlines for the new SLA policy: %w", err)
	}
	if err := s.sender.Use(ctx, accts.Senders()); err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	if err := s.pollers.Stop(ctx); err != nil {
		return fmt.Errorf("pollers: %w", err)
	}
	if s.pollers, err = poll.Start(ctx, s.Bus, s.DB, accts.Pollers(), s.ingest, s.opts.Poll, s.log.With("role", "poll")); err != nil {
		return fmt.Errorf("pollers: %w", err)
	}
	s.Channels = accts
	s.opts.File = f
	return nil
}

// Routes lists the HTTP routes the server serves.
func (s *Server) Routes() []*echo.Route { return s.echo.Routes() }

// Addr is the address the HTTP server listens on.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// URL is the server's base URL on this machine.
func (s *Server) URL() string { return "http://" + s.Addr() }

// OpsURL is the base URL of the operations endpoints (/metrics, /healthz,
// /readyz) on this machine.
func (s *Server) OpsURL() string { return "http://" + s.opsListener.Addr().String() }

// Served yields the error of either HTTP server (public or operations) if
// it stops on its own.
func (s *Server) Served() <-chan error { return s.served }

// ready answers whether this server should get traffic. That turns on NATS
// alone: webhooks are accepted while PostgreSQL is away (they wait in
// JetStream), so a database outage must not take the server out of a load
// balancer. The database's state is reported beside it.
func (s *Server) ready(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "nats": "ok"}
	status := http.StatusOK
	if err := store.Ping(ctx, s.DB); err != nil {
		s.log.WarnContext(ctx, "readiness: database unavailable", "err", err)
		checks["database"] = "unavailable"
	}
	if err := s.Bus.Ping(); err != nil {
		s.log.WarnContext(ctx, "readiness: NATS unavailable", "err", err)
		checks["nats"] = "unavailable"
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, checks)
}

// Shutdown stops the server in order: HTTP (no new webhooks or requests),
// pollers, consumers drained, outbox relay, NATS, database.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	if s.ui != nil {
		s.ui.EndStreams()
	}
	if s.http != nil {
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http: %w", err))
		}
	}
	if s.ops != nil {
		if err := s.ops.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("operations http: %w", err))
		}
	}
	errs = append(errs, s.closeBackends(ctx))
	return errors.Join(errs...)
}

func (s *Server) closeBackends(ctx context.Context) error {
	if s.http == nil && s.listener != nil {
		_ = s.listener.Close() // start-up failed before serving
	}
	if s.ops == nil && s.opsListener != nil {
		_ = s.opsListener.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var errs []error
	if s.pollers != nil {
		if err := s.pollers.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("pollers: %w", err))
		}
	}
	if s.monitor != nil {
		s.monitor.Stop()
	}
	// The consumers drain side by side; each returns only once the work it
	// had in hand is committed or handed back, so NATS and the database are
	// closed under neither.
	var consumerErr, senderErr error
	var wg sync.WaitGroup
	if s.consumer != nil {
		wg.Go(func() { consumerErr = s.consumer.Drain(ctx) })
	}
	if s.sender != nil {
		wg.Go(func() { senderErr = s.sender.Drain(ctx) })
	}
	wg.Wait()
	if consumerErr != nil {
		errs = append(errs, fmt.Errorf("case consumer: %w", consumerErr))
	}
	if senderErr != nil {
		errs = append(errs, fmt.Errorf("sender: %w", senderErr))
	}
	if s.relay != nil {
		if err := s.relay.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("relay: %w", err))
		}
	}
	if s.Bus != nil {
		if err := s.Bus.Close(); err != nil {
			errs = append(errs, fmt.Errorf("nats: %w", err))
		}
	}
	if s.embedded != nil {
		s.embedded.Shutdown()
	}
	if s.ui != nil {
		s.ui.Close() // its clean-up of expired sessions uses the database
	}
	if s.DB != nil {
		if err := store.Close(s.DB); err != nil {
			errs = append(errs, fmt.Errorf("database: %w", err))
		}
	}
	return errors.Join(errs...)
}
