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

var _ channels.IgnoringPoller = (*Poller)(nil)

// FirstPollWindow is how far back the first poll of an account looks for
// mail nobody has read.
const FirstPollWindow = 7 * 24 * time.Hour

// MaxPollBytes caps the size of the mail one poll fetches (always at
// least one message), so large mails drain over several polls.
const MaxPollBytes = 50 << 20

// uidChunk is how many UIDs one metadata FETCH spans.
const uidChunk = 1000

// Poll fetches the messages after cursor and returns their resident
// messages, oldest first, and the cursor of the last one fetched.
// Messages that make no case move the cursor on all the same.
func (p *Poller) Poll(ctx context.Context, cursor string) ([]channels.Inbound, string, error) {
	msgs, next, _, err := p.PollCounting(ctx, cursor)
	return msgs, next, err
}

// PollCounting polls as Poll does, and counts the mail that made no
// case by kind (auto_reply, bounce, receipt, own, no_sender, unreadable,
// forged).
func (p *Poller) PollCounting(ctx context.Context, cursor string) ([]channels.Inbound, string, map[string]int, error) {
	cur, err := ParseCursor(cursor)
	if err != nil {
		return nil, cursor, nil, err
	}
	ic, err := p.Mailbox.connect(ctx)
	if err != nil {
		return nil, cursor, nil, err
	}
	defer ic.close()
	status, err := ic.c.Select(p.Mailbox.Name, true)
	if err != nil {
		return nil, cursor, nil, fmt.Errorf("email: EXAMINE mailbox: %w", err)
	}
	if status.UidValidity == 0 {
		return nil, cursor, nil, errors.New("email: the mailbox has no UIDVALIDITY")
	}
	switch {
	case cur.UIDValidity == 0:
		// The first poll: from the first message nobody has read in the
		// last FirstPollWindow (the mail waiting for an answer), or from
		// new mail, never the mailbox's whole history.
		if cur, err = p.start(ic, status.UidValidity, status.UidNext); err != nil {
			return nil, cursor, nil, err
		}
	case cur.UIDValidity != status.UidValidity:
		// The server renumbered the mailbox: read it again from the
		// mail that came at or after the last one taken; dedupe keys keep
		// the overlap from making anything twice.
		if p.Log != nil {
			p.Log.Warn("email: the mailbox's UIDVALIDITY changed; reading it again from the last mail taken", "account", p.Account.Slug)
		}
		if cur, err = p.restart(ic, status.UidValidity, status.UidNext, cur.At()); err != nil {
			return nil, cursor, nil, err
		}
	}
	ignored := map[string]int{}
	msgs, next, err := p.fetch(ic, cur, status.UidNext, ignored)
	if err != nil {
		return nil, cursor, nil, err
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
					return nil, cursor, nil, fmt.Errorf("email: IDLE: %w", err)
				}
				if !woke || ctx.Err() != nil {
					break
				}
				if msgs, next, err = p.fetch(ic, cur, 0, ignored); err != nil {
					return nil, cursor, nil, err
				}
				wait = time.Until(until)
			}
		}
	}
	if ctx.Err() != nil {
		return nil, cursor, nil, ctx.Err()
	}
	if next.UIDValidity == 0 {
		next = cur
	}
	if len(ignored) > 0 && p.Log != nil {
		p.Log.Info("email: messages that made no case", "account", p.Account.Slug, "ignored", ignored)
	}
	return msgs, next.String(), ignored, nil
}

// start is where a first poll starts: just before the first message not
// \Seen that came in the last FirstPollWindow, else at the end of the
// mailbox.
func (p *Poller) start(ic *imapConn, validity, uidNext uint32) (Cursor, error) {
	crit := imap.NewSearchCriteria()
	crit.WithoutFlags = []string{imap.SeenFlag}
	crit.Since = day(time.Now().Add(-FirstPollWindow))
	uids, err := ic.c.UidSearch(crit)
	if err != nil {
		return Cursor{}, fmt.Errorf("email: UID SEARCH UNSEEN: %w", err)
	}
	if len(uids) == 0 {
		return endOf(validity, uidNext), nil
	}
	return Cursor{UIDValidity: validity, UID: slices.Min(uids) - 1}, nil
}

// restart is where a poll of a renumbered mailbox starts: just before the
// first message whose INTERNALDATE is at or after since. A cursor that
// kept no time starts as a first poll does.
func (p *Poller) restart(ic *imapConn, validity, uidNext uint32, since time.Time) (Cursor, error) {
	if since.IsZero() {
		return p.start(ic, validity, uidNext)
	}
	crit := imap.NewSearchCriteria()
	// SEARCH compares days, in the server's time zone: a day's margin,
	// INTERNALDATE itself being compared below.
	crit.Since = day(since.AddDate(0, 0, -1))
	uids, err := ic.c.UidSearch(crit)
	if err != nil {
		return Cursor{}, fmt.Errorf("email: UID SEARCH SINCE: %w", err)
	}
	slices.Sort(uids)
	for len(uids) > 0 {
		batch := uids[:min(len(uids), uidChunk)]
		uids = uids[len(batch):]
		set := new(imap.SeqSet)
		set.AddNum(batch...)
		entries, err := ic.entries(set, 0)
		if err != nil {
			return Cursor{}, err
		}
		for _, e := range entries {
			if !e.date.Before(since) {
				return Cursor{UIDValidity: validity, UID: e.uid - 1, Time: since.Unix()}, nil
			}
		}
	}
	c := endOf(validity, uidNext)
	c.Time = since.Unix()
	return c, nil
}

// day is t's date, as IMAP SEARCH compares them.
func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func endOf(validity, uidNext uint32) Cursor {
	if uidNext == 0 {
		return Cursor{UIDValidity: validity}
	}
	return Cursor{UIDValidity: validity, UID: uidNext - 1}
}

// entry is a message's place and size in the mailbox.
type entry struct {
	uid  uint32
	size uint32
	date time.Time
}

// entries fetches the UID, size and INTERNALDATE of the messages in set
// with a UID above after, in UID order.
func (ic *imapConn) entries(set *imap.SeqSet, after uint32) ([]entry, error) {
	ch := make(chan *imap.Message, 32)
	errc := make(chan error, 1)
	go func() {
		errc <- ic.c.UidFetch(set, []imap.FetchItem{imap.FetchUid, imap.FetchRFC822Size, imap.FetchInternalDate}, ch)
	}()
	var entries []entry
	for m := range ch {
		// n:* names the last message even when its UID is below n.
		if m.Uid > after {
			entries = append(entries, entry{uid: m.Uid, size: m.Size, date: m.InternalDate})
		}
	}
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("email: UID FETCH: %w", err)
	}
	slices.SortFunc(entries, func(a, b entry) int { return int(int64(a.uid) - int64(b.uid)) })
	return entries, nil
}

// fetch reads the messages after cur: at most PageSize of them and
// MaxPollBytes (at least one), looking at the mailbox's UIDs in chunks
// of uidChunk up to uidNext (0 when not known) and past it.
func (p *Poller) fetch(ic *imapConn, cur Cursor, uidNext uint32, ignoredKinds map[string]int) ([]channels.Inbound, Cursor, error) {
	if cur.UID == math.MaxUint32 {
		return nil, cur, nil
	}
	var entries []entry
	lo := cur.UID + 1
	scanned := cur.UID // the UIDs up to it are looked at and have nothing
	for len(entries) < PageSize {
		set := new(imap.SeqSet)
		last := uidNext == 0 || uint64(lo)+uidChunk > uint64(uidNext)
		if last {
			set.AddRange(lo, 0)
		} else {
			set.AddRange(lo, lo+uidChunk-1)
		}
		got, err := ic.entries(set, cur.UID)
		if err != nil {
			return nil, cur, err
		}
		entries = append(entries, got...)
		if last {
			break
		}
		scanned = lo + uidChunk - 1
		lo += uidChunk
	}
	if len(entries) == 0 {
		if scanned > cur.UID {
			// Only expunged UIDs below UIDNEXT: no need to look there again.
			cur.UID = scanned
		}
		return nil, cur, nil
	}
	entries = entries[:min(len(entries), PageSize)]
	var total int64
	for i, e := range entries {
		total += int64(min(e.size, MaxMessageSize))
		if i > 0 && total > MaxPollBytes {
			entries = entries[:i]
			break
		}
	}
	errc := make(chan error, 1)

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
	next := cur
	for _, e := range entries {
		next.UID = e.uid
		if !e.date.IsZero() {
			next.Time = e.date.Unix()
		}
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
	return msgs, next, nil
}
