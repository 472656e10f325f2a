package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/routing"
	"github.com/citizeninbox/inbox/internal/sla"
)

// ruleInput is one line `inbox rules test` reads.
type ruleInput struct {
	Text        *string    `json:"text"`
	Channel     string     `json:"channel"`
	Account     string     `json:"account"`
	Visibility  string     `json:"visibility"`
	ReceivedAt  *time.Time `json:"received_at"`
	FollowUp    bool       `json:"follow_up"`
	ContactTags []string   `json:"contact_tags"`
}

// ruleOutput is the line it writes for it.
type ruleOutput struct {
	Team             *string     `json:"team"`
	Priority         *string     `json:"priority"`
	Service          *string     `json:"service"`
	Tags             []string    `json:"tags"`
	Rules            []firedRule `json:"rules"`
	Emergency        bool        `json:"emergency"`
	Safeguarding     bool        `json:"safeguarding"`
	FirstResponseDue *time.Time  `json:"first_response_due"`
	ResolutionDue    *time.Time  `json:"resolution_due"`
}

type firedRule struct {
	Name    string   `json:"name"`
	Matched []string `json:"matched"`
}

// testRules is `inbox rules test`: it routes each JSON line of stdin with
// the configuration's rules and SLA policy and writes where it would go.
// It needs no database, NATS or credentials: variables the file names may
// be unset.
func testRules(args []string, getenv func(string) string, env config.Env, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	file := fs.String("config", env.ConfigFile, "YAML configuration file")
	atFlag := fs.String("at", "", "when messages without received_at arrived (RFC 3339; default now)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	at := time.Now()
	if *atFlag != "" {
		t, err := time.Parse(time.RFC3339, *atFlag)
		if err != nil {
			return fmt.Errorf("-at: %q is not an RFC 3339 time such as 2026-03-02T10:00:00Z", *atFlag)
		}
		at = t
	}
	registry, err := drivers()
	if err != nil {
		return err
	}
	f, err := config.LoadAllowingUnset(*file, getenv, registry)
	if err != nil {
		return err
	}
	if f.Compiled.Router == nil {
		return fmt.Errorf("%s has no routing rules (a routing block)", *file)
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	out := bufio.NewWriter(stdout)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		res, err := routeLine(f, line, at)
		if err != nil {
			err = enc.Encode(map[string]string{"error": fmt.Sprintf("line %d: %v", n, err)})
		} else {
			err = enc.Encode(res)
		}
		if err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return errors.Join(fmt.Errorf("reading standard input: %w", err), out.Flush())
	}
	return out.Flush()
}

// routeLine routes one input line.
func routeLine(f *config.File, line []byte, at time.Time) (ruleOutput, error) {
	var in ruleInput
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return ruleOutput{}, fmt.Errorf("not a JSON object of text, channel, account, visibility, received_at, follow_up, contact_tags: %w", err)
	}
	if dec.More() {
		return ruleOutput{}, errors.New("more than one JSON value on the line")
	}
	if in.Text == nil || strings.TrimSpace(*in.Text) == "" {
		return ruleOutput{}, errors.New("text is required")
	}
	switch in.Visibility {
	case "":
		in.Visibility = "public"
	case "public", "private":
	default:
		return ruleOutput{}, fmt.Errorf("visibility %q is not public or private", in.Visibility)
	}
	if err := defaultAccount(f, &in); err != nil {
		return ruleOutput{}, err
	}
	received := at
	if in.ReceivedAt != nil {
		received = *in.ReceivedAt
	}
	d := f.Compiled.Router.Route(routing.Input{
		Text: *in.Text, Channel: in.Channel, Account: in.Account, Visibility: in.Visibility,
		ReceivedAt: received, FollowUp: in.FollowUp, ContactTags: in.ContactTags,
	})
	out := ruleOutput{Tags: d.Tags, Rules: []firedRule{}, Emergency: d.Emergency, Safeguarding: d.Safeguarding}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	for _, r := range d.Rules {
		m := r.Matched
		if m == nil {
			m = []string{}
		}
		out.Rules = append(out.Rules, firedRule{Name: r.Name, Matched: m})
	}
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	out.Team, out.Priority, out.Service = str(d.Team), str(d.Priority), str(d.Service)
	if p := f.Compiled.Policies; p != nil && d.Team != "" && d.Priority != "" {
		clk := p.For(d.Team, d.Service, sla.Priority(d.Priority))
		due := func(r *sla.Rule) *time.Time {
			if r == nil {
				return nil
			}
			t := r.Due(received).UTC()
			return &t
		}
		out.FirstResponseDue, out.ResolutionDue = due(clk.FirstResponse), due(clk.Resolution)
	}
	return out, nil
}

// defaultAccount fills in the channel and account of a line: the account
// named, else the first of the channel named, else the file's first.
func defaultAccount(f *config.File, in *ruleInput) error {
	if len(f.ChannelAccounts) == 0 {
		if in.Channel == "" {
			return errors.New("channel is required: the configuration has no channel accounts")
		}
		return nil
	}
	if in.Account != "" {
		a, ok := f.Account(in.Account)
		if !ok {
			return fmt.Errorf("no channel account has slug %q", in.Account)
		}
		if in.Channel != "" && in.Channel != a.Channel {
			return fmt.Errorf("account %q is on %s, not %s", a.Slug, a.Channel, in.Channel)
		}
		in.Channel = a.Channel
		return nil
	}
	for _, a := range f.ChannelAccounts {
		if in.Channel == "" || a.Channel == in.Channel {
			in.Channel, in.Account = a.Channel, a.Slug
			return nil
		}
	}
	return fmt.Errorf("no channel account is on %q", in.Channel)
}
