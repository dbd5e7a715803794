package build

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/plan"
)

// ranDocker reports whether docker ran with these first arguments.
func ranDocker(cs [][]string, prefix ...string) bool {
	for _, c := range cs {
		if len(c) > len(prefix) && slices.Equal(c[1:1+len(prefix)], prefix) {
			return true
		}
	}
	return false
}

// TestLocalBuildRunsOnTheEnginesOwnBuilder: without BUILDX_BUILDER a local
// build runs on the docker context's builder, which writes straight into the
// engine: no --load (no tarball export), the builder `mage builder` makes is
// neither looked at nor created, and nothing is said about a fallback.
func TestLocalBuildRunsOnTheEnginesOwnBuilder(t *testing.T) {
	log := fakeDocker(t, "")
	e, out := testEnv(t, repoRoot, map[string]string{"PLATFORM": "linux/amd64"})
	if err := e.Build(context.Background(), []string{"pt-cpu"}, plan.Build); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cs := calls(t, log)
	got := builds(cs)
	if len(got) != 2 {
		t.Fatalf("%d builds: %q", len(got), got)
	}
	for _, argv := range got {
		line := strings.Join(argv, " ")
		if !strings.HasPrefix(line, "docker buildx build --builder default ") || !strings.HasSuffix(line, " --output type=image,push=false .") ||
			slices.Contains(argv, "--load") || strings.Contains(line, "type=docker") {
			t.Errorf("not a build on the engine's builder: %s", line)
		}
	}
	if !ranDocker(cs, "buildx", "inspect", "--bootstrap", "default") {
		t.Errorf("the engine's builder was not inspected: %q", cs)
	}
	if ranDocker(cs, "buildx", "inspect", "--bootstrap", "determined-environments") || ranDocker(cs, "buildx", "create") {
		t.Errorf("the builder of `mage builder` was used: %q", cs)
	}
	if strings.Contains(out.String(), "--load") || strings.Contains(out.String(), "WRN") {
		t.Errorf("a fallback was announced:\n%s", out)
	}
}

// TestLocalBuildOnTheCurrentContextsBuilder: the engine's builder is the
// current docker context's: DOCKER_CONTEXT, else `docker context use`'s
// (config.json), and DOCKER_HOST means the default context.
func TestLocalBuildOnTheCurrentContextsBuilder(t *testing.T) {
	for _, c := range []struct {
		env       map[string]string
		config    string
		want      string
		inspected bool // the fake answers for "default" only
	}{
		{map[string]string{"DOCKER_CONTEXT": "desktop-linux"}, "", "desktop-linux", false},
		{nil, `{"auths": {}, "currentContext": "colima"}`, "colima", false},
		{map[string]string{"DOCKER_HOST": "unix:///run/other.sock", "DOCKER_CONTEXT": "colima"}, "", "default", true},
	} {
		log := fakeDocker(t, "")
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		if c.config != "" {
			if err := os.WriteFile(filepath.Join(os.Getenv("DOCKER_CONFIG"), "config.json"), []byte(c.config), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// The fake's other builders are docker-container ones: a context
		// builder it does not know is not the engine's, so the build
		// falls back; the inspected name is what counts here.
		e, out := testEnv(t, repoRoot, map[string]string{"PLATFORM": "linux/amd64"})
		if err := e.Build(context.Background(), []string{"cpu-py-38-base"}, plan.Build); err != nil {
			t.Fatalf("%v: %v\n%s", c.env, err, out)
		}
		if !ranDocker(calls(t, log), "buildx", "inspect", "--bootstrap", c.want) {
			t.Errorf("%v %s: builder %s not inspected: %q", c.env, c.config, c.want, calls(t, log))
		}
		if line := strings.Join(builds(calls(t, log))[0], " "); strings.Contains(line, "--builder default ") != c.inspected {
			t.Errorf("%v: %s", c.env, line)
		}
	}
}

// TestLocalBuildFallsBackWhenTheEngineCannotBuildThePlatform: an engine
// whose builder lists no linux/arm64 (no emulation) cannot run localArm64:
// the build goes to the builder `mage builder` makes, with --load, and one
// line says why.
func TestLocalBuildFallsBackWhenTheEngineCannotBuildThePlatform(t *testing.T) {
	log := fakeDocker(t, "")
	t.Setenv("FAKE_ENGINE_PLATFORMS", "linux/amd64, linux/amd64/v2, linux/386")
	t.Setenv("FAKE_IMAGE_PLATFORM", "linux/arm64")
	e, out := testEnv(t, repoRoot, nil)
	if err := e.Build(context.Background(), []string{"tf2-cpu"}, plan.LocalArm64); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := builds(calls(t, log))
	if len(got) != 1 {
		t.Fatalf("%d builds: %q", len(got), got)
	}
	line := strings.Join(got[0], " ")
	if !strings.HasPrefix(line, "docker buildx build --builder determined-environments ") || !strings.HasSuffix(line, " --load .") {
		t.Errorf("not the fallback build: %s", line)
	}
	var why []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "--load") {
			why = append(why, l)
		}
	}
	want := `WRN building on builder determined-environments with --load (each image exported from it and loaded into the engine, slower): ` +
		`the Docker Engine's own builder "default" cannot build linux/arm64 (it lists linux/amd64, linux/386; with emulation of that platform it could)`
	if len(why) != 1 || why[0] != want {
		t.Errorf("the reason is not one line %q:\n%s", want, out)
	}
	// PUSH=1 never looks at the engine's builder.
	log = fakeDocker(t, "")
	e, out = testEnv(t, repoRoot, map[string]string{"PUSH": "1", "ALLOW_DIRTY": "1"})
	if err := e.Build(context.Background(), []string{"tf2-cpu"}, plan.Build); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if cs := calls(t, log); ranDocker(cs, "buildx", "inspect", "--bootstrap", "default") || !ranDocker(cs, "buildx", "inspect", "--bootstrap", "determined-environments") {
		t.Errorf("PUSH=1 did not stay on determined-environments: %q", cs)
	}
}

// TestANamedBuilderWinsOverTheEngines: BUILDX_BUILDER is used as it is,
// the engine's builder is not looked at.
func TestANamedBuilderWinsOverTheEngines(t *testing.T) {
	log := fakeDocker(t, "")
	e, out := testEnv(t, repoRoot, map[string]string{"BUILDX_BUILDER": "remote-one", "PLATFORM": "linux/amd64"})
	if err := e.Build(context.Background(), []string{"cpu-py-38-base"}, plan.Build); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	cs := calls(t, log)
	if ranDocker(cs, "buildx", "inspect", "--bootstrap", "default") || strings.Contains(out.String(), "WRN") {
		t.Errorf("the engine's builder was considered: %q\n%s", cs, out)
	}
	if line := strings.Join(builds(cs)[0], " "); !strings.HasPrefix(line, "docker buildx build --builder remote-one ") || !strings.HasSuffix(line, " --load .") {
		t.Errorf("build: %s", line)
	}
}

// creatingEngineDocker is a docker whose engine's builder ("default")
// lists linux/amd64 only and which has no other builder until `docker
// buildx create` makes one.
const creatingEngineDocker = `#!/bin/sh
printf '%s\0' "$@" '
' >> "$FAKE_LOG"
case "$1 $2" in
  "--version "*) echo "Docker version 28.2.2, build e6534b4";;
  "buildx version") echo "github.com/docker/buildx v0.38.2 abc";;
  "version --format") echo linux/amd64;;
  "image inspect") echo linux/arm64;;
  "buildx create") touch "$FAKE_BUILDERS/$4";;
  "buildx inspect")
    if [ "$4" = default ]; then printf 'Name: default\nDriver: docker\nPlatforms: linux/amd64, linux/386\n'; exit 0; fi
    if [ ! -e "$FAKE_BUILDERS/$4" ]; then echo "ERROR: no builder \"$4\" found" >&2; exit 1; fi
    printf 'Name: %s\nDriver: docker-container\nPlatforms: linux/amd64, linux/arm64\n' "$4";;
esac
exit 0
`

// TestTheFallbackBuilderIsCreatedWhenMissing: the fallback of a local build
// is the builder `mage builder` makes, created (docker-container) when it
// does not exist yet, after the line saying why and before the build.
func TestTheFallbackBuilderIsCreatedWhenMissing(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(creatingEngineDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	defaultDockerContext(t)
	log := filepath.Join(dir, "calls")
	t.Setenv("FAKE_LOG", log)
	t.Setenv("FAKE_BUILDERS", t.TempDir())
	e, out := testEnv(t, repoRoot, nil)
	if err := e.Build(context.Background(), []string{"cpu-py-38-base"}, plan.LocalArm64); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	created, built := -1, -1
	for i, c := range calls(t, log) {
		line := strings.Join(c, " ")
		if line == "docker buildx create --name determined-environments --driver docker-container --bootstrap" {
			created = i
		}
		if strings.HasPrefix(line, "docker buildx build --builder determined-environments ") && strings.HasSuffix(line, " --load .") {
			built = i
		}
	}
	if created < 0 || built < created {
		t.Errorf("determined-environments not created before the build (create at %d, build at %d): %q", created, built, calls(t, log))
	}
	if !strings.Contains(out.String(), `WRN building on builder determined-environments with --load`) {
		t.Errorf("no line says why:\n%s", out)
	}
}
