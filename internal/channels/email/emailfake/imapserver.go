// Package emailfake is a council's mail servers for tests and the
// simulator: a real IMAP server (go-imap's) over one mailbox held in
// memory, and a real SMTP server (go-smtp's) that keeps what the council
// sends. Both listen on local ports and take one username and password.
package emailfake

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/backend"
	"github.com/emersion/go-imap/backend/backendutil"
	"github.com/emersion/go-imap/commands"
	"github.com/emersion/go-imap/responses"
	imapserver "github.com/emersion/go-imap/server"
	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// stored is one message in the mailbox.
type stored struct {
	uid   uint32
	date  time.Time
	flags []string
	body  []byte
}

// mailbox is the council's INBOX, shared by every IMAP session.
type mailbox struct {
	mu          sync.Mutex
	uidValidity uint32
	uidNext     uint32
	msgs        []*stored
	// fetchedBodies counts BODY[] fetches.
	fetchedBodies int
	// changed is closed, and replaced, when a message is added.
	changed chan struct{}
}

// watch returns a channel closed when the next message is added.
func (mb *mailbox) watch() <-chan struct{} {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.changed == nil {
		mb.changed = make(chan struct{})
	}
	return mb.changed
}

func (mb *mailbox) add(body []byte, date time.Time) uint32 {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	uid := mb.uidNext
	mb.uidNext++
	mb.msgs = append(mb.msgs, &stored{uid: uid, date: date, body: append([]byte(nil), body...)})
	if mb.changed != nil {
		close(mb.changed)
		mb.changed = nil
	}
	return uid
}

// imapBackend is the go-imap backend: one user, one mailbox.
type imapBackend struct {
	s *Server
}

func (b *imapBackend) Login(_ *imap.ConnInfo, username, password string) (backend.User, error) {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if username != s.username || password != s.password {
		s.refusedLogins++
		return nil, &imap.ErrStatusResp{Resp: &imap.StatusResp{Type: imap.StatusRespNo, Code: "AUTHENTICATIONFAILED", Info: "Invalid credentials"}}
	}
	if s.loginFailures > 0 {
		s.loginFailures--
		return nil, &imap.ErrStatusResp{Resp: &imap.StatusResp{Type: imap.StatusRespNo, Code: imap.StatusRespCode(s.loginFailCode), Info: "Try again later"}}
	}
	s.logins++
	return &imapUser{s: s}, nil
}

// imapUser is one logged-in session.
type imapUser struct {
	s *Server
}

func (u *imapUser) Username() string { return u.s.username }

func (u *imapUser) ListMailboxes(bool) ([]backend.Mailbox, error) {
	return []backend.Mailbox{&imapMailbox{u: u}}, nil
}

func (u *imapUser) GetMailbox(name string) (backend.Mailbox, error) {
	if !strings.EqualFold(name, "INBOX") {
		return nil, backend.ErrNoSuchMailbox
	}
	return &imapMailbox{u: u}, nil
}

func (u *imapUser) CreateMailbox(string) error { return errors.New("this server has one mailbox") }
func (u *imapUser) DeleteMailbox(string) error { return errors.New("this server has one mailbox") }
func (u *imapUser) RenameMailbox(string, string) error {
	return errors.New("this server has one mailbox")
}

func (u *imapUser) Logout() error {
	u.s.endPoll(u)
	return nil
}

// imapMailbox is the INBOX as one session sees it.
type imapMailbox struct{ u *imapUser }

func (m *imapMailbox) mb() *mailbox { return m.u.s.box }

func (m *imapMailbox) Name() string { return "INBOX" }

func (m *imapMailbox) Info() (*imap.MailboxInfo, error) {
	return &imap.MailboxInfo{Delimiter: "/", Name: "INBOX"}, nil
}

func (m *imapMailbox) Status(items []imap.StatusItem) (*imap.MailboxStatus, error) {
	mb := m.mb()
	mb.mu.Lock()
	defer mb.mu.Unlock()
	st := imap.NewMailboxStatus("INBOX", items)
	st.Flags = []string{imap.SeenFlag, imap.AnsweredFlag, imap.FlaggedFlag, imap.DeletedFlag, imap.DraftFlag}
	st.PermanentFlags = []string{"\\*"}
	for i, msg := range mb.msgs {
		if !hasFlag(msg.flags, imap.SeenFlag) {
			st.UnseenSeqNum = uint32(i + 1)
			break
		}
	}
	for _, it := range items {
		switch it {
		case imap.StatusMessages:
			st.Messages = uint32(len(mb.msgs))
		case imap.StatusUidNext:
			st.UidNext = mb.uidNext
		case imap.StatusUidValidity:
			st.UidValidity = mb.uidValidity
		case imap.StatusRecent:
			st.Recent = 0
		case imap.StatusUnseen:
			n := 0
			for _, msg := range mb.msgs {
				if !hasFlag(msg.flags, imap.SeenFlag) {
					n++
				}
			}
			st.Unseen = uint32(n)
		}
	}
	return st, nil
}

func hasFlag(flags []string, flag string) bool {
	for _, f := range flags {
		if strings.EqualFold(f, flag) {
			return true
		}
	}
	return false
}

func (m *imapMailbox) SetSubscribed(bool) error { return nil }
func (m *imapMailbox) Check() error             { return nil }

func (m *imapMailbox) ListMessages(uid bool, set *imap.SeqSet, items []imap.FetchItem, ch chan<- *imap.Message) error {
	defer close(ch)
	if uid && len(set.Set) == 1 && set.Set[0].Stop == 0 {
		m.u.s.startPoll(m.u) // "UID FETCH n:*": a poll of new mail
	}
	mb := m.mb()
	mb.mu.Lock()
	type one struct {
		seq uint32
		msg stored
	}
	var picked []one
	for i, msg := range mb.msgs {
		id := msg.uid
		if !uid {
			id = uint32(i + 1)
		}
		if set.Contains(id) {
			picked = append(picked, one{uint32(i + 1), *msg})
		}
	}
	if uid && len(picked) == 0 && len(set.Set) > 0 && set.Set[len(set.Set)-1].Stop == 0 && len(mb.msgs) > 0 {
		// "n:*" with n past the last UID names the last message (RFC 3501).
		last := mb.msgs[len(mb.msgs)-1]
		picked = append(picked, one{uint32(len(mb.msgs)), *last})
	}
	for _, it := range items {
		if strings.HasPrefix(string(it), "BODY") && it != imap.FetchBodyStructure && it != imap.FetchBody {
			mb.fetchedBodies += len(picked)
		}
	}
	mb.mu.Unlock()
	for _, p := range picked {
		ch <- fetch(p.seq, &p.msg, items)
	}
	return nil
}

func fetch(seq uint32, msg *stored, items []imap.FetchItem) *imap.Message {
	out := imap.NewMessage(seq, items)
	for _, it := range items {
		switch it {
		case imap.FetchEnvelope:
			hdr, _, _ := headerAndBody(msg.body)
			out.Envelope, _ = backendutil.FetchEnvelope(hdr)
		case imap.FetchBody, imap.FetchBodyStructure:
			hdr, body, _ := headerAndBody(msg.body)
			out.BodyStructure, _ = backendutil.FetchBodyStructure(hdr, body, it == imap.FetchBodyStructure)
		case imap.FetchFlags:
			out.Flags = append([]string(nil), msg.flags...)
		case imap.FetchInternalDate:
			out.InternalDate = msg.date
		case imap.FetchRFC822Size:
			out.Size = uint32(len(msg.body))
		case imap.FetchUid:
			out.Uid = msg.uid
		default:
			section, err := imap.ParseBodySectionName(it)
			if err != nil {
				continue
			}
			hdr, body, err := headerAndBody(msg.body)
			if err != nil {
				continue
			}
			l, _ := backendutil.FetchBodySection(hdr, body, section)
			out.Body[section] = l
		}
	}
	return out
}

func headerAndBody(b []byte) (textproto.Header, io.Reader, error) {
	r := bufio.NewReader(bytes.NewReader(b))
	hdr, err := textproto.ReadHeader(r)
	return hdr, r, err
}

func (m *imapMailbox) SearchMessages(uid bool, c *imap.SearchCriteria) ([]uint32, error) {
	mb := m.mb()
	mb.mu.Lock()
	defer mb.mu.Unlock()
	var ids []uint32
	for i, msg := range mb.msgs {
		e, err := message.Read(bytes.NewReader(msg.body))
		if err != nil && e == nil {
			continue
		}
		if ok, err := backendutil.Match(e, uint32(i+1), msg.uid, msg.date, msg.flags, c); err != nil || !ok {
			continue
		}
		if uid {
			ids = append(ids, msg.uid)
		} else {
			ids = append(ids, uint32(i+1))
		}
	}
	return ids, nil
}

func (m *imapMailbox) CreateMessage(flags []string, date time.Time, body imap.Literal) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if date.IsZero() {
		date = time.Now()
	}
	m.u.s.Append(b, date, flags...)
	return nil
}

func (m *imapMailbox) UpdateMessagesFlags(uid bool, set *imap.SeqSet, op imap.FlagsOp, flags []string) error {
	mb := m.mb()
	mb.mu.Lock()
	defer mb.mu.Unlock()
	for i, msg := range mb.msgs {
		id := msg.uid
		if !uid {
			id = uint32(i + 1)
		}
		if set.Contains(id) {
			msg.flags = backendutil.UpdateFlags(msg.flags, op, flags)
		}
	}
	return nil
}

func (m *imapMailbox) CopyMessages(bool, *imap.SeqSet, string) error {
	return errors.New("this server has one mailbox")
}

func (m *imapMailbox) Expunge() error {
	mb := m.mb()
	mb.mu.Lock()
	defer mb.mu.Unlock()
	kept := mb.msgs[:0]
	for _, msg := range mb.msgs {
		if !hasFlag(msg.flags, imap.DeletedFlag) {
			kept = append(kept, msg)
		}
	}
	mb.msgs = kept
	return nil
}

// idleExtension serves IDLE itself, telling the session of new mail as
// it comes (go-imap's own IDLE relies on backend updates whose broadcast
// races with logins). Enable skips extensions that serve IDLE, so it
// serves it only once on.
type idleExtension struct {
	s  *Server
	on bool
}

func (e *idleExtension) Capabilities(imapserver.Conn) []string { return nil }

func (e *idleExtension) Command(name string) imapserver.HandlerFactory {
	if name != "IDLE" || !e.on {
		return nil
	}
	return func() imapserver.Handler { return &idleHandler{s: e.s} }
}

type idleHandler struct {
	commands.Idle
	s *Server
}

func (h *idleHandler) Handle(conn imapserver.Conn) error {
	if conn.Context().Mailbox == nil {
		return errors.New("no mailbox selected")
	}
	changed := h.s.box.watch()
	if err := conn.WriteResp(&imap.ContinuationReq{Info: "idling"}); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(conn)
		sc.Scan()
		if err := sc.Err(); err != nil {
			done <- err
			return
		}
		if !strings.EqualFold(sc.Text(), "DONE") {
			done <- errors.New("expected DONE")
			return
		}
		done <- nil
	}()
	for {
		select {
		case err := <-done:
			return err
		case <-changed:
			changed = h.s.box.watch()
			h.s.box.mu.Lock()
			st := imap.NewMailboxStatus("INBOX", []imap.StatusItem{imap.StatusMessages})
			st.Messages = uint32(len(h.s.box.msgs))
			h.s.box.mu.Unlock()
			if err := conn.WriteResp(&responses.Select{Mailbox: st}); err != nil {
				return err
			}
		}
	}
}
