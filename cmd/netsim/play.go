package main

import (
	"context"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/netsim"
)

// The scripted events, in the order the player cycles through them.
const (
	stepMention      = iota // a public post to the council, in the network's first style
	stepDM                  // a private message starting a conversation
	stepFollowUp            // a second private message from the last resident who wrote one
	stepStyleMention        // a public post in the network's next style (X: the X Activity API)
	steps
)

// event is one webhook delivery and how to print it.
type event struct {
	label string // "mention from @sarahjenkins"
	text  string
	body  []byte
}

// post is what the player knows of a post in a conversation it plays.
type post struct {
	root     string // id of the post that started the conversation
	resident resident
	council  bool // written by the council
}

// answer is a resident's answer to the council, waiting for its time.
type answer struct {
	at       time.Time
	resident resident
	// root is the conversation a public answer goes to; empty for a direct
	// message.
	root string
}

// player plays the residents: every interval it delivers the next scripted
// event, and the resident answers each message the council sends them
// (each reply, not each part of a long one), answerDelay later, in the same
// conversation. Everything it does happens on the
// goroutine that runs play; the fake API reaches it through councilSent.
type player struct {
	// Dependencies and settings; set them before play.
	hook           *webhook
	out            io.Writer
	network        netsim.Network
	cast           []resident
	topics         []topic
	ids            *ids
	interval       time.Duration
	count          int  // scripted events to send; 0 means no limit
	exitAfterCount bool // play returns once count events are sent and no answer is pending
	answerDelay    time.Duration

	// council carries the council's sends from the fake API to play.
	council mailbox

	// State owned by play.
	sent    int               // scripted events sent
	started int               // conversations started
	lastDM  *lastDM           // the last direct message conversation not yet followed up
	posts   map[string]post   // every post of the conversations played, by id
	latest  map[string]string // conversation root → the council's latest post in it
	thanks  int               // answers sent
	pending []answer          // all wait answerDelay, so the oldest is due first
}

// lastDM is a direct message conversation a resident may add to.
type lastDM struct {
	resident resident
	topic    topic
}

// newPlayer returns a player with the default cast and script, one event
// every 4 s and answers after 3 s.
func newPlayer(hook *webhook, out io.Writer) *player {
	return &player{
		hook:        hook,
		out:         out,
		network:     hook.network,
		cast:        cast(),
		topics:      topics(),
		ids:         newIDs(time.Now()),
		interval:    4 * time.Second,
		answerDelay: 3 * time.Second,
		council:     mailbox{ready: make(chan struct{}, 1)},
		posts:       map[string]post{},
		latest:      map[string]string{},
	}
}

// councilSent is the fake API's onSent hook. It never blocks.
func (p *player) councilSent(s netsim.Sent) { p.council.put(s) }

// play delivers scripted events and answers until ctx ends, or, with
// exitAfterCount, until count events are sent and no answer is pending.
func (p *player) play(ctx context.Context) error {
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	due := time.NewTimer(time.Hour)
	due.Stop()
	defer due.Stop()

	next := tick.C
	p.step(ctx)
	for {
		if p.count > 0 && p.sent >= p.count {
			next = nil
			if p.exitAfterCount && len(p.pending) == 0 {
				return nil
			}
		}
		var dueC <-chan time.Time
		if len(p.pending) > 0 {
			due.Reset(time.Until(p.pending[0].at))
			dueC = due.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-next:
			p.step(ctx)
		case <-p.council.ready:
			for _, s := range p.council.take() {
				p.heard(s)
			}
		case <-dueC:
			p.answerDue(ctx)
		}
	}
}

// step delivers the next scripted event.
func (p *player) step(ctx context.Context) {
	var ev event
	step := p.sent % steps
	if len(p.network.Styles()) == 0 && (step == stepMention || step == stepStyleMention) {
		step = stepDM // a network without public posts
	}
	switch step {
	case stepMention:
		ev = p.mention(0)
	case stepDM:
		ev = p.newDM()
	case stepFollowUp:
		ev = p.followUp()
	case stepStyleMention:
		ev = p.mention(1)
	}
	p.sent++
	p.deliver(ctx, ev)
}

// deliver sends ev and prints one line about it.
func (p *player) deliver(ctx context.Context, ev event) {
	d := p.hook.post(ctx, ev.body)
	if ctx.Err() != nil {
		return
	}
	printf(p.out, "→ %s: %s  %s\n", ev.label, oneLine(ev.text), d)
}

// starter picks the resident and topic of a new conversation, so that
// residents and topics pair differently each round.
func (p *player) starter() (resident, topic) {
	n := p.started
	p.started++
	r := p.cast[n%len(p.cast)]
	t := p.topics[(n+n/len(p.cast))%len(p.topics)]
	return r, t
}

// mention starts a public conversation, delivered in the network's
// style'th style (its first one when it has fewer).
func (p *player) mention(style int) event {
	r, t := p.starter()
	id := p.ids.next()
	text := p.network.Address(t.mention)
	p.posts[id] = post{root: id, resident: r}
	styles := p.network.Styles()
	s := ""
	if style < len(styles) {
		s = styles[style]
	}
	label := "mention from @" + r.Handle
	if s != "" {
		label = "mention (" + s + ") from @" + r.Handle
	}
	return event{label: label, text: text, body: p.network.Post(s, id, r, text, "", p.ids.next)}
}

// newDM starts a direct message conversation.
func (p *player) newDM() event {
	r, t := p.starter()
	p.lastDM = &lastDM{resident: r, topic: t}
	return p.dm(r, t.dm, "DM from @"+r.Handle)
}

// followUp adds to the last direct message conversation, which the inbox
// threads into the same case.
func (p *player) followUp() event {
	if p.lastDM == nil {
		return p.newDM()
	}
	c := *p.lastDM
	p.lastDM = nil
	return p.dm(c.resident, c.topic.followUp, "follow-up DM from @"+c.resident.Handle)
}

func (p *player) dm(r resident, text, label string) event {
	body := p.network.Message(p.ids.next(), r, text)
	if v, ok := p.network.(netsim.Via); ok {
		if via := v.Via(r); via != "" {
			label = strings.Replace(label, " from @", " ("+via+") from @", 1)
		}
	}
	return event{label: label, text: text, body: body}
}

// heard prints what the council sent and has the resident answer it.
func (p *player) heard(s netsim.Sent) {
	text := oneLine(s.Text)
	switch s.Visibility {
	case channels.Private:
		r, ok := p.resident(s.Recipient)
		if !ok {
			printf(p.out, "← council DMed %s: %s\n", s.Recipient, text)
			return
		}
		printf(p.out, "← council DMed @%s: %s\n", r.Handle, text)
		p.willAnswer(answer{resident: r})
	case channels.Public:
		parent, ok := p.posts[s.InReplyTo]
		switch {
		case s.InReplyTo == "":
			printf(p.out, "← council posted: %s\n", text)
			return
		case !ok:
			printf(p.out, "← council replied to post %s: %s\n", s.InReplyTo, text)
			return
		}
		p.posts[s.ID] = post{root: parent.root, resident: parent.resident, council: true}
		p.latest[parent.root] = s.ID
		if parent.council {
			// The next part of a reply too long for one post.
			printf(p.out, "← council continued its reply to @%s in thread %s: %s\n",
				parent.resident.Handle, parent.root, text)
			return
		}
		printf(p.out, "← council replied to @%s in thread %s: %s\n", parent.resident.Handle, parent.root, text)
		p.willAnswer(answer{resident: parent.resident, root: parent.root})
	default:
		printf(p.out, "← council sent a %s message: %s\n", s.Visibility, text)
	}
}

// resident returns the cast member with the given network id.
func (p *player) resident(id string) (resident, bool) {
	for _, r := range p.cast {
		if r.ID == id {
			return r, true
		}
	}
	return resident{}, false
}

// willAnswer schedules a's answer, answerDelay from now.
func (p *player) willAnswer(a answer) {
	a.at = time.Now().Add(p.answerDelay)
	p.pending = append(p.pending, a)
}

// answerDue delivers the answers whose time has come.
func (p *player) answerDue(ctx context.Context) {
	now := time.Now()
	for len(p.pending) > 0 && !p.pending[0].at.After(now) {
		a := p.pending[0]
		p.pending = p.pending[1:]
		p.deliver(ctx, p.answer(a))
	}
}

// answer builds a resident's answer: a public reply to the council's latest
// post in the conversation, or a direct message.
func (p *player) answer(a answer) event {
	n := p.thanks
	p.thanks++
	r := a.resident
	if a.root == "" {
		thanks := privateThanks()
		return p.dm(r, thanks[n%len(thanks)], "DM from @"+r.Handle)
	}
	thanks := publicThanks()
	inReplyTo := p.latest[a.root]
	id := p.ids.next()
	text := p.network.Address(thanks[n%len(thanks)])
	p.posts[id] = post{root: a.root, resident: r}
	return event{
		label: "reply from @" + r.Handle + " to " + inReplyTo,
		text:  text,
		body:  p.network.Post("", id, r, text, inReplyTo, p.ids.next),
	}
}

// mailbox hands sends from the fake API's request goroutines to play
// without blocking them: put never waits, and ready says there is
// something to take.
type mailbox struct {
	ready chan struct{} // capacity 1

	mu    sync.Mutex
	items []netsim.Sent
}

func (m *mailbox) put(s netsim.Sent) {
	m.mu.Lock()
	m.items = append(m.items, s)
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

func (m *mailbox) take() []netsim.Sent {
	m.mu.Lock()
	defer m.mu.Unlock()
	items := m.items
	m.items = nil
	return items
}
