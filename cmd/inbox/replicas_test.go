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
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gorm.io/gorm"

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
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if p, err := exec.LookPath("go"); err == nil {
			goTool = p
		}
		out, err := exec.Command(goTool, "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("build the server: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// deployment is what replicas share: a database, a stream namespace, a
// configuration file and the fake network APIs.
type deployment struct {
	t         *testing.T
	dbURL     string
	namespace string
	config    string
	fake      *xfake.Server
	fakeURL   string
	db        *gorm.DB
}

func newDeployment(t *testing.T, dbURL string) *deployment {
	t.Helper()
	d := &deployment{t: t, dbURL: dbURL, namespace: testenv.Namespace(t).Namespace, fake: xfake.New()}
	srv := httptest.NewServer(d.fake)
	t.Cleanup(srv.Close)
	d.fakeURL = srv.URL
	d.config = filepath.Join(t.TempDir(), "config.yaml")
	d.writeConfig(d.configYAML())
	return d
}

func (d *deployment) configYAML() string {
	return fmt.Sprintf(`teams:
  - slug: contact-centre
    name: Contact centre
channel_accounts:
  - slug: council-x
    channel: x
    name: Council on X
    team: contact-centre
    api_base_url: %s
    x:
      user_id: %q
      consumer_secret: %s
      access_token: %s
`, d.fakeURL, replicaCouncilID, replicaSecret, replicaToken)
}

func (d *deployment) writeConfig(yaml string) {
	d.t.Helper()
	if err := os.WriteFile(d.config, []byte(yaml), 0o600); err != nil {
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
	r.cmd = exec.Command(inboxBinary(d.t), "serve")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	env = append(env,
		"INBOX_DATABASE_URL="+d.dbURL,
		"INBOX_NATS_URL="+testenv.NATSURL(),
		"INBOX_NATS_NAMESPACE="+d.namespace,
		"INBOX_HTTP_ADDR=127.0.0.1:0",
		"INBOX_OPS_ADDR=127.0.0.1:0",
		"INBOX_PUBLIC_URL=http://127.0.0.1",
		"INBOX_CONFIG="+d.config,
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
func (r *replica) webhook(body []byte) int {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.public+"/webhooks/x/council-x", bytes.NewReader(body))
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
	if code := r.webhook(body); code != http.StatusOK {
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
		r := a
		if i%2 == 1 {
			r = b
		}
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

	d.writeConfig(strings.Replace(d.configYAML(), "    channel: x\n", "    channel: x\n    colour: blue\n", 1))
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

	// A good file with a second team and a renamed account is taken.
	good := strings.Replace(d.configYAML(), "name: Council on X", "name: Example Council on X", 1)
	good = strings.Replace(good, "teams:\n", "teams:\n  - slug: highways\n    name: Highways\n", 1)
	d.writeConfig(good)
	r.hup()
	r.logs.waitFor(t, r.exited, 30*time.Second, func(l map[string]any) bool { return l["msg"] == "configuration reloaded" })
	eventually(t, 10*time.Second, "the new team and account name are in the database", func() bool {
		return d.count(`SELECT count(*) FROM teams WHERE slug = 'highways'`) == 1 &&
			d.count(`SELECT count(*) FROM channel_accounts WHERE name = 'Example Council on X'`) == 1
	})
	r.signed(xfake.Mention(replicaCouncil, nextPostID(), residentN(301), "And now?", "", time.Now()))
	eventually(t, 30*time.Second, "the webhook is stored under the new configuration", func() bool {
		return d.count(`SELECT count(*) FROM cases`) == 2
	})
}
