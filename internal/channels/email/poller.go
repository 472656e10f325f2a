package email

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/emersion/go-imap"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Poller reads the council's mailbox. Each poll connects, opens the
// mailbox read-only, and fetches the messages after the cursor's UID
// (see the package documentation).
type Poller struct {
	Mailbox *Mailbox
	Account Account
	// IdleFor is the longest a poll that found nothing waits in IDLE for
	// new mail, where the server offers IDLE; zero never waits.
	IdleFor time.Duration
	// Log notes messages that made no case, by kind and count only; nil
	// discards.
	Log *slog.Logger
}

var _ channels.Poller = (*Poller)(nil)

// Poll fetches the messages after cursor and returns their resident
// messages, oldest first, and the cursor of the last one fetched.
// Messages that make no case move the cursor on all the same.
func (p *Poller) Poll(ctx context.Context, cursor string) ([]channels.Inbound, string, error) {
	cur, err := ParseCursor(cursor)
	if err != nil {
		return nil, cursor, err
	}
	ic, err := p.Mailbox.connect(ctx)
	if err != nil {
		return nil, cursor, err
	}
	defer ic.close()
	status, err := ic.c.Select(p.Mailbox.Name, true)
	if err != nil {
		return nil, cursor, fmt.Errorf("email: EXAMINE mailbox: %w", err)
	}
	if status.UidValidity == 0 {
		return nil, cursor, errors.New("email: the mailbox has no UIDVALIDITY")
	}
	switch {
	case cur.UIDValidity == 0:
		// The first poll: from the first message nobody has read (the
		// mail waiting for an answer), or from new mail when all is read,
		// never the mailbox's whole history.
		if cur, err = p.start(ic, status.UidValidity, status.UidNext); err != nil {
			return nil, cursor, err
		}
	case cur.UIDValidity != status.UidValidity:
		// The server renumbered the mailbox: read it again from its
		// first message; Message-IDs keep what was taken from making
		// anything twice.
		if p.Log != nil {
			p.Log.Warn("email: the mailbox's UIDVALIDITY changed; reading it again from the start", "account", p.Account.Slug)
		}
		cur = Cursor{UIDValidity: status.UidValidity}
	}
	msgs, next, err := p.fetch(ic, cur)
	if err != nil {
		return nil, cursor, err
	}
	if next == cur && p.IdleFor > 0 {
		if ok, _ := ic.c.Support("IDLE"); ok {
			wait := p.IdleFor
			if dl, ok := ctx.Deadline(); ok {
				// Leave time to fetch and hand the messages over.
				wait = min(wait, time.Until(dl)-2*time.Second)
			}
			until := time.Now().Add(wait)
			for wait > 0 && next == cur {
				woke, err := ic.idle(ctx, wait)
				if err != nil && ctx.Err() == nil {
					return nil, cursor, fmt.Errorf("email: IDLE: %w", err)
				}
				if !woke || ctx.Err() != nil {
					break
				}
				if msgs, next, err = p.fetch(ic, cur); err != nil {
					return nil, cursor, err
				}
				wait = time.Until(until)
			}
		}
	}
	if ctx.Err() != nil {
		return nil, cursor, ctx.Err()
	}
	if next.UIDValidity == 0 {
		next = cur
	}
	return msgs, next.String(), nil
}

// start is where a first poll starts: just before the first message not
// \Seen, else at the end of the mailbox.
func (p *Poller) start(ic *imapConn, validity, uidNext uint32) (Cursor, error) {
	crit := imap.NewSearchCriteria()
	crit.WithoutFlags = []string{imap.SeenFlag}
	uids, err := ic.c.UidSearch(crit)
	if err != nil {
		return Cursor{}, fmt.Errorf("email: UID SEARCH UNSEEN: %w", err)
	}
	if len(uids) == 0 {
		if uidNext == 0 {
			return Cursor{UIDValidity: validity}, nil
		}
		return Cursor{UIDValidity: validity, UID: uidNext - 1}, nil
	}
	return Cursor{UIDValidity: validity, UID: slices.Min(uids) - 1}, nil
}

// entry is a message's place and size in the mailbox.
type entry struct {
	uid  uint32
	size uint32
	date time.Time
}

// fetch reads up to PageSize messages after cur.
func (p *Poller) fetch(ic *imapConn, cur Cursor) ([]channels.Inbound, Cursor, error) {
	if cur.UID == math.MaxUint32 {
		return nil, cur, nil
	}
	from := new(imap.SeqSet)
	from.AddRange(cur.UID+1, 0)
	ch := make(chan *imap.Message, 32)
	errc := make(chan error, 1)
	go func() {
		errc <- ic.c.UidFetch(from, []imap.FetchItem{imap.FetchUid, imap.FetchRFC822Size, imap.FetchInternalDate}, ch)
	}()
	var entries []entry
	for m := range ch {
		// n:* names the last message even when its UID is below n.
		if m.Uid > cur.UID {
			entries = append(entries, entry{uid: m.Uid, size: m.Size, date: m.InternalDate})
		}
	}
	if err := <-errc; err != nil {
		return nil, cur, fmt.Errorf("email: UID FETCH: %w", err)
	}
	if len(entries) == 0 {
		return nil, cur, nil
	}
	slices.SortFunc(entries, func(a, b entry) int { return int(int64(a.uid) - int64(b.uid)) })
	entries = entries[:min(len(entries), PageSize)]

	whole, headers := new(imap.SeqSet), new(imap.SeqSet)
	for _, e := range entries {
		if e.size > MaxMessageSize {
			headers.AddNum(e.uid)
		} else {
			whole.AddNum(e.uid)
		}
	}
	bodies := map[uint32][]byte{}
	wholeSection := &imap.BodySectionName{Peek: true}
	headerSection := &imap.BodySectionName{BodyPartName: imap.BodyPartName{Specifier: imap.HeaderSpecifier}, Peek: true}
	for _, f := range []struct {
		set     *imap.SeqSet
		section *imap.BodySectionName
	}{{whole, wholeSection}, {headers, headerSection}} {
		if f.set.Empty() {
			continue
		}
		ch := make(chan *imap.Message, 8)
		go func() {
			errc <- ic.c.UidFetch(f.set, []imap.FetchItem{imap.FetchUid, f.section.FetchItem()}, ch)
		}()
		for m := range ch {
			if lit := m.GetBody(f.section); lit != nil {
				b := make([]byte, 0, lit.Len())
				buf := make([]byte, 32<<10)
				for {
					n, err := lit.Read(buf)
					b = append(b, buf[:n]...)
					if err != nil || len(b) > MaxMessageSize {
						break
					}
				}
				bodies[m.Uid] = b
			}
		}
		if err := <-errc; err != nil {
			return nil, cur, fmt.Errorf("email: UID FETCH BODY.PEEK: %w", err)
		}
	}

	var msgs []channels.Inbound
	ignoredKinds := map[string]int{}
	next := cur
	for _, e := range entries {
		next.UID = e.uid
		body, ok := bodies[e.uid]
		if !ok {
			// Expunged between the two fetches: nothing to take.
			continue
		}
		var m *Message
		var err error
		if e.size > MaxMessageSize {
			m, err = ParseHeader(body, int64(e.size))
		} else {
			m, err = Parse(body)
		}
		if err != nil {
			ignoredKinds[IgnoredUnreadable]++
			continue
		}
		in, kind := m.Inbound(p.Account, Cursor{UIDValidity: cur.UIDValidity, UID: e.uid}, e.date)
		if in == nil {
			ignoredKinds[kind]++
			continue
		}
		msgs = append(msgs, *in)
	}
	if len(ignoredKinds) > 0 && p.Log != nil {
		p.Log.Info("email: messages that made no case", "account", p.Account.Slug, "ignored", ignoredKinds)
	}
	return msgs, next, nil
}
