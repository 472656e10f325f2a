package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/auth"
	"github.com/citizeninbox/inbox/internal/store"
	"github.com/citizeninbox/inbox/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestTokens(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, testenv.Database(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close(db) }()
	svc := auth.New(db)
	u, err := svc.CreateUser(ctx, auth.NewUser{Email: "ada@example.gov.uk", Name: "Ada Adviser", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}

	secret, tok, err := svc.CreateToken(ctx, "ada@example.gov.uk", "cli", 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Authenticate(ctx, secret)
	if err != nil || p.UserID != u.ID || p.TokenID != tok.ID || p.Role != "admin" || len(p.TeamIDs) != 0 {
		t.Fatalf("authenticate: %+v %v", p, err)
	}
	var stored []byte
	if err := db.Raw(`SELECT secret_hash FROM api_tokens WHERE id = ?`, tok.ID).Row().Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 32 || string(stored) == secret {
		t.Errorf("the token is not stored as its SHA-256")
	}
	var used *time.Time
	db.Raw(`SELECT last_used_at FROM api_tokens WHERE id = ?`, tok.ID).Scan(&used)
	if used == nil {
		t.Error("last_used_at not recorded")
	}

	for name, bad := range map[string]string{
		"unknown":   "cit_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"no prefix": secret[4:],
		"empty":     "",
		"truncated": secret[:len(secret)-1],
	} {
		if _, err := svc.Authenticate(ctx, bad); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("%s token: %v, want ErrInvalidToken", name, err)
		}
	}

	expiring, _, err := svc.CreateToken(ctx, "ada@example.gov.uk", "short", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(`UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'short'`)
	if _, err := svc.Authenticate(ctx, expiring); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("expired token: %v", err)
	}
	db.Exec(`UPDATE api_tokens SET revoked_at = now() WHERE id = ?`, tok.ID)
	if _, err := svc.Authenticate(ctx, secret); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("revoked token: %v", err)
	}
	other, _, err := svc.CreateToken(ctx, "ada@example.gov.uk", "other", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, other); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	db.Exec(`UPDATE users SET disabled_at = now() WHERE id = ?`, u.ID)
	if _, err := svc.Authenticate(ctx, other); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("token of a disabled user: %v", err)
	}
}

func openDB(t *testing.T) (*auth.Service, *gorm.DB) {
	t.Helper()
	db, err := store.Open(context.Background(), testenv.Database(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(db) })
	return auth.New(db), db
}

// A user belongs to the teams named when they were made; a team that does
// not exist is an error that names it and makes no user.
func TestUsersBelongToTeams(t *testing.T) {
	ctx := context.Background()
	svc, db := openDB(t)
	if err := svc.DeclareTeams(ctx, []auth.Team{{Slug: "contact-centre", Name: "Contact centre"}, {Slug: "highways", Name: "Highways"}}); err != nil {
		t.Fatal(err)
	}
	// Declaring again changes nothing and keeps names the server wrote.
	db.Exec(`UPDATE teams SET name = 'Highways and street care' WHERE slug = 'highways'`)
	if err := svc.DeclareTeams(ctx, []auth.Team{{Slug: "highways", Name: "Highways"}}); err != nil {
		t.Fatal(err)
	}
	var name string
	db.Raw(`SELECT name FROM teams WHERE slug = 'highways'`).Scan(&name)
	if name != "Highways and street care" {
		t.Errorf("declaring a team again renamed it %q", name)
	}

	u, err := svc.CreateUser(ctx, auth.NewUser{Email: "sam@example.gov.uk", Name: "Sam", Role: "supervisor",
		Teams: []string{"highways", "contact-centre", "highways"}})
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := svc.CreateToken(ctx, u.Email, "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Authenticate(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	db.Raw(`SELECT id FROM teams ORDER BY id`).Scan(&want)
	if !slices.Equal(p.TeamIDs, want) {
		t.Errorf("principal's teams %v, want %v", p.TeamIDs, want)
	}

	_, err = svc.CreateUser(ctx, auth.NewUser{Email: "x@example.gov.uk", Name: "X", Role: "adviser", Teams: []string{"highways", "parks", "libraries"}})
	if !errors.Is(err, auth.ErrUnknownTeam) || !strings.Contains(err.Error(), "parks, libraries") ||
		!strings.Contains(err.Error(), "teams: contact-centre, highways") {
		t.Errorf("unknown teams: %v", err)
	}
	for _, role := range []string{"adviser", "supervisor"} {
		if _, err := svc.CreateUser(ctx, auth.NewUser{Email: "x@example.gov.uk", Name: "X", Role: role, Teams: []string{" "}}); !errors.Is(err, auth.ErrNoTeam) {
			t.Errorf("%s in no team: %v", role, err)
		}
	}
	var n int64
	db.Raw(`SELECT count(*) FROM users WHERE email = 'x@example.gov.uk'`).Scan(&n)
	if n != 0 {
		t.Error("a user with an unknown team, or none, was created")
	}
}

// A disabled user's tokens stop working, and a revoked token stops working
// while the user's other tokens go on.
func TestDisableUserAndRevokeToken(t *testing.T) {
	ctx := context.Background()
	svc, _ := openDB(t)
	if err := svc.DeclareTeams(ctx, []auth.Team{{Slug: "highways", Name: "Highways"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateUser(ctx, auth.NewUser{Email: "ada@example.gov.uk", Name: "Ada", Role: "adviser", Teams: []string{"highways"}}); err != nil {
		t.Fatal(err)
	}
	first, tok1, _ := svc.CreateToken(ctx, "ada@example.gov.uk", "one", 0)
	second, _, _ := svc.CreateToken(ctx, "ada@example.gov.uk", "two", 0)

	r, err := svc.RevokeToken(ctx, tok1.ID)
	if err != nil || r.ID != tok1.ID || r.Email != "ada@example.gov.uk" || r.RevokedAt == nil {
		t.Fatalf("revoke: %+v %v", r, err)
	}
	if _, err := svc.Authenticate(ctx, first); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("revoked token: %v", err)
	}
	if _, err := svc.Authenticate(ctx, second); err != nil {
		t.Errorf("the user's other token: %v", err)
	}
	if _, err := svc.RevokeToken(ctx, tok1.ID); !errors.Is(err, auth.ErrAlreadyRevoked) {
		t.Errorf("revoking twice: %v", err)
	}
	if _, err := svc.RevokeToken(ctx, 999999); !errors.Is(err, auth.ErrNoSuchToken) {
		t.Errorf("unknown token: %v", err)
	}

	u, live, err := svc.DisableUser(ctx, "ADA@example.gov.uk")
	if err != nil || u.DisabledAt == nil || live != 1 {
		t.Fatalf("disable: %+v, %d live tokens, %v", u, live, err)
	}
	if _, err := svc.Authenticate(ctx, second); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("token of a disabled user: %v", err)
	}
	if _, _, err := svc.CreateToken(ctx, "ada@example.gov.uk", "three", 0); !errors.Is(err, auth.ErrNoSuchUser) {
		t.Errorf("new token for a disabled user: %v", err)
	}
	if _, _, err := svc.DisableUser(ctx, "ada@example.gov.uk"); !errors.Is(err, auth.ErrAlreadyDisabled) {
		t.Errorf("disabling twice: %v", err)
	}
	if _, _, err := svc.DisableUser(ctx, "nobody@example.gov.uk"); !errors.Is(err, auth.ErrNoSuchUser) {
		t.Errorf("unknown user: %v", err)
	}
}

// Sign-in: one answer for every refusal, so nobody can learn who has an
// account; past the limit, even the right password is refused.
func TestSignIn(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, testenv.Database(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close(db) }()
	svc := auth.New(db).WithSignInLimits(auth.SignInLimits{Window: time.Hour, PerAccount: 3, PerAddress: 100})
	const pw = "correct horse battery staple"
	if _, err := svc.CreateUser(ctx, auth.NewUser{Email: "ada@example.gov.uk", Name: "Ada", Role: "admin", Password: "too short"}); !errors.Is(err, auth.ErrPasswordTooShort) {
		t.Errorf("short password: %v", err)
	}
	u, err := svc.CreateUser(ctx, auth.NewUser{Email: "Ada@example.gov.uk", Name: "Ada", Role: "admin", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateUser(ctx, auth.NewUser{Email: "tok@example.gov.uk", Name: "Tokens only", Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	p, err := svc.SignIn(ctx, " ada@EXAMPLE.gov.uk ", pw, "192.0.2.1")
	if err != nil || p.UserID != u.ID || p.Role != "admin" {
		t.Fatalf("sign in: %+v %v", p, err)
	}
	for _, tc := range []struct{ email, password string }{
		{"ada@example.gov.uk", "wrong password entirely"},
		{"nobody@example.gov.uk", pw},
		{"tok@example.gov.uk", ""},
	} {
		if _, err := svc.SignIn(ctx, tc.email, tc.password, "192.0.2.2"); !errors.Is(err, auth.ErrSignInFailed) {
			t.Errorf("sign in as %s: %v, want ErrSignInFailed", tc.email, err)
		}
	}
	// Three attempts per account: one failure so far, two more, then the
	// right password is refused too.
	for range 2 {
		if _, err := svc.SignIn(ctx, "ada@example.gov.uk", "wrong password entirely", "192.0.2.3"); !errors.Is(err, auth.ErrSignInFailed) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, err := svc.SignIn(ctx, "ada@example.gov.uk", pw, "192.0.2.4"); !errors.Is(err, auth.ErrTooManyAttempts) {
		t.Errorf("past the limit: %v, want ErrTooManyAttempts", err)
	}
	if _, _, err := svc.DisableUser(ctx, "ada@example.gov.uk"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.User(ctx, u.ID); !errors.Is(err, auth.ErrNoSuchUser) {
		t.Errorf("a disabled user: %v", err)
	}
	db.Exec(`DELETE FROM sign_in_attempts`)
	if _, err := svc.SignIn(ctx, "ada@example.gov.uk", pw, "192.0.2.5"); !errors.Is(err, auth.ErrSignInFailed) {
		t.Errorf("a disabled user signs in: %v", err)
	}
}

// Attempts made at the same moment, as from several server processes, are
// all counted: no more than the limit get to try a password.
func TestSignInLimitUnderConcurrentAttempts(t *testing.T) {
	ctx := context.Background()
	url := testenv.Database(t)
	const limit, attempts = 3, 12
	var svcs []*auth.Service
	for range 2 { // two connection pools, as two servers have
		db, err := store.Open(ctx, url, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close(db) })
		svcs = append(svcs, auth.New(db).WithSignInLimits(auth.SignInLimits{Window: time.Hour, PerAccount: limit, PerAddress: 1000}))
	}
	if _, err := svcs[0].CreateUser(ctx, auth.NewUser{Email: "ada@example.gov.uk", Name: "Ada", Role: "admin", Password: "correct horse battery staple"}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, attempts)
	for i := range attempts {
		go func() {
			_, err := svcs[i%2].SignIn(ctx, "ada@example.gov.uk", "wrong password entirely", fmt.Sprintf("192.0.2.%d", i))
			errs <- err
		}()
	}
	var tried, refused int
	for range attempts {
		switch err := <-errs; {
		case errors.Is(err, auth.ErrSignInFailed):
			tried++
		case errors.Is(err, auth.ErrTooManyAttempts):
			refused++
		default:
			t.Errorf("attempt: %v", err)
		}
	}
	if tried != limit || refused != attempts-limit {
		t.Errorf("%d attempts tried a password and %d were refused, want %d and %d", tried, refused, limit, attempts-limit)
	}
}
