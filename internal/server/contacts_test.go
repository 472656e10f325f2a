package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/server"
)

type contactJSON struct {
	ID          int64    `json:"id"`
	DisplayName string   `json:"display_name"`
	Tags        []string `json:"tags"`
	Identities  []struct {
		ID          int64  `json:"id"`
		Channel     string `json:"channel"`
		ExternalID  string `json:"external_id"`
		Handle      string `json:"handle"`
		DisplayName string `json:"display_name"`
	} `json:"identities"`
	Cases []struct {
		ID                int64  `json:"id"`
		Reference         string `json:"reference"`
		Channel           string `json:"channel"`
		Team              string `json:"team"`
		ContactIdentityID int64  `json:"contact_identity_id"`
	} `json:"cases"`
	HiddenCases int `json:"hidden_cases"`
}

func (c contactJSON) caseIDs() []int64 {
	var out []int64
	for _, k := range c.Cases {
		out = append(out, k.ID)
	}
	return out
}

func (c contactJSON) identityIDs() []int64 {
	var out []int64
	for _, i := range c.Identities {
		out = append(out, i.ID)
	}
	return out
}

// contactAs fetches a contact through the API with token and requires want.
func (h *harness) contactAs(token string, id int64, want int) contactJSON {
	h.t.Helper()
	code, raw := h.apiAs(token, http.MethodGet, fmt.Sprintf("/contacts/%d", id), nil)
	if code != want {
		h.t.Fatalf("get contact %d: %d %s, want %d", id, code, raw, want)
	}
	var c contactJSON
	if code == http.StatusOK {
		if err := json.Unmarshal(raw, &c); err != nil {
			h.t.Fatal(err)
		}
	}
	return c
}

// ids is where a case's resident is: contact and identity, as stored.
func (h *harness) ids(caseID int64) (contact, identity int64) {
	h.t.Helper()
	var row struct{ ContactID, ContactIdentityID int64 }
	if err := h.direct.Raw(`SELECT contact_id, contact_identity_id FROM cases WHERE id = ?`, caseID).Scan(&row).Error; err != nil {
		h.t.Fatal(err)
	}
	return row.ContactID, row.ContactIdentityID
}

func (h *harness) audits(action string) int64 {
	return h.count(`SELECT count(*) FROM audit_events WHERE action = ?`, action)
}

func sameIDs(got []int64, want ...int64) bool {
	if len(got) != len(want) {
		return false
	}
	seen := map[int64]int{}
	for _, id := range got {
		seen[id]++
	}
	for _, id := range want {
		seen[id]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// An adviser links two residents' identities into one contact, which then
// lists both identities and both cases; linking again changes nothing;
// unlinking moves the identity and its case to a contact of its own; a
// contact's only identity stays.
func TestLinkAndUnlinkIdentities(t *testing.T) {
	h := newHarness(t)
	_, caseA := h.mentionCase(alice, "@ExampleCouncil the bins were missed on Elm Road")
	_, caseB := h.dmCase(bob, "It's Alice again, from my other account: still no bin collection")
	contactA, identityA := h.ids(caseA)
	contactB, identityB := h.ids(caseB)
	if contactA == contactB {
		t.Fatal("two residents share a contact before any link")
	}

	// The case says which contact it belongs to.
	code, raw := h.api(http.MethodGet, fmt.Sprintf("/cases/%d", caseB), nil)
	var c struct {
		ContactID int64 `json:"contact_id"`
		Contact   struct {
			ID int64 `json:"id"`
		} `json:"contact"`
	}
	if err := json.Unmarshal(raw, &c); code != http.StatusOK || err != nil || c.ContactID != contactB || c.Contact.ID != contactB {
		t.Fatalf("case %d: %d %s, want contact_id %d", caseB, code, raw, contactB)
	}

	viewed := h.audits("contact.viewed")
	before := h.contactAs(h.token, contactA, http.StatusOK)
	if !sameIDs(before.identityIDs(), identityA) || !sameIDs(before.caseIDs(), caseA) || before.DisplayName != alice.Name {
		t.Fatalf("contact before the link: %+v", before)
	}
	if n := h.audits("contact.viewed") - viewed; n != 1 {
		t.Errorf("%d contact.viewed entries for one view, want 1", n)
	}

	// Nothing is linked without a valid token, nor with a body that is not valid.
	link := fmt.Sprintf("/contacts/%d/identities", contactA)
	if code, raw := h.apiAs("", http.MethodPost, link, map[string]any{"identity_id": identityB}); code != http.StatusUnauthorized {
		t.Errorf("link without a token: %d %s, want 401", code, raw)
	}
	if code, raw := h.apiAs("", http.MethodDelete, fmt.Sprintf("/contacts/%d/identities/%d", contactB, identityB), nil); code != http.StatusUnauthorized {
		t.Errorf("unlink without a token: %d %s, want 401", code, raw)
	}
	for _, body := range []string{`{}`, `{"identity_id":0}`, `{"identity_id":-4}`, `{"identity_id":"two"}`} {
		code, raw := h.api(http.MethodPost, link, body)
		var p struct {
			Type   string `json:"type"`
			Errors []struct {
				Field string `json:"field"`
			} `json:"errors"`
		}
		_ = json.Unmarshal(raw, &p)
		if code != http.StatusUnprocessableEntity || p.Type != "validation" || len(p.Errors) != 1 || p.Errors[0].Field != "identity_id" {
			t.Errorf("link with %s: %d %s, want 422 naming identity_id", body, code, raw)
		}
	}
	for path, body := range map[string]any{
		link:                          map[string]any{"identity_id": 999999},
		"/contacts/999999/identities": map[string]any{"identity_id": identityB},
		"/contacts/abc/identities":    map[string]any{"identity_id": identityB},
	} {
		if code, raw := h.api(http.MethodPost, path, body); code != http.StatusNotFound {
			t.Errorf("POST %s %v: %d %s, want 404", path, body, code, raw)
		}
	}
	if got, _ := h.ids(caseB); got != contactB || h.audits("contact.linked") != 0 {
		t.Fatalf("refused links changed something: case %d is on contact %d", caseB, got)
	}

	// Linked: one contact, both identities, both cases.
	code, raw = h.api(http.MethodPost, link, map[string]any{"identity_id": identityB})
	var linked contactJSON
	if err := json.Unmarshal(raw, &linked); code != http.StatusOK || err != nil {
		t.Fatalf("link: %d %s", code, raw)
	}
	if linked.ID != contactA || !sameIDs(linked.identityIDs(), identityA, identityB) || !sameIDs(linked.caseIDs(), caseA, caseB) || linked.HiddenCases != 0 {
		t.Errorf("linked contact: %s", raw)
	}
	got := h.contactAs(h.token, contactA, http.StatusOK)
	if !sameIDs(got.identityIDs(), identityA, identityB) || !sameIDs(got.caseIDs(), caseA, caseB) {
		t.Errorf("contact after the link: %+v", got)
	}
	if got, _ := h.ids(caseB); got != contactA {
		t.Errorf("case %d is on contact %d, want %d", caseB, got, contactA)
	}
	if h.caseDetail(caseB).Contact.ExternalID != bob.ID {
		t.Error("the case's identity changed with its contact")
	}
	// The emptied contact held nothing and is gone.
	h.contactAs(h.token, contactB, http.StatusNotFound)
	if n := h.count(`SELECT count(*) FROM contacts WHERE id = ?`, contactB); n != 0 {
		t.Errorf("the emptied contact is still there")
	}
	if n := h.count(`SELECT count(*) FROM audit_events WHERE action = 'contact.linked' AND user_id = ?
		AND (detail->>'contact_id')::bigint = ? AND (detail->>'from_contact_id')::bigint = ? AND (detail->>'identity_id')::bigint = ?`,
		h.adviserID, contactA, contactB, identityB); n != 1 {
		t.Errorf("%d contact.linked entries, want 1", n)
	}

	// Again: nothing changes, nothing more is audited.
	code, raw = h.api(http.MethodPost, link, map[string]any{"identity_id": identityB})
	var again contactJSON
	if err := json.Unmarshal(raw, &again); code != http.StatusOK || err != nil || !sameIDs(again.identityIDs(), identityA, identityB) {
		t.Errorf("link again: %d %s", code, raw)
	}
	if n := h.audits("contact.linked"); n != 1 {
		t.Errorf("linking again wrote %d contact.linked entries in all, want 1", n)
	}

	// A new case of the linked identity belongs to the contact too.
	_, caseB2 := h.mentionCase(bob, "@ExampleCouncil and the recycling too")
	if got, _ := h.ids(caseB2); got != contactA {
		t.Errorf("a new case of the linked identity is on contact %d, want %d", got, contactA)
	}
	if got := h.contactAs(h.token, contactA, http.StatusOK); !sameIDs(got.caseIDs(), caseA, caseB, caseB2) {
		t.Errorf("contact lists cases %v, want %d, %d, %d", got.caseIDs(), caseA, caseB, caseB2)
	}

	// Unlinked: bob's identity and cases go to a new contact of their own.
	unlink := fmt.Sprintf("/contacts/%d/identities/%d", contactA, identityB)
	code, raw = h.api(http.MethodDelete, unlink, nil)
	var split contactJSON
	if err := json.Unmarshal(raw, &split); code != http.StatusOK || err != nil {
		t.Fatalf("unlink: %d %s", code, raw)
	}
	if split.ID == contactA || split.ID == contactB || split.DisplayName != bob.Name ||
		!sameIDs(split.identityIDs(), identityB) || !sameIDs(split.caseIDs(), caseB, caseB2) {
		t.Errorf("new contact after the unlink: %s", raw)
	}
	if got := h.contactAs(h.token, contactA, http.StatusOK); !sameIDs(got.identityIDs(), identityA) || !sameIDs(got.caseIDs(), caseA) {
		t.Errorf("contact after the unlink: %+v", got)
	}
	if got, _ := h.ids(caseB); got != split.ID {
		t.Errorf("case %d is on contact %d after the unlink, want %d", caseB, got, split.ID)
	}
	if n := h.count(`SELECT count(*) FROM audit_events WHERE action = 'contact.unlinked' AND user_id = ?
		AND (detail->>'contact_id')::bigint = ? AND (detail->>'new_contact_id')::bigint = ? AND (detail->>'identity_id')::bigint = ?`,
		h.adviserID, contactA, split.ID, identityB); n != 1 {
		t.Errorf("%d contact.unlinked entries, want 1", n)
	}
	// The identity is no longer the contact's to unlink.
	if code, raw := h.api(http.MethodDelete, unlink, nil); code != http.StatusNotFound {
		t.Errorf("unlink again: %d %s, want 404", code, raw)
	}
	for _, path := range []string{fmt.Sprintf("/contacts/%d/identities/999999", contactA), "/contacts/999999/identities/1", fmt.Sprintf("/contacts/%d/identities/x", contactA)} {
		if code, raw := h.api(http.MethodDelete, path, nil); code != http.StatusNotFound {
			t.Errorf("DELETE %s: %d %s, want 404", path, code, raw)
		}
	}

	// A contact's only identity stays.
	code, raw = h.api(http.MethodDelete, fmt.Sprintf("/contacts/%d/identities/%d", contactA, identityA), nil)
	var p struct {
		Type   string `json:"type"`
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(raw, &p)
	if code != http.StatusConflict || p.Type != "only_identity" || p.Detail == "" {
		t.Errorf("unlink the only identity: %d %s, want 409 only_identity", code, raw)
	}
	if got := h.contactAs(h.token, contactA, http.StatusOK); !sameIDs(got.identityIDs(), identityA) {
		t.Errorf("refused unlink changed the contact: %+v", got)
	}
	if n := h.audits("contact.unlinked"); n != 1 {
		t.Errorf("%d contact.unlinked entries, want 1", n)
	}
}

// Linking carries the emptied contact's tags over: a resident flagged
// vulnerable on one account stays flagged.
func TestLinkKeepsTheEmptiedContactsTags(t *testing.T) {
	h := newHarness(t)
	_, caseA := h.mentionCase(alice, "@ExampleCouncil noise from next door")
	_, caseB := h.mentionCase(bob, "@ExampleCouncil noise again")
	contactA, _ := h.ids(caseA)
	contactB, identityB := h.ids(caseB)
	h.direct.Exec(`UPDATE contacts SET tags = '{vulnerable}' WHERE id = ?`, contactB)
	h.direct.Exec(`UPDATE contacts SET tags = '{known}' WHERE id = ?`, contactA)
	code, raw := h.api(http.MethodPost, fmt.Sprintf("/contacts/%d/identities", contactA), map[string]any{"identity_id": identityB})
	var c contactJSON
	if err := json.Unmarshal(raw, &c); code != http.StatusOK || err != nil {
		t.Fatalf("link: %d %s", code, raw)
	}
	if fmt.Sprint(c.Tags) != "[known vulnerable]" {
		t.Errorf("tags after the link: %v, want [known vulnerable]", c.Tags)
	}
}

// An adviser sees a contact through the cases of their teams: the others
// are counted, not shown; a contact with none of their cases is missing to
// them, and they cannot link its identities.
func TestContactShowsOnlyTheCallersTeamsCases(t *testing.T) {
	h := newHarness(t)
	_, counter := h.mentionCase(alice, "@ExampleCouncil a bin question")
	_, roads := h.mentionCase(alice, "@ExampleCouncil and a pothole on Mill Lane")
	_, other := h.mentionCase(carol, "@ExampleCouncil a pothole outside my house")
	h.direct.Exec(`UPDATE cases SET team_id = (SELECT id FROM teams WHERE slug = 'highways') WHERE id IN (?, ?)`, roads, other)
	contact, _ := h.ids(counter)
	carolContact, carolIdentity := h.ids(other)
	uid, adviser := h.user("counter@example.gov.uk", "adviser", "contact-centre")

	got := h.contactAs(adviser, contact, http.StatusOK)
	if !sameIDs(got.caseIDs(), counter) || got.HiddenCases != 1 {
		t.Errorf("contact-centre adviser sees cases %v and %d hidden, want [%d] and 1", got.caseIDs(), got.HiddenCases, counter)
	}
	if got := h.contactAs(h.adminToken(), contact, http.StatusOK); !sameIDs(got.caseIDs(), counter, roads) || got.HiddenCases != 0 {
		t.Errorf("admin sees cases %v and %d hidden, want both and none", got.caseIDs(), got.HiddenCases)
	}
	if n := h.count(`SELECT count(*) FROM audit_events WHERE action = 'contact.viewed' AND user_id = ?
		AND (detail->>'contact_id')::bigint = ? AND (detail->>'hidden_cases')::int = 1`, uid, contact); n != 1 {
		t.Errorf("%d contact.viewed entries for the adviser's view, want 1", n)
	}

	// Carol's only case is another team's: her contact is missing, exactly
	// as one that does not exist, and the attempt is audited.
	_, hidden := h.apiAs(adviser, http.MethodGet, fmt.Sprintf("/contacts/%d", carolContact), nil)
	_, missing := h.apiAs(adviser, http.MethodGet, "/contacts/999999", nil)
	h.contactAs(adviser, carolContact, http.StatusNotFound)
	if string(hidden) != string(missing) {
		t.Errorf("another team's contact answered %s, a missing one %s", hidden, missing)
	}
	code, raw := h.apiAs(adviser, http.MethodPost, fmt.Sprintf("/contacts/%d/identities", contact), map[string]any{"identity_id": carolIdentity})
	if code != http.StatusNotFound {
		t.Errorf("link another team's resident: %d %s, want 404", code, raw)
	}
	if got, _ := h.ids(other); got != carolContact {
		t.Error("a refused link moved the case")
	}
	if n := h.count(`SELECT count(*) FROM audit_events WHERE action = 'contact.access_denied' AND user_id = ?
		AND (detail->>'contact_id')::bigint = ?`, uid, carolContact); n != 3 {
		t.Errorf("%d denials audited, want 3", n)
	}
}

// Links running at once, in both directions and into one contact, neither
// deadlock nor lose an identity: each resident ends in exactly one contact,
// with its cases.
func TestConcurrentLinks(t *testing.T) {
	h := newHarness(t)
	_, hub := h.mentionCase(alice, "@ExampleCouncil first")
	hubContact, _ := h.ids(hub)
	type res struct{ contact, identity, caseID int64 }
	var others []res
	for range 6 {
		_, id := h.mentionCase(newResident(), "@ExampleCouncil me too")
		c, i := h.ids(id)
		others = append(others, res{c, i, id})
	}
	var wg sync.WaitGroup
	codes := make([]int, len(others)+1)
	for i, o := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = h.api(http.MethodPost, fmt.Sprintf("/contacts/%d/identities", hubContact), map[string]any{"identity_id": o.identity})
		}()
	}
	// And one the other way round: the hub's identity into the first
	// other contact, which may be gone by then.
	_, hubIdentity := h.ids(hub)
	wg.Add(1)
	go func() {
		defer wg.Done()
		codes[len(others)], _ = h.api(http.MethodPost, fmt.Sprintf("/contacts/%d/identities", others[0].contact), map[string]any{"identity_id": hubIdentity})
	}()
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusOK && code != http.StatusNotFound {
			t.Errorf("link %d: %d", i, code)
		}
	}
	// An identity moves only by its own link: where each answered 200 it
	// is in the contact it was linked into, else where it was.
	for i, o := range others {
		want := o.contact
		if codes[i] == http.StatusOK {
			want = hubContact
		}
		if got, _ := h.ids(o.caseID); got != want {
			t.Errorf("link %d answered %d; its case is on contact %d, want %d", i, codes[i], got, want)
		}
	}
	want := hubContact
	if codes[len(others)] == http.StatusOK {
		want = others[0].contact
	}
	if got, _ := h.ids(hub); got != want {
		t.Errorf("the reverse link answered %d; the hub case is on contact %d, want %d", codes[len(others)], got, want)
	}
	// Every identity's cases follow it, and no contact is left empty.
	if n := h.count(`SELECT count(*) FROM cases c JOIN contact_identities ci ON ci.id = c.contact_identity_id
		WHERE c.contact_id <> ci.contact_id`); n != 0 {
		t.Errorf("%d cases are not on their identity's contact", n)
	}
	if n := h.count(`SELECT count(*) FROM contacts ct WHERE NOT EXISTS (SELECT 1 FROM contact_identities WHERE contact_id = ct.id)`); n != 0 {
		t.Errorf("%d empty contacts are left", n)
	}
}

// phoneDriver serves channels as the Meta and SMS drivers will: whatsapp
// and sms identities are phone numbers, telegram's are not (numeric ids
// that happen to look like numbers).
type phoneDriver struct{}

func (phoneDriver) Name() string { return "phones" }

func (phoneDriver) Channels() map[string]channels.Capabilities {
	text := map[channels.Visibility]channels.TextRule{channels.Private: {Unit: "characters", Limit: 1000}}
	return map[string]channels.Capabilities{
		"whatsapp": {Text: text, PhoneIdentities: true},
		"sms":      {Text: text, PhoneIdentities: true},
		"telegram": {Text: text},
	}
}

func (phoneDriver) Decode(channels.AccountConfig, func(any) error) (any, error) { return nil, nil }

func (phoneDriver) Open(channels.AccountConfig, channels.Deps) (channels.Account, error) {
	return channels.Account{}, nil
}

// elsewhere gives a contact, or a new one when contact is 0, an identity
// on a channel made another way (as an SMS or WhatsApp account would),
// with a case on the X account when withCase.
func (h *harness) elsewhere(contact int64, channel, externalID, name string, withCase bool) (int64, int64) {
	h.t.Helper()
	if contact == 0 {
		if err := h.direct.Raw(`INSERT INTO contacts (display_name) VALUES (?) RETURNING id`, name).Scan(&contact).Error; err != nil {
			h.t.Fatal(err)
		}
	}
	var identity int64
	if err := h.direct.Raw(`INSERT INTO contact_identities (contact_id, channel, external_id, display_name) VALUES (?, ?, ?, ?) RETURNING id`,
		contact, channel, externalID, name).Scan(&identity).Error; err != nil {
		h.t.Fatal(err)
	}
	if withCase {
		now := time.Now()
		if err := h.direct.Exec(`INSERT INTO cases (channel, channel_account_id, contact_id, contact_identity_id, team_id, first_message_at, last_message_at)
			SELECT ?, a.id, ?, ?, a.team_id, ?, ? FROM channel_accounts a WHERE a.slug = ?`,
			channel, contact, identity, now, now, accountSlug).Error; err != nil {
			h.t.Fatal(err)
		}
	}
	return contact, identity
}

// The same phone number on two phone channels is suggested as the same
// resident, compared on digits; numbers on other channels are not; and a
// suggestion links nothing by itself.
func TestSamePhoneNumberIsSuggestedNeverMerged(t *testing.T) {
	h := newHarness(t, func(o *server.Options, h *harness) { o.Drivers = drivers(h.t, phoneDriver{}) })
	_, caseA := h.mentionCase(alice, "@ExampleCouncil my street light is out")
	contact, _ := h.ids(caseA)
	suggestions := func(token string, contact int64) []struct {
		Identity struct {
			ID      int64  `json:"id"`
			Channel string `json:"channel"`
		} `json:"identity"`
		ContactID         int64  `json:"contact_id"`
		MatchesIdentityID int64  `json:"matches_identity_id"`
		Reason            string `json:"reason"`
	} {
		t.Helper()
		code, raw := h.apiAs(token, http.MethodGet, fmt.Sprintf("/contacts/%d/suggestions", contact), nil)
		var out struct {
			Suggestions []struct {
				Identity struct {
					ID      int64  `json:"id"`
					Channel string `json:"channel"`
				} `json:"identity"`
				ContactID         int64  `json:"contact_id"`
				MatchesIdentityID int64  `json:"matches_identity_id"`
				Reason            string `json:"reason"`
			} `json:"suggestions"`
		}
		if err := json.Unmarshal(raw, &out); code != http.StatusOK || err != nil {
			t.Fatalf("suggestions of %d: %d %s", contact, code, raw)
		}
		return out.Suggestions
	}

	// Only X so far: nothing to suggest.
	if got := suggestions(h.token, contact); len(got) != 0 {
		t.Errorf("suggestions for an X-only contact: %+v", got)
	}

	_, whatsapp := h.elsewhere(contact, "whatsapp", "447700900123", alice.Name, false)
	smsContact, sms := h.elsewhere(0, "sms", "+44 7700 900123", "A. Example", true)
	telegramContact, _ := h.elsewhere(0, "telegram", "447700900123", "alice", true)
	xContact, _ := h.elsewhere(0, "x", "447700900123", "someone", true)
	otherContact, _ := h.elsewhere(0, "sms", "+44 7700 900124", "Someone else", true)
	hiddenContact, _ := h.elsewhere(0, "whatsapp", "+447700900123", "Hidden", true)
	h.direct.Exec(`UPDATE cases SET team_id = (SELECT id FROM teams WHERE slug = 'highways') WHERE contact_id = ?`, hiddenContact)
	_, counter := h.user("counter@example.gov.uk", "adviser", "contact-centre")

	got := suggestions(counter, contact)
	if len(got) != 1 || got[0].Identity.ID != sms || got[0].Identity.Channel != "sms" || got[0].ContactID != smsContact ||
		got[0].MatchesIdentityID != whatsapp || got[0].Reason != "same_phone_number" {
		t.Errorf("suggestions: %+v, want the sms identity %d of contact %d matching %d", got, sms, smsContact, whatsapp)
	}
	// An admin also sees the contact of another team's case.
	if got := suggestions(h.adminToken(), contact); len(got) != 2 {
		t.Errorf("admin's suggestions: %+v, want the sms and the other team's whatsapp identity", got)
	}
	// The other way round, from the SMS contact: the WhatsApp identity.
	if got := suggestions(counter, smsContact); len(got) != 1 || got[0].Identity.ID != whatsapp || got[0].ContactID != contact {
		t.Errorf("suggestions of the sms contact: %+v", got)
	}
	// Identities on channels that are not phone numbers are never suggested.
	for _, c := range []int64{telegramContact, xContact, otherContact} {
		if got := suggestions(counter, c); len(got) != 0 {
			t.Errorf("suggestions of contact %d: %+v, want none", c, got)
		}
	}
	if code, raw := h.api(http.MethodGet, "/contacts/999999/suggestions", nil); code != http.StatusNotFound {
		t.Errorf("suggestions of a missing contact: %d %s", code, raw)
	}
	// Suggesting linked nothing.
	if n := h.count(`SELECT count(*) FROM contact_identities WHERE contact_id = ?`, contact); n != 2 {
		t.Errorf("the contact has %d identities after the suggestions, want 2", n)
	}
	if n := h.count(`SELECT count(*) FROM contact_identities WHERE id = ? AND contact_id = ?`, sms, smsContact); n != 1 {
		t.Error("the suggested identity moved")
	}
	if n := h.audits("contact.linked"); n != 0 {
		t.Errorf("%d links audited after suggestions alone", n)
	}
	if n := h.audits("contact.suggestions_listed"); n < 5 {
		t.Errorf("%d suggestion lists audited, want one per call", n)
	}

	// The adviser links the suggestion: one contact, on every channel.
	code, raw := h.apiAs(counter, http.MethodPost, fmt.Sprintf("/contacts/%d/identities", contact), map[string]any{"identity_id": sms})
	var c contactJSON
	if err := json.Unmarshal(raw, &c); code != http.StatusOK || err != nil || len(c.Identities) != 3 || len(c.Cases) != 2 {
		t.Errorf("link the suggestion: %d %s", code, raw)
	}
	if got := suggestions(counter, contact); len(got) != 0 {
		t.Errorf("suggestions after the link: %+v", got)
	}
}
