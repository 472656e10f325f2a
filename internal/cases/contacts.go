package cases

import (
	"context"
	"errors"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/store"
)

// A contact is a resident; its identities are how the resident appears on
// each network (channel, external id). Inbound messages make one contact
// per new identity and never merge two: an adviser links identities that
// are the same person into one contact, and unlinks them again. Every case
// belongs to the contact of its identity (cases.contact_id follows
// contact_identities.contact_id), so a contact lists its cases on every
// channel.
//
// A contact is the actor's to see when they see one of its cases (admins
// see every contact); another is answered as missing, as another team's
// case is, and the attempt is audited.

// Errors of contacts.
var (
	ErrContactNotFound  = errors.New("contact not found")
	ErrIdentityNotFound = errors.New("contact identity not found")
	// ErrOnlyIdentity is an unlink of a contact's last identity: the
	// contact would be left with nothing.
	ErrOnlyIdentity = errors.New("the identity is the contact's only one, so there is nothing to unlink it from; link it to another contact instead")
)

// ContactDetail is a resident: every identity, the cases of the actor's
// teams on every channel, and how many others there are.
type ContactDetail struct {
	ID          int64             `json:"id"`
	DisplayName string            `json:"display_name"`
	Tags        []string          `json:"tags"`
	Identities  []ContactIdentity `json:"identities"`
	// Cases are the contact's cases the actor may see, latest message
	// first; HiddenCases counts the others (other teams').
	Cases       []ContactCase `json:"cases"`
	HiddenCases int           `json:"hidden_cases"`
}

// ContactIdentity is one of a contact's identities.
type ContactIdentity struct {
	ID          int64  `json:"id"`
	Channel     string `json:"channel"`
	ExternalID  string `json:"external_id"`
	Handle      string `json:"handle"`
	DisplayName string `json:"display_name"`
}

// ContactCase is a case as a contact lists it.
type ContactCase struct {
	ID        int64  `json:"id"`
	Reference string `json:"reference"`
	Channel   string `json:"channel"`
	Status    string `json:"status"`
	Team      string `json:"team"`
	// ContactIdentityID is the identity the case is with.
	ContactIdentityID int64     `json:"contact_identity_id"`
	FirstMessageAt    time.Time `json:"first_message_at"`
	LastMessageAt     time.Time `json:"last_message_at"`
}

// Suggestion is an identity of another contact that is likely the same
// person: on a channel whose identities are phone numbers, the same
// number (digits only) as one of the contact's identities. A suggestion
// is only shown; an adviser links it or not.
type Suggestion struct {
	Identity           ContactIdentity `json:"identity"`
	ContactID          int64           `json:"contact_id"`
	ContactDisplayName string          `json:"contact_display_name"`
	// MatchesIdentityID is the contact's own identity with the same number.
	MatchesIdentityID int64  `json:"matches_identity_id"`
	Reason            string `json:"reason"`
}

// SuggestSamePhoneNumber is the reason of a phone number match.
const SuggestSamePhoneNumber = "same_phone_number"

// contactDenied is a refused attempt on a contact: one the actor may not
// see, answered as missing (err). Every one is audited.
type contactDenied struct {
	err       error
	contactID int64
	action    Action
}

func (d *contactDenied) Error() string { return d.err.Error() }
func (d *contactDenied) Unwrap() error { return d.err }

// auditContactDenied records a refused attempt on a contact, outside the
// transaction that refused it, and returns err unchanged; a refusal by
// role is audited as auditDenied does.
func (s *Service) auditContactDenied(ctx context.Context, actor Actor, err error) error {
	var d *contactDenied
	if !errors.As(err, &d) {
		return s.auditDenied(ctx, actor, err)
	}
	if aerr := audit(s.ctxDB(ctx), actor, "contact.access_denied", 0, map[string]any{
		"contact_id": d.contactID, "action": d.action, "reason": "other_team",
	}); aerr != nil {
		return aerr
	}
	return err
}

// seesContact says whether the actor sees the contact: an admin always,
// anyone else when one of its cases is in their teams.
func seesContact(db *gorm.DB, actor Actor, contactID int64) (bool, error) {
	if EveryTeam(actor.Role) {
		return true, nil
	}
	var sees bool
	err := db.Raw(`SELECT EXISTS (SELECT 1 FROM cases WHERE contact_id = ? AND team_id = ANY(?))`,
		contactID, store.Int64s(actor.TeamIDs)).Scan(&sees).Error
	return sees, err
}

// Contact returns a contact with its identities and the cases the actor
// may see. The read is audited.
func (s *Service) Contact(ctx context.Context, actor Actor, contactID int64) (ContactDetail, error) {
	if !actor.Can(ActRead) {
		return ContactDetail{}, s.auditDenied(ctx, actor, &denied{err: ErrForbidden, action: ActRead})
	}
	db := s.ctxDB(ctx)
	if err := s.checkContact(db, actor, contactID, ActRead, ErrContactNotFound); err != nil {
		return ContactDetail{}, s.auditContactDenied(ctx, actor, err)
	}
	d, err := readContact(db, actor, contactID)
	if err != nil {
		return ContactDetail{}, err
	}
	err = audit(db, actor, "contact.viewed", 0, map[string]any{
		"contact_id": contactID, "cases": len(d.Cases), "hidden_cases": d.HiddenCases,
	})
	return d, err
}

// checkContact refuses act on a contact that does not exist (notFound) or
// that the actor does not see (notFound, audited).
func (s *Service) checkContact(db *gorm.DB, actor Actor, contactID int64, act Action, notFound error) error {
	var exists bool
	if err := db.Raw(`SELECT EXISTS (SELECT 1 FROM contacts WHERE id = ?)`, contactID).Scan(&exists).Error; err != nil {
		return err
	}
	if !exists {
		return notFound
	}
	sees, err := seesContact(db, actor, contactID)
	if err != nil {
		return err
	}
	if !sees {
		return &contactDenied{err: notFound, contactID: contactID, action: act}
	}
	return nil
}

// readContact reads a contact on db, which may be the transaction that
// just changed it.
func readContact(db *gorm.DB, actor Actor, contactID int64) (ContactDetail, error) {
	var row struct {
		ID          int64
		DisplayName string
		Tags        store.Strings `gorm:"type:text[]"`
	}
	if err := db.Raw(`SELECT id, display_name, tags FROM contacts WHERE id = ?`, contactID).Scan(&row).Error; err != nil {
		return ContactDetail{}, err
	}
	if row.ID == 0 {
		return ContactDetail{}, ErrContactNotFound
	}
	d := ContactDetail{ID: row.ID, DisplayName: row.DisplayName, Tags: []string(row.Tags),
		Identities: []ContactIdentity{}, Cases: []ContactCase{}}
	if d.Tags == nil {
		d.Tags = []string{}
	}
	if err := db.Raw(`SELECT id, channel, external_id, handle, display_name FROM contact_identities
		WHERE contact_id = ? ORDER BY id`, contactID).Scan(&d.Identities).Error; err != nil {
		return ContactDetail{}, err
	}
	q := `SELECT c.id, c.reference, c.channel, c.status, t.slug AS team, c.contact_identity_id,
		c.first_message_at, c.last_message_at
		FROM cases c JOIN teams t ON t.id = c.team_id WHERE c.contact_id = ?`
	args := []any{contactID}
	hidden := `SELECT 0`
	var hiddenArgs []any
	if !EveryTeam(actor.Role) {
		q += ` AND c.team_id = ANY(?)`
		args = append(args, store.Int64s(actor.TeamIDs))
		hidden = `SELECT count(*) FROM cases WHERE contact_id = ? AND NOT (team_id = ANY(?))`
		hiddenArgs = []any{contactID, store.Int64s(actor.TeamIDs)}
	}
	if err := db.Raw(q+` ORDER BY c.last_message_at DESC, c.id DESC`, args...).Scan(&d.Cases).Error; err != nil {
		return ContactDetail{}, err
	}
	if err := db.Raw(hidden, hiddenArgs...).Scan(&d.HiddenCases).Error; err != nil {
		return ContactDetail{}, err
	}
	return d, nil
}

// errContactMoved is an identity that moved to another contact between
// reading it and locking its contact: the link starts again.
var errContactMoved = errors.New("the identity moved to another contact")

// LinkIdentity moves an identity, with its cases, into a contact: the
// adviser says the two are the same resident. A contact left with no
// identity is deleted, its tags carried over, since nothing refers to it
// any more. Linking an identity already the contact's changes nothing.
// The actor must see both contacts. The change is audited.
func (s *Service) LinkIdentity(ctx context.Context, actor Actor, contactID, identityID int64) (ContactDetail, error) {
	if !actor.Can(ActLinkContacts) {
		return ContactDetail{}, s.auditDenied(ctx, actor, &denied{err: ErrForbidden, action: ActLinkContacts})
	}
	var d ContactDetail
	var err error
	for range 3 {
		err = store.Write(ctx, s.db, func(tx *gorm.DB) error {
			if err := s.link(tx, actor, contactID, identityID); err != nil {
				return err
			}
			d, err = readContact(tx, actor, contactID)
			return err
		})
		if !errors.Is(err, errContactMoved) {
			break
		}
	}
	if errors.Is(err, errContactMoved) {
		err = ErrIdentityNotFound // moved three times over: as good as gone
	}
	return d, s.auditContactDenied(ctx, actor, err)
}

func (s *Service) link(tx *gorm.DB, actor Actor, contactID, identityID int64) error {
	var from int64
	if err := tx.Raw(`SELECT contact_id FROM contact_identities WHERE id = ?`, identityID).Scan(&from).Error; err != nil {
		return err
	}
	if from == 0 {
		return ErrIdentityNotFound
	}
	// Both contacts, in id order, so two links sharing one wait for each
	// other rather than deadlock. FOR NO KEY UPDATE, not FOR UPDATE: it
	// does not wait for inbound transactions that only insert cases
	// referring to the contact, which already hold the identity's lock
	// this transaction takes next.
	var locked []int64
	if err := tx.Raw(`SELECT id FROM contacts WHERE id IN (?, ?) ORDER BY id FOR NO KEY UPDATE`,
		contactID, from).Scan(&locked).Error; err != nil {
		return err
	}
	if !slices.Contains(locked, contactID) {
		return ErrContactNotFound
	}
	if !slices.Contains(locked, from) {
		return errContactMoved
	}
	var ident store.ContactIdentity
	if err := tx.Raw(`SELECT * FROM contact_identities WHERE id = ? FOR UPDATE`, identityID).Scan(&ident).Error; err != nil {
		return err
	}
	if ident.ContactID != from {
		return errContactMoved
	}
	for _, c := range []struct {
		id       int64
		notFound error
	}{{contactID, ErrContactNotFound}, {from, ErrIdentityNotFound}} {
		sees, err := seesContact(tx, actor, c.id)
		if err != nil {
			return err
		}
		if !sees {
			return &contactDenied{err: c.notFound, contactID: c.id, action: ActLinkContacts}
		}
	}
	if from == contactID {
		return nil // already linked
	}

	if err := tx.Exec(`UPDATE contact_identities SET contact_id = ?, updated_at = now() WHERE id = ?`,
		contactID, identityID).Error; err != nil {
		return err
	}
	moved := tx.Exec(`UPDATE cases SET contact_id = ? WHERE contact_identity_id = ?`, contactID, identityID)
	if moved.Error != nil {
		return moved.Error
	}
	var left int64
	if err := tx.Raw(`SELECT count(*) FROM contact_identities WHERE contact_id = ?`, from).Scan(&left).Error; err != nil {
		return err
	}
	deleted := false
	if left == 0 {
		if err := absorb(tx, contactID, from); err != nil {
			return err
		}
		res := tx.Exec(`DELETE FROM contacts ct WHERE ct.id = ?
			AND NOT EXISTS (SELECT 1 FROM cases WHERE contact_id = ct.id)
			AND NOT EXISTS (SELECT 1 FROM contact_identities WHERE contact_id = ct.id)`, from)
		if res.Error != nil {
			return res.Error
		}
		deleted = res.RowsAffected == 1
	}
	if err := tx.Exec(`UPDATE contacts SET updated_at = now() WHERE id IN (?, ?)`, contactID, from).Error; err != nil {
		return err
	}
	return audit(tx, actor, "contact.linked", 0, map[string]any{
		"contact_id": contactID, "from_contact_id": from, "identity_id": identityID,
		"cases_moved": moved.RowsAffected, "from_contact_deleted": deleted,
	})
}

// absorb gives contact what the emptied contact from held of the
// resident: its tags (a vulnerable resident stays one), and its name when
// contact has none.
func absorb(tx *gorm.DB, contactID, from int64) error {
	var rows []struct {
		ID          int64
		DisplayName string
		Tags        store.Strings `gorm:"type:text[]"`
	}
	if err := tx.Raw(`SELECT id, display_name, tags FROM contacts WHERE id IN (?, ?)`, contactID, from).Scan(&rows).Error; err != nil {
		return err
	}
	var into, gone struct {
		name string
		tags []string
	}
	for _, r := range rows {
		if r.ID == contactID {
			into.name, into.tags = r.DisplayName, r.Tags
		} else {
			gone.name, gone.tags = r.DisplayName, r.Tags
		}
	}
	tags := slices.Clone(into.tags)
	for _, t := range gone.tags {
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	name := into.name
	if name == "" {
		name = gone.name
	}
	if tags == nil {
		tags = []string{}
	}
	return tx.Exec(`UPDATE contacts SET display_name = ?, tags = ? WHERE id = ?`, name, store.Strings(tags), contactID).Error
}

// UnlinkIdentity takes an identity, with its cases, out of a contact into
// a new contact of its own, named as the identity is: the adviser says it
// is someone else. A contact's only identity stays (ErrOnlyIdentity). The
// change is audited; the answer is the new contact.
func (s *Service) UnlinkIdentity(ctx context.Context, actor Actor, contactID, identityID int64) (ContactDetail, error) {
	if !actor.Can(ActLinkContacts) {
		return ContactDetail{}, s.auditDenied(ctx, actor, &denied{err: ErrForbidden, action: ActLinkContacts})
	}
	var d ContactDetail
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		var locked int64
		if err := tx.Raw(`SELECT id FROM contacts WHERE id = ? FOR NO KEY UPDATE`, contactID).Scan(&locked).Error; err != nil {
			return err
		}
		if locked == 0 {
			return ErrContactNotFound
		}
		if err := s.checkContact(tx, actor, contactID, ActLinkContacts, ErrContactNotFound); err != nil {
			return err
		}
		var ident store.ContactIdentity
		if err := tx.Raw(`SELECT * FROM contact_identities WHERE id = ? AND contact_id = ? FOR UPDATE`,
			identityID, contactID).Scan(&ident).Error; err != nil {
			return err
		}
		if ident.ID == 0 {
			return ErrIdentityNotFound
		}
		var n int64
		if err := tx.Raw(`SELECT count(*) FROM contact_identities WHERE contact_id = ?`, contactID).Scan(&n).Error; err != nil {
			return err
		}
		if n <= 1 {
			return ErrOnlyIdentity
		}
		name := ident.DisplayName
		if name == "" {
			name = ident.Handle
		}
		var newID int64
		if err := tx.Raw(`INSERT INTO contacts (display_name) VALUES (?) RETURNING id`, name).Scan(&newID).Error; err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE contact_identities SET contact_id = ?, updated_at = now() WHERE id = ?`,
			newID, identityID).Error; err != nil {
			return err
		}
		moved := tx.Exec(`UPDATE cases SET contact_id = ? WHERE contact_identity_id = ?`, newID, identityID)
		if moved.Error != nil {
			return moved.Error
		}
		if err := tx.Exec(`UPDATE contacts SET updated_at = now() WHERE id = ?`, contactID).Error; err != nil {
			return err
		}
		if err := audit(tx, actor, "contact.unlinked", 0, map[string]any{
			"contact_id": contactID, "new_contact_id": newID, "identity_id": identityID, "cases_moved": moved.RowsAffected,
		}); err != nil {
			return err
		}
		var err error
		d, err = readContact(tx, actor, newID)
		return err
	})
	return d, s.auditContactDenied(ctx, actor, err)
}

// Suggestions lists identities of other contacts the actor sees that are
// likely the contact's resident: on channels whose identities are phone
// numbers (Configuration.PhoneChannels), the same digits as one of the
// contact's. Nothing is linked. The read is audited.
func (s *Service) Suggestions(ctx context.Context, actor Actor, contactID int64) ([]Suggestion, error) {
	if !actor.Can(ActRead) {
		return nil, s.auditDenied(ctx, actor, &denied{err: ErrForbidden, action: ActRead})
	}
	db := s.ctxDB(ctx)
	if err := s.checkContact(db, actor, contactID, ActRead, ErrContactNotFound); err != nil {
		return nil, s.auditContactDenied(ctx, actor, err)
	}
	s.mu.RLock()
	phones := store.Strings(s.cfg.PhoneChannels)
	s.mu.RUnlock()
	out := []Suggestion{}
	if len(phones) > 0 {
		// The digits expression is the one migrations/00011 indexes.
		q := `SELECT o.id, o.channel, o.external_id, o.handle, o.display_name, o.contact_id,
			oc.display_name AS contact_display_name, k.id AS matches_identity_id
			FROM contact_identities k
			JOIN contact_identities o
			  ON regexp_replace(o.external_id, '\D', '', 'g') = regexp_replace(k.external_id, '\D', '', 'g')
			 AND o.channel = ANY(?::text[]) AND o.contact_id <> k.contact_id
			JOIN contacts oc ON oc.id = o.contact_id
			WHERE k.contact_id = ? AND k.channel = ANY(?::text[]) AND regexp_replace(k.external_id, '\D', '', 'g') <> ''`
		args := []any{phones, contactID, phones}
		if !EveryTeam(actor.Role) {
			q += ` AND EXISTS (SELECT 1 FROM cases vc WHERE vc.contact_id = o.contact_id AND vc.team_id = ANY(?))`
			args = append(args, store.Int64s(actor.TeamIDs))
		}
		var rows []struct {
			ContactIdentity
			ContactID          int64
			ContactDisplayName string
			MatchesIdentityID  int64
		}
		if err := db.Raw(q+` ORDER BY o.id, k.id`, args...).Scan(&rows).Error; err != nil {
			return nil, err
		}
		for i, r := range rows {
			if i > 0 && rows[i-1].ID == r.ID {
				continue // the same number on two of the contact's identities
			}
			out = append(out, Suggestion{Identity: r.ContactIdentity, ContactID: r.ContactID,
				ContactDisplayName: r.ContactDisplayName, MatchesIdentityID: r.MatchesIdentityID, Reason: SuggestSamePhoneNumber})
		}
	}
	err := audit(db, actor, "contact.suggestions_listed", 0, map[string]any{"contact_id": contactID, "count": len(out)})
	return out, err
}
