package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citizeninbox/inbox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestUserAndTokenCommands(t *testing.T) {
	vars := map[string]string{"INBOX_DATABASE_URL": testenv.Database(t)}
	var out, errOut bytes.Buffer
	if err := run([]string{"user", "create", "-email", "sam@example.gov.uk", "-name", "Sam Supervisor", "-role", "supervisor"},
		getenv(vars), &out, &errOut); err != nil {
		t.Fatalf("user create: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "<sam@example.gov.uk> as supervisor") {
		t.Errorf("user create printed %q", out.String())
	}
	err := run([]string{"user", "create", "-email", "sam@example.gov.uk", "-name", "Sam again"}, getenv(vars), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second user with the same email: %v", err)
	}
	for _, bad := range [][]string{
		{"-email", "not-an-address", "-name", "X"},
		{"-email", "a@example.gov.uk", "-name", ""},
		{"-email", "b@example.gov.uk", "-name", "B", "-role", "superuser"},
	} {
		if err := run(append([]string{"user", "create"}, bad...), getenv(vars), &out, &errOut); err == nil {
			t.Errorf("user create %v succeeded", bad)
		}
	}

	out.Reset()
	if err := run([]string{"token", "create", "-email", "SAM@example.gov.uk", "-name", "reporting"}, getenv(vars), &out, &errOut); err != nil {
		t.Fatalf("token create: %v", err)
	}
	token := strings.TrimSpace(out.String())
	if !strings.HasPrefix(token, "cit_") || len(token) < 40 {
		t.Errorf("token %q", token)
	}
	if err := run([]string{"token", "create", "-email", "nobody@example.gov.uk", "-name", "x"}, getenv(vars), &out, &errOut); err == nil ||
		!strings.Contains(err.Error(), "no user") {
		t.Errorf("token for an unknown user: %v", err)
	}
}

func TestServeRefusesAnInvalidConfiguration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(`
teams:
  - slug: contact-centre
    name: Contact centre
channel_accounts:
  - slug: council-x
    channel: x
    name: Council
    team: contact-centre
    api_base_url: http://127.0.0.1:1
    x:
      user_id: "1"
      consumer_secret: ${MISSING_SECRET}
      access_token: t
`), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run([]string{"serve"}, getenv(map[string]string{"INBOX_CONFIG": path}), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "channel_accounts[0].x.consumer_secret: environment variable MISSING_SECRET is not set") {
		t.Errorf("serve with a bad configuration: %v", err)
	}
}

func TestUnknownCommand(t *testing.T) {
	var errOut bytes.Buffer
	if err := run([]string{"launch"}, getenv(nil), &bytes.Buffer{}, &errOut); err == nil || !strings.Contains(errOut.String(), "usage:") {
		t.Errorf("unknown command: %v, %q", err, errOut.String())
	}
}
