package main

import (
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/citizeninbox/inbox/internal/netsim"
)

// resident is one person the simulator plays.
type resident = netsim.Resident

// cast returns the residents the simulator plays.
func cast() []resident {
	return []resident{
		{ID: "2200000000000000001", Handle: "sarahjenkins", Name: "Sarah Jenkins"},
		{ID: "2200000000000000002", Handle: "dave_okafor", Name: "Dave Okafor"},
		{ID: "2200000000000000003", Handle: "priyapatel_uk", Name: "Priya Patel"},
		{ID: "2200000000000000004", Handle: "tomhughes84", Name: "Tom Hughes"},
		{ID: "2200000000000000005", Handle: "morag_mcleod", Name: "Morag McLeod"},
		{ID: "2200000000000000006", Handle: "gareth_evans", Name: "Gareth Evans"},
		{ID: "2200000000000000007", Handle: "chloe_b_smith", Name: "Chloe Smith"},
		{ID: "2200000000000000008", Handle: "imran_hussain", Name: "Imran Hussain"},
	}
}

// residentByHandle returns the cast member with the given handle, with or
// without its "@". Any other handle gets a stable made-up id, so that
// repeated sends from it thread together.
func residentByHandle(handle string) resident {
	handle = strings.TrimPrefix(handle, "@")
	for _, r := range cast() {
		if strings.EqualFold(r.Handle, handle) {
			return r
		}
	}
	h := fnv.New64a()
	h.Write([]byte(strings.ToLower(handle)))
	const base = 2290000000000000000
	return resident{ID: strconv.FormatUint(base+h.Sum64()%1e15, 10), Handle: handle, Name: handle}
}

// topic is one thing residents write to the council about.
type topic struct {
	// mention is written in public, dm privately; followUp is added to the
	// direct message a little later.
	mention, dm, followUp string
}

// topics returns the script residents follow.
func topics() []topic {
	return []topic{
		{
			mention:  "Our bins on Elm Road weren't collected again this morning. Third time this month!",
			dm:       "Hi, the green recycling bin at 14 Elm Road was missed on Tuesday's round. Could someone come back for it please?",
			followUp: "Just to add, numbers 12 and 16 were missed as well.",
		},
		{
			mention:  "There's a massive pothole on Station Road just past the Co-op. Nearly came off my bike this morning.",
			dm:       "Hello, I'd like to report a pothole outside 3 Mill Lane. It's about 30cm across and quite deep.",
			followUp: "I've got a photo if that helps. It's on the left heading towards the church.",
		},
		{
			mention:  "The streetlight outside 27 Park Avenue has been out for over a week. It's pitch black on the path at night.",
			dm:       "Hi, two streetlights on Cedar Close are out, the whole cul-de-sac is dark after 5pm.",
			followUp: "The lamp post numbers are CC04 and CC05, they're on the little stickers.",
		},
		{
			mention:  "Someone's dumped a mattress and a pile of bin bags in the alley behind Victoria Terrace. Can it be cleared?",
			dm:       "There's fly-tipping at the entrance to the allotments on Brook Lane: building rubble and an old fridge.",
			followUp: "A white van was parked there on Sunday evening, if that's any use.",
		},
		{
			mention:  "How do I apply for the single person discount on council tax? Can't find it on the website.",
			dm:       "Hi, my council tax bill has gone up this year and I don't understand why. Can someone explain?",
			followUp: "My account number is on the bill, I can send it here if that's OK?",
		},
		{
			mention:  "How long does a residents' parking permit take to come through? Applied three weeks ago.",
			dm:       "Hello, I've just moved to Queen Street. How do I get a parking permit and a visitor permit?",
			followUp: "Also, do I need to cancel the permit from my old address?",
		},
		{
			mention:  "Is anyone dealing with the noise from the unit on Canal Street? Music until 3am every weekend.",
			dm:       "I want to make a noise complaint about my neighbour's dog, it barks all day while they're at work.",
			followUp: "It's been going on for about two months now.",
		},
		{
			mention:  "Is Central Library open on the bank holiday Monday?",
			dm:       "Hi, what time does Westgate library open on Saturdays? And is the children's story time still on?",
			followUp: "Sorry, one more thing: can I return books from another branch there?",
		},
	}
}

// publicThanks are what residents answer to a public reply.
func publicThanks() []string {
	return []string{
		"Thanks, that's helpful!",
		"Brilliant, thanks for getting back to me so quickly.",
		"Cheers, I'll keep an eye out.",
		"Thank you, much appreciated.",
	}
}

// privateThanks are what residents answer to a direct message.
func privateThanks() []string {
	return []string{
		"Thanks, that's really helpful.",
		"Great, thank you. I'll wait to hear back then.",
		"OK, that makes sense. Thanks for explaining.",
		"Lovely, thanks for sorting it.",
	}
}
