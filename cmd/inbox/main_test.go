package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/auth"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// teamsConfig writes a configuration file with two teams and no accounts.
func teamsConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(`
teams:
  - slug: contact-centre
    name: Contact centre
  - slug: highways
    name: Highways
`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUserAndTokenCommands(t *testing.T) {
	vars := map[string]string{"INBOX_DATABASE_URL": testenv.Database(t), "INBOX_CONFIG": teamsConfig(t)}
	var out, errOut bytes.Buffer
	if err := run([]string{"user", "create", "-email", "sam@example.gov.uk", "-name", "Sam Supervisor", "-role", "supervisor", "-teams", "highways"},
		getenv(vars), password(), &out, &errOut); err != nil {
		t.Fatalf("user create: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "<sam@example.gov.uk> as supervisor in highways") {
		t.Errorf("user create printed %q", out.String())
	}
	err := run([]string{"user", "create", "-email", "sam@example.gov.uk", "-name", "Sam again", "-role", "admin"}, getenv(vars), password(), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second user with the same email: %v", err)
	}
	for _, bad := range [][]string{
		{"-email", "not-an-address", "-name", "X", "-teams", "highways"},
		{"-email", "a@example.gov.uk", "-name", "", "-teams", "highways"},
		{"-email", "b@example.gov.uk", "-name", "B", "-role", "superuser", "-teams", "highways"},
		{"-email", "c@example.gov.uk", "-name", "C", "-role", "adviser"},
		{"-email", "d@example.gov.uk", "-name", "D", "-teams", "highways", "-all-teams"},
	} {
		if err := run(append([]string{"user", "create"}, bad...), getenv(vars), password(), &out, &errOut); err == nil {
			t.Errorf("user create %v succeeded", bad)
		}
	}

	out.Reset()
	if err := run([]string{"token", "create", "-email", "SAM@example.gov.uk", "-name", "reporting"}, getenv(vars), password(), &out, &errOut); err != nil {
		t.Fatalf("token create: %v", err)
	}
	token := strings.TrimSpace(out.String())
	if !strings.HasPrefix(token, "cit_") || len(token) < 40 {
		t.Errorf("token %q", token)
	}
	if err := run([]string{"token", "create", "-email", "nobody@example.gov.uk", "-name", "x"}, getenv(vars), password(), &out, &errOut); err == nil ||
		!strings.Contains(err.Error(), "no user") {
		t.Errorf("token for an unknown user: %v", err)
	}
}

// openAuth opens the auth service on the test's database, to check what
// the commands did.
func openAuth(t *testing.T, url string) (*auth.Service, *gorm.DB) {
	t.Helper()
	db, err := store.Open(context.Background(), url, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(db) })
	return auth.New(db), db
}

// Users join teams by slug, from the configuration, before any server has
// written it; a team the configuration does not have is refused by name.
func TestUserCreateWithTeams(t *testing.T) {
	vars := map[string]string{"INBOX_DATABASE_URL": testenv.Database(t), "INBOX_CONFIG": teamsConfig(t)}
	var out, errOut bytes.Buffer
	if err := run([]string{"user", "create", "-email", "ada@example.gov.uk", "-name", "Ada", "-teams", "contact-centre, highways"},
		getenv(vars), password(), &out, &errOut); err != nil {
		t.Fatalf("user create: %v", err)
	}
	if !strings.Contains(out.String(), "as adviser in contact-centre, highways") {
		t.Errorf("user create printed %q", out.String())
	}
	out.Reset()
	if err := run([]string{"user", "create", "-email", "all@example.gov.uk", "-name", "All", "-role", "supervisor", "-all-teams"},
		getenv(vars), password(), &out, &errOut); err != nil {
		t.Fatalf("user create -all-teams: %v", err)
	}
	if !strings.Contains(out.String(), "as supervisor in contact-centre, highways") {
		t.Errorf("user create -all-teams printed %q", out.String())
	}
	err := run([]string{"user", "create", "-email", "bo@example.gov.uk", "-name", "Bo", "-teams", "highways,parks"}, getenv(vars), password(), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), `no team "parks"`) || !strings.Contains(err.Error(), "its teams: contact-centre, highways") {
		t.Errorf("unknown team: %v", err)
	}

	_, db := openAuth(t, vars["INBOX_DATABASE_URL"])
	var got []string
	db.Raw(`SELECT u.email || ':' || t.slug FROM user_teams m JOIN users u ON u.id = m.user_id JOIN teams t ON t.id = m.team_id
		ORDER BY 1`).Scan(&got)
	want := []string{"ada@example.gov.uk:contact-centre", "ada@example.gov.uk:highways", "all@example.gov.uk:contact-centre", "all@example.gov.uk:highways"}
	if !slices.Equal(got, want) {
		t.Errorf("memberships %v, want %v", got, want)
	}
	var n int64
	db.Raw(`SELECT count(*) FROM users WHERE email = 'bo@example.gov.uk'`).Scan(&n)
	if n != 0 {
		t.Error("the user with an unknown team was created")
	}
}

func TestUserDisable(t *testing.T) {
	vars := map[string]string{"INBOX_DATABASE_URL": testenv.Database(t), "INBOX_CONFIG": teamsConfig(t)}
	var out, errOut bytes.Buffer
	if err := run([]string{"user", "create", "-email", "ada@example.gov.uk", "-name", "Ada", "-teams", "highways"}, getenv(vars), password(), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"token", "create", "-email", "ada@example.gov.uk", "-name", "laptop"}, getenv(vars), password(), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out.String())
	svc, _ := openAuth(t, vars["INBOX_DATABASE_URL"])
	if _, err := svc.Authenticate(context.Background(), token); err != nil {
		t.Fatalf("token before disable: %v", err)
	}

	out.Reset()
	if err := run([]string{"user", "disable", "-email", "Ada@example.gov.uk"}, getenv(vars), password(), &out, &errOut); err != nil {
		t.Fatalf("user disable: %v", err)
	}
	if !strings.Contains(out.String(), "<ada@example.gov.uk>; they cannot sign in, their sessions end and their 1 valid tokens no longer work") {
		t.Errorf("user disable printed %q", out.String())
	}
	if _, err := svc.Authenticate(context.Background(), token); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("token after disable: %v, want ErrInvalidToken", err)
	}
	if err := run([]string{"user", "disable", "-email", "ada@example.gov.uk"}, getenv(vars), password(), &out, &errOut); err == nil ||
		!strings.Contains(err.Error(), "already disabled") {
		t.Errorf("disabling twice: %v", err)
	}
	if err := run([]string{"user", "disable", "-email", "nobody@example.gov.uk"}, getenv(vars), password(), &out, &errOut); err == nil ||
		!strings.Contains(err.Error(), "no user") {
		t.Errorf("disabling an unknown user: %v", err)
	}
}

func TestTokenRevoke(t *testing.T) {
	vars := map[string]string{"INBOX_DATABASE_URL": testenv.Database(t)}
	var out, errOut bytes.Buffer
	if err := run([]string{"user", "create", "-email", "root@example.gov.uk", "-name", "Root", "-role", "admin"}, getenv(vars), password(), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{}
	var revokeID string
	for _, name := range []string{"old", "new"} {
		out.Reset()
		errOut.Reset()
		if err := run([]string{"token", "create", "-email", "root@example.gov.uk", "-name", name}, getenv(vars), password(), &out, &errOut); err != nil {
			t.Fatal(err)
		}
		tokens[name] = strings.TrimSpace(out.String())
		if name == "old" {
			// "token 7 "old" for … created"
			revokeID = strings.Fields(errOut.String())[1]
		}
	}
	out.Reset()
	if err := run([]string{"token", "revoke", "-id", revokeID}, getenv(vars), password(), &out, &errOut); err != nil {
		t.Fatalf("token revoke: %v", err)
	}
	if !strings.Contains(out.String(), `revoked token `+revokeID+` "old" of <root@example.gov.uk>`) {
		t.Errorf("token revoke printed %q", out.String())
	}
	svc, _ := openAuth(t, vars["INBOX_DATABASE_URL"])
	if _, err := svc.Authenticate(context.Background(), tokens["old"]); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("revoked token: %v, want ErrInvalidToken", err)
	}
	if _, err := svc.Authenticate(context.Background(), tokens["new"]); err != nil {
		t.Errorf("the other token: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-id", revokeID}, "already revoked"},
		{[]string{"-id", "999999"}, "no token"},
		{nil, "-id is required"},
		{[]string{"-id", "x"}, "invalid value"},
	} {
		if err := run(append([]string{"token", "revoke"}, tc.args...), getenv(vars), password(), &out, &errOut); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("token revoke %v: %v, want %q", tc.args, err, tc.want)
		}
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
	err := run([]string{"serve"}, getenv(map[string]string{"INBOX_CONFIG": path}), nil, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "channel_accounts[0].x.consumer_secret: environment variable MISSING_SECRET is not set") {
		t.Errorf("serve with a bad configuration: %v", err)
	}
}

func TestUnknownCommand(t *testing.T) {
	var errOut bytes.Buffer
	if err := run([]string{"launch"}, getenv(nil), nil, &bytes.Buffer{}, &errOut); err == nil || !strings.Contains(errOut.String(), "usage:") {
		t.Errorf("unknown command: %v, %q", err, errOut.String())
	}
}

// testPassword is long enough for the password rules.
const testPassword = "correct horse battery staple"

// password is standard input carrying the password on its first line.
func password() io.Reader { return strings.NewReader(testPassword + "\nignored second line\n") }

// The password comes from the first line of standard input when that is
// not a terminal; without one, or with one too short, no user is made.
func TestUserCreatePassword(t *testing.T) {
	vars := map[string]string{"INBOX_DATABASE_URL": testenv.Database(t), "INBOX_CONFIG": teamsConfig(t)}
	var out, errOut bytes.Buffer
	for _, stdin := range []io.Reader{nil, strings.NewReader(""), strings.NewReader("\n"), strings.NewReader("short\n")} {
		err := run([]string{"user", "create", "-email", "pat@example.gov.uk", "-name", "Pat", "-teams", "highways"}, getenv(vars), stdin, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "password") {
			t.Errorf("user create with stdin %v: %v", stdin, err)
		}
	}
	if err := run([]string{"user", "create", "-email", "pat@example.gov.uk", "-name", "Pat", "-teams", "highways"},
		getenv(vars), strings.NewReader(testPassword+"\r\n"), &out, &errOut); err != nil {
		t.Fatalf("user create: %v", err)
	}
	svc, _ := openAuth(t, vars["INBOX_DATABASE_URL"])
	if _, err := svc.SignIn(context.Background(), "pat@example.gov.uk", testPassword, "192.0.2.1"); err != nil {
		t.Errorf("sign in with the password given on standard input: %v", err)
	}
	if _, err := svc.SignIn(context.Background(), "pat@example.gov.uk", testPassword+"\r", "192.0.2.1"); !errors.Is(err, auth.ErrSignInFailed) {
		t.Errorf("sign in with the line ending kept: %v", err)
	}
}
