// Package demodata fills a database with a realistic year of cases for the
// demo and the supervisors' benchmark: residents writing on the configured
// networks at the hours, days and seasons they do, three surges, the
// council's replies timed against the configuration's real SLA policy
// (about 8% of first responses late, most of them on the surge days),
// residents asked for details, cases resolved, closed and reopened, and
// the read model the figures are computed from (case_responses,
// case_resolutions) as the case service would have written it.
//
// Rows go in through PostgreSQL COPY, generated as they are written, a
// chunk of cases at a time, in one transaction: a run leaves the year
// complete or nothing. The run is recorded in the settings table
// (demo_data); a run with the same parameters on a database holding them
// does nothing. Every message is synthetic and says so.
package demodata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/sla"
)

// Params are what a run generates. The same parameters give the same data.
type Params struct {
	Cases, Messages int
	// YearEnd is the date ("2006-01-02") the year ends on: cases start in
	// the year before its first moment, London time, and stand as they
	// would at that moment.
	YearEnd string
	Seed    uint64
}

// Marker is how the settings table records a run of p.
func (p Params) Marker() string {
	b, _ := json.Marshal(struct {
		Version  int    `json:"version"`
		Cases    int    `json:"cases"`
		Messages int    `json:"messages"`
		YearEnd  string `json:"year_end"`
		Seed     uint64 `json:"seed"`
	}{1, p.Cases, p.Messages, p.YearEnd, p.Seed})
	return string(b)
}

// Setting is the name of the settings row recording the last run.
const Setting = "demo_data"

// Replies tells which replies an account can send (channels.Accounts).
type Replies interface {
	ReplyVisibilities(account string) []channels.Visibility
}

// Options change how a run goes, not what it generates.
type Options struct {
	// Force generates even on a database holding other cases, adding to
	// them.
	Force bool
	// Progress receives a line every tenth of the cases; nil for none.
	Progress io.Writer
	// Replies, when set, keeps cases to the visibilities their account
	// can answer in.
	Replies Replies
}

// Result is what a run wrote.
type Result struct {
	// Skipped is a run that found its data already there.
	Skipped                                     bool
	Advisers, Contacts, Cases, Messages, Pauses int64
	Responses, Resolutions                      int64
	Elapsed                                     time.Duration
}

// Rows is how many rows the run wrote.
func (r Result) Rows() int64 {
	return r.Advisers + 2*r.Contacts + r.Cases + r.Messages + r.Pauses + r.Responses + r.Resolutions
}

// ErrOtherData is a database that holds cases this run did not make.
var ErrOtherData = errors.New("the database already holds other cases")

// chunk is how many cases are generated and written at a time.
const chunk = 10000

// Generate writes the year p describes into db, for the configuration f
// (its teams, accounts and services, already in the database, and its SLA
// policy).
func Generate(ctx context.Context, db *gorm.DB, f *config.File, p Params, opt Options) (Result, error) {
	if p.Cases < 1 || p.Messages < 2*p.Cases {
		return Result{}, fmt.Errorf("demo data: need at least one case and two messages a case (cases %d, messages %d)", p.Cases, p.Messages)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return Result{}, err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = conn.Close() }()
	var res Result
	err = conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		g, err := newGenerator(f, p)
		if err != nil {
			return err
		}
		res, err = g.run(ctx, c, opt)
		return err
	})
	return res, err
}

// generator holds the model of one run and where it has got to.
type generator struct {
	p          Params
	rng        *rand.Rand
	loc        *time.Location
	start, end time.Time
	policies   *sla.Policies
	file       *config.File
	topics     []topic
	pools      []pool
	days       []day
	weight     float64 // the whole year's
	baseBreach float64
	surgeDays  []surgeDay

	caseBase, refBase, contactBase, identityBase int64
	made, planned                                int64
	res                                          Result
}

// day is one day of the year: its topics' cumulative weights.
type day struct {
	date    time.Time
	weekend bool
	cum     []float64
}

func (d day) total() float64 { return d.cum[len(d.cum)-1] }

type surgeDay struct {
	date string
	surge
}

func newGenerator(f *config.File, p Params) (*generator, error) {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		return nil, err
	}
	end, err := time.ParseInLocation(time.DateOnly, p.YearEnd, loc)
	if err != nil {
		return nil, fmt.Errorf("demo data: the year's end %q is not a date (2006-01-02)", p.YearEnd)
	}
	g := &generator{p: p, rng: rand.New(rand.NewPCG(p.Seed, 0x64656d6f)), loc: loc, start: end.AddDate(-1, 0, 0),
		end: end, policies: f.Compiled.Policies, file: f}
	// Surge days, each near its date (within a fortnight after, by the
	// seed), never on a weekend.
	for _, s := range surges {
		d := time.Date(g.start.Year(), s.month, s.day, 0, 0, 0, 0, loc)
		if d.Before(g.start) {
			d = d.AddDate(1, 0, 0)
		}
		d = d.AddDate(0, 0, g.rng.IntN(14))
		for d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
			d = d.AddDate(0, 0, 1)
		}
		g.surgeDays = append(g.surgeDays, surgeDay{date: d.Format(time.DateOnly), surge: s})
	}
	return g, nil
}

// SurgeDays are the days of p's year on which some topics surge, by name.
func SurgeDays(p Params) (map[string]string, error) {
	g, err := newGenerator(&config.File{}, p)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range g.surgeDays {
		out[s.name] = s.date
	}
	return out, nil
}

// surgeFactor is how many times its usual volume tp has on date.
func (g *generator) surgeFactor(date string, tp *topic) float64 {
	f := 1.0
	for _, s := range g.surgeDays {
		if s.date == date && (s.team == "" || s.team == tp.team) {
			f *= s.factor
		}
	}
	return f
}

func (g *generator) surging(t time.Time, tp *topic) bool {
	return g.surgeFactor(t.In(g.loc).Format(time.DateOnly), tp) > 1
}

// model works out the year's days from the topics.
func (g *generator) model() {
	var surged float64
	for d := g.start; d.Before(g.end); d = d.AddDate(0, 0, 1) {
		dy := day{date: d, weekend: d.Weekday() == time.Saturday || d.Weekday() == time.Sunday}
		date := d.Format(time.DateOnly)
		hours := hourSum()
		if dy.weekend {
			hours *= weekendFactor
		}
		cum := 0.0
		for i := range g.topics {
			tp := &g.topics[i]
			w := tp.weight * seasonFactor(tp.season, d) * g.surgeFactor(date, tp) * hours
			if g.surgeFactor(date, tp) > 1 {
				surged += w
			}
			cum += w
			dy.cum = append(dy.cum, cum)
		}
		g.weight += cum
		g.days = append(g.days, dy)
	}
	s := surged / g.weight
	g.baseBreach = max(0.005, (breachShare-surgeBreach*s)/(1-s))
}

func (g *generator) pickPool() *pool {
	total := 0.0
	for _, p := range g.pools {
		total += p.share
	}
	u := g.rng.Float64() * total
	for i := range g.pools {
		if u < g.pools[i].share {
			return &g.pools[i]
		}
		u -= g.pools[i].share
	}
	return &g.pools[len(g.pools)-1]
}

// messageCount is how many messages the next case's conversation has: on
// average what the run asks for, at least two (the resident's and the
// reply).
func (g *generator) messageCount() int {
	mean := float64(g.p.Messages) / float64(g.p.Cases)
	drift := float64(g.made)*mean - float64(g.planned)
	n := int(math.Round(mean + 1.5*g.rng.NormFloat64() + 0.1*drift))
	n = min(max(n, 2), 14)
	g.planned += int64(n)
	return n
}

func (g *generator) progress(w io.Writer, started time.Time) {
	if w == nil {
		return
	}
	s := time.Since(started).Seconds()
	rows := g.res.Rows()
	fmt.Fprintf(w, "cases %d/%d, messages %d, %.1f s, %.0f rows/s\n", g.res.Cases, g.p.Cases, g.res.Messages, s, float64(rows)/s)
}

func (g *generator) run(ctx context.Context, c *pgx.Conn, opt Options) (Result, error) {
	started := time.Now()
	tx, err := c.Begin(ctx)
	if err != nil {
		return Result{}, err
	}
	res, err := g.write(ctx, tx, opt, started)
	if err != nil {
		_ = tx.Rollback(ctx)
		return Result{}, err
	}
	if res.Skipped {
		return res, tx.Rollback(ctx)
	}
	if err := tx.Commit(ctx); err != nil {
		return Result{}, err
	}
	// Fresh statistics, so that the planner knows the tables' new sizes;
	// the tables the figures read vacuumed too, so that their indexes
	// answer without visiting the rows (what autovacuum would do later).
	if _, err := c.Exec(ctx, `ANALYZE contacts, contact_identities, users, user_teams, messages, case_pauses`); err != nil {
		return Result{}, err
	}
	if _, err := c.Exec(ctx, `VACUUM (ANALYZE) cases, case_responses, case_resolutions`); err != nil {
		return Result{}, err
	}
	res.Elapsed = time.Since(started)
	return res, nil
}

func (g *generator) write(ctx context.Context, tx pgx.Tx, opt Options, started time.Time) (Result, error) {
	// Nobody adds cases while the year goes in.
	if _, err := tx.Exec(ctx, `LOCK TABLE cases IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return Result{}, err
	}
	var mark string
	var others bool
	if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT value FROM settings WHERE name = $1), ''),
			EXISTS (SELECT 1 FROM cases)`, Setting).Scan(&mark, &others); err != nil {
		return Result{}, err
	}
	switch {
	case mark == g.p.Marker():
		return Result{Skipped: true}, nil
	case (mark != "" || others) && !opt.Force:
		what := "cases not made by demo-data"
		if mark != "" {
			what = "demo data of other parameters (" + mark + ")"
		}
		return Result{}, fmt.Errorf("demo data: %w: %s; give -force to add to them", ErrOtherData, what)
	}
	if err := g.setup(ctx, tx, opt.Replies); err != nil {
		return Result{}, err
	}
	g.model()
	if err := g.writeResidents(ctx, tx); err != nil {
		return Result{}, err
	}
	var err error
	if g.caseBase, err = reserve(ctx, tx, `pg_get_serial_sequence('cases', 'id')`, int64(g.p.Cases)); err != nil {
		return Result{}, err
	}
	if g.refBase, err = reserve(ctx, tx, `'case_reference_seq'`, int64(g.p.Cases)); err != nil {
		return Result{}, err
	}

	batch := make([]kase, chunk)
	n, decile := 0, 0
	flush := func() error {
		if err := g.writeChunk(ctx, tx, batch[:n]); err != nil {
			return err
		}
		n = 0
		if d := int(10 * g.res.Cases / int64(g.p.Cases)); d > decile {
			decile = d
			g.progress(opt.Progress, started)
		}
		return nil
	}
	allocated := int64(0)
	cum := 0.0
	var offsets []time.Duration
	var picks []float64
	for _, dy := range g.days {
		// Each hour's cases, the day's volume shared by the hours' weights.
		var counts [24]int64
		perDay := int64(0)
		for h, hw := range hourWeight {
			cum += dy.total() * hw / hourSum()
			counts[h] = int64(math.Round(float64(g.p.Cases)*cum/g.weight)) - allocated
			allocated += counts[h]
			perDay += counts[h]
		}
		// The day's topics, stratified so that each topic has its share
		// of the day's cases (a surge shows on a small year too), in a
		// random order through the day.
		picks = picks[:0]
		for i := range perDay {
			picks = append(picks, (float64(i)+g.rng.Float64())/float64(perDay)*dy.total())
		}
		g.rng.Shuffle(len(picks), func(i, j int) { picks[i], picks[j] = picks[j], picks[i] })
		for h, count := range counts {
			slot := time.Date(dy.date.Year(), dy.date.Month(), dy.date.Day(), h, 0, 0, 0, g.loc)
			offsets = offsets[:0]
			for range count {
				offsets = append(offsets, time.Duration(g.rng.Int64N(int64(time.Hour))))
			}
			slices.Sort(offsets)
			for _, off := range offsets {
				tp := &g.topics[min(sort.SearchFloat64s(dy.cum, picks[0]), len(g.topics)-1)]
				picks = picks[1:]
				g.build(&batch[n], slot.Add(off).UTC().Truncate(time.Millisecond), tp)
				g.made++
				n++
				if n == chunk {
					if err := flush(); err != nil {
						return Result{}, err
					}
				}
			}
		}
	}
	if n > 0 {
		if err := flush(); err != nil {
			return Result{}, err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`, Setting, g.p.Marker()); err != nil {
		return Result{}, err
	}
	return g.res, nil
}

// hourSum is the sum of a weekday's hour weights.
func hourSum() float64 {
	sum := 0.0
	for _, w := range hourWeight {
		sum += w
	}
	return sum
}

// reserve takes n consecutive values of the sequence seq (an SQL
// expression naming it) and returns the first; the sequence goes on after
// them.
func reserve(ctx context.Context, tx pgx.Tx, seq string, n int64) (int64, error) {
	var first int64
	if err := tx.QueryRow(ctx, `SELECT nextval(`+seq+`)`).Scan(&first); err != nil {
		return 0, err
	}
	if n > 1 {
		if _, err := tx.Exec(ctx, `SELECT setval(`+seq+`, $1)`, first+n-1); err != nil {
			return 0, err
		}
	}
	return first, nil
}

// setup reads the configuration's teams and accounts from the database,
// makes the topics and the channels' pools, and the advisers.
func (g *generator) setup(ctx context.Context, tx pgx.Tx, replies Replies) error {
	teamIDs := map[string]int64{}
	teamNames := map[string]string{}
	for _, t := range g.file.Teams {
		var id int64
		if err := tx.QueryRow(ctx, `SELECT id FROM teams WHERE slug = $1`, t.Slug).Scan(&id); err != nil {
			return fmt.Errorf("demo data: team %s is not in the database: %w", t.Slug, err)
		}
		teamIDs[t.Slug], teamNames[t.Slug] = id, t.Name
	}
	if len(teamIDs) == 0 {
		return errors.New("demo data: the configuration has no teams")
	}
	add := func(team, service, subject string, weight float64) {
		id, ok := teamIDs[team]
		if !ok {
			return
		}
		tp := topic{team: team, teamID: id, service: service, subject: subject, weight: weight,
			season: seasonOf(team, service), emergency: service == "emergency", safeguarding: service == "safeguarding"}
		tp.low, tp.high, tp.urgent = priorityMix(team, service)
		g.topics = append(g.topics, tp)
	}
	for _, s := range g.file.Services {
		w, ok := serviceShare[s.Code]
		if !ok {
			w = 1
		}
		add(s.Team, s.Code, s.Name, w)
	}
	general := g.file.Teams[0].Slug
	if g.file.Routing != nil && g.file.Routing.DefaultTeam != "" {
		general = g.file.Routing.DefaultTeam
	}
	add(general, "", "General enquiry", generalShare)

	// Advisers: a few per team, more for a bigger year. They have no
	// password, so nobody can sign in as them.
	per := min(max(g.p.Cases/20000, 2), 12)
	advisers := map[string][]int64{}
	for _, t := range g.file.Teams {
		for i := 1; i <= per; i++ {
			email := fmt.Sprintf("adviser%02d.%s@demo-data.example.gov.uk", i, t.Slug)
			var id int64
			if err := tx.QueryRow(ctx, `WITH made AS (
					INSERT INTO users (email, name, role) VALUES ($1, $2, 'adviser')
					ON CONFLICT ((lower(email))) DO NOTHING RETURNING id)
				SELECT id FROM made UNION ALL SELECT id FROM users WHERE lower(email) = lower($1) LIMIT 1`,
				email, fmt.Sprintf("Demo adviser %d (%s)", i, t.Name)).Scan(&id); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO user_teams (user_id, team_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
				id, teamIDs[t.Slug]); err != nil {
				return err
			}
			advisers[t.Slug] = append(advisers[t.Slug], id)
			g.res.Advisers++
		}
	}
	for i := range g.topics {
		g.topics[i].advisers = advisers[g.topics[i].team]
	}

	// Channels: those with a configured account, in the networks' mix.
	byChannel := map[string][]account{}
	for _, a := range g.file.ChannelAccounts {
		var id int64
		if err := tx.QueryRow(ctx, `SELECT id FROM channel_accounts WHERE slug = $1`, a.Slug).Scan(&id); err != nil {
			return fmt.Errorf("demo data: channel account %s is not in the database: %w", a.Slug, err)
		}
		acct := account{id: id, slug: a.Slug, public: true, private: true}
		if replies != nil {
			vis := replies.ReplyVisibilities(a.Slug)
			acct.public, acct.private = slices.Contains(vis, channels.Public), slices.Contains(vis, channels.Private)
			if !acct.public && !acct.private {
				continue
			}
		}
		byChannel[a.Channel] = append(byChannel[a.Channel], acct)
	}
	var share float64
	for _, c := range channelShare {
		if accts := byChannel[c.channel]; len(accts) > 0 {
			g.pools = append(g.pools, pool{channel: c.channel, share: c.share, public: c.public, accounts: accts})
			share += c.share
		}
	}
	if len(g.pools) == 0 {
		return errors.New("demo data: the configuration has no channel account on a network the generator knows")
	}
	var first int64
	for i := range g.pools {
		p := &g.pools[i]
		p.first = first
		p.n = max(1, int64(math.Round(identityShare*float64(g.p.Cases)*p.share/share)))
		first += p.n
	}
	return nil
}

// residentID is a made-up network id for resident i of a channel, shaped
// like the network's own but in no real range.
func residentID(channel string, id int64) (externalID, handle string) {
	n := strconv.FormatInt(id, 10)
	switch channel {
	case "whatsapp":
		return fmt.Sprintf("990%09d", id), ""
	case "sms":
		return fmt.Sprintf("+990%09d", id), ""
	case "bluesky":
		return "did:plc:demodata" + n, "resident" + n + ".demo.example"
	case "mastodon":
		return fmt.Sprintf("99%016d", id), "resident" + n + "@demo.example"
	case "email":
		return "resident" + n + "@demo.example", ""
	}
	return fmt.Sprintf("99%016d", id), "demo_resident_" + n
}

// writeResidents writes the residents: a contact with one identity each.
func (g *generator) writeResidents(ctx context.Context, tx pgx.Tx) error {
	total := int64(0)
	for _, p := range g.pools {
		total += p.n
	}
	var err error
	if g.contactBase, err = reserve(ctx, tx, `pg_get_serial_sequence('contacts', 'id')`, total); err != nil {
		return err
	}
	if g.identityBase, err = reserve(ctx, tx, `pg_get_serial_sequence('contact_identities', 'id')`, total); err != nil {
		return err
	}
	row := make([]any, 4)
	i := int64(0)
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"contacts"}, []string{"id", "display_name", "created_at", "updated_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == total {
				return nil, nil
			}
			row[0], row[1], row[2], row[3] = g.contactBase+i, "Demo resident "+strconv.FormatInt(g.contactBase+i, 10), g.start, g.start
			i++
			return row, nil
		}))
	if err != nil {
		return fmt.Errorf("demo data: contacts: %w", err)
	}
	g.res.Contacts = n
	row = make([]any, 8)
	pi, i := 0, 0
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"contact_identities"},
		[]string{"id", "contact_id", "channel", "external_id", "handle", "display_name", "created_at", "updated_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			for pi < len(g.pools) && i == g.pools[pi].first+g.pools[pi].n {
				pi++
			}
			if pi == len(g.pools) {
				return nil, nil
			}
			id := g.identityBase + i
			ext, handle := residentID(g.pools[pi].channel, id)
			row[0], row[1], row[2], row[3] = id, g.contactBase+i, g.pools[pi].channel, ext
			row[4], row[5], row[6], row[7] = handle, "Demo resident "+strconv.FormatInt(g.contactBase+i, 10), g.start, g.start
			i++
			return row, nil
		}))
	if err != nil {
		return fmt.Errorf("demo data: contact identities: %w", err)
	}
	return nil
}

var (
	caseColumns = []string{"id", "reference", "status", "channel", "channel_account_id", "contact_id", "contact_identity_id",
		"team_id", "assignee_id", "subject", "first_message_at", "last_message_at", "first_response_at", "resolved_at",
		"closed_at", "reopened_count", "created_at", "updated_at", "priority", "service_code", "emergency", "safeguarding",
		"first_response_due", "first_response_warn_at", "last_response_at", "next_response_started_at", "next_response_due",
		"next_response_warn_at", "resolution_started_at", "resolution_due", "resolution_warn_at", "resolution_paused_at",
		"resolution_remaining_ms", "paused_ms", "first_response_alerted", "next_response_alerted", "resolution_alerted"}
	messageColumns = []string{"case_id", "channel_account_id", "direction", "visibility", "body", "dedupe_key", "external_id",
		"contact_identity_id", "author_user_id", "delivery_status", "sent_at", "network_sent_at", "received_at",
		"created_at", "committed_at"}
	pauseColumns    = []string{"case_id", "started_at", "ended_at"}
	responseColumns = []string{"case_id", "target", "asked_at", "responded_at", "due_at", "outcome", "working_ms",
		"calendar_ms", "responder_id", "team_id", "channel", "channel_account_id", "service_code", "priority"}
	resolutionColumns = []string{"case_id", "started_at", "resolved_at", "due_at", "outcome", "working_ms", "calendar_ms",
		"paused_ms", "resolver_id", "team_id", "channel", "channel_account_id", "service_code", "priority", "reopened_at"}
)

// each is a CopyFromSource walking the cases of a chunk and the rows
// rows(k, i, row) fills for each: it returns false after the case's last.
func each(ks []kase, width int, fill func(k *kase, i int, row []any) bool) pgx.CopyFromSource {
	row := make([]any, width)
	c, i := 0, 0
	return pgx.CopyFromFunc(func() ([]any, error) {
		for c < len(ks) {
			if fill(&ks[c], i, row) {
				i++
				return row, nil
			}
			c, i = c+1, 0
		}
		return nil, nil
	})
}

func serviceCode(tp *topic) *string {
	if tp.service == "" {
		return nil
	}
	return &tp.service
}

// writeChunk writes a chunk of cases and everything about them.
func (g *generator) writeChunk(ctx context.Context, tx pgx.Tx, ks []kase) error {
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"cases"}, caseColumns, each(ks, len(caseColumns), func(k *kase, i int, row []any) bool {
		if i > 0 {
			return false
		}
		tp := k.topic
		row[0], row[1], row[2], row[3], row[4] = k.id, k.referenceText(g.loc), k.status, k.pool.channel, k.account.id
		row[5], row[6], row[7], row[8], row[9] = k.contact, k.identity, tp.teamID, k.assignee, tp.subject
		row[10], row[11], row[12], row[13], row[14] = k.first, k.last, k.firstResponseAt, k.resolvedAt, k.closedAt
		row[15], row[16], row[17], row[18], row[19] = k.reopened, k.first, k.updated, k.priority, serviceCode(tp)
		row[20], row[21], row[22], row[23], row[24] = tp.emergency, tp.safeguarding, k.frDue, k.frWarn, k.lastResponseAt
		row[25], row[26], row[27], row[28], row[29] = k.nrStarted, k.nrDue, k.nrWarn, k.resStarted, k.resDue
		row[30], row[31], row[32], row[33], row[34] = k.resWarn, k.resPausedAt, k.resRemaining, k.pausedMS, k.frAlerted
		row[35], row[36] = k.nrAlerted, k.resAlerted
		return true
	}))
	if err != nil {
		return fmt.Errorf("demo data: cases: %w", err)
	}
	g.res.Cases += n
	n, err = tx.CopyFrom(ctx, pgx.Identifier{"messages"}, messageColumns, each(ks, len(messageColumns), func(k *kase, i int, row []any) bool {
		if i == len(k.messages) {
			return false
		}
		m := k.messages[i]
		key := "demo-" + strconv.FormatInt(k.id, 10) + "-" + strconv.Itoa(i)
		row[0], row[1], row[3], row[4], row[5], row[6] = k.id, k.account.id, k.visibility, m.body, key, key
		row[13], row[14] = m.at, m.at
		if m.inbound {
			row[2], row[7], row[8], row[9], row[10], row[11], row[12] = "inbound", k.identity, nil, "received", nil, nil, m.at
		} else {
			row[2], row[7], row[8], row[9], row[10], row[11], row[12] = "outbound", nil, k.assignee, "sent", m.at, m.at, nil
		}
		return true
	}))
	if err != nil {
		return fmt.Errorf("demo data: messages: %w", err)
	}
	g.res.Messages += n
	n, err = tx.CopyFrom(ctx, pgx.Identifier{"case_pauses"}, pauseColumns, each(ks, len(pauseColumns), func(k *kase, i int, row []any) bool {
		if i == len(k.pauses) {
			return false
		}
		row[0], row[1], row[2] = k.id, k.pauses[i].StartedAt, k.pauses[i].EndedAt
		return true
	}))
	if err != nil {
		return fmt.Errorf("demo data: pauses: %w", err)
	}
	g.res.Pauses += n
	n, err = tx.CopyFrom(ctx, pgx.Identifier{"case_responses"}, responseColumns, each(ks, len(responseColumns), func(k *kase, i int, row []any) bool {
		if i == len(k.responses) {
			return false
		}
		r := k.responses[i]
		row[0], row[1], row[2], row[3], row[4], row[5] = k.id, r.target, r.asked, r.responded, r.due, r.outcome
		row[6], row[7], row[8], row[9], row[10] = r.working, r.elapsed, k.assignee, k.topic.teamID, k.pool.channel
		row[11], row[12], row[13] = k.account.id, serviceCode(k.topic), k.priority
		return true
	}))
	if err != nil {
		return fmt.Errorf("demo data: responses: %w", err)
	}
	g.res.Responses += n
	n, err = tx.CopyFrom(ctx, pgx.Identifier{"case_resolutions"}, resolutionColumns, each(ks, len(resolutionColumns), func(k *kase, i int, row []any) bool {
		if i == len(k.resolutions) {
			return false
		}
		r := k.resolutions[i]
		row[0], row[1], row[2], row[3], row[4], row[5] = k.id, r.started, r.resolved, r.due, r.outcome, r.working
		row[6], row[7], row[8], row[9], row[10] = r.elapsed, r.paused, k.assignee, k.topic.teamID, k.pool.channel
		row[11], row[12], row[13], row[14] = k.account.id, serviceCode(k.topic), k.priority, r.reopenedAt
		return true
	}))
	if err != nil {
		return fmt.Errorf("demo data: resolutions: %w", err)
	}
	g.res.Resolutions += n
	return nil
}
