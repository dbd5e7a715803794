package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/stack"
)

const (
	// parallelJobs is JOBS of the parallel publish: every image may build
	// at once. The stand-in steps only sleep, so the two cores are not the
	// limit; the scheduler and the dependency order are what is measured.
	parallelJobs = 17
	// cacheImage is the image of the cache figures (single-platform, on a
	// base that three other images share).
	cacheImage = "pt-gpu"
	// cacheEditOld/New is the edit of its recipe's last RUN step.
	cacheEditOld = "bench framework step 1"
	cacheEditNew = "bench framework step 2"
)

// publishReport is the part of publish-report.json the figures read.
type publishReport struct {
	OK     bool `json:"ok"`
	Images []struct {
		Name            string  `json:"name"`
		Result          string  `json:"result"`
		Error           string  `json:"error"`
		Digest          string  `json:"digest"`
		DurationSeconds float64 `json:"duration_seconds"`
		Tags            struct {
			Dockerhub []string `json:"dockerhub"`
			NGC       []string `json:"ngc"`
		} `json:"tags"`
	} `json:"images"`
}

// durations are the per-image durations of the report.
func (p *publishReport) durations() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, im := range p.Images {
		out[im.Name] = time.Duration(im.DurationSeconds * float64(time.Second))
	}
	return out
}

// expect fails unless every image of the report ended with result.
func (p *publishReport) expect(result string, n int) error {
	var bad []string
	for _, im := range p.Images {
		if im.Result != result {
			bad = append(bad, fmt.Sprintf("%s %s %s", im.Name, im.Result, im.Error))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("want every image %q, got: %s", result, strings.Join(bad, "; "))
	}
	if len(p.Images) != n {
		return fmt.Errorf("want %d images in the report, got %d", n, len(p.Images))
	}
	return nil
}

// expectEach fails unless the report holds exactly the images of want, each
// with its result.
func (p *publishReport) expectEach(want map[string]string) error {
	var bad []string
	for _, im := range p.Images {
		if w, ok := want[im.Name]; !ok || im.Result != w {
			bad = append(bad, fmt.Sprintf("%s %s (want %q) %s", im.Name, im.Result, w, im.Error))
		}
	}
	if len(bad) > 0 || len(p.Images) != len(want) {
		return fmt.Errorf("want %v, got: %s", want, strings.Join(bad, "; "))
	}
	return nil
}

// catalogDeps maps every catalog image to its base.
func catalogDeps() map[string][]string {
	deps := map[string][]string{}
	for _, img := range catalog.All() {
		if img.Base != "" {
			deps[img.Name] = []string{img.Base}
		} else {
			deps[img.Name] = nil
		}
	}
	return deps
}

type stackBench struct {
	r    *reporter
	root string // the checkout (contentFigures compiles a changed copy)
	tool string
	st   *stack.Stack
	work string
	runs int
	// supply are SIGNING_KEY and SBOM_GENERATOR for the stack (every
	// publish signs and attests).
	supply map[string]string
}

// run is one tool run in a benchmark repository.
type run struct {
	label  string
	repo   *benchRepo
	set    map[string]string // settings besides the stack's
	wall   time.Duration
	report *publishReport
}

func (b *stackBench) baseSettings(repoName string) map[string]string {
	return map[string]string{
		"DOCKERHUB_REGISTRY": b.st.Hub + "/determinedai",
		"NGC_REGISTRY":       b.st.NGC + "/ngc",
		"REGISTRY_REPO":      repoName,
		"RECIPES_DIR":        ".",
		"NO_COLOR":           "1",
		"REGISTRY_MIRRORS":   "docker.io=" + b.st.Mirror,
	}
}

// exec runs the tool in repo with the stack's environment, set and a fresh
// ARTIFACTS_DIR, and reads the publish report.
func (b *stackBench) exec(ctx context.Context, label string, repo *benchRepo, set map[string]string, args ...string) (*run, error) {
	b.runs++
	env := map[string]string{}
	for k, v := range b.supply {
		env[k] = v
	}
	for k, v := range set {
		env[k] = v
	}
	for _, kv := range b.st.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	arts := filepath.Join(b.work, fmt.Sprintf("artifacts-%02d-%s", b.runs, label))
	env["ARTIFACTS_DIR"] = arts
	env["PUBLISH_REPORT"] = arts + "-report.json" // never inside ARTIFACTS_DIR
	wall, out, err := timed(ctx, repo.dir, toolEnv(env), append([]string{b.tool}, args...)...)
	_ = os.WriteFile(filepath.Join(b.work, fmt.Sprintf("run-%02d-%s.log", b.runs, label)), out, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s run: %w", label, err)
	}
	raw, err := os.ReadFile(env["PUBLISH_REPORT"])
	if err != nil {
		return nil, fmt.Errorf("%s run wrote no report: %w", label, err)
	}
	var rep publishReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, fmt.Errorf("%s run: reading publish-report.json: %w", label, err)
	}
	return &run{label: label, repo: repo, set: set, wall: wall, report: &rep}, nil
}

// prune empties the builder's local cache, so the next build starts cold.
func (b *stackBench) prune(ctx context.Context) error {
	_, err := b.st.Docker(ctx, "", "buildx", "prune", "--all", "--force", "--builder", b.st.Builder)
	return err
}

// publishAll publishes every image from a fresh repository (new hash, its
// own REGISTRY_REPO, FORCE=1) with JOBS=jobs.
func (b *stackBench) publishAll(ctx context.Context, label string, jobs int) (*run, error) {
	return b.publishFresh(ctx, label, jobs, true)
}

// publishFresh publishes every image from a fresh repository (new hash, its
// own REGISTRY_REPO) with JOBS=jobs (0: the default) and FORCE=1 if force;
// every image must be built.
func (b *stackBench) publishFresh(ctx context.Context, label string, jobs int, force bool) (*run, error) {
	repo, err := newRepo(ctx, filepath.Join(b.work, "repo-"+label), label)
	if err != nil {
		return nil, err
	}
	set := b.baseSettings("bench-" + label)
	if jobs > 0 {
		set["JOBS"] = strconv.Itoa(jobs)
	}
	if force {
		set["FORCE"] = "1"
	}
	rn, err := b.exec(ctx, label, repo, set, "publish")
	if err != nil {
		return nil, err
	}
	if err := rn.report.expect("built", len(catalog.All())); err != nil {
		return nil, fmt.Errorf("%s run: %w", label, err)
	}
	return rn, nil
}

// startStack provisions and starts the stack with the stand-in base images
// and the supply chain's key and SBOM generator stand-in, and returns the
// bench on it and the function that stops it. root is the checkout.
func startStack(ctx context.Context, r *reporter, root, tool, work string) (*stackBench, func(), error) {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, nil, err
	}
	start := time.Now()
	tools, err := stack.Provision(ctx, stack.Options{Log: r.w})
	if err != nil {
		return nil, nil, fmt.Errorf("provisioning the stack: %w", err)
	}
	st, err := stack.Start(ctx, tools, stack.Options{WorkDir: filepath.Join(work, "stack"), Log: r.w})
	if err != nil {
		return nil, nil, err
	}
	stop := func() {
		if err := st.Stop(); err != nil {
			r.note("stopping the stack: %v", err)
		}
	}
	if err := st.SeedBaseImages(ctx, nil); err != nil {
		stop()
		return nil, nil, err
	}
	key, gen, err := st.SeedSupplyChain(ctx, root, work)
	if err != nil {
		stop()
		return nil, nil, err
	}
	r.note("stack ready in %s", time.Since(start).Round(100*time.Millisecond))
	return &stackBench{r: r, root: root, tool: tool, st: st, work: work,
		supply: map[string]string{"SIGNING_KEY": key, "SBOM_GENERATOR": gen}}, stop, nil
}

// stackFigures provisions and starts the stack and measures the figures that
// need it. Figures that cannot be measured are passed to fail; the error
// returned is for a stack that cannot run at all.
func stackFigures(ctx context.Context, r *reporter, root, tool, work string, fail func(string, error)) error {
	b, stop, err := startStack(ctx, r, root, tool, work)
	if err != nil {
		return err
	}
	defer stop()

	par, err := b.schedulerFigures(ctx)
	if err != nil {
		fail(FigScheduler+", "+FigCriticalPath, err)
	}
	if par != nil {
		if err := b.republish(ctx, par); err != nil {
			fail(FigRepublish, err)
		}
		if err := b.ngcCopy(ctx, par); err != nil {
			fail(FigNGCCopyBytes, err)
		}
	} else {
		fail(FigRepublish+", "+FigNGCCopyBytes, fmt.Errorf("no parallel publish to start from"))
	}
	if err := b.cacheFigures(ctx); err != nil {
		fail(FigCacheRebuild+", "+FigNoCacheRebuild, err)
	}
	if err := b.bakeRatio(ctx); err != nil {
		fail(FigBakeRatio+", "+FigBakeRatioAllJobs+", "+FigBakeTwoPhaseRatio+", "+FigPublishOverTwoPhaseBake, err)
	}
	if err := b.contentFigures(ctx, fail); err != nil {
		fail(contentFigureNames, err)
	}
	return nil
}

// schedulerFigures publishes all images one at a time (JOBS=1, the serial
// baseline), prunes the builder, and publishes them again from a fresh
// repository with JOBS=parallelJobs. It returns the parallel run.
func (b *stackBench) schedulerFigures(ctx context.Context) (*run, error) {
	if err := b.prune(ctx); err != nil {
		return nil, err
	}
	serial, err := b.publishAll(ctx, "serial", 1)
	if err != nil {
		return nil, err
	}
	if err := b.prune(ctx); err != nil {
		return nil, err
	}
	par, err := b.publishAll(ctx, "parallel", parallelJobs)
	if err != nil {
		return nil, err
	}
	durs := serial.report.durations()
	cp, chain, err := CriticalPath(durs, catalogDeps())
	if err != nil {
		return par, err
	}
	sum := Sum(durs)
	cpRatio, err := Ratio(cp, sum)
	if err != nil {
		return par, err
	}
	ratio, err := Ratio(par.wall, serial.wall)
	if err != nil {
		return par, err
	}
	limit := cpRatio + schedulerMarginGoal
	b.r.figure(FigScheduler, ratio, 3, &Goal{
		Met: func(v float64) bool { return v <= limit },
		Say: fmt.Sprintf("<= critical-path-ratio + %.2f = %.3f", schedulerMarginGoal, limit),
	})
	b.r.figure(FigCriticalPath, cpRatio, 3, nil)
	b.r.note("serial baseline: `publish` with JOBS=1, FORCE=1, fresh repository: %s wall, per-image durations sum to %s",
		serial.wall.Round(10*time.Millisecond), sum.Round(10*time.Millisecond))
	b.r.note("parallel: `publish` with JOBS=%d, FORCE=1, fresh repository, builder cache pruned before each: %s wall",
		parallelJobs, par.wall.Round(10*time.Millisecond))
	b.r.note("critical path %s: %s", cp.Round(10*time.Millisecond), strings.Join(chain, " -> "))
	return par, nil
}

// republish publishes the parallel run's repository again, nothing changed
// (and without FORCE): every image must be up to date.
func (b *stackBench) republish(ctx context.Context, first *run) error {
	set := map[string]string{}
	for k, v := range first.set {
		set[k] = v
	}
	delete(set, "FORCE")
	again, err := b.exec(ctx, "republish", first.repo, set, "publish")
	if err != nil {
		return err
	}
	if err := again.report.expect("up-to-date", len(catalog.All())); err != nil {
		return fmt.Errorf("republish: %w", err)
	}
	ratio, err := Ratio(again.wall, first.wall)
	if err != nil {
		return err
	}
	b.r.figure(FigRepublish, ratio, 3, &Goal{Max: 0.10, Say: "<= 0.10"})
	b.r.note("republish (same commit, no FORCE, JOBS=%s, all up to date): %s wall, over the parallel publish's %s",
		set["JOBS"], again.wall.Round(10*time.Millisecond), first.wall.Round(10*time.Millisecond))
	return nil
}

// cacheFigures measures rebuilding cacheImage after an edit of its last
// stage's last RUN step, with the builder's local cache pruned (a fresh CI
// machine), with and without CACHE=registry.
func (b *stackBench) cacheFigures(ctx context.Context) error {
	img, err := catalog.Lookup(cacheImage)
	if err != nil {
		return err
	}
	var walls [2]time.Duration
	for i, withCache := range []bool{false, true} {
		label := "nocache"
		if withCache {
			label = "cache"
		}
		repo, err := newRepo(ctx, filepath.Join(b.work, "repo-"+label), label)
		if err != nil {
			return err
		}
		set := b.baseSettings("bench-" + label)
		set["JOBS"] = strconv.Itoa(parallelJobs)
		if withCache {
			set["CACHE"] = "registry"
		}
		set["FORCE"] = "1"
		first, err := b.exec(ctx, label+"-first", repo, set, "publishImage", cacheImage)
		if err != nil {
			return err
		}
		if err := first.report.expect("built", 2); err != nil {
			return fmt.Errorf("%s first publish: %w", label, err)
		}
		if err := repo.edit(ctx, img.Recipe, cacheEditOld, cacheEditNew); err != nil {
			return err
		}
		if err := b.prune(ctx); err != nil {
			return err
		}
		delete(set, "FORCE")
		again, err := b.exec(ctx, label+"-rebuild", repo, set, "publishImage", cacheImage)
		if err != nil {
			return err
		}
		// The edit is in the framework stage: the base's inputs are the
		// same, so it is reused at the new commit; only the image is built.
		if err := again.report.expectEach(map[string]string{img.Base: "reused", img.Name: "built"}); err != nil {
			return fmt.Errorf("%s rebuild: %w", label, err)
		}
		walls[i] = again.wall
		d := again.report.durations()
		b.r.note("%s: `publishImage %s` after editing the last RUN of %s and pruning the builder: %s wall (%s %s, %s %s)",
			label, cacheImage, img.Recipe, again.wall.Round(10*time.Millisecond),
			img.Base, d[img.Base].Round(10*time.Millisecond), img.Name, d[img.Name].Round(10*time.Millisecond))
	}
	b.r.figure(FigCacheRebuild, Sec(walls[1]), 2, &Goal{
		Met: func(v float64) bool { return v < Sec(walls[0]) },
		Say: fmt.Sprintf("< %s (%.2f)", FigNoCacheRebuild, Sec(walls[0])),
	})
	b.r.figure(FigNoCacheRebuild, Sec(walls[0]), 2, nil)
	return nil
}
