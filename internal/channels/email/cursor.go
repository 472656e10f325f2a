package email

import (
	"fmt"
	"strconv"
	"strings"
)

// Cursor is where a poll of the mailbox starts: the mailbox's
// UIDVALIDITY and the greatest UID taken. The zero Cursor starts from the
// mailbox's first message.
type Cursor struct {
	UIDValidity uint32
	UID         uint32
}

// String writes the cursor as "UIDVALIDITY:UID"; the zero cursor is "".
func (c Cursor) String() string {
	if c == (Cursor{}) {
		return ""
	}
	return strconv.FormatUint(uint64(c.UIDValidity), 10) + ":" + strconv.FormatUint(uint64(c.UID), 10)
}

// ParseCursor reads a cursor String wrote; "" is the zero cursor.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	v, u, ok := strings.Cut(s, ":")
	if !ok {
		return Cursor{}, fmt.Errorf("email: cursor %q is not UIDVALIDITY:UID", s)
	}
	validity, err := parseUint32(v)
	if err != nil || validity == 0 {
		return Cursor{}, fmt.Errorf("email: cursor %q: UIDVALIDITY is not a positive 32-bit number", s)
	}
	uid, err := parseUint32(u)
	if err != nil {
		return Cursor{}, fmt.Errorf("email: cursor %q: UID is not a 32-bit number", s)
	}
	return Cursor{UIDValidity: validity, UID: uid}, nil
}

func parseUint32(s string) (uint32, error) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}
