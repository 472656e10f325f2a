package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/citizeninbox/inbox/internal/bus"
	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/testenv"
)

var residentSeq atomic.Int64

func init() { residentSeq.Store(2300000000000000000) }

// newResident returns a resident no other test uses.
func newResident() resident {
	id := fmt.Sprint(residentSeq.Add(1))
	return resident{ID: id, Handle: "resident" + id[len(id)-6:], Name: "Resident " + id[len(id)-4:]}
}

// activityReply is an X Activity API post.reply.create delivery: a
// resident's reply to inReplyTo in the conversation that conversation
// started.
func activityReply(id string, from resident, text, inReplyTo, conversation string) []byte {
	body, _ := json.Marshal(map[string]any{"data": map[string]any{
		"event_uuid": "evt-" + id,
		"event_type": "post.reply.create",
		"filter":     map[string]any{"user_id": councilID},
		"payload": map[string]any{
			"id": id, "text": text, "author_id": from.ID, "conversation_id": conversation,
			"in_reply_to_tweet_id": inReplyTo, "created_at": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		},
		"includes": map[string]any{"users": []any{map[string]any{"id": from.ID, "name": from.Name, "username": from.Handle}}},
	}})
	return body
}

// secondServer starts another replica with the harness's database, NATS
// namespace and configuration.
func (h *harness) secondServer() *server.Server {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := h.opts
	opts.Listener = nil
	srv, err := server.Start(ctx, opts)
	if err != nil {
		h.t.Fatalf("start the second server: %v", err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			h.t.Errorf("shut the second server down: %v", err)
		}
	})
	return srv
}

// signedTo posts a signed webhook to the server at base.
func signedTo(t *testing.T, base string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/x/"+accountSlug, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhookHeader, x.Sign(consumerKey, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("webhook: %v", err)
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("webhook answered %d", resp.StatusCode)
	}
}

type caseRow struct {
	ID            int64
	Resident      string
	ContextPostID string
	ContextCaseID *int64
}

func (h *harness) caseRow(id int64) caseRow {
	h.t.Helper()
	var c caseRow
	if err := h.direct.Raw(`SELECT c.id, ci.external_id AS resident, c.context_post_id, c.context_case_id
		FROM cases c JOIN contact_identities ci ON ci.id = c.contact_identity_id WHERE c.id = ?`, id).Scan(&c).Error; err != nil {
		h.t.Fatal(err)
	}
	return c
}

// Two replicas on one database and one NATS namespace, handed parents and
// replies side by side: every resident's reply joins their own case, other
// residents' replies make cases of their own, and replies under a council
// broadcast are one case per resident.
func TestTwoServersThreadEveryMessageOntoItsResidentsCase(t *testing.T) {
	h := newHarness(t)
	other := h.secondServer()
	servers := []string{h.srv.URL(), other.URL()}

	type pair struct {
		owner, neighbour  resident
		post, own, theirs string
	}
	const pairs = 40
	ps := make([]pair, pairs)
	for i := range ps {
		ps[i] = pair{owner: newResident(), neighbour: newResident(), post: nextID(), own: nextID(), theirs: nextID()}
	}
	const broadcast = "1699999999999999999" // the council's post, never stored
	broadcasters := make([]resident, 20)
	first, second := make([]string, len(broadcasters)), make([]string, len(broadcasters))
	for i := range broadcasters {
		broadcasters[i], first[i], second[i] = newResident(), nextID(), nextID()
	}

	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			// The parent to one replica, the replies to the other, one
			// straight after the other.
			signedTo(t, servers[i%2], xfake.ActivityMention(council, "evt-"+p.post, p.post, p.owner, "@ExampleCouncil the drain is blocked", time.Now()))
			signedTo(t, servers[(i+1)%2], activityReply(p.own, p.owner, "water is rising", p.post, p.post))
			signedTo(t, servers[(i+1)%2], activityReply(p.theirs, p.neighbour, "ours too", p.post, p.post))
		})
	}
	for i, who := range broadcasters {
		wg.Go(func() {
			signedTo(t, servers[i%2], activityReply(first[i], who, "which roads?", broadcast, broadcast))
			signedTo(t, servers[(i+1)%2], activityReply(second[i], who, "until when?", broadcast, broadcast))
		})
	}
	wg.Wait()
	want := int64(3*pairs + 2*len(broadcasters))
	h.eventually("every message is stored", func() bool { return h.count(`SELECT count(*) FROM messages`) == want })

	for _, p := range ps {
		parentCase, own, theirs := h.caseOf(p.post), h.caseOf(p.own), h.caseOf(p.theirs)
		if own != parentCase {
			t.Errorf("the resident's reply %s is on case %d, their post on case %d", p.own, own, parentCase)
		}
		if theirs == parentCase {
			t.Errorf("another resident's reply %s joined the case of the post it answered", p.theirs)
			continue
		}
		c := h.caseRow(theirs)
		if c.Resident != p.neighbour.ID || c.ContextPostID != p.post {
			t.Errorf("the neighbour's case %+v, want theirs with the post %s as context", c, p.post)
		}
		// When the reply was handled before its parent reached the
		// database at all, the parent's case is not known to it.
		if c.ContextCaseID != nil && *c.ContextCaseID != parentCase {
			t.Errorf("the neighbour's case names case %d as context, want %d", *c.ContextCaseID, parentCase)
		}
	}
	seen := map[int64]bool{}
	for i, who := range broadcasters {
		c1, c2 := h.caseOf(first[i]), h.caseOf(second[i])
		if c1 != c2 {
			t.Errorf("resident %s's two replies under the broadcast are on cases %d and %d", who.ID, c1, c2)
		}
		if seen[c1] {
			t.Errorf("case %d holds two residents' replies under the broadcast", c1)
		}
		seen[c1] = true
		if c := h.caseRow(c1); c.Resident != who.ID || c.ContextPostID != broadcast || c.ContextCaseID != nil {
			t.Errorf("broadcast reply case %+v", c)
		}
	}
	if got := h.count(`SELECT count(*) FROM messages m JOIN cases c ON c.id = m.case_id
		WHERE m.direction = 'inbound' AND m.contact_identity_id <> c.contact_identity_id`); got != 0 {
		t.Errorf("%d messages are on another resident's case", got)
	}
	if got, want := h.cases(), int64(2*pairs+len(broadcasters)); got != want {
		t.Errorf("%d cases, want %d", got, want)
	}
	stored := func(s *server.Server) string {
		resp, err := http.Get(s.URL() + "/metrics")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, `inbox_inbound_processed_total{result="stored"} `); ok {
				return v
			}
		}
		return "0"
	}
	t.Logf("messages stored by each replica: %s, %s", stored(h.srv), stored(other))
}

// The API shows what a case began by answering.
func TestCaseShowsTheContextItBeganIn(t *testing.T) {
	h := newHarness(t)
	post, alices := h.mentionCase(alice, "@ExampleCouncil the bridge railing is loose")
	reply := nextID()
	h.signed(mention(reply, bob, "@ExampleCouncil and the steps are cracked", post))
	bobs := h.waitCaseOf(reply)
	if bobs == alices {
		t.Fatalf("bob's reply to alice's post joined her case")
	}

	type contextJSON struct {
		PostID        string  `json:"post_id"`
		CaseID        *int64  `json:"case_id"`
		CaseReference *string `json:"case_reference"`
	}
	var detail struct {
		Reference string       `json:"reference"`
		Context   *contextJSON `json:"context"`
	}
	code, raw := h.api(http.MethodGet, fmt.Sprintf("/cases/%d", bobs), nil)
	if code != http.StatusOK {
		t.Fatalf("get case: %d %s", code, raw)
	}
	if err := json.Unmarshal(raw, &detail); err != nil {
		t.Fatal(err)
	}
	aliceRef := h.caseDetail(alices).Reference
	if c := detail.Context; c == nil || c.PostID != post || c.CaseID == nil || *c.CaseID != alices ||
		c.CaseReference == nil || *c.CaseReference != aliceRef {
		t.Errorf("bob's case context %s, want alice's post %s in %s", raw, post, aliceRef)
	}

	var page struct {
		Cases []struct {
			ID      int64        `json:"id"`
			Context *contextJSON `json:"context"`
		} `json:"cases"`
	}
	code, raw = h.api(http.MethodGet, "/cases", nil)
	if code != http.StatusOK {
		t.Fatalf("list cases: %d %s", code, raw)
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		t.Fatal(err)
	}
	for _, c := range page.Cases {
		switch {
		case c.ID == alices && c.Context != nil:
			t.Errorf("alice's case, which answered no post, has context %+v", c.Context)
		case c.ID == bobs && (c.Context == nil || c.Context.PostID != post):
			t.Errorf("bob's case in the list has context %+v", c.Context)
		}
	}
}

// A message handed to a replica that dies before acknowledging it comes
// back to another replica within the consumer's short ack wait.
func TestMessageHeldByAKilledReplicaIsStoredByAnother(t *testing.T) {
	h := newHarness(t)
	h.stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Connect(ctx, testenv.NATSURL(), h.opts.Names)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	id := nextID()
	msgs, err := x.Parse(mention(id, alice, "@ExampleCouncil the lift at the car park is broken", ""),
		x.Account{Slug: accountSlug, UserID: councilID}, time.Now())
	if err != nil || len(msgs) != 1 {
		t.Fatalf("parse: %v", err)
	}
	data, _ := json.Marshal(msgs[0])
	if _, err := b.JS.Publish(ctx, h.opts.Names.InboundSubject("x", accountSlug), data, jetstream.WithMsgID(msgs[0].DedupeKey)); err != nil {
		t.Fatal(err)
	}
	// The replica that is about to die takes the message and never
	// answers for it.
	cons, err := b.JS.Consumer(ctx, h.opts.Names.Stream(bus.Inbound), cases.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	held, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("take the message: %v", err)
	}
	if md, _ := held.Metadata(); md == nil || md.NumDelivered != 1 {
		t.Fatalf("the message was delivered before: %+v", md)
	}

	// Another replica stores it once JetStream gives up on the first.
	h.start()
	h.waitCaseOf(id)
	if got := h.count(`SELECT count(*) FROM messages WHERE external_id = ?`, id); got != 1 {
		t.Errorf("%d copies of the message stored, want 1", got)
	}
}
