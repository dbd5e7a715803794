//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/variant"
)

// Local builds: the tool's images land in the stack's Docker Engine
// (DOCKER_HOST of stack.Options.Engine), built by the remote-driver builder,
// as on a workstation with a docker-container builder; and a multi-node
// builder publishes.

// allRegistries are the stack registries a local build must not change.
func allRegistries() []string { return []string{stk.Hub, stk.NGC, stk.Mirror} }

// registriesUnchanged fails when a registry's tags or stored blobs differ
// from before (taken with registrySnapshot).
func registriesUnchanged(t *testing.T, what string, before registrySnapshot) {
	t.Helper()
	if after := registryState(t, allRegistries()...); after != before.tags {
		t.Errorf("%s changed the registries:\nbefore:\n%s\nafter:\n%s", what, before.tags, after)
	}
	if n := added(before.blobs, blobs(t, "hub", "ngc", "mirror")); len(n) > 0 {
		t.Errorf("%s pushed blobs: %v", what, n)
	}
}

type registrySnapshot struct {
	tags  string
	blobs []string
}

func snapshotRegistries(t *testing.T) registrySnapshot {
	t.Helper()
	return registrySnapshot{registryState(t, allRegistries()...), blobs(t, "hub", "ngc", "mirror")}
}

// engineImage is what `docker image inspect` says about ref in the stack's
// engine; ok is false when the engine does not have it.
type engineImage struct {
	Os, Architecture string
	RootFS           struct{ Layers []string }
}

func inspectEngine(t *testing.T, ref string) (engineImage, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := stk.Docker(ctx, "", "image", "inspect", ref)
	if err != nil {
		if strings.Contains(string(out), "No such image") {
			return engineImage{}, false
		}
		t.Fatalf("docker image inspect %s: %v", ref, err)
	}
	var imgs []engineImage
	if err := json.Unmarshal(out, &imgs); err != nil || len(imgs) != 1 {
		t.Fatalf("docker image inspect %s: %v\n%s", ref, err, out)
	}
	return imgs[0], true
}

// inEngine fails unless both tags of sp are in the engine for platform, and
// returns the image.
func inEngine(t *testing.T, sp plan.Spec, platform string) engineImage {
	t.Helper()
	var first engineImage
	for i, ref := range sp.Tags.List() {
		img, ok := inspectEngine(t, ref)
		if !ok {
			t.Fatalf("%s is not in the Docker Engine (docker images)", ref)
		}
		if got := img.Os + "/" + img.Architecture; got != platform {
			t.Errorf("%s in the engine is %s, want %s", ref, got, platform)
		}
		if i == 0 {
			first = img
		} else if !slices.Equal(img.RootFS.Layers, first.RootFS.Layers) {
			t.Errorf("%s and %s are different images", sp.Tags.Hashed, ref)
		}
	}
	return first
}

// engineRun runs argv in a container of the stack's engine (no network).
func engineRun(t *testing.T, platform, ref string, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"run", "--rm", "--network", "none", "--platform", platform, ref}, argv...)
	out, err := stk.Docker(ctx, "", args...)
	if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// savedImage reads ref out of the engine (`docker save`) as a v1.Image.
func savedImage(t *testing.T, ref string) v1.Image {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "image.tar")
	if _, err := stk.Docker(ctx, "", "save", "-o", path, ref); err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatalf("reading docker save of %s: %v", ref, err)
	}
	return img
}

func specNamed(t *testing.T, specs []plan.Spec, name string) plan.Spec {
	t.Helper()
	for _, sp := range specs {
		if sp.Image.Name == name {
			return sp
		}
	}
	t.Fatalf("no %s in the plan", name)
	return plan.Spec{}
}

// saysLoaded fails unless the tool's output ends with the engine line of ref.
func saysLoaded(t *testing.T, r result, ref, platform, run string) {
	t.Helper()
	if want := "now in the engine: " + ref + " (" + platform + "); run it with `" + run + "`"; !strings.Contains(r.out, want) {
		t.Errorf("the output does not say %q:\n%s", want, r.tail(20))
	}
}

// TestLocalBuildGPUTorch: `buildGPUTorch` without PUSH, with no registry
// holding the base: the base and pt-gpu are both in the engine, pt-gpu is
// built on the very base just built (its layers start with the base image's,
// its base stage recorded the base's build arguments), the build never names
// the base tag, and no registry changes.
func TestLocalBuildGPUTorch(t *testing.T) {
	localBuildGPUTorch(t, nil, "--load")
}

// localBuildGPUTorch runs `buildGPUTorch` with the settings over and checks
// it as TestLocalBuildGPUTorch says; output is how the builds must hand the
// image to the engine (--load, or --output type=image,push=false on the
// docker driver). It returns the run.
func localBuildGPUTorch(t *testing.T, over map[string]string, output string) result {
	t.Helper()
	requireTarget(t, "buildGPUTorch")
	sc := newScenario(t, nil, nil)
	_, pub := sc.plan(nil)
	base, pt := specNamed(t, pub, "gpu-cuda-113-base"), specNamed(t, pub, "pt-gpu")
	for _, tag := range append(base.Tags.List(), pt.Tags.List()...) {
		if d := headDigest(t, tag); d != "" {
			t.Fatalf("%s is already in the registry (%s): the scenario needs a base no registry holds", tag, d)
		}
	}
	before := snapshotRegistries(t)
	r := sc.run(over, "-v", "buildGPUTorch")
	if r.code != 0 {
		t.Fatalf("envs buildGPUTorch failed (exit %d):\n%s", r.code, r.tail(80))
	}
	baseImg, ptImg := inEngine(t, base, "linux/amd64"), inEngine(t, pt, "linux/amd64")
	if len(ptImg.RootFS.Layers) <= len(baseImg.RootFS.Layers) || !slices.Equal(ptImg.RootFS.Layers[:len(baseImg.RootFS.Layers)], baseImg.RootFS.Layers) {
		t.Errorf("pt-gpu is not built on the base just built:\nbase layers %v\npt-gpu layers %v", baseImg.RootFS.Layers, ptImg.RootFS.Layers)
	}
	// What the stages' RUN steps recorded, read from the engine's images.
	ptSaved := savedImage(t, pt.Tags.Hashed)
	checkRecords(t, sc.dir, base, "linux/amd64", ptSaved)
	checkRecords(t, sc.dir, pt, "linux/amd64", ptSaved)
	checkRecords(t, sc.dir, base, "linux/amd64", savedImage(t, base.Tags.Hashed))
	if got := engineRun(t, "linux/amd64", pt.Tags.Hashed, "cat", "/etc/determined-build/base/arch"); got != "x86_64" {
		t.Errorf("running pt-gpu: base arch %q", got)
	}
	if strings.Contains(r.out, "BASE_IMAGE="+base.Tags.Hashed) || !strings.Contains(r.out, "FRAMEWORK_BASE=base") || strings.Contains(r.out, "--push") {
		t.Errorf("the builds named the base tag, or did not fold the base stage, or pushed:\n%s", r.tail(80))
	}
	if n := strings.Count(r.out, " "+output+" "); n != 2 {
		t.Errorf("%d builds handed their image to the engine with %s, want 2:\n%s", n, output, r.tail(80))
	}
	for _, sp := range []plan.Spec{base, pt} {
		saysLoaded(t, r, sp.Tags.Hashed, "linux/amd64", "docker run --rm -it "+sp.Tags.Hashed)
	}
	registriesUnchanged(t, "buildGPUTorch", before)
	return r
}

// TestLocalArm64LoadsIntoTheEngine: `localArm64 -image=tf2-cpu` puts an
// arm64 image in the engine that `docker run --platform linux/arm64` runs
// (under QEMU), and changes no registry.
func TestLocalArm64LoadsIntoTheEngine(t *testing.T) {
	localArm64(t, nil)
}

// localArm64 runs `localArm64 -image=tf2-cpu` with the settings over and
// checks it as TestLocalArm64LoadsIntoTheEngine says. It returns the run.
func localArm64(t *testing.T, over map[string]string) result {
	t.Helper()
	requireTarget(t, "localArm64")
	sc := newScenario(t, nil, nil)
	_, pub := sc.plan(nil)
	tf2 := specNamed(t, pub, "tf2-cpu")
	before := snapshotRegistries(t)
	r := sc.run(over, "-v", "localArm64", "-image=tf2-cpu")
	if r.code != 0 {
		t.Fatalf("envs localArm64 -image=tf2-cpu failed (exit %d):\n%s", r.code, r.tail(60))
	}
	inEngine(t, tf2, "linux/arm64")
	if got := engineRun(t, "linux/arm64", tf2.Tags.Hashed, "uname", "-m"); got != "aarch64" {
		t.Errorf("docker run --platform linux/arm64 %s uname -m printed %q, want aarch64", tf2.Tags.Hashed, got)
	}
	checkRecords(t, sc.dir, tf2, "linux/arm64", savedImage(t, tf2.Tags.Hashed))
	saysLoaded(t, r, tf2.Tags.Hashed, "linux/arm64", "docker run --rm -it --platform linux/arm64 "+tf2.Tags.Hashed)
	if _, ok := inspectEngine(t, specNamed(t, pub, "cpu-py-38-base").Tags.Hashed); ok {
		t.Error("localArm64 -image=tf2-cpu also loaded the base image; it builds the one image")
	}
	registriesUnchanged(t, "localArm64", before)
	return r
}

// TestLocalBuildOfAMultiPlatformImage: `build pt-cpu` without PUSH loads
// the host's platform of pt-cpu and its base into the engine and pushes
// nothing, although both are multi-platform images.
func TestLocalBuildOfAMultiPlatformImage(t *testing.T) {
	requireTarget(t, "build")
	sc := newScenario(t, nil, nil)
	_, pub := sc.plan(nil)
	host := variant.HostPlatform()
	before := snapshotRegistries(t)
	r := sc.run(nil, "build", "pt-cpu")
	if r.code != 0 {
		t.Fatalf("envs build pt-cpu failed (exit %d):\n%s", r.code, r.tail(60))
	}
	for _, name := range []string{"cpu-py-38-base", "pt-cpu"} {
		sp := specNamed(t, pub, name)
		if len(sp.Platforms) != 2 {
			t.Fatalf("%s is planned for %v: not a multi-platform image", name, sp.Platforms)
		}
		inEngine(t, sp, host)
		saysLoaded(t, r, sp.Tags.Hashed, host, "docker run --rm -it "+sp.Tags.Hashed)
	}
	if !strings.Contains(r.out, "e2e-record framework arch="+machine[host]) || strings.Contains(r.out, "arch=aarch64") && host != "linux/arm64" {
		t.Errorf("the framework RUN did not run on %s only:\n%s", host, r.tail(60))
	}
	registriesUnchanged(t, "build pt-cpu", before)
}

// TestPushRefusesADirtyWorktree: `PUSH=1 build tf2-cpu` with an uncommitted
// change stops before any build and pushes nothing; with ALLOW_DIRTY=1 it
// builds and pushes every platform (the old Makefile's build).
func TestPushRefusesADirtyWorktree(t *testing.T) {
	requireTarget(t, "build")
	sc := newScenario(t, map[string]string{"REGISTRY_REPO": "environments-dirty"}, nil)
	f, err := os.OpenFile(filepath.Join(sc.dir, "Dockerfile.cpu"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("# an uncommitted change\n")
	f.Close()
	before := snapshotRegistries(t)
	r := sc.run(map[string]string{"PUSH": "1"}, "build", "tf2-cpu")
	if r.code == 0 {
		t.Fatalf("PUSH=1 build from a dirty worktree succeeded:\n%s", r.tail(40))
	}
	for _, want := range []string{"the worktree has changes", "Dockerfile.cpu", sc.hash, "ALLOW_DIRTY=1"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, r.tail(20))
		}
	}
	if strings.Contains(r.out, "building ") || strings.Contains(r.out, "e2e-record") {
		t.Errorf("a build started before the refusal:\n%s", r.tail(40))
	}
	registriesUnchanged(t, "a refused PUSH=1 build", before)

	r = sc.run(map[string]string{"PUSH": "1", "ALLOW_DIRTY": "1"}, "build", "tf2-cpu")
	if r.code != 0 {
		t.Fatalf("PUSH=1 ALLOW_DIRTY=1 build tf2-cpu failed (exit %d):\n%s", r.code, r.tail(60))
	}
	_, pub := sc.plan(nil)
	for _, name := range []string{"cpu-py-38-base", "tf2-cpu"} {
		sp := specNamed(t, pub, name)
		if got := keys(platformImages(t, sp.Tags.Hashed)); !slices.Equal(got, []string{"linux/amd64", "linux/arm64"}) {
			t.Errorf("PUSH=1 pushed %s for %v, want linux/amd64 and linux/arm64", sp.Tags.Hashed, got)
		}
	}
}

// TestMultiNodeBuilderPublishes: a builder of two buildkitd, one per
// platform (joined with `docker buildx create --append`), publishes tf2-cpu
// and its base with both platforms, each platform built on its own node.
func TestMultiNodeBuilderPublishes(t *testing.T) {
	requireTarget(t, "publishImage")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	multi, err := stk.StartMultiNodeBuilder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sc := newScenario(t, map[string]string{"REGISTRY_REPO": "environments-multinode", "NGC_PUBLISH": "", "BUILDX_BUILDER": multi.Name}, nil)
	snaps := map[string]int{}
	for p := range multi.Roots {
		snaps[p] = multi.Snapshots(p)
	}
	r := sc.run(nil, "publishImage", "tf2-cpu")
	if r.code != 0 {
		t.Fatalf("envs publishImage tf2-cpu on a multi-node builder failed (exit %d):\n%s", r.code, r.tail(80))
	}
	_, specs := sc.plan(nil)
	published(t, sc.dir, specs, func(n string) bool { return n == "cpu-py-38-base" || n == "tf2-cpu" })
	for p, before := range snaps {
		if n := multi.Snapshots(p); n <= before {
			t.Errorf("the %s node built nothing (%d snapshots before, %d after)", p, before, n)
		} else {
			t.Logf("the %s node: %d snapshots before, %d after", p, before, n)
		}
	}
}

// TestLocalBuildWithoutAnEngineStopsFirst: with DOCKER_HOST pointing at no
// engine, `build tf2-cpu` stops before any build, saying so and how to fix
// it; `PUSH=1` in the same place needs no engine and builds.
func TestLocalBuildWithoutAnEngineStopsFirst(t *testing.T) {
	requireTarget(t, "build")
	sc := newScenario(t, map[string]string{"REGISTRY_REPO": "environments-noengine"}, nil)
	nowhere := map[string]string{"DOCKER_HOST": "unix://" + filepath.Join(t.TempDir(), "no-engine.sock")}
	before := snapshotRegistries(t)
	r := sc.run(nowhere, "build", "tf2-cpu")
	if r.code == 0 {
		t.Fatalf("a local build without an engine succeeded:\n%s", r.tail(40))
	}
	for _, want := range []string{"no Docker Engine is reachable at DOCKER_HOST=" + nowhere["DOCKER_HOST"], "start Docker", "PUSH=1"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, r.tail(20))
		}
	}
	if strings.Contains(r.out, "building ") || strings.Contains(r.out, "e2e-record") {
		t.Errorf("a build started without an engine:\n%s", r.tail(40))
	}
	registriesUnchanged(t, "a local build without an engine", before)
	nowhere["PUSH"] = "1"
	if r := sc.run(nowhere, "build", "tf2-cpu"); r.code != 0 {
		t.Errorf("PUSH=1 build without an engine failed (exit %d):\n%s", r.code, r.tail(40))
	}
}
