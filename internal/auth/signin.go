package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/citizeninbox/inbox/internal/store"
)

// Sign-in errors. A wrong password, an unknown email, a disabled user and
// a user without a password all answer ErrSignInFailed, so the sign-in page
// cannot be used to find out who has an account.
var (
	ErrSignInFailed    = errors.New("the email address or password is not right")
	ErrTooManyAttempts = errors.New("too many attempts to sign in")
)

// SignInLimits bound password guessing. Every attempt counts against the
// account (the email typed) and the client's address within a window;
// past either limit, sign-in is refused until the window ends, without
// looking at the password. A successful sign-in clears the account's count
// and does not count against the address. The counts live in PostgreSQL,
// so they hold across every server process.
type SignInLimits struct {
	Window     time.Duration
	PerAccount int
	PerAddress int
}

// DefaultSignInLimits: five tries per account and fifty per address (an
// office behind one address) every fifteen minutes.
var DefaultSignInLimits = SignInLimits{Window: 15 * time.Minute, PerAccount: 5, PerAddress: 50}

// dummyHash is verified when the email is unknown or has no password, so
// that an answer takes as long whether or not the account exists. It is
// the hash of a random password nobody knows, with the default parameters.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$KGbSWmMheu3Le+RVqCN0YQ$5B3MOHLmQ8EjzIp67VJaXi877iLNuiiYWyy6YUFK4ro"

// WithSignInLimits sets the sign-in limits (DefaultSignInLimits unless
// called) and returns s.
func (s *Service) WithSignInLimits(l SignInLimits) *Service {
	s.limits = l
	return s
}

// SignIn checks a user's email and password, from the client address
// given, and returns the user. It answers ErrTooManyAttempts past the
// limits and ErrSignInFailed for every other refusal.
func (s *Service) SignIn(ctx context.Context, email, password, address string) (Principal, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	account, addr := attemptKey("account:"+email), attemptKey("address:"+address)
	counts, err := s.countAttempt(ctx, account, addr)
	if err != nil {
		return Principal{}, err
	}
	if counts[account] > s.limits.PerAccount || counts[addr] > s.limits.PerAddress {
		return Principal{}, ErrTooManyAttempts
	}

	var u struct {
		ID           int64
		PasswordHash *string
		Disabled     bool
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT id, password_hash, disabled_at IS NOT NULL AS disabled
		FROM users WHERE lower(email) = ?`, email).Scan(&u).Error; err != nil {
		return Principal{}, err
	}
	hash := dummyHash
	if u.ID != 0 && u.PasswordHash != nil {
		hash = *u.PasswordHash
	}
	ok, err := verifyPassword(hash, password)
	if err != nil {
		return Principal{}, err
	}
	if !ok || u.ID == 0 || u.PasswordHash == nil || u.Disabled {
		return Principal{}, ErrSignInFailed
	}

	// Signed in: the account's failures are forgotten, and this attempt
	// does not count against the address.
	if err := s.db.WithContext(ctx).Exec(`DELETE FROM sign_in_attempts WHERE key = ?`, account).Error; err != nil {
		return Principal{}, err
	}
	if err := s.db.WithContext(ctx).Exec(`UPDATE sign_in_attempts SET attempts = attempts - 1 WHERE key = ? AND attempts > 0`,
		addr).Error; err != nil {
		return Principal{}, err
	}
	return s.User(ctx, u.ID)
}

// countAttempt counts one attempt against each key, in one statement so
// that concurrent attempts on any server process all count, and returns
// each key's count in the current window. Windows that ended are dropped.
func (s *Service) countAttempt(ctx context.Context, keys ...string) (map[string]int, error) {
	db := s.db.WithContext(ctx)
	window := s.limits.Window.Seconds()
	// Clean-up never waits for a row another attempt holds, so it cannot
	// deadlock with one.
	if err := db.Exec(`DELETE FROM sign_in_attempts WHERE key IN (SELECT key FROM sign_in_attempts
		WHERE window_start <= now() - make_interval(secs => ?) LIMIT 100 FOR UPDATE SKIP LOCKED)`, window).Error; err != nil {
		return nil, err
	}
	// Rows are locked in key order, so concurrent attempts cannot deadlock.
	sorted := slices.Sorted(slices.Values(keys))
	var rows []struct {
		Key      string
		Attempts int
	}
	err := db.Raw(`INSERT INTO sign_in_attempts AS a (key, window_start, attempts)
		SELECT k, now(), 1 FROM unnest(?::text[]) AS k
		ON CONFLICT (key) DO UPDATE SET
		  attempts = CASE WHEN a.window_start <= now() - make_interval(secs => ?) THEN 1 ELSE a.attempts + 1 END,
		  window_start = CASE WHEN a.window_start <= now() - make_interval(secs => ?) THEN now() ELSE a.window_start END
		RETURNING key, attempts`, store.Strings(sorted), window, window).Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int, len(rows))
	for _, r := range rows {
		counts[r.Key] = r.Attempts
	}
	return counts, nil
}

func attemptKey(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// User returns the user with the id and the teams they belong to now, or
// ErrNoSuchUser when there is none or they are disabled. A browser
// session is checked against it on every request.
func (s *Service) User(ctx context.Context, id int64) (Principal, error) {
	var p struct {
		Principal
		TeamIDs store.Int64s `gorm:"column:team_ids"`
	}
	err := s.db.WithContext(ctx).Raw(`SELECT u.id AS user_id, u.email, u.name, u.role,
		array(SELECT team_id FROM user_teams WHERE user_id = u.id ORDER BY team_id) AS team_ids
		FROM users u WHERE u.id = ? AND u.disabled_at IS NULL`, id).Scan(&p).Error
	if err != nil {
		return Principal{}, err
	}
	if p.UserID == 0 {
		return Principal{}, ErrNoSuchUser
	}
	p.Principal.TeamIDs = []int64(p.TeamIDs)
	return p.Principal, nil
}

// Seen records that the user has a page open now. It writes at most once
// every half minute per user, whatever the number of pages and replicas.
func (s *Service) Seen(ctx context.Context, id int64) error {
	return s.db.WithContext(ctx).Exec(`UPDATE users SET last_seen_at = now()
		WHERE id = ? AND (last_seen_at IS NULL OR last_seen_at < now() - interval '30 seconds')`, id).Error
}
