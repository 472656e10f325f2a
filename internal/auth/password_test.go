package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestPasswordHash(t *testing.T) {
	const pw = "correct horse battery staple"
	h, err := hashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q does not name argon2id and its parameters", h)
	}
	if again, _ := hashPassword(pw); again == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	for _, tc := range []struct {
		password string
		ok       bool
	}{{pw, true}, {pw + " ", false}, {strings.ToUpper(pw), false}, {"", false}} {
		ok, err := verifyPassword(h, tc.password)
		if err != nil || ok != tc.ok {
			t.Errorf("verify %q: %v %v, want %v", tc.password, ok, err, tc.ok)
		}
	}
	if ok, err := verifyPassword(dummyHash, pw); err != nil || ok {
		t.Errorf("the dummy hash: %v %v", ok, err)
	}
}

func TestParseHashRefuses(t *testing.T) {
	good := "$argon2id$v=19$m=19456,t=2,p=1$KGbSWmMheu3Le+RVqCN0YQ$5B3MOHLmQ8EjzIp67VJaXi877iLNuiiYWyy6YUFK4ro"
	if _, _, _, err := parseHash(good); err != nil {
		t.Fatalf("a good hash: %v", err)
	}
	for _, bad := range []string{
		"",
		"plain text",
		strings.Replace(good, "argon2id", "argon2i", 1),
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "m=19456", "m=99999999", 1), // a gigabyte and more
		strings.Replace(good, "t=2", "t=0", 1),
		strings.Replace(good, "p=1", "p=0", 1),
		strings.Replace(good, "m=19456,t=2,p=1", "m=19456,t=2,p=1,x=1", 1),
		strings.Replace(good, "KGbSWmMheu3Le+RVqCN0YQ", "not base64!", 1),
		strings.Replace(good, "$5B3M", "$", 1)[:60],
		good + "$extra",
	} {
		if _, _, _, err := parseHash(bad); err == nil {
			t.Errorf("parseHash(%q) accepted it", bad)
		}
	}
}

func TestPasswordLength(t *testing.T) {
	for _, tc := range []struct {
		pw   string
		want error
	}{
		{strings.Repeat("a", MinPasswordLength-1), ErrPasswordTooShort},
		{strings.Repeat("a", MinPasswordLength), nil},
		{strings.Repeat("é", MinPasswordLength), nil},
		{strings.Repeat("a", MaxPasswordLength), nil},
		{strings.Repeat("a", MaxPasswordLength+1), ErrPasswordTooLong},
	} {
		if err := checkPassword(tc.pw); !errors.Is(err, tc.want) {
			t.Errorf("checkPassword(%d chars) = %v, want %v", len(tc.pw), err, tc.want)
		}
	}
}

// A stored hash is read back with the parameters it names; whatever it
// holds, parsing neither panics nor accepts costs no hash of ours has.
func FuzzParseHash(f *testing.F) {
	f.Add(dummyHash)
	f.Add("$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA")
	f.Fuzz(func(t *testing.T, phc string) {
		p, _, _, err := parseHash(phc)
		if err == nil && (p.memory > 1<<20 || p.time > 16 || p.threads > 16 || p.threads == 0) {
			t.Fatalf("parseHash(%q) accepted %+v", phc, p)
		}
	})
}
