//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/determined-ai/environments/magefiles/variant"
)

// Local builds on the engine's own builder (the docker driver, dockerd
// 20.10's built-in BuildKit, whose RUN steps run on the stack engine's own
// bridge), which a local build uses when BUILDX_BUILDER is unset, and the
// fallback to the builder `mage builder` makes when that builder cannot
// build the platform.

// requireBridge fails the test when the engine's builder cannot run RUN steps.
func requireBridge(t *testing.T) {
	t.Helper()
	if stk.EngineBridge == "" {
		t.Fatal("the stack's engine has no bridge, so its docker driver cannot run RUN steps (see the stack log)")
	}
}

// privateDockerConfig is a DOCKER_CONFIG of the test's own, with the
// stack's buildx plugin and no builder but the docker contexts' own, so
// that a builder the tool creates or uses shows there and nowhere else.
func privateDockerConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "config.json"), "{\"auths\": {}}\n")
	if err := os.MkdirAll(filepath.Join(dir, "cli-plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(stk.Tools().Buildx, filepath.Join(dir, "cli-plugins", "docker-buildx")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// dockerIn runs the docker CLI with the stack's environment but the
// DOCKER_CONFIG config and the settings over (a "" value unsets).
func dockerIn(t *testing.T, config string, over map[string]string, args ...string) (string, error) {
	t.Helper()
	return dockerWith(t, stk.Tools().Docker, config, over, args...)
}

// dockerWith is dockerIn with the docker CLI at bin.
func dockerWith(t *testing.T, bin, config string, over map[string]string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), stk.Env()...)
	cmd.Env = append(cmd.Env, "DOCKER_CONFIG="+config)
	for k, v := range over {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// buildLines are the `docker buildx build` commands a verbose run printed.
func buildLines(r result) []string {
	var out []string
	for _, l := range strings.Split(r.out, "\n") {
		if _, cmd, ok := strings.Cut(l, "exec: docker buildx build "); ok {
			out = append(out, "docker buildx build "+cmd)
		}
	}
	return out
}

// onTheEnginesBuilder fails unless every build of r ran on builder name
// with the engine's image exporter (never --load, never a docker tarball),
// and no other builder was inspected or created: the tool's
// determined-environments does not exist in config.
func onTheEnginesBuilder(t *testing.T, r result, name, config string, builds int) {
	t.Helper()
	lines := buildLines(r)
	if len(lines) != builds {
		t.Errorf("%d builds printed, want %d:\n%s", len(lines), builds, r.tail(60))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "docker buildx build --builder "+name+" ") || !strings.HasSuffix(l, " --output type=image,push=false .") ||
			strings.Contains(l, "--load") || strings.Contains(l, "type=docker") || strings.Contains(l, "type=tar") {
			t.Errorf("not a build on the engine's own builder %s writing to the engine:\n%s", name, l)
		}
	}
	if strings.Contains(r.out, "exec: docker buildx create") || strings.Contains(r.out, "--builder "+variant.DefaultBuilder) ||
		strings.Contains(r.out, "inspect --bootstrap "+variant.DefaultBuilder) || strings.Contains(r.out, "with --load") {
		t.Errorf("the run created or used another builder, or warned:\n%s", r.tail(60))
	}
	if out, err := dockerIn(t, config, nil, "buildx", "inspect", variant.DefaultBuilder); err == nil {
		t.Errorf("builder %s exists after a build on the engine's builder:\n%s", variant.DefaultBuilder, out)
	}
}

// TestLocalBuildOnTheDockerDriver: `buildGPUTorch` with BUILDX_BUILDER unset
// and DOCKER_HOST at the engine (the default context) runs on the engine's
// own builder, `default`: both images in the engine with --output
// type=image,push=false, never --load; determined-environments is neither
// created nor used; the checks of TestLocalBuildGPUTorch hold.
func TestLocalBuildOnTheDockerDriver(t *testing.T) {
	requireBridge(t)
	config := privateDockerConfig(t)
	r := localBuildGPUTorch(t, map[string]string{"BUILDX_BUILDER": "", "DOCKER_CONFIG": config}, "--output type=image,push=false")
	onTheEnginesBuilder(t, r, "default", config, 2)
}

// TestLocalArm64OnTheDockerDriver: `localArm64 -image=tf2-cpu` with
// BUILDX_BUILDER unset, on an engine reached through a docker context made
// current with `docker context use` (as Docker Desktop's desktop-linux is),
// runs on that context's builder (the engine lists linux/arm64: QEMU) and
// leaves an arm64 image in the engine that `docker run --platform
// linux/arm64` runs; no registry changes.
func TestLocalArm64OnTheDockerDriver(t *testing.T) {
	requireBridge(t)
	config := privateDockerConfig(t)
	const name = "e2e-desktop"
	noHost := map[string]string{"DOCKER_HOST": ""}
	for _, args := range [][]string{{"context", "create", name, "--docker", "host=" + stk.DockerHost}, {"context", "use", name}} {
		if out, err := dockerIn(t, config, noHost, args...); err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	r := localArm64(t, map[string]string{"BUILDX_BUILDER": "", "DOCKER_CONFIG": config, "DOCKER_HOST": ""})
	onTheEnginesBuilder(t, r, name, config, 1)
}

// TestLocalBuildFallsBackWhenTheEngineCannotBuildThePlatform: on an engine
// whose own builder does not list linux/arm64 (no emulation), `localArm64
// -image=tf2-cpu` with BUILDX_BUILDER unset says why in one line and builds
// on determined-environments with --load; the image is in the engine and
// runs. Stand-ins: the stack's engine lists linux/arm64 (QEMU is registered
// for the whole machine), so a `docker` in front of the real one drops
// linux/arm64 from its builder's platforms and passes everything else
// through; and determined-environments, which `mage builder` would create
// with the docker-container driver (no privileged container can start
// here), is a remote builder on the stack's buildkitd.
func TestLocalBuildFallsBackWhenTheEngineCannotBuildThePlatform(t *testing.T) {
	config := privateDockerConfig(t)
	if out, err := dockerIn(t, config, nil, "buildx", "create", "--name", variant.DefaultBuilder, "--driver", "remote", stk.BuildkitdAddr); err != nil {
		t.Fatalf("creating the stand-in %s: %v\n%s", variant.DefaultBuilder, err, out)
	}
	wrapper := t.TempDir()
	writeFile(t, filepath.Join(wrapper, "docker"), `#!/bin/sh
# An engine without arm64 emulation: its own builder lists no linux/arm64.
if [ "$1 $2 $3 $4" = "buildx inspect --bootstrap default" ]; then
  out=$(`+stk.Tools().Docker+` "$@"); code=$?
  printf '%s\n' "$out" | sed -e '/Platforms:/s#linux/arm64, ##' -e '/Platforms:/s#, linux/arm64##'
  exit $code
fi
exec `+stk.Tools().Docker+` "$@"
`)
	if err := os.Chmod(filepath.Join(wrapper, "docker"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := dockerWith(t, filepath.Join(wrapper, "docker"), config, nil, "buildx", "inspect", "--bootstrap", "default"); err != nil ||
		strings.Contains(out, "linux/arm64") || !strings.Contains(out, "linux/amd64") {
		t.Fatalf("the stand-in engine's builder (%v):\n%s", err, out)
	}
	r := localArm64(t, map[string]string{"BUILDX_BUILDER": "", "DOCKER_CONFIG": config, "PATH": wrapper + ":" + os.Getenv("PATH")})
	var why []string
	for _, l := range strings.Split(r.out, "\n") {
		if strings.Contains(l, "with --load") {
			why = append(why, l)
		}
	}
	const want = "WRN building on builder " + variant.DefaultBuilder + " with --load (each image exported from it and loaded into the engine, slower): " +
		`the Docker Engine's own builder "default" cannot build linux/arm64 (it lists linux/amd64, linux/386; `
	if len(why) != 1 || !strings.HasPrefix(why[0], want) {
		t.Errorf("the fallback is not said in one line starting %q:\n%s", want, r.tail(60))
	}
	lines := buildLines(r)
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "docker buildx build --builder "+variant.DefaultBuilder+" ") || !strings.HasSuffix(lines[0], " --load .") ||
		strings.Contains(lines[0], "type=image") {
		t.Errorf("not one build on %s with --load:\n%s", variant.DefaultBuilder, strings.Join(lines, "\n"))
	}
}
