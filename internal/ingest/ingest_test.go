package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/ingest"
	"github.com/citizeninbox/inbox/internal/metrics"
	"github.com/citizeninbox/inbox/internal/testenv"
)

// appWebhook is a network whose one webhook endpoint serves every account
// of an app (as Meta's does): each delivery names the channel and account
// of each of its events, and its signature covers the URL as well as the
// body, so verifying it needs the whole request.
type appWebhook struct{}

const appSignature = "X-App-Signature"

func appSign(path string, body []byte) string { return "ok:" + path + ":" + string(body) }

func (appWebhook) Challenge(r *http.Request) (string, []byte, error) {
	if c := r.URL.Query().Get("challenge"); c == "hello" {
		return "text/plain", []byte(c), nil
	}
	return "", nil, channels.ErrNotAChallenge
}

func (appWebhook) Verify(r *http.Request, body []byte) error {
	if r.Header.Get(appSignature) != appSign(r.URL.RequestURI(), body) {
		return errors.New("app: signature does not match")
	}
	return nil
}

type appEvent struct {
	Channel, Account, ID, Text string
}

func (appWebhook) Parse(body []byte, receivedAt time.Time) ([]channels.Inbound, error) {
	var events []appEvent
	if err := json.Unmarshal(body, &events); err != nil {
		return nil, errors.New("app: not a list of events")
	}
	var out []channels.Inbound
	for _, ev := range events {
		out = append(out, channels.Inbound{
			Channel: ev.Channel, Account: ev.Account, DedupeKey: ev.Channel + ":" + ev.ID, ExternalID: ev.ID,
			Visibility: channels.Private, Text: ev.Text, Author: channels.Identity{ExternalID: "resident-1"},
			ReceivedAt: receivedAt,
		})
	}
	return out, nil
}

type keptRow struct{ subject, reason string }

// memoryKeeper records what ingest keeps; the server's keeper, on
// PostgreSQL, is tested with the whole server.
type memoryKeeper struct {
	mu   sync.Mutex
	rows []keptRow
}

func (k *memoryKeeper) Keep(_ context.Context, subject string, _ []byte, reason string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rows = append(k.rows, keptRow{subject, reason})
	return nil
}

type fixture struct {
	url  string
	bus  *bus.Bus
	keep *memoryKeeper
}

func start(t *testing.T, opts ingest.Options) fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := bus.Connect(ctx, testenv.NATSURL(), testenv.Namespace(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	keep := &memoryKeeper{}
	h, err := ingest.New([]ingest.Endpoint{{Driver: "app", Slug: "app-1", Webhook: appWebhook{}}},
		b, keep, metrics.New(), slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	h.Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return fixture{url: srv.URL, bus: b, keep: keep}
}

func (f fixture) post(t *testing.T, path string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url+path, bytes.NewReader(body))
	req.Header.Set(appSignature, appSign(path, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestOneEndpointServesSeveralAccounts(t *testing.T) {
	f := start(t, ingest.Options{})
	body, _ := json.Marshal([]appEvent{
		{Channel: "facebook", Account: "page-a", ID: "m1", Text: "hello page"},
		{Channel: "instagram", Account: "ig-b", ID: "m2", Text: "hello insta"},
	})
	if code := f.post(t, "/webhooks/app/app-1?v=1", body); code != http.StatusOK {
		t.Fatalf("delivery answered %d, want 200", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := f.bus.JS.Stream(ctx, f.bus.Stream(bus.Inbound))
	if err != nil {
		t.Fatal(err)
	}
	for subject, want := range map[string]string{
		f.bus.InboundSubject("facebook", "page-a"): "m1",
		f.bus.InboundSubject("instagram", "ig-b"):  "m2",
	} {
		msg, err := stream.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			t.Fatalf("nothing on %s: %v", subject, err)
		}
		var in channels.Inbound
		if err := json.Unmarshal(msg.Data, &in); err != nil || in.ExternalID != want {
			t.Errorf("%s holds %+v (%v), want message %s", subject, in, err, want)
		}
		if got := msg.Header.Get(jetstream.MsgIDHeader); got != in.DedupeKey {
			t.Errorf("message id %q, want the dedupe key %q", got, in.DedupeKey)
		}
	}
}

// Verify gets the whole request: a signature over another URL is refused.
func TestVerifySeesTheWholeRequest(t *testing.T) {
	f := start(t, ingest.Options{})
	body := []byte(`[{"Channel":"facebook","Account":"page-a","ID":"m1"}]`)
	req, _ := http.NewRequest(http.MethodPost, f.url+"/webhooks/app/app-1?v=2", bytes.NewReader(body))
	req.Header.Set(appSignature, appSign("/webhooks/app/app-1?v=1", body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("signature for another URL answered %d, want 401", resp.StatusCode)
	}
}

func TestRoutesAreDriverAndEndpoint(t *testing.T) {
	f := start(t, ingest.Options{})
	for _, path := range []string{"/webhooks/app/other", "/webhooks/facebook/app-1", "/webhooks/app-1/app"} {
		if code := f.post(t, path, []byte(`[]`)); code != http.StatusNotFound {
			t.Errorf("POST %s answered %d, want 404", path, code)
		}
	}
	resp, err := http.Get(f.url + "/webhooks/app/app-1?challenge=hello")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(got) != "hello" {
		t.Errorf("challenge answered %d %q", resp.StatusCode, got)
	}
	resp, err = http.Get(f.url + "/webhooks/app/app-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET that is not a challenge answered %d, want 400", resp.StatusCode)
	}
}

// A body of unknown length is cut off once it passes the cap.
func TestChunkedBodyOverTheCapIs413(t *testing.T) {
	f := start(t, ingest.Options{MaxBody: 1 << 10, UnverifiedBytes: 64 << 10})
	body := []byte(`[{"Channel":"facebook","Account":"page-a","ID":"m1","Text":"` + strings.Repeat("a", 2<<10) + `"}]`)
	req, _ := http.NewRequest(http.MethodPost, f.url+"/webhooks/app/app-1", io.MultiReader(bytes.NewReader(body)))
	req.Header.Set(appSignature, appSign("/webhooks/app/app-1", body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.ContentLength != 0 || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over the cap answered %d, want 413", resp.StatusCode)
	}
	// Under the cap, the same way, it goes through.
	small := []byte(`[{"Channel":"facebook","Account":"page-a","ID":"m2","Text":"hi"}]`)
	req, _ = http.NewRequest(http.MethodPost, f.url+"/webhooks/app/app-1", io.MultiReader(bytes.NewReader(small)))
	req.Header.Set(appSignature, appSign("/webhooks/app/app-1", small))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("chunked body under the cap answered %d, want 200", resp.StatusCode)
	}
}

// A genuine delivery none of whose events can be read is kept whole.
func TestUnreadableDeliveryIsKept(t *testing.T) {
	f := start(t, ingest.Options{})
	if code := f.post(t, "/webhooks/app/app-1", []byte(`{"not":"a list"}`)); code != http.StatusBadRequest {
		t.Errorf("unreadable delivery answered %d, want 400", code)
	}
	f.keep.mu.Lock()
	defer f.keep.mu.Unlock()
	if len(f.keep.rows) != 1 || f.keep.rows[0].subject != "/webhooks/app/app-1" || f.keep.rows[0].reason != "app: not a list of events" {
		t.Errorf("kept %+v, want the delivery with the reason", f.keep.rows)
	}
}

func TestUnverifiedCapMustHoldTheLargestBody(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := bus.Connect(ctx, testenv.NATSURL(), testenv.Namespace(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	_, err = ingest.New(nil, b, &memoryKeeper{}, metrics.New(), slog.New(slog.DiscardHandler),
		ingest.Options{MaxBody: 1 << 20, UnverifiedBytes: 1 << 19})
	if err == nil {
		t.Error("a cap on unverified bytes under the body cap was accepted")
	}
}
