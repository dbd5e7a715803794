package variant

// Tests written to kill the mutants `go run magefile.go mutants` found
// alive in this package (docs/mutants.md).

import (
	"reflect"
	"strings"
	"testing"
)

func TestANamedBuilderIsExplicit(t *testing.T) {
	for _, tc := range []struct {
		env      map[string]string
		builder  string
		explicit bool
	}{
		{nil, DefaultBuilder, false},
		{map[string]string{"BUILDX_BUILDER": ""}, DefaultBuilder, false},
		{map[string]string{"BUILDX_BUILDER": "ci-builder"}, "ci-builder", true},
	} {
		s, err := parse(tc.env)
		if err != nil {
			t.Fatal(err)
		}
		if s.Builder != tc.builder || s.BuilderExplicit != tc.explicit {
			t.Errorf("%v: builder %q explicit %v, want %q %v", tc.env, s.Builder, s.BuilderExplicit, tc.builder, tc.explicit)
		}
	}
}

// The first part of a registry setting is a host only when it looks like
// one (a dot, a port or localhost); otherwise it is namespace and must be
// lower case like the rest.
func TestANamespaceIsNotMistakenForAHost(t *testing.T) {
	_, err := parse(map[string]string{"DOCKERHUB_REGISTRY": "MyOrg/team"})
	if err == nil || !strings.Contains(err.Error(), `DOCKERHUB_REGISTRY="MyOrg/team": the namespace must be lower case`) {
		t.Errorf("MyOrg/team: %v, want the namespace refused as not lower case", err)
	}
	for _, v := range []string{"localhost/team", "localhost:5000/team", "registry.local/a/b"} {
		if _, err := parse(map[string]string{"DOCKERHUB_REGISTRY": v}); err != nil {
			t.Errorf("%s refused: %v", v, err)
		}
	}
}

func TestComboDigitAndWords(t *testing.T) {
	got := map[string][2]any{}
	for _, c := range Matrix() {
		got[c.Name] = [2]any{c.MPIDigit(), c.Words()}
	}
	want := map[string][2]any{
		"default": {"0", []string(nil)},
		"mpi":     {"1", []string{"WITH_MPI=1"}},
		"mpi-ofi": {"1", []string{"WITH_MPI=1", "WITH_OFI=1", "WITH_NCCL=1"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MPI digit and words per combo\n%v\nwant\n%v", got, want)
	}
}
