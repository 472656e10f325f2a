package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
	"github.com/citizeninbox/inbox/internal/netsim"
)

// polledNetwork is X's simulation made into a network the inbox polls:
// what residents write is kept, never posted.
type polledNetwork struct {
	*xfake.Simulation
	mu   sync.Mutex
	kept [][]byte
}

var _ netsim.Polled = (*polledNetwork)(nil)

func (n *polledNetwork) Deliver(body []byte) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.kept = append(n.kept, body)
	return nil
}

func TestPolledNetworkDeliversToTheFake(t *testing.T) {
	posted := 0
	inbox := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { posted++ }))
	t.Cleanup(inbox.Close)
	n := &polledNetwork{Simulation: testNetwork(t)}
	var out bytes.Buffer
	p := newPlayer(&webhook{url: inbox.URL, network: n, http: inbox.Client(), tries: 1}, &out)
	p.step(t.Context())
	p.step(t.Context())

	if len(n.kept) != 2 || posted != 0 {
		t.Fatalf("the fake kept %d deliveries and the inbox was posted %d, want 2 and 0", len(n.kept), posted)
	}
	if !bytes.Contains(n.kept[0], []byte("@ExampleCouncil")) {
		t.Errorf("first delivery is not the mention: %s", n.kept[0])
	}
	if got := strings.Count(out.String(), "[waiting for the inbox's poll]"); got != 2 {
		t.Errorf("printed %q, want two lines waiting for the poll", out.String())
	}
}

func TestPolledNetworkTakesNoWebhook(t *testing.T) {
	n := &polledNetwork{Simulation: testNetwork(t)}
	tg := target{network: n}
	if err := tg.check(); err != nil {
		t.Errorf("check without a webhook: %v", err)
	}
}
