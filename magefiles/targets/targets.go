// Package targets holds the mage targets. Each target only parses its input
// and calls the library packages beside it; `mage -l` lists them.
package targets

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/determined-ai/environments/magefiles/build"
	"github.com/determined-ai/environments/magefiles/builder"
	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
)

// cleanupMargin is how long before mage's own deadline (mage -t) the targets
// stop: mage exits at its deadline without waiting for the target, so the
// runner must have interrupted and reaped its processes by then (its
// SIGINT-to-SIGKILL grace is 3s).
const cleanupMargin = 5 * time.Second

// withCleanupTime returns a context that ends cleanupMargin before ctx's
// deadline (or halfway, for very short deadlines).
func withCleanupTime(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := min(cleanupMargin, time.Until(deadline)/2)
	return context.WithDeadline(ctx, deadline.Add(-margin))
}

func load(ctx context.Context) (*build.Env, error) {
	root, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	e, err := build.Load(ctx, root, mg.Verbose())
	if err != nil {
		return nil, err
	}
	if mg.Verbose() || e.Runner.DryRun {
		e.PrintSettings()
	}
	return e, nil
}

func buildImages(ctx context.Context, names []string) error {
	ctx, cancel := withCleanupTime(ctx)
	defer cancel()
	e, err := load(ctx)
	if err != nil {
		return err
	}
	return e.Build(ctx, names, plan.Build)
}

func selectImages(keep func(catalog.Image) bool) []string {
	var out []string
	for _, img := range catalog.All() {
		if keep(img) {
			out = append(out, img.Name)
		}
	}
	return out
}

// Build builds one catalog image and its base into the local Docker Engine.
// Without PUSH=1 nothing is pushed: the image and its base are built for one
// platform (PLATFORM, default this machine's) and loaded into the engine
// (`docker images`), the image with its base stage in the same build, never
// FROM a base tag in a registry; it ends by printing each image and
// `docker run --rm -it REF`. It needs a reachable Docker Engine, no
// credentials. PUSH=1 is the old `make build-<image>`: every platform, pushed
// to the Docker Hub tags, refused from a worktree with uncommitted changes
// unless ALLOW_DIRTY=1. A local build runs on the Docker Engine's own
// builder when it can build the platform, else on determined-environments
// with --load (docs/local-builds.md). Reads WITH_MPI, WITH_OFI, WITH_NCCL,
// WITH_AWS_TRACE, DOCKERHUB_REGISTRY, REGISTRY_REPO, NGC_PUBLISH,
// NGC_REGISTRY, PUSH, PLATFORM, ALLOW_DIRTY, JOBS, CACHE, RECIPES_DIR,
// BUILDX_BUILDER, DRY_RUN, DOCKER_HOST, DOCKER_CONTEXT, DOCKER_CONFIG.
func Build(ctx context.Context, image string) error {
	if _, err := catalog.Lookup(image); err != nil {
		return err
	}
	return buildImages(ctx, []string{image})
}

// BuildCPU builds every CPU image, like build: into the local Docker Engine,
// or with PUSH=1 pushed (the old `make build-cpu`). Reads the same variables as build.
func BuildCPU(ctx context.Context) error {
	return buildImages(ctx, selectImages(func(i catalog.Image) bool { return i.Accel == catalog.CPU }))
}

// BuildGPU builds every CUDA image, like build: into the local Docker Engine,
// or with PUSH=1 pushed (the old `make build-gpu`). Reads the same variables as build.
func BuildGPU(ctx context.Context) error {
	return buildImages(ctx, selectImages(func(i catalog.Image) bool { return i.Accel == catalog.CUDA }))
}

// BuildGPUTorch builds pt-gpu and its CUDA 11.3 base, like build: into the
// local Docker Engine, or with PUSH=1 pushed. Reads the same variables as build.
func BuildGPUTorch(ctx context.Context) error { return buildImages(ctx, []string{"pt-gpu"}) }

// BuildGPUTF builds tf2-gpu and its CUDA 11.3 base, like build: into the
// local Docker Engine, or with PUSH=1 pushed. Reads the same variables as build.
func BuildGPUTF(ctx context.Context) error { return buildImages(ctx, []string{"tf2-gpu"}) }

// BuildDeepspeed builds deepspeed-gpu, gpt-neox-deepspeed-gpu and their base,
// like build: into the local Docker Engine, or with PUSH=1 pushed. Reads the
// same variables as build.
func BuildDeepspeed(ctx context.Context) error {
	return buildImages(ctx, []string{"deepspeed-gpu", "gpt-neox-deepspeed-gpu"})
}

// BuildROCm builds the ROCm image pytorch10-tf27-rocm50, like build: into the
// local Docker Engine, or with PUSH=1 pushed. Reads the same variables as build.
func BuildROCm(ctx context.Context) error { return buildImages(ctx, []string{"pytorch10-tf27-rocm50"}) }

// BuildAll builds every image of the catalog, like build: into the local
// Docker Engine, or with PUSH=1 pushed. Reads the same variables as build.
func BuildAll(ctx context.Context) error { return buildImages(ctx, catalog.Names()) }

// LocalArm64 builds one image for linux/arm64 only and loads it into the local
// Docker Engine, so `docker run --platform linux/arm64 REF` works right after
// (on the docker driver with -o type=image,push=false, on the others with
// --load). A derived image builds its base stage in the same build, so
// nothing is pulled from or pushed to a registry and no credentials are
// needed: this is what runs on an Apple-silicon Mac. Reads WITH_MPI (arm64
// images exist only without it), PLATFORM (linux/arm64 or unset),
// RECIPES_DIR, BUILDX_BUILDER, DRY_RUN, DOCKER_HOST, DOCKER_CONTEXT,
// DOCKER_CONFIG.
func LocalArm64(ctx context.Context,
	image *string, // catalog image to build (default cpu-py-38-base)
) error {
	name := "cpu-py-38-base"
	if image != nil && *image != "" {
		name = *image
	}
	if _, err := catalog.Lookup(name); err != nil {
		return err
	}
	ctx, cancel := withCleanupTime(ctx)
	defer cancel()
	e, err := load(ctx)
	if err != nil {
		return err
	}
	return e.Build(ctx, []string{name}, plan.LocalArm64)
}

// Images prints the catalog: name, base, platforms, Docker Hub tag now, NGC.
// Reads the variant variables (WITH_MPI, WITH_OFI, ...), DOCKERHUB_REGISTRY,
// REGISTRY_REPO, NGC_PUBLISH.
func Images(ctx context.Context) error {
	e, err := load(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tBASE\tPLATFORMS\tDOCKER HUB TAG\tNGC")
	for _, img := range catalog.All() {
		tags, err := plan.DockerhubTags(img, e.Settings)
		if err != nil {
			return err
		}
		base := img.Base
		if base == "" {
			base = img.From
		}
		ngc := "no"
		if plan.GoesToNGC(img, e.Settings) {
			ngc = "yes"
		} else if img.NGC {
			ngc = "off (NGC_PUBLISH empty)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", img.Name, base, strings.Join(plan.Platforms(img, e.Settings), ","), tags.Hashed, ngc)
	}
	return tw.Flush()
}

// Builder creates or reuses the buildx builder and says which platforms it builds.
// With BUILDX_BUILDER set, that builder (remote, kubernetes, multi-node...)
// must exist and is only bootstrapped; otherwise a docker-container builder
// named determined-environments is created once and reused: publishing
// and PUSH=1 build on it, and local builds the engine's own builder cannot
// do. With REGISTRY_MIRRORS set, that builder's BuildKit is created with
// those registry mirrors (an existing one keeps the config it was created
// with: a warning says so). Reads BUILDX_BUILDER, REGISTRY_MIRRORS, DRY_RUN.
func Builder(ctx context.Context) error {
	e, err := load(ctx)
	if err != nil {
		return err
	}
	if e.Runner.DryRun {
		e.Runner.Note("inspect or create buildx builder %s", e.Settings.Builder)
		return nil
	}
	if err := builder.CheckTools(ctx, e.Runner); err != nil {
		return err
	}
	info, err := builder.Ensure(ctx, e.Runner, e.Settings.Builder, e.Settings.BuilderExplicit, e.Settings.Mirrors)
	if err != nil {
		return err
	}
	if w := builder.MirrorsWarning(e.Settings.Builder, e.Settings.BuilderExplicit, info, e.Settings.Mirrors); w != "" {
		e.Status.Warn("%s", w)
	}
	plats := info.Platforms
	e.Status.OK("builder %s (driver %s) builds %s", e.Settings.Builder, info.Driver, strings.Join(plats, ", "))
	// A missing platform is no failure here: a publish or build that needs
	// it refuses before anything is built. Say which images need it.
	for _, p := range builder.Missing(plats, []string{"linux/amd64", "linux/arm64"}) {
		if need := plan.ImagesNeeding(p, e.Settings); len(need) > 0 {
			e.Status.Info("builder %s cannot build %s, which %s need under these settings: %s", e.Settings.Builder, p, strings.Join(need, ", "), builder.EmulationHint)
		} else {
			e.Status.Info("builder %s cannot build %s; no image needs it under these settings", e.Settings.Builder, p)
		}
	}
	return nil
}

// Settings prints the resolved settings and where each image would go.
// Reads every variable the other targets read.
func Settings(ctx context.Context) error {
	e, err := load(ctx)
	if err != nil {
		return err
	}
	for _, l := range e.Settings.Describe() {
		fmt.Println(l)
	}
	return nil
}
