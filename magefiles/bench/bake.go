package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/determined-ai/environments/magefiles/build"
	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/variant"
)

// The bake-ratio figures compare a cold `publish` with what a user would run
// instead: `docker buildx bake --push` of the same images. The bake file is
// written from the tool's own plan by BakeFile, so it cannot drift from it.

// bakeFile is the JSON form of a buildx bake file.
type bakeFile struct {
	Group  map[string]bakeGroup  `json:"group"`
	Target map[string]bakeTarget `json:"target"`
}

type bakeGroup struct {
	Targets []string `json:"targets"`
}

type bakeTarget struct {
	Context    string            `json:"context"`
	Dockerfile string            `json:"dockerfile"`
	Target     string            `json:"target"`
	Platforms  []string          `json:"platforms"`
	Args       map[string]string `json:"args"`
	Labels     map[string]string `json:"labels,omitempty"`
	Tags       []string          `json:"tags"`
	Secret     []string          `json:"secret,omitempty"`
}

// FrameworkBaseArg is the recipes' ARG naming the image a framework stage
// starts FROM; "base" makes it the base stage of the same recipe.
const FrameworkBaseArg = "FRAMEWORK_BASE"

// BakeFile turns publish-mode specs into a bake file (JSON) with one target
// per spec, all in the group "default": the same recipe, stage, platforms,
// build arguments, inputs label and Docker Hub tags. A spec built on a base
// image of the plan builds the base stage itself instead
// (FRAMEWORK_BASE=base, the base's build arguments first, then its own), as
// a bake user would write it: bake has no "push the base, then build FROM
// it"; BuildKit builds the shared base stage once for all targets. Nothing
// is pushed unless bake runs with --push. The registry cache (CACHE) is not
// carried over: the figures are cold builds.
func BakeFile(specs []plan.Spec) ([]byte, error) {
	byName := map[string]plan.Spec{}
	for _, sp := range specs {
		byName[sp.Image.Name] = sp
	}
	f := bakeFile{Group: map[string]bakeGroup{"default": {}}, Target: map[string]bakeTarget{}}
	var names []string
	for _, sp := range specs {
		if _, dup := f.Target[sp.Image.Name]; dup {
			return nil, fmt.Errorf("bake file: image %s planned twice", sp.Image.Name)
		}
		if !sp.Push {
			return nil, fmt.Errorf("bake file: image %s is not planned to be pushed; plan in Publish mode", sp.Image.Name)
		}
		dockerfile, err := filepath.Rel(sp.Context, sp.Recipe)
		if err != nil {
			return nil, fmt.Errorf("bake file: recipe %s of image %s is not inside the context %s: %w", sp.Recipe, sp.Image.Name, sp.Context, err)
		}
		args := map[string]string{}
		var secrets []string
		if sp.Base != "" {
			base, ok := byName[sp.Base]
			if !ok {
				return nil, fmt.Errorf("bake file: image %s is built on %s, which is not in the plan", sp.Image.Name, sp.Base)
			}
			if base.Recipe != sp.Recipe {
				return nil, fmt.Errorf("bake file: image %s (%s) and its base %s (%s) have different recipes", sp.Image.Name, sp.Recipe, base.Image.Name, base.Recipe)
			}
			args[FrameworkBaseArg] = "base"
			for _, a := range base.BuildArgs {
				args[a.Name] = a.Value
			}
			secrets = append(secrets, base.Secrets...)
		}
		for _, a := range sp.BuildArgs {
			if _, set := args[a.Name]; !set {
				args[a.Name] = a.Value
			}
		}
		for _, id := range sp.Secrets {
			if !slices.Contains(secrets, id) {
				secrets = append(secrets, id)
			}
		}
		var secretSpecs []string
		for _, id := range secrets {
			secretSpecs = append(secretSpecs, "id="+id+",env="+id)
		}
		f.Target[sp.Image.Name] = bakeTarget{
			Context:    sp.Context,
			Dockerfile: dockerfile,
			Target:     sp.Target,
			Platforms:  slices.Clone(sp.Platforms),
			Args:       args,
			Labels:     map[string]string{plan.InputsLabel: sp.InputsDigest},
			Tags:       sp.Tags.List(),
			Secret:     secretSpecs,
		}
		names = append(names, sp.Image.Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("bake file: no images")
	}
	f.Group["default"] = bakeGroup{Targets: names}
	return json.MarshalIndent(f, "", "  ")
}

// BakePhases splits publish-mode specs into the two bake files of a
// two-phase bake, the chain publish itself follows (content-addressed
// publishing: an image is built FROM its base's pushed digest): phase 1
// builds and pushes every image without a catalog base (the bases and the
// ROCm image) as BakeFile does; phase2, given the digests phase 1 pushed
// (image name -> digest, from bake's --metadata-file), builds the others,
// each FROM its base's hashed tag by digest (plan.Pin), not from a stage of
// its own. It measures what that chain costs bake, apart from what the tool
// adds (verification, NGC copies, artifacts, one build client per image).
func BakePhases(specs []plan.Spec) (phase1 []byte, phase2 func(digests map[string]string) ([]byte, error), err error) {
	var bases, rest []plan.Spec
	for _, sp := range specs {
		if sp.Base == "" {
			bases = append(bases, sp)
		} else {
			rest = append(rest, sp)
		}
	}
	if len(bases) == 0 || len(rest) == 0 {
		return nil, nil, fmt.Errorf("two-phase bake: %d images without a base and %d on one; need both", len(bases), len(rest))
	}
	if phase1, err = BakeFile(bases); err != nil {
		return nil, nil, err
	}
	phase2 = func(digests map[string]string) ([]byte, error) {
		var pinned []plan.Spec
		for _, sp := range rest {
			d := digests[sp.Base]
			if d == "" {
				return nil, fmt.Errorf("two-phase bake: no pushed digest of %s, the base of %s", sp.Base, sp.Image.Name)
			}
			sp = plan.Pin(sp, map[string]string{sp.BaseTag: d})
			sp.Base = "" // FROM the pushed base, not its stage
			pinned = append(pinned, sp)
		}
		return BakeFile(pinned)
	}
	return phase1, phase2, nil
}

// Figure names of the bake comparison.
const (
	FigBakeRatio        = "bake-ratio"          // default JOBS
	FigBakeRatioAllJobs = "bake-ratio-all-jobs" // JOBS = number of images
	bakeRatioGoal       = 1.10
	// The two-phase bake (BakePhases) over bake, and the default publish
	// over the two-phase bake: what the FROM-by-digest chain costs bake
	// itself, and what the tool adds to that chain.
	FigBakeTwoPhaseRatio       = "bake-two-phase-ratio"
	FigPublishOverTwoPhaseBake = "publish-over-two-phase-bake"
)

// bakeRounds is how many interleaved rounds (bake, publish at the default
// JOBS, publish with JOBS = number of images) the medians are taken of; every
// publish must succeed, so this is also the "cold publishes in a row" check.
var bakeRounds = 5

// bakeRatio runs bakeRounds rounds of: `docker buildx bake --push` of a bake
// file written by BakeFile from the plan, a cold `publish` with the default
// JOBS, and a cold `publish` with JOBS = the number of images; each into a
// fresh repository (and a fresh commit), the builder's cache pruned before
// each. The figures are the medians of the rounds' ratios.
func (b *stackBench) bakeRatio(ctx context.Context) error {
	n := len(catalog.All())
	var bakes, twos, defs, alls []time.Duration
	var rDef, rAll, rTwo, rOver []float64
	defaults, err := variant.Parse(variant.MapLookup(nil), benchVersion, "abc1234")
	if err != nil {
		return err
	}
	defJobs := defaults.Jobs // what the tool runs with JOBS unset, on this machine
	for round := 1; round <= bakeRounds; round++ {
		load := loadAvg()
		bake, err := b.bakeOnce(ctx, fmt.Sprintf("bake-%d", round))
		if err != nil {
			return err
		}
		two, err := b.bakeTwoPhaseOnce(ctx, fmt.Sprintf("bake-two-phase-%d", round))
		if err != nil {
			return err
		}
		if err := b.prune(ctx); err != nil {
			return err
		}
		def, err := b.publishFresh(ctx, fmt.Sprintf("bake-default-%d", round), 0, false)
		if err != nil {
			return fmt.Errorf("cold publish %d of %d with the default JOBS: %w", round, bakeRounds, err)
		}
		if err := b.prune(ctx); err != nil {
			return err
		}
		all, err := b.publishFresh(ctx, fmt.Sprintf("bake-all-%d", round), n, false)
		if err != nil {
			return fmt.Errorf("cold publish %d of %d with JOBS=%d: %w", round, bakeRounds, n, err)
		}
		if err := b.prune(ctx); err != nil {
			return err
		}
		bakes, twos, defs, alls = append(bakes, bake), append(twos, two), append(defs, def.wall), append(alls, all.wall)
		r3, err := Ratio(two, bake)
		if err != nil {
			return err
		}
		r4, err := Ratio(def.wall, two)
		if err != nil {
			return err
		}
		rTwo, rOver = append(rTwo, r3), append(rOver, r4)
		r1, err := Ratio(def.wall, bake)
		if err != nil {
			return err
		}
		r2, err := Ratio(all.wall, bake)
		if err != nil {
			return err
		}
		rDef, rAll = append(rDef, r1), append(rAll, r2)
		b.r.note("round %d (load before: %s): bake %s, two-phase bake %s (ratio %.3f), publish default JOBS %s (ratio %.3f; %.3f over the two-phase bake), publish JOBS=%d %s (ratio %.3f)",
			round, load, bake.Round(10*time.Millisecond), two.Round(10*time.Millisecond), r3, def.wall.Round(10*time.Millisecond), r1, r4, n, all.wall.Round(10*time.Millisecond), r2)
	}
	medDef, err := MedianRatio(rDef)
	if err != nil {
		return err
	}
	medAll, err := MedianRatio(rAll)
	if err != nil {
		return err
	}
	b.r.figure(FigBakeRatio, medDef, 3, &Goal{Max: bakeRatioGoal, Say: fmt.Sprintf("<= %.2f", bakeRatioGoal)})
	b.r.figure(FigBakeRatioAllJobs, medAll, 3, nil)
	medTwo, err := MedianRatio(rTwo)
	if err != nil {
		return err
	}
	medOver, err := MedianRatio(rOver)
	if err != nil {
		return err
	}
	b.r.figure(FigBakeTwoPhaseRatio, medTwo, 3, nil)
	b.r.figure(FigPublishOverTwoPhaseBake, medOver, 3, nil)
	var med [4]time.Duration
	for i, ds := range [][]time.Duration{bakes, twos, defs, alls} {
		if med[i], err = Median(ds); err != nil {
			return err
		}
	}
	mb, mt, md, ma := med[0], med[1], med[2], med[3]
	b.r.note("medians of %d rounds: bake %s, two-phase bake %s, publish (default JOBS=%d) %s, publish (JOBS=%d) %s; load after: %s",
		bakeRounds, mb.Round(10*time.Millisecond), mt.Round(10*time.Millisecond), defJobs, md.Round(10*time.Millisecond), n, ma.Round(10*time.Millisecond), loadAvg())
	b.r.note("%d cold publishes with the default JOBS and %d with JOBS=%d, in a row: all succeeded (every image built, verified, NGC copies and artifact files written)",
		bakeRounds, bakeRounds, n)
	return nil
}

// bakeOnce writes a bake file from the plan of a fresh repository and
// namespace and times `docker buildx bake --push` of it, the cache pruned first.
func (b *stackBench) bakeOnce(ctx context.Context, label string) (time.Duration, error) {
	repo, specs, err := b.freshPlan(ctx, label)
	if err != nil {
		return 0, err
	}
	file, err := BakeFile(specs)
	if err != nil {
		return 0, err
	}
	path := filepath.Join(repo.dir, "docker-bake.json")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		return 0, err
	}
	if err := b.prune(ctx); err != nil {
		return 0, err
	}
	b.runs++
	start := time.Now()
	out, err := b.st.Docker(ctx, repo.dir, "buildx", "bake", "--builder", b.st.Builder, "--progress", "plain", "--file", path, "--push")
	wall := time.Since(start)
	_ = os.WriteFile(filepath.Join(b.work, fmt.Sprintf("run-%02d-%s.log", b.runs, label)), out, 0o644)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", label, err)
	}
	return wall, checkPushed(ctx, label, specs)
}

// freshPlan makes a fresh benchmark repository (its own commit) and plans
// every image in Publish mode into its own namespace, bench-<label>.
func (b *stackBench) freshPlan(ctx context.Context, label string) (*benchRepo, []plan.Spec, error) {
	repo, err := newRepo(ctx, filepath.Join(b.work, "repo-"+label), label)
	if err != nil {
		return nil, nil, err
	}
	hash, err := gitOut(ctx, repo.dir, "rev-parse", "--short", "HEAD")
	if err != nil {
		return nil, nil, err
	}
	s, err := variant.Parse(variant.MapLookup(b.baseSettings("bench-"+label)), benchVersion, hash)
	if err != nil {
		return nil, nil, err
	}
	s.Builder = b.st.Builder
	specs, err := plan.Plan(s, plan.Request{Images: catalog.Names(), Mode: plan.Publish, Sources: build.NewSources(repo.dir)})
	if err != nil {
		return nil, nil, err
	}
	return repo, specs, nil
}

// checkPushed fails unless every tag of specs is in the registry with the
// planned platforms.
func checkPushed(ctx context.Context, label string, specs []plan.Spec) error {
	c := registry.New()
	for _, sp := range specs {
		if _, err := c.Verify(ctx, sp.Tags.List(), "", sp.Platforms); err != nil {
			return fmt.Errorf("%s: %s was not pushed as planned: %w", label, sp.Image.Name, err)
		}
	}
	return nil
}

// bakeTwoPhaseOnce times a two-phase bake (BakePhases) of a fresh
// repository and namespace, the cache pruned first: phase 1 with
// --metadata-file, then phase 2 FROM the digests it reports, both --push.
func (b *stackBench) bakeTwoPhaseOnce(ctx context.Context, label string) (time.Duration, error) {
	repo, specs, err := b.freshPlan(ctx, label)
	if err != nil {
		return 0, err
	}
	p1, phase2, err := BakePhases(specs)
	if err != nil {
		return 0, err
	}
	file1, file2 := filepath.Join(repo.dir, "docker-bake-1.json"), filepath.Join(repo.dir, "docker-bake-2.json")
	meta := filepath.Join(b.work, "bake-metadata-"+label+".json")
	if err := os.WriteFile(file1, p1, 0o644); err != nil {
		return 0, err
	}
	if err := b.prune(ctx); err != nil {
		return 0, err
	}
	b.runs++
	logf := filepath.Join(b.work, fmt.Sprintf("run-%02d-%s.log", b.runs, label))
	start := time.Now()
	out, err := b.st.Docker(ctx, repo.dir, "buildx", "bake", "--builder", b.st.Builder, "--progress", "plain", "--file", file1, "--push", "--metadata-file", meta)
	if err != nil {
		_ = os.WriteFile(logf, out, 0o644)
		return 0, fmt.Errorf("%s, phase 1: %w", label, err)
	}
	digests, err := bakeDigests(meta)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", label, err)
	}
	p2, err := phase2(digests)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(file2, p2, 0o644); err != nil {
		return 0, err
	}
	out2, err := b.st.Docker(ctx, repo.dir, "buildx", "bake", "--builder", b.st.Builder, "--progress", "plain", "--file", file2, "--push")
	wall := time.Since(start)
	_ = os.WriteFile(logf, append(out, out2...), 0o644)
	if err != nil {
		return 0, fmt.Errorf("%s, phase 2: %w", label, err)
	}
	return wall, checkPushed(ctx, label, specs)
}

// bakeDigests reads target -> containerimage.digest from a bake
// --metadata-file.
func bakeDigests(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading bake metadata: %w", err)
	}
	var m map[string]map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("bake metadata %s is not JSON: %w", path, err)
	}
	out := map[string]string{}
	for target, md := range m {
		if d, ok := md["containerimage.digest"].(string); ok && strings.HasPrefix(d, "sha256:") {
			out[target] = d
		}
	}
	return out, nil
}

// loadAvg is the first three fields of /proc/loadavg ("?" when unreadable).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
