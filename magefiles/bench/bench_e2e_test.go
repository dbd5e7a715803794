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

// TestRun measures every figure, as `go run magefile.go bench` does (root,
// about five minutes, plus a few for the local-build figures; BENCH_BAKE_ROUNDS
// as for TestBakeRatio, BENCH_LOCAL_ROUNDS as for TestLocalBuildOverhead):
// go test -tags e2e -count=1 -v -timeout 60m -run TestRun ./magefiles/bench/
func TestRun(t *testing.T) {
	bakeRoundsFromEnv(t)
	roundsFromEnv(t, "BENCH_LOCAL_ROUNDS", &localBuildRounds)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	var out strings.Builder
	err := Run(ctx, filepath.Join("..", ".."), &out)
	os.Stdout.WriteString(out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, fig := range []string{FigPlanMatrix, FigDryRunPublish, FigScheduler, FigCriticalPath, FigRepublish, FigNGCCopyBytes, FigCacheRebuild, FigNoCacheRebuild, FigBakeRatio, FigBakeRatioAllJobs, FigBakeTwoPhaseRatio, FigPublishOverTwoPhaseBake,
		FigNewCommitBuilds, FigNewCommitUploaded, FigNewCommitRatio, FigOnePinBuilds, FigFrameworkEditBuilds, FigUpToDateRequests, FigLocalBuildOverhead, FigLocalBuildLoadOverhead} {
		if !strings.Contains(out.String(), "\nbench "+fig+": ") && !strings.HasPrefix(out.String(), "bench "+fig+": ") {
			t.Errorf("no %s line", fig)
		}
	}
}
