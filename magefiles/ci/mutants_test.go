package ci

// Tests written to kill the mutants `go run magefile.go mutants` found
// alive in this package (docs/mutants.md).

import (
	"strings"
	"testing"
)

func TestDateTagsCompareYearMonthAndNumber(t *testing.T) {
	if why := CheckMachine("ubuntu-2404:2026.05.1", "xlarge"); why != "" {
		t.Errorf("the newest known image refused: %s", why)
	}
	// Same year and month, a later number: newer than the validator knows.
	if why := CheckMachine("ubuntu-2404:2026.05.2", "xlarge"); !strings.Contains(why, "is newer than the newest ubuntu-2404 image the validator knows (2026.05.1)") {
		t.Errorf("ubuntu-2404:2026.05.2: %q, want it refused as too new", why)
	}
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"2026.05.10", "2026.05.9", true},
		{"2026.05.9", "2026.05.10", false},
		{"2030.01.1", "2026.05.1", true},
		{"2026.10.1", "2026.09.1", true},
		{"2026.05.1", "2026.05.1", false},
	} {
		if got := dateAfter(tc.a, tc.b); got != tc.want {
			t.Errorf("dateAfter(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestAtoiReadsDecimalDigits(t *testing.T) {
	for s, want := range map[string]int{"2026": 2026, "05": 5, "10": 10, "0": 0} {
		if got := atoi(s); got != want {
			t.Errorf("atoi(%q) = %d, want %d", s, got, want)
		}
	}
}
