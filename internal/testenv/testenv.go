// Package testenv gives tests real infrastructure: each test its own freshly
// migrated PostgreSQL database and its own JetStream namespace on the real
// NATS server. When either is unreachable the test fails; it never skips.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/store"
)

// AdminURL is the PostgreSQL server tests create databases on.
func AdminURL() string {
	if u := os.Getenv("INBOX_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// DatabaseAddr is the host:port of the PostgreSQL server tests use.
func DatabaseAddr() string {
	u, err := url.Parse(AdminURL())
	if err != nil || u.Host == "" {
		return "127.0.0.1:5432"
	}
	if u.Port() == "" {
		return u.Hostname() + ":5432"
	}
	return u.Host
}

// NATSURL is the NATS server tests use.
func NATSURL() string {
	if u := os.Getenv("INBOX_TEST_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// withDatabase returns url with its database name replaced.
func withDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

func adminExec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return fmt.Errorf("PostgreSQL at %s does not answer (start it as the README says): %w", AdminURL(), err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// template makes, once per test binary, a migrated database that each
// test's database is copied from; copying is much faster than migrating.
func template(ctx context.Context) (string, error) {
	templateOnce.Do(func() {
		name := randomName("inbox_tmpl_")
		if templateErr = adminExec(ctx, "CREATE DATABASE "+name); templateErr != nil {
			return
		}
		templateErr = store.Migrate(ctx, withDatabase(AdminURL(), name))
		templateName = name
	})
	return templateName, templateErr
}

// Database creates a freshly migrated database for this test, drops it when
// the test ends, and returns its URL.
func Database(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tmpl, err := template(ctx)
	if err != nil {
		t.Fatalf("test database: %v", err)
	}
	return createDatabase(t, "inbox_test_", "TEMPLATE "+tmpl)
}

// EmptyDatabase creates a database with no schema at all for this test, as
// a new installation has, and drops it when the test ends.
func EmptyDatabase(t testing.TB) string {
	t.Helper()
	return createDatabase(t, "inbox_empty_", "")
}

// createDatabase creates a database named from prefix, with the CREATE
// DATABASE options given, to be dropped when the test ends.
func createDatabase(t testing.TB, prefix, options string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := randomName(prefix)
	if err := adminExec(ctx, strings.TrimSpace("CREATE DATABASE "+name+" "+options)); err != nil {
		t.Fatalf("test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := adminExec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	return withDatabase(AdminURL(), name)
}

var (
	afterAllMu sync.Mutex
	afterAll   []func()
)

// AfterAll registers fn to run once the package's tests are over, whether
// they passed or not (removing a binary built for them, say).
func AfterAll(fn func()) {
	afterAllMu.Lock()
	defer afterAllMu.Unlock()
	afterAll = append(afterAll, fn)
}

// Main runs a package's tests and then drops the template database; use it
// as TestMain. Checks run after tests that passed, and fail the run with
// what they return.
func Main(m *testing.M, checks ...func() error) {
	code := m.Run()
	afterAllMu.Lock()
	for _, fn := range afterAll {
		fn()
	}
	afterAllMu.Unlock()
	if code == 0 {
		for _, check := range checks {
			if err := check(); err != nil {
				fmt.Fprintln(os.Stderr, "FAIL:", err)
				code = 1
			}
		}
	}
	dropTemplate()
	os.Exit(code)
}

func dropTemplate() {
	if templateName == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = adminExec(ctx, "DROP DATABASE IF EXISTS "+templateName+" WITH (FORCE)")
}

// Namespace returns a fresh stream namespace on the real NATS server and
// deletes its streams when the test ends.
func Namespace(t testing.TB) bus.Names {
	t.Helper()
	names := bus.Names{Namespace: strings.ToLower(randomName("t"))}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, err := bus.Connect(ctx, NATSURL(), names)
		if err != nil {
			t.Logf("clean up streams: %v", err)
			return
		}
		b.DeleteStreams(ctx)
		_ = b.Close()
	})
	return names
}
