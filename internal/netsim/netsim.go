// Package netsim is what the network simulator (cmd/netsim) asks of each
// network's fake: a fake API for the inbox to send to, the webhook
// deliveries residents make, how they are signed, and the handshake that
// proves the inbox and the simulator share a secret. A network's fake
// package (xfake for X) implements Network; cmd/netsim registers it with
// one line and plays residents through it.
package netsim

import (
	"context"
	"flag"
	"net/http"

	"github.com/citizeninbox/inbox/internal/channels"
)

// Resident is one person the simulator plays, as the network knows them.
type Resident struct {
	ID, Handle, Name string
}

// Sent is one message the council sent through the fake API.
type Sent struct {
	// ID is the network's id of what was sent.
	ID         string
	Visibility channels.Visibility
	Text       string
	// InReplyTo is the post a public message answers, if any.
	InReplyTo string
	// Recipient is the resident a private message went to.
	Recipient string
}

// Network is one network's fake, as the simulator drives it.
type Network interface {
	// Name is the network's driver name (the -network flag's value).
	Name() string
	// Title is how the network is named to people ("X").
	Title() string
	// DefaultListen is where the fake API listens unless -listen says
	// otherwise; DefaultWebhook is the demo inbox's webhook URL.
	DefaultListen() string
	DefaultWebhook() string
	// Flags declares the network's own flags (secrets, the council's
	// account id); Check completes and validates them after parsing.
	Flags(fs *flag.FlagSet)
	Check() error
	// API is the fake API the inbox sends replies to; onSent is called
	// with each accepted send, and must not block.
	API(onSent func(Sent)) http.Handler
	// Address makes a resident's public text address the council, as
	// residents do on the network ("@ExampleCouncil …").
	Address(text string) string
	// Styles are the ways a public post may be delivered (X: its two
	// webhook APIs); the simulator takes turns with them. The first is
	// the plain one. None when the network has no public posts (SMS): the
	// simulator then plays private messages only.
	Styles() []string
	// Post is the delivery of a resident's public post id, answering
	// inReplyTo when it is set, in one of Styles; newID gives fresh ids
	// for anything else the delivery needs.
	Post(style string, id string, from Resident, text, inReplyTo string, newID func() string) []byte
	// Message is the delivery of a resident's private message id.
	Message(id string, from Resident, text string) []byte
	// Sign adds the headers the network sends with the delivery of body:
	// its content type, and what makes the inbox accept it as genuine.
	Sign(req *http.Request, body []byte)
	// Handshake checks, against the inbox's webhook, that both share the
	// network's secret, and says so in a line for people.
	Handshake(ctx context.Context, client *http.Client, webhookURL string) (string, error)
}

// Via is implemented by a network whose residents write privately on one
// of several networks (Meta: Messenger, Instagram or WhatsApp): the one a
// resident who has written uses, for the simulator's lines; "" before
// they first write.
type Via interface {
	Via(from Resident) string
}

// Polled is implemented by a network the inbox polls instead of receiving
// its webhooks (Mastodon, Bluesky, email). The simulator builds each
// resident's delivery with Post or Message as for any network, and hands
// it to Deliver, which keeps it in the fake where the inbox's next poll
// finds it: nothing is posted to a webhook, Sign is not called, and
// Handshake is called with an empty webhook URL (it may wait for the
// inbox's first poll, which proves the inbox reaches the fake with the
// credentials the fake expects). DefaultWebhook returns "".
type Polled interface {
	Deliver(body []byte) error
}
