package publish

// Tests written to kill the mutants `go run magefile.go mutants` found
// alive in this package (docs/mutants.md).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An ARTIFACTS_DIR holding only artifact files (and dot files) gets no
// note about foreign files.
func TestACleanArtifactsDirGetsNoForeignFileNote(t *testing.T) {
	h := newHarness(t)
	seed(t, map[string]string{
		filepath.Join(h.artifactsDir(), "publish-pt-cpu-1"): "pt_cpu_1_hashed: x\n",
		filepath.Join(h.artifactsDir(), ".keep"):            "",
	})
	if _, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf1-cpu"}, Dockerhub: true, NGC: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.err.String(), "should hold only") {
		t.Errorf("a note about foreign files in a clean ARTIFACTS_DIR:\n%s", h.err.String())
	}
}

// A lease holder names the machine and the process (and a random part), so
// a waiting job's log says who builds.
func TestALeaseHolderNamesTheMachineAndTheProcess(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	a, b := newHolder(), newHolder()
	prefix := fmt.Sprintf("%s/%d/", host, os.Getpid())
	if !strings.HasPrefix(a, prefix) || len(a) != len(prefix)+8 || a == b {
		t.Errorf("holders %q and %q, want %s<8 random hex digits>, each its own", a, b, prefix)
	}
}
