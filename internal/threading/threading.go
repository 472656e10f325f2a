// Package threading decides which case a resident's message belongs to. It
// is a pure decision: the messages of a batch and what the database knows
// about them go in, one decision per message comes out. It knows nothing of
// SQL, networks or the bus; the case service gathers the lookups it asks
// for, serialises concurrent batches with the lock keys it gives, and
// carries the decisions out.
//
// A case belongs to one resident (one contact identity): a message from
// another identity never joins it. A message threads, in this order, onto
//  1. the case of the post it answers, when that case is its resident's;
//  2. its resident's case of an earlier reply to the same post;
//  3. its resident's case of a reply to this very message stored before it
//     (a reply that overtook its parent);
//  4. the case whose reference the message names (an email subject's
//     "C-2026-000123"), when it is its resident's;
//  5. for a public message, its resident's latest case in the conversation;
//  6. for a direct message, its resident's open case on the account;
//
// skipping any case that is closed. A message threaded onto a resolved case
// reopens it; onto a case awaiting the resident, returns it to open.
// Otherwise the message opens a new case, which records the post it
// answered and that post's case (another resident's, or a closed one) so
// the adviser sees the context. When the council posts a road closure and
// fifty people reply, that is fifty cases; a second reply from one of them
// joins their own.
//
// Messages of one batch thread onto each other as if stored one by one.
package threading

import (
	"cmp"
	"hash/fnv"
	"slices"
	"strconv"
)

// Case statuses, as the case service names them.
const (
	StatusNew              = "new"
	StatusOpen             = "open"
	StatusAwaitingResident = "awaiting_resident"
	StatusResolved         = "resolved"
	StatusClosed           = "closed"
)

// Message is what threading needs to know of one resident message.
type Message struct {
	// Account is the channel account's id.
	Account int64
	// Identity is the author's contact identity id (known once identities
	// are stored: LockKeys does not need it).
	Identity int64
	// DedupeKey and ExternalID are the message's own keys.
	DedupeKey  string
	ExternalID string
	// InReplyTo is the network id of the post the message answers.
	InReplyTo string
	// Conversation is the network's thread id, when it has one.
	Conversation string
	// Private is true for a direct message.
	Private bool
	// CaseReference is a case reference the message names ("C-2026-000123"
	// in an email's subject), if any.
	CaseReference string
}

// Post names a network id on one channel account.
type Post struct {
	Account int64
	ID      string
}

// ResidentPost names a network id and one resident on a channel account.
type ResidentPost struct {
	Account  int64
	ID       string
	Identity int64
}

// Resident names one resident on a channel account.
type Resident struct {
	Account  int64
	Identity int64
}

// Case is what threading needs to know of a stored case.
type Case struct {
	ID       int64
	Identity int64
	Status   string
}

// Needs lists what the database must be asked for a batch.
type Needs struct {
	// Posts: the case of each post answered (any resident's).
	Posts []Post
	// Replies: the resident's latest case that is not closed among their
	// replies to the post.
	Replies []ResidentPost
	// Conversations: the resident's latest case in the conversation.
	Conversations []ResidentPost
	// References: the resident's case with the reference (ID), on the
	// account, when it is not closed.
	References []ResidentPost
	// Open: the resident's open case (new, open or awaiting the resident)
	// on the account, the one with the latest message.
	Open []Resident
}

// Lookups is what the database answered: case ids by key, and every case
// they name. A key without a case is left out.
type Lookups struct {
	Posts         map[Post]int64
	Replies       map[ResidentPost]int64
	Conversations map[ResidentPost]int64
	References    map[ResidentPost]int64
	Open          map[Resident]int64
	Cases         map[int64]Case
}

// Action is what a message does to its case.
type Action int

const (
	// Join: the message joins a case, stored or opened earlier in the batch.
	Join Action = iota + 1
	// Reopen: the message joins a resolved case, which opens again.
	Reopen
	// Start: the message opens a new case.
	Start
)

func (a Action) String() string {
	switch a {
	case Join:
		return "join"
	case Reopen:
		return "reopen"
	case Start:
		return "start"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Ref names a case: a stored one by its id, or one this batch opens by the
// index of the message that opens it. The zero Ref names no case.
type Ref struct {
	ID     int64
	New    bool
	Opener int
}

// IsZero reports whether r names no case.
func (r Ref) IsZero() bool { return r == Ref{} }

// Stored names a stored case.
func Stored(id int64) Ref { return Ref{ID: id} }

// Opened names the case the batch's message i opens.
func Opened(i int) Ref { return Ref{New: true, Opener: i} }

// Context is what a new case answered.
type Context struct {
	// Post is the network id of the post answered; empty when the message
	// answered none.
	Post string
	// Case is that post's case, when there is one.
	Case Ref
}

// Decision is where one message goes.
type Decision struct {
	Action Action
	Case   Ref
	// Status is the case's status once the message is on it.
	Status string
	// Context is set for Start.
	Context Context
}

// NeedsOf lists what Decide needs looked up for msgs.
func NeedsOf(msgs []Message) Needs {
	var n Needs
	seenPost := map[Post]bool{}
	seenReply := map[ResidentPost]bool{}
	seenConv := map[ResidentPost]bool{}
	seenOpen := map[Resident]bool{}
	seenRef := map[ResidentPost]bool{}
	reply := func(k ResidentPost) {
		if k.ID != "" && !seenReply[k] {
			seenReply[k] = true
			n.Replies = append(n.Replies, k)
		}
	}
	for _, m := range msgs {
		if m.InReplyTo != "" {
			if k := (Post{m.Account, m.InReplyTo}); !seenPost[k] {
				seenPost[k] = true
				n.Posts = append(n.Posts, k)
			}
			reply(ResidentPost{m.Account, m.InReplyTo, m.Identity})
		}
		reply(ResidentPost{m.Account, m.ExternalID, m.Identity})
		if m.Conversation != "" && !m.Private {
			if k := (ResidentPost{m.Account, m.Conversation, m.Identity}); !seenConv[k] {
				seenConv[k] = true
				n.Conversations = append(n.Conversations, k)
			}
		}
		if m.CaseReference != "" {
			if k := (ResidentPost{m.Account, m.CaseReference, m.Identity}); !seenRef[k] {
				seenRef[k] = true
				n.References = append(n.References, k)
			}
		}
		if m.Private {
			if k := (Resident{m.Account, m.Identity}); !seenOpen[k] {
				seenOpen[k] = true
				n.Open = append(n.Open, k)
			}
		}
	}
	return n
}

// Decide threads msgs, in order, given what the database knows.
func Decide(msgs []Message, lk Lookups) []Decision {
	d := decider{
		lk:      lk,
		states:  map[Ref]*state{},
		posts:   map[Post]Ref{},
		replies: map[ResidentPost]Ref{},
		convs:   map[ResidentPost]Ref{},
		open:    map[Resident]Ref{},
	}
	out := make([]Decision, len(msgs))
	for i, m := range msgs {
		out[i] = d.decide(i, m)
	}
	return out
}

type state struct {
	identity int64
	status   string
}

type decider struct {
	lk     Lookups
	states map[Ref]*state
	// What earlier messages of the batch did; they are newer than
	// anything stored, so they win over the lookups.
	posts   map[Post]Ref
	replies map[ResidentPost]Ref
	convs   map[ResidentPost]Ref
	open    map[Resident]Ref
}

// state returns a case as the batch has left it so far.
func (d *decider) state(r Ref) *state {
	if r.IsZero() {
		return nil
	}
	if s, ok := d.states[r]; ok {
		return s
	}
	c, ok := d.lk.Cases[r.ID]
	if r.New || !ok {
		return nil
	}
	s := &state{identity: c.Identity, status: c.Status}
	d.states[r] = s
	return s
}

func lookup[K comparable](batch map[K]Ref, stored map[K]int64, k K) Ref {
	if r, ok := batch[k]; ok {
		return r
	}
	if id, ok := stored[k]; ok {
		return Stored(id)
	}
	return Ref{}
}

func (d *decider) decide(i int, m Message) Decision {
	// usable reports whether m may join r: r is m's resident's and not
	// closed.
	usable := func(r Ref) bool {
		s := d.state(r)
		return s != nil && s.identity == m.Identity && s.status != StatusClosed
	}
	var post Ref
	var target Ref
	if m.InReplyTo != "" {
		post = lookup(d.posts, d.lk.Posts, Post{m.Account, m.InReplyTo})
		candidates := []Ref{post, lookup(d.replies, d.lk.Replies, ResidentPost{m.Account, m.InReplyTo, m.Identity})}
		for _, r := range candidates {
			if usable(r) {
				target = r
				break
			}
		}
	}
	if target.IsZero() {
		if r := lookup(d.replies, d.lk.Replies, ResidentPost{m.Account, m.ExternalID, m.Identity}); usable(r) {
			target = r
		}
	}
	if target.IsZero() && m.CaseReference != "" {
		// Only stored cases have references.
		if id, ok := d.lk.References[ResidentPost{m.Account, m.CaseReference, m.Identity}]; ok && usable(Stored(id)) {
			target = Stored(id)
		}
	}
	if target.IsZero() && m.Conversation != "" && !m.Private {
		if r := lookup(d.convs, d.lk.Conversations, ResidentPost{m.Account, m.Conversation, m.Identity}); usable(r) {
			target = r
		}
	}
	if target.IsZero() && m.Private {
		if r := lookup(d.open, d.lk.Open, Resident{m.Account, m.Identity}); usable(r) {
			target = r
		}
	}

	var dec Decision
	if target.IsZero() {
		target = Opened(i)
		d.states[target] = &state{identity: m.Identity, status: StatusNew}
		dec = Decision{Action: Start, Case: target, Status: StatusNew}
		if m.InReplyTo != "" {
			dec.Context = Context{Post: m.InReplyTo, Case: post}
		}
	} else {
		s := d.state(target)
		dec = Decision{Action: Join, Case: target}
		switch s.status {
		case StatusResolved:
			dec.Action = Reopen
			s.status = StatusOpen
		case StatusAwaitingResident:
			// The resident answered: the case is with the council again.
			s.status = StatusOpen
		}
		dec.Status = s.status
	}

	d.posts[Post{m.Account, m.ExternalID}] = target
	if m.InReplyTo != "" {
		d.replies[ResidentPost{m.Account, m.InReplyTo, m.Identity}] = target
	}
	if m.Conversation != "" && !m.Private {
		d.convs[ResidentPost{m.Account, m.Conversation, m.Identity}] = target
	}
	// As in the database: a resident's open case is their latest one,
	// whatever the visibility.
	d.open[Resident{m.Account, m.Identity}] = target
	return dec
}

// LockKeys returns the advisory lock keys a batch must hold, sorted and
// without repeats, before it looks anything up: one per network id a
// message has or points at (its own, the post it answers, its
// conversation) and one per dedupe key. A reply and its parent share a key,
// as do two copies of one message, so whichever comes second waits until
// the first has committed and then sees it. Keys taken in one order by
// every batch cannot deadlock.
//
// One resident's messages need no key of their own: the case service locks
// the resident's identity row before any lookup, which orders them.
func LockKeys(msgs []Message) []int64 {
	keys := make([]int64, 0, 4*len(msgs))
	for _, m := range msgs {
		keys = append(keys, lockKey("post", m.Account, m.ExternalID), lockKey("dedupe", m.Account, m.DedupeKey))
		if m.InReplyTo != "" {
			keys = append(keys, lockKey("post", m.Account, m.InReplyTo))
		}
		if m.Conversation != "" {
			// A conversation is named by its first post: the same key.
			keys = append(keys, lockKey("post", m.Account, m.Conversation))
		}
	}
	slices.SortFunc(keys, cmp.Compare[int64])
	return slices.Compact(keys)
}

// lockKey hashes one key to the 64 bits pg_advisory_xact_lock takes. Two
// keys that collide only wait for each other needlessly.
func lockKey(kind string, account int64, id string) int64 {
	h := fnv.New64a()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, account, 10))
	h.Write([]byte{0})
	h.Write([]byte(id))
	return int64(h.Sum64())
}
