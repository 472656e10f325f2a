package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/ingest"
)

// openChannels opens the configured channel accounts with their drivers.
func openChannels(drivers *channels.Registry, f *config.File, deps channels.Deps) (*channels.Accounts, error) {
	if drivers == nil {
		return nil, errors.New("server: no channel drivers registered")
	}
	return drivers.Open(f.AccountConfigs(), deps)
}

// webhookEndpoint serves a driver's webhook through ingest's endpoint
// interface, at /webhooks/<driver>/<endpoint slug>.
type webhookEndpoint struct{ channels.Endpoint }

func webhookEndpoints(accts *channels.Accounts) []ingest.Endpoint {
	var eps []ingest.Endpoint
	for _, e := range accts.Endpoints() {
		eps = append(eps, webhookEndpoint{e})
	}
	return eps
}

func (e webhookEndpoint) Channel() string { return e.Driver }
func (e webhookEndpoint) Account() string { return e.Slug }

func (e webhookEndpoint) Challenge(q url.Values) (string, []byte, bool) {
	r := &http.Request{Method: http.MethodGet, URL: &url.URL{RawQuery: q.Encode()}, Header: http.Header{}}
	contentType, body, err := e.Webhook.Challenge(r)
	return contentType, body, err == nil
}

func (e webhookEndpoint) Verify(h http.Header, body []byte) bool {
	return e.Webhook.Verify(&http.Request{Method: http.MethodPost, URL: &url.URL{}, Header: h}, body) == nil
}

func (e webhookEndpoint) Parse(body []byte, receivedAt time.Time) ([]channels.Inbound, error) {
	return e.Webhook.Parse(body, receivedAt)
}

// inboundPublisher stores polled messages on INBOUND as ingest stores a
// webhook's: the dedupe key is the JetStream message id, and Publish
// returns nil only once JetStream acknowledged every message.
type inboundPublisher struct{ bus *bus.Bus }

func (p inboundPublisher) Publish(ctx context.Context, msgs []channels.Inbound) error {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		msg := &nats.Msg{Subject: p.bus.InboundSubject(m.Channel, m.Account), Data: data, Header: nats.Header{}}
		f, err := p.bus.JS.PublishMsgAsync(msg, jetstream.WithMsgID(m.DedupeKey))
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return errors.Join(errors.New("JetStream did not acknowledge in time"), ctx.Err())
		}
	}
	return nil
}
