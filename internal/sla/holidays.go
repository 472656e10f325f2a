package sla

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
)

// Bank holiday divisions, as gov.uk names them.
const (
	EnglandAndWales = "england-and-wales"
	Scotland        = "scotland"
	NorthernIreland = "northern-ireland"
)

// holidaysJSON holds the bank holidays of the three divisions in the format
// of https://www.gov.uk/bank-holidays.json, so a newer year (or a one-off
// holiday such as a coronation) is added by copying gov.uk's entries.
//
//go:embed holidays.json
var holidaysJSON []byte

// Holiday is a bank holiday.
type Holiday struct {
	date civilDate
	// Name is the holiday's title, such as "Christmas Day".
	Name string
	// Substitute is true for a day off in place of a holiday that fell at a
	// weekend.
	Substitute bool
}

// Date returns the holiday's date, "2006-01-02".
func (h Holiday) Date() string { return h.date.String() }

type holidayFile map[string]struct {
	Division string `json:"division"`
	Events   []struct {
		Title string `json:"title"`
		Date  string `json:"date"`
		Notes string `json:"notes"`
	} `json:"events"`
}

// BankHolidays returns the shipped bank holidays of a division, in date
// order.
func BankHolidays(division string) ([]Holiday, error) {
	all, err := loadBankHolidays()
	if err != nil {
		return nil, err
	}
	h, ok := all[division]
	if !ok {
		return nil, fmt.Errorf("sla: %q is not a bank holiday division (%s, %s, %s)", division, EnglandAndWales, Scotland, NorthernIreland)
	}
	return h, nil
}

func loadBankHolidays() (map[string][]Holiday, error) {
	var f holidayFile
	if err := json.Unmarshal(holidaysJSON, &f); err != nil {
		return nil, fmt.Errorf("sla: holidays.json: %w", err)
	}
	out := make(map[string][]Holiday, len(f))
	for division, d := range f {
		for i, e := range d.Events {
			date, err := parseDate(e.Date)
			if err != nil {
				return nil, fmt.Errorf("sla: holidays.json: %s.events[%d].date: %w", division, i, err)
			}
			out[division] = append(out[division], Holiday{date: date, Name: e.Title, Substitute: e.Notes == substituteNote})
		}
	}
	for _, list := range out {
		slices.SortFunc(list, func(a, b Holiday) int { return a.date.noon().Compare(b.date.noon()) })
	}
	return out, nil
}

// substituteNote is gov.uk's note on a substitute day.
const substituteNote = "Substitute day"
