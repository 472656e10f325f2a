package demodata

import (
	"math"
	"time"
)

// The volume model: how many residents write, when, and about what.

// hourWeight is a weekday's volume by local hour, relative to the peaks
// (09:00–11:00 and 13:00–15:00): evenings at a third, nights nearly
// nothing. Weekends are a quarter of it, hour by hour.
var hourWeight = [24]float64{
	0.04, 0.03, 0.03, 0.03, 0.03, 0.04, 0.08, 0.2, // 00–07
	0.6, 1, 1, 0.7, 0.7, 1, 1, 0.7, 0.7, // 08–16
	1.0 / 3, 1.0 / 3, 1.0 / 3, 1.0 / 3, 1.0 / 3, // 17–21, evenings
	0.15, 0.06, // 22–23
}

// weekendFactor is a weekend day's volume against a weekday's.
const weekendFactor = 0.25

// Seasons: which topics rise in winter and which in summer.
const (
	allYear = iota
	winter  // waste and highways: storms, ice, Christmas collections
	summer  // noise and parking: gardens, parties, visitors
)

// seasonAmplitude is how far a seasonal topic moves either way from its
// mean, mid-January against mid-July.
const seasonAmplitude = 0.4

// seasonFactor is a topic's volume on day t against its yearly mean.
func seasonFactor(season int, t time.Time) float64 {
	// +1 in mid-January, −1 in mid-July.
	w := math.Cos(2 * math.Pi * float64(t.YearDay()-15) / 365.25)
	switch season {
	case winter:
		return 1 + seasonAmplitude*w
	case summer:
		return 1 - seasonAmplitude*w
	}
	return 1
}

// serviceShare is each service's share of the volume (relative weights),
// by the example configuration's codes; a code not listed weighs 1.
// general is the enquiries no service fits.
var serviceShare = map[string]float64{
	"missed-bin": 9, "recycling": 4, "garden-waste": 2.5, "bulky-waste": 2, "bin-request": 3,
	"pothole": 6, "street-light": 3, "pavement": 2, "drainage": 2, "gritting": 1.5, "road-sign": 1,
	"fly-tipping": 4, "noise": 4, "pest-control": 2, "food-hygiene": 1, "dog-fouling": 1.5, "licensing": 1,
	"housing-repair": 5, "damp-mould": 2.5, "homelessness": 1.5, "housing-application": 2,
	"council-tax-bill": 5, "council-tax-reduction": 2, "housing-benefit": 2,
	"pcn": 3, "parking-permit": 2, "illegal-parking": 2.5,
	"anti-social-behaviour": 3, "graffiti": 1,
	"emergency": 0.3, "safeguarding": 0.4, "threat": 0.2,
	"lost-property": 0.5,
}

// generalShare is the weight of enquiries with no service.
const generalShare = 8

// seasonOf is the season of a service of a team.
func seasonOf(team, service string) int {
	switch {
	case team == "waste" || team == "highways":
		return winter
	case service == "noise" || team == "parking":
		return summer
	}
	return allYear
}

// priorityMix is how a service's cases are prioritised: the chances of
// low, high and urgent, the rest normal.
func priorityMix(team, service string) (low, high, urgent float64) {
	switch {
	case service == "emergency":
		return 0, 0.2, 0.8
	case team == "duty":
		return 0, 0.6, 0.4
	case service == "homelessness" || service == "damp-mould":
		return 0, 0.35, 0.05
	case service == "":
		return 0.3, 0.02, 0
	case service == "lost-property" || service == "graffiti" || service == "dog-fouling":
		return 0.25, 0.02, 0
	}
	return 0.06, 0.06, 0.005
}

// channelShare is the mix of the networks residents write on; channels
// without a configured account are left out and the rest keep their
// proportions.
var channelShare = []struct {
	channel string
	share   float64
	// public is the share of its cases started in public (a mention, a
	// comment) rather than in a private message.
	public float64
}{
	{"facebook", 27, 0.45},
	{"whatsapp", 24, 0},
	{"x", 14, 0.55},
	{"sms", 10, 0},
	{"email", 8, 0},
	{"instagram", 7, 0.5},
	{"telegram", 4, 0},
	{"mastodon", 3, 0.4},
	{"bluesky", 3, 0.8},
}

// Surges: days on which some topics come in at a multiple of their usual
// volume, each placed near a date of the year (with the seed's jitter)
// and moved off a weekend.
type surge struct {
	name   string
	month  time.Month
	day    int
	factor float64
	// team is the team whose topics surge; empty for every topic.
	team string
}

var surges = []surge{
	{name: "storm", month: time.February, day: 10, factor: 4},
	{name: "missed bin round", month: time.June, day: 2, factor: 3, team: "waste"},
	{name: "incident", month: time.September, day: 18, factor: 5, team: "community-safety"},
}

// Response-time model. About breachShare of first responses breach their
// target; on a surge day a case of a surging topic breaches with
// surgeBreach, the rest with what makes up the share.
const (
	breachShare = 0.08
	surgeBreach = 0.45
	// nextBreach is the share of next responses that breach, surgeNext on
	// a surge day.
	nextBreach = 0.04
	surgeNext  = 0.25
)

// Conversation model.
const (
	// identityShare is how many residents there are per case: most write
	// once a year, some again.
	identityShare = 0.6
	// replyGap is the mean time a resident takes to write back; awaitGap
	// when the council asked them for something (the case awaiting them).
	replyGap = 5 * time.Hour
	awaitGap = 20 * time.Hour
	// askShare is the chance a reply that the resident answers asked them
	// for something (the case awaits the resident until they do).
	askShare = 0.25
	// reopenShare is the chance a resolved case with a longer conversation
	// was reopened by the resident writing again.
	reopenShare = 0.04
	// longShare is the share of cases worked on for days after the last
	// reply (a repair, an inspection), against the resolution target.
	longShare = 0.15
	// closeAfter is how long a resolved case stays resolved before it is
	// closed.
	closeAfter = 5 * 24 * time.Hour
)
