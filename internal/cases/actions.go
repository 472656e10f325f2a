package cases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	// SeenMessageID, when set, is the newest message of the case the
	// adviser had in view while writing: a resident's message or another
	// adviser's reply after it holds the reply (ErrConversationMoved).
	SeenMessageID int64
	// InReplyTo, when set, is the resident's message of the case the reply
	// answers: a public reply goes under that post, a private one quotes
	// the message where the network can (WhatsApp) or is the one private
	// reply to that public post (Meta's comments).
	InReplyTo int64
	// Template, when set, is the name of one of the account's approved
	// templates, sent with Parameters in place of Text (a private message
	// the network takes after its window for free text has closed).
	Template   string
	Parameters []string
}

// ErrIdempotencyKeyReused is returned when a key already made a reply on
// another case or with other text.
var ErrIdempotencyKeyReused = errors.New("idempotency key was already used for a different reply")

// Reply stores an adviser's reply and queues it for sending: the message
// row and its outbox row are written in one transaction, so a reply is never
// lost between the database and the bus. A public reply answers the
// resident's latest public post in the case; a private one is a direct
// message to the resident. The answer is the message as that transaction
// wrote it (queued), whatever the sender has done with it since. A reply
// counts as the case's first response only once the network has accepted
// it, which the sender records.
func (s *Service) Reply(ctx context.Context, actor Actor, ref string, in ReplyInput) (Message, error) {
	msg, err := s.reply(ctx, actor, ref, in)
	if in.IdempotencyKey != "" && store.IsUniqueViolation(err) {
		// The same request ran at the same moment and won: answer with its reply.
		msg, err = s.reply(ctx, actor, ref, in)
	}
	return msg, s.auditDenied(ctx, actor, err)
}

func (s *Service) reply(ctx context.Context, actor Actor, ref string, in ReplyInput) (Message, error) {
	var written Message
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		c, err := lockCase(tx, ref)
		if err != nil {
			return err
		}
		if err := check(actor, c.ID, c.TeamID, ActReply); err != nil {
			return err
		}
		var acct struct {
			Slug    string
			Channel string
		}
		if err := tx.Raw(`SELECT slug, channel FROM channel_accounts WHERE id = ?`, c.ChannelAccountID).Scan(&acct).Error; err != nil {
			return err
		}
		text := in.Text
		if in.Template == "" && strings.TrimSpace(text) == "" {
			return ErrEmptyReply
		}
		var template *channels.TemplateReply
		if in.Template != "" {
			t, rendered, err := s.renderTemplate(acct.Slug, in)
			if err != nil {
				return err
			}
			text, template = rendered, &t
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
				if prior.CaseID != c.ID || prior.Body != text {
					return ErrIdempotencyKeyReused
				}
				written, err = readMessage(tx, prior.ID)
				return err
			}
		}
		if c.Status == StatusClosed {
			return ErrClosed
		}
		if in.SeenMessageID > 0 {
			moved, err := movedOn(tx, c.ID, in.SeenMessageID, actor.UserID)
			if err != nil {
				return err
			}
			if moved {
				return ErrConversationMoved
			}
		}
		out, err := s.address(tx, c, acct.Channel, acct.Slug, in, text)
		if err != nil {
			return err
		}
		out.Template = template
		msg := &store.Message{
			CaseID:           c.ID,
			ChannelAccountID: c.ChannelAccountID,
			Direction:        "outbound",
			Visibility:       string(in.Visibility),
			Body:             text,
			InReplyTo:        out.InReplyTo,
			DeliveryStatus:   "queued",
			ExternalIDs:      []string{},
		}
		if actor.UserID != 0 {
			msg.AuthorUserID = &actor.UserID
		}
		if in.IdempotencyKey != "" {
			msg.IdempotencyKey = &in.IdempotencyKey
		}
		if err := insertMessage(tx, msg); err != nil {
			return err
		}
		out.MessageID = msg.ID
		payload, err := json.Marshal(out)
		if err != nil {
			return err
		}
		if err := tx.Omit("CreatedAt").Create(&store.OutboxEntry{
			Subject: s.names.OutboundSubject(acct.Channel, acct.Slug),
			MsgID:   fmt.Sprintf("outbound-%d", msg.ID),
			Payload: payload,
		}).Error; err != nil {
			return err
		}
		// The first response is set by the sender, when the network
		// accepts the reply.
		updates := map[string]any{"updated_at": gorm.Expr("now()")}
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
		if written, err = readMessage(tx, msg.ID); err != nil {
			return err
		}
		return s.emit(tx, Event{Kind: EventReplied, CaseID: c.ID, Reference: c.Reference, Team: s.teamSlug(tx, c.TeamID),
			Channel: c.Channel, Status: c.Status, MessageID: msg.ID, At: written.CreatedAt})
	})
	if err != nil {
		return Message{}, err
	}
	s.wake()
	return written, nil
}

// EventNoteAdded announces an internal note on a case.
const EventNoteAdded = "note_added"

// ErrEmptyReply is a reply with neither text nor a template.
var ErrEmptyReply = errors.New("the reply has no text")

// ErrEmptyNote is a note with no text.
var ErrEmptyNote = errors.New("note text is empty")

// AddNote stores an internal note on a case: a message with direction
// note, shown with the conversation and never sent to the resident. A
// closed case takes no more notes.
func (s *Service) AddNote(ctx context.Context, actor Actor, ref, text string) (Message, error) {
	if strings.TrimSpace(text) == "" {
		return Message{}, ErrEmptyNote
	}
	var written Message
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		c, err := lockCase(tx, ref)
		if err != nil {
			return err
		}
		if err := check(actor, c.ID, c.TeamID, ActNote); err != nil {
			return err
		}
		if c.Status == StatusClosed {
			return ErrClosed
		}
		msg := &store.Message{
			CaseID:           c.ID,
			ChannelAccountID: c.ChannelAccountID,
			Direction:        "note",
			Visibility:       "private",
			Body:             text,
			// Nothing is ever sent for a note: the sender takes only
			// queued replies, and a note has no outbox row.
			DeliveryStatus: "received",
			ExternalIDs:    []string{},
		}
		if actor.UserID != 0 {
			msg.AuthorUserID = &actor.UserID
		}
		if err := insertMessage(tx, msg); err != nil {
			return err
		}
		if err := tx.Model(&store.Case{}).Where("id = ?", c.ID).Update("updated_at", gorm.Expr("now()")).Error; err != nil {
			return err
		}
		if err := audit(tx, actor, "case.note_added", c.ID, map[string]any{"message_id": msg.ID}); err != nil {
			return err
		}
		if written, err = readMessage(tx, msg.ID); err != nil {
			return err
		}
		return s.emit(tx, Event{Kind: EventNoteAdded, CaseID: c.ID, Reference: c.Reference, Team: s.teamSlug(tx, c.TeamID),
			Channel: c.Channel, Status: c.Status, MessageID: msg.ID, At: written.CreatedAt})
	})
	if err != nil {
		return Message{}, s.auditDenied(ctx, actor, err)
	}
	s.wake()
	return written, nil
}

// insertMessage writes an adviser's message; its created_at is the
// database's clock.
func insertMessage(tx *gorm.DB, msg *store.Message) error {
	return tx.Omit("DedupeKey", "ContactIdentityID", "SentAt", "NetworkSentAt", "ReceivedAt", "Raw", "CreatedAt").Create(msg).Error
}

// readMessage reads a message as the API shows it, on tx.
func readMessage(tx *gorm.DB, id int64) (Message, error) {
	var row messageRow
	if err := tx.Raw(messageSelect+` WHERE id = ?`, id).Scan(&row).Error; err != nil {
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
	var d Detail
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		c, err := lockCase(tx, ref)
		if err != nil {
			return err
		}
		if err := check(actor, c.ID, c.TeamID, ActStatus); err != nil {
			return err
		}
		if c.Status == status {
			return ErrStatusUnchanged
		}
		if c.Status == StatusClosed || status == StatusNew {
			return fmt.Errorf("%w: from %s to %s", ErrInvalidTransition, c.Status, status)
		}
		now := gorm.Expr("now()")
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
		if err := s.statusClocks(tx, c.ID, c.Status, status, time.Now()); err != nil {
			return err
		}
		if resolves := status == StatusResolved || (status == StatusClosed && c.ResolvedAt == nil); resolves {
			var resolver *int64
			if actor.UserID != 0 {
				resolver = &actor.UserID
			}
			var now time.Time // the transaction's, as resolved_at's
			if err := tx.Raw(`SELECT now()`).Scan(&now).Error; err != nil {
				return err
			}
			if err := s.RecordResolution(tx, c.ID, resolver, now); err != nil {
				return err
			}
		}
		if err := audit(tx, actor, "case.status_changed", c.ID, map[string]any{"from": c.Status, "to": status}); err != nil {
			return err
		}
		if d, err = readDetail(tx, c.ID); err != nil {
			return err
		}
		return s.emit(tx, Event{Kind: EventStatusChanged, CaseID: c.ID, Reference: c.Reference,
			Team: d.Team, Channel: c.Channel, Status: status, At: d.UpdatedAt})
	})
	if err != nil {
		return Detail{}, s.auditDenied(ctx, actor, err)
	}
	s.wake()
	return d, nil
}

// Assignment says who works on a case. A nil AssigneeID with Unassign set
// takes the case off its adviser; an empty Team keeps the case's team.
type Assignment struct {
	AssigneeID *int64
	Unassign   bool
	Team       string
	// Expect, when set, is the assignment the request was made against:
	// ExpectUnassigned or ExpectAssignee must still hold, or the request
	// fails with ErrAssignmentChanged and changes nothing. A page's "Take
	// case" and "Give back" use it, so that an adviser who pressed it after
	// a colleague took the case neither takes it from them nor is refused
	// as if they had tried to.
	Expect           bool
	ExpectUnassigned bool
	ExpectAssignee   int64
}

// ErrAssignmentChanged is an assignment made against one that no longer
// holds: someone else took or gave back the case meanwhile.
var ErrAssignmentChanged = errors.New("the case's assignment changed meanwhile")

// ErrAssigneeNotInTeam is an assignee who does not belong to the case's
// team, and so could not see the case.
var ErrAssigneeNotInTeam = errors.New("the assignee does not belong to the case's team")

// Assign sets a case's adviser and, optionally, moves it to another team.
// Advisers may take an unassigned case or give back their own; supervisors
// may also assign anyone in the case's team and move cases; the assignee
// must belong to the case's team (or be an admin). A case moved to a team
// its adviser does not belong to loses its adviser. A closed case is not
// reassigned or moved.
func (s *Service) Assign(ctx context.Context, actor Actor, ref string, a Assignment) (Detail, error) {
	var d Detail
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		c, err := lockCase(tx, ref)
		if err != nil {
			return err
		}
		if a.Expect {
			switch {
			case a.ExpectUnassigned && c.AssigneeID != nil,
				!a.ExpectUnassigned && (c.AssigneeID == nil || *c.AssigneeID != a.ExpectAssignee):
				if !actor.Sees(c.TeamID) {
					return &denied{err: ErrNotFound, caseID: c.ID, action: ActAssignSelf}
				}
				return ErrAssignmentChanged
			}
		}
		// What the request asks for: moving the case, and taking or giving
		// back one's own case or assigning someone else's.
		var needs []Action
		if a.Team != "" && a.Team != s.teamSlug(tx, c.TeamID) {
			needs = append(needs, ActMove)
		}
		mine := func(id *int64) bool { return id == nil || *id == actor.UserID }
		switch {
		case a.Unassign && mine(c.AssigneeID), a.AssigneeID != nil && *a.AssigneeID == actor.UserID && mine(c.AssigneeID):
			needs = append(needs, ActAssignSelf)
		case a.Unassign, a.AssigneeID != nil:
			needs = append(needs, ActAssignTeam)
		}
		if len(needs) == 0 {
			needs = append(needs, ActAssignSelf)
		}
		for _, act := range needs {
			if err := check(actor, c.ID, c.TeamID, act); err != nil {
				return err
			}
		}
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
		}
		if c.Status == StatusClosed {
			return ErrClosed
		}
		if a.AssigneeID != nil && *a.AssigneeID == actor.UserID && !actor.Can(ActAssignTeam) &&
			(c.AssigneeID == nil || *c.AssigneeID != actor.UserID) {
			// An adviser taking a case is held to the team's cap, as Next is.
			if err := withinCap(tx, actor.UserID, teamID); err != nil {
				return err
			}
		}
		assignee, droppedOnMove := c.AssigneeID, false
		switch {
		case a.Unassign:
			assignee = nil
		case a.AssigneeID != nil:
			if err := eligible(tx, *a.AssigneeID, teamID); err != nil {
				return err
			}
			assignee = a.AssigneeID
		case teamID != c.TeamID && c.AssigneeID != nil:
			switch err := eligible(tx, *c.AssigneeID, teamID); {
			case errors.Is(err, ErrAssigneeNotInTeam), errors.Is(err, ErrUnknownAssignee):
				assignee, droppedOnMove = nil, true
			case err != nil:
				return err
			}
		}
		if err := tx.Model(&store.Case{}).Where("id = ?", c.ID).Updates(map[string]any{
			"updated_at": gorm.Expr("now()"), "team_id": teamID, "assignee_id": assignee,
		}).Error; err != nil {
			return err
		}
		if teamID != c.TeamID {
			// Another team may have another SLA policy.
			if err := s.recomputeClocks(tx, c.ID); err != nil {
				return err
			}
		}
		if err := audit(tx, actor, "case.assigned", c.ID, map[string]any{
			"assignee_id": a.AssigneeID, "unassign": a.Unassign, "team": a.Team,
			"previous_assignee_id": c.AssigneeID, "previous_team_id": c.TeamID, "unassigned_by_move": droppedOnMove,
		}); err != nil {
			return err
		}
		if d, err = readDetail(tx, c.ID); err != nil {
			return err
		}
		return s.emit(tx, Event{Kind: EventAssigned, CaseID: c.ID, Reference: c.Reference,
			Team: d.Team, Channel: c.Channel, Status: c.Status, At: d.UpdatedAt})
	})
	if err != nil {
		return Detail{}, s.auditDenied(ctx, actor, err)
	}
	s.wake()
	return d, nil
}

// eligible checks that a user may be assigned a case of the team: an
// active admin, or an active user who belongs to the team.
func eligible(tx *gorm.DB, userID, teamID int64) error {
	var u struct {
		ID     int64
		Role   string
		Member bool
	}
	if err := tx.Raw(`SELECT u.id, u.role,
		EXISTS (SELECT 1 FROM user_teams m WHERE m.user_id = u.id AND m.team_id = ?) AS member
		FROM users u WHERE u.id = ? AND u.disabled_at IS NULL`, teamID, userID).Scan(&u).Error; err != nil {
		return err
	}
	switch {
	case u.ID == 0:
		return ErrUnknownAssignee
	case !u.Member && !EveryTeam(u.Role):
		return ErrAssigneeNotInTeam
	}
	return nil
}

// withinCap refuses (ErrAtCapacity) a case for an adviser who already
// holds the team's cap of open cases. The adviser's user row is locked
// first, so that two takes of theirs at once count each other.
func withinCap(tx *gorm.DB, userID, teamID int64) error {
	var locked int64
	if err := tx.Raw(`SELECT id FROM users WHERE id = ? FOR UPDATE`, userID).Scan(&locked).Error; err != nil {
		return err
	}
	var full bool
	if err := tx.Raw(`SELECT t.max_open_per_adviser IS NOT NULL AND (
			SELECT count(*) FROM cases o WHERE o.assignee_id = ? AND o.team_id = t.id
			AND o.status IN ('new', 'open', 'awaiting_resident')) >= t.max_open_per_adviser
		FROM teams t WHERE t.id = ?`, userID, teamID).Scan(&full).Error; err != nil {
		return err
	}
	if full {
		return ErrAtCapacity
	}
	return nil
}
