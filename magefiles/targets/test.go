package targets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/magefile/mage/mg"

	"github.com/determined-ai/environments/magefiles/gotest"
	"github.com/determined-ai/environments/magefiles/run"
	"github.com/determined-ai/environments/magefiles/stack"
)

// testPackages are the Debian packages the unit tests use (python3 and
// python3-yaml for the model of the release tooling, shellcheck for
// the scripts; unshare, getent and cc are on every Debian machine).
var testPackages = []string{"shellcheck", "python3", "python3-yaml"}

// Test runs every test: go vet, the unit tests, then the end-to-end suite.
// It installs what the tests need (apt packages, the pinned buildkitd and
// buildx of tools/go.mod, arm64 emulation), so it needs root. Prints
// "unit: N passed, M failed, S skipped" and the same for e2e; a skipped test
// not listed in magefiles/gotest/skips.txt fails it. Reads nothing.
func Test(ctx context.Context) error {
	if err := Unit(ctx); err != nil {
		return err
	}
	return E2e(ctx)
}

// Unit runs go vet and the unit tests (no root needed when shellcheck is installed).
// Prints how many bad inputs and registry faults the tests tried.
func Unit(ctx context.Context) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	status := run.NewStatus(os.Stderr)
	if err := stack.InstallPackages(ctx, os.Stderr, testPackages...); err != nil {
		return fmt.Errorf("installing test dependencies: %w", err)
	}
	r := run.New(false, mg.Verbose())
	r.Dir = root
	status.Step("go vet ./...")
	if err := r.Run(ctx, []string{"go", "vet", "./..."}); err != nil {
		return err
	}
	status.Step("go test ./...")
	sum, err := gotest.Run(ctx, root, nil, os.Stdout, "-count=1", "-timeout=20m", "./...")
	if err != nil {
		return err
	}
	if len(sum.Tallies) > 0 {
		fmt.Println("reliability: what the tests tried and survived:")
		for _, t := range sum.Tallies {
			fmt.Println("  " + t)
		}
	}
	fmt.Printf("unit: %d passed, %d failed, %d skipped\n", sum.Passed, sum.Failed, sum.Skipped)
	skipsErr := checkSkips(root, "unit", sum)
	if sum.Failed > 0 {
		return errors.Join(fmt.Errorf("unit tests failed: %s", strings.Join(sum.FailedTests, ", ")), skipsErr)
	}
	if sum.Passed == 0 {
		return fmt.Errorf("no unit test ran")
	}
	return skipsErr
}

// checkSkips prints every skipped test and fails on one that the
// allow-list (gotest.SkipsFile) does not name.
func checkSkips(root, what string, sum gotest.Summary) error {
	allowed, err := gotest.LoadAllowed(filepath.Join(root, gotest.SkipsFile))
	if err != nil {
		return err
	}
	return gotest.CheckSkips(os.Stdout, what, sum.Skips, allowed)
}

// E2e runs the end-to-end suite on a real buildx + BuildKit + registry stack.
// It provisions what is missing (Debian packages, the pinned buildkitd and
// buildx, cached by version), starts buildkitd and three loopback registries,
// runs every scenario, stops everything, then measures every bench figure
// once (the bench's TestRun), and prints "e2e: N passed, M failed, S skipped".
// Needs root and binfmt_misc; fails saying why otherwise. Reads nothing.
func E2e(ctx context.Context) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("e2e needs root: it installs Debian packages, registers arm64 emulation with binfmt_misc and runs buildkitd (uid is %d)", os.Geteuid())
	}
	// The stack's own tests (the engine, its docker driver and bridge, the
	// multi-node builder) first, then the scenarios on it.
	status := run.NewStatus(os.Stderr)
	status.Step("end-to-end suite (go test -tags e2e ./magefiles/stack/... ./magefiles/e2e/...)")
	sum, err := gotest.Run(ctx, root, nil, os.Stdout, "-tags", "e2e", "-count=1", "-p", "1", "-timeout=50m", "./magefiles/stack/...", "./magefiles/e2e/...")
	if err == nil {
		// The bench's TestRun measures every figure of BENCHMARKS.md on the
		// same kind of stack, each once here (BENCH_*_ROUNDS=1), so the
		// bench cannot rot unseen; TestBakeRatio and TestLocalBuildOverhead
		// re-measure subsets of its figures and are for running by hand.
		status.Step("bench figures (go test -tags e2e -run '^TestRun$' ./magefiles/bench/)")
		var bench gotest.Summary
		bench, err = gotest.Run(ctx, root, []string{"BENCH_BAKE_ROUNDS=1", "BENCH_LOCAL_ROUNDS=1"}, os.Stdout,
			"-tags", "e2e", "-count=1", "-timeout=45m", "-run", "^TestRun$", "./magefiles/bench/")
		sum.Add(bench)
	}
	fmt.Printf("e2e: %d passed, %d failed, %d skipped\n", sum.Passed, sum.Failed, sum.Skipped)
	skipsErr := checkSkips(root, "e2e", sum)
	switch {
	case err != nil:
		return errors.Join(err, skipsErr)
	case sum.Failed > 0:
		return errors.Join(fmt.Errorf("e2e failed: %s", strings.Join(sum.FailedTests, ", ")), skipsErr)
	case sum.Passed == 0:
		return fmt.Errorf("e2e ran no test")
	}
	return skipsErr
}
