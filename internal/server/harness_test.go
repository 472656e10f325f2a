package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"gorm.io/gorm"

	apispec "github.com/citizeninbox/inbox/api"
	"github.com/citizeninbox/inbox/internal/auth"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/outbound"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m, checkContractCoverage)
}

// seen records every (operation, status) the tests got back, so that a
// full run can require each answer openapi.yaml declares to be exercised.
var seen = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

// checkContractCoverage fails a full run (no -run filter) in which some
// declared answer was never seen: a contract line no test checks can drift.
func checkContractCoverage() error {
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		return nil
	}
	doc, err := openapi3.NewLoader().LoadFromData(apispec.OpenAPI)
	if err != nil {
		return err
	}
	var missing []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				key := op.OperationID + " " + status
				if !seen.m[key] {
					missing = append(missing, fmt.Sprintf("%s %s (%s) %s", method, path, op.OperationID, status))
				}
			}
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("openapi.yaml declares answers no test saw:\n  %s", strings.Join(missing, "\n  "))
	}
	return nil
}

const (
	councilID     = "1500000000000000001"
	accountSlug   = "council-x"
	consumerKey   = "test-consumer-secret"
	accessToken   = "test-access-token"
	webhookHeader = "x-twitter-webhooks-signature"
)

// harness is a whole server on real PostgreSQL and real NATS, with the X
// API replaced by a fake that records what was sent.
type harness struct {
	t      *testing.T
	srv    *server.Server
	opts   server.Options
	fake   *xfake.Server
	dbURL  string
	token  string
	router routers.Router
	direct *gorm.DB // a connection that bypasses any proxy

	// adviserID is the user token acts for: an adviser in both teams.
	adviserID int64
	// admin is an admin's token, made on first use (adminToken).
	admin string
}

// adminToken is the token of an admin, who sees every team's cases.
func (h *harness) adminToken() string {
	if h.admin == "" {
		_, h.admin = h.user("admin@example.gov.uk", "admin")
	}
	return h.admin
}

type harnessOption func(*server.Options, *harness)

// drivers is the registry of the product's own drivers, with the test
// drivers given.
func drivers(t testing.TB, more ...channels.Driver) *channels.Registry {
	t.Helper()
	r, err := channels.NewRegistry(append([]channels.Driver{x.Driver{}}, more...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// withDatabase runs the server, and the harness's own queries, on the
// database at url instead of one of the shared server's.
func withDatabase(url string) harnessOption {
	return func(o *server.Options, h *harness) {
		o.Env.DatabaseURL = url
		h.dbURL = url
	}
}

// withDatabaseProxy routes the server's database connections through p.
func withDatabaseProxy(p *testenv.Proxy) harnessOption {
	return func(o *server.Options, _ *harness) {
		u, _ := url.Parse(o.Env.DatabaseURL)
		u.Host = p.Addr()
		o.Env.DatabaseURL = u.String()
	}
}

var tweetSeq atomic.Int64

func init() { tweetSeq.Store(1700000000000000000) }

// nextID returns a fresh tweet-like id.
func nextID() string { return fmt.Sprint(tweetSeq.Add(1)) }

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, fake: xfake.New(), dbURL: testenv.Database(t)}
	fakeSrv := httptest.NewServer(h.fake)
	t.Cleanup(fakeSrv.Close)

	file := &config.File{
		Teams: []config.Team{{Slug: "contact-centre", Name: "Contact centre"}, {Slug: "highways", Name: "Highways"}},
		ChannelAccounts: []config.ChannelAccount{{
			Slug: accountSlug, Channel: "x", Name: "Council on X", Team: "contact-centre",
			APIBaseURL: fakeSrv.URL,
			Settings:   x.Settings{UserID: councilID, ConsumerSecret: consumerKey, AccessToken: accessToken},
		}},
	}
	o := server.Options{
		Env: config.Env{
			DatabaseURL: h.dbURL,
			NATSURL:     testenv.NATSURL(),
			HTTPAddr:    "127.0.0.1:0",
			OpsAddr:     "127.0.0.1:0",
			PublicURL:   "http://127.0.0.1",
			LogLevel:    "warn",
		},
		File:          file,
		Drivers:       drivers(t),
		Log:           slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Names:         testenv.Namespace(t),
		Sender:        outbound.SenderConfig{BaseBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, MaxAttempts: 5},
		InboundRetry:  100 * time.Millisecond,
		RelayInterval: 50 * time.Millisecond,
	}
	for _, opt := range opts {
		opt(&o, h)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.opts = o
	h.start()
	t.Cleanup(h.stop)

	var err error
	h.direct, err = store.Open(ctx, h.dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(h.direct) })

	// The adviser most tests act as works both teams, as the demo's does.
	h.adviserID, h.token = h.user("adviser@example.gov.uk", "adviser", "contact-centre", "highways")

	doc, err := openapi3.NewLoader().LoadFromData(apispec.OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: h.srv.URL() + "/api/v1"}}
	h.router, err = gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// user makes a user with the role, in the teams, and returns their id and
// an API token.
func (h *harness) user(email, role string, teams ...string) (int64, string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := h.srv.Auth.CreateUser(ctx, auth.NewUser{Email: email, Name: role + " " + email, Role: role, Teams: teams})
	if err != nil {
		h.t.Fatalf("create user %s: %v", email, err)
	}
	token, _, err := h.srv.Auth.CreateToken(ctx, email, "tests", 0)
	if err != nil {
		h.t.Fatalf("create token for %s: %v", email, err)
	}
	return u.ID, token
}

// start starts a server with the harness's options; the listener is new
// each time, so a restarted server has a new address.
func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, h.opts)
	if err != nil {
		h.t.Fatalf("start server: %v", err)
	}
	h.srv = srv
}

// stop shuts the server down gracefully.
func (h *harness) stop() {
	if h.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		h.t.Errorf("shutdown: %v", err)
	}
	h.srv = nil
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// webhook posts body to the account's webhook with the given signature
// header value (none when empty) and returns the status code.
func (h *harness) webhook(body []byte, signature string) int {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL()+"/webhooks/x/"+accountSlug, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set(webhookHeader, signature)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("webhook: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// signed posts a correctly signed webhook and requires 200.
func (h *harness) signed(body []byte) {
	h.t.Helper()
	if code := h.webhook(body, x.Sign(consumerKey, body)); code != http.StatusOK {
		h.t.Fatalf("signed webhook answered %d, want 200", code)
	}
}

// api calls the REST API and checks the answer against openapi.yaml.
func (h *harness) api(method, path string, body any) (int, []byte) {
	h.t.Helper()
	return h.apiAs(h.token, method, path, body)
}

func (h *harness) apiAs(token, method, path string, body any) (int, []byte) {
	h.t.Helper()
	var reqBody []byte
	if body != nil {
		if raw, ok := body.(string); ok {
			reqBody = []byte(raw)
		} else {
			reqBody, _ = json.Marshal(body)
		}
	}
	req, _ := http.NewRequest(method, h.srv.URL()+"/api/v1"+path, bytes.NewReader(reqBody))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case strings.Contains(token, " "): // a whole Authorization header
		req.Header.Set("Authorization", token)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return h.do(req, reqBody)
}

// raw sends a body as it is, with the given content type, as the adviser.
func (h *harness) raw(method, path, contentType, body string) (int, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.srv.URL()+"/api/v1"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+h.token)
	return h.do(req, []byte(body))
}

// do sends req and checks the answer against openapi.yaml.
func (h *harness) do(req *http.Request, reqBody []byte) (int, []byte) {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	h.checkContract(req, reqBody, resp, raw)
	return resp.StatusCode, raw
}

// checkContract validates a response (status, headers, body) against the
// operation in openapi.yaml that the request matches.
func (h *harness) checkContract(req *http.Request, reqBody []byte, resp *http.Response, body []byte) {
	h.t.Helper()
	route, params, err := h.router.FindRoute(req)
	if err != nil {
		h.t.Fatalf("%s %s is not in openapi.yaml: %v", req.Method, req.URL.Path, err)
	}
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true},
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		h.t.Fatalf("%s %s answered %d, which openapi.yaml does not allow: %v\nbody: %s",
			req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	seen.Lock()
	seen.m[route.Operation.OperationID+" "+strconv.Itoa(resp.StatusCode)] = true
	seen.Unlock()
}

// eventually polls cond until it holds or 15 s pass.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	waitFor(h.t, what, 15*time.Second, cond)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) count(query string, args ...any) int64 {
	h.t.Helper()
	var n int64
	var err error
	// A few tries: after a database restart the pool's first connection
	// reports the restart.
	for range 3 {
		if err = h.direct.Raw(query, args...).Scan(&n).Error; err == nil {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("%s: %v", query, err)
	return 0
}

func (h *harness) cases() int64 { return h.count(`SELECT count(*) FROM cases`) }

// caseOf returns the case id of the message with the given network id.
func (h *harness) caseOf(externalID string) int64 {
	return h.count(`SELECT coalesce(max(case_id), 0) FROM messages WHERE external_id = ?`, externalID)
}

// waitCaseOf waits until the message with the network id is stored.
func (h *harness) waitCaseOf(externalID string) int64 {
	h.t.Helper()
	var id int64
	h.eventually("message "+externalID+" is stored", func() bool {
		id = h.caseOf(externalID)
		return id != 0
	})
	return id
}

// mentionCase sends a resident's new public post and waits for its case.
func (h *harness) mentionCase(from resident, text string) (post string, caseID int64) {
	h.t.Helper()
	post = nextID()
	h.signed(mention(post, from, text, ""))
	return post, h.waitCaseOf(post)
}

// dmCase sends a resident's direct message and waits for its case.
func (h *harness) dmCase(from resident, text string) (dm string, caseID int64) {
	h.t.Helper()
	dm = nextID()
	h.signed(directMessage(dm, from, text))
	return dm, h.waitCaseOf(dm)
}

// caseDetail fetches a case through the API.
func (h *harness) caseDetail(id int64) caseJSON {
	h.t.Helper()
	code, raw := h.api(http.MethodGet, fmt.Sprintf("/cases/%d", id), nil)
	if code != http.StatusOK {
		h.t.Fatalf("get case %d: %d %s", id, code, raw)
	}
	var c caseJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		h.t.Fatal(err)
	}
	return c
}

type caseJSON struct {
	ID        int64  `json:"id"`
	Reference string `json:"reference"`
	Status    string `json:"status"`
	Team      string `json:"team"`
	Contact   struct {
		ExternalID string `json:"external_id"`
		Handle     string `json:"handle"`
	} `json:"contact"`
	AssigneeID *int64        `json:"assignee_id"`
	Messages   []messageJSON `json:"messages"`
}

type messageJSON struct {
	ID             int64    `json:"id"`
	Direction      string   `json:"direction"`
	Visibility     string   `json:"visibility"`
	Body           string   `json:"body"`
	ExternalID     string   `json:"external_id"`
	ExternalIDs    []string `json:"external_ids"`
	DeliveryStatus string   `json:"delivery_status"`
	FailureReason  string   `json:"failure_reason"`
}

// reply posts a reply through the API and returns the queued message.
func (h *harness) reply(caseID int64, visibility, text string) messageJSON {
	h.t.Helper()
	code, raw := h.api(http.MethodPost, fmt.Sprintf("/cases/%d/replies", caseID),
		map[string]string{"text": text, "visibility": visibility})
	if code != http.StatusAccepted {
		h.t.Fatalf("reply: %d %s", code, raw)
	}
	var m messageJSON
	if err := json.Unmarshal(raw, &m); err != nil {
		h.t.Fatal(err)
	}
	return m
}

// waitDelivery waits until a reply is sent or failed and returns it.
func (h *harness) waitDelivery(caseID, messageID int64) messageJSON {
	h.t.Helper()
	var found messageJSON
	h.eventually("reply is sent or failed", func() bool {
		var status string
		h.direct.Raw(`SELECT delivery_status FROM messages WHERE id = ?`, messageID).Scan(&status)
		return status == "sent" || status == "failed"
	})
	for _, m := range h.caseDetail(caseID).Messages {
		if m.ID == messageID {
			found = m
		}
	}
	return found
}

// Residents and the council, as X deliveries describe them.

type resident = xfake.User

var (
	council = xfake.User{ID: councilID, Handle: "ExampleCouncil", Name: "Example Council"}
	alice   = resident{ID: "2200000000000000001", Handle: "alice_resident", Name: "Alice Example"}
	bob     = resident{ID: "2200000000000000002", Handle: "bob_resident", Name: "Bob Example"}
	carol   = resident{ID: "2200000000000000003", Handle: "carol_resident", Name: "Carol Example"}
)

// mention is an Account Activity tweet_create_events delivery.
func mention(id string, from resident, text, inReplyTo string) []byte {
	return xfake.Mention(council, id, from, text, inReplyTo, time.Now())
}

// directMessage is an Account Activity direct_message_events delivery.
func directMessage(id string, from resident, text string) []byte {
	return xfake.DirectMessage(council, id, from, text, time.Now())
}

// settled waits until a consumer of a stream has handed out and had
// acknowledged everything: nothing waits to be delivered, nothing is held
// unacknowledged. Past it, no redelivery can change what was stored or sent.
func (h *harness) settled(stream, consumer string) {
	h.t.Helper()
	h.eventually(consumer+" on "+stream+" has nothing pending", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := h.srv.Bus.JS.Consumer(ctx, h.srv.Bus.Stream(stream), consumer)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}
