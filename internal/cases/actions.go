package cases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/store"
)

// ReplyInput is an adviser's reply to the resident.
type ReplyInput struct {
	Text       string
	Visibility channels.Visibility
	// IdempotencyKey, when set, makes a repeated request return the reply
	// the first one made instead of sending another.
	IdempotencyKey string
}

// ErrIdempotencyKeyReused is returned when a key already made a reply on
// another case or with other text.
var ErrIdempotencyKeyReused = errors.New("idempotency key was already used for a different reply")

// Reply stores an adviser's reply and queues it for sending: the message
// row and its outbox row are written in one transaction, so a reply is never
// lost between the database and the bus. A public reply answers the
// resident's latest public post in the case; a private one is a direct
// message to the resident.
func (s *Service) Reply(ctx context.Context, actor Actor, ref string, in ReplyInput) (Message, error) {
	msg, err := s.reply(ctx, actor, ref, in)
	if in.IdempotencyKey != "" && store.IsUniqueViolation(err) {
		// The same request ran at the same moment and won: answer with its reply.
		msg, err = s.reply(ctx, actor, ref, in)
	}
	return msg, err
}

func (s *Service) reply(ctx context.Context, actor Actor, ref string, in ReplyInput) (Message, error) {
	var msgID int64
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		c, err := lockCase(tx, ref)
		if err != nil {
			return err
		}
		if in.IdempotencyKey != "" {
			var prior struct {
				ID     int64
				CaseID int64
				Body   string
			}
			if err := tx.Raw(`SELECT id, case_id, body FROM messages WHERE author_user_id = ? AND idempotency_key = ?`,
				actor.UserID, in.IdempotencyKey).Scan(&prior).Error; err != nil {
				return err
			}
			if prior.ID != 0 {
				if prior.CaseID != c.ID || prior.Body != in.Text {
					return ErrIdempotencyKeyReused
				}
				msgID = prior.ID
				return nil
			}
		}
		if c.Status == StatusClosed {
			return ErrClosed
		}
		var acct struct {
			Slug    string
			Channel string
		}
		if err := tx.Raw(`SELECT slug, channel FROM channel_accounts WHERE id = ?`, c.ChannelAccountID).Scan(&acct).Error; err != nil {
			return err
		}
		out := channels.Outbound{Channel: acct.Channel, Account: acct.Slug, Visibility: in.Visibility, Text: in.Text}
		switch in.Visibility {
		case channels.Public:
			// The case's resident's latest public post; another resident's
			// post in the thread only when the case has none of theirs.
			if err := tx.Raw(`SELECT external_id FROM messages
				WHERE case_id = ? AND direction = 'inbound' AND visibility = 'public' AND external_id <> ''
				ORDER BY (contact_identity_id = ?) DESC, id DESC LIMIT 1`, c.ID, c.ContactIdentityID).Scan(&out.InReplyTo).Error; err != nil {
				return err
			}
			if out.InReplyTo == "" {
				return ErrNoPublicThread
			}
		case channels.Private:
			if err := tx.Raw(`SELECT external_id FROM contact_identities WHERE id = ?`, c.ContactIdentityID).Scan(&out.Recipient).Error; err != nil {
				return err
			}
			if out.Recipient == "" {
				return ErrNoResident
			}
		default:
			return fmt.Errorf("visibility %q is not public or private", in.Visibility)
		}
		author := actor.UserID
		msg := &store.Message{
			CaseID:           c.ID,
			ChannelAccountID: c.ChannelAccountID,
			Direction:        "outbound",
			Visibility:       string(in.Visibility),
			Body:             in.Text,
			InReplyTo:        out.InReplyTo,
			DeliveryStatus:   "queued",
			ExternalIDs:      []string{},
		}
		if author != 0 {
			msg.AuthorUserID = &author
		}
		if in.IdempotencyKey != "" {
			msg.IdempotencyKey = &in.IdempotencyKey
		}
		if err := tx.Omit("DedupeKey", "ContactIdentityID", "SentAt", "NetworkSentAt", "ReceivedAt", "Raw").Create(msg).Error; err != nil {
			return err
		}
		msgID = msg.ID
		out.MessageID = msg.ID
		payload, err := json.Marshal(out)
		if err != nil {
			return err
		}
		if err := tx.Create(&store.OutboxEntry{
			Subject: s.names.OutboundSubject(acct.Channel, acct.Slug),
			MsgID:   fmt.Sprintf("outbound-%d", msg.ID),
			Payload: payload,
		}).Error; err != nil {
			return err
		}
		now := time.Now().UTC()
		// The first response is set by the sender, when the network
		// accepts the reply.
		updates := map[string]any{"updated_at": now}
		if c.Status == StatusNew {
			updates["status"] = StatusOpen
			c.Status = StatusOpen
		}
		if err := tx.Model(&store.Case{}).Where("id = ?", c.ID).Updates(updates).Error; err != nil {
			return err
		}
		if err := audit(tx, actor, "case.replied", c.ID, map[string]any{"message_id": msg.ID, "visibility": in.Visibility}); err != nil {
			return err
		}
		return s.emit(tx, Event{Kind: EventReplied, CaseID: c.ID, Reference: c.Reference, Team: s.teamSlug(tx, c.TeamID),
			Channel: c.Channel, Status: c.Status, MessageID: msg.ID, At: now})
	})
	if err != nil {
		return Message{}, err
	}
	s.wake()
	return s.message(ctx, msgID)
}

func (s *Service) message(ctx context.Context, id int64) (Message, error) {
	var row messageRow
	err := s.ctxDB(ctx).Raw(messageSelect+` WHERE id = ?`, id).Scan(&row).Error
	if err != nil {
		return Message{}, err
	}
	if row.ID == 0 {
		return Message{}, ErrNotFound
	}
	return row.message(), nil
}

func lockCase(tx *gorm.DB, ref string) (*store.Case, error) {
	id, err := resolveID(tx, ref)
	if err != nil {
		return nil, err
	}
	var c store.Case
	if err := tx.Raw(`SELECT * FROM cases WHERE id = ? FOR UPDATE`, id).Scan(&c).Error; err != nil {
		return nil, err
	}
	if c.ID == 0 {
		return nil, ErrNotFound
	}
	return &c, nil
}

// SetStatus moves a case to another status. A closed case stays closed.
func (s *Service) SetStatus(ctx context.Context, actor Actor, ref, status string) (Detail, error) {
	if !slices.Contains(Statuses, status) {
		return Detail{}, ErrInvalidStatus
	}
	var id int64
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		c, err := lockCase(tx, ref)
		if err != nil {
			return err
		}
		id = c.ID
		if c.Status == status {
			return ErrStatusUnchanged
		}
		if c.Status == StatusClosed || status == StatusNew {
			return fmt.Errorf("%w: from %s to %s", ErrInvalidTransition, c.Status, status)
		}
		now := time.Now().UTC()
		updates := map[string]any{"status": status, "updated_at": now}
		switch status {
		case StatusResolved:
			updates["resolved_at"] = now
		case StatusClosed:
			updates["closed_at"] = now
			if c.ResolvedAt == nil {
				updates["resolved_at"] = now
			}
		case StatusOpen, StatusAwaitingResident:
			if c.Status == StatusResolved {
				updates["resolved_at"] = nil
				updates["reopened_count"] = gorm.Expr("reopened_count + 1")
			}
		}
		if err := tx.Model(&store.Case{}).Where("id = ?", c.ID).Updates(updates).Error; err != nil {
			return err
		}
		if err := audit(tx, actor, "case.status_changed", c.ID, map[string]any{"from": c.Status, "to": status}); err != nil {
			return err
		}
		return s.emit(tx, Event{Kind: EventStatusChanged, CaseID: c.ID, Reference: c.Reference,
			Team: s.teamSlug(tx, c.TeamID), Channel: c.Channel, Status: status, At: now})
	})
	if err != nil {
		return Detail{}, err
	}
	s.wake()
	return s.detail(ctx, actor, id)
}

// Assignment says who works on a case. A nil AssigneeID with Unassign set
// takes the case off its adviser; an empty Team keeps the case's team.
type Assignment struct {
	AssigneeID *int64
	Unassign   bool
	Team       string
}

// Assign sets a case's adviser and, optionally, moves it to another team.
func (s *Service) Assign(ctx context.Context, actor Actor, ref string, a Assignment) (Detail, error) {
	var id int64
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		c, err := lockCase(tx, ref)
		if err != nil {
			return err
		}
		id = c.ID
		updates := map[string]any{"updated_at": time.Now().UTC()}
		teamID := c.TeamID
		if a.Team != "" {
			var newTeam int64
			if err := tx.Raw(`SELECT id FROM teams WHERE slug = ?`, a.Team).Scan(&newTeam).Error; err != nil {
				return err
			}
			if newTeam == 0 {
				return ErrUnknownTeam
			}
			teamID = newTeam
			updates["team_id"] = teamID
		}
		switch {
		case a.Unassign:
			updates["assignee_id"] = nil
		case a.AssigneeID != nil:
			var n int64
			if err := tx.Raw(`SELECT count(*) FROM users WHERE id = ? AND disabled_at IS NULL`, *a.AssigneeID).Scan(&n).Error; err != nil {
				return err
			}
			if n == 0 {
				return ErrUnknownAssignee
			}
			updates["assignee_id"] = *a.AssigneeID
		}
		if err := tx.Model(&store.Case{}).Where("id = ?", c.ID).Updates(updates).Error; err != nil {
			return err
		}
		if err := audit(tx, actor, "case.assigned", c.ID, map[string]any{
			"assignee_id": a.AssigneeID, "unassign": a.Unassign, "team": a.Team,
		}); err != nil {
			return err
		}
		return s.emit(tx, Event{Kind: EventAssigned, CaseID: c.ID, Reference: c.Reference,
			Team: s.teamSlug(tx, teamID), Channel: c.Channel, Status: c.Status, At: time.Now().UTC()})
	})
	if err != nil {
		return Detail{}, err
	}
	s.wake()
	return s.detail(ctx, actor, id)
}
