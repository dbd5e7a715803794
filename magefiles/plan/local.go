package plan

import (
	"fmt"
	"strings"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/variant"
)

// Builder drivers of buildx (`docker buildx inspect` says which one a
// builder uses). Only the docker driver builds inside the Docker Engine and
// stores its results in the engine's own image store; every other driver
// (docker-container, remote, kubernetes) keeps them in its own BuildKit and
// must load them into the engine.
const (
	DriverDocker          = "docker"
	DriverDockerContainer = "docker-container"
	DriverRemote          = "remote"
	DriverKubernetes      = "kubernetes"
)

// Arm64 is the platform of localArm64.
const Arm64 = "linux/arm64"

// Local reports whether mode under s builds into the local Docker Engine
// rather than pushing: build without PUSH=1, and localArm64.
func Local(mode Mode, s variant.Settings) bool {
	return mode == LocalArm64 || (mode == Build && !s.Push)
}

// LoadArgs are the argv words that put a local build's one-platform result
// into the Docker Engine: the docker driver's image exporter writes to the
// engine's image store; any other driver sends the image to the engine
// (--load, which needs a reachable engine).
func LoadArgs(driver string) []string {
	if driver == DriverDocker {
		return []string{"--output", "type=image,push=false"}
	}
	return []string{"--load"}
}

// checkPlatformSetting refuses a PLATFORM that the mode cannot honour:
// pushed builds build every platform of each image.
func checkPlatformSetting(s variant.Settings, mode Mode) error {
	if !s.PlatformExplicit {
		return nil
	}
	switch {
	case mode == Publish:
		return fmt.Errorf("PLATFORM=%s: publish builds every platform of each image; PLATFORM only picks the platform of a local build (unset it)", s.Platform)
	case mode == Build && s.Push:
		return fmt.Errorf("PLATFORM=%s: PUSH=1 builds and pushes every platform of each image; PLATFORM only picks the platform of a local build (unset it, or drop PUSH=1)", s.Platform)
	case mode == LocalArm64 && s.Platform != Arm64:
		return fmt.Errorf("PLATFORM=%s: localArm64 builds %s only (unset PLATFORM, or use `build` for %s)", s.Platform, Arm64, s.Platform)
	}
	return nil
}

// localize turns sp into a local build: one platform, loaded into the Docker
// Engine, and, for a derived image, its base stage built in the same build
// (so the build never pulls a base tag from a registry, where a stale or
// foreign image of that name may sit). keepBase keeps the dependency on the
// base image's own build (build loads the base too, and the folded base stage
// then comes from BuildKit's cache); localArm64 builds the one image alone.
func localize(sp *Spec, s variant.Settings, platform string, keepBase bool) error {
	sp.Platforms = []string{platform}
	sp.Push = false
	sp.Load = true
	if sp.Image.Base == "" {
		return nil
	}
	if err := foldBase(sp, s); err != nil {
		return err
	}
	sp.BaseTag = "" // no base image: the base stage is built in the same build
	if !keepBase {
		sp.Base = ""
	}
	return nil
}

// localPlatform is the platform a local build of img loads: PLATFORM when
// set (an image not built for it is refused), else the host's when the image
// is built for it, else the image's first platform (a CUDA image on an arm64
// host is built for linux/amd64, under emulation).
func localPlatform(img catalog.Image, platforms []string, s variant.Settings) (string, error) {
	if contains(platforms, s.Platform) {
		return s.Platform, nil
	}
	if s.PlatformExplicit {
		return "", fmt.Errorf("PLATFORM=%s: image %s is built for %s only; with PLATFORM=%s build one of: %s (or unset PLATFORM)",
			s.Platform, img.Name, strings.Join(platforms, ","), s.Platform, strings.Join(imagesFor(s, s.Platform), ", "))
	}
	return platforms[0], nil
}

// arm64Platform checks that localArm64 can build img.
func arm64Platform(img catalog.Image, platforms []string, s variant.Settings) (string, error) {
	if !contains(platforms, Arm64) {
		return "", fmt.Errorf("image %s is built for %s only, not %s; localArm64 builds one of: %s",
			img.Name, strings.Join(platforms, ","), Arm64, strings.Join(Arm64Images(s), ", "))
	}
	return Arm64, nil
}

// imagesFor are the catalog images built for platform under s.
func imagesFor(s variant.Settings, platform string) []string {
	var out []string
	for _, img := range catalog.All() {
		if contains(Platforms(img, s), platform) {
			out = append(out, img.Name)
		}
	}
	return out
}

// foldBase makes a derived image's build also build the base stage of the
// same recipe first (FRAMEWORK_BASE=base): the base's build arguments first,
// then the image's own that the base does not set.
func foldBase(sp *Spec, s variant.Settings) error {
	base, err := catalog.Lookup(sp.Image.Base)
	if err != nil {
		return err
	}
	baseArgs, err := BuildArgs(base, s)
	if err != nil {
		return err
	}
	n := 1 + len(baseArgs) + len(sp.BuildArgs)
	merged := make([]catalog.Arg, 0, n)
	merged = append(merged, catalog.Arg{Name: "FRAMEWORK_BASE", Value: "base"})
	seen := make(map[string]bool, n)
	seen["FRAMEWORK_BASE"] = true
	for _, list := range [][]catalog.Arg{baseArgs, sp.BuildArgs} {
		for _, a := range list {
			if !seen[a.Name] {
				merged = append(merged, a)
				seen[a.Name] = true
			}
		}
	}
	sp.BuildArgs = merged
	return nil
}
