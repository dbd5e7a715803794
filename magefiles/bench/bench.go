// Package bench measures the performance figures of the build tool (see
// BENCHMARKS.md at the repository root): planning speed, dry-run speed, and,
// on the real loopback build stack of magefiles/stack with stand-in
// recipes whose steps only sleep, how close the parallel publish comes to its
// critical path, how cheap a republish with nothing changed is, how many
// bytes a repeated NGC copy uploads, and what the registry build cache saves;
// and, on that stack's Docker Engine, what a local build costs over a plain
// `docker build` (localbuild.go).
//
// Run prints one line per figure, "bench <name>: <number>"; every other line
// is a note. It returns an error only when a figure could not be measured at
// all; a missed goal is reported in a note, not as an error.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Figure names.
const (
	FigPlanMatrix       = "plan-matrix-ms"
	FigDryRunPublish    = "dryrun-publish-ms"
	FigScheduler        = "scheduler-ratio"
	FigCriticalPath     = "critical-path-ratio"
	FigRepublish        = "republish-ratio"
	FigNGCCopyBytes     = "ngc-copy-uploaded-bytes"
	FigCacheRebuild     = "cache-rebuild-s"
	FigNoCacheRebuild   = "nocache-rebuild-s"
	schedulerMarginGoal = 0.15
)

// KeepEnv names the environment variable that, set to 1, keeps the work
// directory (tool logs, artifacts, repositories) for inspection.
const KeepEnv = "BENCH_KEEP"

// reporter writes figure and note lines.
type reporter struct {
	w io.Writer
}

func (r *reporter) figure(name string, v float64, prec int, g *Goal) {
	fmt.Fprintln(r.w, Line(name, v, prec))
	if g != nil {
		fmt.Fprintln(r.w, goalNote(*g, v))
	}
}

// note prints a note line; it never starts with "bench ".
func (r *reporter) note(format string, a ...any) {
	fmt.Fprintf(r.w, "  "+format+"\n", a...)
}

// Run measures every figure. root is the repository checkout (where
// magefile.go and the real recipes are); out receives the figure lines and
// notes. The stack figures need root (provisioning installs packages and
// registers arm64 emulation); without it they are reported as an error
// after the other figures.
func Run(ctx context.Context, root string, out io.Writer) error {
	r := &reporter{w: out}
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	var errs []error
	fail := func(fig string, err error) {
		r.note("%s not measured: %v", fig, err)
		errs = append(errs, fmt.Errorf("%s: %w", fig, err))
	}

	if err := planMatrix(r, root); err != nil {
		fail(FigPlanMatrix, err)
	}

	tmp, err := os.MkdirTemp("", "envs-bench-")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if os.Getenv(KeepEnv) == "1" {
		r.note("%s=1: keeping the work directory %s (tool logs run-*.log, artifacts, repositories)", KeepEnv, tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	start := time.Now()
	tool, err := compileTool(ctx, root, tmp)
	if err != nil {
		fail(FigDryRunPublish, err)
		fail("stack figures", errors.New("no compiled tool"))
		return errors.Join(errs...)
	}
	r.note("compiled the tool with `go run magefile.go -compile` in %s", time.Since(start).Round(100*time.Millisecond))

	if err := dryRunPublish(ctx, r, root, tool); err != nil {
		fail(FigDryRunPublish, err)
	}

	if os.Geteuid() != 0 {
		fail("stack figures ("+FigScheduler+", "+FigCriticalPath+", "+FigRepublish+", "+FigNGCCopyBytes+", "+FigCacheRebuild+", "+FigNoCacheRebuild+", "+FigLocalBuildOverhead+", "+FigLocalBuildLoadOverhead+")",
			errors.New("they need root: provisioning the build stack installs Debian packages and registers arm64 emulation with binfmt_misc; run `go run magefile.go bench` as root"))
		return errors.Join(errs...)
	}
	if err := stackFigures(ctx, r, root, tool, filepath.Join(tmp, "stack"), fail); err != nil {
		fail("stack figures", err)
	}
	if err := localBuildFigures(ctx, r, tool, filepath.Join(tmp, "engine")); err != nil {
		fail(FigLocalBuildOverhead+", "+FigLocalBuildLoadOverhead, err)
	}
	return errors.Join(errs...)
}
