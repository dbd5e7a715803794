//go:build e2e

package bench

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLocalBuildOverhead measures only the local-build figures (root;
// BENCH_LOCAL_ROUNDS rounds, default 3, each a cold plain `docker build` and
// a cold `build` of a 1 GiB layer, then one `build` with --load):
// go test -tags e2e -count=1 -v -run TestLocalBuildOverhead ./magefiles/bench/
func TestLocalBuildOverhead(t *testing.T) {
	if v := os.Getenv("BENCH_LOCAL_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("BENCH_LOCAL_ROUNDS=%q: must be a whole number >= 1", v)
		}
		defer func(old int) { localBuildRounds = old }(localBuildRounds)
		localBuildRounds = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	work := t.TempDir()
	if os.Getenv(KeepEnv) == "1" {
		var err error
		if work, err = os.MkdirTemp("", "envs-bench-local-"); err != nil {
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
	if err := localBuildFigures(ctx, r, tool, work); err != nil {
		t.Fatal(err)
	}
	for _, fig := range []string{FigLocalBuildOverhead, FigLocalBuildLoadOverhead} {
		if !strings.Contains(out.String(), "bench "+fig+": ") {
			t.Errorf("no %s line", fig)
		}
	}
}
