//go:build e2e

package bench

import (
	"path/filepath"
	"testing"
	"time"
)

// TestBakeRatio measures only the bake-ratio figures (root; BENCH_BAKE_ROUNDS
// rounds, default 5, each a bake and two cold publishes, all of which must
// succeed): go test -tags e2e -count=1 -v -run TestBakeRatio ./magefiles/bench/
func TestBakeRatio(t *testing.T) {
	bakeRoundsFromEnv(t)
	ctx, r, out, tool, work := figureTest(t, 30*time.Minute)
	b, stop, err := startStack(ctx, r, filepath.Join("..", ".."), tool, filepath.Join(work, "stack"))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := b.bakeRatio(ctx); err != nil {
		t.Fatal(err)
	}
	saysFigures(t, out.String(), FigBakeRatio, FigBakeRatioAllJobs, FigBakeTwoPhaseRatio, FigPublishOverTwoPhaseBake)
}
