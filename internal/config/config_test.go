package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
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
	f, err := Parse([]byte(valid), env(map[string]string{"SECRET": "s3cret", "SUFFIX": "abc"}))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := f.Account("council-x")
	if !ok || a.X.ConsumerSecret != "s3cret" || a.X.AccessToken != "token-abc" || a.Team != "contact-centre" {
		t.Errorf("account %+v", a)
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
			`channel_accounts[0].channel: "fax" is not one of: x`},
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
	}
	cases[0].yaml = valid
	cases[0].want = "channel_accounts[0].x.consumer_secret: environment variable SECRET is not set"
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			get := vars
			if i == 0 {
				get = env(map[string]string{"SUFFIX": "x"})
			}
			_, err := Parse([]byte(tc.yaml), get)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestExampleConfigurationIsValid(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "config.example.yaml")
	vars := env(map[string]string{"X_API_BASE_URL": "http://127.0.0.1:8081", "X_CONSUMER_SECRET": "s", "X_ACCESS_TOKEN": "t"})
	f, err := Load(path, vars)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.ChannelAccounts) == 0 {
		t.Error("example has no channel accounts")
	}
	if _, err := Load(path, env(nil)); err == nil || !strings.Contains(err.Error(), "api_base_url: environment variable X_API_BASE_URL is not set") {
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
