package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/testenv"
)

// logCapture keeps every line a server logs, as JSON.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines decodes the captured lines.
func (l *logCapture) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// withLogCapture sends the server's log, from the given level, to a
// capture instead of the test's log.
func withLogCapture(level slog.Level) (harnessOption, *logCapture) {
	c := &logCapture{}
	return func(o *server.Options, _ *harness) {
		o.Log = slog.New(slog.NewJSONHandler(c, &slog.HandlerOptions{Level: level}))
	}, c
}

func get(t *testing.T, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// Metrics and probes answer on the operations listener only; the public
// one, beside the webhooks, answers 404 there, and its landing page names
// no account, webhook or credential.
func TestOperationsEndpointsAreOnTheirOwnListener(t *testing.T) {
	h := newHarness(t)
	if h.srv.OpsURL() == h.srv.URL() {
		t.Fatalf("operations and public endpoints share %s", h.srv.URL())
	}
	for path, want := range map[string]string{
		"/healthz": `"status":"ok"`,
		"/readyz":  `"nats":"ok"`,
		"/metrics": "# TYPE inbox_",
	} {
		if resp, body := get(t, h.srv.OpsURL()+path); resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("operations %s: %d %q, want 200 with %s", path, resp.StatusCode, body, want)
		}
		if resp, body := get(t, h.srv.URL()+path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("public %s: %d %q, want 404", path, resp.StatusCode, body)
		}
	}

	resp, page := get(t, h.srv.URL()+"/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Citizen inbox") {
		t.Fatalf("landing page: %d %s", resp.StatusCode, page)
	}
	acct := h.opts.File.ChannelAccounts[0]
	settings := acct.Settings.(x.Settings)
	for _, s := range []string{"/webhooks/", acct.Slug, acct.Name, settings.ConsumerSecret, settings.AccessToken, "/metrics", "/readyz"} {
		if strings.Contains(page, s) {
			t.Errorf("public landing page shows %q", s)
		}
	}
}

// One access line per request, with the route template and never the
// query string; and every line a request causes carries its request id.
func TestAccessLogAndRequestIDs(t *testing.T) {
	capture, logs := withLogCapture(slog.LevelDebug)
	proxy := testenv.NewProxy(t, testenv.DatabaseAddr())
	h := newHarness(t, capture, withDatabaseProxy(proxy))
	_, caseID := h.mentionCase(alice, "@ExampleCouncil the street light is out")

	resp, body := get(t, h.srv.URL()+fmt.Sprintf("/api/v1/cases/%d?status=open&probe=zz-query-probe", caseID),
		"Authorization", "Bearer "+h.token, "X-Request-ID", "probe-req-0001")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Request-ID") != "probe-req-0001" {
		t.Fatalf("GET case: %d (X-Request-ID %q) %s", resp.StatusCode, resp.Header.Get("X-Request-ID"), body)
	}
	// The database away: the error handler's line carries the id too.
	proxy.Block()
	resp, body = get(t, h.srv.URL()+"/api/v1/cases", "Authorization", "Bearer "+h.token, "X-Request-ID", "probe-req-0002")
	failed := resp.StatusCode
	if failed < 500 {
		t.Fatalf("GET cases with the database away: %d %s", resp.StatusCode, body)
	}
	proxy.Unblock()
	// An unsigned webhook on the same listener.
	if code := h.webhook([]byte(`{}`), ""); code != http.StatusUnauthorized {
		t.Fatalf("unsigned webhook: %d", code)
	}

	byID := map[string][]map[string]any{}
	var access []map[string]any
	for _, l := range logs.lines(t) {
		if id, ok := l["request_id"].(string); ok {
			byID[id] = append(byID[id], l)
		}
		if l["msg"] == "request" {
			access = append(access, l)
			if _, ok := l["request_id"]; !ok {
				t.Errorf("access line without a request id: %v", l)
			}
		}
	}
	findAccess := func(id string) map[string]any {
		for _, l := range byID[id] {
			if l["msg"] == "request" {
				return l
			}
		}
		t.Fatalf("no access line for %s in:\n%s", id, logs)
		return nil
	}
	for id, want := range map[string]map[string]any{
		"probe-req-0001": {"method": "GET", "route": "/api/v1/cases/:case", "status": float64(200)},
		"probe-req-0002": {"method": "GET", "route": "/api/v1/cases", "status": float64(failed)},
	} {
		line := findAccess(id)
		for k, v := range want {
			if line[k] != v {
				t.Errorf("%s access line: %s = %v, want %v (%v)", id, k, line[k], v, line)
			}
		}
		if _, ok := line["duration_ms"]; !ok {
			t.Errorf("%s access line has no duration: %v", id, line)
		}
	}
	webhooks := map[float64]int{}
	for _, l := range access {
		if l["route"] == "/webhooks/:driver/:endpoint" && l["method"] == "POST" {
			webhooks[l["status"].(float64)]++
		}
	}
	if webhooks[200] != 1 || webhooks[401] != 1 {
		t.Errorf("webhook access lines by status %v, want one 200 and one 401", webhooks)
	}
	// The lines the requests caused, beside the access line: the
	// statements they ran, and the error handler's report.
	var sql int
	for _, l := range byID["probe-req-0001"] {
		if l["msg"] == "sql" {
			sql++
		}
	}
	if sql == 0 {
		t.Errorf("no statement of the request logged with its id:\n%s", logs)
	}
	var reported bool
	for _, l := range byID["probe-req-0002"] {
		reported = reported || strings.HasPrefix(fmt.Sprint(l["msg"]), "request failed")
	}
	if !reported {
		t.Errorf("the failed request's error line lacks its request id:\n%s", logs)
	}
	if strings.Contains(logs.String(), "zz-query-probe") {
		t.Error("the query string reached the log")
	}
}

// A whole flow logged at debug level: a resident's message becomes a case,
// an adviser answers, the answer goes out. No line carries what the
// resident or the adviser wrote, who the resident is, or any credential.
func TestLogsCarryNoResidentTextOrSecrets(t *testing.T) {
	capture, logs := withLogCapture(slog.LevelDebug)
	// The test NATS has no users: it accepts, and ignores, these.
	natsURL, _ := url.Parse(testenv.NATSURL())
	natsURL.User = url.UserPassword("inbox-nats-user", "nats-pa55-qz81")
	h := newHarness(t, capture, func(o *server.Options, _ *harness) { o.Env.NATSURL = natsURL.String() })

	resident := resident{ID: "2200000000000009917", Handle: "zelda_qv93", Name: "Zelda Quux-Vantongeren"}
	residentText := "@ExampleCouncil the zebra crossing lights on Quillfeather Lane are dark qx7381"
	replyText := "Thanks, an engineer will fix the Quillfeather Lane lights today zp4410"
	_, caseID := h.mentionCase(resident, residentText)
	m := h.reply(caseID, "public", replyText)
	if got := h.waitDelivery(caseID, m.ID); got.DeliveryStatus != "sent" {
		t.Fatalf("reply %s: %s", got.DeliveryStatus, got.FailureReason)
	}
	sent := h.fake.Sent()
	if len(sent) != 1 || sent[0].Text != replyText {
		t.Fatalf("the fake X API got %+v", sent)
	}
	dm := nextID()
	h.signed(directMessage(dm, resident, "my flat is at 12 Quillfeather Lane qd2290"))
	h.waitCaseOf(dm)

	all := logs.String()
	var statements int
	for _, l := range logs.lines(t) {
		if l["msg"] == "sql" {
			statements++
		}
	}
	if statements == 0 || !strings.Contains(all, `"msg":"request"`) {
		t.Fatalf("the debug log lacks statements or access lines, so proves nothing:\n%s", all)
	}
	for _, secret := range []string{
		"qx7381", "zp4410", "qd2290", "Quillfeather", "zebra crossing", resident.Handle, resident.Name, resident.ID,
		consumerKey, accessToken, h.token, "nats-pa55-qz81", "inbox-nats-user",
	} {
		if strings.Contains(all, secret) {
			for _, line := range strings.Split(all, "\n") {
				if strings.Contains(line, secret) {
					t.Errorf("log carries %q: %s", secret, line)
					break
				}
			}
		}
	}
}

// A message on OUTBOUND the sender cannot use is reported by size and
// reason, not by its content.
func TestUnreadableOutboundMessageIsLoggedWithoutItsData(t *testing.T) {
	capture, logs := withLogCapture(slog.LevelDebug)
	h := newHarness(t, capture)
	subject := h.opts.Names.OutboundSubject("x", accountSlug)
	for _, data := range []string{`{"message_id":0,"text":"private words zk5521"}`, `not json zk5521`} {
		if _, err := h.srv.Bus.JS.Publish(t.Context(), subject, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually("both messages are reported", func() bool {
		return strings.Count(logs.String(), "outbound message unreadable") == 2
	})
	if strings.Contains(logs.String(), "zk5521") {
		t.Errorf("log carries the message's content:\n%s", logs)
	}
}

// The supervisors' live figures are on /metrics, read from PostgreSQL, so
// that every replica reports the same.
func TestLiveFiguresAreMetrics(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.dmCase(alice, "My bin was not collected")
	var team string
	h.direct.Raw(`SELECT t.slug FROM cases c JOIN teams t ON t.id = c.team_id WHERE c.id = ?`, caseID).Scan(&team)
	if v := metricValue(t, h, `inbox_queue_cases{status="new",team="`+team+`"}`); v != 1 {
		t.Errorf("queue cases of %s = %v, want 1", team, v)
	}
	if v := metricValue(t, h, `inbox_queue_oldest_waiting_seconds{team="`+team+`"}`); v <= 0 {
		t.Errorf("oldest waiting = %v, want the case's wait", v)
	}
	for _, name := range []string{"inbox_sla_breached_cases", "inbox_sla_warned_cases", "inbox_sla_at_risk_cases", "inbox_advisers_online"} {
		if metric(t, h, name+`{team="`+team+`"}`) == "" {
			t.Errorf("%s has no series for %s", name, team)
		}
	}
}
