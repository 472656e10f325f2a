package cases

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/store"
)

// ErrConversationMoved is a reply written against an older view of the
// case: the resident, or another adviser, wrote after the view the reply
// names (ReplyInput.SeenMessageID). Nothing was sent; the adviser reads
// what is new and sends again, or sends anyway.
var ErrConversationMoved = errors.New("the conversation has moved on since the reply was written")

// movedOn says whether a message the replying actor has not seen, newer
// than seen, is in the case: the resident's, or another adviser's reply.
// Automatic replies and notes do not hold a reply.
func movedOn(tx *gorm.DB, caseID, seen, actorUserID int64) (bool, error) {
	var newer bool
	err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM messages WHERE case_id = ? AND id > ?
		AND (direction = 'inbound' OR (direction = 'outbound' AND automatic = '' AND author_user_id IS DISTINCT FROM ?)))`,
		caseID, seen, actorUserID).Scan(&newer).Error
	return newer, err
}

// EventTagged announces a change to a case's tags.
const EventTagged = "tagged"

// ErrInvalidTag is a tag that is empty, too long or has characters other
// than letters, digits, "-" and "_".
var ErrInvalidTag = errors.New("a tag is 1 to 40 letters, digits, '-' or '_'")

// MaxTags is how many tags a case can carry.
const MaxTags = 20

// NormaliseTags lowercases tags, drops repeats and empty entries, and
// checks each; the order is kept.
func NormaliseTags(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, t := range in {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" || slices.Contains(out, t) {
			continue
		}
		if utf8.RuneCountInString(t) > 40 || strings.IndexFunc(t, func(r rune) bool {
			return r != '-' && r != '_' && (r < 'a' || r > 'z') && (r < '0' || r > '9')
		}) >= 0 {
			return nil, ErrInvalidTag
		}
		out = append(out, t)
	}
	if len(out) > MaxTags {
		return nil, ErrInvalidTag
	}
	return out, nil
}

// SetTags replaces a case's tags (routing's and advisers'). It is a
// change to how the case is worked, so it needs the status action.
func (s *Service) SetTags(ctx context.Context, actor Actor, ref string, tags []string) (Detail, error) {
	tags, err := NormaliseTags(tags)
	if err != nil {
		return Detail{}, err
	}
	var d Detail
	err = store.Write(ctx, s.db, func(tx *gorm.DB) error {
		c, err := lockCase(tx, ref)
		if err != nil {
			return err
		}
		if err := check(actor, c.ID, c.TeamID, ActStatus); err != nil {
			return err
		}
		if c.Status == StatusClosed {
			return ErrClosed
		}
		if err := tx.Exec(`UPDATE cases SET tags = ?, updated_at = now() WHERE id = ?`, store.Strings(tags), c.ID).Error; err != nil {
			return err
		}
		if err := audit(tx, actor, "case.tagged", c.ID, map[string]any{"tags": tags}); err != nil {
			return err
		}
		if d, err = readDetail(tx, c.ID); err != nil {
			return err
		}
		return s.emit(tx, Event{Kind: EventTagged, CaseID: c.ID, Reference: c.Reference, Team: d.Team,
			Channel: c.Channel, Status: c.Status, At: d.UpdatedAt})
	})
	return d, s.auditDenied(ctx, actor, err)
}

// Identity is one of a resident's accounts on a network.
type Identity struct {
	Channel     string `json:"channel"`
	ExternalID  string `json:"external_id"`
	Handle      string `json:"handle"`
	DisplayName string `json:"display_name"`
}

// Resident is what the council holds about the resident of a case: their
// identities on the networks and their cases, newest first (those of the
// actor's teams; the others only counted).
type Resident struct {
	ContactID   int64      `json:"contact_id"`
	DisplayName string     `json:"display_name"`
	Tags        []string   `json:"tags"`
	Identities  []Identity `json:"identities"`
	Cases       []Summary  `json:"cases"`
	// OtherTeams counts the resident's cases in teams the actor does not
	// work.
	OtherTeams int `json:"other_teams"`
}

// residentCases is how many of a resident's cases the panel lists.
const residentCases = 20

// ResidentOf returns the resident of a case the actor may read. The read
// is audited as a consultation of the contact.
func (s *Service) ResidentOf(ctx context.Context, actor Actor, ref string) (Resident, error) {
	db := s.ctxDB(ctx)
	id, err := resolveID(db, ref)
	if err != nil {
		return Resident{}, err
	}
	var c struct {
		TeamID    int64
		ContactID int64
	}
	if err := db.Raw(`SELECT team_id, contact_id FROM cases WHERE id = ?`, id).Scan(&c).Error; err != nil {
		return Resident{}, err
	}
	if err := check(actor, id, c.TeamID, ActRead); err != nil {
		return Resident{}, s.auditDenied(ctx, actor, err)
	}
	var contact struct {
		DisplayName string
		Tags        store.Strings `gorm:"type:text[]"`
	}
	if err := db.Raw(`SELECT display_name, tags FROM contacts WHERE id = ?`, c.ContactID).Scan(&contact).Error; err != nil {
		return Resident{}, err
	}
	r := Resident{ContactID: c.ContactID, DisplayName: contact.DisplayName, Tags: []string(contact.Tags),
		Identities: []Identity{}, Cases: []Summary{}}
	if r.Tags == nil {
		r.Tags = []string{}
	}
	if err := db.Raw(`SELECT channel, external_id, handle, display_name FROM contact_identities
		WHERE contact_id = ? ORDER BY id`, c.ContactID).Scan(&r.Identities).Error; err != nil {
		return Resident{}, err
	}
	q, args := summarySelect+` WHERE c.contact_id = ?`, []any{c.ContactID}
	count := `SELECT count(*) FROM cases WHERE contact_id = ? AND false`
	if !EveryTeam(actor.Role) {
		q += ` AND c.team_id = ANY(?)`
		args = append(args, store.Int64s(actor.TeamIDs))
		count = `SELECT count(*) FROM cases WHERE contact_id = ? AND NOT (team_id = ANY(?))`
	}
	var rows []summaryRow
	if err := db.Raw(q+` ORDER BY c.id DESC LIMIT ?`, append(args, residentCases)...).Scan(&rows).Error; err != nil {
		return Resident{}, err
	}
	for _, row := range rows {
		r.Cases = append(r.Cases, row.summary())
	}
	if err := db.Raw(count, args...).Scan(&r.OtherTeams).Error; err != nil {
		return Resident{}, err
	}
	if err := audit(db, actor, "contact.viewed", 0, map[string]any{"contact_id": c.ContactID, "via": id}); err != nil {
		return Resident{}, err
	}
	return r, nil
}

// Member is someone a case can be assigned to.
type Member struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// TeamMembers lists the enabled users of a team the actor works, by name.
func (s *Service) TeamMembers(ctx context.Context, actor Actor, team string) ([]Member, error) {
	db := s.ctxDB(ctx)
	id, err := s.teamID(db, team)
	if err != nil {
		return nil, err
	}
	if !actor.Sees(id) {
		return nil, ErrNotFound
	}
	out := []Member{}
	err = db.Raw(`SELECT u.id, u.name, u.role FROM users u JOIN user_teams ut ON ut.user_id = u.id
		WHERE ut.team_id = ? AND u.disabled_at IS NULL ORDER BY u.name, u.id`, id).Scan(&out).Error
	return out, err
}

// TeamRef is a team by slug and name.
type TeamRef struct {
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// Teams lists every team, by name.
func (s *Service) Teams(ctx context.Context) ([]TeamRef, error) {
	out := []TeamRef{}
	err := s.ctxDB(ctx).Raw(`SELECT slug, name FROM teams ORDER BY name, slug`).Scan(&out).Error
	return out, err
}

// UserNames returns the names of users by id, for showing who wrote a
// reply or a note.
func (s *Service) UserNames(ctx context.Context, ids []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		ID   int64
		Name string
	}
	if err := s.ctxDB(ctx).Raw(`SELECT id, name FROM users WHERE id = ANY(?)`, store.Int64s(ids)).Scan(&rows).Error; err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.ID] = r.Name
	}
	return out, nil
}

// TeamSlugsOf lists the slugs of the teams whose cases the actor works;
// nil for every team (admins).
func (s *Service) TeamSlugsOf(ctx context.Context, actor Actor) ([]string, error) {
	if EveryTeam(actor.Role) {
		return nil, nil
	}
	out := []string{}
	err := s.ctxDB(ctx).Raw(`SELECT slug FROM teams WHERE id = ANY(?) ORDER BY slug`, store.Int64s(actor.TeamIDs)).Scan(&out).Error
	return out, err
}

// Located is a case as far as a check of access needs it.
type Located struct {
	ID             int64
	Reference      string
	Team           string
	Channel        string
	ChannelAccount string
}

// Visible says whether the actor may read a case, without recording a
// consultation: for presence heartbeats, the composer's counter and
// live-update subscriptions, which show nothing of the case themselves.
// Another team's case is ErrNotFound, audited as Get does.
func (s *Service) Visible(ctx context.Context, actor Actor, ref string) (Located, error) {
	return s.VisibleFor(ctx, actor, ref, ActRead)
}

// VisibleFor is Visible for a call that does act on the case (measuring a
// reply is a step of replying): refused, and audited, as act would be.
func (s *Service) VisibleFor(ctx context.Context, actor Actor, ref string, act Action) (Located, error) {
	db := s.ctxDB(ctx)
	id, err := resolveID(db, ref)
	if err != nil {
		return Located{}, err
	}
	var c struct {
		Located
		TeamID int64
	}
	if err := db.Raw(`SELECT c.id, c.reference, t.slug AS team, c.channel, a.slug AS channel_account, c.team_id
		FROM cases c JOIN teams t ON t.id = c.team_id JOIN channel_accounts a ON a.id = c.channel_account_id
		WHERE c.id = ?`, id).Scan(&c).Error; err != nil {
		return Located{}, err
	}
	if err := check(actor, id, c.TeamID, act); err != nil {
		return Located{}, s.auditDenied(ctx, actor, err)
	}
	return c.Located, nil
}

// ErrWindowClosed matches every *WindowClosedError.
var ErrWindowClosed = errors.New("the network's reply window has closed")

// WindowClosedError is a reply the network would refuse: its window after
// the resident's last message has passed.
type WindowClosedError struct {
	Channel    string
	Visibility channels.Visibility
	Window     time.Duration
	ClosedAt   time.Time
	// ToPublicPost says the window was that of the one private reply to a
	// resident's public post.
	ToPublicPost bool
	// Templates are the account's approved templates, which the network
	// takes when free text is closed.
	Templates []string
}

func (e *WindowClosedError) Error() string {
	closed := e.ClosedAt.UTC().Format(time.RFC3339)
	if e.ToPublicPost {
		return fmt.Sprintf("%s takes one private reply to a public post for %s after it, and that closed at %s; "+
			"reply publicly instead", e.Channel, windowWords(e.Window), closed)
	}
	instead := "reply publicly where the channel allows, or wait for the resident to write again"
	if len(e.Templates) > 0 {
		instead = fmt.Sprintf("send one of the account's approved templates (%s) with its parameters, "+
			"or wait for the resident to write again", strings.Join(e.Templates, ", "))
	}
	return fmt.Sprintf("%s takes a %s reply for %s after the resident's last message, and that closed at %s; %s",
		e.Channel, e.Visibility, windowWords(e.Window), closed, instead)
}

// Is makes errors.Is(err, ErrWindowClosed) hold.
func (e *WindowClosedError) Is(target error) bool { return target == ErrWindowClosed }

func windowWords(d time.Duration) string {
	if d%(24*time.Hour) == 0 && d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	return fmt.Sprintf("%d hours", int(d/time.Hour))
}

// lastResidentMessage is when the resident last wrote on the case with
// visibility vis, by the network's clock; zero when they never did.
func lastResidentMessage(tx *gorm.DB, caseID int64, vis channels.Visibility) (time.Time, error) {
	var at sql.NullTime
	err := tx.Raw(`SELECT max(coalesce(network_sent_at, created_at)) FROM messages
		WHERE case_id = ? AND direction = 'inbound' AND visibility = ?`, caseID, string(vis)).Row().Scan(&at)
	if err != nil || !at.Valid {
		return time.Time{}, err
	}
	return at.Time, nil
}

// checkWindow refuses a reply the network's window no longer allows.
func (s *Service) checkWindow(tx *gorm.DB, caseID int64, channel, account string, vis channels.Visibility) error {
	window := s.ReplyWindow(account, vis)
	if window <= 0 {
		return nil
	}
	last, err := lastResidentMessage(tx, caseID, vis)
	if err != nil || last.IsZero() {
		return err
	}
	if closes := last.Add(window); time.Now().After(closes) {
		e := &WindowClosedError{Channel: channel, Visibility: vis, Window: window, ClosedAt: closes}
		if vis == channels.Private {
			for _, t := range s.Templates(account) {
				e.Templates = append(e.Templates, t.Name)
			}
		}
		return e
	}
	return nil
}

// WindowCloses is when a reply of vis on the case stops being possible,
// for the case page; nil when the channel has no window or the resident
// never wrote that way.
func (s *Service) WindowCloses(ctx context.Context, caseID int64, account string, vis channels.Visibility) (*time.Time, error) {
	window := s.ReplyWindow(account, vis)
	if window <= 0 {
		return nil, nil
	}
	last, err := lastResidentMessage(s.ctxDB(ctx), caseID, vis)
	if err != nil || last.IsZero() {
		return nil, err
	}
	closes := last.Add(window)
	return &closes, nil
}

// ApplyReceipts records networks' delivery receipts on the messages we
// sent, found by the network id of any of their parts in the account (see
// store.ReceiptsApplied); each change emits a delivery event for open case
// pages. A receipt for an id not recorded yet, or for a reply still being
// sent, waits in pending_receipts, which the sender applies once it has
// recorded the whole reply as sent (the network may report before the
// sender has written down its answer); one for a message another system
// sent is dropped after store.PendingReceiptsKept. Receipts
// never make or touch a case.
func (s *Service) ApplyReceipts(tx *gorm.DB, receipts []channels.Inbound) error {
	if len(receipts) == 0 {
		return nil
	}
	accounts, ids, statuses, reasons := make(store.Strings, len(receipts)), make(store.Strings, len(receipts)),
		make(store.Strings, len(receipts)), make(store.Strings, len(receipts))
	for i, r := range receipts {
		accounts[i], ids[i], statuses[i], reasons[i] = r.Account, r.ExternalID, r.Receipt.Status, r.Receipt.Error
	}
	if err := store.LockReceiptKeys(tx, `SELECT a.id, r.external_id FROM unnest(?::text[], ?::text[]) AS r(account, external_id)
		JOIN channel_accounts a ON a.slug = r.account`, accounts, ids); err != nil {
		return err
	}
	if err := tx.Exec(`WITH receipt AS (
			SELECT DISTINCT ON (p.message_id) p.message_id, r.status, r.reason, r.ord
			FROM unnest(?::text[], ?::text[], ?::text[], ?::text[]) WITH ORDINALITY AS r(account, external_id, status, reason, ord)
			JOIN channel_accounts a ON a.slug = r.account
			JOIN message_posts p ON p.channel_account_id = a.id AND p.external_id = r.external_id
			ORDER BY p.message_id, `+store.ReceiptRank+` DESC, r.ord
		), `+store.ReceiptsApplied+`
		`+store.MessageEvents,
		accounts, ids, statuses, reasons,
		s.names.CaseEventSubject(EventDelivery, ""), EventDelivery, EventDelivery).Error; err != nil {
		return err
	}
	return tx.Exec(`WITH expired AS (
			DELETE FROM pending_receipts WHERE received_at < now() - ?::interval
		)
		INSERT INTO pending_receipts (channel_account_id, external_id, status, reason)
		SELECT a.id, r.external_id, r.status, r.reason
		FROM unnest(?::text[], ?::text[], ?::text[], ?::text[]) AS r(account, external_id, status, reason)
		JOIN channel_accounts a ON a.slug = r.account
		WHERE NOT EXISTS (SELECT 1 FROM message_posts p JOIN messages m ON m.id = p.message_id
			WHERE p.channel_account_id = a.id AND p.external_id = r.external_id AND m.delivery_status NOT IN ('queued', 'sending'))`,
		store.PendingReceiptsKept, accounts, ids, statuses, reasons).Error
}

// ApplyChanges records residents' edits and removals on the messages they
// name, by the message's network id in the account: the message keeps
// what it first said, gains the edit (the latest) or the time of its
// removal, and a message_changed event tells open pages. A change to a message never
// stored (it came before the message, or the message was not ours to
// keep) is dropped; it never makes a message or a case.
func (s *Service) ApplyChanges(tx *gorm.DB, changes []channels.Inbound) error {
	if len(changes) == 0 {
		return nil
	}
	accounts, keys, kinds, texts, ats := make(store.Strings, len(changes)), make(store.Strings, len(changes)),
		make(store.Strings, len(changes)), make(store.Strings, len(changes)), make(store.Strings, len(changes))
	for i, c := range changes {
		sanitize(&c)
		accounts[i], keys[i], kinds[i], texts[i] = c.Account, c.ExternalID, c.Change.Kind, c.Text
		ats[i] = c.SentAt.Format(time.RFC3339Nano)
	}
	return tx.Exec(`WITH change AS (
			SELECT r.* FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[]) WITH ORDINALITY
				AS r(account, external_id, kind, body, at, ord)
		), updated AS (
			UPDATE messages m SET
				edited_body = CASE WHEN c.kind = 'edited' THEN c.body ELSE m.edited_body END,
				edited_at = CASE WHEN c.kind = 'edited' THEN c.at::timestamptz ELSE m.edited_at END,
				removed_at = CASE WHEN c.kind = 'removed' THEN coalesce(m.removed_at, c.at::timestamptz) ELSE m.removed_at END
			FROM (SELECT DISTINCT ON (account, external_id, kind) * FROM change ORDER BY account, external_id, kind, at DESC, ord DESC) c
			JOIN channel_accounts a ON a.slug = c.account
			JOIN message_posts p ON p.channel_account_id = a.id AND p.external_id = c.external_id
			WHERE m.id = p.message_id AND m.direction = 'inbound'
			AND (c.kind = 'removed' OR m.edited_at IS NULL OR m.edited_at <= c.at::timestamptz)
			RETURNING m.id, m.case_id
		)
		`+store.MessageEvents,
		accounts, keys, kinds, texts, ats,
		s.names.CaseEventSubject(EventMessageChanged, ""), EventMessageChanged, EventMessageChanged).Error
}

// EventMessageChanged announces a resident's edit or removal of a message.
const EventMessageChanged = "message_changed"
