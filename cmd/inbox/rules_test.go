package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rulesConfig is a configuration whose secrets are all unset variables,
// as on an admin's machine: `inbox rules test` must still read it.
const rulesConfig = `
teams:
  - {slug: general, name: Customer services}
  - {slug: highways, name: Highways}
  - {slug: duty, name: Duty}
channel_accounts:
  - slug: council-x
    channel: x
    name: Council
    team: general
    api_base_url: ${X_API_BASE_URL}
    x:
      user_id: "1500000000000000001"
      consumer_secret: ${X_CONSUMER_SECRET}
      access_token: ${X_ACCESS_TOKEN}
calendars:
  - name: council-hours
    hours:
      monday: ["08:30-17:00"]
      tuesday: ["08:30-17:00"]
      wednesday: ["08:30-17:00"]
      thursday: ["08:30-17:00"]
      friday: ["08:30-17:00"]
    bank_holidays: england-and-wales
sla:
  calendar: council-hours
  priorities:
    low: {first_response: 2 working days, resolution: 20 working days}
    normal: {first_response: 8 working hours, resolution: 10 working days}
    high: {first_response: 4 working hours, resolution: 5 working days}
    urgent: {calendar: 24/7, first_response: 1 hour, resolution: 24 hours}
services:
  - {code: pothole, name: Pothole, team: highways}
  - {code: emergency, name: Emergency, team: duty}
routing:
  emergency:
    rules:
      - {name: fire, words: ["house on fire"]}
  rule_sets:
    - name: services
      rules:
        - {name: potholes, words: [pothole], service: pothole}
        - {name: night, time: ["22:00-06:00"], words: [light], team: highways, priority: low}
  default_team: general
`

func TestRulesTestRoutesEachLineWithDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(rulesConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	in := strings.Join([]string{
		`{"text": "Two potholes on Mill Lane"}`,
		`{"text": "My house on fire!!", "visibility": "private", "received_at": "2026-03-07T12:00:00Z"}`,
		`not json`,
		`{"text": "hello", "colour": "blue"}`,
		`{"channel": "x"}`,
		`{"text": "street light out", "received_at": "2026-03-02T23:30:00Z"}`,
		`{"text": "hi", "account": "council-facebook"}`,
		`{"text": "what are your opening times?", "follow_up": true}`,
	}, "\n")
	var out bytes.Buffer
	// No database, NATS or secrets: none of the variables is set.
	err := run([]string{"rules", "test", "-config", path, "-at", "2026-03-02T10:00:00Z"}, getenv(map[string]string{
		"INBOX_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
	}), strings.NewReader(in), &out, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 8 {
		t.Fatalf("%d lines out for 8 in:\n%s", len(lines), out.String())
	}
	var got []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, m)
	}
	// Monday 2 March 2026, 10:00 UTC (GMT): 8 working hours later is 09:30
	// on Tuesday, and 10 working days end at 17:00 on Monday 16 March.
	check := func(i int, field string, want any) {
		t.Helper()
		if g := got[i][field]; !equalJSON(g, want) {
			t.Errorf("line %d %s = %v, want %v", i+1, field, g, want)
		}
	}
	check(0, "team", "highways")
	check(0, "priority", "normal")
	check(0, "service", "pothole")
	check(0, "first_response_due", "2026-03-03T09:30:00Z")
	check(0, "resolution_due", "2026-03-16T17:00:00Z")
	check(0, "emergency", false)
	if rules := got[0]["rules"].([]any); len(rules) != 1 || rules[0].(map[string]any)["name"] != "potholes" ||
		!equalJSON(rules[0].(map[string]any)["matched"], []any{"potholes"}) {
		t.Errorf("line 1 rules %v, want potholes matching 'potholes'", got[0]["rules"])
	}
	check(1, "emergency", true)
	check(1, "team", "duty")
	check(1, "priority", "urgent")
	check(1, "first_response_due", "2026-03-07T13:00:00Z")
	for _, i := range []int{2, 3, 4, 6} {
		if e, _ := got[i]["error"].(string); e == "" {
			t.Errorf("line %d: %v, want an error", i+1, got[i])
		}
	}
	if e := got[4]["error"].(string); !strings.Contains(e, "text is required") {
		t.Errorf("line 5 error %q", e)
	}
	if e := got[6]["error"].(string); !strings.Contains(e, `no channel account has slug "council-facebook"`) {
		t.Errorf("line 7 error %q", e)
	}
	// 23:30 UTC is 23:30 in London in March: the night rule.
	check(5, "team", "highways")
	check(5, "priority", "low")
	// Out of hours the clock starts at Tuesday's opening.
	check(5, "first_response_due", "2026-03-05T17:00:00Z")
	// A follow-up no rule re-routes keeps its case's team.
	check(7, "team", nil)
}

func TestRulesTestRefusesAnInvalidRule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	bad := strings.Replace(rulesConfig, "{name: potholes, words: [pothole], service: pothole}",
		"{name: potholes, regex: ['pot(hole'], team: roads}", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run([]string{"rules", "test", "-config", path}, getenv(nil), strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "potholes") {
		t.Fatalf("invalid rule: %v, want an error naming the rule", err)
	}
	for _, want := range []string{"roads", "pot(hole"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
