package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/cases"
)

// Live updates. Each open queue or case page holds one server-sent event
// stream (GET /events), fed by an ordered consumer of the CASE_EVENTS
// stream of its own, so an event reaches every page whichever server
// process wrote it. An event carries no personal data: it names a case,
// and the page fetches what changed (hx-get) with the viewer's access.
//
// Every event has the stream sequence as its id. A page is rendered with
// the sequence it was read at (after=); the stream resumes after the
// larger of that and Last-Event-ID, so a page that reconnects, to this
// process or another after a restart, misses nothing. When more than
// replayLimit events were missed, the page is told to fetch once instead.
const (
	replayLimit  = 500
	pingInterval = 20 * time.Second
	// streamLifetime ends a stream after that long: the page reconnects
	// at once, through sign-in and access checks again, so a user signed
	// out, disabled or moved to another team stops hearing of cases.
	streamLifetime = 10 * time.Minute
	// consumerIdle is how long NATS keeps a page's consumer after its
	// stream is gone.
	consumerIdle = 30 * time.Second
)

// sse event names, as the templates' hx-trigger="sse:…" use them.
const (
	sseQueue    = "queue"
	sseCase     = "case"
	sseAnnounce = "announce"
	ssePresence = "presence"
)

// streamSeq is the sequence of the newest case event, for a page to
// resume its live updates from.
func (u *UI) streamSeq(ctx context.Context) uint64 {
	_, last := u.streamSeqs(ctx)
	return last
}

// streamSeqs are the sequences of the oldest and newest case events held.
func (u *UI) streamSeqs(ctx context.Context) (first, last uint64) {
	if u.bus == nil {
		return 0, 0
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := u.bus.JS.Stream(ctx, u.bus.Stream(bus.CaseEvents))
	if err != nil {
		u.log.WarnContext(ctx, "case events stream", "err", err)
		return 0, 0
	}
	st := s.CachedInfo().State
	return st.FirstSeq, st.LastSeq
}

// liveURL is the events address of a page, resuming after the stream's
// current sequence.
func (u *UI) liveURL(ctx context.Context, ref string) string {
	q := "/events?after=" + strconv.FormatUint(u.streamSeq(ctx), 10)
	if ref != "" {
		q += "&case=" + ref
	}
	return q
}

// events streams live updates to a page: sse:queue for any change to a
// case of the viewer's teams, sse:announce with words for the screen
// reader's live region, and on a case page sse:case and sse:presence.
func (u *UI) events(r *request) error {
	if u.bus == nil {
		return echoNotFound()
	}
	ctx, actor := r.ctx(), r.actor()
	var watched string
	if ref := r.QueryParam("case"); ref != "" {
		c, err := u.cases.Visible(ctx, actor, ref)
		if err != nil {
			return err
		}
		watched = c.Reference
	}
	teams, err := u.cases.TeamSlugsOf(ctx, actor)
	if err != nil {
		return err
	}
	sees := func(team string) bool {
		if teams == nil {
			return true
		}
		for _, t := range teams {
			if t == team {
				return true
			}
		}
		return false
	}

	after := parseSeq(r.QueryParam("after"))
	after = max(after, parseSeq(r.Request().Header.Get("Last-Event-ID")))
	first, last := u.streamSeqs(ctx)
	// Too much missed, aged out of the stream, or a stream made anew:
	// refresh once instead.
	resync := after == 0 || after > last || last > after+replayLimit || (first > 0 && after+1 < first)
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy, InactiveThreshold: consumerIdle}
	if !resync {
		// From the page's own sequence on, even past the newest event: an
		// event published from now on is not missed.
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	cons, err := u.bus.JS.OrderedConsumer(ctx, u.bus.Stream(bus.CaseEvents), cfg)
	if err != nil {
		return err
	}
	msgs, err := cons.Messages()
	if err != nil {
		return err
	}
	defer msgs.Stop()
	incoming := make(chan jetstream.Msg)
	go func() {
		defer close(incoming)
		for {
			m, err := msgs.Next()
			if err != nil {
				return
			}
			select {
			case incoming <- m:
			case <-ctx.Done():
				return
			}
		}
	}()

	var presence <-chan jetstream.KeyValueEntry
	if watched != "" && u.presence != nil {
		w, err := u.presence.Watch(ctx, presenceKey(watched, "*"), jetstream.UpdatesOnly())
		if err != nil {
			return err
		}
		defer func() { _ = w.Stop() }()
		presence = w.Updates()
	}

	w := r.Response()
	h := w.Header()
	h.Set(echoContentType, "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // the stream outlives the server's write timeout
	w.WriteHeader(http.StatusOK)
	send := func(id uint64, event, data string) error {
		var b strings.Builder
		if id != 0 {
			fmt.Fprintf(&b, "id: %d\n", id)
		}
		fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", event, data)
		if _, err := w.Write([]byte(b.String())); err != nil {
			return err
		}
		return rc.Flush()
	}
	if _, err := w.Write([]byte("retry: 2000\n: live\n\n")); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}
	if resync && after != 0 {
		// Too much was missed to replay: the page fetches once.
		_ = send(last, sseQueue, "")
		if watched != "" {
			_ = send(0, sseCase, "")
		}
	}

	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	lifetime := time.NewTimer(streamLifetime)
	defer lifetime.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-lifetime.C:
			return nil
		case <-u.streams.Done():
			return nil
		case <-ping.C:
			if _, err := w.Write([]byte(": ping\n\n")); err != nil {
				return nil
			}
			if err := u.users.Seen(ctx, r.user.UserID); err != nil {
				u.log.Debug("web: presence not recorded", "err", err)
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
		case e, ok := <-presence:
			if !ok {
				presence = nil
				continue
			}
			if e == nil {
				continue
			}
			if err := send(0, ssePresence, ""); err != nil {
				return nil
			}
		case m, ok := <-incoming:
			if !ok {
				return nil
			}
			if err := u.sendEvent(m, watched, sees, send); err != nil {
				return nil
			}
		}
	}
}

// sendEvent passes one case event on to the page, when the viewer works
// the case's team.
func (u *UI) sendEvent(m jetstream.Msg, watched string, sees func(string) bool, send func(uint64, string, string) error) error {
	meta, err := m.Metadata()
	if err != nil {
		return nil
	}
	var ev cases.Event
	if err := json.Unmarshal(m.Data(), &ev); err != nil || !sees(ev.Team) {
		return nil
	}
	ref := html.EscapeString(ev.Reference)
	if err := send(meta.Sequence.Stream, sseQueue, ref); err != nil {
		return err
	}
	if ev.Kind == cases.EventCreated && watched == "" {
		// Announced on the queue; on a case page, only its own news.
		if err := send(0, sseAnnounce, html.EscapeString("New case "+ev.Reference+" from "+name(channelNames, ev.Channel))); err != nil {
			return err
		}
	}
	if watched == "" || ev.Reference != watched {
		return nil
	}
	if err := send(0, sseCase, ref); err != nil {
		return err
	}
	if ev.Kind == cases.EventMessageAdded {
		return send(0, sseAnnounce, "The resident has written again on this case.")
	}
	return nil
}

func parseSeq(s string) uint64 {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// Presence: who has a case open, and who is writing a reply, in the
// PRESENCE bucket that every server process shares. A page refreshes its
// entry every 20 seconds (hx-trigger in case.html); an entry not refreshed
// within bus.PresenceTTL lapses.
const (
	// replyingFor is how long "is replying" holds after the adviser last
	// typed.
	replyingFor = 30 * time.Second
)

type presenceEntry struct {
	UserID int64     `json:"user_id"`
	Name   string    `json:"name"`
	State  string    `json:"state"`
	At     time.Time `json:"at"`
}

func presenceKey(ref, user string) string { return ref + "." + user }

// markPresence records that the signed-in user is viewing, or replying
// to, a case.
func (u *UI) markPresence(r *request) error {
	if u.presence == nil {
		return r.NoContent(http.StatusNoContent)
	}
	ctx := r.ctx()
	c, err := u.cases.Visible(ctx, r.actor(), r.Param("reference"))
	if err != nil {
		return err
	}
	state := r.FormValue("state")
	if state != "viewing" && state != "replying" {
		return echoBadRequest()
	}
	key := presenceKey(c.Reference, strconv.FormatInt(r.user.UserID, 10))
	now := time.Now()
	if state == "viewing" {
		// A heartbeat keeps "replying" while the adviser typed lately.
		if e, err := u.presence.Get(ctx, key); err == nil {
			var was presenceEntry
			if json.Unmarshal(e.Value(), &was) == nil && was.State == "replying" && now.Sub(was.At) < replyingFor {
				state = "replying"
				now = was.At
			}
		}
	}
	b, _ := json.Marshal(presenceEntry{UserID: r.user.UserID, Name: r.user.Name, State: state, At: now})
	if _, err := u.presence.Put(ctx, key, b); err != nil {
		return err
	}
	return r.NoContent(http.StatusNoContent)
}

// others lists who else has the case open: "<name> is replying" first.
func (u *UI) others(ctx context.Context, ref string, self int64) ([]string, error) {
	if u.presence == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	w, err := u.presence.Watch(ctx, presenceKey(ref, "*"), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	var replying, viewing []string
	for e := range w.Updates() {
		if e == nil {
			break
		}
		var p presenceEntry
		if json.Unmarshal(e.Value(), &p) != nil || p.UserID == self || time.Since(e.Created()) > bus.PresenceTTL {
			continue
		}
		if p.State == "replying" {
			replying = append(replying, p.Name+" is replying")
		} else {
			viewing = append(viewing, p.Name+" is viewing")
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return append(replying, viewing...), nil
}

// presenceFragment is the case page's presence region.
func (u *UI) presenceFragment(r *request) error {
	c, err := u.cases.Visible(r.ctx(), r.actor(), r.Param("reference"))
	if err != nil {
		return err
	}
	people, err := u.others(r.ctx(), c.Reference, r.user.UserID)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return u.renderFragment(r, "case.html", "presence", people)
}
