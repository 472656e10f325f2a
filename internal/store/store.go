// Package store opens the database, applies migrations and maps rows. It
// holds the gorm models of the schema in migrations/ and the one helper that
// opens transactions. Business rules live in the packages that use it.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/citizeninbox/inbox/migrations"
)

// Session defaults, unless the database URL sets its own: no statement
// may run, or wait for a lock, for ever.
var sessionDefaults = map[string]string{
	"statement_timeout":                   "30000", // ms
	"lock_timeout":                        "10000",
	"idle_in_transaction_session_timeout": "60000",
}

// Open connects to PostgreSQL and checks the connection answers.
func Open(ctx context.Context, url string, log *slog.Logger) (*gorm.DB, error) {
	cfg, err := pgconnConfig(url)
	if err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	for k, v := range sessionDefaults {
		if _, ok := cfg.RuntimeParams[k]; !ok {
			cfg.RuntimeParams[k] = v
		}
	}
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: stdlib.OpenDB(*cfg)}), &gorm.Config{
		Logger:                 slogLogger{log: log},
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB.SetMaxOpenConns(20)
	sqlDB.SetMaxIdleConns(20)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return db, nil
}

// Close closes the database's connection pool.
func Close(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Migrate applies every migration not yet applied.
func Migrate(ctx context.Context, url string) error {
	cfg, err := pgconnConfig(url)
	if err != nil {
		return err
	}
	sqlDB := stdlib.OpenDB(*cfg)
	defer sqlDB.Close()
	return migrate(ctx, sqlDB)
}

func migrate(ctx context.Context, sqlDB *sql.DB) error {
	// Replicas starting together take turns: the first applies what is
	// missing, the others then find nothing left to do.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// Write runs fn in one transaction: committed when fn returns nil, rolled
// back otherwise. It is the only way the service layer opens transactions.
func Write(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
	return db.WithContext(ctx).Transaction(fn)
}

// IsUniqueViolation reports whether err is PostgreSQL's unique_violation.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// IsSerializationFailure reports whether err is a deadlock or serialization
// failure that a retry of the whole transaction resolves.
func IsSerializationFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// IsDataError reports whether PostgreSQL refused a statement for the data
// it carried (SQLSTATE class 22, data exception, or a constraint other than
// uniqueness, class 23): running it again will fail again.
func IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return false
	}
	class := pgErr.Code[:2]
	return class == "22" || (class == "23" && pgErr.Code != "23505")
}

// IsUnavailable reports whether err means the database could not be
// reached or went away, rather than refusing the statement: trying again
// later may succeed.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &connErr), errors.As(err, &netErr), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return true
	case errors.As(err, &pgErr):
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	return false
}

// Ping checks the database answers.
func Ping(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.PingContext(ctx)
}

// slogLogger sends gorm's log to slog. At debug level it writes each
// statement as gorm built it, with placeholders and never the values bound
// to them (residents' text, token hashes): ParamsFilter keeps them out of
// most statements, and redactSQL blanks the quoted values gorm's Scan
// writes in. Errors are left to the callers, which handle or log them.
type slogLogger struct{ log *slog.Logger }

var _ gorm.ParamsFilter = slogLogger{}

func (l slogLogger) LogMode(logger.LogLevel) logger.Interface { return l }
func (l slogLogger) Info(ctx context.Context, msg string, args ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(msg, args...))
}
func (l slogLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, fmt.Sprintf(msg, args...))
}
func (l slogLogger) Error(ctx context.Context, msg string, args ...any) {
	l.log.ErrorContext(ctx, fmt.Sprintf(msg, args...))
}

// ParamsFilter drops the values bound to a statement before gorm writes
// them into the SQL it hands to Trace.
func (l slogLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}

func (l slogLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if !l.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	sql, rows := fc()
	attrs := []slog.Attr{
		slog.String("sql", redactSQL(sql)), slog.Int64("rows", rows),
		slog.Float64("elapsed_ms", float64(time.Since(begin).Microseconds())/1000),
	}
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		attrs = append(attrs, slog.String("err", describeError(err)))
	}
	l.log.LogAttrs(ctx, slog.LevelDebug, "sql", attrs...)
}

// placeholderShown is how gorm shows a placeholder whose value was
// filtered out: $1$.
var placeholderShown = regexp.MustCompile(`\$([0-9]+)\$`)

// redactSQL makes a statement fit for the log. gorm's Scan writes the
// values of Raw queries into the SQL it traces, past ParamsFilter; gorm
// quotes every value that is not a number or a boolean, so every quoted
// literal is replaced by '…' (numbers are ids and counts).
func redactSQL(sql string) string {
	sql = placeholderShown.ReplaceAllString(sql, "$$$1")
	if !strings.Contains(sql, "'") {
		return sql
	}
	var b strings.Builder
	b.Grow(len(sql))
	for i := 0; i < len(sql); i++ {
		if sql[i] != '\'' {
			b.WriteByte(sql[i])
			continue
		}
		// Skip to the closing quote; '' inside is an escaped quote.
		for i++; i < len(sql); i++ {
			if sql[i] == '\'' {
				if i+1 < len(sql) && sql[i+1] == '\'' {
					i++
					continue
				}
				break
			}
		}
		b.WriteString("'…'")
	}
	return b.String()
}

// describeError names a database error without the values PostgreSQL
// quotes in some messages (invalid input syntax for type bigint: "…") or
// pgx in its encoding errors: a server error by its SQLSTATE and the
// schema names it gives, a connection error as it is, anything else by its
// type.
func describeError(err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		if IsUnavailable(err) || errors.Is(err, context.Canceled) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return err.Error()
		}
		return fmt.Sprintf("%T", err)
	}
	s := "SQLSTATE " + pgErr.Code
	for _, part := range []struct{ name, value string }{
		{"table", pgErr.TableName}, {"column", pgErr.ColumnName}, {"constraint", pgErr.ConstraintName},
	} {
		if part.value != "" {
			s += " " + part.name + " " + part.value
		}
	}
	return s
}
