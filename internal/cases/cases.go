// Package cases is the case service: it turns resident messages into cases
// (threading them onto an open case where they belong), and carries out what
// advisers do to a case: reply, change status, assign. It knows cases and
// nothing of any network.
package cases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/metrics"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/threading"
)

// Case statuses; threading decides on the same ones.
const (
	StatusNew              = threading.StatusNew
	StatusOpen             = threading.StatusOpen
	StatusAwaitingResident = threading.StatusAwaitingResident
	StatusResolved         = threading.StatusResolved
	StatusClosed           = threading.StatusClosed
)

// Statuses lists every case status in lifecycle order.
var Statuses = []string{StatusNew, StatusOpen, StatusAwaitingResident, StatusResolved, StatusClosed}

// Errors callers map to answers.
var (
	ErrNotFound          = errors.New("case not found")
	ErrClosed            = errors.New("case is closed")
	ErrNoPublicThread    = errors.New("case has no public post to reply to")
	ErrNoResident        = errors.New("case has no resident identity to message")
	ErrUnknownAssignee   = errors.New("no active user has that id")
	ErrUnknownTeam       = errors.New("no team has that slug")
	ErrInvalidStatus     = errors.New("status is not a case status")
	ErrUnknownAccount    = errors.New("channel account is not configured")
	ErrStatusUnchanged   = errors.New("case already has that status")
	ErrInvalidTransition = errors.New("status change is not allowed")
	ErrInvalidPriority   = errors.New("priority is not low, normal, high or urgent")
	ErrPriorityUnchanged = errors.New("case already has that priority")
)

// Actor is who did something through the API or UI: what they may do and
// to which teams' cases is in access.go.
type Actor struct {
	UserID  int64
	TokenID int64
	Role    string
	TeamIDs []int64
}

// Service is the case service.
type Service struct {
	db      *gorm.DB
	names   bus.Names
	metrics *metrics.Metrics
	log     *slog.Logger
	// wake tells the outbox relay there is something to publish.
	wake func()

	mu       sync.RWMutex
	accounts map[string]account // by slug
	teams    map[int64]team     // by id
	// cfg is the business configuration the service follows.
	cfg Configuration
}

// ReplyRules say whether a reply can go out on a channel account: nil
// when it fits (in parts where the network has them), an error naming the
// measure and the limit when it cannot. The channel drivers' registry of
// the running configuration is one.
type ReplyRules interface {
	CheckReply(account string, vis channels.Visibility, text string) error
	MeasureReply(account string, vis channels.Visibility, text string) (channels.Measurement, error)
	ReplyVisibilities(account string) []channels.Visibility
	ReplyWindow(account string, vis channels.Visibility) time.Duration
	Templates(account string) []channels.Template
	PrivateReplyToPublic(account string) time.Duration
}

// MeasureReply measures a reply's text on a channel account by the rule
// Reply applies, for the composer's counter.
func (s *Service) MeasureReply(account string, vis channels.Visibility, text string) (channels.Measurement, error) {
	s.mu.RLock()
	rules := s.cfg.Replies
	s.mu.RUnlock()
	if rules == nil {
		return channels.Measurement{}, channels.ErrUnknownAccount
	}
	return rules.MeasureReply(account, vis, text)
}

// ReplyWindow is how long after the resident's last message the channel
// account's network takes a reply of vis; zero for no limit.
func (s *Service) ReplyWindow(account string, vis channels.Visibility) time.Duration {
	s.mu.RLock()
	rules := s.cfg.Replies
	s.mu.RUnlock()
	if rules == nil {
		return 0
	}
	return rules.ReplyWindow(account, vis)
}

// ReplyVisibilities lists the kinds of reply a channel account can send;
// none when this replica does not know it.
func (s *Service) ReplyVisibilities(account string) []channels.Visibility {
	s.mu.RLock()
	rules := s.cfg.Replies
	s.mu.RUnlock()
	if rules == nil {
		return nil
	}
	return rules.ReplyVisibilities(account)
}

// UseConfiguration makes the service follow a configuration: its reply
// rules, routing, SLA policies, automatic replies and escalations; the
// accounts and teams it had cached are read again from the database, where
// the configuration was just written.
func (s *Service) UseConfiguration(cfg Configuration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
	s.accounts = map[string]account{}
	s.teams = map[int64]team{}
}

// checkReply applies the reply rules. An account this replica has no
// driver for (a configuration being rolled out) is not refused: a replica
// that has it sends the reply and applies the network's own limits.
func (s *Service) checkReply(account string, vis channels.Visibility, text string) error {
	s.mu.RLock()
	rules := s.cfg.Replies
	s.mu.RUnlock()
	if rules == nil {
		return nil
	}
	if err := rules.CheckReply(account, vis, text); err != nil && !errors.Is(err, channels.ErrUnknownAccount) {
		return err
	}
	return nil
}

type account struct {
	ID       int64
	Slug     string
	Channel  string
	TeamID   int64
	TeamSlug string
}

// New builds the case service.
func New(db *gorm.DB, names bus.Names, m *metrics.Metrics, log *slog.Logger, wake func()) *Service {
	if wake == nil {
		wake = func() {}
	}
	return &Service{db: db, names: names, metrics: m, log: log, wake: wake, accounts: map[string]account{}, teams: map[int64]team{}}
}

// account returns the channel account with the given slug, from a cache
// filled on first use.
func (s *Service) account(tx *gorm.DB, slug string) (account, error) {
	s.mu.RLock()
	a, ok := s.accounts[slug]
	s.mu.RUnlock()
	if ok {
		return a, nil
	}
	err := tx.Raw(`SELECT a.id, a.slug, a.channel, a.team_id, t.slug AS team_slug
		FROM channel_accounts a JOIN teams t ON t.id = a.team_id WHERE a.slug = ?`, slug).Scan(&a).Error
	if err != nil {
		return account{}, err
	}
	if a.ID == 0 {
		return account{}, fmt.Errorf("%w: %q", ErrUnknownAccount, slug)
	}
	s.mu.Lock()
	s.accounts[slug] = a
	s.mu.Unlock()
	return a, nil
}

// CaseContext is what a case began by answering: a post in another
// resident's thread, under the council's own post, or in a closed case.
type CaseContext struct {
	// PostID is the network id of the post the resident answered.
	PostID string `json:"post_id"`
	// CaseID and CaseReference name the case that post belongs to, when
	// there is one.
	CaseID        *int64  `json:"case_id"`
	CaseReference *string `json:"case_reference"`
}

// caseContext returns a case's context from its columns; nil when the
// case began by answering no post.
func caseContext(postID string, caseID *int64, reference *string) *CaseContext {
	if postID == "" {
		return nil
	}
	return &CaseContext{PostID: postID, CaseID: caseID, CaseReference: reference}
}

// Event is the body of a message on CASE_EVENTS.
type Event struct {
	Kind      string `json:"kind"`
	CaseID    int64  `json:"case_id"`
	Reference string `json:"reference"`
	Team      string `json:"team"`
	Channel   string `json:"channel"`
	Status    string `json:"status"`
	MessageID int64  `json:"message_id,omitempty"`
	// Priority is the case's priority where the event changed or decided it.
	Priority string `json:"priority,omitempty"`
	// Target, DueAt and Reason say which SLA deadline an SLA event or an
	// escalation is about, and why supervisors are alerted.
	Target string     `json:"target,omitempty"`
	DueAt  *time.Time `json:"due_at,omitempty"`
	Reason string     `json:"reason,omitempty"`
	At     time.Time  `json:"at"`
}

// Event kinds.
const (
	EventCreated      = "created"
	EventMessageAdded = "message_added"
	// EventDelivery says a reply's delivery status changed: the network
	// took it, or it failed. The sender writes it.
	EventDelivery      = "delivery"
	EventReopened      = "reopened"
	EventReplied       = "replied"
	EventStatusChanged = "status_changed"
	EventAssigned      = "assigned"
)

// emit writes a case event to the outbox in the caller's transaction.
func (s *Service) emit(tx *gorm.DB, ev Event) error { return s.emitAll(tx, []Event{ev}) }

// emitAll writes case events to the outbox in one statement.
func (s *Service) emitAll(tx *gorm.DB, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	subjects, ids, payloads := make(store.Strings, len(evs)), make(store.Strings, len(evs)), make(store.Strings, len(evs))
	for i, ev := range evs {
		payload, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		subjects[i] = s.names.CaseEventSubject(ev.Kind, ev.Team)
		ids[i] = fmt.Sprintf("case-%d-%s-%d-%d", ev.CaseID, ev.Kind, ev.MessageID, ev.At.UnixNano())
		if ev.Target != "" {
			ids[i] += "-" + ev.Target
		}
		payloads[i] = string(payload)
	}
	return tx.Exec(`INSERT INTO outbox (subject, msg_id, payload)
		SELECT subject, msg_id, payload::jsonb FROM unnest(?::text[], ?::text[], ?::text[]) AS t(subject, msg_id, payload)`,
		subjects, ids, payloads).Error
}

// team is a team as the case service caches it.
type team struct {
	ID         int64
	Slug, Name string
}

// team returns a team by id, from a cache filled on first use.
func (s *Service) team(tx *gorm.DB, id int64) team {
	s.mu.RLock()
	t, ok := s.teams[id]
	s.mu.RUnlock()
	if ok {
		return t
	}
	tx.Raw(`SELECT id, slug, name FROM teams WHERE id = ?`, id).Scan(&t)
	if t.ID != 0 {
		s.mu.Lock()
		s.teams[id] = t
		s.mu.Unlock()
	}
	return t
}

// teamSlug returns a team's slug.
func (s *Service) teamSlug(tx *gorm.DB, id int64) string { return s.team(tx, id).Slug }

// teamName returns a team's name.
func (s *Service) teamName(tx *gorm.DB, id int64) string { return s.team(tx, id).Name }

// teamID returns the id of the team with the slug.
func (s *Service) teamID(tx *gorm.DB, slug string) (int64, error) {
	s.mu.RLock()
	for id, t := range s.teams {
		if t.Slug == slug {
			s.mu.RUnlock()
			return id, nil
		}
	}
	s.mu.RUnlock()
	var t team
	if err := tx.Raw(`SELECT id, slug, name FROM teams WHERE slug = ?`, slug).Scan(&t).Error; err != nil {
		return 0, err
	}
	if t.ID == 0 {
		return 0, fmt.Errorf("%w: %q", ErrUnknownTeam, slug)
	}
	s.mu.Lock()
	s.teams[t.ID] = t
	s.mu.Unlock()
	return t.ID, nil
}

// audit records an action in the caller's transaction.
func audit(tx *gorm.DB, actor Actor, action string, caseID int64, detail any) error {
	raw, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	ev := &store.AuditEvent{Action: action, Detail: raw}
	if actor.UserID != 0 {
		ev.UserID = &actor.UserID
	}
	if actor.TokenID != 0 {
		ev.TokenID = &actor.TokenID
	}
	if caseID != 0 {
		ev.CaseID = &caseID
	}
	return tx.Omit("CreatedAt").Create(ev).Error // created_at: the database clock
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// ctxDB starts a query on the base handle with ctx.
func (s *Service) ctxDB(ctx context.Context) *gorm.DB { return s.db.WithContext(ctx) }
