package targets

import (
	"context"
	"os"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/inputs"
	"github.com/determined-ai/environments/magefiles/publish"
	"github.com/determined-ai/environments/magefiles/registry"
)

func publishImages(ctx context.Context, images []string, ngc bool) error {
	ctx, cancel := withCleanupTime(ctx)
	defer cancel()
	e, err := load(ctx)
	if err != nil {
		return err
	}
	opts := publish.Options{Images: images, Dockerhub: true, NGC: ngc && e.Settings.NGCPublish, Lease: true}
	if e.Settings.CheckInputs {
		src, err := inputs.ParseSources(os.LookupEnv)
		if err != nil {
			return err
		}
		opts.Inputs = inputs.NewChecker(e.Settings.Mirrors, src, false)
	}
	_, err = publish.Run(ctx, e, registry.New(registry.WithMirrors(e.Settings.Mirrors)), opts)
	return err
}

// Publish publishes every image: Docker Hub, then the NGC images to NGC.
// Each image is built with --push, verified in the registry (both tags on
// the built digest, exactly the expected platforms), copied registry to
// registry to NGC and verified there; only then is its artifact file
// written. Up-to-date images are not rebuilt. Reads WITH_MPI, WITH_OFI,
// WITH_NCCL, WITH_AWS_TRACE, NGC_PUBLISH, DOCKERHUB_REGISTRY, REGISTRY_REPO,
// NGC_REGISTRY, ARTIFACTS_DIR, FORCE, ALLOW_DIRTY, JOBS, CACHE, RECIPES_DIR,
// BUILDX_BUILDER, REGISTRY_MIRRORS, DRY_RUN, and CHECK_INPUTS (1: first ask
// every source whether the images' external inputs still exist, as `mage
// inputs -check` does, with INPUT_MIRRORS, PIP_INDEX_URL, INPUTS_JOBS).
func Publish(ctx context.Context) error { return publishImages(ctx, nil, true) }

// PublishDockerhub publishes every image to $DOCKERHUB_REGISTRY/$REGISTRY_REPO only.
// Reads the same variables as publish.
func PublishDockerhub(ctx context.Context) error { return publishImages(ctx, nil, false) }

// PublishNGC publishes the NGC images: to Docker Hub (NGC copies from there), then NGC.
// Does nothing but say so when NGC_PUBLISH is empty. Reads the same
// variables as publish.
func PublishNGC(ctx context.Context) error {
	e, err := load(ctx)
	if err != nil {
		return err
	}
	if !e.Settings.NGCPublish {
		e.Status.Info("NGC publishing is off (NGC_PUBLISH is empty): nothing to publish")
		e.Runner.Note("NGC publishing is off: nothing to do")
		return nil
	}
	var ngc []string
	for _, img := range catalog.All() {
		if img.NGC {
			ngc = append(ngc, img.Name)
		}
	}
	return publishImages(ctx, ngc, true)
}

// PublishImage publishes one image and its base, like the old `make publish-<image>`.
// Reads the same variables as publish.
func PublishImage(ctx context.Context, image string) error {
	if _, err := catalog.Lookup(image); err != nil {
		return err
	}
	return publishImages(ctx, []string{image}, true)
}
