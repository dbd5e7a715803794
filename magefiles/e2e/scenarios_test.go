//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/stack"
	"github.com/determined-ai/environments/magefiles/variant"
)

// The scenarios run in this order (cheap ones first). Each uses its own
// repository (so its own <hash>), and the ones that would overwrite another
// scenario's <version> tags use their own REGISTRY_REPO.

// TestRealRecipesPassCheck runs BuildKit's checks (`docker buildx build
// --call=check`) on the real root Dockerfile.cpu/Dockerfile.gpu for every
// build of every published variant, with the tool's own plan (its DRY_RUN
// output in the checkout) and the stand-in bases in the mirror. Any warning
// fails the test with its text.
func TestRealRecipesPassCheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var checks [][]string
	seen := map[string]bool{}
	bases := map[string]bool{}
	// Both plans of buildAll: local (one platform, base stage folded in)
	// and PUSH=1 (every platform, FROM the pushed base), as publish builds.
	for _, combo := range slices.Concat(variant.Matrix(), pushed(variant.Matrix())) {
		settings := map[string]string{"DRY_RUN": "1", "E2E_SCENARIO": "check"}
		for k, v := range combo.Env {
			settings[k] = v
		}
		cmd := exec.CommandContext(ctx, toolBin, "buildAll")
		cmd.Dir = rootDir
		cmd.Env = toolEnv(settings)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("DRY_RUN=1 %v envs buildAll in %s: %v\n%s", combo.Words(), rootDir, err, out)
		}
		n := 0
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(line, "docker buildx build ") {
				continue
			}
			argv, err := splitShell(line)
			if err != nil {
				t.Fatalf("cannot split the printed command %q: %v", line, err)
			}
			n++
			check, base := checkArgv(argv)
			if !strings.Contains(check[len(check)-2], "--call=check") {
				t.Fatalf("rewritten command %v", check)
			}
			if base != "" && !strings.Contains(strings.Split(base, ":")[0], ".") {
				bases[base] = true // a Docker Hub image: served by the mirror
			}
			if key := strings.Join(check, "\x00"); !seen[key] {
				seen[key] = true
				checks = append(checks, check)
			}
		}
		if n != len(catalog.Names()) {
			t.Fatalf("DRY_RUN=1 %v envs buildAll printed %d builds, the catalog has %d images:\n%s", combo.Words(), n, len(catalog.Names()), out)
		}
	}
	// The framework images' BASE_IMAGE are Docker Hub tags that do not
	// exist: put stand-ins under those names in the mirror.
	idx, err := stack.StandInIndex(ctx, stk.Tools())
	if err != nil {
		t.Fatal(err)
	}
	// A CUDA base pushed by the tool sets LD_LIBRARY_PATH (Dockerfile.gpu's
	// base stage), which the framework stage extends: its stand-in carries
	// that ENV as the real base does, or the check could not see it.
	cudaIdx, err := withEnv(idx, "LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64")
	if err != nil {
		t.Fatal(err)
	}
	for b := range bases {
		if slices.Contains(stack.DefaultBaseImages, b) || slices.Contains(stack.DefaultBaseImages, "docker.io/library/"+b) {
			continue
		}
		dst, err := stk.MirrorRef(b)
		if err != nil {
			t.Fatal(err)
		}
		standIn := idx
		if strings.Contains(b, ":cuda-") {
			standIn = cudaIdx
		}
		if err := remote.WriteIndex(dst, standIn, remote.WithContext(ctx)); err != nil {
			t.Fatalf("pushing a stand-in for %s: %v", b, err)
		}
	}
	// A canary: a recipe with a known warning must be caught the same way.
	canary := t.TempDir()
	writeFile(t, filepath.Join(canary, "Dockerfile"), "FROM ubuntu:20.04 as base\nRUN true\n")
	if out, err := stk.Docker(ctx, canary, "buildx", "build", "--builder", stk.Builder, "--call=check", "."); err == nil ||
		strings.Contains(string(out), "Check complete, no warnings found") || !strings.Contains(string(out), "FromAsCasing") {
		t.Fatalf("a check of a recipe with a FromAsCasing warning was not caught (%v):\n%s", err, out)
	}
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, argv := range checks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out, err := stk.Docker(ctx, rootDir, argv[1:]...)
			text := string(out)
			if err != nil || !strings.Contains(text, "Check complete, no warnings found") {
				mu.Lock()
				defer mu.Unlock()
				t.Errorf("docker %s\nfound problems (%v):\n%s", strings.Join(argv[1:], " "), err, checkOutput(text))
			}
		}()
	}
	wg.Wait()
	t.Logf("%d distinct checks (3 variants x %d images, local and PUSH=1) in %s", len(checks), len(catalog.Names()), time.Since(start).Round(time.Millisecond))
}

// pushed returns the combos with PUSH=1 (and ALLOW_DIRTY=1: the checkout
// may have uncommitted changes while it is being worked on).
func pushed(combos []variant.Combo) []variant.Combo {
	var out []variant.Combo
	for _, c := range combos {
		env := map[string]string{"PUSH": "1", "ALLOW_DIRTY": "1"}
		for k, v := range c.Env {
			env[k] = v
		}
		out = append(out, variant.Combo{Name: c.Name + "-push", Env: env})
	}
	return out
}

// checkOutput keeps the warning lines of a check's output (all of it when
// there are none to keep it readable).
func checkOutput(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "WARNING") || strings.Contains(l, "warning") || strings.Contains(l, "Check complete") ||
			strings.Contains(l, "ERROR") || strings.HasPrefix(strings.TrimSpace(l), "Dockerfile") || strings.HasPrefix(l, " ") {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return s
	}
	return strings.Join(keep, "\n")
}

// checkArgv turns a printed build into a check: no outputs, tags,
// attestations or metadata, --call=check; it also returns the BASE_IMAGE
// it passes.
func checkArgv(argv []string) (out []string, base string) {
	withValue := map[string]bool{"--output": true, "-o": true, "--metadata-file": true, "--tag": true, "-t": true, "--cache-to": true, "--cache-from": true, "--attest": true}
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "--push" || a == "--load":
		case withValue[a]:
			i++
		case strings.HasPrefix(a, "--output=") || strings.HasPrefix(a, "--tag=") || strings.HasPrefix(a, "--metadata-file="):
		default:
			if a == "--build-arg" && i+1 < len(argv) {
				if v, ok := strings.CutPrefix(argv[i+1], "BASE_IMAGE="); ok {
					base = v
				}
			}
			out = append(out, a)
		}
	}
	ctx := out[len(out)-1]
	out = append(out[:len(out)-1], "--call=check", ctx)
	return out, base
}

// splitShell splits a line printed by the tool (POSIX shell words with
// single quotes, as run.Quote writes them).
func splitShell(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted:
			if c == '\'' {
				quoted = false
			} else {
				cur.WriteByte(c)
			}
		case c == '\'':
			quoted, inWord = true, true
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.IndexByte("\"$`|&;<>()*?[]{}~#", c) >= 0:
			return nil, fmt.Errorf("unexpected shell character %q at %d", c, i)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// TestLocalArm64 builds the default image and tf2-cpu for linux/arm64 only:
// both succeed, the RUN steps run under arm64 emulation, and neither Docker
// Hub nor NGC changes.
func TestLocalArm64(t *testing.T) {
	requireTarget(t, "localArm64")
	sc := newScenario(t, nil, nil)
	before, beforeBlobs := registryState(t, stk.Hub, stk.NGC), blobs(t, "hub", "ngc")
	for _, c := range []struct {
		args  []string
		stage string
	}{
		{[]string{"localArm64"}, "base"},
		{[]string{"localArm64", "-image=tf2-cpu"}, "framework"},
	} {
		r := sc.run(nil, c.args...)
		if r.code != 0 {
			t.Fatalf("envs %s failed (exit %d):\n%s", strings.Join(c.args, " "), r.code, r.tail(60))
		}
		if !strings.Contains(r.out, "e2e-record "+c.stage+" arch=aarch64") {
			t.Errorf("envs %s: the %s stage's RUN did not report running on aarch64:\n%s", strings.Join(c.args, " "), c.stage, r.tail(60))
		}
		if strings.Contains(r.out, "arch=x86_64") {
			t.Errorf("envs %s built for amd64 too:\n%s", strings.Join(c.args, " "), r.tail(60))
		}
	}
	if after := registryState(t, stk.Hub, stk.NGC); after != before {
		t.Errorf("localArm64 changed the registries:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if n := added(beforeBlobs, blobs(t, "hub", "ngc")); len(n) > 0 {
		t.Errorf("localArm64 pushed blobs: %v", n)
	}
}

// TestBuildAllPush builds every image with `PUSH=1 buildAll` (the build path
// without publish): every Docker Hub tag holds what the plan says.
func TestBuildAllPush(t *testing.T) {
	requireTarget(t, "buildAll")
	over := map[string]string{"PUSH": "1", "REGISTRY_REPO": "environments-build"}
	sc := newScenario(t, over, nil)
	ngcBefore := registryState(t, stk.NGC)
	r := sc.run(nil, "buildAll")
	if r.code != 0 {
		t.Fatalf("PUSH=1 envs buildAll failed (exit %d):\n%s", r.code, r.tail(80))
	}
	// build pins nothing by digest: its images carry the inputs of the plan
	// before pinning (BASE_IMAGE and external images by tag).
	_, specs := sc.unpinnedPlan(nil)
	for i := range specs {
		specs[i].NGCTags = plan.Tags{} // build never pushes to NGC
	}
	published(t, sc.dir, specs, nil)
	// Show what one RUN step recorded, as evidence in the log.
	for _, sp := range specs {
		if sp.Image.Name == "tf2-cpu" {
			img := platformImages(t, sp.Tags.Hashed)["linux/arm64"]
			if img == nil {
				t.Fatalf("tf2-cpu has no linux/arm64 image")
			}
			f := imageFiles(t, img, "/etc/determined-build/framework/env", "/etc/determined-build/framework/arch")
			env := parseEnv(f["/etc/determined-build/framework/env"])
			var lines []string
			for _, k := range stageArgs(t, sc.dir, "Dockerfile.cpu", "framework") {
				if v, ok := env[k]; ok {
					lines = append(lines, k+"="+v)
				}
			}
			t.Logf("tf2-cpu linux/arm64: framework RUN ran on %s with\n%s", strings.TrimSpace(f["/etc/determined-build/framework/arch"]), strings.Join(lines, "\n"))
		}
	}
	if after := registryState(t, stk.NGC); after != ngcBefore {
		t.Errorf("buildAll pushed to NGC:\n%s", after)
	}
}

// defaultPublish is the repository of TestPublishDefault, reused by
// TestPublishAgainIsNoOp.
var defaultPublish *scenario

func publishDefault(t *testing.T) *scenario {
	t.Helper()
	requireTarget(t, "publish")
	sc := newScenario(t, nil, nil)
	r := sc.run(nil, "publish")
	if r.code != 0 {
		t.Fatalf("envs publish failed (exit %d):\n%s", r.code, r.tail(80))
	}
	return sc
}

// TestPublishDefault publishes all 17 images in the default variant.
func TestPublishDefault(t *testing.T) {
	sc := publishDefault(t)
	s, specs := sc.plan(nil)
	if len(specs) != 17 {
		t.Fatalf("the plan has %d images, want 17", len(specs))
	}
	digests := published(t, sc.dir, specs, nil)
	var ngc, multi []string
	for _, sp := range specs {
		if len(sp.NGCTags.List()) > 0 {
			ngc = append(ngc, sp.Image.Name)
			if !strings.HasPrefix(sp.NGCTags.Hashed, stk.NGC+"/ngc/environments:") {
				t.Errorf("%s: NGC tag %s is not in %s/ngc/environments", sp.Image.Name, sp.NGCTags.Hashed, stk.NGC)
			}
		}
		if len(sp.Platforms) == 2 {
			multi = append(multi, sp.Image.Name)
		}
		if !strings.HasPrefix(sp.Tags.Hashed, stk.Hub+"/determinedai/environments:") {
			t.Errorf("%s: tag %s is not in %s/determinedai/environments", sp.Image.Name, sp.Tags.Hashed, stk.Hub)
		}
	}
	slices.Sort(ngc)
	slices.Sort(multi)
	if want := []string{"deepspeed-gpu", "gpt-neox-deepspeed-gpu", "pt-cpu", "pt-gpu", "tf2-cpu", "tf2-gpu", "tf28-cpu", "tf28-gpu"}; !slices.Equal(ngc, want) {
		t.Errorf("NGC images %v, want %v", ngc, want)
	}
	if want := []string{"cpu-py-38-base", "pt-cpu", "tf2-cpu", "tf28-cpu"}; !slices.Equal(multi, want) {
		t.Errorf("multi-platform images %v, want %v", multi, want)
	}
	checkArtifacts(t, sc.artifacts, s, specs, nil)
	rep, ok := readReport(t, sc.artifacts)
	if !ok {
		t.Fatalf("no %s in %s", reportName, sc.artifacts)
	}
	if !rep.OK {
		t.Errorf("report: ok is false")
	}
	checkReport(t, rep, specs, digests, nil, "built")
	if len(rep.Images) != len(specs) {
		t.Errorf("report lists %d images, want %d", len(rep.Images), len(specs))
	}
	if !t.Failed() {
		defaultPublish = sc
	}
}

// TestPublishAgainIsNoOp publishes again from the same commit: nothing is
// rebuilt, no blob is pushed, no tag moves, and the artifacts are written.
func TestPublishAgainIsNoOp(t *testing.T) {
	sc := defaultPublish
	if sc == nil {
		sc = publishDefault(t)
	}
	sc.t = t
	sc.artifacts = filepath.Join(t.TempDir(), "artifacts")
	sc.env["ARTIFACTS_DIR"] = sc.artifacts
	state, bl := registryState(t, stk.Hub, stk.NGC), blobs(t, "hub", "ngc")
	r := sc.run(nil, "publish")
	if r.code != 0 {
		t.Fatalf("second envs publish failed (exit %d):\n%s", r.code, r.tail(80))
	}
	if n := added(bl, blobs(t, "hub", "ngc")); len(n) > 0 {
		t.Errorf("the second publish pushed %d blobs: %v", len(n), n)
	}
	if after := registryState(t, stk.Hub, stk.NGC); after != state {
		t.Errorf("the second publish changed tags:\nbefore:\n%s\nafter:\n%s", state, after)
	}
	s, specs := sc.plan(nil)
	digests := map[string]string{}
	for _, sp := range specs {
		digests[sp.Image.Name] = headDigest(t, sp.Tags.Hashed)
	}
	rep, ok := readReport(t, sc.artifacts)
	if !ok {
		t.Fatalf("no %s", reportName)
	}
	checkReport(t, rep, specs, digests, nil, "up-to-date")
	checkArtifacts(t, sc.artifacts, s, specs, nil)
	t.Logf("second publish took %s", r.dur.Round(100*time.Millisecond))
}

// TestPublishMPI publishes the WITH_MPI=1 variant: -mpi tags, CPU images
// linux/amd64 only, publish-*-1 artifacts with *_1_* keys.
func TestPublishMPI(t *testing.T) {
	requireTarget(t, "publish")
	over := map[string]string{"WITH_MPI": "1"}
	sc := newScenario(t, over, nil)
	r := sc.run(nil, "publish")
	if r.code != 0 {
		t.Fatalf("WITH_MPI=1 envs publish failed (exit %d):\n%s", r.code, r.tail(80))
	}
	s, specs := sc.plan(nil)
	for _, sp := range specs {
		if len(sp.Platforms) != 1 || sp.Platforms[0] != "linux/amd64" {
			t.Errorf("%s: planned for %v with WITH_MPI=1", sp.Image.Name, sp.Platforms)
		}
		if sp.Image.Accel != catalog.ROCm && !strings.Contains(sp.Tags.Hashed, "-mpi-") {
			t.Errorf("%s: tag %s has no -mpi suffix", sp.Image.Name, sp.Tags.Hashed)
		}
	}
	digests := published(t, sc.dir, specs, nil)
	checkArtifacts(t, sc.artifacts, s, specs, nil)
	for f, c := range readArtifacts(t, sc.artifacts) {
		if !strings.HasSuffix(f, "-1") || strings.Count(c, "_1_") != 2 {
			t.Errorf("artifact %s with WITH_MPI=1:\n%s", f, c)
		}
	}
	rep, ok := readReport(t, sc.artifacts)
	if !ok {
		t.Fatalf("no %s", reportName)
	}
	checkReport(t, rep, specs, digests, nil, "built", "up-to-date")
}

// TestPublishDevNoNGC publishes with NGC_PUBLISH= REGISTRY_REPO=environments-dev
// (CI's development mode): Docker Hub gets environments-dev, NGC nothing.
func TestPublishDevNoNGC(t *testing.T) {
	requireTarget(t, "publish")
	over := map[string]string{"NGC_PUBLISH": "", "REGISTRY_REPO": "environments-dev"}
	sc := newScenario(t, over, nil)
	ngcState, ngcBlobs := registryState(t, stk.NGC), blobs(t, "ngc")
	r := sc.run(nil, "publish")
	if r.code != 0 {
		t.Fatalf("NGC_PUBLISH= REGISTRY_REPO=environments-dev envs publish failed (exit %d):\n%s", r.code, r.tail(80))
	}
	s, specs := sc.plan(nil)
	for _, sp := range specs {
		if !strings.HasPrefix(sp.Tags.Hashed, stk.Hub+"/determinedai/environments-dev:") || len(sp.NGCTags.List()) > 0 {
			t.Fatalf("%s: planned tags %v / NGC %v", sp.Image.Name, sp.Tags, sp.NGCTags)
		}
	}
	digests := published(t, sc.dir, specs, nil)
	checkArtifacts(t, sc.artifacts, s, specs, nil)
	if after := registryState(t, stk.NGC); after != ngcState {
		t.Errorf("NGC changed with NGC_PUBLISH empty:\nbefore:\n%s\nafter:\n%s", ngcState, after)
	}
	if n := added(ngcBlobs, blobs(t, "ngc")); len(n) > 0 {
		t.Errorf("blobs reached NGC with NGC_PUBLISH empty: %v", n)
	}
	rep, ok := readReport(t, sc.artifacts)
	if !ok {
		t.Fatalf("no %s", reportName)
	}
	checkReport(t, rep, specs, digests, nil, "built", "up-to-date")
}

// TestPublishBrokenImage breaks two builds: tf28-cpu's framework RUN (no
// image is built on it) and gpu-cuda-102-base's RUN (tf1-gpu is built on
// it). Exactly those two fail, tf1-gpu is skipped, every other image is
// published, the exit status is non-zero and none of the three gets an
// artifact file or a tag.
func TestPublishBrokenImage(t *testing.T) {
	requireTarget(t, "publish")
	failed := map[string]bool{"tf28-cpu": true, "gpu-cuda-102-base": true}
	const skipped = "tf1-gpu"
	over := map[string]string{"REGISTRY_REPO": "environments-broken"}
	sc := newScenario(t, over, func(dir string) {
		// tf28-cpu is the only image with this TENSORFLOW_PIP, and
		// gpu-cuda-102-base the only base on Ubuntu 18.04.
		writeFile(t, filepath.Join(dir, "dockerfile_scripts", "hooks", "fail-if"),
			"TENSORFLOW_PIP=tensorflow-cpu==2.8.3\nUBUNTU_VERSION=ubuntu18.04\n")
	})
	r := sc.run(nil, "publish")
	if r.code == 0 {
		t.Errorf("envs publish with broken builds exited 0")
	}
	if n := strings.Count(r.out, "e2e-failing-on-purpose"); n < 2 {
		t.Errorf("the broken RUN steps ran %d times, want at least 2:\n%s", n, r.tail(60))
	}
	s, specs := sc.plan(nil)
	ok := func(n string) bool { return !failed[n] && n != skipped }
	digests := published(t, sc.dir, specs, ok)
	for _, sp := range specs {
		if ok(sp.Image.Name) {
			continue
		}
		for _, tag := range append(sp.Tags.List(), sp.NGCTags.List()...) {
			if d := headDigest(t, tag); d != "" {
				t.Errorf("%s was not published, but its tag %s exists (%s)", sp.Image.Name, tag, d)
			}
		}
	}
	checkArtifacts(t, sc.artifacts, s, specs, ok)
	rep, found := readReport(t, sc.artifacts)
	if !found {
		t.Fatalf("no %s after a failed publish", reportName)
	}
	if rep.OK {
		t.Errorf("report: ok is true although images failed")
	}
	checkReport(t, rep, specs, digests, ok, "built")
	for name := range failed {
		if ir := rep.byName()[name]; ir.Result != "failed" || ir.Verified {
			t.Errorf("report: %s is %q verified=%v, want failed and not verified", name, ir.Result, ir.Verified)
		}
	}
	if ir := rep.byName()[skipped]; ir.Result != "skipped" || ir.Verified {
		t.Errorf("report: %s (built on the failed gpu-cuda-102-base) is %q verified=%v, want skipped and not verified", skipped, ir.Result, ir.Verified)
	}
}

// TestPublishInterrupted sends SIGINT to a publish while a (slow) build runs:
// the tool exits promptly, leaves no process behind, writes no artifact and
// reports nothing verified for an image that is not published; a rerun then
// publishes everything.
func TestPublishInterrupted(t *testing.T) {
	requireTarget(t, "publish")
	over := map[string]string{"REGISTRY_REPO": "environments-interrupt"}
	hook := filepath.Join("dockerfile_scripts", "hooks", "slow-if")
	sc := newScenario(t, over, func(dir string) {
		// cpu-py-37-base and gpu-cuda-102-base sleep in their RUN step.
		writeFile(t, filepath.Join(dir, hook), "PYTHON_VERSION=3.7.11\n")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd, out := sc.start(ctx, nil, "publish")
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	deadline := time.After(3 * time.Minute)
wait:
	for {
		select {
		case err := <-waited:
			t.Fatalf("envs publish ended (%v) before the slow step started:\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("the slow step did not start in 3 minutes:\n%s", out.String())
		case <-time.After(200 * time.Millisecond):
			if strings.Contains(out.String(), "e2e-slow-step-started") {
				break wait
			}
		}
	}
	time.Sleep(time.Second)
	// The scan below must see the running build, or it proves nothing.
	if running := leftovers(sc.id); !slices.ContainsFunc(running, func(p string) bool { return strings.Contains(p, "buildx") }) {
		t.Fatalf("no buildx process with E2E_SCENARIO=%s found while a build runs; processes: %v", sc.id, running)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	select {
	case exitErr = <-waited:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("envs publish did not exit within 60s of SIGINT:\n%s", out.String())
	}
	took := time.Since(start)
	t.Logf("envs publish exited %v %s after SIGINT; end of output:\n%s", exitErr, took.Round(10*time.Millisecond), result{out: out.String()}.tail(30))
	if took > 15*time.Second {
		t.Errorf("envs publish took %s to exit after SIGINT, want < 15s", took)
	}
	if exitErr == nil {
		t.Errorf("an interrupted publish exited 0")
	}
	var left []string
	for i := 0; i < 15; i++ { // let a dying process finish for up to 3s
		if left = leftovers(sc.id); len(left) == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("processes of the interrupted publish are still running:\n%s", strings.Join(left, "\n"))
		for _, p := range left {
			var pid int
			if _, err := fmt.Sscanf(p, "%d:", &pid); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	_, specs := sc.plan(nil)
	byName := map[string]bool{}
	rep, hasReport := readReport(t, sc.artifacts)
	if hasReport {
		if rep.OK {
			t.Errorf("report of an interrupted publish says ok")
		}
		for _, ir := range rep.Images {
			byName[ir.Name] = ir.Verified
		}
	}
	for _, sp := range specs {
		if !byName[sp.Image.Name] {
			continue
		}
		if d := headDigest(t, sp.Tags.Hashed); d == "" || d != rep.byName()[sp.Image.Name].Digest {
			t.Errorf("report: %s verified at %s, but %s is %q", sp.Image.Name, rep.byName()[sp.Image.Name].Digest, sp.Tags.Hashed, d)
		}
	}
	for f := range readArtifacts(t, sc.artifacts) {
		img := strings.TrimSuffix(strings.TrimPrefix(f, "publish-"), "-0")
		if !byName[img] {
			t.Errorf("artifact %s written for %s, which the report does not show verified", f, img)
		}
	}
	for _, n := range []string{"cpu-py-37-base", "gpu-cuda-102-base", "tf1-cpu", "tf1-gpu"} {
		if byName[n] {
			t.Errorf("report: %s verified although its build (or its base's) was interrupted", n)
		}
	}
	if t.Failed() {
		return
	}

	// The rerun, without the slow step (ALLOW_DIRTY: the hook is deleted,
	// not committed, so the <hash> stays the same).
	if err := os.Remove(filepath.Join(sc.dir, hook)); err != nil {
		t.Fatal(err)
	}
	r := sc.run(map[string]string{"ALLOW_DIRTY": "1"}, "publish")
	if r.code != 0 {
		t.Fatalf("the rerun after SIGINT failed (exit %d):\n%s", r.code, r.tail(80))
	}
	s, specs := sc.plan(nil)
	digests := published(t, sc.dir, specs, nil)
	checkArtifacts(t, sc.artifacts, s, specs, nil)
	rep, ok := readReport(t, sc.artifacts)
	if !ok {
		t.Fatalf("no %s after the rerun", reportName)
	}
	checkReport(t, rep, specs, digests, nil, "built", "up-to-date")
}

// withEnv is idx with env added to the config of each of its images.
func withEnv(idx v1.ImageIndex, env ...string) (v1.ImageIndex, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	out := mutate.IndexMediaType(empty.Index, m.MediaType)
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		cfg := cf.Config.DeepCopy()
		cfg.Env = append(cfg.Env, env...)
		img, err = mutate.Config(img, *cfg)
		if err != nil {
			return nil, err
		}
		out = mutate.AppendManifests(out, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{MediaType: d.MediaType, Platform: d.Platform}})
	}
	return out, nil
}
