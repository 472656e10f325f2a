// Package auth knows users, the teams they belong to and API tokens:
// creating and disabling users, making and revoking tokens, and resolving a
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
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/store"
)

// Roles a user can have.
var Roles = []string{"adviser", "supervisor", "admin"}

// Errors callers map to answers.
var (
	ErrInvalidToken    = errors.New("token is not valid")
	ErrUserExists      = errors.New("a user with that email already exists")
	ErrNoSuchUser      = errors.New("no user with that email")
	ErrInvalidRole     = errors.New("role is not adviser, supervisor or admin")
	ErrInvalidEmail    = errors.New("email is not a valid address")
	ErrInvalidName     = errors.New("name is empty")
	ErrUnknownTeam     = errors.New("no team has that slug")
	ErrNoTeam          = errors.New("an adviser or supervisor must belong to at least one team")
	ErrAlreadyDisabled = errors.New("user is already disabled")
	ErrNoSuchToken     = errors.New("no token has that id")
	ErrAlreadyRevoked  = errors.New("token is already revoked")
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
	// TeamIDs are the teams the user belongs to, in id order.
	TeamIDs []int64 `gorm:"-"`
}

// Service manages users, their passwords and tokens.
type Service struct {
	db     *gorm.DB
	limits SignInLimits
}

// New builds the service, with DefaultSignInLimits.
func New(db *gorm.DB) *Service { return &Service{db: db, limits: DefaultSignInLimits} }

// Team is a team users can belong to, as the configuration names it.
type Team struct {
	Slug string
	Name string
}

// DeclareTeams makes sure the configured teams exist, so users can join
// them before a server has first started and written the configuration.
// Existing teams are left as they are: the server keeps their names.
func (s *Service) DeclareTeams(ctx context.Context, teams []Team) error {
	if len(teams) == 0 {
		return nil
	}
	slugs, names := make(store.Strings, len(teams)), make(store.Strings, len(teams))
	for i, t := range teams {
		slugs[i], names[i] = t.Slug, t.Name
	}
	return s.db.WithContext(ctx).Exec(`INSERT INTO teams (slug, name)
		SELECT * FROM unnest(?::text[], ?::text[]) ON CONFLICT (slug) DO NOTHING`, slugs, names).Error
}

// NewUser is a user to create.
type NewUser struct {
	Email string
	Name  string
	Role  string
	// Teams are the slugs of the teams the user belongs to.
	Teams []string
	// Password, when not empty, lets the user sign in to the web pages;
	// it must be MinPasswordLength to MaxPasswordLength characters. A user
	// without one works through API tokens only.
	Password string
}

// CreateUser adds a user and their team memberships. Every team must exist
// (ErrUnknownTeam names those that do not); advisers and supervisors work
// only their teams' cases, so they need at least one; admins see every team.
func (s *Service) CreateUser(ctx context.Context, in NewUser) (store.User, error) {
	email := strings.TrimSpace(in.Email)
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return store.User{}, ErrInvalidEmail
	}
	name := strings.TrimSpace(in.Name)
	if name == "" {
		return store.User{}, ErrInvalidName
	}
	if !slices.Contains(Roles, in.Role) {
		return store.User{}, ErrInvalidRole
	}
	var teams store.Strings
	for _, t := range in.Teams {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(teams, t) {
			teams = append(teams, t)
		}
	}
	if len(teams) == 0 && in.Role != "admin" {
		return store.User{}, ErrNoTeam
	}
	var hash *string
	if in.Password != "" {
		if err := checkPassword(in.Password); err != nil {
			return store.User{}, err
		}
		h, err := hashPassword(in.Password)
		if err != nil {
			return store.User{}, err
		}
		hash = &h
	}
	u := store.User{Email: email, Name: name, Role: in.Role}
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		var found []string
		if err := tx.Raw(`SELECT slug FROM teams WHERE slug = ANY(?)`, teams).Scan(&found).Error; err != nil {
			return err
		}
		if missing := slices.DeleteFunc(slices.Clone([]string(teams)), func(t string) bool { return slices.Contains(found, t) }); len(missing) > 0 {
			var known []string
			if err := tx.Raw(`SELECT slug FROM teams ORDER BY slug`).Scan(&known).Error; err != nil {
				return err
			}
			return fmt.Errorf("%w: %s (teams: %s)", ErrUnknownTeam, strings.Join(missing, ", "), strings.Join(known, ", "))
		}
		if err := tx.Raw(`INSERT INTO users (email, name, role, password_hash) VALUES (?, ?, ?, ?)
			RETURNING id, email, name, role, disabled_at, created_at, updated_at`,
			u.Email, u.Name, u.Role, hash).Scan(&u).Error; err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO user_teams (user_id, team_id) SELECT ?, id FROM teams WHERE slug = ANY(?)`, u.ID, teams).Error
	})
	if store.IsUniqueViolation(err) {
		return store.User{}, ErrUserExists
	}
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

// DisableUser stops a user from acting: their tokens no longer work, they
// cannot sign in, and their browser sessions end at their next request. It
// returns the user and how many of their tokens were still valid.
func (s *Service) DisableUser(ctx context.Context, email string) (store.User, int64, error) {
	var u store.User
	var live int64
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT * FROM users WHERE lower(email) = lower(?) FOR UPDATE`, strings.TrimSpace(email)).Scan(&u).Error; err != nil {
			return err
		}
		if u.ID == 0 {
			return ErrNoSuchUser
		}
		if u.DisabledAt != nil {
			return ErrAlreadyDisabled
		}
		if err := tx.Raw(`UPDATE users SET disabled_at = now(), updated_at = now() WHERE id = ? RETURNING *`,
			u.ID).Scan(&u).Error; err != nil {
			return err
		}
		return tx.Raw(`SELECT count(*) FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL
			AND (expires_at IS NULL OR expires_at > now())`, u.ID).Scan(&live).Error
	})
	if err != nil {
		return store.User{}, 0, err
	}
	return u, live, nil
}

// RevokedToken is a token that was revoked, and whose it was.
type RevokedToken struct {
	store.APIToken
	Email string
}

// RevokeToken stops the token with the given id from working.
func (s *Service) RevokeToken(ctx context.Context, id int64) (RevokedToken, error) {
	var t RevokedToken
	err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		if err := tx.Raw(`SELECT t.*, u.email FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ? FOR UPDATE OF t`,
			id).Scan(&t).Error; err != nil {
			return err
		}
		if t.ID == 0 {
			return ErrNoSuchToken
		}
		if t.RevokedAt != nil {
			return ErrAlreadyRevoked
		}
		var at time.Time
		if err := tx.Raw(`UPDATE api_tokens SET revoked_at = now() WHERE id = ? RETURNING revoked_at`, id).Scan(&at).Error; err != nil {
			return err
		}
		t.RevokedAt = &at
		return nil
	})
	if err != nil {
		return RevokedToken{}, err
	}
	return t, nil
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

// Authenticate resolves a token secret to its principal, with the teams the
// user belongs to at this moment.
func (s *Service) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 128 {
		return Principal{}, ErrInvalidToken
	}
	hash := sha256.Sum256([]byte(secret))
	var p struct {
		Principal
		LastUsedAt *time.Time
		TeamIDs    store.Int64s `gorm:"column:team_ids"`
	}
	err := s.db.WithContext(ctx).Raw(`SELECT t.id AS token_id, t.last_used_at, u.id AS user_id, u.email, u.name, u.role,
		array(SELECT team_id FROM user_teams WHERE user_id = u.id ORDER BY team_id) AS team_ids
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
	p.Principal.TeamIDs = []int64(p.TeamIDs)
	return p.Principal, nil
}
