// Package auth knows users and API tokens: creating them, and resolving a
// bearer token to the user it acts for. A token's secret is shown once when
// it is made; only its SHA-256 is stored.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/store"
)

// Roles a user can have.
var Roles = []string{"adviser", "supervisor", "admin"}

// Errors callers map to answers.
var (
	ErrInvalidToken = errors.New("token is not valid")
	ErrUserExists   = errors.New("a user with that email already exists")
	ErrNoSuchUser   = errors.New("no user with that email")
	ErrInvalidRole  = errors.New("role is not adviser, supervisor or admin")
	ErrInvalidEmail = errors.New("email is not a valid address")
	ErrInvalidName  = errors.New("name is empty")
)

// tokenPrefix marks our tokens so secret scanners can spot a leaked one.
const tokenPrefix = "cit_"

// Principal is who a request acts for.
type Principal struct {
	UserID  int64
	TokenID int64
	Email   string
	Name    string
	Role    string
}

// Service manages users and tokens.
type Service struct{ db *gorm.DB }

// New builds the service.
func New(db *gorm.DB) *Service { return &Service{db: db} }

// CreateUser adds a user.
func (s *Service) CreateUser(ctx context.Context, email, name, role string) (store.User, error) {
	email = strings.TrimSpace(email)
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return store.User{}, ErrInvalidEmail
	}
	if strings.TrimSpace(name) == "" {
		return store.User{}, ErrInvalidName
	}
	valid := false
	for _, r := range Roles {
		valid = valid || r == role
	}
	if !valid {
		return store.User{}, ErrInvalidRole
	}
	u := store.User{Email: email, Name: strings.TrimSpace(name), Role: role}
	err := s.db.WithContext(ctx).Omit("TeamID", "DisabledAt").Create(&u).Error
	if store.IsUniqueViolation(err) {
		return store.User{}, ErrUserExists
	}
	return u, err
}

// CreateToken makes an API token for the user with the given email and
// returns its secret, which is not stored and cannot be shown again.
func (s *Service) CreateToken(ctx context.Context, email, name string, ttl time.Duration) (string, store.APIToken, error) {
	var u store.User
	err := s.db.WithContext(ctx).Where("lower(email) = lower(?) AND disabled_at IS NULL", email).First(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", store.APIToken{}, ErrNoSuchUser
	}
	if err != nil {
		return "", store.APIToken{}, err
	}
	secret, err := newSecret()
	if err != nil {
		return "", store.APIToken{}, err
	}
	hash := sha256.Sum256([]byte(secret))
	t := store.APIToken{UserID: u.ID, Name: name, Prefix: secret[:len(tokenPrefix)+6], SecretHash: hash[:]}
	if ttl > 0 {
		exp := time.Now().Add(ttl).UTC()
		t.ExpiresAt = &exp
	}
	if err := s.db.WithContext(ctx).Omit("LastUsedAt", "RevokedAt").Create(&t).Error; err != nil {
		return "", store.APIToken{}, err
	}
	return secret, t, nil
}

func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return tokenPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)), nil
}

// Authenticate resolves a token secret to its principal.
func (s *Service) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 128 {
		return Principal{}, ErrInvalidToken
	}
	hash := sha256.Sum256([]byte(secret))
	var p struct {
		Principal
		LastUsedAt *time.Time
	}
	err := s.db.WithContext(ctx).Raw(`SELECT t.id AS token_id, t.last_used_at, u.id AS user_id, u.email, u.name, u.role
		FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.secret_hash = ? AND t.revoked_at IS NULL
		  AND (t.expires_at IS NULL OR t.expires_at > now()) AND u.disabled_at IS NULL`, hash[:]).Scan(&p).Error
	if err != nil {
		return Principal{}, err
	}
	if p.TokenID == 0 {
		return Principal{}, ErrInvalidToken
	}
	// Record use, at most once a minute per token, to keep reads cheap.
	if p.LastUsedAt == nil || time.Since(*p.LastUsedAt) > time.Minute {
		if err := s.db.WithContext(ctx).Exec(`UPDATE api_tokens SET last_used_at = now() WHERE id = ?`, p.TokenID).Error; err != nil {
			return Principal{}, err
		}
	}
	return p.Principal, nil
}
