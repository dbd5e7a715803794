package build

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/plan"
)

// TestLocalBuildLoadsWithTheBuildersDriver: the driver of the builder
// BUILDX_BUILDER names decides how the images reach the engine.
func TestLocalBuildLoadsWithTheBuildersDriver(t *testing.T) {
	for driver, want := range map[string][]string{
		"docker":           {"--output", "type=image,push=false"},
		"docker-container": {"--load"},
		"remote":           {"--load"},
		"kubernetes":       {"--load"},
	} {
		log := fakeDocker(t, "")
		t.Setenv("FAKE_DRIVER", driver)
		e, out := testEnv(t, repoRoot, map[string]string{"PLATFORM": "linux/amd64", "BUILDX_BUILDER": "mine"})
		if err := e.Build(context.Background(), []string{"pt-cpu"}, plan.Build); err != nil {
			t.Fatalf("%s: %v\n%s", driver, err, out)
		}
		specs, err := e.Plan(plan.Request{Images: []string{"pt-cpu"}, Mode: plan.Build, Driver: driver})
		if err != nil {
			t.Fatal(err)
		}
		got := builds(calls(t, log))
		if len(got) != 2 || !slices.Equal(got[0], specs[0].Argv) || !slices.Equal(got[1], specs[1].Argv) {
			t.Fatalf("%s: docker saw\n%q\nwant\n%q\n%q", driver, got, specs[0].Argv, specs[1].Argv)
		}
		for _, argv := range got {
			if tail := argv[len(argv)-1-len(want) : len(argv)-1]; !slices.Equal(tail, want) || slices.Contains(argv, "--push") {
				t.Errorf("%s driver: argv ends %q, want %q then the context", driver, argv[len(argv)-4:], want)
			}
		}
	}
}

func TestLocalBuildChecksTheEngineBeforeBuilding(t *testing.T) {
	log := fakeDocker(t, "")
	t.Setenv("FAKE_ENGINE", "none")
	t.Setenv("DOCKER_HOST", "unix:///nowhere/docker.sock")
	e, _ := testEnv(t, repoRoot, nil)
	err := e.Build(context.Background(), []string{"tf2-cpu"}, plan.Build)
	if err == nil {
		t.Fatal("a local build ran without an engine")
	}
	for _, want := range []string{"no Docker Engine is reachable", "DOCKER_HOST=unix:///nowhere/docker.sock", "Cannot connect", "PUSH=1", "publish need no engine"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	for _, c := range calls(t, log) {
		if len(c) > 2 && c[1] == "buildx" && (c[2] == "build" || c[2] == "create" || c[2] == "inspect") {
			t.Errorf("docker %v ran before the engine check", c[1:])
		}
	}
	// PUSH=1 needs no engine.
	e, out := testEnv(t, repoRoot, map[string]string{"PUSH": "1", "ALLOW_DIRTY": "1"})
	if err := e.Build(context.Background(), []string{"tf2-cpu"}, plan.Build); err != nil {
		t.Errorf("PUSH=1 without an engine: %v\n%s", err, out)
	}
}

func TestLocalBuildEndsWithWhatIsInTheEngine(t *testing.T) {
	fakeDocker(t, "")
	e, out := testEnv(t, repoRoot, map[string]string{"PLATFORM": "linux/amd64"})
	if err := e.Build(context.Background(), []string{"pt-cpu"}, plan.Build); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, ref := range []string{"determinedai/environments:py-3.8-base-cpu-abc1234", "determinedai/environments:py-3.8-pytorch-1.12-cpu-abc1234"} {
		if want := "now in the engine: " + ref + " (linux/amd64); run it with `docker run --rm -it " + ref + "`"; !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestLocalArm64LoadsAndSaysHowToRunIt(t *testing.T) {
	for driver, want := range map[string]string{"docker": "--output type=image,push=false", "remote": "--load"} {
		log := fakeDocker(t, "")
		t.Setenv("FAKE_DRIVER", driver)
		t.Setenv("FAKE_IMAGE_PLATFORM", "linux/arm64")
		e, out := testEnv(t, repoRoot, map[string]string{"BUILDX_BUILDER": "mine"})
		if err := e.Build(context.Background(), []string{"tf2-cpu"}, plan.LocalArm64); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		got := builds(calls(t, log))
		if len(got) != 1 || !strings.Contains(strings.Join(got[0], " "), "--platform linux/arm64 ") || !strings.HasSuffix(strings.Join(got[0], " "), want+" .") {
			t.Errorf("%s driver: docker saw %q, want one arm64 build ending %q", driver, got, want)
		}
		ref := "determinedai/environments:py-3.8-pytorch-1.12-tf-2.11-cpu-abc1234"
		if w := "run it with `docker run --rm -it --platform linux/arm64 " + ref + "`"; !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestAnImageMissingFromTheEngineFailsTheBuild(t *testing.T) {
	fakeDocker(t, "")
	t.Setenv("FAKE_IMAGE_PLATFORM", "none")
	e, out := testEnv(t, repoRoot, nil)
	err := e.Build(context.Background(), []string{"cpu-py-38-base"}, plan.Build)
	if err == nil || !strings.Contains(err.Error(), "cpu-py-38-base was built but determinedai/environments:py-3.8-base-cpu-abc1234 is not in the Docker Engine") {
		t.Errorf("error %v", err)
	}
	if strings.Contains(out.String(), "now in the engine") {
		t.Errorf("claimed an image in the engine:\n%s", out)
	}
	t.Setenv("FAKE_IMAGE_PLATFORM", "linux/arm64")
	e, _ = testEnv(t, repoRoot, map[string]string{"PLATFORM": "linux/amd64"})
	if err := e.Build(context.Background(), []string{"cpu-py-38-base"}, plan.Build); err == nil || !strings.Contains(err.Error(), "built for linux/amd64 but") {
		t.Errorf("wrong platform in the engine: %v", err)
	}
}

// refusedBeforeDocker fails unless err says every one of wants and docker
// (the fakeDocker writing log) never ran.
func refusedBeforeDocker(t *testing.T, err error, log string, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
	if c := calls(t, log); len(c) != 0 {
		t.Errorf("docker ran %d times before the refusal: %q", len(c), c)
	}
}

// gitCheckout makes a git repository with VERSION committed.
func gitCheckout(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "VERSION"), []byte("0.26.4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{{"init", "-q"}, {"add", "VERSION"}, {"-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "x"}} {
		if out, err := exec.Command("git", append([]string{"-C", root}, c...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", c, err, out)
		}
	}
	return root
}

func TestPushBuildRefusesADirtyWorktreeBeforeAnything(t *testing.T) {
	log := fakeDocker(t, "")
	root := gitCheckout(t)
	if err := os.WriteFile(filepath.Join(root, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(repoRoot)
	env := map[string]string{"PUSH": "1", "RECIPES_DIR": abs}
	e, _ := testEnv(t, root, env)
	err := e.Build(context.Background(), []string{"tf2-cpu"}, plan.Build)
	refusedBeforeDocker(t, err, log, "notes.txt", "abc1234", "commit, or ALLOW_DIRTY=1")
	// A local build of the same worktree is fine (nothing is pushed), and
	// so is PUSH=1 with ALLOW_DIRTY=1: every platform, pushed.
	e, out := testEnv(t, root, map[string]string{"RECIPES_DIR": abs})
	if err := e.Build(context.Background(), []string{"tf2-cpu"}, plan.Build); err != nil {
		t.Fatalf("local build of a dirty worktree: %v\n%s", err, out)
	}
	env["ALLOW_DIRTY"] = "1"
	e, out = testEnv(t, root, env)
	if err := e.Build(context.Background(), []string{"tf2-cpu"}, plan.Build); err != nil {
		t.Fatalf("ALLOW_DIRTY=1: %v\n%s", err, out)
	}
	got := builds(calls(t, log))
	if len(got) != 4 {
		t.Fatalf("%d builds, want 2 local then 2 pushed", len(got))
	}
	for _, argv := range got[2:] {
		line := strings.Join(argv, " ")
		if !strings.Contains(line, "--platform linux/amd64,linux/arm64 ") || !strings.HasSuffix(line, " --push "+abs) {
			t.Errorf("PUSH=1 build: %s", line)
		}
	}
}
