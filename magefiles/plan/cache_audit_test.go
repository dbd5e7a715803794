package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/catalog"
)

// CACHE=registry: every pushing build (publish, PUSH=1) reads and writes
// the image's registry cache, determinedai/environments:buildcache-<name>
// with mode=max; a local build only reads it; without CACHE neither.
func TestRegistryCacheIsReadAndWrittenByPushingBuilds(t *testing.T) {
	for _, c := range []struct {
		name     string
		env      map[string]string
		mode     Mode
		from, to bool
	}{
		{"publish", map[string]string{"CACHE": "registry"}, Publish, true, true},
		{"PUSH=1 build", map[string]string{"CACHE": "registry", "PUSH": "1"}, Build, true, true},
		{"local build", map[string]string{"CACHE": "registry"}, Build, true, false},
		{"publish without CACHE", nil, Publish, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			specs, err := Plan(settings(t, c.env), Request{Images: catalog.Names(), Mode: c.mode, Driver: DriverDockerContainer})
			if err != nil {
				t.Fatal(err)
			}
			if len(specs) != len(catalog.Names()) {
				t.Fatalf("%d specs, want %d", len(specs), len(catalog.Names()))
			}
			for _, sp := range specs {
				ref := "type=registry,ref=determinedai/environments:buildcache-" + sp.Image.Name
				if got := valueOf(sp.Argv, "--cache-from"); (got == ref) != c.from || (!c.from && got != "") {
					t.Errorf("%s: --cache-from %q, want %v (%s)", sp.Image.Name, got, c.from, ref)
				}
				if got := valueOf(sp.Argv, "--cache-to"); (got == ref+",mode=max") != c.to || (!c.to && got != "") {
					t.Errorf("%s: --cache-to %q, want %v (%s,mode=max): %s", sp.Image.Name, got, c.to, ref, strings.Join(sp.Argv, " "))
				}
			}
		})
	}
}

// valueOf is the word after flag in argv ("" when flag is absent).
func valueOf(argv []string, flag string) string {
	i := slices.Index(argv, flag)
	if i < 0 || i+1 >= len(argv) {
		return ""
	}
	return argv[i+1]
}
