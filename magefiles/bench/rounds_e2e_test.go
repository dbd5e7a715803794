//go:build e2e

package bench

import (
	"os"
	"strconv"
	"testing"
)

// bakeRoundsFromEnv sets bakeRounds from BENCH_BAKE_ROUNDS (default 5) for
// the test; the test command sets 1, which measures every figure once and
// keeps the bench's cost in CI modest.
func bakeRoundsFromEnv(t *testing.T) {
	t.Helper()
	v := os.Getenv("BENCH_BAKE_ROUNDS")
	if v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("BENCH_BAKE_ROUNDS=%q: must be a whole number >= 1", v)
	}
	old := bakeRounds
	bakeRounds = n
	t.Cleanup(func() { bakeRounds = old })
}
