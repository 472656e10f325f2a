package threading_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/citizeninbox/inbox/internal/threading"
)

const acct, otherAcct = 1, 2

// Residents' contact identities.
const alice, bob, carol = 10, 20, 30

func pub(id string, who int64, inReplyTo, conv string) threading.Message {
	return threading.Message{Account: acct, Identity: who, DedupeKey: "k" + id,
		ExternalID: id, InReplyTo: inReplyTo, Conversation: conv}
}

func dm(id string, who int64) threading.Message {
	return threading.Message{Account: acct, Identity: who, DedupeKey: "k" + id, ExternalID: id, Private: true}
}

type (
	posts   = map[threading.Post]int64
	replies = map[threading.ResidentPost]int64
	opens   = map[threading.Resident]int64
	cases   = map[int64]threading.Case
)

func post(id string) threading.Post { return threading.Post{Account: acct, ID: id} }
func rp(id string, who int64) threading.ResidentPost {
	return threading.ResidentPost{Account: acct, ID: id, Identity: who}
}
func res(who int64) threading.Resident { return threading.Resident{Account: acct, Identity: who} }

func join(id int64, status string) threading.Decision {
	return threading.Decision{Action: threading.Join, Case: threading.Stored(id), Status: status}
}

func joinNew(opener int, status string) threading.Decision {
	return threading.Decision{Action: threading.Join, Case: threading.Opened(opener), Status: status}
}

func reopen(id int64) threading.Decision {
	return threading.Decision{Action: threading.Reopen, Case: threading.Stored(id), Status: threading.StatusOpen}
}

func start(i int, post string, postCase threading.Ref) threading.Decision {
	return threading.Decision{Action: threading.Start, Case: threading.Opened(i), Status: threading.StatusNew,
		Context: threading.Context{Post: post, Case: postCase}}
}

func TestDecide(t *testing.T) {
	const (
		New, Open, Awaiting = threading.StatusNew, threading.StatusOpen, threading.StatusAwaitingResident
		Resolved, Closed    = threading.StatusResolved, threading.StatusClosed
	)
	none := threading.Ref{}
	tests := []struct {
		name string
		lk   threading.Lookups
		msgs []threading.Message
		want []threading.Decision
	}{
		// Rules that held before cases became one resident's.
		{
			name: "a new post opens a case",
			msgs: []threading.Message{pub("p1", alice, "", "p1")},
			want: []threading.Decision{start(0, "", none)},
		},
		{
			name: "a reply to the resident's post joins its case",
			lk:   threading.Lookups{Posts: posts{post("p1"): 5}, Cases: cases{5: {5, alice, Open}}},
			msgs: []threading.Message{pub("r1", alice, "p1", "")},
			want: []threading.Decision{join(5, Open)},
		},
		{
			name: "a reply to the council's post in the resident's case joins it",
			lk:   threading.Lookups{Posts: posts{post("ours"): 5}, Cases: cases{5: {5, alice, New}}},
			msgs: []threading.Message{pub("r1", alice, "ours", "p1")},
			want: []threading.Decision{join(5, New)},
		},
		{
			name: "a reply to a resolved case reopens it, once",
			lk:   threading.Lookups{Posts: posts{post("p1"): 5}, Cases: cases{5: {5, alice, Resolved}}},
			msgs: []threading.Message{pub("r1", alice, "p1", ""), pub("r2", alice, "r1", "")},
			want: []threading.Decision{reopen(5), join(5, Open)},
		},
		{
			name: "the resident's answer returns a case awaiting them to open",
			lk:   threading.Lookups{Open: opens{res(alice): 5}, Cases: cases{5: {5, alice, Awaiting}}},
			msgs: []threading.Message{dm("d1", alice)},
			want: []threading.Decision{join(5, Open)},
		},
		{
			name: "a reply to a closed case opens a new one, with the closed case as context",
			lk:   threading.Lookups{Posts: posts{post("p1"): 5}, Cases: cases{5: {5, alice, Closed}}},
			msgs: []threading.Message{pub("r1", alice, "p1", "")},
			want: []threading.Decision{start(0, "p1", threading.Stored(5))},
		},
		{
			name: "later replies to the closed case's post share the new case, in one batch",
			lk:   threading.Lookups{Posts: posts{post("p1"): 5}, Cases: cases{5: {5, alice, Closed}}},
			msgs: []threading.Message{pub("r1", alice, "p1", ""), pub("r2", alice, "p1", "")},
			want: []threading.Decision{start(0, "p1", threading.Stored(5)), joinNew(0, New)},
		},
		{
			name: "later replies to the closed case's post share the new case, across batches",
			lk: threading.Lookups{Posts: posts{post("p1"): 5}, Replies: replies{rp("p1", alice): 6},
				Cases: cases{5: {5, alice, Closed}, 6: {6, alice, Open}}},
			msgs: []threading.Message{pub("r2", alice, "p1", "")},
			want: []threading.Decision{join(6, Open)},
		},
		{
			name: "a direct message joins the resident's open case on the account",
			lk:   threading.Lookups{Open: opens{res(alice): 5}, Cases: cases{5: {5, alice, Open}}},
			msgs: []threading.Message{dm("d1", alice), dm("d2", bob)},
			want: []threading.Decision{join(5, Open), start(1, "", none)},
		},
		{
			name: "a direct message after the resident's case closed opens a new one",
			msgs: []threading.Message{dm("d1", alice)},
			want: []threading.Decision{start(0, "", none)},
		},
		{
			name: "a public post does not join the resident's open case by itself",
			lk:   threading.Lookups{Open: opens{res(alice): 5}, Cases: cases{5: {5, alice, Open}}},
			msgs: []threading.Message{pub("p2", alice, "", "p2")},
			want: []threading.Decision{start(0, "", none)},
		},
		{
			name: "a public message joins the resident's latest case in the conversation",
			lk: threading.Lookups{Conversations: replies{rp("root", alice): 5},
				Cases: cases{5: {5, alice, Open}}},
			msgs: []threading.Message{pub("r1", alice, "unknown", "root")},
			want: []threading.Decision{join(5, Open)},
		},
		{
			name: "a closed case in the conversation is not joined",
			lk: threading.Lookups{Conversations: replies{rp("root", alice): 5},
				Cases: cases{5: {5, alice, Closed}}},
			msgs: []threading.Message{pub("r1", alice, "unknown", "root")},
			want: []threading.Decision{start(0, "unknown", none)},
		},
		{
			name: "a direct message does not thread by conversation",
			lk: threading.Lookups{Conversations: replies{rp("dmconv", alice): 5},
				Cases: cases{5: {5, alice, Closed}}},
			msgs: []threading.Message{func() threading.Message { m := dm("d1", alice); m.Conversation = "dmconv"; return m }()},
			want: []threading.Decision{start(0, "", none)},
		},
		{
			name: "messages of one batch thread onto each other",
			msgs: []threading.Message{
				pub("p1", alice, "", "p1"), pub("r1", alice, "p1", "p1"), dm("d1", carol), dm("d2", carol),
				pub("r2", alice, "r1", "p1"), dm("d3", alice),
			},
			want: []threading.Decision{
				start(0, "", none), joinNew(0, New), start(2, "", none), joinNew(2, New),
				joinNew(0, New), joinNew(0, New),
			},
		},
		{
			name: "a reply stored before its parent: the parent joins the reply's case",
			lk:   threading.Lookups{Replies: replies{rp("p1", alice): 7}, Cases: cases{7: {7, alice, New}}},
			msgs: []threading.Message{pub("p1", alice, "", "p1")},
			want: []threading.Decision{join(7, New)},
		},
		{
			name: "a reply ahead of its parent in one batch: they share a case",
			msgs: []threading.Message{pub("r1", alice, "p1", ""), pub("p1", alice, "", "p1")},
			want: []threading.Decision{start(0, "p1", none), joinNew(0, New)},
		},

		// A case is one resident's.
		{
			name: "another resident's reply to the council's post in a resident's case opens their own, with context",
			lk:   threading.Lookups{Posts: posts{post("ours"): 5}, Cases: cases{5: {5, alice, Open}}},
			msgs: []threading.Message{pub("r1", bob, "ours", "p1")},
			want: []threading.Decision{start(0, "ours", threading.Stored(5))},
		},
		{
			name: "another resident's reply to a resident's post opened in the same batch",
			msgs: []threading.Message{pub("p1", alice, "", "p1"), pub("r1", bob, "p1", "p1"), pub("r2", alice, "p1", "p1")},
			want: []threading.Decision{start(0, "", none), start(1, "p1", threading.Opened(0)), joinNew(0, New)},
		},
		{
			name: "two residents replying under one council broadcast make two cases",
			msgs: []threading.Message{pub("r1", alice, "broadcast", "broadcast"), pub("r2", bob, "broadcast", "broadcast")},
			want: []threading.Decision{start(0, "broadcast", none), start(1, "broadcast", none)},
		},
		{
			name: "a resident replying again under the broadcast joins their own case, in one batch",
			msgs: []threading.Message{
				pub("r1", alice, "broadcast", ""), pub("r2", bob, "broadcast", ""), pub("r3", alice, "broadcast", ""),
			},
			want: []threading.Decision{start(0, "broadcast", none), start(1, "broadcast", none), joinNew(0, New)},
		},
		{
			name: "a resident replying again under the broadcast joins their own case, across batches",
			lk: threading.Lookups{Replies: replies{rp("broadcast", alice): 5, rp("broadcast", bob): 6},
				Cases: cases{5: {5, alice, Open}, 6: {6, bob, Open}}},
			msgs: []threading.Message{pub("r3", bob, "broadcast", ""), pub("r4", alice, "broadcast", "")},
			want: []threading.Decision{join(6, Open), join(5, Open)},
		},
		{
			name: "a resident replying elsewhere in another resident's conversation joins their own case there",
			lk: threading.Lookups{Posts: posts{post("p2"): 5}, Conversations: replies{rp("p1", bob): 6},
				Cases: cases{5: {5, alice, Open}, 6: {6, bob, Open}}},
			msgs: []threading.Message{pub("r1", bob, "p2", "p1")},
			want: []threading.Decision{join(6, Open)},
		},
		{
			name: "no lookup can put a message on another resident's case",
			lk: threading.Lookups{
				Posts:         posts{post("p1"): 5},
				Replies:       replies{rp("p1", bob): 5, rp("r1", bob): 5},
				Conversations: replies{rp("c1", bob): 5},
				Open:          opens{res(bob): 5},
				Cases:         cases{5: {5, alice, Open}},
			},
			msgs: []threading.Message{pub("r1", bob, "p1", "c1"), func() threading.Message { m := dm("d1", bob); return m }()},
			want: []threading.Decision{start(0, "p1", threading.Stored(5)), joinNew(0, New)},
		},
		{
			name: "a message naming its resident's case reference joins it, over their open case",
			lk: threading.Lookups{References: replies{rp("C-2026-000005", alice): 5}, Open: opens{res(alice): 6},
				Cases: cases{5: {5, alice, Resolved}, 6: {6, alice, Open}}},
			msgs: []threading.Message{func() threading.Message { m := dm("e1", alice); m.CaseReference = "C-2026-000005"; return m }()},
			want: []threading.Decision{reopen(5)},
		},
		{
			name: "another resident's case reference is not theirs",
			lk:   threading.Lookups{References: replies{rp("C-2026-000005", alice): 5}, Cases: cases{5: {5, alice, Open}}},
			msgs: []threading.Message{func() threading.Message { m := dm("e1", bob); m.CaseReference = "C-2026-000005"; return m }()},
			want: []threading.Decision{start(0, "", none)},
		},
		{
			name: "the message answered wins over a reference",
			lk: threading.Lookups{Posts: posts{post("ours"): 7}, References: replies{rp("C-2026-000005", alice): 5},
				Cases: cases{5: {5, alice, Open}, 7: {7, alice, Open}}},
			msgs: []threading.Message{func() threading.Message {
				m := dm("e1", alice)
				m.InReplyTo, m.CaseReference = "ours", "C-2026-000005"
				return m
			}()},
			want: []threading.Decision{join(7, Open)},
		},
		{
			name: "accounts do not share threads",
			lk:   threading.Lookups{Posts: posts{post("p1"): 5}, Cases: cases{5: {5, alice, Open}}},
			msgs: []threading.Message{func() threading.Message { m := pub("r1", alice, "p1", ""); m.Account = otherAcct; return m }()},
			want: []threading.Decision{start(0, "p1", none)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := threading.Decide(tt.msgs, tt.lk)
			if !slices.Equal(got, tt.want) {
				for i := range max(len(got), len(tt.want)) {
					var g, w threading.Decision
					if i < len(got) {
						g = got[i]
					}
					if i < len(tt.want) {
						w = tt.want[i]
					}
					if g != w {
						t.Errorf("message %d: got %+v, want %+v", i, g, w)
					}
				}
			}
		})
	}
}

// Fifty residents replying to the council's road closure make fifty cases,
// and one of them replying again joins their own.
func TestFiftyRepliesToOneBroadcastAreFiftyCases(t *testing.T) {
	var msgs []threading.Message
	for i := range 50 {
		msgs = append(msgs, pub(fmt.Sprint("r", i), int64(100+i), "closure", "closure"))
	}
	msgs = append(msgs, pub("again", 107, "closure", "closure"))
	got := threading.Decide(msgs, threading.Lookups{})
	for i := range 50 {
		if got[i] != start(i, "closure", threading.Ref{}) {
			t.Errorf("reply %d: %+v", i, got[i])
		}
	}
	if got[50] != joinNew(7, threading.StatusNew) {
		t.Errorf("second reply of resident 107: %+v, want it on their case", got[50])
	}
}

func TestNeedsOf(t *testing.T) {
	d := dm("d1", carol)
	d.Conversation = "dmconv"
	d.CaseReference = "C-2026-000009"
	got := threading.NeedsOf([]threading.Message{
		pub("p1", alice, "", "p1"), pub("r1", bob, "p1", "p1"), pub("r2", bob, "p1", "p1"), d,
	})
	want := threading.Needs{
		Posts:         []threading.Post{post("p1")},
		Replies:       []threading.ResidentPost{rp("p1", alice), rp("p1", bob), rp("r1", bob), rp("r2", bob), rp("d1", carol)},
		Conversations: []threading.ResidentPost{rp("p1", alice), rp("p1", bob)},
		References:    []threading.ResidentPost{rp("C-2026-000009", carol)},
		Open:          []threading.Resident{res(carol)},
	}
	if !slices.Equal(got.Posts, want.Posts) || !slices.Equal(got.Replies, want.Replies) ||
		!slices.Equal(got.Conversations, want.Conversations) || !slices.Equal(got.Open, want.Open) ||
		!slices.Equal(got.References, want.References) {
		t.Errorf("needs\n got %+v\nwant %+v", got, want)
	}
}

func TestLockKeys(t *testing.T) {
	shares := func(a, b []int64) bool {
		for _, k := range a {
			if slices.Contains(b, k) {
				return true
			}
		}
		return false
	}
	keys := func(ms ...threading.Message) []int64 { return threading.LockKeys(ms) }
	parent := pub("p1", alice, "", "")
	reply := pub("r1", bob, "p1", "")
	inConversation := pub("r2", carol, "unknown", "p1")
	copyOf := parent
	sameKey := pub("other-id", alice, "", "")
	sameKey.DedupeKey = parent.DedupeKey
	elsewhere := reply
	elsewhere.Account = otherAcct
	dm1, dm2 := dm("d1", carol), dm("d2", carol)
	stranger := pub("s1", carol, "", "")

	for _, tt := range []struct {
		name string
		a, b threading.Message
		want bool
	}{
		{"a reply waits for its parent", parent, reply, true},
		{"a reply in the conversation waits for its root", parent, inConversation, true},
		{"two copies of a message wait for each other", parent, copyOf, true},
		{"two messages with one dedupe key wait for each other", parent, sameKey, true},
		{"a resident's direct messages in no thread do not wait (their identity row orders them)", dm1, dm2, false},
		{"unrelated messages do not wait", parent, stranger, false},
		{"another account's thread does not wait", parent, elsewhere, false},
	} {
		if got := shares(keys(tt.a), keys(tt.b)); got != tt.want {
			t.Errorf("%s: shared a key %v, want %v", tt.name, got, tt.want)
		}
	}
	all := keys(parent, reply, copyOf, dm1, dm2, inConversation)
	if !slices.IsSorted(all) || len(slices.Compact(slices.Clone(all))) != len(all) {
		t.Errorf("keys %v are not sorted and unique", all)
	}
}
