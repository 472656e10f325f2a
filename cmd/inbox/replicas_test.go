package main

// Tests that run two `inbox serve` processes on one database and one NATS
// server, as two replicas of one deployment do. The binary is built once per
// test run; the networks' APIs are the only fakes.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/auth"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/testenv"
)

const (
	replicaCouncilID = "1500000000000000001"
	replicaSecret    = "replica-consumer-secret"
	replicaToken     = "replica-access-token"
)

var replicaCouncil = xfake.User{ID: replicaCouncilID, Handle: "ExampleCouncil", Name: "Example Council"}

// The server binary, built at most once per test run.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func inboxBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "inbox-replicas-")
		if built.err != nil {
			return
		}
		testenv.AfterAll(func() { _ = os.RemoveAll(built.dir) })
		built.path = filepath.Join(built.dir, "inbox")
		goTool, err := exec.LookPath("go")
		if err != nil {
			built.err = fmt.Errorf("build the server: %w", err)
			return
		}
		out, err := exec.Command(goTool, "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("build the server: %w\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// deployment is what replicas share: a database, a stream namespace and
// the fake network APIs. Each replica has its own configuration file, whose
// accounts reach the fakes under a path naming the replica, so tests can
// tell which replica sent what.
type deployment struct {
	t         *testing.T
	dbURL     string
	namespace string
	dir       string
	accounts  []string
	front     *front
	db        *gorm.DB
}

func newDeployment(t *testing.T, dbURL string, accounts ...string) *deployment {
	t.Helper()
	if len(accounts) == 0 {
		accounts = []string{"council-x"}
	}
	d := &deployment{t: t, dbURL: dbURL, namespace: testenv.Namespace(t).Namespace, dir: t.TempDir(),
		accounts: accounts, front: newFront(accounts)}
	srv := httptest.NewServer(d.front)
	t.Cleanup(srv.Close)
	t.Cleanup(d.front.releaseAll) // before the server closes
	d.front.url = srv.URL
	return d
}

// configYAML is replica's configuration: every account of the deployment,
// each with the same credentials and its own fake X API.
func (d *deployment) configYAML(replica string) string {
	var b strings.Builder
	b.WriteString("teams:\n  - slug: contact-centre\n    name: Contact centre\nchannel_accounts:\n")
	for _, acct := range d.accounts {
		fmt.Fprintf(&b, `  - slug: %s
    channel: x
    name: Council on X (%s)
    team: contact-centre
    api_base_url: %s/%s/%s
    x:
      user_id: %q
      consumer_secret: %s
      access_token: %s
`, acct, acct, d.front.url, replica, acct, replicaCouncilID, replicaSecret, replicaToken)
	}
	return b.String()
}

func (d *deployment) configPath(replica string) string {
	return filepath.Join(d.dir, replica+".yaml")
}

func (d *deployment) writeConfig(replica, yaml string) {
	d.t.Helper()
	if err := os.WriteFile(d.configPath(replica), []byte(yaml), 0o600); err != nil {
		d.t.Fatal(err)
	}
}

// database opens the deployment's database for the test's own queries.
func (d *deployment) database() *gorm.DB {
	d.t.Helper()
	if d.db == nil {
		db, err := store.Open(d.t.Context(), d.dbURL, slog.New(slog.DiscardHandler))
		if err != nil {
			d.t.Fatal(err)
		}
		d.t.Cleanup(func() { _ = store.Close(db) })
		d.db = db
	}
	return d.db
}

func (d *deployment) count(query string, args ...any) int64 {
	d.t.Helper()
	var n int64
	if err := d.database().Raw(query, args...).Scan(&n).Error; err != nil {
		d.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// replica is one running `inbox serve` process.
type replica struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	logs   *logLines
	public string
	ops    string
	exited chan struct{}
	err    error
}

// start runs one replica and waits until it serves.
func (d *deployment) start(name string, extraEnv ...string) *replica {
	d.t.Helper()
	r := d.launch(name, extraEnv...)
	r.waitReady()
	return r
}

// launch starts a replica's process without waiting for it.
func (d *deployment) launch(name string, extraEnv ...string) *replica {
	d.t.Helper()
	r := &replica{t: d.t, name: name, logs: &logLines{}, exited: make(chan struct{})}
	if _, err := os.Stat(d.configPath(name)); err != nil {
		d.writeConfig(name, d.configYAML(name))
	}
	r.cmd = exec.Command(inboxBinary(d.t), "serve")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	env = append(env,
		"INBOX_DATABASE_URL="+d.dbURL,
		"INBOX_NATS_URL="+testenv.NATSURL(),
		"INBOX_NATS_NAMESPACE="+d.namespace,
		"INBOX_HTTP_ADDR=127.0.0.1:0",
		"INBOX_OPS_ADDR=127.0.0.1:0",
		"INBOX_PUBLIC_URL=http://127.0.0.1",
		"INBOX_CONFIG="+d.configPath(name),
		"INBOX_LOG_LEVEL=info",
	)
	r.cmd.Env = append(env, extraEnv...)
	r.cmd.Stderr = r.logs
	r.cmd.Stdout = r.logs
	if err := r.cmd.Start(); err != nil {
		d.t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.exited)
	}()
	d.t.Cleanup(func() {
		r.stop()
		if d.t.Failed() {
			d.t.Logf("%s's log:\n%s", r.name, r.logs.String())
		}
	})
	return r
}

// waitReady waits for the replica's "serving" line and its readiness.
func (r *replica) waitReady() {
	r.t.Helper()
	line := r.logs.waitFor(r.t, r.exited, 90*time.Second, func(l map[string]any) bool { return l["msg"] == "serving" })
	r.public = "http://" + fmt.Sprint(line["addr"])
	r.ops = "http://" + fmt.Sprint(line["ops_addr"])
	eventually(r.t, 30*time.Second, r.name+" is ready", func() bool {
		resp, err := http.Get(r.ops + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// stop ends the replica gracefully (SIGTERM) and waits for it.
func (r *replica) stop() {
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(45 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
		r.t.Errorf("%s did not stop within 45 s of SIGTERM", r.name)
	}
}

// kill ends the replica at once, as a crash would.
func (r *replica) kill() {
	_ = r.cmd.Process.Kill()
	<-r.exited
}

// hup asks the replica to read its configuration again.
func (r *replica) hup() {
	if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		r.t.Fatalf("SIGHUP %s: %v", r.name, err)
	}
}

// webhook posts a signed X delivery to the replica and returns the status.
func (r *replica) webhookTo(account string, body []byte) int {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.public+"/webhooks/x/"+account, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(x.SignatureHeader, x.Sign(replicaSecret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("webhook to %s: %v", r.name, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (r *replica) signed(body []byte) {
	r.t.Helper()
	r.signedTo("council-x", body)
}

func (r *replica) signedTo(account string, body []byte) {
	r.t.Helper()
	if code := r.webhookTo(account, body); code != http.StatusOK {
		r.t.Fatalf("signed webhook to %s answered %d, want 200", r.name, code)
	}
}

// logLines keeps a process's JSON log lines and wakes those waiting on them.
type logLines struct {
	mu      sync.Mutex
	partial []byte
	lines   []map[string]any
	raw     []string
	changed chan struct{}
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		l.raw = append(l.raw, line)
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			l.lines = append(l.lines, m)
		}
	}
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
	return len(p), nil
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.raw, "\n")
}

// find returns the first line that matches.
func (l *logLines) find(match func(map[string]any) bool) (map[string]any, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if match(line) {
			return line, true
		}
	}
	return nil, false
}

// waitFor waits for a line that matches, failing if the process exits or
// the time runs out first.
func (l *logLines) waitFor(t *testing.T, exited <-chan struct{}, within time.Duration, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for _, line := range l.lines {
			if match(line) {
				l.mu.Unlock()
				return line
			}
		}
		if l.changed == nil {
			l.changed = make(chan struct{})
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-exited:
			if line, ok := l.find(match); ok {
				return line
			}
			t.Fatalf("the process exited before the log line awaited; its log:\n%s", l.String())
		case <-deadline.C:
			t.Fatalf("no such log line within %s; the log:\n%s", within, l.String())
		}
	}
}

// errors returns the replica's error-level log lines.
func (r *replica) errors() []string {
	var out []string
	r.logs.mu.Lock()
	defer r.logs.mu.Unlock()
	for i, line := range r.logs.lines {
		if line["level"] == "ERROR" {
			out = append(out, fmt.Sprint(r.logs.lines[i]))
		}
	}
	return out
}

var replicaSeq atomic.Int64

func init() { replicaSeq.Store(1710000000000000000) }

// alternate is a for even i, b for odd: requests shared between replicas.
func alternate(i int, a, b *replica) *replica {
	if i%2 == 1 {
		return b
	}
	return a
}

func nextPostID() string { return fmt.Sprint(replicaSeq.Add(1)) }

func residentN(i int) xfake.User {
	return xfake.User{ID: fmt.Sprintf("23%017d", i), Handle: fmt.Sprintf("resident_%d", i), Name: fmt.Sprintf("Resident %d", i)}
}

func TestReplicasStartingTogetherMigrateOnce(t *testing.T) {
	d := newDeployment(t, testenv.EmptyDatabase(t))
	a, b := d.launch("replica-a"), d.launch("replica-b")
	a.waitReady()
	b.waitReady()
	if dup := d.count(`SELECT count(*) FROM (SELECT version_id FROM goose_db_version
		GROUP BY version_id HAVING count(*) > 1) v`); dup != 0 {
		t.Errorf("%d migrations were applied more than once", dup)
	}
	if applied := d.count(`SELECT count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`); applied == 0 {
		t.Error("no migration was applied")
	}
	for _, r := range []*replica{a, b} {
		if errs := r.errors(); len(errs) > 0 {
			t.Errorf("%s logged errors: %v", r.name, errs)
		}
	}
	// Both serve: a webhook to each becomes a case.
	a.signed(xfake.Mention(replicaCouncil, nextPostID(), residentN(1), "Bin not collected", "", time.Now()))
	b.signed(xfake.Mention(replicaCouncil, nextPostID(), residentN(2), "Streetlight out", "", time.Now()))
	eventually(t, 30*time.Second, "both mentions are cases", func() bool { return d.count(`SELECT count(*) FROM cases`) == 2 })
}

// Residents replying under one council post, their webhooks answered by
// either replica, each get a case of their own.
func TestResidentsReplyingUnderOneCouncilPostGetACaseEachAcrossReplicas(t *testing.T) {
	d := newDeployment(t, testenv.Database(t))
	a, b := d.start("replica-a"), d.start("replica-b")
	councilPost := nextPostID() // a broadcast the council made outside the inbox
	const residents = 30
	var wg sync.WaitGroup
	for i := range residents {
		r := alternate(i, a, b)
		body := xfake.Mention(replicaCouncil, nextPostID(), residentN(100+i), "Which roads are closed?", councilPost, time.Now())
		wg.Go(func() { r.signed(body) })
	}
	wg.Wait()
	eventually(t, 30*time.Second, "every reply is stored", func() bool {
		return d.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`) == residents
	})
	if n := d.count(`SELECT count(*) FROM cases`); n != residents {
		t.Errorf("%d residents replying under one council post made %d cases, want one each", residents, n)
	}
	if n := d.count(`SELECT count(*) FROM (SELECT case_id FROM messages GROUP BY case_id
		HAVING count(DISTINCT contact_identity_id) > 1) mixed`); n != 0 {
		t.Errorf("%d cases hold messages of more than one resident", n)
	}
}

// A resident's reply, sent to one replica once the other accepted its
// parent, lands in the parent's case whichever replica stores which.
func TestReplyAndParentOnDifferentReplicasShareACase(t *testing.T) {
	d := newDeployment(t, testenv.Database(t))
	a, b := d.start("replica-a"), d.start("replica-b")
	const pairs = 40
	parents := make([]string, pairs)
	replies := make([]string, pairs)
	var wg sync.WaitGroup
	for i := range pairs {
		parents[i], replies[i] = nextPostID(), nextPostID()
		first, second := a, b
		if i%2 == 1 {
			first, second = b, a
		}
		who := residentN(200 + i)
		wg.Go(func() {
			first.signed(xfake.Mention(replicaCouncil, parents[i], who, "Pothole on Mill Lane", "", time.Now()))
			second.signed(xfake.Mention(replicaCouncil, replies[i], who, "It is getting worse", parents[i], time.Now()))
		})
	}
	wg.Wait()
	eventually(t, 30*time.Second, "every message is stored", func() bool {
		return d.count(`SELECT count(*) FROM messages WHERE direction = 'inbound'`) == 2*pairs
	})
	for i := range pairs {
		parentCase := d.count(`SELECT case_id FROM messages WHERE external_id = ?`, parents[i])
		replyCase := d.count(`SELECT case_id FROM messages WHERE external_id = ?`, replies[i])
		if parentCase != replyCase {
			t.Errorf("pair %d: parent in case %d, reply in case %d", i, parentCase, replyCase)
		}
	}
	if n := d.count(`SELECT count(*) FROM cases`); n != pairs {
		t.Errorf("%d pairs made %d cases", pairs, n)
	}
}

// A SIGHUP with a broken file keeps the running configuration; a SIGHUP
// with a good one takes it without a restart.
func TestReloadKeepsTheRunningConfigurationWhenTheFileIsBroken(t *testing.T) {
	d := newDeployment(t, testenv.Database(t))
	r := d.start("replica")

	d.writeConfig("replica", strings.Replace(d.configYAML("replica"), "    channel: x\n", "    channel: x\n    colour: blue\n", 1))
	r.hup()
	line := r.logs.waitFor(t, r.exited, 30*time.Second, func(l map[string]any) bool {
		return strings.Contains(fmt.Sprint(l["err"]), "colour")
	})
	if line["level"] != "ERROR" {
		t.Errorf("a broken configuration is logged at %v, want ERROR", line["level"])
	}
	r.signed(xfake.Mention(replicaCouncil, nextPostID(), residentN(300), "Still listening?", "", time.Now()))
	eventually(t, 30*time.Second, "the webhook is stored under the old configuration", func() bool {
		return d.count(`SELECT count(*) FROM cases`) == 1
	})

	// A good file with a second team, to which the account now sends its
	// cases, and a renamed account is taken.
	good := strings.Replace(d.configYAML("replica"), "name: Council on X", "name: Example Council on X", 1)
	good = strings.Replace(good, "teams:\n", "teams:\n  - slug: highways\n    name: Highways\n", 1)
	good = strings.Replace(good, "team: contact-centre", "team: highways", 1)
	d.writeConfig("replica", good)
	r.hup()
	r.logs.waitFor(t, r.exited, 30*time.Second, func(l map[string]any) bool { return l["msg"] == "configuration reloaded" })
	if n := d.count(`SELECT count(*) FROM channel_accounts WHERE name = 'Example Council on X (council-x)'`); n != 1 {
		t.Errorf("the account's new name is not in the database")
	}
	post := nextPostID()
	r.signed(xfake.Mention(replicaCouncil, post, residentN(301), "And now?", "", time.Now()))
	eventually(t, 30*time.Second, "the webhook is stored under the new configuration", func() bool {
		return d.count(`SELECT count(*) FROM cases`) == 2
	})
	if team := d.count(`SELECT count(*) FROM cases c JOIN teams t ON t.id = c.team_id
		JOIN messages m ON m.case_id = c.id WHERE m.external_id = ? AND t.slug = 'highways'`, post); team != 1 {
		t.Errorf("a case opened after the reload did not go to the account's new team")
	}
	if errs := r.errors(); len(errs) != 1 {
		t.Errorf("want the one error of the broken file, got %v", errs)
	}
}

// front stands before one fake X API per account: it takes requests at
// /<replica>/<account>/..., records who sent what and when, may hold a
// request back, and hands the rest to the account's fake.
type front struct {
	url   string
	fakes map[string]*xfake.Server

	mu       sync.Mutex
	requests []frontRequest
	// hold, when set, is asked about every request; a request it holds
	// waits until the sender gives up on it (or the test ends) and never
	// reaches the fake.
	hold     func(frontRequest) bool
	released chan struct{}
}

// releaseAll ends the requests held back, at the end of a test.
func (f *front) releaseAll() { close(f.released) }

type frontRequest struct {
	Replica, Account, Path string
	At                     time.Time
	// Status is what was answered; 0 for a request held back.
	Status int
}

func newFront(accounts []string) *front {
	f := &front{fakes: map[string]*xfake.Server{}, released: make(chan struct{})}
	for _, a := range accounts {
		f.fakes[a] = xfake.New()
	}
	return f
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	if len(parts) < 3 || f.fakes[parts[1]] == nil {
		http.NotFound(w, r)
		return
	}
	req := frontRequest{Replica: parts[0], Account: parts[1], Path: "/" + parts[2], At: time.Now()}
	f.mu.Lock()
	hold := f.hold != nil && f.hold(req)
	f.mu.Unlock()
	if hold {
		select {
		case <-r.Context().Done():
		case <-f.released:
		}
		f.record(req)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = req.Path
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	f.fakes[req.Account].ServeHTTP(rec, r2)
	req.Status = rec.status
	f.record(req)
}

func (f *front) record(req frontRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
}

func (f *front) setHold(hold func(frontRequest) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold = hold
}

func (f *front) seen() []frontRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]frontRequest(nil), f.requests...)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// adminToken makes an admin and returns an API token for them.
func (d *deployment) adminToken() string {
	d.t.Helper()
	svc := auth.New(d.database())
	email := fmt.Sprintf("admin-%d@example.gov.uk", replicaSeq.Add(1))
	if _, err := svc.CreateUser(d.t.Context(), auth.NewUser{Email: email, Name: "Ada Admin", Role: "admin"}); err != nil {
		d.t.Fatal(err)
	}
	token, _, err := svc.CreateToken(d.t.Context(), email, "replica tests", 0)
	if err != nil {
		d.t.Fatal(err)
	}
	return token
}

// reply queues an adviser's reply through the replica's API and returns
// the message id.
func (r *replica) reply(token string, caseID int64, visibility, text string) int64 {
	r.t.Helper()
	body, _ := json.Marshal(map[string]string{"text": text, "visibility": visibility})
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/api/v1/cases/%d/replies", r.public, caseID), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("reply through %s: %v", r.name, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		r.t.Fatalf("reply through %s: %d %s", r.name, resp.StatusCode, raw)
	}
	var m struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		r.t.Fatal(err)
	}
	return m.ID
}

// mentionCase sends a resident's post to an account through the replica
// and waits for its case.
func (d *deployment) mentionCase(r *replica, account string, from xfake.User, text string) (string, int64) {
	d.t.Helper()
	post := nextPostID()
	r.signedTo(account, xfake.Mention(replicaCouncil, post, from, text, "", time.Now()))
	var caseID int64
	eventually(d.t, 30*time.Second, "post "+post+" is a case", func() bool {
		caseID = d.count(`SELECT coalesce(max(case_id), 0) FROM messages WHERE external_id = ?`, post)
		return caseID != 0
	})
	return post, caseID
}

func (d *deployment) deliveryStatus(messageID int64) string {
	d.t.Helper()
	var status string
	if err := d.database().Raw(`SELECT delivery_status FROM messages WHERE id = ?`, messageID).Scan(&status).Error; err != nil {
		d.t.Fatal(err)
	}
	return status
}

// The lease a sender holds on a reply in these tests: short, so a killed
// replica's reply is taken over within the test's patience.
const testLease = "INBOX_SEND_LEASE=3s"

// A replica killed mid-thread, part 1 posted and part 2 in flight, leaves
// the reply to the other, which posts the rest with no part posted twice.
func TestReplyWhoseReplicaDiedMidThreadIsFinishedByTheOther(t *testing.T) {
	d := newDeployment(t, testenv.Database(t))
	replicas := map[string]*replica{"a": d.start("a", testLease), "b": d.start("b", testLease)}
	token := d.adminToken()
	post, caseID := d.mentionCase(replicas["a"], "council-x", residentN(400), "When is the library open?")

	// Hold back the second post of the thread, whoever sends it.
	var posts atomic.Int64
	d.front.setHold(func(r frontRequest) bool {
		return r.Path == "/2/tweets" && posts.Add(1) == 2
	})
	text := strings.TrimSpace(strings.Repeat("The library is open from nine until five on weekdays. ", 12))
	msg := replicas["b"].reply(token, caseID, "public", text)

	var first frontRequest
	eventually(t, 30*time.Second, "the second post is held", func() bool {
		if posts.Load() < 2 {
			return false
		}
		for _, r := range d.front.seen() {
			if r.Path == "/2/tweets" && r.Status == http.StatusCreated {
				first = r
				return true
			}
		}
		return false
	})
	sender := replicas[first.Replica]
	other := replicas[map[string]string{"a": "b", "b": "a"}[first.Replica]]
	sender.kill()

	eventually(t, 60*time.Second, "the other replica finishes the thread", func() bool { return d.deliveryStatus(msg) == "sent" })
	sent := d.front.fakes["council-x"].Sent()
	texts := map[string]int{}
	for _, s := range sent {
		texts[s.Text]++
	}
	for text, n := range texts {
		if n > 1 {
			t.Errorf("part %q posted %d times", text, n)
		}
	}
	var ids []string
	if err := d.database().Raw(`SELECT unnest(external_ids) FROM messages WHERE id = ?`, msg).Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(sent) || len(sent) < 3 {
		t.Fatalf("reply recorded %d parts, the network has %d posts (want at least 3)", len(ids), len(sent))
	}
	// The thread hangs together: each part answers the one before it.
	byID := map[string]xfake.Sent{}
	for _, s := range sent {
		byID[s.ID] = s
	}
	for i, id := range ids {
		want := post
		if i > 0 {
			want = ids[i-1]
		}
		if byID[id].InReplyTo != want {
			t.Errorf("part %d answers %s, want %s", i+1, byID[id].InReplyTo, want)
		}
	}
	finisher := map[string]bool{}
	for _, r := range d.front.seen() {
		if r.Status == http.StatusCreated {
			finisher[r.Replica] = true
		}
	}
	if !finisher[other.name] {
		t.Errorf("the surviving replica %s posted nothing", other.name)
	}
}

// A network that hangs on one account holds up no reply on another.
func TestSlowNetworkOnOneAccountDoesNotDelayAnother(t *testing.T) {
	d := newDeployment(t, testenv.Database(t), "north-x", "south-x")
	a, b := d.start("a"), d.start("b")
	token := d.adminToken()
	_, north := d.mentionCase(a, "north-x", residentN(500), "Fly-tipping on North Street")
	_, south := d.mentionCase(b, "south-x", residentN(501), "Fly-tipping on South Street")
	d.front.setHold(func(r frontRequest) bool { return r.Account == "north-x" })

	stuck := a.reply(token, north, "public", "We have asked the street care team to clear it.")
	eventually(t, 30*time.Second, "the north reply is in flight", func() bool {
		return d.deliveryStatus(stuck) == "sending"
	})
	// Both replicas get replies on the south account while north hangs.
	var replies []int64
	for i := range 4 {
		r := alternate(i, a, b)
		replies = append(replies, r.reply(token, south, "public", fmt.Sprintf("Update %d: the crew is on its way.", i+1)))
	}
	eventually(t, 30*time.Second, "every south reply is sent while north hangs", func() bool {
		for _, id := range replies {
			if d.deliveryStatus(id) != "sent" {
				return false
			}
		}
		return true
	})
	if got := d.deliveryStatus(stuck); got == "sent" {
		t.Errorf("the north reply is %s although its network hangs", got)
	}
}

// When X says an account is rate limited, neither replica calls X for it
// again before the reset.
func TestRateLimitIsRespectedByBothReplicas(t *testing.T) {
	d := newDeployment(t, testenv.Database(t))
	a, b := d.start("a"), d.start("b")
	token := d.adminToken()
	_, caseID := d.mentionCase(a, "council-x", residentN(600), "Is the tip open on Sunday?")

	reset := time.Now().Add(3 * time.Second).Truncate(time.Second).Add(time.Second)
	d.front.fakes["council-x"].FailNext(xfake.RateLimited(reset))
	first := a.reply(token, caseID, "public", "Yes, from ten until four.")
	var limitedAt time.Time
	eventually(t, 30*time.Second, "X answers 429", func() bool {
		for _, r := range d.front.seen() {
			if r.Status == http.StatusTooManyRequests {
				limitedAt = r.At
				return true
			}
		}
		return false
	})
	var more []int64
	for i := range 6 {
		r := alternate(i, a, b)
		more = append(more, r.reply(token, caseID, "public", fmt.Sprintf("Follow-up %d on the opening times.", i+1)))
	}
	eventually(t, 60*time.Second, "every reply is sent after the reset", func() bool {
		for _, id := range append(more, first) {
			if d.deliveryStatus(id) != "sent" {
				return false
			}
		}
		return true
	})
	for _, r := range d.front.seen() {
		if r.At.After(limitedAt) && r.At.Before(reset) {
			t.Errorf("%s called X at %s, before the rate limit's reset at %s", r.Replica, r.At.Format(time.StampMilli), reset.Format(time.StampMilli))
		}
	}
}
