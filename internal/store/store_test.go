package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// At debug level every statement is logged, and never a value bound to
// it, whichever way gorm ran it.
func TestDebugLogShowsStatementsWithoutTheirValues(t *testing.T) {
	var logs syncBuffer
	ctx := context.Background()
	db, err := store.Open(ctx, testenv.Database(t), slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(db) })

	const secret = "Resident's words qk4471"
	team := store.Team{Slug: "qk4471-team", Name: secret}
	if err := db.WithContext(ctx).Create(&team).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.WithContext(ctx).Exec(`UPDATE teams SET name = ? WHERE slug = ?`, secret+" again", team.Slug).Error; err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := db.WithContext(ctx).Raw(`SELECT name FROM teams WHERE slug = ANY(?::text[]) AND name <> ?`,
		store.Strings{team.Slug, "qk4471-other"}, "it's qk4471").Scan(&names).Error; err != nil || len(names) != 1 {
		t.Fatalf("names %v, %v", names, err)
	}
	var found store.Team
	if err := db.WithContext(ctx).Where("name = ?", secret+" again").First(&found).Error; err != nil {
		t.Fatal(err)
	}
	// A statement PostgreSQL refuses for its data: the message would
	// quote the value.
	if err := db.WithContext(ctx).Exec(`SELECT ?::bigint`, "qk4471").Error; err == nil {
		t.Fatal("a text cast to bigint succeeded")
	}

	out := logs.String()
	for _, want := range []string{`"msg":"sql"`, `INSERT INTO \"teams\"`, "UPDATE teams SET name = $1 WHERE slug = $2",
		"ANY('…'::text[]) AND name <> '…'", `"err":"SQLSTATE 22P02"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "qk4471") {
		t.Errorf("log carries a value bound to a statement:\n%s", out)
	}
}

func TestNoStatementLogAboveDebug(t *testing.T) {
	var logs syncBuffer
	ctx := context.Background()
	db, err := store.Open(ctx, testenv.Database(t), slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(db) })
	_ = db.WithContext(ctx).Exec(`SELECT ?::bigint`, "x").Error
	var n int64
	if err := db.WithContext(ctx).Raw(`SELECT count(*) FROM teams`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); out != "" {
		t.Errorf("info-level log has lines:\n%s", out)
	}
}

func TestIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("query: %w", io.ErrUnexpectedEOF), true}, // connection cut mid-answer
		{fmt.Errorf("query: %w", io.EOF), true},
		{context.DeadlineExceeded, true},
		{&pgconn.PgError{Code: "57P01"}, true}, // admin shutdown
		{&pgconn.PgError{Code: "08006"}, true}, // connection failure
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "22P02"}, false},
		{errors.New("something else"), false},
	} {
		if got := store.IsUnavailable(tc.err); got != tc.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Arrays are encoded and decoded from many goroutines at once (every
// request does), which the race detector checks here.
func TestArraysEncodeConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				v, err := store.Int64s{int64(i), int64(j)}.Value()
				if err != nil {
					t.Error(err)
					return
				}
				var back store.Int64s
				if err := back.Scan(v); err != nil || len(back) != 2 || back[1] != int64(j) {
					t.Errorf("%v scanned back as %v (%v)", v, back, err)
					return
				}
				if _, err := (store.Strings{"a", "b"}).Value(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}
