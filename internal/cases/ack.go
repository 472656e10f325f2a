package cases

import "time"

// replyTime says when t is, for a resident reading it at now, in loc:
// "15:30 today", "09:30 tomorrow", "10:30 on Tuesday" within the week,
// "17:00 on Monday 16 March" after it.
func replyTime(t, now time.Time, loc *time.Location) string {
	t, now = t.In(loc), now.In(loc)
	clock := t.Format("15:04")
	day := func(x time.Time) time.Time { return time.Date(x.Year(), x.Month(), x.Day(), 0, 0, 0, 0, loc) }
	days := 0
	for d := day(now); d.Before(day(t)); d = d.AddDate(0, 0, 1) {
		days++
	}
	switch {
	case days <= 0:
		return clock + " today"
	case days == 1:
		return clock + " tomorrow"
	case days < 7:
		return clock + " on " + t.Format("Monday")
	default:
		return clock + " on " + t.Format("Monday 2 January")
	}
}
