package cases

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/store"
)

// Errors of replies that answer a particular message, private replies to
// public posts and template replies.
var (
	// ErrReplyTarget is an in-reply-to that is not a resident's message of
	// the case.
	ErrReplyTarget = errors.New("in_reply_to_message_id is not a message the resident sent on this case")
	// ErrPrivateReplyUsed is a second private reply to one public post,
	// which the network does not take.
	ErrPrivateReplyUsed = errors.New("the resident's public post already had its one private reply; " +
		"reply publicly, or wait for the resident to answer the private message, which opens a conversation")
	// ErrUnknownTemplate is a template the account does not have.
	ErrUnknownTemplate = errors.New("the channel account has no template of that name")
	// ErrTemplateNotPrivate is a template sent as a public reply.
	ErrTemplateNotPrivate = errors.New("templates are private messages: use visibility private")
)

// The template errors callers map to answers come from channels.
var ErrTemplateParameters = channels.ErrTemplateParameters

// Templates are a channel account's approved templates; none when this
// replica does not know the account.
func (s *Service) Templates(account string) []channels.Template {
	s.mu.RLock()
	rules := s.cfg.Replies
	s.mu.RUnlock()
	if rules == nil {
		return nil
	}
	return rules.Templates(account)
}

func (s *Service) privateReplyToPublic(account string) time.Duration {
	s.mu.RLock()
	rules := s.cfg.Replies
	s.mu.RUnlock()
	if rules == nil {
		return 0
	}
	return rules.PrivateReplyToPublic(account)
}

// renderTemplate turns a template reply into its text, for the record.
func (s *Service) renderTemplate(account string, in ReplyInput) (channels.TemplateReply, string, error) {
	if in.Visibility != channels.Private {
		return channels.TemplateReply{}, "", ErrTemplateNotPrivate
	}
	var names []string
	for _, t := range s.Templates(account) {
		if t.Name != in.Template {
			names = append(names, t.Name)
			continue
		}
		text, err := t.Render(in.Parameters)
		if err != nil {
			return channels.TemplateReply{}, "", err
		}
		return channels.TemplateReply{Name: t.Name, Language: t.Language, Parameters: in.Parameters}, text, nil
	}
	if len(names) == 0 {
		return channels.TemplateReply{}, "", fmt.Errorf("%w: it has none", ErrUnknownTemplate)
	}
	return channels.TemplateReply{}, "", fmt.Errorf("%w: it has %s", ErrUnknownTemplate, strings.Join(names, ", "))
}

// replyTarget is the network id and visibility of the resident's message
// id on the case, which a reply answers.
func replyTarget(tx *gorm.DB, caseID, id int64) (externalID string, vis channels.Visibility, err error) {
	var row struct {
		ExternalID string
		Visibility string
	}
	if err := tx.Raw(`SELECT external_id, visibility FROM messages
		WHERE id = ? AND case_id = ? AND direction = 'inbound' AND external_id <> ''`, id, caseID).Scan(&row).Error; err != nil {
		return "", "", err
	}
	if row.ExternalID == "" {
		return "", "", ErrReplyTarget
	}
	return row.ExternalID, channels.Visibility(row.Visibility), nil
}

// address checks a reply against the network's rules and says where it
// goes: the post a public reply answers, the resident a private one is
// for, and the message it quotes or the public post it privately answers.
func (s *Service) address(tx *gorm.DB, c *store.Case, channel, account string, in ReplyInput, text string) (channels.Outbound, error) {
	out := channels.Outbound{Channel: channel, Account: account, Visibility: in.Visibility, Text: text}
	if in.Visibility != channels.Public && in.Visibility != channels.Private {
		return out, fmt.Errorf("visibility %q is not public or private", in.Visibility)
	}
	var target string
	var targetVis channels.Visibility
	if in.InReplyTo > 0 {
		var err error
		if target, targetVis, err = replyTarget(tx, c.ID, in.InReplyTo); err != nil {
			return out, err
		}
		if in.Visibility == channels.Public && targetVis != channels.Public {
			return out, fmt.Errorf("%w: a public reply answers a public post, and that message is private", ErrReplyTarget)
		}
	}
	if in.Template == "" {
		if err := s.checkReply(account, in.Visibility, text); err != nil {
			return out, err
		}
	}
	if in.Visibility == channels.Public {
		if err := s.checkWindow(tx, c.ID, channel, account, in.Visibility); err != nil {
			return out, err
		}
		if target != "" {
			out.InReplyTo = target
			return out, nil
		}
		// The case's resident's latest public post; another resident's
		// post in the thread only when the case has none of theirs.
		if err := tx.Raw(`SELECT external_id FROM messages
			WHERE case_id = ? AND direction = 'inbound' AND visibility = 'public' AND external_id <> ''
			ORDER BY (contact_identity_id = ?) DESC, id DESC LIMIT 1`, c.ID, c.ContactIdentityID).Scan(&out.InReplyTo).Error; err != nil {
			return out, err
		}
		if out.InReplyTo == "" {
			return out, ErrNoPublicThread
		}
		return out, nil
	}
	if err := tx.Raw(`SELECT external_id FROM contact_identities WHERE id = ?`, c.ContactIdentityID).Scan(&out.Recipient).Error; err != nil {
		return out, err
	}
	if out.Recipient == "" {
		return out, ErrNoResident
	}
	if in.Template != "" {
		// A template goes whatever the window; it may quote a private message.
		if targetVis == channels.Private {
			out.InReplyTo = target
		}
		return out, nil
	}
	post := ""
	if targetVis == channels.Public {
		post = target
	}
	public, err := s.privateToPublic(tx, c, channel, account, post)
	if err != nil {
		return out, err
	}
	if public != "" {
		out.InReplyTo, out.ToPublicPost = public, true
		m, err := s.MeasureReply(account, channels.Private, text)
		if err == nil && m.Parts > 1 {
			return out, &channels.TooLongError{Unit: m.Unit, Limit: m.Limit, Length: m.Length, Parts: m.Parts, MaxParts: 1}
		}
		return out, nil
	}
	if post != "" {
		return out, fmt.Errorf("%w: %s has no private reply to a public post", ErrReplyTarget, channel)
	}
	if err := s.checkWindow(tx, c.ID, channel, account, channels.Private); err != nil {
		return out, err
	}
	out.InReplyTo = target
	return out, nil
}

// privateToPublic decides how a private reply reaches a resident on a
// network that lets one private message answer a public post for a while
// (Meta's private replies to comments). post, when not empty, is the
// public post the adviser chose; otherwise the resident's latest public
// post, when they have never written privately. It returns the post to
// answer, or "" for an ordinary private message.
func (s *Service) privateToPublic(tx *gorm.DB, c *store.Case, channel, account, post string) (string, error) {
	window := s.privateReplyToPublic(account)
	if window <= 0 {
		return "", nil
	}
	if post == "" {
		last, err := lastResidentMessage(tx, c.ID, channels.Private)
		if err != nil || !last.IsZero() {
			return "", err
		}
	}
	var row struct {
		ExternalID string
		At         time.Time
	}
	q := `SELECT external_id, coalesce(network_sent_at, created_at) AS at FROM messages
		WHERE case_id = ? AND direction = 'inbound' AND visibility = 'public' AND external_id <> ''
		  AND contact_identity_id = ?`
	args := []any{c.ID, c.ContactIdentityID}
	if post != "" {
		q += ` AND external_id = ?`
		args = append(args, post)
	}
	if err := tx.Raw(q+` ORDER BY id DESC LIMIT 1`, args...).Scan(&row).Error; err != nil {
		return "", err
	}
	if row.ExternalID == "" {
		if post != "" {
			return "", fmt.Errorf("%w: a private reply answers a public post of the case's resident", ErrReplyTarget)
		}
		return "", ErrNoResident
	}
	if closes := row.At.Add(window); time.Now().After(closes) {
		return "", &WindowClosedError{Channel: channel, Visibility: channels.Private, Window: window, ClosedAt: closes, ToPublicPost: true}
	}
	var used bool
	if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM messages WHERE case_id = ? AND direction = 'outbound'
		AND visibility = 'private' AND in_reply_to = ? AND delivery_status <> 'failed')`, c.ID, row.ExternalID).Scan(&used).Error; err != nil {
		return "", err
	}
	if used {
		return "", ErrPrivateReplyUsed
	}
	return row.ExternalID, nil
}
