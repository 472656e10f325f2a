package cases

import (
	"text/template"
	"time"

	"github.com/citizeninbox/inbox/internal/routing"
	"github.com/citizeninbox/inbox/internal/sla"
)

// Configuration is what the case service follows of the business
// configuration. The zero value routes every case to its channel account's
// team at normal priority, with no clocks and no automatic replies.
type Configuration struct {
	// Replies are the rules replies are checked against before they are
	// queued.
	Replies ReplyRules
	// Router decides each new case's team, priority, service and tags.
	Router *routing.Router
	// Policies give each case its SLA targets.
	Policies *sla.Policies
	// Acknowledgements are the channel accounts' automatic replies, by
	// account slug; an account without one sends none.
	Acknowledgements map[string]Acknowledgement
	// EmergencyReply is sent at once to a message routing finds to be an
	// emergency; empty sends nothing.
	EmergencyReply *template.Template
	// Escalations are the escalation policies by name. A case follows the
	// one routing named, else its SLA policy's.
	Escalations map[string]Escalation
	// Canned are the canned responses advisers start replies from.
	Canned []Canned
	// PhoneChannels are the channels whose identities are phone numbers
	// (channels.Capabilities.PhoneIdentities): the same number on two of
	// them is suggested as one resident (Suggestions), never merged.
	PhoneChannels []string
}

// Acknowledgement is a channel account's automatic reply to a new case:
// the case reference and when the resident may expect an answer.
type Acknowledgement struct {
	// Templates by name (the rule's acknowledgement action picks one);
	// Default is used when the rule names none.
	Templates map[string]AckTemplate
	Default   string
	// PrivateOnly sends acknowledgements to private messages only: a public
	// post gets none.
	PrivateOnly bool
	// Period is the least time between two acknowledgements on one case.
	Period time.Duration
}

// AckTemplate is an acknowledgement's text, in and out of the hours of the
// calendar the case's first-response target runs on.
type AckTemplate struct {
	InHours, OutOfHours *template.Template
}

// AckData is what an acknowledgement or the emergency reply's template is
// given: {{.Reference}}, {{.ReplyBy}} ("10:30 on Tuesday"), {{.Opens}}
// (when the team is next open), {{.Team}} (the team's name).
type AckData struct {
	Reference string
	ReplyBy   string
	Opens     string
	Team      string
}
