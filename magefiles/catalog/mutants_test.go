package catalog

// Tests written to kill the mutants `go run magefile.go mutants` found
// alive in this package (docs/mutants.md).

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestUnknownImageErrorSuggestsAndListsEveryImage(t *testing.T) {
	all := " (`mage images` lists all: " + strings.Join(Names(), ", ") + ")"
	_, err := Lookup("tf2-cpuu")
	var ue *UnknownImageError
	if !errors.As(err, &ue) {
		t.Fatalf("Lookup(tf2-cpuu) = %v, want an UnknownImageError", err)
	}
	if want := `unknown image "tf2-cpuu"; did you mean ` + strings.Join(ue.Suggestions, ", ") + "?" + all; err.Error() != want || ue.Suggestions[0] != "tf2-cpu" {
		t.Errorf("error\n%s\nwant\n%s\nwith tf2-cpu first", err, want)
	}
	_, err = Lookup("qqqqqqqqqqqqqqqqqqqqqqqqqqqq")
	if want := `unknown image "qqqqqqqqqqqqqqqqqqqqqqqqqqqq"` + all; err == nil || err.Error() != want {
		t.Errorf("error without suggestions\n%v\nwant\n%s", err, want)
	}
}

func TestDistanceIsLevenshtein(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"", "abc", 3}, {"abc", "", 3}, {"abc", "abc", 0},
		{"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"pt-cpu", "tf2-cpu", 3},
	} {
		if d := distance(tc.a, tc.b); d != tc.d {
			t.Errorf("distance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}

func TestClosestOrdersByDistanceThenCatalogOrder(t *testing.T) {
	for _, tc := range []struct {
		name       string
		candidates []string
		want       []string
	}{
		// nearer first, whatever the catalog order
		{"abcd", []string{"abxy", "abcx"}, []string{"abcx", "abxy"}},
		// ties keep the catalog order
		{"abcd", []string{"abcy", "abcx", "abcz"}, []string{"abcy", "abcx", "abcz"}},
		// at most n
		{"abcd", []string{"abca", "abcb", "abcc", "abce"}, []string{"abca", "abcb", "abcc"}},
		// a distance equal to the limit (max(3, len/2)) is still a typo
		{"pt-xyz", []string{"pt-cpu"}, []string{"pt-cpu"}},
		{"p-xyzw", []string{"pt-cpu"}, nil},
		// a part of a long name is suggested although far from the whole
		{"neox", []string{"tf2-cpu", "gpt-neox-deepspeed-gpu"}, []string{"gpt-neox-deepspeed-gpu"}},
		{"NEOX", []string{"gpt-neox-deepspeed-gpu"}, []string{"gpt-neox-deepspeed-gpu"}},
		// but an empty name is part of every name and suggests nothing
		{"", []string{"tf2-cpu", "gpt-neox-deepspeed-gpu"}, nil},
	} {
		if got := closest(tc.name, tc.candidates, 3); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("closest(%q, %q) = %q, want %q", tc.name, tc.candidates, got, tc.want)
		}
	}
}
