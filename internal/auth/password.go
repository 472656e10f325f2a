package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password length limits. Fifteen characters is NIST SP 800-63B's floor for
// a password that is the only factor; the ceiling bounds the work a sign-in
// form can ask of the server.
const (
	MinPasswordLength = 15
	MaxPasswordLength = 256
)

// Password errors.
var (
	ErrPasswordTooShort = fmt.Errorf("password is shorter than %d characters", MinPasswordLength)
	ErrPasswordTooLong  = fmt.Errorf("password is longer than %d characters", MaxPasswordLength)
	ErrBadPasswordHash  = errors.New("password hash is not an argon2id PHC string")
)

// hashParams are argon2id's cost parameters, as written in a PHC string.
type hashParams struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	keyLen  uint32
}

// defaultParams are OWASP's recommended minimum for argon2id (19 MiB, two
// passes, one lane): a sign-in costs tens of milliseconds.
var defaultParams = hashParams{memory: 19 * 1024, time: 2, threads: 1, keyLen: 32}

var b64 = base64.RawStdEncoding

// checkPassword refuses passwords outside the length limits.
func checkPassword(password string) error {
	switch n := utf8.RuneCountInString(password); {
	case n < MinPasswordLength:
		return ErrPasswordTooShort
	case n > MaxPasswordLength:
		return ErrPasswordTooLong
	}
	return nil
}

// hashPassword returns the argon2id PHC string of password with a new
// random salt: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func hashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	p := defaultParams
	key := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, p.keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// parseHash reads a PHC string written by hashPassword, with whatever
// parameters it names.
func parseHash(phc string) (hashParams, []byte, []byte, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return hashParams{}, nil, nil, ErrBadPasswordHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return hashParams{}, nil, nil, ErrBadPasswordHash
	}
	var p hashParams
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil || n != 3 ||
		fmt.Sprintf("m=%d,t=%d,p=%d", p.memory, p.time, p.threads) != parts[3] {
		return hashParams{}, nil, nil, ErrBadPasswordHash
	}
	// Parameters no hash of ours has: refuse rather than spend a gigabyte.
	if p.memory < 8*uint32(p.threads) || p.memory > 1<<20 || p.time < 1 || p.time > 16 || p.threads < 1 || p.threads > 16 {
		return hashParams{}, nil, nil, ErrBadPasswordHash
	}
	salt, err := b64.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return hashParams{}, nil, nil, ErrBadPasswordHash
	}
	key, err := b64.Strict().DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return hashParams{}, nil, nil, ErrBadPasswordHash
	}
	p.keyLen = uint32(len(key))
	return p, salt, key, nil
}

// verifyPassword says whether password matches the PHC string, comparing
// in constant time.
func verifyPassword(phc, password string) (bool, error) {
	p, salt, key, err := parseHash(phc)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, p.keyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}
