package build

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// TestTheFakeDockerLogsCallsMadeAtOnceWhole: the build runs its preflight
// queries at once; the fake's log must keep each call whole, or a test
// reads `docker --version buildx inspect …` as one call (CI failure of
// 2026-12-02 in TestLocalBuildFallsBackWhenTheEngineCannotBuildThePlatform).
func TestTheFakeDockerLogsCallsMadeAtOnceWhole(t *testing.T) {
	log := fakeDocker(t, "")
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		for _, args := range [][]string{{"--version"}, {"buildx", "inspect", "--bootstrap", fmt.Sprint("b", i)}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
					errs <- fmt.Errorf("docker %v: %w: %s", args, err, out)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cs := calls(t, log)
	if len(cs) != 2*n {
		t.Fatalf("%d calls logged, want %d", len(cs), 2*n)
	}
	seen := map[string]bool{}
	for _, c := range cs {
		line := strings.Join(c, " ")
		if line != "docker --version" && !strings.HasPrefix(line, "docker buildx inspect --bootstrap b") || len(c) > 5 {
			t.Fatalf("a call logged torn: %q", c)
		}
		seen[line] = true
	}
	if len(seen) != n+1 {
		t.Errorf("%d distinct calls, want %d", len(seen), n+1)
	}
}
