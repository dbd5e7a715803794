//go:build e2e

package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBakeRatio measures only the bake-ratio figures (root; BENCH_BAKE_ROUNDS
// rounds, default 5, each a bake and two cold publishes, all of which must
// succeed): go test -tags e2e -count=1 -v -run TestBakeRatio ./magefiles/bench/
func TestBakeRatio(t *testing.T) {
	bakeRoundsFromEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	work := t.TempDir()
	if os.Getenv(KeepEnv) == "1" {
		var err error
		if work, err = os.MkdirTemp("", "envs-bench-bake-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("keeping %s", work)
	}
	var out strings.Builder
	r := &reporter{w: &out}
	defer func() { os.Stdout.WriteString(out.String()) }()
	tool, err := compileTool(ctx, filepath.Join("..", ".."), work)
	if err != nil {
		t.Fatal(err)
	}
	b, stop, err := startStack(ctx, r, tool, filepath.Join(work, "stack"))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := b.bakeRatio(ctx); err != nil {
		t.Fatal(err)
	}
	for _, fig := range []string{FigBakeRatio, FigBakeRatioAllJobs, FigBakeTwoPhaseRatio, FigPublishOverTwoPhaseBake} {
		if !strings.Contains(out.String(), "\nbench "+fig+": ") {
			t.Errorf("no %s line", fig)
		}
	}
}
