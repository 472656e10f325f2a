package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/testenv"
)

// embeddedBus is a bus on an embedded server that syncs every write to
// disk, as a single-machine install runs: acknowledgements are slow enough
// that a client with too many outstanding publishes stalls.
func embeddedBus(t *testing.T) *bus.Bus {
	t.Helper()
	srv, err := bus.StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := bus.Connect(ctx, srv.URL(), testenv.Namespace(t), srv.ConnectOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func messages(b *bus.Bus, caller, n int) []bus.Message {
	msgs := make([]bus.Message, n)
	for i := range msgs {
		msgs[i] = bus.Message{
			Subject: b.InboundSubject("x", "council-x"),
			Data:    fmt.Appendf(nil, `{"caller":%d,"n":%d}`, caller, i),
			ID:      fmt.Sprintf("%d-%d", caller, i),
		}
	}
	return msgs
}

// Callers together publish far more than the window: each waits for the
// window to move on, and nothing stalls.
func TestPublishAllKeepsCallersInsideTheWindow(t *testing.T) {
	b := embeddedBus(t)
	pub, err := b.NewPublisher(64)
	if err != nil {
		t.Fatal(err)
	}
	const callers, each = 4, 2500
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	failed := make([]error, callers)
	for c := range callers {
		wg.Go(func() {
			for i, err := range pub.PublishAll(ctx, messages(b, c, each)) {
				if err != nil {
					failed[c] = fmt.Errorf("message %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for c, err := range failed {
		if err != nil {
			t.Errorf("caller %d: %v", c, err)
		}
	}
	info, err := b.JS.Stream(ctx, b.Stream(bus.Inbound))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().State.Msgs; got != callers*each {
		t.Errorf("stream holds %d messages, want %d", got, callers*each)
	}
}

// A message over the server's max payload fails alone; the others are
// stored.
func TestPublishAllRefusesOnlyTheMessageTooLarge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Connect(ctx, testenv.NATSURL(), testenv.Namespace(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	pub, err := b.NewPublisher(8)
	if err != nil {
		t.Fatal(err)
	}
	if max := int(b.Conn.MaxPayload()); pub.MaxData() >= max || pub.MaxData() < max/2 {
		t.Errorf("MaxData %d for a max payload of %d", pub.MaxData(), max)
	}
	msgs := messages(b, 0, 20)
	msgs[7].Data = make([]byte, pub.MaxData()+1)
	errs := pub.PublishAll(ctx, msgs)
	for i, err := range errs {
		switch {
		case i == 7 && !errors.Is(err, bus.ErrTooLarge):
			t.Errorf("the large message: %v, want ErrTooLarge", err)
		case i != 7 && err != nil:
			t.Errorf("message %d: %v", i, err)
		}
	}
	info, err := b.JS.Stream(ctx, b.Stream(bus.Inbound))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().State.Msgs; got != 19 {
		t.Errorf("stream holds %d messages, want 19", got)
	}
}
