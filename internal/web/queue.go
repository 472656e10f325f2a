package web

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/cases"
)

// queueRow is one case as the queue shows it.
type queueRow struct {
	Reference  string
	Channel    string
	Visibility string
	Resident   string
	Handle     string
	Excerpt    string
	Since      time.Time
	Status     string
	Priority   string
	// SLA is the state of the deadline the queue is ordered by, in words
	// ("Due in 25 min", "Breached 10 min ago"); empty when none runs.
	SLA      string
	Breached bool
	// Waiting is how long since the resident's latest message; Local is
	// when that was, in the council's time zone; Exact is it in RFC 3339.
	Waiting, Local, Exact string
}

type queueData struct {
	Rows  []queueRow
	Total int
}

// queue lists the cases waiting for the council (new and open) in the
// signed-in user's teams (every team's for admins), the earliest SLA
// deadline first, then priority, then the longest waiting.
func (u *UI) queue(r *request) error {
	ctx, actor := r.ctx(), r.actor()
	p, err := u.cases.Queue(ctx, actor, cases.QueueFilter{PageSize: 100})
	if err != nil {
		return err
	}
	now := time.Now()
	rows := make([]queueRow, 0, len(p.Rows))
	for _, c := range p.Rows {
		row := queueRow{
			Reference: c.Reference, Channel: c.Channel, Resident: c.Contact.DisplayName, Handle: c.Contact.Handle,
			Excerpt: c.Subject, Since: c.LastMessageAt, Status: c.Status, Priority: c.Priority,
		}
		if m := c.Latest; m != nil {
			row.Excerpt, row.Visibility, row.Since = m.Body, m.Visibility, m.At
		}
		row.Excerpt = excerpt(row.Excerpt, 12, 100)
		if c.SLADue != nil {
			row.SLA, row.Breached = due(*c.SLADue, now)
		}
		row.Waiting = waiting(row.Since, now)
		row.Local = clock(row.Since, now, u.zone)
		row.Exact = row.Since.UTC().Format(time.RFC3339)
		rows = append(rows, row)
	}
	return u.render(r, http.StatusOK, "queue.html", page{Title: "Queue", Nav: "queue", Data: queueData{Rows: rows, Total: p.Total}})
}

// due says in words how a deadline stands at now, and whether it passed.
func due(at, now time.Time) (string, bool) {
	if at.After(now) {
		return "Due in " + waiting(now, at), false
	}
	return "Breached " + waiting(at, now) + " ago", true
}

// excerpt is the first words of s, at most words words and about max
// characters, on one line, with "…" when cut.
func excerpt(s string, words, max int) string {
	fields := strings.Fields(s)
	cut := len(fields) > words
	if cut {
		fields = fields[:words]
	}
	out := strings.Join(fields, " ")
	if utf8.RuneCountInString(out) > max {
		out = string([]rune(out)[:max])
		cut = true
	}
	if cut {
		out = strings.TrimRight(out, " ") + "…"
	}
	return out
}

// waiting says how long since t, as an adviser reads it: "under a
// minute", "25 min", "3 h 10 min", "2 days".
func waiting(since, now time.Time) string {
	d := now.Sub(since)
	switch {
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	case d < 48*time.Hour:
		return "1 day"
	default:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
}

var channelNames = map[string]string{
	"x": "X", "facebook": "Facebook", "instagram": "Instagram", "whatsapp": "WhatsApp", "telegram": "Telegram",
	"sms": "SMS", "mastodon": "Mastodon", "bluesky": "Bluesky", "email": "Email",
}

var priorityNames = map[string]string{"low": "Low", "normal": "Normal", "high": "High", "urgent": "Urgent"}

var statusNames = map[string]string{
	"new": "New", "open": "Open", "awaiting_resident": "Awaiting resident", "resolved": "Resolved", "closed": "Closed",
}

func name(names map[string]string, k string) string {
	if n, ok := names[k]; ok {
		return n
	}
	return k
}

// funcs are the templates' helpers. Everything they return is text that
// html/template escapes; none returns template.HTML.
var funcs = template.FuncMap{
	"channel":  func(k string) string { return name(channelNames, k) },
	"status":   func(k string) string { return name(statusNames, k) },
	"priority": func(k string) string { return name(priorityNames, k) },
	"visibility": func(v string) string {
		switch v {
		case "public":
			return "Public"
		case "private":
			return "Private"
		}
		return ""
	},
}

// clock shows t in the zone: the time alone today, with the day within a
// week, with the date before that.
func clock(t, now time.Time, zone *time.Location) string {
	t, now = t.In(zone), now.In(zone)
	switch {
	case t.YearDay() == now.YearDay() && t.Year() == now.Year():
		return t.Format("15:04")
	case now.Sub(t) < 6*24*time.Hour:
		return t.Format("Mon 15:04")
	default:
		return t.Format("2 Jan 2006 15:04")
	}
}
