package bus

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Embedded is a nats-server with JetStream running inside this process, for
// single-machine installs.
type Embedded struct {
	srv *server.Server
	// user and password are made at start and known to this process only:
	// another process on the machine that reaches the port cannot publish
	// a forged resident message onto INBOUND. They are never logged.
	user, password string
}

// StartEmbedded starts a nats-server that keeps JetStream data in dir and
// listens on loopback only, accepting only connections that carry the
// credentials it made at start (see ConnectOptions). Every write is flushed
// to disk before it is acknowledged: a webhook answered 200 survives a power
// cut.
func StartEmbedded(dir string) (*Embedded, error) {
	e := &Embedded{user: "inbox-" + rand.Text()[:8], password: rand.Text()}
	srv, err := server.NewServer(&server.Options{
		ServerName: "citizen-inbox-embedded",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		Username:   e.user,
		Password:   e.password,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS did not start within 10s")
	}
	e.srv = srv
	return e, nil
}

// URL is the client URL of the embedded server, without credentials.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// ConnectOptions are the options a connection to the embedded server needs:
// its credentials.
func (e *Embedded) ConnectOptions() []nats.Option {
	return []nats.Option{nats.UserInfo(e.user, e.password)}
}

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
