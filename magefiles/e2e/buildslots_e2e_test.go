//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBuildSlotsBoundHeavyStepsAcrossBuilds runs the recipes' build_slot.sh
// as the recipes do (a RUN step with a cache mount shared by every build on
// the daemon, sharing=shared) in several `docker buildx build`s at once on
// the stack's BuildKit, each step logging its start and end into the shared
// mount while it holds a slot. With BUILD_SLOTS=2, four builds must never
// have more than two steps inside at once, and must reach two; with
// BUILD_SLOTS=4 the same four builds must overlap by more than two (so the
// bound, not the builder, is what held them back). The cache id is the
// test's own, so the real recipes' builds of other tests do not share it.
// It runs on the remote builder and on the stack engine's own builder (the
// docker driver: dockerd 20.10's built-in BuildKit and Dockerfile frontend).
func TestBuildSlotsBoundHeavyStepsAcrossBuilds(t *testing.T) {
	for _, b := range []string{stk.Builder, "default"} {
		t.Run(b, func(t *testing.T) {
			if b == "default" && stk.EngineBridge == "" {
				t.Fatal("the stack's engine has no bridge, so its docker driver cannot run RUN steps (see the stack log)")
			}
			buildSlotsOn(t, b)
		})
	}
}

func buildSlotsOn(t *testing.T, builder string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tools, err := loadInstallPlanTools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base, err := pushInstallPlanBase(ctx, "ubuntu:20.04", tools)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script, err := os.ReadFile(filepath.Join(rootDir, "dockerfile_scripts", "build_slot.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "dockerfile_scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dockerfile_scripts", "build_slot.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	cacheID := fmt.Sprintf("build-slots-test-%d", time.Now().UnixNano())
	mounts := "--mount=type=bind,source=dockerfile_scripts,target=/tmp/det/dockerfile_scripts \\\n" +
		"    --mount=type=cache,id=" + cacheID + ",target=/tmp/det/build-slots,sharing=shared \\\n"
	dockerfile := "ARG BASE\nFROM ${BASE} AS step\nARG ID\nARG SLOTS\nARG LOG\n" +
		"RUN " + mounts +
		"    BUILD_SLOTS=${SLOTS} bash /tmp/det/dockerfile_scripts/build_slot.sh sh -c " +
		"'echo \"start ${ID}\" >> /tmp/det/build-slots/${LOG}; sleep 2; echo \"end ${ID}\" >> /tmp/det/build-slots/${LOG}'\n" +
		"\nFROM ${BASE} AS read\nARG LOG\nARG ID\n" +
		"RUN " + mounts + "    cp /tmp/det/build-slots/${LOG} /log && echo ${ID} > /read-id\n" +
		"FROM scratch AS out\nCOPY --from=read /log /log\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}

	run := func(slots, builds int) int {
		t.Helper()
		log := fmt.Sprintf("log-%d-%d", slots, time.Now().UnixNano())
		var wg sync.WaitGroup
		errs := make([]error, builds)
		for i := range builds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = stk.Docker(ctx, dir, "buildx", "build", "--builder", builder, "--progress", "plain",
					"--target", "step", "--build-arg", "BASE="+base, "--build-arg", fmt.Sprintf("ID=%s-%d", log, i),
					"--build-arg", fmt.Sprintf("SLOTS=%d", slots), "--build-arg", "LOG="+log,
					"--output", "type=cacheonly", ".")
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		out := filepath.Join(t.TempDir(), "out")
		if _, err := stk.Docker(ctx, dir, "buildx", "build", "--builder", builder, "--progress", "plain",
			"--target", "out", "--build-arg", "BASE="+base, "--build-arg", "LOG="+log, "--build-arg", "ID="+log+"-read",
			"--output", "type=local,dest="+out, "."); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(out, "log"))
		if err != nil {
			t.Fatal(err)
		}
		inside, most, starts := 0, 0, 0
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			switch {
			case strings.HasPrefix(line, "start "):
				inside++
				starts++
			case strings.HasPrefix(line, "end "):
				inside--
			default:
				t.Fatalf("unexpected log line %q in:\n%s", line, b)
			}
			most = max(most, inside)
		}
		if starts != builds || inside != 0 {
			t.Fatalf("BUILD_SLOTS=%d: want %d steps started and ended, log:\n%s", slots, builds, b)
		}
		t.Logf("BUILD_SLOTS=%d, %d builds at once: at most %d heavy steps side by side\n%s", slots, builds, most, b)
		return most
	}

	if most := run(2, 4); most != 2 {
		t.Errorf("BUILD_SLOTS=2: %d heavy steps ran side by side, want exactly 2 (the bound, reached)", most)
	}
	if most := run(4, 4); most <= 2 {
		t.Errorf("BUILD_SLOTS=4: only %d heavy steps ran side by side, want more than 2: the builds did not overlap, so the first check proves nothing", most)
	}
}
