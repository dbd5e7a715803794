package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/determined-ai/environments/magefiles/stack"
)

// The local-build figures: a local `build` of an image with a big layer, on
// the Docker Engine of the stack, against a plain `docker build` of the same
// recipe on the same engine.
const (
	FigLocalBuildOverhead     = "local-build-overhead"
	FigLocalBuildLoadOverhead = "local-build-load-overhead"
	// localBuildImage is the image built: the CPU base, whose base stage
	// is the one step edited to write localBuildMiB of random bytes.
	localBuildImage = "cpu-py-38-base"
	localBuildMiB   = 1024
	// localBuildStep is the stand-in recipe's base step; localBuildBig
	// replaces it.
	localBuildStep = `RUN /bin/busybox sleep 3 && echo "bench base install" > /bench-base`
	localBuildGoal = 1.10
	// loadBuilder is the builder of the --load path: a remote builder on
	// the stack's buildkitd, standing in for a docker-container one.
	loadBuilder = "bench-load"
)

// localBuildRounds is how many times each of the plain build and the tool's
// build runs (alternating, each cold); the figure is the median ratio.
var localBuildRounds = 3

// localBuildBig is the step that writes the big layer: one random MiB
// repeated, which costs little CPU to write (the figure is about getting the
// layer into the engine, not making it) and which gzip, whose window is
// 32 KiB, cannot make smaller.
var localBuildBig = fmt.Sprintf(`RUN /bin/busybox dd if=/dev/urandom of=/tmp/block bs=1048576 count=1 2>/dev/null && `+
	`for i in $(/bin/busybox seq %d); do /bin/busybox cat /tmp/block; done > /bench-big && /bin/busybox rm /tmp/block && `+
	`echo "bench base install" > /bench-base`, localBuildMiB)

// engineBench is a stack with a Docker Engine and a repository whose
// localBuildImage has a big layer.
type engineBench struct {
	r      *reporter
	tool   string
	st     *stack.Stack
	work   string
	repo   *benchRepo
	config string // a DOCKER_CONFIG with the engine's own builder and loadBuilder
	runs   int
}

// localBuildFigures starts a stack with a Docker Engine (stopped on return)
// and measures the local-build figures.
func localBuildFigures(ctx context.Context, r *reporter, tool, work string) error {
	start := time.Now()
	tools, err := stack.Provision(ctx, stack.Options{Log: r.w, Engine: true})
	if err != nil {
		return fmt.Errorf("provisioning the stack with an engine: %w", err)
	}
	st, err := stack.Start(ctx, tools, stack.Options{WorkDir: filepath.Join(work, "stack"), Log: r.w, Engine: true})
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Stop(); err != nil {
			r.note("stopping the stack: %v", err)
		}
	}()
	if st.EngineBridge == "" {
		return errors.New("the stack's engine has no bridge: its own builder cannot run RUN steps")
	}
	if err := st.SeedBaseImages(ctx, nil); err != nil {
		return err
	}
	r.note("stack with a Docker Engine ready in %s", time.Since(start).Round(100*time.Millisecond))
	b := &engineBench{r: r, tool: tool, st: st, work: work}
	if err := b.prepare(ctx); err != nil {
		return err
	}
	return b.measure(ctx)
}

// prepare makes the repository (the stand-in recipes with the big step)
// and a DOCKER_CONFIG of its own holding the buildx plugin and loadBuilder.
func (b *engineBench) prepare(ctx context.Context) error {
	repo, err := newRepo(ctx, filepath.Join(b.work, "repo-local"), "local-build")
	if err != nil {
		return err
	}
	if err := repo.edit(ctx, "Dockerfile.cpu", localBuildStep, localBuildBig); err != nil {
		return err
	}
	b.repo = repo
	b.config = filepath.Join(b.work, "docker-config")
	if err := os.MkdirAll(filepath.Join(b.config, "cli-plugins"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.config, "config.json"), []byte("{\"auths\": {}}\n"), 0o600); err != nil {
		return err
	}
	if err := os.Symlink(b.st.Tools().Buildx, filepath.Join(b.config, "cli-plugins", "docker-buildx")); err != nil {
		return err
	}
	_, err = b.docker(ctx, "buildx", "create", "--name", loadBuilder, "--driver", "remote", b.st.BuildkitdAddr)
	return err
}

// env is the environment of every timed command: the engine (DOCKER_HOST),
// the private DOCKER_CONFIG, no BUILDX_BUILDER unless builder is set.
func (b *engineBench) env(builder string) []string {
	set := map[string]string{
		"DOCKER_HOST":        b.st.DockerHost,
		"DOCKER_CONFIG":      b.config,
		"DOCKERHUB_REGISTRY": b.st.Hub + "/determinedai",
		"RECIPES_DIR":        ".",
		"NO_COLOR":           "1",
		"PLATFORM":           "linux/amd64",
		"DOCKER_BUILDKIT":    "1",
	}
	if builder != "" {
		set["BUILDX_BUILDER"] = builder
	}
	return toolEnv(set)
}

// docker runs the docker CLI against the engine (with env's settings).
func (b *engineBench) docker(ctx context.Context, args ...string) (string, error) {
	_, out, err := timed(ctx, b.repo.dir, b.env(""), append([]string{b.st.Tools().Docker}, args...)...)
	return string(out), err
}

// cold removes the built images from the engine and empties the build
// caches of the engine's builder and of the stack's remote builder.
func (b *engineBench) cold(ctx context.Context, tags []string) error {
	for _, t := range tags {
		if out, err := b.docker(ctx, "image", "inspect", t); err == nil {
			if _, err := b.docker(ctx, "rmi", "-f", t); err != nil {
				return err
			}
		} else if !strings.Contains(out, "No such image") {
			return err
		}
	}
	for _, builder := range []string{"default", loadBuilder} {
		if _, err := b.docker(ctx, "buildx", "prune", "--all", "--force", "--builder", builder); err != nil {
			return err
		}
	}
	return nil
}

// timedRun runs argv in the repository with env, keeps its log and returns
// its wall time.
func (b *engineBench) timedRun(ctx context.Context, label string, env []string, argv ...string) (time.Duration, string, error) {
	b.runs++
	wall, out, err := timed(ctx, b.repo.dir, env, argv...)
	_ = os.WriteFile(filepath.Join(b.work, fmt.Sprintf("local-%02d-%s.log", b.runs, label)), out, 0o644)
	return wall, string(out), err
}

// plainBuild is the `docker build` of the tool's build: the same recipe,
// target, platform and build arguments (from its dry run), into the engine.
func (b *engineBench) plainBuild(ctx context.Context) ([]string, []string, error) {
	_, out, err := timed(ctx, b.repo.dir, append(b.env(""), "DRY_RUN=1"), b.tool, "build", localBuildImage)
	if err != nil {
		return nil, nil, err
	}
	var build []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "docker buildx build ") {
			if build != nil {
				return nil, nil, fmt.Errorf("the dry run of `build %s` printed more than one build:\n%s", localBuildImage, out)
			}
			build = strings.Fields(l)
		}
	}
	if build == nil || !strings.HasSuffix(strings.Join(build, " "), " --output type=image,push=false .") {
		return nil, nil, fmt.Errorf("the dry run of `build %s` printed no build on the engine's own builder:\n%s", localBuildImage, out)
	}
	argv := []string{b.st.Tools().Docker, "build", "--progress", "plain"}
	var tags []string
	for i := 0; i+1 < len(build); i++ {
		switch build[i] {
		case "--file", "--target", "--platform", "--build-arg":
			if strings.ContainsRune(build[i+1], '\'') {
				return nil, nil, fmt.Errorf("a quoted argument in %q: the figure's recipe must not need one", build[i+1])
			}
			argv = append(argv, build[i], build[i+1])
		case "--tag":
			tags = append(tags, build[i+1])
		}
	}
	plainTag := "bench/plain-build:" + localBuildImage
	return append(argv, "--tag", plainTag, "."), append(tags, plainTag), nil
}

// measure times, alternately and each cold, the plain `docker build` and
// `build` on the engine's own builder, then `build` with --load through the
// stack's remote builder (what a docker-container builder does).
func (b *engineBench) measure(ctx context.Context) error {
	plain, tags, err := b.plainBuild(ctx)
	if err != nil {
		return err
	}
	var ratios []float64
	var plainWalls, toolWalls []time.Duration
	for i := 0; i < localBuildRounds; i++ {
		if err := b.cold(ctx, tags); err != nil {
			return err
		}
		pw, _, err := b.timedRun(ctx, "docker-build", b.env(""), plain...)
		if err != nil {
			return err
		}
		if err := b.cold(ctx, tags); err != nil {
			return err
		}
		tw, out, err := b.timedRun(ctx, "build", b.env(""), b.tool, "-v", "build", localBuildImage)
		if err != nil {
			return err
		}
		if !strings.Contains(out, "--output type=image,push=false") || strings.Contains(out, "--load") {
			return fmt.Errorf("`build %s` did not run on the engine's own builder:\n%s", localBuildImage, tail(out, 3000))
		}
		if err := b.bigEnough(ctx, tags[0]); err != nil {
			return err
		}
		ratio, err := Ratio(tw, pw)
		if err != nil {
			return err
		}
		ratios = append(ratios, ratio)
		plainWalls, toolWalls = append(plainWalls, pw), append(toolWalls, tw)
	}
	if err := b.cold(ctx, tags); err != nil {
		return err
	}
	lw, out, err := b.timedRun(ctx, "build-load", b.env(loadBuilder), b.tool, "-v", "build", localBuildImage)
	if err != nil {
		return err
	}
	if !strings.Contains(out, " --load .") {
		return fmt.Errorf("`BUILDX_BUILDER=%s build %s` did not use --load:\n%s", loadBuilder, localBuildImage, tail(out, 3000))
	}
	ratio, err := MedianRatio(ratios)
	if err != nil {
		return err
	}
	version, err := b.docker(ctx, "version", "--format", "{{.Server.Version}}")
	if err != nil {
		return err
	}
	pm, err := Median(plainWalls)
	if err != nil {
		return err
	}
	b.r.figure(FigLocalBuildOverhead, ratio, 3, &Goal{Max: localBuildGoal, Say: "<= " + strconv.FormatFloat(localBuildGoal, 'f', 2, 64)})
	loadRatio, err := Ratio(lw, pm)
	if err != nil {
		return err
	}
	b.r.figure(FigLocalBuildLoadOverhead, loadRatio, 3, nil)
	b.r.note("`build %s` (a %d MiB random layer, PLATFORM=linux/amd64) on the stack's dockerd %s, each cold (images removed, build caches pruned): "+
		"plain `docker build` %s, the tool on the engine's own builder %s (median ratio of %d rounds: %s; load average %s)",
		localBuildImage, localBuildMiB, strings.TrimSpace(version), durations(plainWalls), durations(toolWalls), localBuildRounds, floats(ratios), loadAvg())
	b.r.note("the --load path (BUILDX_BUILDER=%s, a remote builder on the stack's buildkitd standing in for a docker-container one): %s, %.2f x the median plain build",
		loadBuilder, lw.Round(100*time.Millisecond), loadRatio)
	return nil
}

// bigEnough fails unless ref in the engine is at least localBuildMiB large.
func (b *engineBench) bigEnough(ctx context.Context, ref string) error {
	out, err := b.docker(ctx, "image", "inspect", "--format", "{{.Size}}", ref)
	if err != nil {
		return err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil || n < localBuildMiB<<20 {
		return fmt.Errorf("%s in the engine is %q bytes, want at least %d MiB (%v)", ref, strings.TrimSpace(out), localBuildMiB, err)
	}
	return nil
}

func durations(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.Round(100 * time.Millisecond).String()
	}
	return strings.Join(s, " ")
}

func floats(fs []float64) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = strconv.FormatFloat(f, 'f', 3, 64)
	}
	return strings.Join(s, " ")
}
