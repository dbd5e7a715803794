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

// bakeRoundsFromEnv sets bakeRounds from BENCH_BAKE_ROUNDS (default 5) for
// the test; the test command sets 1, which measures every figure once and
// keeps the bench's cost in CI modest.
func bakeRoundsFromEnv(t *testing.T) { roundsFromEnv(t, "BENCH_BAKE_ROUNDS", &bakeRounds) }

// roundsFromEnv sets *rounds from the environment variable name, when set,
// for the test.
func roundsFromEnv(t *testing.T, name string, rounds *int) {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: must be a whole number >= 1", name, v)
	}
	old := *rounds
	*rounds = n
	t.Cleanup(func() { *rounds = old })
}

// figureTest is what a test of some figures starts from: a context of
// timeout, a work directory (kept with BENCH_KEEP=1), a reporter whose
// lines the test prints at its end, and the compiled tool.
func figureTest(t *testing.T, timeout time.Duration) (context.Context, *reporter, *strings.Builder, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	work := t.TempDir()
	if os.Getenv(KeepEnv) == "1" {
		var err error
		if work, err = os.MkdirTemp("", "envs-bench-"+strings.ToLower(t.Name())+"-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("keeping %s", work)
	}
	out := &strings.Builder{}
	t.Cleanup(func() { os.Stdout.WriteString(out.String()) })
	tool, err := compileTool(ctx, filepath.Join("..", ".."), work)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, &reporter{w: out}, out, tool, work
}

// saysFigures fails unless out has a line for every figure.
func saysFigures(t *testing.T, out string, figs ...string) {
	t.Helper()
	for _, fig := range figs {
		if !strings.Contains("\n"+out, "\nbench "+fig+": ") {
			t.Errorf("no %s line", fig)
		}
	}
}
