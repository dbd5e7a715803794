package ci

import (
	"strings"
	"testing"
)

// A release sets REGISTRY_MIRRORS in the context (docs/publishing.md): the
// context's variables reach every step's environment unless the config
// overrides them, so no step, job environment or BASH_ENV line may set,
// clear or drop it, and every job runs in the context.
func TestNoStepOverridesTheContextsRegistryMirrors(t *testing.T) {
	cfg, err := Config()
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"REGISTRY_MIRRORS", "environment:", "env -i", "unset "} {
		if strings.Contains(cfg, bad) {
			t.Errorf("the generated config contains %q: it could override the context's REGISTRY_MIRRORS", bad)
		}
	}
	ws, err := Workflows()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		for _, j := range w.Jobs {
			if !strings.Contains(cfg, "      - "+j.Name+":\n          context: "+Context+"\n") {
				t.Errorf("job %s does not run in the context %s", j.Name, Context)
			}
			if strings.Contains(j.Command(), "REGISTRY_MIRRORS") {
				t.Errorf("job %s's publish step sets REGISTRY_MIRRORS: %s", j.Name, j.Command())
			}
		}
	}
}
