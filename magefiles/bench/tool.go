package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/variant"
)

// compileTool compiles the mage targets into one binary with mage's
// -compile, so that timed runs measure the tool, not `go run`.
func compileTool(ctx context.Context, root, tmp string) (string, error) {
	bin := filepath.Join(tmp, "envs")
	cmd := exec.CommandContext(ctx, "go", "run", "magefile.go", "-compile", bin)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("`go run magefile.go -compile %s` in %s: %w\n%s", bin, root, err, tail(string(out), 3000))
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("`go run magefile.go -compile` made no binary: %w\n%s", err, tail(string(out), 3000))
	}
	return bin, nil
}

// toolEnv is the environment of a tool run: the inherited environment
// without any setting the tool reads (so the caller's shell cannot change a
// figure), plus set.
func toolEnv(set map[string]string) []string {
	drop := append(slices.Clone(variant.Variables), "NO_COLOR", "DOCKER_CONFIG", "BUILDX_BUILDER",
		"INTERNAL_AWS_DS", "INTERNAL_AWS_PATH", "MAGEFILE_VERBOSE", "MAGEFILE_DEBUG")
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(drop, k) {
			env = append(env, kv)
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+set[k])
	}
	return env
}

// timed runs argv in dir with env and returns its wall time and combined
// output; a non-zero exit is an error carrying the output's tail.
func timed(ctx context.Context, dir string, env []string, argv ...string) (time.Duration, []byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if err != nil {
		return took, buf.Bytes(), fmt.Errorf("`%s` in %s: %w\n%s", strings.Join(argv, " "), dir, err, tail(buf.String(), 4000))
	}
	return took, buf.Bytes(), nil
}

// dryRunRuns is how many timed dry runs the median is taken of.
const dryRunRuns = 5

// dryRunPublish times `DRY_RUN=1 <tool> publish` in the checkout (one
// warm-up run, then the median of dryRunRuns). ALLOW_DIRTY=1 is set so that
// the figure does not depend on whether the checkout has uncommitted
// changes; the worktree is still checked (`git status` runs either way).
func dryRunPublish(ctx context.Context, r *reporter, root, tool string) error {
	env := toolEnv(map[string]string{"DRY_RUN": "1", "ALLOW_DIRTY": "1", "NO_COLOR": "1"})
	_, out, err := timed(ctx, root, env, tool, "publish")
	if err != nil {
		return err
	}
	if n, want := bytes.Count(out, []byte("docker buildx build ")), len(catalog.All()); n != want {
		return fmt.Errorf("the dry run printed %d `docker buildx build` lines, want %d (one per image):\n%s", n, want, tail(string(out), 2000))
	}
	var runs []time.Duration
	for i := 0; i < dryRunRuns; i++ {
		d, _, err := timed(ctx, root, env, tool, "publish")
		if err != nil {
			return err
		}
		runs = append(runs, d)
	}
	med, err := Median(runs)
	if err != nil {
		return err
	}
	r.figure(FigDryRunPublish, Ms(med), 1, &Goal{Max: 300, Say: "<= 300"})
	var parts []string
	for _, d := range runs {
		parts = append(parts, fmt.Sprintf("%.0f", Ms(d)))
	}
	r.note("median of %d runs of `DRY_RUN=1 ALLOW_DIRTY=1 <compiled tool> publish` in %s (ms: %s)", dryRunRuns, root, strings.Join(parts, ", "))
	return nil
}

// tail returns the last n bytes of s, cut at a line start.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "...\n" + s
}
