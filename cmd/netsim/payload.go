package main

import (
	"strconv"
	"time"
)

// idBase is added to the microseconds since the Unix epoch to make the first
// id of a run, so ids keep increasing from one run to the next and stay
// below the fake APIs' own ids (X's: 19 digits starting 19…).
const idBase = 1800000000000000000

// ids hands out increasing post and message ids, like X's snowflakes.
type ids struct{ last uint64 }

func newIDs(now time.Time) *ids {
	return &ids{last: idBase + uint64(now.UnixMicro())}
}

func (s *ids) next() string {
	s.last++
	return strconv.FormatUint(s.last, 10)
}
