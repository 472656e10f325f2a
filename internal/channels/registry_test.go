package channels_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/x"
)

// hubDriver is a network like Meta: one driver, two channels, accounts
// sharing a webhook endpoint, and text that never goes out in parts.
type hubDriver struct{}

type hubSettings struct {
	Endpoint string
	PageID   string
}

func (hubDriver) Name() string { return "hub" }

func (hubDriver) Channels() map[string]channels.Capabilities {
	return map[string]channels.Capabilities{
		"hubchat": {
			Text:        map[channels.Visibility]channels.TextRule{channels.Private: {Unit: "characters", Limit: 20}},
			ReplyWindow: map[channels.Visibility]time.Duration{channels.Private: 24 * time.Hour},
		},
		"hubwall": {
			Text: map[channels.Visibility]channels.TextRule{
				channels.Public:  {Unit: "characters", Limit: 10, Split: splitEvery(10), MaxParts: 3},
				channels.Private: {Unit: "bytes", Limit: 8, Measure: func(s string) int { return len(s) }},
			},
		},
	}
}

func (hubDriver) Decode(_ channels.AccountConfig, decode func(any) error) (any, error) {
	var s hubSettings
	return s, decode(&s)
}

func (hubDriver) Open(acct channels.AccountConfig, _ channels.Deps) (channels.Account, error) {
	s := acct.Settings.(hubSettings)
	return channels.Account{ExternalID: s.PageID, Endpoint: s.Endpoint, Sender: sender(acct.Slug)}, nil
}

func (hubDriver) Webhook(endpoint string, accounts []channels.AccountConfig) (channels.Webhook, error) {
	var slugs []string
	for _, a := range accounts {
		slugs = append(slugs, a.Slug)
	}
	return hubWebhook{endpoint: endpoint, accounts: slugs}, nil
}

type hubWebhook struct {
	endpoint string
	accounts []string
}

func (hubWebhook) Challenge(*http.Request) (string, []byte, error) {
	return "", nil, channels.ErrNotAChallenge
}
func (hubWebhook) Verify(*http.Request, []byte) error { return nil }
func (hubWebhook) Parse([]byte, time.Time) ([]channels.Inbound, error) {
	return nil, nil
}

// splitEvery cuts a text into parts of n characters.
func splitEvery(n int) func(string) []string {
	return func(s string) []string {
		r := []rune(s)
		var parts []string
		for len(r) > n {
			parts = append(parts, string(r[:n]))
			r = r[n:]
		}
		return append(parts, string(r))
	}
}

type sender string

func (sender) Send(context.Context, channels.Outbound, func(int, string) error) ([]string, error) {
	return nil, nil
}

// pollDriver is a network without webhooks.
type pollDriver struct{ every time.Duration }

type poller struct{}

func (poller) Poll(context.Context, string) ([]channels.Inbound, string, error) { return nil, "", nil }

func (pollDriver) Name() string { return "feed" }
func (pollDriver) Channels() map[string]channels.Capabilities {
	return map[string]channels.Capabilities{"feed": {Text: map[channels.Visibility]channels.TextRule{
		channels.Public: {Unit: "graphemes", Limit: 300},
	}}}
}
func (pollDriver) Decode(channels.AccountConfig, func(any) error) (any, error) { return nil, nil }
func (d pollDriver) Open(channels.AccountConfig, channels.Deps) (channels.Account, error) {
	return channels.Account{Poller: poller{}, PollEvery: d.every}, nil
}

func registry(t *testing.T) *channels.Registry {
	t.Helper()
	r, err := channels.NewRegistry(x.Driver{}, hubDriver{}, pollDriver{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func xAccount(slug string, maxParts int) channels.AccountConfig {
	return channels.AccountConfig{Slug: slug, Channel: "x", MaxParts: maxParts,
		Settings: x.Settings{UserID: "15", ConsumerSecret: "s", AccessToken: "t"}}
}

func open(t *testing.T) *channels.Accounts {
	t.Helper()
	accts, err := registry(t).Open([]channels.AccountConfig{
		xAccount("council-x", 0),
		xAccount("capped-x", 2),
		{Slug: "page", Channel: "hubwall", Settings: hubSettings{Endpoint: "app", PageID: "p1"}},
		{Slug: "chat", Channel: "hubchat", Settings: hubSettings{Endpoint: "app", PageID: "p2"}},
		{Slug: "other-app", Channel: "hubchat", Settings: hubSettings{Endpoint: "app2", PageID: "p3"}},
		{Slug: "capped-wall", Channel: "hubwall", MaxParts: 5, Settings: hubSettings{Endpoint: "app2"}},
		{Slug: "timeline", Channel: "feed"},
	}, channels.Deps{HTTP: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	return accts
}

// words is a public reply of n words that X splits into a thread.
func words(n int) string {
	return strings.TrimSpace(strings.Repeat("Bins are collected on Tuesdays. ", n/5+1))
}

func TestCheckReply(t *testing.T) {
	accts := open(t)
	xThread := words(300) // about seven posts
	if n := len(x.SplitThread(xThread, x.MaxPostWeight)); n <= 2 || n > x.DefaultMaxParts {
		t.Fatalf("the long reply is %d posts; the table expects 3 to %d", n, x.DefaultMaxParts)
	}
	huge := words(2000) // more posts than X's default cap
	hugeParts := len(x.SplitThread(huge, x.MaxPostWeight))
	if hugeParts <= x.DefaultMaxParts {
		t.Fatalf("the huge reply is %d posts, within the default cap", hugeParts)
	}

	cases := []struct {
		name    string
		account string
		vis     channels.Visibility
		text    string
		want    error  // matched with errors.Is
		message string // the error's text, when it is too long
	}{
		{"x public, one post", "council-x", channels.Public, "We have asked the crew to come back today.", nil, ""},
		{"x public, 280 weighted characters", "council-x", channels.Public, strings.Repeat("a", 280), nil, ""},
		{"x public, 140 wide characters", "council-x", channels.Public, strings.Repeat("表", 140), nil, ""},
		{"x public, a thread", "council-x", channels.Public, xThread, nil, ""},
		{"x public, more posts than the default cap", "council-x", channels.Public, huge, channels.ErrTooLong,
			fmt.Sprintf("the text takes %d parts of at most 280 weighted characters; the limit is %d parts", hugeParts, x.DefaultMaxParts)},
		{"x public, within the account's cap", "capped-x", channels.Public, words(50), nil, ""},
		{"x public, over the account's cap", "capped-x", channels.Public, xThread, channels.ErrTooLong,
			"parts of at most 280 weighted characters; the limit is 2 parts"},
		{"x private, 10,000 characters", "council-x", channels.Private, strings.Repeat("é", 10000), nil, ""},
		{"x private, over 10,000 characters: DMs have no parts", "council-x", channels.Private, strings.Repeat("a", 10001), channels.ErrTooLong,
			"the text is 10001 characters; the limit is 10000 characters"},
		{"x private, a long reply the account's cap does not cover", "capped-x", channels.Private, xThread, nil, ""},
		{"no parts, at the limit", "chat", channels.Private, strings.Repeat("ü", 20), nil, ""},
		{"no parts, over the limit", "chat", channels.Private, strings.Repeat("a", 21), channels.ErrTooLong,
			"the text is 21 characters; the limit is 20 characters"},
		{"the channel's own measure", "page", channels.Private, "üüüü", nil, ""},
		{"the channel's own measure, over", "page", channels.Private, "üüüüü", channels.ErrTooLong,
			"the text is 10 bytes; the limit is 8 bytes"},
		{"parts within the channel's cap", "page", channels.Public, strings.Repeat("a", 30), nil, ""},
		{"parts over the channel's cap", "page", channels.Public, strings.Repeat("a", 31), channels.ErrTooLong,
			"the text takes 4 parts of at most 10 characters; the limit is 3 parts"},
		{"the account's cap over the channel's", "capped-wall", channels.Public, strings.Repeat("a", 50), nil, ""},
		{"a visibility the channel lacks", "chat", channels.Public, "hello", channels.ErrVisibilityNotSupported, ""},
		{"a driver without parts or caps", "timeline", channels.Public, strings.Repeat("a", 300), nil, ""},
		{"an account not configured", "gone", channels.Public, "hello", channels.ErrUnknownAccount, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := accts.CheckReply(tc.account, tc.vis, tc.text)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("CheckReply: %v, want %v", err, tc.want)
			}
			if tc.message != "" && !strings.Contains(err.Error(), tc.message) {
				t.Errorf("message %q, want one containing %q", err, tc.message)
			}
			var tl *channels.TooLongError
			if errors.Is(tc.want, channels.ErrTooLong) && !errors.As(err, &tl) {
				t.Errorf("%v is not a *TooLongError", err)
			}
			// The composer's counter measures by the same rule.
			m, merr := accts.MeasureReply(tc.account, tc.vis, tc.text)
			switch {
			case tc.want == nil || errors.Is(tc.want, channels.ErrTooLong):
				if merr != nil || m.Fits != (err == nil) || (m.Parts < 1 && (m.Fits || m.Splits)) {
					t.Errorf("MeasureReply: %+v, %v; CheckReply says %v", m, merr, err)
				}
				if tl != nil && (m.Length != tl.Length || (tl.Parts != 0 && m.Parts != tl.Parts)) {
					t.Errorf("MeasureReply %+v disagrees with %+v", m, tl)
				}
			case !errors.Is(merr, tc.want):
				t.Errorf("MeasureReply: %v, want %v", merr, tc.want)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	accts := open(t)
	var eps []string
	for _, e := range accts.Endpoints() {
		var served string
		if h, ok := e.Webhook.(hubWebhook); ok {
			served = " " + strings.Join(h.accounts, ",")
		}
		eps = append(eps, e.Driver+"/"+e.Slug+served)
	}
	// One endpoint per X account; the hub's accounts share theirs.
	if got, want := strings.Join(eps, "; "), "x/council-x; x/capped-x; hub/app page,chat; hub/app2 other-app,capped-wall"; got != want {
		t.Errorf("endpoints %q, want %q", got, want)
	}
	if _, ok := accts.Endpoints()[0].Webhook.(*x.Webhook); !ok {
		t.Errorf("X's endpoint is a %T", accts.Endpoints()[0].Webhook)
	}
	if len(accts.Senders()) != 6 {
		t.Errorf("%d senders, want 6 (all but the poller's)", len(accts.Senders()))
	}
	if _, ok := accts.Senders()["council-x"].(*x.Client); !ok {
		t.Errorf("X's sender is a %T", accts.Senders()["council-x"])
	}
	if got := accts.ExternalID("council-x") + " " + accts.ExternalID("chat"); got != "15 p2" {
		t.Errorf("external ids %q", got)
	}
	polled := accts.Pollers()
	if len(polled) != 1 || polled[0].Account != "timeline" || polled[0].Channel != "feed" || polled[0].Every != time.Minute {
		t.Errorf("pollers %+v", polled)
	}
}

func TestRegistry(t *testing.T) {
	r := registry(t)
	if got := strings.Join(r.Channels(), " "); got != "feed hubchat hubwall x" {
		t.Errorf("channels %q", got)
	}
	if name, ok := r.DriverName("hubchat"); !ok || name != "hub" {
		t.Errorf("driver of hubchat: %q %v", name, ok)
	}
	if caps, ok := r.Capabilities("hubchat"); !ok || caps.ReplyWindow[channels.Private] != 24*time.Hour {
		t.Errorf("capabilities of hubchat: %+v", caps)
	}
	if _, ok := r.DriverName("fax"); ok {
		t.Error("fax has a driver")
	}
}

// faultyDriver lets a test break one rule of a driver.
type faultyDriver struct {
	name  string
	chans map[string]channels.Capabilities
	acct  channels.Account
}

func (d faultyDriver) Name() string                                              { return d.name }
func (d faultyDriver) Channels() map[string]channels.Capabilities                { return d.chans }
func (faultyDriver) Decode(channels.AccountConfig, func(any) error) (any, error) { return nil, nil }
func (d faultyDriver) Open(channels.AccountConfig, channels.Deps) (channels.Account, error) {
	return d.acct, nil
}

func TestRegistryRefusesClashingDrivers(t *testing.T) {
	text := map[channels.Visibility]channels.TextRule{channels.Public: {Unit: "characters", Limit: 10}}
	for _, tc := range []struct {
		name    string
		drivers []channels.Driver
		want    string
	}{
		{"a name twice", []channels.Driver{x.Driver{}, x.Driver{}}, `"x" is registered twice`},
		{"a channel twice", []channels.Driver{x.Driver{}, faultyDriver{name: "y", chans: map[string]channels.Capabilities{"x": {Text: text}}}},
			`channel "x" is served by both "x" and "y"`},
		{"no name", []channels.Driver{faultyDriver{chans: map[string]channels.Capabilities{"z": {Text: text}}}}, "empty name"},
		{"no channel", []channels.Driver{faultyDriver{name: "z"}}, "serves no channel"},
		{"no visibility", []channels.Driver{faultyDriver{name: "z", chans: map[string]channels.Capabilities{"z": {}}}}, "supports no visibility"},
		{"no limit", []channels.Driver{faultyDriver{name: "z", chans: map[string]channels.Capabilities{"z": {
			Text: map[channels.Visibility]channels.TextRule{channels.Public: {Unit: "characters"}}}}}}, "positive limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := channels.NewRegistry(tc.drivers...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	text := map[channels.Visibility]channels.TextRule{channels.Public: {Unit: "characters", Limit: 10}}
	noHooks := faultyDriver{name: "z", chans: map[string]channels.Capabilities{"z": {Text: text}}, acct: channels.Account{Endpoint: "e"}}
	r, err := channels.NewRegistry(x.Driver{}, noHooks)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		accounts []channels.AccountConfig
		want     string
	}{
		{"an unknown channel", []channels.AccountConfig{{Slug: "a", Channel: "fax"}}, `channel account a: channel "fax" has no driver`},
		{"a slug twice", []channels.AccountConfig{xAccount("a", 0), xAccount("a", 0)}, "channel account a is configured twice"},
		{"settings of another driver", []channels.AccountConfig{{Slug: "a", Channel: "x", Settings: hubSettings{}}}, "want x.Settings"},
		{"an endpoint without webhooks", []channels.AccountConfig{{Slug: "a", Channel: "z"}}, `"z" names webhook endpoint "e" but has no webhooks`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := r.Open(tc.accounts, channels.Deps{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
