package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/citizeninbox/inbox/internal/cases"
	"github.com/citizeninbox/inbox/internal/channels"
)

// sessionFlash holds the message the next page shows once ("Reply
// queued"), after a form redirected there.
const sessionFlash = "flash"

// entry is one item of a case's timeline.
type entry struct {
	ID int64
	// Kind is inbound, outbound, automatic or note.
	Kind       string
	Visibility string
	Who        string
	Body       string
	// Delivery is an outbound message's delivery status in words, with
	// Failed set when it did not go; Link is the network's page for the
	// message, where it has one.
	Delivery string
	Failed   bool
	Link     string
	Local    string
	Exact    string
	// New marks what arrived after the reply being held was written.
	New bool
	// Edited is the resident's edit on the network and when they made
	// it; Removed when they removed the message there.
	Edited, EditedAt, Removed string
}

// composer is the reply form as the page shows it.
type composer struct {
	Text string
	// Visibility is the chosen kind of reply; Choices the kinds the
	// channel offers (both, or one, or none when this replica does not
	// know the account).
	Visibility string
	Choices    []string
	Canned     []cases.Canned
	Count      string
	Over       bool
	// Seen is the newest message the adviser had in view.
	Seen int64
	// Windows says, per kind of reply, until when the network takes it
	// (private messages on Meta's networks), in the council's time.
	Windows map[string]string
	// Templates are the account's approved templates (WhatsApp), sent
	// when the window for free text has closed; Params is how many
	// parameter fields the template form offers (the most any takes).
	Templates []channels.Template
	Params    []int
	// TemplateForm says the template form was sent, with Template and
	// Parameters: its error is shown there.
	TemplateForm bool
	Template     string
	Parameters   []string
	// Held says the reply was held because the conversation moved on.
	Held  bool
	Error string
	// ErrorAt is the id of the control the error is about.
	ErrorAt string
}

type slaLine struct {
	Name, State, Due string
	Breached         bool
}

type caseData struct {
	Case     cases.Detail
	Timeline []entry
	Resident cases.Resident
	SLA      []slaLine
	Composer composer
	Note     string
	NoteErr  string
	TagsText string
	TagsErr  string
	// Mine says the case is the signed-in user's; Assignee names whoever
	// has it.
	Mine       bool
	Assignee   string
	Teams      []cases.TeamRef
	Members    []cases.Member
	CanMove    bool
	CanAssign  bool
	ActionErr  string
	TeamName   string
	Statuses   []statusAction
	Closed     bool
	Unassigned bool
	// ReplyKey makes the reply form's sending idempotent: pressing Send
	// twice, or resending the form, sends one reply.
	ReplyKey string
}

// statusAction is a button that moves the case to another status.
type statusAction struct {
	Status, Label, ID string
}

// casePage shows a case: the conversation, the resident, routing and SLA,
// and the forms to answer and work it. Another team's case is not found
// (audited by the case service).
func (u *UI) casePage(r *request) error {
	return u.showCase(r, http.StatusOK, caseForm{})
}

// caseForm is what a form that failed (or was held) gives back to the page.
type caseForm struct {
	composer *composer
	note     string
	noteErr  string
	tags     *string
	tagsErr  string
	action   string
	since    int64
}

func (u *UI) showCase(r *request, status int, f caseForm) error {
	ctx, actor := r.ctx(), r.actor()
	ref := r.Param("reference")
	live := u.liveURL(ctx, url.QueryEscape(ref))
	d, err := u.cases.Get(ctx, actor, ref)
	if err != nil {
		return err
	}
	res, err := u.cases.ResidentOf(ctx, actor, d.Reference)
	if err != nil {
		return err
	}
	data, err := u.caseData(r, d, f.since)
	if err != nil {
		return err
	}
	data.Resident = res
	if f.composer != nil {
		c := *f.composer
		c.Choices, c.Canned, c.Windows = data.Composer.Choices, data.Composer.Canned, data.Composer.Windows
		c.Templates, c.Params = data.Composer.Templates, data.Composer.Params
		if c.Held {
			// Sending anyway answers what is there now.
			c.Seen = data.Composer.Seen
		}
		if c.Visibility == "" || !slices.Contains(c.Choices, c.Visibility) {
			c.Visibility = data.Composer.Visibility
		}
		data.Composer = c
	}
	data.Composer.Count, data.Composer.Over = u.measure(d.ChannelAccount, data.Composer.Visibility, data.Composer.Text)
	data.Note, data.NoteErr, data.TagsErr, data.ActionErr = f.note, f.noteErr, f.tagsErr, f.action
	if f.tags != nil {
		data.TagsText = *f.tags
	}
	if data.Closed {
		// The forms are gone: their errors go with the case's actions.
		for _, e := range []string{data.Composer.Error, data.NoteErr, data.TagsErr} {
			if e != "" && data.ActionErr == "" {
				data.ActionErr = e
			}
		}
		data.Composer.Error, data.NoteErr, data.TagsErr = "", "", ""
	}
	if data.Composer.Error != "" && data.Composer.ErrorAt == "" {
		data.Composer.ErrorAt = "reply"
	}
	errored := data.Composer.Error != "" || f.noteErr != "" || f.tagsErr != "" || f.action != ""
	return u.render(r, status, "case.html", page{Title: d.Reference, Nav: "queue", Error: errored, Live: live, Data: data})
}

// caseTimeline is the case's conversation, for the live refresh.
func (u *UI) caseTimeline(r *request) error {
	d, err := u.cases.Get(r.ctx(), r.actor(), r.Param("reference"))
	if err != nil {
		return err
	}
	data, err := u.caseData(r, d, 0)
	if err != nil {
		return err
	}
	return u.renderFragment(r, "case.html", "timeline", data)
}

// caseData builds what the page shows of a case, but the resident panel.
func (u *UI) caseData(r *request, d cases.Detail, since int64) (caseData, error) {
	ctx, actor := r.ctx(), r.actor()
	now := time.Now()
	var ids []int64
	if d.AssigneeID != nil {
		ids = append(ids, *d.AssigneeID)
	}
	for _, m := range d.Messages {
		if m.AuthorUserID != nil {
			ids = append(ids, *m.AuthorUserID)
		}
	}
	names, err := u.cases.UserNames(ctx, ids)
	if err != nil {
		return caseData{}, err
	}
	data := caseData{
		Case: d, TagsText: strings.Join(d.Tags, ", "), Closed: d.Status == cases.StatusClosed,
		Unassigned: d.AssigneeID == nil, Mine: d.AssigneeID != nil && *d.AssigneeID == actor.UserID,
		CanMove: actor.Can(cases.ActMove), CanAssign: actor.Can(cases.ActAssignTeam),
	}
	if d.AssigneeID != nil {
		data.Assignee = names[*d.AssigneeID]
	}
	data.Timeline = u.timeline(d, names, since, now)
	data.SLA = slaLines(d.SLA, now, u.zone)
	data.Statuses = statusActions(d.Status)

	teams, err := u.cases.Teams(ctx)
	if err != nil {
		return caseData{}, err
	}
	for _, t := range teams {
		if t.Slug == d.Team {
			data.TeamName = t.Name
		}
	}
	if data.CanMove {
		data.Teams = teams
	}
	if data.CanAssign {
		if data.Members, err = u.cases.TeamMembers(ctx, actor, d.Team); err != nil {
			return caseData{}, err
		}
	}

	c := composer{Seen: newest(d.Messages)}
	for _, v := range u.cases.ReplyVisibilities(d.ChannelAccount) {
		c.Choices = append(c.Choices, string(v))
	}
	c.Visibility = defaultVisibility(d, c.Choices)
	for _, v := range c.Choices {
		closes, err := u.cases.WindowCloses(ctx, d.ID, d.ChannelAccount, channels.Visibility(v))
		if err != nil {
			return caseData{}, err
		}
		if closes != nil {
			if c.Windows == nil {
				c.Windows = map[string]string{}
			}
			verb := "can be sent until"
			if closes.Before(now) {
				verb = "could be sent until"
			}
			c.Windows[v] = verb + " " + clock(*closes, now, u.zone)
		}
	}
	for _, cn := range u.cases.CannedFor(d.Team) {
		cn.Text = cn.Fill(d.Contact.DisplayName, d.Reference, data.TeamName)
		c.Canned = append(c.Canned, cn)
	}
	if slices.Contains(c.Choices, string(channels.Private)) {
		c.Templates = u.cases.Templates(d.ChannelAccount)
		most := 0
		for _, t := range c.Templates {
			if n, err := t.Parameters(); err == nil && n > most {
				most = n
			}
		}
		for i := range most {
			c.Params = append(c.Params, i+1)
		}
	}
	data.Composer = c
	data.ReplyKey = newToken()
	return data, nil
}

// newest is the id of a case's newest message.
func newest(msgs []cases.Message) int64 {
	var n int64
	for _, m := range msgs {
		n = max(n, m.ID)
	}
	return n
}

// defaultVisibility answers the resident the way they last wrote.
func defaultVisibility(d cases.Detail, choices []string) string {
	want := ""
	for _, m := range d.Messages {
		if m.Direction == "inbound" {
			want = m.Visibility
		}
	}
	if slices.Contains(choices, want) {
		return want
	}
	if len(choices) > 0 {
		return choices[0]
	}
	return ""
}

func (u *UI) timeline(d cases.Detail, names map[int64]string, since int64, now time.Time) []entry {
	out := make([]entry, 0, len(d.Messages))
	resident := d.Contact.DisplayName
	if d.Contact.Handle != "" {
		resident += " (@" + d.Contact.Handle + ")"
	}
	for _, m := range d.Messages {
		e := entry{ID: m.ID, Kind: m.Direction, Visibility: m.Visibility, Body: m.Body,
			Local: clock(m.CreatedAt, now, u.zone), Exact: m.CreatedAt.UTC().Format(time.RFC3339),
			New: since > 0 && m.ID > since}
		if m.EditedBody != nil && m.EditedAt != nil {
			e.Edited, e.EditedAt = *m.EditedBody, clock(*m.EditedAt, now, u.zone)
		}
		if m.RemovedAt != nil {
			e.Removed = clock(*m.RemovedAt, now, u.zone)
		}
		switch m.Direction {
		case "inbound":
			e.Who = resident
			e.Link = networkLink(d.Channel, m.Visibility, m.ExternalID)
		case "outbound":
			e.Delivery, e.Failed = delivery(m)
			if len(m.ExternalIDs) > 0 {
				e.Link = networkLink(d.Channel, m.Visibility, m.ExternalIDs[0])
			} else {
				e.Link = networkLink(d.Channel, m.Visibility, m.ExternalID)
			}
			switch {
			case m.Automatic != "":
				e.Kind = "automatic"
				e.Who = automaticNames[m.Automatic]
				if e.Who == "" {
					e.Who = "Automatic reply"
				}
			case m.AuthorUserID != nil:
				e.Who = names[*m.AuthorUserID]
			}
		case "note":
			if m.AuthorUserID != nil {
				e.Who = names[*m.AuthorUserID]
			}
		}
		out = append(out, e)
	}
	return out
}

var automaticNames = map[string]string{
	"acknowledgement": "Automatic acknowledgement",
	"emergency":       "Automatic emergency reply",
}

// delivery says how an outbound message stands with the network.
func delivery(m cases.Message) (string, bool) {
	switch m.DeliveryStatus {
	case "queued":
		if m.SendAttempts > 0 {
			return fmt.Sprintf("Waiting to send (tried %d times)", m.SendAttempts), false
		}
		return "Waiting to send", false
	case "sending":
		return "Sending", false
	case "sent":
		return "Sent", false
	case "delivered":
		return "Delivered", false
	case "read":
		return "Read", false
	case "failed":
		if m.FailureReason != "" {
			return "Not sent: " + m.FailureReason, true
		}
		return "Not sent", true
	}
	return m.DeliveryStatus, false
}

// networkLink is the network's web page for a public message, where it
// has one; private messages have none anyone else could open.
func networkLink(channel, visibility, id string) string {
	if id == "" || visibility != "public" {
		return ""
	}
	switch channel {
	case "x":
		if _, err := strconv.ParseUint(id, 10, 64); err == nil {
			return "https://x.com/i/web/status/" + id
		}
	}
	return ""
}

var targetNames = []struct {
	name string
	get  func(cases.SLA) *cases.SLATarget
}{
	{"First response", func(s cases.SLA) *cases.SLATarget { return s.FirstResponse }},
	{"Next response", func(s cases.SLA) *cases.SLATarget { return s.NextResponse }},
	{"Resolution", func(s cases.SLA) *cases.SLATarget { return s.Resolution }},
}

var slaStateNames = map[string]string{
	"running": "Running", "paused": "Paused", "met": "Met", "breached": "Breached",
}

func slaLines(s cases.SLA, now time.Time, zone *time.Location) []slaLine {
	var out []slaLine
	for _, t := range targetNames {
		tg := t.get(s)
		if tg == nil {
			continue
		}
		l := slaLine{Name: t.name, State: name(slaStateNames, tg.State), Breached: tg.State == "breached"}
		if tg.DueAt != nil {
			l.Due = clock(*tg.DueAt, now, zone)
			if tg.MetAt == nil && tg.State == "running" {
				words, late := due(*tg.DueAt, now)
				l.Due += " (" + strings.ToLower(words[:1]) + words[1:] + ")"
				l.Breached = l.Breached || late
			}
		}
		out = append(out, l)
	}
	return out
}

func statusActions(status string) []statusAction {
	switch status {
	case cases.StatusNew, cases.StatusOpen:
		return []statusAction{{cases.StatusResolved, "Resolve", "resolve"}, {cases.StatusAwaitingResident, "Waiting for the resident", "await"}, {cases.StatusClosed, "Close", "close"}}
	case cases.StatusAwaitingResident:
		return []statusAction{{cases.StatusResolved, "Resolve", "resolve"}, {cases.StatusOpen, "Reopen", "reopen"}, {cases.StatusClosed, "Close", "close"}}
	case cases.StatusResolved:
		return []statusAction{{cases.StatusOpen, "Reopen", "reopen"}, {cases.StatusClosed, "Close", "close"}}
	}
	return nil
}

// measure says in words how a reply measures against the channel's limit.
func (u *UI) measure(account, vis, text string) (string, bool) {
	if vis == "" {
		return "", false
	}
	m, err := u.cases.MeasureReply(account, channels.Visibility(vis), text)
	if err != nil {
		return "", false
	}
	unit := m.Unit
	switch {
	case !m.Fits && m.Splits && m.MaxParts > 0:
		return fmt.Sprintf("%d %s: too long, it would take %d posts and the limit is %d", m.Length, unit, m.Parts, m.MaxParts), true
	case !m.Fits:
		return fmt.Sprintf("%d %s: too long by %d, the limit is %d", m.Length, unit, m.Length-m.Limit, m.Limit), true
	case m.Parts > 1:
		return fmt.Sprintf("%d %s: goes out as a thread of %d posts of up to %d", m.Length, unit, m.Parts, m.Limit), false
	}
	return fmt.Sprintf("%d of %d %s", m.Length, m.Limit, unit), false
}

// measureReply answers the composer's counter as the adviser types.
func (u *UI) measureReply(r *request) error {
	c, err := u.cases.VisibleFor(r.ctx(), r.actor(), r.Param("reference"), cases.ActReply)
	if err != nil {
		return err
	}
	text, over := u.measure(c.ChannelAccount, r.FormValue("visibility"), r.FormValue("text"))
	return u.renderFragment(r, "case.html", "count-text", composer{Count: text, Over: over})
}

// reply sends the adviser's reply, or gives the form back: with the
// error, with a canned response put in, or held because the conversation
// moved on since the form was shown.
func (u *UI) reply(r *request) error {
	ref := r.Param("reference")
	seen, _ := strconv.ParseInt(r.FormValue("seen"), 10, 64)
	c := &composer{Text: r.FormValue("text"), Visibility: r.FormValue("visibility"), Seen: seen}
	if r.FormValue("action") == "template" {
		return u.replyTemplate(r, ref, seen)
	}
	if r.FormValue("action") == "canned" {
		if err := u.insertCanned(r, ref, c); err != nil {
			return err
		}
		return u.showCase(r, http.StatusOK, caseForm{composer: c})
	}
	if strings.TrimSpace(c.Text) == "" {
		c.Error = "Enter a reply"
		return u.showCase(r, http.StatusUnprocessableEntity, caseForm{composer: c})
	}
	if c.Visibility != string(channels.Public) && c.Visibility != string(channels.Private) {
		c.Error, c.ErrorAt = "Choose a public reply or a private message", "visibility-public"
		return u.showCase(r, http.StatusUnprocessableEntity, caseForm{composer: c})
	}
	// "Send anyway" sends the held form again with the view it showed:
	// anything newer than that holds it again.
	in := cases.ReplyInput{Text: c.Text, Visibility: channels.Visibility(c.Visibility), SeenMessageID: seen,
		IdempotencyKey: r.FormValue("key")}
	_, err := u.cases.Reply(r.ctx(), r.actor(), ref, in)
	switch {
	case err == nil:
		u.sessions.Put(r.ctx(), sessionFlash, "Reply queued for sending.")
		return r.Redirect(http.StatusSeeOther, "/cases/"+url.PathEscape(ref))
	case errors.Is(err, cases.ErrConversationMoved):
		c.Held = true
		return u.showCase(r, http.StatusConflict, caseForm{composer: c, since: seen})
	case errors.Is(err, channels.ErrTooLong):
		c.Error = "The reply is too long: " + err.Error()
	case errors.Is(err, channels.ErrVisibilityNotSupported), errors.Is(err, cases.ErrNoPublicThread):
		c.Error, c.ErrorAt = "Choose another kind of reply: "+err.Error(), "visibility-public"
	case errors.Is(err, cases.ErrWindowClosed):
		// The reply box: the kind of reply may have no control of its own
		// (one choice), and the remedy (a template) is below it.
		c.Error, c.ErrorAt = "The network no longer takes this kind of reply: "+err.Error(), "reply"
	case errors.Is(err, cases.ErrPrivateReplyUsed):
		c.Error, c.ErrorAt = "The resident's post already had its one private reply: "+err.Error(), "visibility-public"
	case errors.Is(err, cases.ErrNoResident):
		c.Error, c.ErrorAt = "The resident cannot be messaged privately on this channel: reply publicly", "visibility-public"
	case errors.Is(err, cases.ErrUnknownAccount), errors.Is(err, channels.ErrUnknownAccount):
		c.Error = "This case's channel account is not configured on this server: try again in a few minutes"
	case errors.Is(err, cases.ErrClosed):
		c.Error = "The case is closed: it takes no more replies"
	case errors.Is(err, cases.ErrIdempotencyKeyReused):
		c.Error = "This reply was already sent"
	default:
		return err
	}
	return u.showCase(r, http.StatusUnprocessableEntity, caseForm{composer: c})
}

// replyTemplate sends one of the account's approved templates with the
// parameters given (empty fields after the last filled one are not
// parameters), or gives the form back with the error.
func (u *UI) replyTemplate(r *request, ref string, seen int64) error {
	_ = r.Request().ParseForm()
	params := r.Request().PostForm["parameter"]
	for len(params) > 0 && strings.TrimSpace(params[len(params)-1]) == "" {
		params = params[:len(params)-1]
	}
	c := &composer{Visibility: string(channels.Private), Seen: seen, TemplateForm: true, Template: r.FormValue("template"), Parameters: params}
	if c.Template == "" {
		c.Error, c.ErrorAt = "Choose one of the account's templates", "template"
		return u.showCase(r, http.StatusUnprocessableEntity, caseForm{composer: c})
	}
	in := cases.ReplyInput{Visibility: channels.Private, Template: c.Template, Parameters: params, SeenMessageID: seen,
		IdempotencyKey: r.FormValue("key")}
	_, err := u.cases.Reply(r.ctx(), r.actor(), ref, in)
	switch {
	case err == nil:
		u.sessions.Put(r.ctx(), sessionFlash, "Template queued for sending.")
		return r.Redirect(http.StatusSeeOther, "/cases/"+url.PathEscape(ref))
	case errors.Is(err, cases.ErrUnknownTemplate):
		c.Error, c.ErrorAt = "Choose one of the account's templates", "template"
	case errors.Is(err, cases.ErrTemplateParameters):
		c.Error, c.ErrorAt = "Check the template's parameters: "+strings.TrimPrefix(err.Error(), cases.ErrTemplateParameters.Error()+": "), "parameter-1"
	case errors.Is(err, cases.ErrConversationMoved):
		c.Error, c.ErrorAt = "The resident wrote again while you chose the template: read what is new, and answer it (free text may go again)", "template"
	case errors.Is(err, cases.ErrClosed):
		c.Error = "The case is closed: it takes no more replies"
	case errors.Is(err, cases.ErrIdempotencyKeyReused):
		c.Error = "This reply was already sent"
	default:
		return err
	}
	if c.ErrorAt == "" {
		c.ErrorAt = "template"
	}
	return u.showCase(r, http.StatusUnprocessableEntity, caseForm{composer: c})
}

// insertCanned adds the chosen canned response, filled in, to the text.
func (u *UI) insertCanned(r *request, ref string, c *composer) error {
	d, err := u.cases.Get(r.ctx(), r.actor(), ref)
	if err != nil {
		return err
	}
	teams, err := u.cases.Teams(r.ctx())
	if err != nil {
		return err
	}
	team := d.Team
	for _, t := range teams {
		if t.Slug == d.Team {
			team = t.Name
		}
	}
	for _, cn := range u.cases.CannedFor(d.Team) {
		if cn.Name == r.FormValue("canned") {
			text := cn.Fill(d.Contact.DisplayName, d.Reference, team)
			if strings.TrimSpace(c.Text) != "" {
				text = strings.TrimRight(c.Text, " \n") + "\n\n" + text
			}
			c.Text = text
			return nil
		}
	}
	c.Error, c.ErrorAt = "Choose a canned response", "canned"
	return nil
}

// addNote stores an internal note.
func (u *UI) addNote(r *request) error {
	ref, text := r.Param("reference"), r.FormValue("note")
	_, err := u.cases.AddNote(r.ctx(), r.actor(), ref, text)
	switch {
	case err == nil:
		u.sessions.Put(r.ctx(), sessionFlash, "Note added.")
		return r.Redirect(http.StatusSeeOther, "/cases/"+url.PathEscape(ref))
	case errors.Is(err, cases.ErrEmptyNote):
		return u.showCase(r, http.StatusUnprocessableEntity, caseForm{note: text, noteErr: "Enter a note"})
	case errors.Is(err, cases.ErrClosed):
		return u.showCase(r, http.StatusUnprocessableEntity, caseForm{note: text, noteErr: "The case is closed and takes no more notes"})
	}
	return err
}

var statusDone = map[string]string{
	cases.StatusResolved: "Case resolved.", cases.StatusOpen: "Case reopened.",
	cases.StatusAwaitingResident: "Case is waiting for the resident.", cases.StatusClosed: "Case closed.",
}

// setStatus moves the case to the status of the button pressed.
func (u *UI) setStatus(r *request) error {
	ref, status := r.Param("reference"), r.FormValue("status")
	_, err := u.cases.SetStatus(r.ctx(), r.actor(), ref, status)
	switch {
	case err == nil:
		u.sessions.Put(r.ctx(), sessionFlash, statusDone[status])
		return r.Redirect(http.StatusSeeOther, "/cases/"+url.PathEscape(ref))
	case errors.Is(err, cases.ErrInvalidStatus), errors.Is(err, cases.ErrClosed), errors.Is(err, cases.ErrInvalidTransition),
		errors.Is(err, cases.ErrStatusUnchanged):
		return u.showCase(r, http.StatusUnprocessableEntity, caseForm{action: "The case cannot move to that status: " + err.Error()})
	}
	return err
}

// setTags saves the case's tags.
func (u *UI) setTags(r *request) error {
	ref, text := r.Param("reference"), r.FormValue("tags")
	tags := strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' })
	_, err := u.cases.SetTags(r.ctx(), r.actor(), ref, tags)
	switch {
	case err == nil:
		u.sessions.Put(r.ctx(), sessionFlash, "Tags saved.")
		return r.Redirect(http.StatusSeeOther, "/cases/"+url.PathEscape(ref))
	case errors.Is(err, cases.ErrInvalidTag), errors.Is(err, cases.ErrClosed):
		return u.showCase(r, http.StatusUnprocessableEntity, caseForm{tags: &text, tagsErr: "Enter tags separated by commas: " + err.Error()})
	}
	return err
}

// assign takes, gives back or transfers the case.
func (u *UI) assign(r *request) error {
	ref := r.Param("reference")
	var a cases.Assignment
	done := "Case transferred."
	switch r.FormValue("do") {
	case "take":
		id := r.user.UserID
		a.AssigneeID, done = &id, "You have the case."
		a.Expect, a.ExpectUnassigned = true, true
	case "give-back":
		a.Unassign, done = true, "Case given back to the queue."
		a.Expect, a.ExpectAssignee = true, r.user.UserID
	case "transfer":
		a.Team = r.FormValue("team")
		switch who := r.FormValue("assignee"); who {
		case "", "keep":
		case "none":
			a.Unassign = true
		default:
			id, err := strconv.ParseInt(who, 10, 64)
			if err != nil || id <= 0 {
				return u.showCase(r, http.StatusUnprocessableEntity, caseForm{action: "Choose an adviser from the list"})
			}
			a.AssigneeID = &id
		}
	default:
		return echoBadRequest()
	}
	d, err := u.cases.Assign(r.ctx(), r.actor(), ref, a)
	switch {
	case err == nil:
		mine, err := u.cases.TeamSlugsOf(r.ctx(), r.actor())
		if err != nil {
			return err
		}
		if mine != nil && !slices.Contains(mine, d.Team) {
			// Moved to a team the user does not work: the case is theirs
			// to see no more.
			u.sessions.Put(r.ctx(), sessionFlash, "Case "+d.Reference+" transferred to a team you do not work.")
			return r.Redirect(http.StatusSeeOther, "/queue")
		}
		u.sessions.Put(r.ctx(), sessionFlash, done)
		return r.Redirect(http.StatusSeeOther, "/cases/"+url.PathEscape(d.Reference))
	case errors.Is(err, cases.ErrAtCapacity):
		return u.showCase(r, http.StatusConflict, caseForm{action: "You already have as many open cases as your team allows: resolve or give back one to take another"})
	case errors.Is(err, cases.ErrAssignmentChanged):
		return u.showCase(r, http.StatusConflict, caseForm{action: "Someone else changed who has this case just now: the page shows who has it"})
	case errors.Is(err, cases.ErrAssigneeNotInTeam), errors.Is(err, cases.ErrUnknownTeam), errors.Is(err, cases.ErrClosed),
		errors.Is(err, cases.ErrUnknownAssignee):
		return u.showCase(r, http.StatusUnprocessableEntity, caseForm{action: "The case was not transferred: " + err.Error()})
	}
	return err
}

// next claims the most urgent unassigned case in the adviser's teams (or
// the team chosen on the queue) and opens it.
func (u *UI) next(r *request) error {
	d, err := u.cases.Next(r.ctx(), r.actor(), r.FormValue("team"))
	switch {
	case err == nil:
		return r.Redirect(http.StatusSeeOther, "/cases/"+url.PathEscape(d.Reference))
	case errors.Is(err, cases.ErrNothingToClaim):
		u.sessions.Put(r.ctx(), sessionFlash, "There is no unassigned case waiting in your teams.")
	case errors.Is(err, cases.ErrAtCapacity):
		u.sessions.Put(r.ctx(), sessionFlash, "You already have as many open cases as your team allows. Resolve or give back one to take another.")
	case errors.Is(err, cases.ErrUnknownTeam):
		u.sessions.Put(r.ctx(), sessionFlash, "Choose one of your teams.")
	default:
		return err
	}
	back := "/queue"
	if t := r.FormValue("team"); t != "" {
		back += "?team=" + url.QueryEscape(t)
	}
	return r.Redirect(http.StatusSeeOther, back)
}
