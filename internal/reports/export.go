package reports

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Export formats.
const (
	CSV   = "csv"
	JSONL = "jsonl"
)

// Formats are the export formats, the first the default.
var Formats = []string{CSV, JSONL}

// ContentType is the media type of an export format.
func ContentType(format string) string {
	if format == JSONL {
		return "application/x-ndjson"
	}
	return "text/csv; charset=utf-8"
}

// flushEvery is how many rows an export writes between flushes, so rows
// reach the caller as they are read and nothing piles up in memory.
const flushEvery = 500

// CaseColumns are the columns of the case export, in order: one row per
// case whose resident first wrote in the period. Durations are in whole
// seconds; working time is on the calendar of the SLA target that applied,
// less the time the case awaited the resident.
var CaseColumns = []string{
	"reference", "status", "team", "channel", "channel_account", "service", "priority",
	"first_message_at", "last_message_at", "created_at", "updated_at",
	"first_response_due", "first_response_at", "first_response_outcome",
	"first_response_working_seconds", "first_response_calendar_seconds",
	"next_response_started_at", "next_response_due", "last_response_at",
	"resolution_started_at", "resolution_due", "resolved_at", "closed_at", "resolution_outcome",
	"resolution_working_seconds", "resolution_calendar_seconds", "reopened_count",
}

// MessageColumns are the columns of the message export: one row per
// message of the cases the filter chooses. "text" is there only when the
// export asks for it.
var MessageColumns = []string{
	"case_reference", "message_id", "direction", "visibility", "channel", "channel_account",
	"created_at", "network_sent_at", "received_at", "sent_at", "delivery_status", "automatic",
	"author_user_id", "author_name", "contact_identity_id", "text",
}

// outcomeOf is an SQL expression of a target's outcome on a case: the
// recorded one, else running or breached while the case is worked on,
// else breached when it ended past the deadline unmet, else not_needed;
// none without a deadline.
func outcomeOf(recorded, due string) string {
	return `CASE WHEN ` + recorded + ` IS NOT NULL THEN ` + recorded + `
		WHEN ` + due + ` IS NULL THEN 'none'
		WHEN ` + liveCase + ` AND ` + due + ` < @now THEN 'breached'
		WHEN ` + liveCase + ` THEN 'running'
		WHEN ` + due + ` < coalesce(c.resolved_at, c.closed_at) THEN 'breached'
		ELSE 'not_needed' END`
}

// named turns a filter's conditions into named arguments, so that they
// mix with @now.
func named(cond string, args []any) (string, map[string]any) {
	m := map[string]any{}
	var b strings.Builder
	n := 0
	for _, r := range cond {
		if r == '?' {
			name := "a" + strconv.Itoa(n)
			m[name] = args[n]
			b.WriteString("@" + name)
			n++
			continue
		}
		b.WriteRune(r)
	}
	return b.String(), m
}

// ExportCases writes the filter's cases to w in format, streamed from the
// database row by row, and returns how many it wrote. now decides which
// targets still run.
func ExportCases(ctx context.Context, db *gorm.DB, f Filter, format string, now time.Time, w io.Writer) (int64, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	cond, args := named(whereOn(f, "c.", "first_message_at", "assignee_id"))
	args["now"] = now.UTC()
	rows, err := db.WithContext(ctx).Raw(`SELECT c.reference, c.status, t.slug, c.channel, a.slug, c.service_code, c.priority,
			c.first_message_at, c.last_message_at, c.created_at, c.updated_at,
			c.first_response_due, c.first_response_at, `+outcomeOf("fr.outcome", "c.first_response_due")+`,
			fr.working_ms / 1000, fr.calendar_ms / 1000,
			c.next_response_started_at, c.next_response_due, c.last_response_at,
			c.resolution_started_at, c.resolution_due, c.resolved_at, c.closed_at,
			`+outcomeOf("CASE WHEN c.resolved_at IS NOT NULL THEN rs.outcome END", "c.resolution_due")+`,
			rs.working_ms / 1000, rs.calendar_ms / 1000, c.reopened_count
		FROM cases c
		JOIN teams t ON t.id = c.team_id
		JOIN channel_accounts a ON a.id = c.channel_account_id
		LEFT JOIN case_responses fr ON fr.case_id = c.id AND fr.target = 'first_response'
		LEFT JOIN LATERAL (SELECT r.outcome, r.working_ms, r.calendar_ms FROM case_resolutions r
			WHERE r.case_id = c.id ORDER BY r.resolved_at DESC LIMIT 1) rs ON true
		WHERE `+cond+` ORDER BY c.first_message_at, c.id`, args).Rows()
	if err != nil {
		return 0, err
	}
	defer func() { _ = rows.Close() }()
	return stream(rows, CaseColumns, format, w)
}

// ExportMessages writes the messages of the filter's cases to w in
// format, with their text only when withText is set, streamed from the
// database, and returns how many it wrote.
func ExportMessages(ctx context.Context, db *gorm.DB, f Filter, format string, withText bool, w io.Writer) (int64, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	cond, args := named(whereOn(f, "c.", "first_message_at", "assignee_id"))
	text, columns := "m.body", MessageColumns
	if !withText {
		text, columns = "NULL", MessageColumns[:len(MessageColumns)-1]
	}
	rows, err := db.WithContext(ctx).Raw(`SELECT c.reference, m.id, m.direction, m.visibility, c.channel, a.slug,
			m.created_at, m.network_sent_at, m.received_at, m.sent_at, m.delivery_status, m.automatic,
			m.author_user_id, u.name, m.contact_identity_id, `+text+`
		FROM cases c
		JOIN messages m ON m.case_id = c.id
		JOIN channel_accounts a ON a.id = m.channel_account_id
		LEFT JOIN users u ON u.id = m.author_user_id
		WHERE `+cond+` ORDER BY c.first_message_at, c.id, m.id`, args).Rows()
	if err != nil {
		return 0, err
	}
	defer func() { _ = rows.Close() }()
	return stream(rows, columns, format, w)
}

// stream writes rows, whose first len(columns) values are the columns',
// as CSV (with a header) or JSON lines.
func stream(rows *sql.Rows, columns []string, format string, w io.Writer) (int64, error) {
	n, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	values := make([]any, len(n))
	ptrs := make([]any, len(n))
	for i := range values {
		ptrs[i] = &values[i]
	}
	buf := bufio.NewWriterSize(w, 64<<10)
	var out rowWriter
	switch format {
	case JSONL:
		out = &jsonlWriter{w: buf, columns: columns}
	case CSV, "":
		cw := csv.NewWriter(buf)
		out = &csvWriter{w: cw, columns: columns}
	default:
		return 0, fmt.Errorf("reports: export format %q is not one of %s", format, strings.Join(Formats, ", "))
	}
	if err := out.header(); err != nil {
		return 0, err
	}
	var count int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return count, err
		}
		if err := out.row(values[:len(columns)]); err != nil {
			return count, err
		}
		count++
		if count%flushEvery == 0 {
			if err := out.flush(); err != nil {
				return count, err
			}
			if err := buf.Flush(); err != nil {
				return count, err
			}
			if f, ok := w.(interface{ Flush() error }); ok {
				if err := f.Flush(); err != nil {
					return count, err
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return count, err
	}
	if err := out.flush(); err != nil {
		return count, err
	}
	return count, buf.Flush()
}

type rowWriter interface {
	header() error
	row(values []any) error
	flush() error
}

// cell formats a value for CSV: times in RFC 3339 UTC, nothing for null.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(x)
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// SafeCell defuses a CSV cell a spreadsheet would read as a formula: one
// starting with =, +, -, @, a tab or a carriage return gets a ' before it.
func SafeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

type csvWriter struct {
	w       *csv.Writer
	columns []string
	record  []string
}

func (c *csvWriter) header() error { return c.w.Write(c.columns) }

func (c *csvWriter) row(values []any) error {
	c.record = c.record[:0]
	for _, v := range values {
		c.record = append(c.record, SafeCell(cell(v)))
	}
	return c.w.Write(c.record)
}

func (c *csvWriter) flush() error { c.w.Flush(); return c.w.Error() }

type jsonlWriter struct {
	w       *bufio.Writer
	columns []string
	line    []byte
}

func (j *jsonlWriter) header() error { return nil }

func (j *jsonlWriter) row(values []any) error {
	j.line = append(j.line[:0], '{')
	for i, v := range values {
		if i > 0 {
			j.line = append(j.line, ',')
		}
		key, _ := json.Marshal(j.columns[i])
		j.line = append(j.line, key...)
		j.line = append(j.line, ':')
		switch x := v.(type) {
		case time.Time:
			v = x.UTC().Format(time.RFC3339Nano)
		case []byte:
			v = string(x)
		}
		val, err := json.Marshal(v)
		if err != nil {
			return err
		}
		j.line = append(j.line, val...)
	}
	j.line = append(j.line, '}', '\n')
	_, err := j.w.Write(j.line)
	return err
}

func (j *jsonlWriter) flush() error { return nil }
