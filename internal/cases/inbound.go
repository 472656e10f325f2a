package cases

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
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

// StoreInbound records one resident message in tx. See StoreBatch.
func (s *Service) StoreInbound(tx *gorm.DB, in channels.Inbound) (Stored, error) {
	res, err := s.StoreBatch(tx, []channels.Inbound{in})
	if err != nil {
		return Stored{}, err
	}
	return res[0], nil
}

// StoreBatch records resident messages in tx, in order. For each message
// it finds or creates the resident's identity, threads the message onto its
// case (or opens a new case), stores it and queues the case event:
//   - a public reply to a post we know (the resident's or ours) joins that
//     post's case; failing that, the conversation's latest case;
//   - a direct message joins the resident's open case on that account;
//   - a message threaded onto a resolved case reopens it; onto a closed
//     case, it opens a new one.
//
// A message already stored (same account and dedupe key) changes nothing.
// The work is done set-wise, a fixed number of statements per batch
// whatever its size, which is what lets ingest keep up with bursts. Rows
// of the residents' identities and of the cases touched are locked until
// the transaction ends, so concurrent batches thread one after the other.
func (s *Service) StoreBatch(tx *gorm.DB, ins []channels.Inbound) ([]Stored, error) {
	b := &batch{svc: s, tx: tx, ins: ins, res: make([]Stored, len(ins)), accts: make([]account, len(ins))}
	for i := range ins {
		in := &b.ins[i]
		if err := in.Validate(); err != nil {
			return nil, err
		}
		acct, err := s.account(tx, in.Account)
		if err != nil {
			return nil, err
		}
		if acct.Channel != in.Channel {
			return nil, fmt.Errorf("%w: %q is a %s account, message is from %s", ErrUnknownAccount, in.Account, acct.Channel, in.Channel)
		}
		b.accts[i] = acct
		b.res[i].Channel = in.Channel
		sanitize(in)
	}
	steps := []func() error{b.dedupe, b.identities, b.lookups, b.thread, b.insertCases, b.updateCases, b.insertMessages, b.events}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return b.res, nil
}

// surrogateEscape finds \uD800–\uDFFF escapes, which jsonb refuses when
// they are not a valid pair.
var surrogateEscape = regexp.MustCompile(`\\u[dD][89abcdefABCDEF]`)

// sanitize replaces what PostgreSQL cannot store: NUL characters in text,
// and in the raw JSON the \u0000 escape and lone UTF-16 surrogates.
func sanitize(in *channels.Inbound) {
	clean := func(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }
	in.Text = clean(in.Text)
	in.Author.Handle = clean(in.Author.Handle)
	in.Author.DisplayName = clean(in.Author.DisplayName)
	if surrogateEscape.Match(in.Raw) {
		// Decoding turns invalid surrogates into U+FFFD; valid pairs
		// survive the round trip as the characters they encode.
		var v any
		dec := json.NewDecoder(bytes.NewReader(in.Raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err == nil {
			if b, err := json.Marshal(v); err == nil {
				in.Raw = b
			}
		}
	}
	if bytes.Contains(in.Raw, []byte(`\u0000`)) {
		in.Raw = bytes.ReplaceAll(in.Raw, []byte(`\u0000`), []byte(`\ufffd`))
	}
}

// batch is the working state of one StoreBatch call.
type batch struct {
	svc   *Service
	tx    *gorm.DB
	ins   []channels.Inbound
	res   []Stored
	accts []account

	dup      []bool
	dupOf    map[int]int             // a second copy in the batch → the first copy's index
	identity []store.ContactIdentity // per message
	caseOf   []*caseState            // per message
	// From the database, before this batch.
	byPost         map[acctKey]int64 // (account, network id) → case id
	byConversation map[acctKey]int64 // (account, conversation id) → case id
	openDM         map[acctKey]int64 // (account, identity id) → open case id
	bySibling      map[acctKey]int64 // (account, network id) → latest open case of a reply to it
	cases          map[int64]*caseState
	newCases       []*caseState
	messageIDs     []int64
}

type acctKey struct {
	account int64
	key     string
}

// caseState is a case as this batch leaves it.
type caseState struct {
	ID                int64
	Reference         string
	Status            string
	Channel           string
	TeamID            int64
	ContactIdentityID int64
	LastMessageAt     time.Time
	ResolvedAt        *time.Time
	ClosedAt          *time.Time
	existing          bool
	touched           bool
	reopens           int
	account           account
	contact           int64
	subject           string
	firstMessageAt    time.Time
}

func (b *batch) dedupe() error {
	b.dup = make([]bool, len(b.ins))
	accts, keys := make(store.Int64s, len(b.ins)), make(store.Strings, len(b.ins))
	for i, in := range b.ins {
		accts[i], keys[i] = b.accts[i].ID, in.DedupeKey
	}
	var rows []struct {
		ID, CaseID, ChannelAccountID int64
		DedupeKey                    string
	}
	if err := b.tx.Raw(`SELECT m.id, m.case_id, m.channel_account_id, m.dedupe_key
		FROM messages m JOIN unnest(?::bigint[], ?::text[]) AS k(account, key)
		  ON m.channel_account_id = k.account AND m.dedupe_key = k.key`, accts, keys).Scan(&rows).Error; err != nil {
		return err
	}
	stored := make(map[acctKey]Stored, len(rows))
	for _, r := range rows {
		stored[acctKey{r.ChannelAccountID, r.DedupeKey}] = Stored{CaseID: r.CaseID, MessageID: r.ID}
	}
	first := make(map[acctKey]int, len(b.ins))
	b.dupOf = map[int]int{}
	for i, in := range b.ins {
		k := acctKey{b.accts[i].ID, in.DedupeKey}
		if prev, ok := stored[k]; ok {
			b.dup[i] = true
			b.res[i].CaseID, b.res[i].MessageID, b.res[i].Duplicate = prev.CaseID, prev.MessageID, true
			continue
		}
		if j, ok := first[k]; ok { // a second copy in this batch
			b.dup[i] = true
			b.res[i].Duplicate = true
			b.dupOf[i] = j
			continue
		}
		first[k] = i
	}
	return nil
}

// identities finds or creates every author's identity and locks its row.
func (b *batch) identities() error {
	type idKey struct{ channel, externalID string }
	want := map[idKey]channels.Identity{}
	var order []idKey
	for i, in := range b.ins {
		if b.dup[i] {
			continue
		}
		k := idKey{in.Channel, in.Author.ExternalID}
		if _, ok := want[k]; !ok {
			order = append(order, k)
		}
		want[k] = in.Author // the latest handle and name win
	}
	found := map[idKey]store.ContactIdentity{}
	lookup := func(keys []idKey) error {
		chs, ids := make(store.Strings, len(keys)), make(store.Strings, len(keys))
		for i, k := range keys {
			chs[i], ids[i] = k.channel, k.externalID
		}
		var rows []store.ContactIdentity
		if err := b.tx.Raw(`SELECT ci.* FROM contact_identities ci
			JOIN unnest(?::text[], ?::text[]) AS k(channel, external_id)
			  ON ci.channel = k.channel AND ci.external_id = k.external_id
			ORDER BY ci.id FOR UPDATE OF ci`, chs, ids).Scan(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			found[idKey{r.Channel, r.ExternalID}] = r
		}
		return nil
	}
	if len(order) == 0 {
		b.identity = make([]store.ContactIdentity, len(b.ins))
		return nil
	}
	if err := lookup(order); err != nil {
		return err
	}

	// Create the missing ones: contacts first (ids taken from the sequence
	// so each identity knows its contact), then identities.
	var missing []idKey
	for _, k := range order {
		if _, ok := found[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		var contactIDs store.Int64s
		if err := b.tx.Raw(`SELECT array_agg(nextval('contacts_id_seq')) FROM generate_series(1, ?)`, len(missing)).
			Row().Scan(&contactIDs); err != nil {
			return err
		}
		chs, ids, handles, names := make(store.Strings, len(missing)), make(store.Strings, len(missing)),
			make(store.Strings, len(missing)), make(store.Strings, len(missing))
		for i, k := range missing {
			a := want[k]
			chs[i], ids[i], handles[i], names[i] = k.channel, k.externalID, a.Handle, a.DisplayName
		}
		if err := b.tx.Exec(`INSERT INTO contacts (id, display_name)
			SELECT id, coalesce(nullif(name, ''), handle) FROM unnest(?::bigint[], ?::text[], ?::text[]) AS t(id, name, handle)`,
			contactIDs, names, handles).Error; err != nil {
			return err
		}
		var created []store.ContactIdentity
		if err := b.tx.Raw(`INSERT INTO contact_identities (contact_id, channel, external_id, handle, display_name)
			SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[])
			ON CONFLICT (channel, external_id) DO NOTHING
			RETURNING *`,
			contactIDs, chs, ids, handles, names).Scan(&created).Error; err != nil {
			return err
		}
		for _, r := range created {
			found[idKey{r.Channel, r.ExternalID}] = r
		}
		if len(created) < len(missing) {
			// Another transaction created some of these identities first:
			// take theirs, and drop the contacts we made for them.
			var raced []idKey
			for _, k := range missing {
				if _, ok := found[k]; !ok {
					raced = append(raced, k)
				}
			}
			if err := lookup(raced); err != nil {
				return err
			}
			if err := b.tx.Exec(`DELETE FROM contacts c WHERE c.id = ANY(?::bigint[])
				AND NOT EXISTS (SELECT 1 FROM contact_identities ci WHERE ci.contact_id = c.id)`, contactIDs).Error; err != nil {
				return err
			}
		}
	}

	// Keep handles and names current.
	var upd []store.ContactIdentity
	for _, k := range order {
		r, ok := found[k]
		if !ok {
			return fmt.Errorf("contact identity %s/%s: not found after insert", k.channel, k.externalID)
		}
		a := want[k]
		if (a.Handle != "" && a.Handle != r.Handle) || (a.DisplayName != "" && a.DisplayName != r.DisplayName) {
			upd = append(upd, store.ContactIdentity{ID: r.ID, Handle: a.Handle, DisplayName: a.DisplayName})
		}
	}
	if len(upd) > 0 {
		ids, handles, names := make(store.Int64s, len(upd)), make(store.Strings, len(upd)), make(store.Strings, len(upd))
		for i, u := range upd {
			ids[i], handles[i], names[i] = u.ID, u.Handle, u.DisplayName
		}
		if err := b.tx.Exec(`UPDATE contact_identities ci SET
			handle = CASE WHEN v.handle <> '' THEN v.handle ELSE ci.handle END,
			display_name = CASE WHEN v.name <> '' THEN v.name ELSE ci.display_name END,
			updated_at = now()
			FROM unnest(?::bigint[], ?::text[], ?::text[]) AS v(id, handle, name) WHERE ci.id = v.id`,
			ids, handles, names).Error; err != nil {
			return err
		}
	}
	b.identity = make([]store.ContactIdentity, len(b.ins))
	for i, in := range b.ins {
		if !b.dup[i] {
			b.identity[i] = found[idKey{in.Channel, in.Author.ExternalID}]
		}
	}
	return nil
}

// lookups loads, in three queries, every case the batch's messages could
// thread onto, then locks those cases.
func (b *batch) lookups() error {
	b.byPost, b.byConversation, b.openDM, b.bySibling = map[acctKey]int64{}, map[acctKey]int64{}, map[acctKey]int64{}, map[acctKey]int64{}
	b.cases = map[int64]*caseState{}
	var replyAcct, convAcct, identities, identAcct store.Int64s
	var replyTo, conversations store.Strings
	for i, in := range b.ins {
		if b.dup[i] {
			continue
		}
		acct := b.accts[i].ID
		if in.InReplyTo != "" {
			replyAcct, replyTo = append(replyAcct, acct), append(replyTo, in.InReplyTo)
		}
		if in.ConversationID != "" && in.Visibility == channels.Public {
			convAcct, conversations = append(convAcct, acct), append(conversations, in.ConversationID)
		}
		if in.Visibility == channels.Private {
			identAcct, identities = append(identAcct, acct), append(identities, b.identity[i].ID)
		}
	}
	type hit struct {
		Account int64
		Key     string
		CaseID  int64
	}
	// Each lookup is one btree probe per wanted key, whatever the size of
	// the tables.
	load := func(into map[acctKey]int64, query string, args ...any) error {
		var rows []hit
		if err := b.tx.Raw(query, args...).Scan(&rows).Error; err != nil {
			return err
		}
		for _, r := range rows {
			into[acctKey{r.Account, r.Key}] = r.CaseID
		}
		return nil
	}
	if len(replyTo) > 0 {
		if err := load(b.byPost, `SELECT k.account, k.key, p.case_id
			FROM unnest(?::bigint[], ?::text[]) AS k(account, key)
			JOIN message_posts p ON p.channel_account_id = k.account AND p.external_id = k.key`, replyAcct, replyTo); err != nil {
			return err
		}
		if err := load(b.bySibling, `SELECT k.account, k.key, m.case_id
			FROM unnest(?::bigint[], ?::text[]) AS k(account, key)
			CROSS JOIN LATERAL (SELECT m.case_id FROM messages m JOIN cases c ON c.id = m.case_id
				WHERE m.channel_account_id = k.account AND m.in_reply_to = k.key AND m.in_reply_to <> ''
				  AND c.status <> 'closed'
				ORDER BY m.id DESC LIMIT 1) m`, replyAcct, replyTo); err != nil {
			return err
		}
	}
	if len(conversations) > 0 {
		if err := load(b.byConversation, `SELECT k.account, k.key, m.case_id
			FROM unnest(?::bigint[], ?::text[]) AS k(account, key)
			CROSS JOIN LATERAL (SELECT case_id FROM messages
				WHERE channel_account_id = k.account AND conversation_id = k.key AND conversation_id <> ''
				ORDER BY id DESC LIMIT 1) m`, convAcct, conversations); err != nil {
			return err
		}
	}
	if len(identities) > 0 {
		if err := load(b.openDM, `SELECT k.account, k.identity::text AS key, c.id AS case_id
			FROM unnest(?::bigint[], ?::bigint[]) AS k(account, identity)
			CROSS JOIN LATERAL (SELECT id FROM cases
				WHERE contact_identity_id = k.identity AND channel_account_id = k.account
				  AND status IN ('new', 'open', 'awaiting_resident')
				ORDER BY last_message_at DESC LIMIT 1) c`, identAcct, identities); err != nil {
			return err
		}
	}
	var ids store.Int64s
	for _, m := range []map[acctKey]int64{b.byPost, b.byConversation, b.openDM, b.bySibling} {
		for _, id := range m {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var rows []caseState
	if err := b.tx.Raw(`SELECT id, reference, status, channel, team_id, contact_identity_id, last_message_at, resolved_at, closed_at
		FROM cases WHERE id = ANY(?::bigint[]) ORDER BY id FOR UPDATE`, ids).Scan(&rows).Error; err != nil {
		return err
	}
	for i := range rows {
		c := rows[i]
		c.existing = true
		b.cases[c.ID] = &c
	}
	return nil
}

// thread decides each message's case, in order, so a message can thread
// onto a case an earlier message of the same batch opened.
func (b *batch) thread() error {
	b.caseOf = make([]*caseState, len(b.ins))
	postCase := map[acctKey]*caseState{}
	convCase := map[acctKey]*caseState{}
	dmCase := map[acctKey]*caseState{}
	siblingCase := map[acctKey]*caseState{}
	fromDB := func(m map[acctKey]int64, k acctKey) *caseState {
		if id, ok := m[k]; ok {
			return b.cases[id]
		}
		return nil
	}
	for i, in := range b.ins {
		if b.dup[i] {
			continue
		}
		acct, ident := b.accts[i], b.identity[i]
		var c *caseState
		replyKey := acctKey{acct.ID, in.InReplyTo}
		if in.InReplyTo != "" {
			if c = postCase[replyKey]; c == nil {
				c = fromDB(b.byPost, replyKey)
			}
			if c != nil && c.Status == StatusClosed {
				// The post's case is closed: join the case an earlier reply
				// to the same post opened, rather than open one per reply.
				if c = siblingCase[replyKey]; c == nil {
					c = fromDB(b.bySibling, replyKey)
				}
			}
		}
		convKey := acctKey{acct.ID, in.ConversationID}
		if c == nil && in.ConversationID != "" && in.Visibility == channels.Public {
			if c = convCase[convKey]; c == nil {
				c = fromDB(b.byConversation, convKey)
			}
		}
		dmKey := acctKey{acct.ID, fmt.Sprint(ident.ID)}
		if c == nil && in.Visibility == channels.Private {
			if c = dmCase[dmKey]; c == nil {
				c = fromDB(b.openDM, dmKey)
			}
		}
		switch {
		case c == nil || c.Status == StatusClosed:
			c = &caseState{
				Status: StatusNew, Channel: in.Channel, TeamID: acct.TeamID, LastMessageAt: in.SentAt,
				ContactIdentityID: ident.ID, account: acct, contact: ident.ContactID,
				subject: truncate(in.Text, 120), firstMessageAt: in.SentAt,
			}
			b.newCases = append(b.newCases, c)
			b.res[i].Created = true
		case c.Status == StatusResolved:
			c.Status = StatusOpen
			c.ResolvedAt = nil
			c.reopens++
			c.touched = true
			b.res[i].Created = false
		case c.Status == StatusAwaitingResident:
			// The resident answered: the case is with the council again.
			c.Status = StatusOpen
			c.touched = true
		default:
			c.touched = true
		}
		if in.SentAt.After(c.LastMessageAt) {
			c.LastMessageAt = in.SentAt
		}
		b.caseOf[i] = c
		postCase[acctKey{acct.ID, in.ExternalID}] = c
		if in.ConversationID != "" {
			convCase[convKey] = c
		}
		if in.InReplyTo != "" {
			siblingCase[replyKey] = c
		}
		if c.ContactIdentityID == ident.ID {
			// As in the database: a resident's open case is the latest
			// case they started, whatever the visibility.
			dmCase[dmKey] = c
		}
	}
	return nil
}

func (b *batch) insertCases() error {
	n := len(b.newCases)
	if n == 0 {
		return nil
	}
	var ids store.Int64s
	if err := b.tx.Raw(`SELECT array_agg(nextval('cases_id_seq')) FROM generate_series(1, ?)`, n).Row().Scan(&ids); err != nil {
		return err
	}
	var (
		channel, subject, first, last = make(store.Strings, n), make(store.Strings, n), make(store.Strings, n), make(store.Strings, n)
		acct, contact, identity, team = make(store.Int64s, n), make(store.Int64s, n), make(store.Int64s, n), make(store.Int64s, n)
	)
	for i, c := range b.newCases {
		c.ID = ids[i]
		channel[i], subject[i] = c.Channel, c.subject
		first[i], last[i] = c.firstMessageAt.Format(time.RFC3339Nano), c.LastMessageAt.Format(time.RFC3339Nano)
		acct[i], contact[i], identity[i], team[i] = c.account.ID, c.contact, c.ContactIdentityID, c.TeamID
	}
	var rows []struct {
		ID        int64
		Reference string
	}
	if err := b.tx.Raw(`INSERT INTO cases (id, status, channel, channel_account_id, contact_id, contact_identity_id,
			team_id, subject, first_message_at, last_message_at)
		SELECT id, 'new', channel, acct, contact, identity, team, subject, first, last
		FROM unnest(?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::timestamptz[], ?::timestamptz[])
		  AS t(id, channel, acct, contact, identity, team, subject, first, last)
		RETURNING id, reference`,
		ids, channel, acct, contact, identity, team, subject, first, last).Scan(&rows).Error; err != nil {
		return err
	}
	refs := make(map[int64]string, len(rows))
	for _, r := range rows {
		refs[r.ID] = r.Reference
	}
	for _, c := range b.newCases {
		c.Reference = refs[c.ID]
	}
	return nil
}

func (b *batch) updateCases() error {
	var ids, reopens store.Int64s
	var statuses, last store.Strings
	for _, c := range b.cases {
		if !c.touched {
			continue
		}
		ids = append(ids, c.ID)
		statuses = append(statuses, c.Status)
		last = append(last, c.LastMessageAt.Format(time.RFC3339Nano))
		reopens = append(reopens, int64(c.reopens))
	}
	if len(ids) == 0 {
		return nil
	}
	return b.tx.Exec(`UPDATE cases c SET status = v.status,
			last_message_at = greatest(c.last_message_at, v.last),
			resolved_at = CASE WHEN v.reopens > 0 THEN NULL ELSE c.resolved_at END,
			reopened_count = c.reopened_count + v.reopens,
			updated_at = now()
		FROM unnest(?::bigint[], ?::text[], ?::timestamptz[], ?::int[]) AS v(id, status, last, reopens)
		WHERE c.id = v.id`, ids, statuses, last, reopens).Error
}

func (b *batch) insertMessages() error {
	var (
		caseIDs, accts, idents                                   store.Int64s
		vis, body, dedupe, ext, conv, reply, sent, received, raw store.Strings
		index                                                    []int
	)
	for i, in := range b.ins {
		if b.dup[i] {
			continue
		}
		index = append(index, i)
		caseIDs = append(caseIDs, b.caseOf[i].ID)
		accts = append(accts, b.accts[i].ID)
		idents = append(idents, b.identity[i].ID)
		vis = append(vis, string(in.Visibility))
		body = append(body, in.Text)
		dedupe = append(dedupe, in.DedupeKey)
		ext = append(ext, in.ExternalID)
		conv = append(conv, in.ConversationID)
		reply = append(reply, in.InReplyTo)
		sent = append(sent, in.SentAt.Format(time.RFC3339Nano))
		received = append(received, in.ReceivedAt.Format(time.RFC3339Nano))
		raw = append(raw, string(in.Raw))
	}
	if len(index) == 0 {
		return nil
	}
	var ids store.Int64s
	if err := b.tx.Raw(`SELECT array_agg(nextval('messages_id_seq')) FROM generate_series(1, ?)`, len(index)).Row().Scan(&ids); err != nil {
		return err
	}
	if err := b.tx.Exec(`INSERT INTO messages (id, case_id, channel_account_id, direction, visibility, body, dedupe_key,
			external_id, external_ids, conversation_id, in_reply_to, contact_identity_id, delivery_status,
			network_sent_at, received_at, raw)
		SELECT id, case_id, acct, 'inbound', vis, body, dedupe, ext, ARRAY[ext], conv, reply, ident, 'received',
			sent, received, nullif(raw, '')::jsonb
		FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[],
			?::text[], ?::bigint[], ?::timestamptz[], ?::timestamptz[], ?::text[])
		  AS t(id, case_id, acct, vis, body, dedupe, ext, conv, reply, ident, sent, received, raw)`,
		ids, caseIDs, accts, vis, body, dedupe, ext, conv, reply, idents, sent, received, raw).Error; err != nil {
		return err
	}
	if err := b.tx.Exec(`INSERT INTO message_posts (channel_account_id, external_id, message_id, case_id)
		SELECT * FROM unnest(?::bigint[], ?::text[], ?::bigint[], ?::bigint[])
		ON CONFLICT DO NOTHING`, accts, ext, ids, caseIDs).Error; err != nil {
		return err
	}
	b.messageIDs = make([]int64, len(b.ins))
	for j, i := range index {
		b.messageIDs[i] = ids[j]
		b.res[i].CaseID, b.res[i].MessageID = b.caseOf[i].ID, ids[j]
	}
	for i, j := range b.dupOf {
		b.res[i].CaseID, b.res[i].MessageID = b.res[j].CaseID, b.res[j].MessageID
	}
	return nil
}

// events queues one case event per stored message.
func (b *batch) events() error {
	now := time.Now().UTC()
	var evs []Event
	reopened := map[int64]bool{}
	for i := range b.ins {
		if b.dup[i] {
			continue
		}
		c := b.caseOf[i]
		kind := EventMessageAdded
		switch {
		case b.res[i].Created:
			kind = EventCreated
		case c.reopens > 0 && !reopened[c.ID]:
			kind = EventReopened
			reopened[c.ID] = true
		}
		evs = append(evs, Event{Kind: kind, CaseID: c.ID, Reference: c.Reference, Team: b.svc.teamSlug(b.tx, c.TeamID),
			Channel: c.Channel, Status: c.Status, MessageID: b.messageIDs[i], At: now})
	}
	return b.svc.emitAll(b.tx, evs)
}
