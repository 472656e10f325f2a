package auth_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

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
	u, err := svc.CreateUser(ctx, "ada@example.gov.uk", "Ada Adviser", "adviser")
	if err != nil {
		t.Fatal(err)
	}

	secret, tok, err := svc.CreateToken(ctx, "ada@example.gov.uk", "cli", 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.Authenticate(ctx, secret)
	if err != nil || p.UserID != u.ID || p.TokenID != tok.ID || p.Role != "adviser" {
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
