package cases

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/threading"
)

// Stored is what happened to one inbound message.
type Stored struct {
	CaseID    int64
	MessageID int64
	// Created is true when the message opened a new case.
	Created bool
	// Duplicate is true when the message was already stored.
	Duplicate bool
	// Receipt is true for a delivery receipt, Change for an edit or
	// removal: neither stores a message.
	Receipt bool
	Change  bool
	Channel string
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
// case (or opens a new case) as package threading decides, stores it and
// queues the case event. A case is one resident's: a message from another
// identity opens (or joins) that resident's own case, which records the
// post it answered.
//
// A message already stored (same account and dedupe key) changes nothing.
// The work is done set-wise, a fixed number of statements per batch
// whatever its size, which is what lets ingest keep up with bursts.
//
// Before looking anything up, the batch takes transaction-scoped advisory
// locks on every thread its messages touch (threading.LockKeys), so
// batches on other replicas that share a thread or a message wait for this
// one to commit, and then see what it stored: a reply handled while its
// parent is still being stored elsewhere finds the parent's case, and a
// copy of a message still in flight is found to be a duplicate. Then it
// locks its residents' identity rows, which orders one resident's messages
// whatever thread they are in.
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
	s.mu.RLock()
	b.cfg = s.cfg
	s.mu.RUnlock()
	steps := []func() error{b.lock, b.dedupe, b.identities, b.lookups, b.thread, b.route, b.insertCases, b.updateCases,
		b.insertMessages, b.clock, b.autoReplies, b.writeCases, b.events}
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
	cfg   Configuration
	tx    *gorm.DB
	ins   []channels.Inbound
	res   []Stored
	accts []account

	dup      []bool
	dupOf    map[int]int             // a second copy in the batch → the first copy's index
	identity []store.ContactIdentity // per message
	// fresh lists the indexes of the messages not yet stored, in order;
	// msgs holds them as threading sees them, lk what the database knows.
	fresh      []int
	msgs       []threading.Message
	lk         threading.Lookups
	decisions  []threading.Decision // per fresh message
	caseOf     []*caseState         // per message
	cases      map[int64]*caseState // stored cases the batch may touch
	newCases   []*caseState
	messageIDs []int64
	// acked is set when the batch queued an acknowledgement; autoEvents
	// announce the automatic replies it queued.
	acked      bool
	autoEvents []Event
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
	FirstMessageAt    time.Time
	FirstResponseAt   *time.Time
	LastResponseAt    *time.Time
	AcknowledgedAt    *time.Time
	// What routing decided, and the SLA clocks.
	Priority     string
	ServiceCode  *string
	Tags         store.Strings `gorm:"type:text[]"`
	Escalation   string
	Emergency    bool
	Safeguarding bool
	Routing      []byte
	Clocks
	// storedStatus is the status the case had before this batch.
	storedStatus string
	// emergencyMsg is 1 + the index of the message routing found to be an
	// emergency, 0 for none; notify alerts supervisors; ackTemplate is the
	// acknowledgement the rule chose; rerouted marks a stored case routed
	// again, whose deadlines are recomputed.
	emergencyMsg int
	notify       bool
	ackTemplate  string
	rerouted     bool
	existing     bool
	touched      bool
	reopens      int
	account      account
	contact      int64
	subject      string
	// What a new case answered: the post, and that post's case, stored
	// (contextCaseID) or opened earlier in this batch (contextCase).
	contextPost   string
	contextCaseID int64
	contextCase   *caseState
}

// threadingMessage is message i as threading sees it; its identity is 0
// until identities are stored.
func (b *batch) threadingMessage(i int) threading.Message {
	in := b.ins[i]
	return threading.Message{
		Account:      b.accts[i].ID,
		Identity:     b.identity[i].ID,
		DedupeKey:    in.DedupeKey,
		ExternalID:   in.ExternalID,
		InReplyTo:    in.InReplyTo,
		Conversation: in.ConversationID,
		Private:      in.Visibility == channels.Private,
		// References are written upper-case ("C-2026-000123").
		CaseReference: strings.ToUpper(in.CaseReference),
	}
}

// lock takes the batch's advisory locks, in one statement, in the order
// threading.LockKeys gives: every batch takes its keys in that one order,
// so two batches never wait for each other in a cycle. They are released
// when the transaction ends.
func (b *batch) lock() error {
	b.identity = make([]store.ContactIdentity, len(b.ins))
	msgs := make([]threading.Message, len(b.ins))
	for i := range b.ins {
		msgs[i] = b.threadingMessage(i)
	}
	keys := threading.LockKeys(msgs)
	return b.tx.Exec(`SELECT pg_advisory_xact_lock(k)
		FROM unnest(?::bigint[]) WITH ORDINALITY AS t(k, n) ORDER BY n`, store.Int64s(keys)).Error
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
		// Inserted in one order by every batch, so two batches creating
		// the same residents wait for each other without deadlocking.
		slices.SortFunc(missing, func(a, b idKey) int {
			return cmp.Or(strings.Compare(a.channel, b.channel), strings.Compare(a.externalID, b.externalID))
		})
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

// lookups asks the database, in four queries, what threading needs to
// know of the fresh messages, then loads and locks every case named.
func (b *batch) lookups() error {
	for i := range b.ins {
		if !b.dup[i] {
			b.fresh = append(b.fresh, i)
			b.msgs = append(b.msgs, b.threadingMessage(i))
		}
	}
	needs := threading.NeedsOf(b.msgs)
	b.lk = threading.Lookups{
		Posts: map[threading.Post]int64{}, Replies: map[threading.ResidentPost]int64{},
		Conversations: map[threading.ResidentPost]int64{}, Open: map[threading.Resident]int64{},
		References: map[threading.ResidentPost]int64{},
		Cases:      map[int64]threading.Case{},
	}
	b.cases = map[int64]*caseState{}
	type hit struct {
		Account  int64
		Key      string
		Identity int64
		CaseID   int64
	}
	// Each lookup is one btree probe per wanted key, whatever the size of
	// the tables.
	load := func(query string, args ...any) ([]hit, error) {
		var rows []hit
		err := b.tx.Raw(query, args...).Scan(&rows).Error
		return rows, err
	}
	residentPosts := func(keys []threading.ResidentPost) (store.Int64s, store.Strings, store.Int64s) {
		accts, ids, idents := make(store.Int64s, len(keys)), make(store.Strings, len(keys)), make(store.Int64s, len(keys))
		for i, k := range keys {
			accts[i], ids[i], idents[i] = k.Account, k.ID, k.Identity
		}
		return accts, ids, idents
	}
	if len(needs.Posts) > 0 {
		accts, ids := make(store.Int64s, len(needs.Posts)), make(store.Strings, len(needs.Posts))
		for i, k := range needs.Posts {
			accts[i], ids[i] = k.Account, k.ID
		}
		rows, err := load(`SELECT k.account, k.key, p.case_id
			FROM unnest(?::bigint[], ?::text[]) AS k(account, key)
			JOIN message_posts p ON p.channel_account_id = k.account AND p.external_id = k.key`, accts, ids)
		if err != nil {
			return err
		}
		for _, r := range rows {
			b.lk.Posts[threading.Post{Account: r.Account, ID: r.Key}] = r.CaseID
		}
	}
	if len(needs.Replies) > 0 {
		accts, ids, idents := residentPosts(needs.Replies)
		rows, err := load(`SELECT k.account, k.key, k.identity, m.case_id
			FROM unnest(?::bigint[], ?::text[], ?::bigint[]) AS k(account, key, identity)
			CROSS JOIN LATERAL (SELECT m.case_id FROM messages m JOIN cases c ON c.id = m.case_id
				WHERE m.channel_account_id = k.account AND m.in_reply_to = k.key AND m.in_reply_to <> ''
				  AND m.contact_identity_id = k.identity AND c.contact_identity_id = k.identity
				  AND c.status <> 'closed'
				ORDER BY m.id DESC LIMIT 1) m`, accts, ids, idents)
		if err != nil {
			return err
		}
		for _, r := range rows {
			b.lk.Replies[threading.ResidentPost{Account: r.Account, ID: r.Key, Identity: r.Identity}] = r.CaseID
		}
	}
	if len(needs.Conversations) > 0 {
		accts, ids, idents := residentPosts(needs.Conversations)
		rows, err := load(`SELECT k.account, k.key, k.identity, m.case_id
			FROM unnest(?::bigint[], ?::text[], ?::bigint[]) AS k(account, key, identity)
			CROSS JOIN LATERAL (SELECT m.case_id FROM messages m JOIN cases c ON c.id = m.case_id
				WHERE m.channel_account_id = k.account AND m.conversation_id = k.key AND m.conversation_id <> ''
				  AND m.contact_identity_id = k.identity AND c.contact_identity_id = k.identity
				ORDER BY m.id DESC LIMIT 1) m`, accts, ids, idents)
		if err != nil {
			return err
		}
		for _, r := range rows {
			b.lk.Conversations[threading.ResidentPost{Account: r.Account, ID: r.Key, Identity: r.Identity}] = r.CaseID
		}
	}
	if len(needs.References) > 0 {
		accts, refs, idents := residentPosts(needs.References)
		rows, err := load(`SELECT k.account, k.key, k.identity, c.id AS case_id
			FROM unnest(?::bigint[], ?::text[], ?::bigint[]) AS k(account, key, identity)
			JOIN cases c ON c.reference = k.key AND c.channel_account_id = k.account
			  AND c.contact_identity_id = k.identity AND c.status <> 'closed'`, accts, refs, idents)
		if err != nil {
			return err
		}
		for _, r := range rows {
			b.lk.References[threading.ResidentPost{Account: r.Account, ID: r.Key, Identity: r.Identity}] = r.CaseID
		}
	}
	if len(needs.Open) > 0 {
		accts, idents := make(store.Int64s, len(needs.Open)), make(store.Int64s, len(needs.Open))
		for i, k := range needs.Open {
			accts[i], idents[i] = k.Account, k.Identity
		}
		rows, err := load(`SELECT k.account, k.identity, c.id AS case_id
			FROM unnest(?::bigint[], ?::bigint[]) AS k(account, identity)
			CROSS JOIN LATERAL (SELECT id FROM cases
				WHERE contact_identity_id = k.identity AND channel_account_id = k.account
				  AND status IN ('new', 'open', 'awaiting_resident')
				ORDER BY last_message_at DESC LIMIT 1) c`, accts, idents)
		if err != nil {
			return err
		}
		for _, r := range rows {
			b.lk.Open[threading.Resident{Account: r.Account, Identity: r.Identity}] = r.CaseID
		}
	}
	var ids store.Int64s
	for _, id := range b.lk.Posts {
		ids = append(ids, id)
	}
	for _, m := range []map[threading.ResidentPost]int64{b.lk.Replies, b.lk.Conversations, b.lk.References} {
		for _, id := range m {
			ids = append(ids, id)
		}
	}
	for _, id := range b.lk.Open {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil
	}
	var rows []caseState
	if err := b.tx.Raw(`SELECT id, reference, status, channel, team_id, contact_identity_id, last_message_at, resolved_at, closed_at,
			first_message_at, first_response_at, last_response_at, acknowledged_at, priority, service_code, tags, escalation,
			emergency, safeguarding, routing, `+clockColumns+`
		FROM cases WHERE id = ANY(?::bigint[]) ORDER BY id FOR UPDATE`, ids).Scan(&rows).Error; err != nil {
		return err
	}
	for i := range rows {
		c := rows[i]
		c.existing, c.storedStatus = true, c.Status
		b.cases[c.ID] = &c
		b.lk.Cases[c.ID] = threading.Case{ID: c.ID, Identity: c.ContactIdentityID, Status: c.Status}
	}
	return nil
}

// thread asks threading where each fresh message goes and applies the
// decisions to the batch's cases.
func (b *batch) thread() error {
	b.caseOf = make([]*caseState, len(b.ins))
	b.decisions = threading.Decide(b.msgs, b.lk)
	opened := map[int]*caseState{} // by the fresh index of the message that opened it
	caseOf := func(r threading.Ref) *caseState {
		if r.New {
			return opened[r.Opener]
		}
		return b.cases[r.ID]
	}
	for j, d := range b.decisions {
		i := b.fresh[j]
		in, acct, ident := b.ins[i], b.accts[i], b.identity[i]
		var c *caseState
		if d.Action == threading.Start {
			c = &caseState{
				Status: StatusNew, Channel: in.Channel, TeamID: acct.TeamID, LastMessageAt: in.SentAt,
				ContactIdentityID: ident.ID, account: acct, contact: ident.ContactID,
				subject: truncate(in.Text, 120), FirstMessageAt: in.SentAt, contextPost: d.Context.Post, Priority: "normal",
			}
			if r := d.Context.Case; r.New {
				c.contextCase = opened[r.Opener]
			} else if !r.IsZero() {
				c.contextCaseID = r.ID
			}
			opened[j] = c
			b.newCases = append(b.newCases, c)
			b.res[i].Created = true
		} else if c = caseOf(d.Case); c == nil {
			return fmt.Errorf("threading chose case %+v, which the batch does not hold", d.Case)
		}
		switch d.Action {
		case threading.Reopen:
			c.ResolvedAt = nil
			c.reopens++
			c.touched = true
		case threading.Join:
			c.touched = true
		}
		c.Status = d.Status
		if in.SentAt.After(c.LastMessageAt) {
			c.LastMessageAt = in.SentAt
		}
		b.caseOf[i] = c
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
	for i, c := range b.newCases {
		c.ID = ids[i]
	}
	var (
		channel, subject, first, last = make(store.Strings, n), make(store.Strings, n), make(store.Strings, n), make(store.Strings, n)
		acct, contact, identity, team = make(store.Int64s, n), make(store.Int64s, n), make(store.Int64s, n), make(store.Int64s, n)
		contextPost, contextCase      = make(store.Strings, n), make(store.Int64s, n)
	)
	for i, c := range b.newCases {
		channel[i], subject[i] = c.Channel, c.subject
		first[i], last[i] = c.FirstMessageAt.Format(time.RFC3339Nano), c.LastMessageAt.Format(time.RFC3339Nano)
		acct[i], contact[i], identity[i], team[i] = c.account.ID, c.contact, c.ContactIdentityID, c.TeamID
		contextPost[i], contextCase[i] = c.contextPost, c.contextCaseID
		if c.contextCase != nil {
			contextCase[i] = c.contextCase.ID
		}
	}
	var rows []struct {
		ID        int64
		Reference string
	}
	if err := b.tx.Raw(`INSERT INTO cases (id, status, channel, channel_account_id, contact_id, contact_identity_id,
			team_id, subject, first_message_at, last_message_at, context_post_id, context_case_id)
		SELECT id, 'new', channel, acct, contact, identity, team, subject, first, last, context_post, nullif(context_case, 0)
		FROM unnest(?::bigint[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::timestamptz[],
			?::timestamptz[], ?::text[], ?::bigint[])
		  AS t(id, channel, acct, contact, identity, team, subject, first, last, context_post, context_case)
		RETURNING id, reference`,
		ids, channel, acct, contact, identity, team, subject, first, last, contextPost, contextCase).Scan(&rows).Error; err != nil {
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
			Channel: c.Channel, Status: c.Status, MessageID: b.messageIDs[i], Priority: c.Priority, At: now})
		if c.notify {
			c.notify = false
			reason := "safeguarding concern"
			if c.Emergency {
				reason = "emergency"
			}
			evs = append(evs, Event{Kind: EventSupervisorsAlerted, CaseID: c.ID, Reference: c.Reference,
				Team: b.svc.teamSlug(b.tx, c.TeamID), Channel: c.Channel, Status: c.Status, MessageID: b.messageIDs[i],
				Priority: c.Priority, Reason: reason, At: now})
		}
	}
	evs = append(evs, b.autoEvents...)
	return b.svc.emitAll(b.tx, evs)
}
