package sla

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in, want string
		working  bool
		duration time.Duration // 0 for days
	}{
		{"8 working hours", "8 working hours", true, 8 * time.Hour},
		{"10 working days", "10 working days", true, 0},
		{"2 working days", "2 working days", true, 0},
		{"4 working hours", "4 working hours", true, 4 * time.Hour},
		{"1 working hour", "1 working hour", true, time.Hour},
		{"1 hour 24/7", "1 hour", false, time.Hour},
		{"24 hours", "24 hours", false, 24 * time.Hour},
		{"30 minutes", "30 minutes", false, 30 * time.Minute},
		{"1 hour", "1 hour", false, time.Hour},
		{"2 days", "2 days", false, 0},
		{"  45   Working MINS ", "45 working minutes", true, 45 * time.Minute},
		{"1 hrs", "1 hour", false, time.Hour},
		{"3660 working days", "3660 working days", true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTarget(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want || got.Working() != tc.working {
				t.Errorf("got %q working %v, want %q working %v", got, got.Working(), tc.want, tc.working)
			}
			d, ok := got.Duration()
			if d != tc.duration || ok != (tc.duration != 0) {
				t.Errorf("Duration() = %s, %v; want %s", d, ok, tc.duration)
			}
		})
	}
}

func TestParseTargetErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `"" is not a target: empty`},
		{"5 workng days", `"5 workng days" is not a target: "workng" is not "working" or a unit`},
		{"five days", `"five days" is not a target: "five" is not a whole number`},
		{"0 hours", "at least 1"},
		{"-1 hours", "at least 1"},
		{"1.5 hours", `"1.5" is not a whole number`},
		{"8 working", "no unit"},
		{"8", "no unit"},
		{"8 working hours 24/7", "working time cannot be 24/7"},
		{"8 hours please", `unexpected "please"`},
		{"99999999999 minutes", "more than ten years"},
		{"3661 working days", "more than ten years"},
		{"87841 hours", "more than ten years"},
		{"8 fortnights", `"fortnights" is not "working" or a unit`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseTarget(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if !errors.Is(err, ErrNotTarget) {
				t.Errorf("error %v does not wrap ErrNotTarget", err)
			}
		})
	}
}

func TestTargetText(t *testing.T) {
	var got Target
	if err := got.UnmarshalText([]byte("10 working days")); err != nil {
		t.Fatal(err)
	}
	b, err := got.MarshalText()
	if err != nil || string(b) != "10 working days" {
		t.Errorf("MarshalText = %q, %v", b, err)
	}
	if err := got.UnmarshalText([]byte("10 wrking days")); !errors.Is(err, ErrNotTarget) {
		t.Errorf("UnmarshalText of a bad target: %v", err)
	}
	if (Target{}).String() != "" || !(Target{}).IsZero() {
		t.Error("zero Target is not empty")
	}
}

// FuzzParseTarget checks that ParseTarget never panics and that what it
// accepts prints back to text it reads as the same target.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"8 working hours", "10 working days", "1 hour 24/7", "30 minutes", "5 workng days", "", "1 hrs 24/7 x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		target, err := ParseTarget(s)
		if err != nil {
			if !errors.Is(err, ErrNotTarget) {
				t.Fatalf("error %v does not wrap ErrNotTarget", err)
			}
			return
		}
		again, err := ParseTarget(target.String())
		if err != nil || again != target {
			t.Fatalf("%q → %q → %v, %v", s, target, again, err)
		}
		if target.Amount() < 1 || target.Amount() > target.Unit().max() {
			t.Fatalf("%q: amount %d", s, target.Amount())
		}
	})
}
