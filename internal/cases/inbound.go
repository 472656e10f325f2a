package cases

import (
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/store"
)

// Stored is what happened to one inbound message.
type Stored struct {
	CaseID    int64
	MessageID int64
	// Created is true when the message opened a new case.
	Created bool
	// Duplicate is true when the message was already stored.
	Duplicate bool
	Channel   string
}

// StoreInbound records one resident message in tx: it finds or creates the
// resident's identity, threads the message onto its case (or opens a new
// case), stores it and queues the case event. A message already stored
// (same account and dedupe key) changes nothing.
func (s *Service) StoreInbound(tx *gorm.DB, in channels.Inbound) (Stored, error) {
	if err := in.Validate(); err != nil {
		return Stored{}, err
	}
	acct, err := s.account(tx, in.Account)
	if err != nil {
		return Stored{}, err
	}
	if acct.Channel != in.Channel {
		return Stored{}, fmt.Errorf("%w: %q is a %s account, message is from %s", ErrUnknownAccount, in.Account, acct.Channel, in.Channel)
	}
	res := Stored{Channel: in.Channel}

	var existing struct{ ID, CaseID int64 }
	if err := tx.Raw(`SELECT id, case_id FROM messages WHERE channel_account_id = ? AND dedupe_key = ?`,
		acct.ID, in.DedupeKey).Scan(&existing).Error; err != nil {
		return Stored{}, err
	}
	if existing.ID != 0 {
		return Stored{CaseID: existing.CaseID, MessageID: existing.ID, Duplicate: true, Channel: in.Channel}, nil
	}

	identity, err := upsertIdentity(tx, in.Channel, in.Author)
	if err != nil {
		return Stored{}, err
	}

	c, err := s.findThread(tx, acct, identity, in)
	if err != nil {
		return Stored{}, err
	}
	now := time.Now().UTC()
	event := EventMessageAdded
	if c == nil || c.Status == StatusClosed {
		c = &store.Case{
			Status:            StatusNew,
			Channel:           in.Channel,
			ChannelAccountID:  acct.ID,
			ContactID:         identity.ContactID,
			ContactIdentityID: identity.ID,
			TeamID:            acct.TeamID,
			Subject:           truncate(in.Text, 120),
			FirstMessageAt:    in.SentAt,
			LastMessageAt:     in.SentAt,
		}
		if err := tx.Omit("AssigneeID", "FirstResponseAt", "ResolvedAt", "ClosedAt").Create(c).Error; err != nil {
			return Stored{}, err
		}
		if err := tx.Raw(`SELECT reference FROM cases WHERE id = ?`, c.ID).Scan(&c.Reference).Error; err != nil {
			return Stored{}, err
		}
		event = EventCreated
		res.Created = true
	} else {
		updates := map[string]any{"updated_at": now}
		if in.SentAt.After(c.LastMessageAt) {
			updates["last_message_at"] = in.SentAt
		}
		switch c.Status {
		case StatusResolved:
			updates["status"] = StatusOpen
			updates["resolved_at"] = nil
			updates["reopened_count"] = gorm.Expr("reopened_count + 1")
			c.Status = StatusOpen
			event = EventReopened
		case StatusAwaitingResident:
			// The resident answered: the case is with the council again.
			updates["status"] = StatusOpen
			c.Status = StatusOpen
		}
		if err := tx.Model(&store.Case{}).Where("id = ?", c.ID).Updates(updates).Error; err != nil {
			return Stored{}, err
		}
	}

	dedupe := in.DedupeKey
	received := in.ReceivedAt
	sent := in.SentAt
	msg := &store.Message{
		CaseID:            c.ID,
		ChannelAccountID:  acct.ID,
		Direction:         "inbound",
		Visibility:        string(in.Visibility),
		Body:              in.Text,
		DedupeKey:         &dedupe,
		ExternalID:        in.ExternalID,
		ExternalIDs:       []string{in.ExternalID},
		ConversationID:    in.ConversationID,
		InReplyTo:         in.InReplyTo,
		ContactIdentityID: &identity.ID,
		DeliveryStatus:    "received",
		NetworkSentAt:     &sent,
		ReceivedAt:        &received,
		Raw:               nullJSON(in.Raw),
	}
	if err := tx.Omit("AuthorUserID", "SentAt").Create(msg).Error; err != nil {
		return Stored{}, err
	}
	res.CaseID, res.MessageID = c.ID, msg.ID
	if err := s.emit(tx, Event{
		Kind: event, CaseID: c.ID, Reference: c.Reference, Team: s.teamSlug(tx, acct, c.TeamID),
		Channel: c.Channel, Status: c.Status, MessageID: msg.ID, At: now,
	}); err != nil {
		return Stored{}, err
	}
	return res, nil
}

func nullJSON(raw []byte) []byte {
	if len(raw) == 0 {
		return nil
	}
	return raw
}

// teamSlug is the slug of the case's team; usually the account's own.
func (s *Service) teamSlug(tx *gorm.DB, acct account, teamID int64) string {
	if teamID == acct.TeamID {
		return acct.TeamSlug
	}
	var slug string
	tx.Raw(`SELECT slug FROM teams WHERE id = ?`, teamID).Scan(&slug)
	return slug
}

// upsertIdentity finds or creates the resident's identity on a network and
// locks its row until the transaction ends, so two messages from the same
// resident are threaded one after the other, never into two new cases.
func upsertIdentity(tx *gorm.DB, channel string, author channels.Identity) (store.ContactIdentity, error) {
	for range 3 {
		var id store.ContactIdentity
		err := tx.Raw(`UPDATE contact_identities
			SET handle = CASE WHEN ? <> '' THEN ? ELSE handle END,
			    display_name = CASE WHEN ? <> '' THEN ? ELSE display_name END,
			    updated_at = now()
			WHERE channel = ? AND external_id = ?
			RETURNING *`,
			author.Handle, author.Handle, author.DisplayName, author.DisplayName,
			channel, author.ExternalID).Scan(&id).Error
		if err != nil {
			return id, err
		}
		if id.ID != 0 {
			return id, nil
		}
		name := author.DisplayName
		if name == "" {
			name = author.Handle
		}
		contact := &store.Contact{DisplayName: name}
		if err := tx.Create(contact).Error; err != nil {
			return id, err
		}
		err = tx.Raw(`INSERT INTO contact_identities (contact_id, channel, external_id, handle, display_name)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (channel, external_id) DO NOTHING
			RETURNING *`,
			contact.ID, channel, author.ExternalID, author.Handle, author.DisplayName).Scan(&id).Error
		if err != nil {
			return id, err
		}
		if id.ID != 0 {
			return id, nil
		}
		// Another transaction created the identity first; drop our contact
		// and take theirs.
		if err := tx.Exec(`DELETE FROM contacts WHERE id = ?`, contact.ID).Error; err != nil {
			return id, err
		}
	}
	return store.ContactIdentity{}, errors.New("contact identity: could not create or find it")
}

// findThread returns the case a message belongs to, or nil for a new case:
//   - a public reply to a post we know (the resident's or ours) joins that
//     post's case; failing that, the conversation's latest case;
//   - a direct message joins the resident's open case on that account.
func (s *Service) findThread(tx *gorm.DB, acct account, identity store.ContactIdentity, in channels.Inbound) (*store.Case, error) {
	var caseID int64
	if in.InReplyTo != "" {
		if err := tx.Raw(`SELECT case_id FROM messages
			WHERE channel_account_id = ? AND external_ids @> ARRAY[?]::text[]
			ORDER BY id DESC LIMIT 1`, acct.ID, in.InReplyTo).Scan(&caseID).Error; err != nil {
			return nil, err
		}
	}
	if caseID == 0 && in.ConversationID != "" && in.Visibility == channels.Public {
		if err := tx.Raw(`SELECT case_id FROM messages
			WHERE channel_account_id = ? AND conversation_id = ?
			ORDER BY id DESC LIMIT 1`, acct.ID, in.ConversationID).Scan(&caseID).Error; err != nil {
			return nil, err
		}
	}
	if caseID == 0 && in.Visibility == channels.Private {
		if err := tx.Raw(`SELECT id FROM cases
			WHERE contact_identity_id = ? AND channel_account_id = ?
			  AND status IN ('new', 'open', 'awaiting_resident')
			ORDER BY last_message_at DESC LIMIT 1`, identity.ID, acct.ID).Scan(&caseID).Error; err != nil {
			return nil, err
		}
	}
	if caseID == 0 {
		return nil, nil
	}
	var c store.Case
	if err := tx.Raw(`SELECT * FROM cases WHERE id = ? FOR UPDATE`, caseID).Scan(&c).Error; err != nil {
		return nil, err
	}
	return &c, nil
}
