package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/semaphore"
)

// headerAllowance is what a published message's headers may take of the
// server's max payload: the message id (a dedupe key) and its name.
const headerAllowance = 1 << 10

// asyncAckTimeout clears an acknowledgement JetStream never sent, so that a
// caller that gave up waiting does not hold its place in the window.
const asyncAckTimeout = 30 * time.Second

// Message is one message to publish, with the JetStream message id that
// dedupes it.
type Message struct {
	Subject string
	Data    []byte
	ID      string
}

// Publisher publishes to JetStream in bounded windows. It has its own
// JetStream context, so its outstanding publishes are counted apart from
// every other user of the connection, and at most window messages of all
// its callers together wait for an acknowledgement at once: a caller with
// more waits for the window to move on instead of stalling the client.
type Publisher struct {
	conn   *nats.Conn
	js     jetstream.JetStream
	window int
	slots  *semaphore.Weighted
}

// NewPublisher makes a publisher with at most window messages outstanding.
func (b *Bus) NewPublisher(window int) (*Publisher, error) {
	if window < 1 {
		return nil, fmt.Errorf("publish window %d: must be at least 1", window)
	}
	// The client's own limit leaves room above the window, for
	// acknowledgements a caller stopped waiting for.
	js, err := jetstream.New(b.Conn,
		jetstream.WithPublishAsyncMaxPending(2*window),
		jetstream.WithPublishAsyncTimeout(asyncAckTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream publisher: %w", err)
	}
	return &Publisher{conn: b.Conn, js: js, window: window, slots: semaphore.NewWeighted(int64(window))}, nil
}

// MaxData is the largest message data the NATS server takes, once the
// headers are counted.
func (p *Publisher) MaxData() int {
	return int(p.conn.MaxPayload()) - headerAllowance
}

// ErrTooLarge is returned for a message over MaxData.
var ErrTooLarge = errors.New("message is over the NATS server's max payload")

// PublishAll publishes msgs, window by window, and waits for JetStream to
// store each. errs[i] is nil when msgs[i] is stored. When ctx ends, the
// messages not yet acknowledged get its error and the rest are not sent.
func (p *Publisher) PublishAll(ctx context.Context, msgs []Message) (errs []error) {
	errs = make([]error, len(msgs))
	var err error
	fail := func(from int, err error) []error {
		for i := from; i < len(msgs); i++ {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	maxData := p.MaxData()
	futures := make([]jetstream.PubAckFuture, 0, min(len(msgs), p.window))
	for start := 0; start < len(msgs); start += p.window {
		end := min(start+p.window, len(msgs))
		n := int64(end - start)
		if err := p.slots.Acquire(ctx, n); err != nil {
			return fail(start, err)
		}
		futures = futures[:0]
		for i, m := range msgs[start:end] {
			var f jetstream.PubAckFuture
			if len(m.Data) > maxData {
				errs[start+i] = fmt.Errorf("%w (%d bytes, at most %d)", ErrTooLarge, len(m.Data), maxData)
			} else if f, err = p.js.PublishMsgAsync(&nats.Msg{Subject: m.Subject, Data: m.Data}, jetstream.WithMsgID(m.ID)); err != nil {
				errs[start+i] = err
			}
			futures = append(futures, f)
		}
		for i, f := range futures {
			if f == nil {
				continue
			}
			select {
			case <-f.Ok():
			case err := <-f.Err():
				errs[start+i] = err
			case <-ctx.Done():
				p.slots.Release(n)
				return fail(start+i, fmt.Errorf("JetStream did not acknowledge in time: %w", ctx.Err()))
			}
		}
		p.slots.Release(n)
	}
	return errs
}
