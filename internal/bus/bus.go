// Package bus owns the JetStream side of the product: the embedded
// nats-server for single-machine installs, the streams and their subjects,
// and the durable consumers the roles read from.
package bus

import (
	"context"
	"fmt"
	neturl "net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names, before the namespace.
const (
	Inbound    = "INBOUND"
	Outbound   = "OUTBOUND"
	CaseEvents = "CASE_EVENTS"
)

// Names turns stream and subject names into those of one namespace. The
// empty namespace is production's; tests use their own so they can share a
// NATS server without seeing each other's messages.
type Names struct {
	Namespace string
	// Replicas is how many servers of a NATS cluster keep each stream:
	// 3 for a cluster, 1 (or 0) for a single server.
	Replicas int
}

// Stream returns the name of a stream in this namespace.
func (n Names) Stream(name string) string {
	if n.Namespace == "" {
		return name
	}
	return strings.ToUpper(n.Namespace) + "_" + name
}

func (n Names) subject(parts ...string) string {
	s := strings.Join(parts, ".")
	if n.Namespace == "" {
		return s
	}
	return strings.ToLower(n.Namespace) + "." + s
}

// InboundSubject is where a channel account's resident messages go.
func (n Names) InboundSubject(channel, account string) string {
	return n.subject("inbound", channel, account)
}

// OutboundSubject is where a channel account's replies to send go.
func (n Names) OutboundSubject(channel, account string) string {
	return n.subject("outbound", channel, account)
}

// CaseEventSubject is where a case event of one kind for one team goes.
func (n Names) CaseEventSubject(kind, team string) string {
	return n.subject("case", kind, team)
}

// Bus is a connection to NATS with the product's streams in place.
type Bus struct {
	Names
	Conn *nats.Conn
	JS   jetstream.JetStream
}

// Security is how a connection to an external NATS authenticates and is
// encrypted; each field names a file, and an empty one is not used. A user
// and password, or a token, may instead be written in the URL.
type Security struct {
	// CredsFile is a .creds file: a user JWT and its NKey seed.
	CredsFile string
	// CAFile holds the certificates of the authorities that signed the
	// servers' certificates; setting it requires TLS.
	CAFile string
	// CertFile and KeyFile are a client certificate and its private key,
	// for servers that verify clients.
	CertFile, KeyFile string
}

// Options turns the settings into connection options.
func (s Security) Options() []nats.Option {
	var opts []nats.Option
	if s.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(s.CredsFile))
	}
	if s.CAFile != "" {
		opts = append(opts, nats.RootCAs(s.CAFile))
	}
	if s.CertFile != "" || s.KeyFile != "" {
		opts = append(opts, nats.ClientCert(s.CertFile, s.KeyFile))
	}
	return opts
}

// Connect connects to NATS at url (one server or a comma-separated list)
// and creates or updates the streams. Errors name the servers without any
// credentials the URL carries.
func Connect(ctx context.Context, url string, names Names, opts ...nats.Option) (*Bus, error) {
	opts = append([]nats.Option{
		nats.Name("citizen-inbox"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
	}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", Redact(url), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b := &Bus{Names: names, Conn: nc, JS: js}
	if err := b.ensureStreams(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return b, nil
}

// Redact returns a NATS URL, or a comma-separated list of them, with any
// user, password or token replaced by "REDACTED", for errors and logs.
func Redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "://") {
			p = "nats://" + p // how nats.go reads a bare host:port
		}
		u, err := neturl.Parse(p)
		switch {
		case err != nil:
			// Unreadable: show nothing that may be a secret.
			parts[i] = "(unreadable URL)"
		case u.User != nil:
			u.User = neturl.User("REDACTED")
			parts[i] = u.String()
		default:
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// ensureStreams creates the streams, or updates them to this configuration
// when they already exist. It is safe to run at every start.
func (b *Bus) ensureStreams(ctx context.Context) error {
	streams := []jetstream.StreamConfig{
		{
			Name:        b.Stream(Inbound),
			Description: "Resident messages accepted by webhooks, waiting for the case service",
			Subjects:    []string{b.subject("inbound", ">")},
			// A message leaves the stream only when the case service has
			// committed it: no age or size limit may drop one unprocessed,
			// however long PostgreSQL is away.
			Retention:  jetstream.WorkQueuePolicy,
			Duplicates: time.Hour,
			Storage:    jetstream.FileStorage,
		},
		{
			Name:        b.Stream(Outbound),
			Description: "Replies waiting to be sent to a network",
			Subjects:    []string{b.subject("outbound", ">")},
			Retention:   jetstream.WorkQueuePolicy,
			Duplicates:  time.Hour,
			Storage:     jetstream.FileStorage,
		},
		{
			Name:        b.Stream(CaseEvents),
			Description: "Case lifecycle events for live views and integrations",
			Subjects:    []string{b.subject("case", ">")},
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      24 * time.Hour,
			Duplicates:  10 * time.Minute,
			Storage:     jetstream.FileStorage,
		},
	}
	for _, cfg := range streams {
		cfg.Replicas = max(b.Replicas, 1)
		if _, err := b.JS.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("stream %s: %w (a stream of that name exists with settings that cannot be changed in place; see README, Operations)", cfg.Name, err)
		}
	}
	return nil
}

// Consumer creates or updates a durable pull consumer on a stream.
func (b *Bus) Consumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := b.JS.CreateOrUpdateConsumer(ctx, b.Stream(stream), cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", cfg.Durable, stream, err)
	}
	return c, nil
}

// Ping checks the NATS connection is up.
func (b *Bus) Ping() error {
	if !b.Conn.IsConnected() {
		return fmt.Errorf("NATS connection is %s", b.Conn.Status())
	}
	return nil
}

// DeleteStreams removes this namespace's streams and key-value buckets
// (tests clean up with it).
func (b *Bus) DeleteStreams(ctx context.Context) {
	b.deleteBuckets(ctx)
	for _, s := range []string{Inbound, Outbound, CaseEvents} {
		_ = b.JS.DeleteStream(ctx, b.Stream(s))
	}
}

// Close drains the connection: pending publishes are flushed first.
func (b *Bus) Close() error {
	if err := b.Conn.Drain(); err != nil {
		b.Conn.Close()
		return err
	}
	for !b.Conn.IsClosed() {
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
