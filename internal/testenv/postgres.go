package testenv

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a PostgreSQL server of the test's own, made with the
// installed server's initdb and pg_ctl, so a test can really stop it and
// start it again without disturbing anything else.
type Postgres struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	// asUser runs the server as this user when the tests run as root,
	// which PostgreSQL refuses.
	asUser string
}

// StartPostgres initialises and starts a private PostgreSQL server that is
// stopped and removed when the test ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		t.Fatal("PostgreSQL server binaries not found under /usr/lib/postgresql (install the postgresql package)")
	}
	// The newest major version: 15 sorts after 9.6.
	major := func(path string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(path))), 64)
		return v
	}
	slices.SortFunc(matches, func(a, b string) int { return cmp.Compare(major(a), major(b)) })
	p := &Postgres{t: t, bin: filepath.Dir(matches[len(matches)-1])}
	if os.Geteuid() == 0 {
		p.asUser = "postgres"
	}
	base, err := os.MkdirTemp("", "inbox-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	p.dir = filepath.Join(base, "data")
	if p.asUser != "" {
		u, err := user.Lookup(p.asUser)
		if err != nil {
			t.Fatalf("tests run as root and need the %s user to run PostgreSQL: %v", p.asUser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(base, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	p.port = freePort(t)
	p.run("initdb", "-D", p.dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
	p.Start()
	t.Cleanup(func() {
		// Stop it if it is running; a test may have stopped it already.
		_ = p.command("pg_ctl", "stop", "-D", p.dir, "-m", "immediate").Run()
	})
	return p
}

// CreateDatabase creates a database on this server and returns its URL.
func (p *Postgres) CreateDatabase(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		p.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		p.t.Fatal(err)
	}
	return p.URL(name)
}

// URL is the connection URL of a database on this server.
func (p *Postgres) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, database)
}

// Start starts the server and waits until it accepts connections.
func (p *Postgres) Start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off", p.port)
	p.run("pg_ctl", "start", "-w", "-D", p.dir, "-o", opts, "-l", filepath.Join(filepath.Dir(p.dir), "log"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.port), time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("private PostgreSQL did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server at once, as a crash would: connections are cut
// and the next start recovers from the write-ahead log.
func (p *Postgres) Stop() {
	p.t.Helper()
	p.pgctl("stop", "-w", "-m", "immediate")
}

func (p *Postgres) pgctl(args ...string) {
	p.run("pg_ctl", append([]string{args[0], "-D", p.dir}, args[1:]...)...)
}

func (p *Postgres) run(name string, args ...string) {
	p.t.Helper()
	if out, err := p.command(name, args...).CombinedOutput(); err != nil {
		p.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(p.bin, name)
	if p.asUser != "" {
		return exec.Command("runuser", append([]string{"-u", p.asUser, "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
