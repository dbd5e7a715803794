package build

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/run"
	"github.com/determined-ai/environments/magefiles/variant"
)

var repoRoot = filepath.Join("..", "..")

var allVariants = []map[string]string{
	{}, {"WITH_MPI": "1"}, {"WITH_MPI": "1", "WITH_OFI": "1"}, {"WITH_MPI": "1", "WITH_NCCL": "1"},
	{"WITH_MPI": "1", "WITH_OFI": "1", "WITH_NCCL": "1"}, {"WITH_MPI": "1", "WITH_OFI": "1", "WITH_NCCL": "1", "WITH_AWS_TRACE": "1"},
	{"CACHE": "registry"},
}

func TestRealRecipesDeclareEveryArgumentOfEveryPlan(t *testing.T) {
	checked := 0
	for _, env := range allVariants {
		s, err := variant.Parse(variant.MapLookup(env), "0.26.4", "abc1234")
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range []plan.Mode{plan.Build, plan.Publish} {
			specs, err := plan.Plan(s, plan.Request{Images: catalog.Names(), Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckArgs(repoRoot, specs); err != nil {
				t.Errorf("%v mode %d: %v", env, mode, err)
			}
			checked += len(specs)
		}
		for _, name := range plan.Arm64Images(s) {
			specs, err := plan.Plan(s, plan.Request{Images: []string{name}, Mode: plan.LocalArm64})
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckArgs(repoRoot, specs); err != nil {
				t.Errorf("localArm64 %s %v: %v", name, env, err)
			}
			checked += len(specs)
		}
	}
	t.Logf("checked %d build specs against the recipes", checked)
}

// fakeDocker puts a `docker` on PATH that records its argv (one record per
// call, arguments NUL-separated, ended by a newline argument: one printf,
// so one write, so calls made at once never interleave) and answers the
// preflight queries: an engine on FAKE_ENGINE (default linux/amd64; "none"
// for no engine) whose own builder (the docker context's, "default") lists
// FAKE_ENGINE_PLATFORMS (default linux/amd64 and linux/arm64), any other
// builder with driver FAKE_DRIVER (default docker-container), and images in
// the engine for FAKE_IMAGE_PLATFORM (default linux/amd64; "none": absent).
// The docker context is the default one: DOCKER_HOST, DOCKER_CONTEXT unset,
// DOCKER_CONFIG empty.
func fakeDocker(t *testing.T, failTarget string) string {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	script := `#!/bin/sh
printf '%s\0' "$@" '
' >> ` + log + `
case "$1 $2" in
  "--version "*) echo "Docker version 28.2.2, build e6534b4"; exit 0;;
  "buildx version") echo "github.com/docker/buildx v0.38.2 abc"; exit 0;;
  "buildx inspect")
    if [ "$4" = default ]; then printf 'Name: default\nDriver: docker\n\nNodes:\nName: default\nPlatforms: %s\n' "${FAKE_ENGINE_PLATFORMS:-linux/amd64, linux/amd64/v2, linux/arm64, linux/386}"; exit 0; fi
    printf 'Name: b\nDriver: %s\n\nNodes:\nPlatforms: linux/amd64, linux/amd64/v2, linux/arm64*\n' "${FAKE_DRIVER:-docker-container}"; exit 0;;
  "version --format")
    if [ "$FAKE_ENGINE" = none ]; then echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1; fi
    echo "${FAKE_ENGINE:-linux/amd64}"; exit 0;;
  "image inspect")
    if [ "$FAKE_IMAGE_PLATFORM" = none ]; then echo "Error: No such image: $6" >&2; exit 1; fi
    echo "${FAKE_IMAGE_PLATFORM:-linux/amd64}"; exit 0;;
esac
for a in "$@"; do
  if [ "$prev" = "--target" ] && [ "$a" = "` + failTarget + `" ]; then echo "failing $a" >&2; exit 1; fi
  prev=$a
done
exit 0
`
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	defaultDockerContext(t)
	return log
}

// defaultDockerContext makes the docker CLI's context the default one
// whatever the machine's: no DOCKER_HOST or DOCKER_CONTEXT, an empty
// DOCKER_CONFIG.
func defaultDockerContext(t *testing.T) {
	t.Helper()
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("DOCKER_CONTEXT", "")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
}

func calls(t *testing.T, log string) [][]string {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, rec := range strings.Split(string(b), "\n\x00") {
		if rec == "" {
			continue
		}
		out = append(out, append([]string{"docker"}, strings.Split(strings.TrimSuffix(rec, "\x00"), "\x00")...))
	}
	return out
}

func testEnv(t *testing.T, root string, env map[string]string) (*Env, *bytes.Buffer) {
	t.Helper()
	s, err := variant.Parse(variant.MapLookup(env), "0.26.4", "abc1234")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := &run.Runner{Out: &out, Err: &out, DryRun: s.DryRun}
	return &Env{Settings: s, Runner: r, Status: run.NewStatus(&out), Root: root}, &out
}

func builds(cs [][]string) [][]string {
	var out [][]string
	for _, c := range cs {
		if len(c) > 2 && c[1] == "buildx" && c[2] == "build" {
			out = append(out, c)
		}
	}
	return out
}

func TestBuildRunsTheBaseThenTheImageWithThePlannedArgv(t *testing.T) {
	log := fakeDocker(t, "")
	e, out := testEnv(t, repoRoot, map[string]string{"JOBS": "2"})
	if err := e.Build(context.Background(), []string{"pt-cpu"}, plan.Build); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// The engine's own builder (the default context's) builds the host's
	// platform here, so the builds run on it.
	specs, err := e.Plan(plan.Request{Images: []string{"pt-cpu"}, Mode: plan.Build, Builder: "default", Driver: plan.DriverDocker})
	if err != nil {
		t.Fatal(err)
	}
	got := builds(calls(t, log))
	if len(got) != 2 || !slices.Equal(got[0], specs[0].Argv) || !slices.Equal(got[1], specs[1].Argv) {
		t.Fatalf("docker saw\n%q\nwant\n%q\n%q", got, specs[0].Argv, specs[1].Argv)
	}
	if !strings.Contains(out.String(), "pt-cpu") || !strings.Contains(out.String(), "done") {
		t.Errorf("no summary table:\n%s", out)
	}
}

func TestAFailedBaseStopsItsImagesAndFailsTheTarget(t *testing.T) {
	log := fakeDocker(t, "base")
	e, out := testEnv(t, repoRoot, nil)
	err := e.Build(context.Background(), []string{"tf2-cpu"}, plan.Build)
	if err == nil || !strings.Contains(err.Error(), "cpu-py-38-base failed") || !strings.Contains(err.Error(), "tf2-cpu skipped") {
		t.Fatalf("error %v\n%s", err, out)
	}
	if n := len(builds(calls(t, log))); n != 1 {
		t.Errorf("%d builds ran, want only the base", n)
	}
}

func TestAnUndeclaredArgumentFailsBeforeAnythingRuns(t *testing.T) {
	log := fakeDocker(t, "")
	dir := t.TempDir()
	for _, f := range []string{"Dockerfile.cpu", "Dockerfile.gpu"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "Dockerfile.cpu" {
			var kept []string
			removed := false
			for _, l := range strings.Split(string(b), "\n") {
				if strings.TrimSpace(l) == "ARG TORCH_PIP" {
					removed = true
					continue
				}
				kept = append(kept, l)
			}
			if !removed {
				t.Fatal("Dockerfile.cpu has no `ARG TORCH_PIP` line to remove")
			}
			b = []byte(strings.Join(kept, "\n"))
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e, _ := testEnv(t, dir, nil)
	err := e.Build(context.Background(), []string{"pt-cpu"}, plan.Build)
	refusedBeforeDocker(t, err, log, "TORCH_PIP", "pt-cpu", "Dockerfile.cpu")
}

func TestDryRunPrintsEveryBuildAndRunsNothing(t *testing.T) {
	log := fakeDocker(t, "")
	e, out := testEnv(t, repoRoot, map[string]string{"DRY_RUN": "1"})
	if err := e.Build(context.Background(), []string{"tf2-gpu", "pt-gpu"}, plan.Build); err != nil {
		t.Fatal(err)
	}
	if c := calls(t, log); len(c) != 0 {
		t.Errorf("dry run called docker: %q", c)
	}
	var lines, notes []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.HasPrefix(l, "# check that ") && strings.Contains(l, "is in the Docker Engine; run it with `docker run --rm -it ") {
			notes = append(notes, l)
		} else if !strings.HasPrefix(l, "# a dry run does not inspect the Docker Engine's own builder default: ") {
			lines = append(lines, l)
		}
	}
	if len(notes) != 3 {
		t.Errorf("dry run does not say what it would check in the engine:\n%s", out)
	}
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "docker buildx build ") || !strings.Contains(lines[0], "--target base") ||
		!strings.Contains(lines[1], "cuda-11.3-pytorch-1.12-tf-2.11-gpu-abc1234") || !strings.Contains(lines[2], "cuda-11.3-pytorch-1.12-gpu-abc1234") {
		t.Errorf("dry run printed:\n%s", out)
	}
}

func TestLocalArm64BuildsTheBaseStageInTheSameBuild(t *testing.T) {
	defaultDockerContext(t)
	e, out := testEnv(t, repoRoot, map[string]string{"DRY_RUN": "1"})
	if err := e.Build(context.Background(), []string{"tf2-cpu"}, plan.LocalArm64); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(out.String())
	for _, want := range []string{"--builder default ", "--platform linux/arm64 ", "--target framework", "--build-arg FRAMEWORK_BASE=base", "--build-arg BASE_IMAGE=ubuntu:20.04", "--build-arg PYTHON_VERSION=3.8.12", "--output type=image,push=false ."} {
		if !strings.Contains(line, want) {
			t.Errorf("missing %q in\n%s", want, line)
		}
	}
	if strings.Contains(line, "--push") || strings.Count(line, "docker buildx build") != 1 {
		t.Errorf("not one local build:\n%s", line)
	}
	e2, _ := testEnv(t, repoRoot, map[string]string{"DRY_RUN": "1"})
	if err := e2.Build(context.Background(), []string{"tf2-gpu"}, plan.LocalArm64); err == nil || !strings.Contains(err.Error(), "cpu-py-38-base, tf2-cpu, tf28-cpu, pt-cpu") {
		t.Errorf("amd64-only image: %v", err)
	}
}

func TestPreflightRefusesABuilderWithoutArm64(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\ncase \"$1 $2\" in\n\"--version \"*) echo 'Docker version 28.2.2';;\n\"buildx version\") echo 'github.com/docker/buildx v0.38.2 x';;\n\"buildx inspect\") echo 'Platforms: linux/amd64';;\n*) echo RAN >> " + filepath.Join(dir, "ran") + ";;\nesac\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	e, _ := testEnv(t, repoRoot, map[string]string{"PUSH": "1", "ALLOW_DIRTY": "1"})
	err := e.Build(context.Background(), []string{"tf2-cpu"}, plan.Build)
	if err == nil || !strings.Contains(err.Error(), "cannot build linux/arm64") || !strings.Contains(err.Error(), "qemu") {
		t.Errorf("error %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("a build ran")
	}
}

func TestOldBuildxIsRefused(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\ncase \"$1 $2\" in\n\"--version \"*) echo 'Docker version 28.2.2';;\n\"buildx version\") echo 'github.com/docker/buildx v0.9.1 x';;\nesac\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	e, _ := testEnv(t, repoRoot, nil)
	err := e.Build(context.Background(), []string{"tf2-cpu"}, plan.Build)
	if err == nil || !strings.Contains(err.Error(), "buildx v0.9.1 is older than 0.15.0") {
		t.Errorf("error %v", err)
	}
}

func TestOutsideAGitCheckoutNothingIsPlanned(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("0.26.4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CEILING_DIRECTORIES", filepath.Dir(dir))
	_, err := Load(context.Background(), dir, false)
	if err == nil || !errors.Is(err, ErrNotCheckout) || !strings.Contains(err.Error(), "git checkout") {
		t.Errorf("error %v", err)
	}
}

func TestMissingDockerIsNamed(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	e, _ := testEnv(t, repoRoot, nil)
	err := e.Build(context.Background(), []string{"tf2-cpu"}, plan.Build)
	if err == nil || !strings.Contains(err.Error(), "docker CLI is missing") {
		t.Errorf("error %v", err)
	}
}

func TestSecretsReachTheBuildOnlyThroughSecretMounts(t *testing.T) {
	const secret = "s3://very-internal/aws-ofi-nccl"
	t.Setenv("INTERNAL_AWS_DS", secret)
	t.Setenv("INTERNAL_AWS_PATH", "trace/plugin.tar.gz")
	root := gitCheckout(t)
	for _, k := range []string{"WITH_MPI", "WITH_OFI", "WITH_NCCL", "WITH_AWS_TRACE", "DRY_RUN"} {
		t.Setenv(k, "1")
	}
	abs, _ := filepath.Abs(repoRoot)
	t.Setenv("RECIPES_DIR", abs)
	e, err := Load(context.Background(), root, true)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	e.Runner.Out, e.Runner.Err = &out, &out
	e.Runner.Note("debug: %s", secret) // a careless note is redacted too
	if err := e.Build(context.Background(), []string{"tf2-gpu"}, plan.Build); err != nil {
		t.Fatal(err)
	}
	printed := out.String()
	if strings.Contains(printed, "very-internal") || strings.Contains(printed, "trace/plugin") {
		t.Errorf("a secret value was printed:\n%s", printed)
	}
	for _, want := range []string{"--secret id=INTERNAL_AWS_DS,env=INTERNAL_AWS_DS", "--secret id=INTERNAL_AWS_PATH,env=INTERNAL_AWS_PATH", "--build-arg WITH_AWS_TRACE=1"} {
		if !strings.Contains(printed, want) {
			t.Errorf("dry run lacks %q:\n%s", want, printed)
		}
	}
	if strings.Contains(printed, "--build-arg INTERNAL_AWS") {
		t.Error("a secret is passed as a build argument")
	}
}

// TestAGoneBaseIsSaidFirstAndStopsOnlyItsImages: the catalog knows that
// gpu-cuda-102-base's CUDA image is deleted; without REGISTRY_MIRRORS the
// build says so before building anything (image, reference, what to do),
// builds nothing on it, and still builds the other images.
func TestAGoneBaseIsSaidFirstAndStopsOnlyItsImages(t *testing.T) {
	log := fakeDocker(t, "")
	e, out := testEnv(t, repoRoot, map[string]string{"PUSH": "1", "ALLOW_DIRTY": "1"})
	err := e.Build(context.Background(), []string{"tf1-gpu", "tf28-gpu"}, plan.Build)
	const want = "gpu-cuda-102-base cannot be built: its base image nvidia/cuda:10.2-cudnn7-devel-ubuntu18.04 does not exist (NVIDIA deleted it"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "tf1-gpu skipped") {
		t.Fatalf("error %v, want it to say %q and that tf1-gpu is skipped\n%s", err, want, out)
	}
	said := strings.Index(out.String(), want)
	first := strings.Index(out.String(), "building ")
	if said < 0 || (first >= 0 && first < said) {
		t.Errorf("the gone base is not said before the first build:\n%s", out)
	}
	for _, w := range []string{"tf1-gpu, built on it", "REGISTRY_MIRRORS=docker.io=HOST[:PORT]"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("the output does not say %q:\n%s", w, out)
		}
	}
	var built []string
	for _, c := range builds(calls(t, log)) {
		built = append(built, strings.Join(c, " "))
	}
	all := strings.Join(built, "\n")
	if len(built) != 2 || !strings.Contains(all, "cuda-11.2-base") || !strings.Contains(all, "tf-2.8") || strings.Contains(all, "cuda-10.2") {
		t.Errorf("builds:\n%s\nwant gpu-cuda-112-base and tf28-gpu only", all)
	}

	// With a mirror that may hold a copy, the build is attempted.
	log = fakeDocker(t, "")
	e, out = testEnv(t, repoRoot, map[string]string{"PUSH": "1", "ALLOW_DIRTY": "1", "REGISTRY_MIRRORS": "docker.io=mirror.example:5000"})
	if err := e.Build(context.Background(), []string{"tf1-gpu"}, plan.Build); err != nil {
		t.Fatalf("with a mirror: %v\n%s", err, out)
	}
	if n := len(builds(calls(t, log))); n != 2 {
		t.Errorf("with a mirror: %d builds, want 2", n)
	}
}
