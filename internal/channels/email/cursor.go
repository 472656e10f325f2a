package email

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cursor is where a poll of the mailbox starts: the mailbox's
// UIDVALIDITY, the greatest UID taken and that mail's INTERNALDATE (unix
// seconds, 0 when unknown), from which a renumbered mailbox is read
// again. The zero Cursor is an account never polled.
type Cursor struct {
	UIDValidity uint32
	UID         uint32
	Time        int64
}

// String writes the cursor as "UIDVALIDITY:UID:UNIXSECONDS", or
// "UIDVALIDITY:UID" without a time; the zero cursor is "".
func (c Cursor) String() string {
	if c == (Cursor{}) {
		return ""
	}
	s := strconv.FormatUint(uint64(c.UIDValidity), 10) + ":" + strconv.FormatUint(uint64(c.UID), 10)
	if c.Time > 0 {
		s += ":" + strconv.FormatInt(c.Time, 10)
	}
	return s
}

// At is the INTERNALDATE the cursor keeps; zero when it keeps none.
func (c Cursor) At() time.Time {
	if c.Time <= 0 {
		return time.Time{}
	}
	return time.Unix(c.Time, 0).UTC()
}

// ParseCursor reads a cursor String wrote, with or without its time
// (cursors written before it was kept); "" is the zero cursor.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	fields := strings.Split(s, ":")
	if len(fields) != 2 && len(fields) != 3 {
		return Cursor{}, fmt.Errorf("email: cursor %q is not UIDVALIDITY:UID[:UNIXSECONDS]", s)
	}
	validity, err := parseUint32(fields[0])
	if err != nil || validity == 0 {
		return Cursor{}, fmt.Errorf("email: cursor %q: UIDVALIDITY is not a positive 32-bit number", s)
	}
	uid, err := parseUint32(fields[1])
	if err != nil {
		return Cursor{}, fmt.Errorf("email: cursor %q: UID is not a 32-bit number", s)
	}
	c := Cursor{UIDValidity: validity, UID: uid}
	if len(fields) == 3 {
		f := fields[2]
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n <= 0 || f[0] == '+' || f[0] == '0' || n > 1<<40 {
			return Cursor{}, fmt.Errorf("email: cursor %q: the time is not a positive number of seconds", s)
		}
		c.Time = n
	}
	return c, nil
}

func parseUint32(s string) (uint32, error) {
	if s == "" || s[0] == '+' || s[0] == '-' || (s[0] == '0' && len(s) > 1) {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}
