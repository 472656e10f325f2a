package demodata_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/demodata"
	"github.com/citizeninbox/inbox/internal/networks"
	"github.com/citizeninbox/inbox/internal/reports"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/sla"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// params is the test's year: small, and ending on a fixed date so that
// the figures below do not move with the day the test runs.
var params = demodata.Params{Cases: 4000, Messages: 20000, YearEnd: "2026-12-01", Seed: 7}

// exampleFile is the example council's configuration, with made-up
// credentials.
func exampleFile(t *testing.T) (*config.File, *channels.Registry) {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	drivers, err := networks.Registry()
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"X_API_BASE_URL": "http://127.0.0.1:1", "X_CONSUMER_SECRET": "s", "X_ACCESS_TOKEN": "t",
		"META_API_BASE_URL": "http://127.0.0.1:1", "META_APP_SECRET": "s", "META_VERIFY_TOKEN": "v", "META_ACCESS_TOKEN": "t",
		"TWILIO_API_BASE_URL": "http://127.0.0.1:1", "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000", "TWILIO_AUTH_TOKEN": "t",
		"TELEGRAM_API_BASE_URL": "http://127.0.0.1:1", "TELEGRAM_BOT_TOKEN": "7000000001:t", "TELEGRAM_SECRET_TOKEN": "s",
		"BLUESKY_SERVICE_URL": "http://127.0.0.1:1", "BLUESKY_HANDLE": "examplecouncil.bsky.social", "BLUESKY_APP_PASSWORD": "p",
		"MASTODON_BASE_URL": "http://127.0.0.1:1", "MASTODON_ACCESS_TOKEN": "t",
		"IMAP_URL": "imap+plain://127.0.0.1:1", "SMTP_URL": "smtp+plain://127.0.0.1:1", "EMAIL_USERNAME": "contact@example-council.gov.uk", "EMAIL_PASSWORD": "p"}
	f, err := config.Load(filepath.Join(filepath.Dir(here), "..", "..", "deploy", "config.example.yaml"),
		func(k string) string { return vars[k] }, drivers)
	if err != nil {
		t.Fatal(err)
	}
	return f, drivers
}

type fixture struct {
	db   *gorm.DB
	file *config.File
	res  demodata.Result
}

func generate(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, testenv.Database(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(db) })
	file, drivers := exampleFile(t)
	accts, err := server.SyncConfig(ctx, db, file, drivers, "http://127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := demodata.Generate(ctx, db, file, params, demodata.Options{Replies: accts})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{db: db, file: file, res: res}
}

func (f fixture) scan(t *testing.T, dest any, sql string, args ...any) {
	t.Helper()
	if err := f.db.Raw(sql, args...).Scan(dest).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func within(t *testing.T, what string, got, want, tolerance float64) {
	t.Helper()
	if math.Abs(got-want) > tolerance {
		t.Errorf("%s = %.3f, want %.3f ± %.3f", what, got, want, tolerance)
	} else {
		t.Logf("%s = %.3f (want %.3f ± %.3f)", what, got, want, tolerance)
	}
}

func TestGenerate(t *testing.T) {
	f := generate(t)
	ctx := context.Background()

	// Row counts: the cases asked for, about the messages asked for, and
	// as many rows in each table as the run says it wrote.
	var counts struct{ Cases, Messages, Pauses, Responses, Resolutions, Contacts int64 }
	f.scan(t, &counts, `SELECT (SELECT count(*) FROM cases) AS cases, (SELECT count(*) FROM messages) AS messages,
		(SELECT count(*) FROM case_pauses) AS pauses, (SELECT count(*) FROM case_responses) AS responses,
		(SELECT count(*) FROM case_resolutions) AS resolutions, (SELECT count(*) FROM contacts) AS contacts`)
	if counts.Cases != int64(params.Cases) || counts.Cases != f.res.Cases {
		t.Errorf("cases: %d in the table, %d reported, want %d", counts.Cases, f.res.Cases, params.Cases)
	}
	if counts.Messages != f.res.Messages || counts.Pauses != f.res.Pauses || counts.Responses != f.res.Responses ||
		counts.Resolutions != f.res.Resolutions || counts.Contacts != f.res.Contacts {
		t.Errorf("tables hold %+v, the run reported %+v", counts, f.res)
	}
	within(t, "messages per case", float64(counts.Messages)/float64(counts.Cases), 5, 0.25)
	if counts.Pauses == 0 || counts.Resolutions <= counts.Cases*9/10 {
		t.Errorf("pauses %d, resolutions %d of %d cases", counts.Pauses, counts.Resolutions, counts.Cases)
	}

	// The channel mix: the configured networks in their proportions.
	mix := map[string]float64{"facebook": 27, "whatsapp": 24, "x": 14, "sms": 10, "email": 8, "instagram": 7, "telegram": 4,
		"mastodon": 3, "bluesky": 3}
	var byChannel []struct {
		Channel string
		N       int64
	}
	f.scan(t, &byChannel, `SELECT channel, count(*) AS n FROM cases GROUP BY channel`)
	if len(byChannel) != len(mix) {
		t.Errorf("channels %v, want those of %v", byChannel, mix)
	}
	for _, c := range byChannel {
		within(t, "share of "+c.Channel, float64(c.N)/float64(counts.Cases), mix[c.Channel]/100, 0.025)
	}
	// Each case on an account of its channel, its visibility one the
	// account can send.
	var mismatched int64
	f.scan(t, &mismatched, `SELECT count(*) FROM cases c JOIN channel_accounts a ON a.id = c.channel_account_id
		JOIN contact_identities i ON i.id = c.contact_identity_id WHERE a.channel <> c.channel OR i.channel <> c.channel`)
	if mismatched != 0 {
		t.Errorf("%d cases on an account or identity of another channel", mismatched)
	}
	var publicPrivate int64
	f.scan(t, &publicPrivate, `SELECT count(*) FROM messages WHERE visibility = 'public' AND channel_account_id IN
		(SELECT id FROM channel_accounts WHERE channel IN ('whatsapp', 'sms', 'telegram'))`)
	if publicPrivate != 0 {
		t.Errorf("%d public messages on private-only networks", publicPrivate)
	}

	// When residents write: weekdays against weekends, peaks against
	// evenings (London time).
	var when struct{ Weekday, Weekend, Peak, Evening float64 }
	f.scan(t, &when, `WITH c AS (SELECT first_message_at AT TIME ZONE 'Europe/London' AS t FROM cases)
		SELECT count(*) FILTER (WHERE extract(isodow FROM t) <= 5) / 5.0 AS weekday,
			count(*) FILTER (WHERE extract(isodow FROM t) > 5) / 2.0 AS weekend,
			count(*) FILTER (WHERE extract(isodow FROM t) <= 5 AND extract(hour FROM t) IN (9, 10, 13, 14)) / 4.0 AS peak,
			count(*) FILTER (WHERE extract(isodow FROM t) <= 5 AND extract(hour FROM t) BETWEEN 17 AND 21) / 5.0 AS evening
		FROM c`)
	within(t, "weekday/weekend", when.Weekday/when.Weekend, 4, 0.6)
	within(t, "peak/evening", when.Peak/when.Evening, 3, 0.45)

	// The surges stand out: the storm's day against a usual weekday, the
	// missed round for waste, the incident for community safety.
	days, err := demodata.SurgeDays(params)
	if err != nil {
		t.Fatal(err)
	}
	// Against the weekdays of the four weeks around it (the same season).
	surgeRatio := func(team, date string) float64 {
		var r struct{ Day, Usual float64 }
		f.scan(t, &r, `WITH d AS (SELECT (first_message_at AT TIME ZONE 'Europe/London')::date AS day, count(*) AS n
				FROM cases c JOIN teams t ON t.id = c.team_id WHERE (? = '' OR t.slug = ?) GROUP BY 1)
			SELECT coalesce((SELECT n FROM d WHERE day = ?::date), 0) AS day,
				(SELECT sum(n) FROM d WHERE extract(isodow FROM day) <= 5 AND day <> ?::date
					AND day BETWEEN ?::date - 14 AND ?::date + 14)::float8 /
				(SELECT count(*) FROM generate_series(?::date - 14, ?::date + 14, interval '1 day') g
					WHERE extract(isodow FROM g) <= 5 AND g <> ?::date) AS usual`,
			team, team, date, date, date, date, date, date, date)
		t.Logf("%s %s: %.0f cases, %.2f on a usual weekday around it", team, date, r.Day, r.Usual)
		return r.Day / r.Usual
	}
	if r := surgeRatio("", days["storm"]); r < 3 {
		t.Errorf("storm day %s: %.1f× a usual weekday, want about 4×", days["storm"], r)
	}
	if r := surgeRatio("waste", days["missed bin round"]); r < 2.2 {
		t.Errorf("missed bin round %s: %.1f× a usual weekday for waste, want about 3×", days["missed bin round"], r)
	}
	// (Community safety is small: about three cases that day in this year.)
	if r := surgeRatio("community-safety", days["incident"]); r < 2.5 {
		t.Errorf("incident %s: %.1f× a usual weekday for community safety, want about 5×", days["incident"], r)
	}

	// First responses: about 8% late, many more on surge days.
	var breach struct{ All, Surge, Other float64 }
	f.scan(t, &breach, `WITH c AS (SELECT (first_message_at AT TIME ZONE 'Europe/London')::date::text AS day,
			(first_response_at > first_response_due OR (first_response_at IS NULL AND first_response_due < ?))::int AS late
			FROM cases WHERE first_response_due IS NOT NULL)
		SELECT avg(late) AS all, avg(late) FILTER (WHERE day = ANY(?)) AS surge, avg(late) FILTER (WHERE day <> ALL(?)) AS other FROM c`,
		end(t), store.Strings{days["storm"], days["missed bin round"], days["incident"]},
		store.Strings{days["storm"], days["missed bin round"], days["incident"]})
	within(t, "first responses late", breach.All, 0.08, 0.015)
	if breach.Surge < 3*breach.Other {
		t.Errorf("late on surge days %.3f, on other days %.3f: want the surges to hold most", breach.Surge, breach.Other)
	}

	// Older cases are done, the latest still being worked on.
	var status struct{ OldLive, RecentLive, Recent int64 }
	f.scan(t, &status, `SELECT count(*) FILTER (WHERE first_message_at < ?::timestamptz - interval '60 days' AND status IN ('new', 'open', 'awaiting_resident')) AS old_live,
		count(*) FILTER (WHERE first_message_at >= ?::timestamptz - interval '2 days' AND status IN ('new', 'open', 'awaiting_resident')) AS recent_live,
		count(*) FILTER (WHERE first_message_at >= ?::timestamptz - interval '2 days') AS recent FROM cases`, end(t), end(t), end(t))
	if status.OldLive > int64(params.Cases)/200 || status.Recent == 0 || status.RecentLive*3 < status.Recent {
		t.Errorf("statuses: %+v", status)
	}

	// The case columns follow the policy: each first-response deadline is
	// the rule's, each response's working time what the rule gives for
	// its times, as the case service records it.
	type row struct {
		Team, Service, Priority, Target string
		First, Asked, Responded         time.Time
		Due, FirstDue                   *time.Time
		WorkingMS                       int64
	}
	var rows []row
	f.scan(t, &rows, `SELECT t.slug AS team, coalesce(c.service_code, '') AS service, c.priority, r.target, c.first_message_at AS first,
			r.asked_at AS asked, r.responded_at AS responded, r.due_at AS due, c.first_response_due AS first_due, r.working_ms
		FROM case_responses r JOIN cases c ON c.id = r.case_id JOIN teams t ON t.id = c.team_id`)
	if len(rows) != int(counts.Responses) {
		t.Fatalf("%d responses joined, %d in the table", len(rows), counts.Responses)
	}
	bad := 0
	for _, r := range rows {
		clk := f.file.Compiled.Policies.For(r.Team, r.Service, sla.Priority(r.Priority))
		want := cases.Working(cases.ResponseRule(clk, r.Target), r.Asked, r.Responded).Milliseconds()
		firstDue := clk.FirstResponse.Due(r.First)
		if r.WorkingMS != want || r.FirstDue == nil || !r.FirstDue.Equal(firstDue) {
			if bad++; bad <= 5 {
				t.Errorf("response %+v: working %d ms, the rule gives %d; first due %v, the rule gives %v", r, r.WorkingMS, want, r.FirstDue, firstDue)
			}
		}
	}

	// The figures come out of it: a month's first responses, volumes and
	// reopenings.
	london, _ := time.LoadLocation("Europe/London")
	from := time.Date(2026, 10, 1, 0, 0, 0, 0, london)
	fig, err := reports.Compute(ctx, f.db, reports.Filter{From: from, To: from.AddDate(0, 1, 0)}, end(t), london)
	if err != nil {
		t.Fatal(err)
	}
	rate, ok := fig.Attainment[reports.FirstResponse].Rate()
	reopen, _ := fig.ReopenRate()
	t.Logf("October: %d cases, first response median %v p90 %v, attainment %.3f, resolutions %d, reopen rate %.3f",
		fig.Cases, fig.FirstResponse.Median, fig.FirstResponse.P90, rate, fig.Resolutions, reopen)
	if fig.Cases < 200 || fig.FirstResponse.Count < fig.Cases*9/10 || !ok || rate < 0.8 || rate > 0.99 ||
		fig.FirstResponse.Median <= 0 || fig.FirstResponse.P90 < fig.FirstResponse.Median ||
		fig.Resolutions < fig.Cases*8/10 || reopen <= 0 || reopen > 0.1 || fig.ByHour[10] < fig.ByHour[3]*5 {
		t.Errorf("October's figures are not plausible: %+v", fig)
	}

	// The sequences go on after the generated rows: the server's next case
	// gets an id and a reference of its own.
	var next struct {
		ID        int64
		Reference string
	}
	f.scan(t, &next, `INSERT INTO cases (channel, channel_account_id, contact_id, contact_identity_id, team_id, first_message_at, last_message_at)
		SELECT channel, channel_account_id, contact_id, contact_identity_id, team_id, now(), now() FROM cases ORDER BY id LIMIT 1
		RETURNING id, reference`)
	var maxID int64
	f.scan(t, &maxID, `SELECT max(id) FROM cases WHERE id <> ?`, next.ID)
	if next.ID <= maxID || next.Reference == "" {
		t.Errorf("a new case got id %d, reference %q (generated ids up to %d)", next.ID, next.Reference, maxID)
	}
	if err := f.db.Exec(`INSERT INTO messages (case_id, channel_account_id, direction, visibility, body)
		SELECT ?, channel_account_id, 'inbound', 'private', 'hello' FROM cases WHERE id = ?`, next.ID, next.ID).Error; err != nil {
		t.Errorf("a new message: %v", err)
	}

	// A second run with the same parameters does nothing; another refuses.
	again, err := demodata.Generate(ctx, f.db, f.file, params, demodata.Options{})
	if err != nil || !again.Skipped {
		t.Errorf("second run: %+v, %v; want it skipped", again, err)
	}
	other := params
	other.Seed++
	if _, err := demodata.Generate(ctx, f.db, f.file, other, demodata.Options{}); !errors.Is(err, demodata.ErrOtherData) {
		t.Errorf("a run of other parameters: %v, want ErrOtherData", err)
	}
	var after int64
	f.scan(t, &after, `SELECT count(*) FROM cases`)
	if after != counts.Cases+1 {
		t.Errorf("cases after the second runs: %d, want %d", after, counts.Cases+1)
	}
}

// end is the first moment after the test's year.
func end(t *testing.T) time.Time {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	e, err := time.ParseInLocation(time.DateOnly, params.YearEnd, london)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
