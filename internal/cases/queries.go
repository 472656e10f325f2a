package cases

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/routing"
	"github.com/citizeninbox/inbox/internal/store"
)

// Summary is a case as listed in the queue.
type Summary struct {
	ID              int64      `json:"id"`
	Reference       string     `json:"reference"`
	Status          string     `json:"status"`
	Channel         string     `json:"channel"`
	ChannelAccount  string     `json:"channel_account"`
	Team            string     `json:"team"`
	AssigneeID      *int64     `json:"assignee_id"`
	Subject         string     `json:"subject"`
	Contact         Contact    `json:"contact" gorm:"-"`
	ContactID       int64      `json:"contact_id" gorm:"-"` // the resident's contact (GET /contacts/{id}), as Contact.ID
	FirstMessageAt  time.Time  `json:"first_message_at"`
	LastMessageAt   time.Time  `json:"last_message_at"`
	FirstResponseAt *time.Time `json:"first_response_at"`
	ResolvedAt      *time.Time `json:"resolved_at"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`

	// What routing decided: priority, the service (an Open311-style
	// service code, or null), tags, and the emergency and safeguarding
	// flags.
	Priority     string   `json:"priority"`
	Service      *string  `json:"service" gorm:"column:service_code"`
	Tags         []string `json:"tags" gorm:"-"`
	Emergency    bool     `json:"emergency"`
	Safeguarding bool     `json:"safeguarding"`
	// SLA is each target's state and deadline.
	SLA SLA `json:"sla" gorm:"-"`

	// Context is what the case began by answering, or null.
	Context *CaseContext `json:"context" gorm:"-"`
}

// Contact is the resident behind a case, as seen on the case's channel.
type Contact struct {
	ID          int64  `json:"id"`
	ExternalID  string `json:"external_id"`
	Handle      string `json:"handle"`
	DisplayName string `json:"display_name"`
}

// Detail is a case with its whole conversation.
type Detail struct {
	Summary
	// Routing says why the case is where it is.
	Routing  Routing   `json:"routing"`
	Messages []Message `json:"messages"`
}

// Message is one message of a case.
type Message struct {
	ID             int64    `json:"id"`
	Direction      string   `json:"direction"`
	Visibility     string   `json:"visibility"`
	Body           string   `json:"body"`
	ExternalID     string   `json:"external_id"`
	ExternalIDs    []string `json:"external_ids" gorm:"-"`
	InReplyTo      string   `json:"in_reply_to"`
	AuthorUserID   *int64   `json:"author_user_id"`
	DeliveryStatus string   `json:"delivery_status"`
	// Automatic names a reply the service sent by itself
	// (acknowledgement, emergency); empty for everything else.
	Automatic     string     `json:"automatic"`
	FailureReason string     `json:"failure_reason"`
	SendAttempts  int        `json:"send_attempts"`
	SentAt        *time.Time `json:"sent_at"`
	NetworkSentAt *time.Time `json:"network_sent_at"`
	CreatedAt     time.Time  `json:"created_at"`
	// EditedBody and EditedAt are the resident's edit on the network;
	// RemovedAt when they removed the message there. Body keeps what the
	// message first said.
	EditedBody *string    `json:"edited_body"`
	EditedAt   *time.Time `json:"edited_at"`
	RemovedAt  *time.Time `json:"removed_at"`
}

// Filter narrows a case list. Empty fields match everything.
type Filter struct {
	Status  string
	Team    string
	Channel string
	// Cursor continues a previous page; Limit is the page size.
	Cursor string
	Limit  int
}

// Page is one page of cases.
type Page struct {
	Cases      []Summary `json:"cases"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// ErrBadCursor is returned for a cursor this service did not hand out.
var ErrBadCursor = errors.New("cursor is not valid")

const summarySelect = `SELECT c.id, c.reference, c.status, c.channel, a.slug AS channel_account, t.slug AS team,
	c.assignee_id, c.subject, c.first_message_at, c.last_message_at, c.first_response_at, c.resolved_at,
	c.created_at, c.updated_at, c.priority, c.service_code, c.tags AS raw_tags, c.emergency, c.safeguarding,
	c.routing AS raw_routing, c.last_response_at, ` + clockColumnsC + `,
	c.contact_id, ci.external_id AS contact_external_id, ci.handle AS contact_handle,
	ci.display_name AS contact_display_name,
	c.context_post_id, c.context_case_id, cc.reference AS context_case_reference
	FROM cases c
	JOIN channel_accounts a ON a.id = c.channel_account_id
	JOIN teams t ON t.id = c.team_id
	JOIN contact_identities ci ON ci.id = c.contact_identity_id
	LEFT JOIN cases cc ON cc.id = c.context_case_id`

type summaryRow struct {
	Summary
	RawTags        store.Strings `gorm:"type:text[]"`
	RawRouting     []byte
	LastResponseAt *time.Time
	Clocks
	ContactID          int64
	ContactExternalID  string
	ContactHandle      string
	ContactDisplayName string

	ContextPostID        string
	ContextCaseID        *int64
	ContextCaseReference *string
}

func (r summaryRow) summary() Summary {
	s := r.Summary
	s.ContactID = r.ContactID
	s.Contact = Contact{ID: r.ContactID, ExternalID: r.ContactExternalID, Handle: r.ContactHandle, DisplayName: r.ContactDisplayName}
	s.Context = caseContext(r.ContextPostID, r.ContextCaseID, r.ContextCaseReference)
	s.Tags = []string(r.RawTags)
	if s.Tags == nil {
		s.Tags = []string{}
	}
	s.SLA = slaState(r.Clocks, s.Status, s.FirstResponseAt, r.LastResponseAt, s.ResolvedAt, time.Now())
	return s
}

// routing is the stored routing decision, as the API shows it.
func (r summaryRow) routing() Routing {
	var out Routing
	if len(r.RawRouting) > 0 {
		_ = json.Unmarshal(r.RawRouting, &out) // written by this service
	}
	if out.Rules == nil {
		out.Rules = []routing.Fired{}
	}
	return out
}

// List returns one page of cases, newest first: only the cases of the
// actor's teams (every team's for admins). The read is audited.
func (s *Service) List(ctx context.Context, actor Actor, f Filter) (Page, error) {
	if !actor.Can(ActRead) {
		return Page{}, s.auditDenied(ctx, actor, &denied{err: ErrForbidden, action: ActRead})
	}
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	q := summarySelect + ` WHERE true`
	var args []any
	if !EveryTeam(actor.Role) {
		q += ` AND c.team_id = ANY(?)`
		args = append(args, store.Int64s(actor.TeamIDs))
	}
	if f.Status != "" {
		q += ` AND c.status = ?`
		args = append(args, f.Status)
	}
	if f.Team != "" {
		q += ` AND t.slug = ?`
		args = append(args, f.Team)
	}
	if f.Channel != "" {
		q += ` AND c.channel = ?`
		args = append(args, f.Channel)
	}
	if f.Cursor != "" {
		before, err := decodeCursor(f.Cursor)
		if err != nil {
			return Page{}, err
		}
		q += ` AND c.id < ?`
		args = append(args, before)
	}
	q += ` ORDER BY c.id DESC LIMIT ?`
	args = append(args, f.Limit+1)

	var rows []summaryRow
	if err := s.ctxDB(ctx).Raw(q, args...).Scan(&rows).Error; err != nil {
		return Page{}, err
	}
	page := Page{Cases: make([]Summary, 0, len(rows))}
	for i, r := range rows {
		if i == f.Limit {
			page.NextCursor = encodeCursor(rows[i-1].ID)
			break
		}
		page.Cases = append(page.Cases, r.summary())
	}
	err := audit(s.ctxDB(ctx), actor, "cases.listed", 0, map[string]any{
		"status": f.Status, "team": f.Team, "channel": f.Channel, "count": len(page.Cases),
	})
	return page, err
}

func encodeCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("id:" + strconv.FormatInt(id, 10)))
}

func decodeCursor(c string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, ErrBadCursor
	}
	n, ok := strings.CutPrefix(string(raw), "id:")
	if !ok {
		return 0, ErrBadCursor
	}
	id, err := strconv.ParseInt(n, 10, 64)
	if err != nil || id <= 0 {
		return 0, ErrBadCursor
	}
	return id, nil
}

// resolveID turns a case id or reference ("C-2026-000123") into an id.
func resolveID(tx *gorm.DB, ref string) (int64, error) {
	if strings.ContainsRune(ref, 0) || len(ref) > 64 {
		return 0, ErrNotFound
	}
	var id int64
	var err error
	if strings.HasPrefix(strings.ToUpper(ref), "C-") {
		err = tx.Raw(`SELECT id FROM cases WHERE reference = ?`, strings.ToUpper(ref)).Scan(&id).Error
	} else if n, perr := strconv.ParseInt(ref, 10, 64); perr == nil && n > 0 {
		err = tx.Raw(`SELECT id FROM cases WHERE id = ?`, n).Scan(&id).Error
	}
	if err != nil {
		return 0, err
	}
	if id == 0 {
		return 0, ErrNotFound
	}
	return id, nil
}

// Get returns a case with its messages, oldest first. Another team's case
// is not found, and the attempt is audited; the read is audited too.
func (s *Service) Get(ctx context.Context, actor Actor, ref string) (Detail, error) {
	db := s.ctxDB(ctx)
	id, err := resolveID(db, ref)
	if err != nil {
		return Detail{}, err
	}
	var teamID int64
	if err := db.Raw(`SELECT team_id FROM cases WHERE id = ?`, id).Scan(&teamID).Error; err != nil {
		return Detail{}, err
	}
	if err := check(actor, id, teamID, ActRead); err != nil {
		return Detail{}, s.auditDenied(ctx, actor, err)
	}
	d, err := readDetail(db, id)
	if err != nil {
		return Detail{}, err
	}
	if err := audit(db, actor, "case.viewed", id, map[string]any{"reference": d.Reference}); err != nil {
		return Detail{}, err
	}
	return d, nil
}

// readDetail reads a case with its messages on db, which may be the
// transaction that just changed it.
func readDetail(db *gorm.DB, id int64) (Detail, error) {
	var row summaryRow
	if err := db.Raw(summarySelect+` WHERE c.id = ?`, id).Scan(&row).Error; err != nil {
		return Detail{}, err
	}
	if row.ID == 0 {
		return Detail{}, ErrNotFound
	}
	d := Detail{Summary: row.summary(), Routing: row.routing(), Messages: []Message{}}
	var msgs []messageRow
	if err := db.Raw(messageSelect+` WHERE case_id = ? ORDER BY id`, id).Scan(&msgs).Error; err != nil {
		return Detail{}, err
	}
	for _, m := range msgs {
		d.Messages = append(d.Messages, m.message())
	}
	return d, nil
}

// messageSelect reads messages as the API shows them, into messageRow.
const messageSelect = `SELECT id, direction, visibility, body, external_id, external_ids, in_reply_to,
	author_user_id, delivery_status, automatic, failure_reason, send_attempts, sent_at, network_sent_at, created_at,
	edited_body, edited_at, removed_at
	FROM messages`

type messageRow struct {
	Message
	RawExternalIDs store.Strings `gorm:"column:external_ids;type:text[]"`
}

func (r messageRow) message() Message {
	m := r.Message
	m.ExternalIDs = []string(r.RawExternalIDs)
	if m.ExternalIDs == nil {
		m.ExternalIDs = []string{}
	}
	return m
}
