package sla_test

import (
	"fmt"
	"time"

	"github.com/citizeninbox/inbox/internal/sla"
)

func Example() {
	weekdays := []string{"08:30-17:00"}
	cals, err := sla.BuildCalendars([]sla.CalendarSpec{{
		Name:         "council-hours",
		Hours:        map[string][]string{"monday": weekdays, "tuesday": weekdays, "wednesday": weekdays, "thursday": weekdays, "friday": weekdays},
		BankHolidays: sla.EnglandAndWales,
	}})
	if err != nil {
		panic(err)
	}
	policies, err := sla.BuildPolicies(sla.PolicySpec{Level: sla.Level{
		Calendar:   "council-hours",
		WarnBefore: "1 working hour",
		Priorities: map[sla.Priority]sla.Targets{
			sla.Low:    {FirstResponse: "2 working days", Resolution: "20 working days"},
			sla.Normal: {FirstResponse: "8 working hours", Resolution: "10 working days"},
			sla.High:   {FirstResponse: "4 working hours", Resolution: "5 working days"},
			sla.Urgent: {FirstResponse: "1 hour", Resolution: "24 hours", Calendar: sla.AlwaysOpen},
		},
	}}, cals, []string{"waste"}, nil, nil)
	if err != nil {
		panic(err)
	}

	london, _ := time.LoadLocation("Europe/London")
	received := time.Date(2026, 3, 2, 10, 0, 0, 0, london) // Monday
	clock := policies.For("waste", "", sla.Normal)
	reply := clock.FirstResponse.Due(received)
	resolve := clock.Resolution.Due(received)
	fmt.Println("reply by", reply.Format("15:04 Mon 2 Jan"), "warning at", clock.FirstResponse.WarnAt(reply).Format("15:04 Mon 2 Jan"))
	fmt.Println("resolve by", resolve.Format("15:04 Mon 2 Jan"))

	// Awaiting the resident from Friday 16:00 to Monday 10:00.
	left := clock.Resolution.Remaining(time.Date(2026, 3, 6, 16, 0, 0, 0, london), resolve)
	resumed := clock.Resolution.Resume(time.Date(2026, 3, 9, 10, 0, 0, 0, london), left)
	fmt.Println(left, "left; resolve by", resumed.Format("15:04 Mon 2 Jan"))
	// Output:
	// reply by 09:30 Tue 3 Mar warning at 08:30 Tue 3 Mar
	// resolve by 17:00 Mon 16 Mar
	// 52h0m0s left; resolve by 11:00 Tue 17 Mar
}
