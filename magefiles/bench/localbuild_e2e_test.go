//go:build e2e

package bench

import (
	"testing"
	"time"
)

// TestLocalBuildOverhead measures only the local-build figures (root;
// BENCH_LOCAL_ROUNDS rounds, default 3, each a cold plain `docker build` and
// a cold `build` of a 1 GiB layer, then one `build` with --load):
// go test -tags e2e -count=1 -v -run TestLocalBuildOverhead ./magefiles/bench/
func TestLocalBuildOverhead(t *testing.T) {
	roundsFromEnv(t, "BENCH_LOCAL_ROUNDS", &localBuildRounds)
	ctx, r, out, tool, work := figureTest(t, 30*time.Minute)
	if err := localBuildFigures(ctx, r, tool, work); err != nil {
		t.Fatal(err)
	}
	saysFigures(t, out.String(), FigLocalBuildOverhead, FigLocalBuildLoadOverhead)
}
