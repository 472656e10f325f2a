package web_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/citizeninbox/inbox/internal/server"
)

// A queue page open on one server process shows a case that arrived
// through another, without a reload; and when its server restarts, the
// page reconnects and shows what arrived while it was away.
func TestBrowserLiveAcrossServersAndRestart(t *testing.T) {
	s := startSite(t)
	// The second server listens on a port of its own that it keeps over
	// its restart, as a replica behind a load balancer does.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	opts := s.opts
	opts.Env.HTTPAddr, opts.Env.OpsAddr = addr, "127.0.0.1:0"
	start := func() *server.Server {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv, err := server.Start(ctx, opts)
		if err != nil {
			t.Fatalf("start the second server: %v", err)
		}
		return srv
	}
	stop := func(srv *server.Server) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shut down the second server: %v", err)
		}
	}
	second := start()

	ctx := signInAt(t, tab(t), second.URL(), email)
	live(t, ctx)
	ref := s.mention("alice_resident", "Alice Example", "@ExampleCouncil the bus shelter on Kings Road is smashed")
	do(t, ctx, "the case from the other server appears", chromedp.WaitVisible(`//a[normalize-space()="`+ref+`"]`))

	stop(second)
	away := s.mention("bob_resident", "Bob Example", "@ExampleCouncil graffiti on the library wall")
	second = start()
	t.Cleanup(func() { stop(second) })
	do(t, ctx, "after the restart the page shows what arrived meanwhile", chromedp.WaitVisible(`//a[normalize-space()="`+away+`"]`))
}
