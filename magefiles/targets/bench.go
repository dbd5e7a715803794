package targets

import (
	"context"
	"os"

	"github.com/determined-ai/environments/magefiles/bench"
)

// Bench prints the performance figures, one `bench <name>: <number>` a line.
// plan-matrix-ms and dryrun-publish-ms run anywhere; the scheduler,
// republish, NGC-copy and registry-cache figures run on the real stack of the
// end-to-end suite and need root. BENCHMARKS.md explains each figure.
// Reads BENCH_KEEP (1 keeps the work directory).
func Bench(ctx context.Context) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	return bench.Run(ctx, root, os.Stdout)
}
