package demodata

import (
	"fmt"
	"math/rand/v2"
)

// The synthetic messages: a small bank of phrases per team, about
// made-up streets, so that nothing in the demo data is anyone's words or
// details. Every body says it is demo data.

var streets = []string{"Example Road", "Sample Street", "Test Lane", "Placeholder Avenue", "Demo Close",
	"Fictional Way", "Mock Crescent", "Specimen Row"}

var residentOpeners = map[string][]string{
	"waste": {"The bin on %s was not collected this morning.", "Our recycling on %s has been missed again.",
		"Can I book a bulky collection from %s?", "Our bin on %s was damaged by the lorry."},
	"highways": {"There is a deep pothole outside %s.", "The street light on %s has been out for a week.",
		"The drain on %s is blocked and the road is flooding.", "The pavement on %s is broken and someone tripped."},
	"housing": {"The boiler in our council flat on %s has stopped working.", "There is damp and mould in the bedroom, %s.",
		"I need help with my housing application, I live on %s."},
	"council-tax": {"My council tax bill for %s looks wrong.", "How do I apply for the single person discount on %s?",
		"I have moved from %s, how do I close my account?"},
	"parking": {"A car has been parked across my drive on %s all day.", "I want to appeal a parking ticket I got on %s.",
		"How do I renew my resident permit for %s?"},
	"environmental-health": {"Someone has dumped a mattress on %s.", "The music from a house on %s went on until 3am.",
		"There are rats in the alley behind %s."},
	"community-safety": {"There is a group causing trouble every night on %s.", "Graffiti has appeared on the wall at %s.",
		"Someone keeps setting off fireworks on %s."},
	"duty": {"I am worried about my elderly neighbour on %s, we have not seen her for days.",
		"Someone threatened the staff at the office near %s.", "There is an urgent problem on %s."},
	"general": {"What are your opening hours near %s?", "I lost my keys near %s, has anyone handed them in?",
		"Who do I contact about an issue on %s?"},
}

var residentFollowUps = []string{"Thanks, it is the house with the blue door.", "It is still not sorted.",
	"Any update on this?", "Yes, the nearest landmark is the post box.", "I have sent a photo.",
	"Thank you, that is great.", "It happened again today.", "Is there a reference number?"}

var councilReplies = []string{"Thanks for letting us know, we have logged it with the team.",
	"Sorry about this. Could you tell us the nearest house number or landmark?",
	"We have passed this to the crew and will update you.", "Thanks, we have arranged a visit.",
	"We are looking into this and will get back to you.", "This has now been dealt with, thank you for your patience.",
	"Could you send us a private message with your address?"}

// residentText is a resident's message: the first of a case or a later one.
func residentText(r *rand.Rand, team string, first bool) string {
	if !first {
		return "[demo data] " + residentFollowUps[r.IntN(len(residentFollowUps))]
	}
	openers := residentOpeners[team]
	if len(openers) == 0 {
		openers = residentOpeners["general"]
	}
	return "[demo data] " + fmt.Sprintf(openers[r.IntN(len(openers))], streets[r.IntN(len(streets))])
}

// councilText is a reply of the council.
func councilText(r *rand.Rand) string {
	return "[demo data] " + councilReplies[r.IntN(len(councilReplies))]
}
