package main

import (
	"strconv"
	"time"

	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
)

// idBase is added to the microseconds since the Unix epoch to make the first
// id of a run, so ids keep increasing from one run to the next and stay
// below the fake X API's own ids (19 digits starting 19…).
const idBase = 1800000000000000000

// ids hands out increasing post and direct message ids, like X's snowflakes.
type ids struct{ last uint64 }

func newIDs(now time.Time) *ids {
	return &ids{last: idBase + uint64(now.UnixMicro())}
}

func (s *ids) next() string {
	s.last++
	return strconv.FormatUint(s.last, 10)
}

// council is the account residents write to.
func council(id string) xfake.User {
	return xfake.User{ID: id, Handle: councilHandle, Name: councilName}
}
