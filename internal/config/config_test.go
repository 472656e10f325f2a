package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/email"
	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/networks"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// drivers is the registry the tests parse with: X, and a driver serving
// two channels whose settings block is named after the driver.
func drivers(t testing.TB) *channels.Registry {
	t.Helper()
	r, err := channels.NewRegistry(x.Driver{}, pairDriver{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pairDriver serves "paira" and "pairb" with one settings block, "pair",
// and checks one field itself.
type pairDriver struct{}

type pairSettings struct {
	Endpoint string `yaml:"endpoint" validate:"required,slug"`
	Region   string `yaml:"region"`
}

func (pairDriver) Name() string { return "pair" }

func (pairDriver) Channels() map[string]channels.Capabilities {
	caps := channels.Capabilities{Text: map[channels.Visibility]channels.TextRule{
		channels.Private: {Unit: "characters", Limit: 100},
	}}
	return map[string]channels.Capabilities{"paira": caps, "pairb": caps}
}

func (pairDriver) Decode(_ channels.AccountConfig, decode func(any) error) (any, error) {
	var s pairSettings
	if err := decode(&s); err != nil {
		return nil, err
	}
	if s.Region != "" && s.Region != "eu" {
		return nil, &channels.SettingError{Field: "region", Reason: "only eu is served"}
	}
	return s, nil
}

func (pairDriver) Open(channels.AccountConfig, channels.Deps) (channels.Account, error) {
	return channels.Account{}, errors.New("not opened in these tests")
}

const valid = `
teams:
  - slug: contact-centre
    name: Contact centre
channel_accounts:
  - slug: council-x
    channel: x
    name: Council on X
    team: contact-centre
    api_base_url: https://api.x.com
    x:
      user_id: "123"
      consumer_secret: ${SECRET}
      access_token: token-${SUFFIX}
`

func TestParseExpandsEnvironment(t *testing.T) {
	f, err := Parse([]byte(valid), env(map[string]string{"SECRET": "s3cret", "SUFFIX": "abc"}), drivers(t))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := f.Account("council-x")
	if !ok || a.Team != "contact-centre" {
		t.Fatalf("account %+v", a)
	}
	want := x.Settings{UserID: "123", ConsumerSecret: "s3cret", AccessToken: "token-abc"}
	if s, ok := a.Settings.(x.Settings); !ok || s != want {
		t.Errorf("settings %#v, want %#v", a.Settings, want)
	}
	if got := a.Driver(); got.Slug != "council-x" || got.Channel != "x" || got.APIBaseURL != "https://api.x.com" || got.Settings != a.Settings {
		t.Errorf("driver's view of the account %+v", got)
	}
}

func TestParseNamesTheBadField(t *testing.T) {
	vars := env(map[string]string{"SECRET": "s", "SUFFIX": "x"})
	cases := []struct {
		name, yaml, want string
	}{
		{"unset variable", valid, ""}, // replaced below
		{"missing secret", strings.Replace(valid, "consumer_secret: ${SECRET}", "consumer_secret: ''", 1),
			"channel_accounts[0].x.consumer_secret: is required"},
		{"unknown channel", strings.Replace(valid, "channel: x", "channel: fax", 1),
			`channel_accounts[0].channel: "fax" is not one of: paira pairb x`},
		{"no api_base_url", strings.Replace(valid, "    api_base_url: https://api.x.com\n", "", 1),
			"channel_accounts[0].api_base_url: is required"},
		{"bad url", strings.Replace(valid, "https://api.x.com", "not a url", 1),
			`channel_accounts[0].api_base_url: "not a url" is not a URL`},
		{"non-numeric user id", strings.Replace(valid, `user_id: "123"`, `user_id: "abc"`, 1),
			`channel_accounts[0].x.user_id: "abc" is not a number`},
		{"unknown team", strings.Replace(valid, "team: contact-centre", "team: housing", 1),
			`channel_accounts[0].team: no team has slug "housing"`},
		{"bad slug", strings.Replace(valid, "slug: council-x", "slug: Council X", 1),
			`channel_accounts[0].slug: "Council X" is not a slug`},
		{"no teams", "teams: []\n", "teams: needs at least 1 entries"},
		{"unknown key", strings.Replace(valid, "name: Contact centre", "name: Contact centre\n    colour: red", 1),
			"field colour not found"},
		{"x section missing", strings.Split(valid, "    x:\n")[0], "channel_accounts[0].x: is required"},
		{"not yaml", "teams: [", "did not find expected"},
		{"unknown key in an account", strings.Replace(valid, "    x:\n", "    colour: red\n    x:\n", 1),
			`channel_accounts[0].colour: unknown field`},
		{"another driver's block", strings.Replace(valid, "    x:\n", "    pair:\n      endpoint: a\n    x:\n", 1),
			`channel_accounts[0].pair: unknown field (the settings of a x account go in "x")`},
		{"unknown key in the settings", strings.Replace(valid, "      access_token:", "      colour: red\n      access_token:", 1),
			`channel_accounts[0].x.colour: unknown field`},
		{"settings of the wrong shape", strings.Replace(valid, `user_id: "123"`, `user_id: [1, 2]`, 1),
			`channel_accounts[0].x: cannot unmarshal !!seq into string`},
		{"settings that are not a mapping", strings.Split(valid, "    x:\n")[0] + "    x: 42\n",
			`channel_accounts[0].x: cannot unmarshal !!int`},
		{"max_parts below zero", strings.Replace(valid, "    x:\n", "    max_parts: -1\n    x:\n", 1),
			`channel_accounts[0].max_parts: -1 is less than 0`},
		{"team cap below one", strings.Replace(valid, "name: Contact centre", "name: Contact centre\n    max_open_per_adviser: 0", 1),
			`teams[0].max_open_per_adviser: 0 is less than 1`},
		{"canned response for an unknown team", valid + "canned_responses:\n  - name: hello\n    title: Hello\n    text: Hello {resident_name}\n    teams: [parks]\n",
			`canned_responses[0].teams[0]: no team has slug "parks"`},
		{"canned response with an unknown placeholder", valid + "canned_responses:\n  - name: hello\n    title: Hello\n    text: Hello {name}\n",
			`canned_responses[0].text: unknown placeholder {name}`},
		{"max_parts too high", strings.Replace(valid, "    x:\n", "    max_parts: 1000\n    x:\n", 1),
			`channel_accounts[0].max_parts: 1000 is more than 100`},
	}
	cases[0].yaml = valid
	cases[0].want = "channel_accounts[0].x.consumer_secret: environment variable SECRET is not set"
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			get := vars
			if i == 0 {
				get = env(map[string]string{"SUFFIX": "x"})
			}
			_, err := Parse([]byte(tc.yaml), get, drivers(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

const pairAccounts = `
teams:
  - slug: contact-centre
    name: Contact centre
channel_accounts:
  - slug: page
    channel: paira
    name: A
    team: contact-centre
    api_base_url: https://pair.example
    max_parts: 3
    pair:
      endpoint: main
  - slug: other
    channel: pairb
    name: B
    team: contact-centre
    api_base_url: https://pair.example
    pair:
      endpoint: main
      region: REGION
`

// A driver serving several channels decodes every account's block, named
// after the driver, and its own complaints name the field.
func TestParseDecodesWithTheChannelsDriver(t *testing.T) {
	f, err := Parse([]byte(strings.Replace(pairAccounts, "REGION", "eu", 1)), env(nil), drivers(t))
	if err != nil {
		t.Fatal(err)
	}
	configs := f.AccountConfigs()
	if len(configs) != 2 || configs[0].Channel != "paira" || configs[1].Channel != "pairb" || configs[0].MaxParts != 3 || configs[1].MaxParts != 0 {
		t.Fatalf("accounts %+v", configs)
	}
	if s, ok := configs[1].Settings.(pairSettings); !ok || s != (pairSettings{Endpoint: "main", Region: "eu"}) {
		t.Errorf("settings %#v", configs[1].Settings)
	}

	_, err = Parse([]byte(strings.Replace(pairAccounts, "REGION", "us", 1)), env(nil), drivers(t))
	if want := "channel_accounts[1].pair.region: only eu is served"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	// Every bad field is reported at once.
	bad := strings.Replace(strings.Replace(pairAccounts, "endpoint: main", "endpoint: Main", 1), "name: B", "name: ''", 1)
	_, err = Parse([]byte(strings.Replace(bad, "REGION", "eu", 1)), env(nil), drivers(t))
	for _, want := range []string{`channel_accounts[0].pair.endpoint: "Main" is not a slug`, "channel_accounts[1].name: is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one containing %q", err, want)
		}
	}
}

func TestParseWithoutDrivers(t *testing.T) {
	_, err := Parse([]byte(valid), env(map[string]string{"SECRET": "s", "SUFFIX": "x"}), nil)
	if want := `channel_accounts[0].channel: "x" is not one of: `; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one containing %q", err, want)
	}
}

// An email account names its servers in its own block: it needs no
// api_base_url.
func TestEmailAccountNeedsNoAPIBaseURL(t *testing.T) {
	reg, err := channels.NewRegistry(x.Driver{}, email.Driver{})
	if err != nil {
		t.Fatal(err)
	}
	yaml := valid + `
  - slug: council-email
    channel: email
    name: Council by email
    team: contact-centre
    email:
      address: contact@example-council.gov.uk
      imap_url: imaps://mail.example-council.gov.uk
      smtp_url: smtps://mail.example-council.gov.uk
      username: contact
      password: p
`
	f, err := Parse([]byte(yaml), env(map[string]string{"SECRET": "s", "SUFFIX": "x"}), reg)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.Account("council-email")
	if s, ok := a.Settings.(email.Settings); !ok || s.Mailbox != "INBOX" || s.Address != "contact@example-council.gov.uk" {
		t.Errorf("settings %#v", a.Settings)
	}
	bad := strings.Replace(yaml, "imaps://mail", "https://mail", 1)
	if _, err := Parse([]byte(bad), env(map[string]string{"SECRET": "s", "SUFFIX": "x"}), reg); err == nil || !strings.Contains(err.Error(), "channel_accounts[1].email.imap_url:") {
		t.Errorf("an http imap_url: %v", err)
	}
}

func TestExampleConfigurationIsValid(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "config.example.yaml")
	vars := env(map[string]string{"X_API_BASE_URL": "http://127.0.0.1:8081", "X_CONSUMER_SECRET": "s", "X_ACCESS_TOKEN": "t",
		"META_API_BASE_URL": "http://127.0.0.1:8082", "META_APP_SECRET": "s", "META_VERIFY_TOKEN": "v", "META_ACCESS_TOKEN": "t",
		"TWILIO_API_BASE_URL": "http://127.0.0.1:8084", "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000", "TWILIO_AUTH_TOKEN": "t",
		"TELEGRAM_API_BASE_URL": "http://127.0.0.1:8083", "TELEGRAM_BOT_TOKEN": "7000000001:t", "TELEGRAM_SECRET_TOKEN": "s",
		"BLUESKY_SERVICE_URL": "http://127.0.0.1:8086", "BLUESKY_HANDLE": "examplecouncil.bsky.social", "BLUESKY_APP_PASSWORD": "p",
		"MASTODON_BASE_URL": "http://127.0.0.1:8085", "MASTODON_ACCESS_TOKEN": "t",
		"IMAP_URL": "imap+plain://127.0.0.1:1143", "SMTP_URL": "smtp+plain://127.0.0.1:1025", "EMAIL_USERNAME": "contact@example-council.gov.uk", "EMAIL_PASSWORD": "p"})
	// The networks cmd/inbox serves.
	served, err := networks.Registry()
	if err != nil {
		t.Fatal(err)
	}
	f, err := Load(path, vars, served)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.ChannelAccounts) == 0 {
		t.Error("example has no channel accounts")
	}
	if _, err := Load(path, env(nil), served); err == nil || !strings.Contains(err.Error(), "api_base_url: environment variable X_API_BASE_URL is not set") {
		t.Errorf("example without its environment: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

func TestFromEnv(t *testing.T) {
	e, err := FromEnv(env(map[string]string{EnvHTTPAddr: "0.0.0.0:9000"}))
	if err != nil {
		t.Fatal(err)
	}
	if e.PublicURL != "http://0.0.0.0:9000" || e.NATSURL != "" || e.LogLevel != "info" {
		t.Errorf("env %+v", e)
	}
	if _, err := FromEnv(env(map[string]string{EnvLogLevel: "loud"})); err == nil || !strings.Contains(err.Error(), EnvLogLevel) {
		t.Errorf("bad log level: %v", err)
	}
	if _, err := FromEnv(env(map[string]string{EnvPublicURL: "example"})); err == nil || !strings.Contains(err.Error(), EnvPublicURL) {
		t.Errorf("bad public URL: %v", err)
	}
}

func TestFromEnvOperationsAddress(t *testing.T) {
	e, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if e.OpsAddr != "127.0.0.1:9090" || e.HTTPAddr != "127.0.0.1:8080" {
		t.Errorf("default addresses: public %q, operations %q", e.HTTPAddr, e.OpsAddr)
	}
	e, err = FromEnv(env(map[string]string{EnvOpsAddr: "10.0.0.5:9100"}))
	if err != nil || e.OpsAddr != "10.0.0.5:9100" {
		t.Errorf("operations address %q, %v", e.OpsAddr, err)
	}
	_, err = FromEnv(env(map[string]string{EnvHTTPAddr: "127.0.0.1:8000", EnvOpsAddr: "127.0.0.1:8000"}))
	if err == nil || !strings.Contains(err.Error(), EnvOpsAddr) {
		t.Errorf("one address for both listeners: %v", err)
	}
}

func TestFromEnvNATSSecurity(t *testing.T) {
	e, err := FromEnv(env(map[string]string{
		EnvNATSURL: "tls://nats-1.internal:4222", EnvNATSCreds: "/etc/inbox/inbox.creds",
		EnvNATSCA: "/etc/inbox/ca.pem", EnvNATSCert: "/etc/inbox/client.pem", EnvNATSKey: "/etc/inbox/client-key.pem",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if e.NATSCreds != "/etc/inbox/inbox.creds" || e.NATSCA != "/etc/inbox/ca.pem" ||
		e.NATSCert != "/etc/inbox/client.pem" || e.NATSKey != "/etc/inbox/client-key.pem" {
		t.Errorf("env %+v", e)
	}
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{EnvNATSCreds: "/etc/inbox/inbox.creds"}, EnvNATSCreds + " applies to an external NATS"},
		{map[string]string{EnvNATSCA: "/etc/inbox/ca.pem"}, EnvNATSCA + " applies to an external NATS"},
		{map[string]string{EnvNATSURL: "tls://nats:4222", EnvNATSCert: "/etc/inbox/client.pem"}, "a client certificate needs its key"},
		{map[string]string{EnvNATSURL: "tls://nats:4222", EnvNATSKey: "/etc/inbox/client-key.pem"}, "a client certificate needs its key"},
	} {
		if _, err := FromEnv(env(tc.vars)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.vars, err, tc.want)
		}
	}
}
