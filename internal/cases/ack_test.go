package cases

import (
	"testing"
	"time"
)

func TestReplyTime(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, london) // a Monday
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 3, 2, 15, 30, 0, 0, london), "15:30 today"},
		{time.Date(2026, 3, 3, 9, 30, 0, 0, london), "09:30 tomorrow"},
		{time.Date(2026, 3, 6, 17, 0, 0, 0, london), "17:00 on Friday"},
		{time.Date(2026, 3, 16, 17, 0, 0, 0, london), "17:00 on Monday 16 March"},
		// Shown in the calendar's zone whatever zone it was computed in.
		{time.Date(2026, 3, 3, 9, 30, 0, 0, time.UTC), "09:30 tomorrow"},
		{time.Date(2026, 7, 3, 8, 30, 0, 0, time.UTC), "09:30 on Friday 3 July"},
	} {
		if got := replyTime(tc.at, now, london); got != tc.want {
			t.Errorf("replyTime(%v) = %q, want %q", tc.at, got, tc.want)
		}
	}
}
