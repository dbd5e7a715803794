package publish

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/run"
	"github.com/determined-ai/environments/magefiles/variant"
)

func settings(t *testing.T, h *harness) variant.Settings {
	t.Helper()
	return h.buildEnv().Settings
}

func tagsOf(t *testing.T, h *harness, image string) (hub, ngc plan.Tags) {
	t.Helper()
	img, err := catalog.Lookup(image)
	if err != nil {
		t.Fatal(err)
	}
	s := settings(t, h)
	hub, err = plan.DockerhubTags(img, s)
	if err != nil {
		t.Fatal(err)
	}
	ngc, err = plan.NGCTags(img, s)
	if err != nil {
		t.Fatal(err)
	}
	return hub, ngc
}

func readReport(t *testing.T, path string) Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func imageReport(t *testing.T, r Report, name string) ImageReport {
	t.Helper()
	for _, i := range r.Images {
		if i.Name == name {
			return i
		}
	}
	t.Fatalf("report has no image %s", name)
	return ImageReport{}
}

var someImages = []string{"tf2-cpu", "tf1-cpu", "pytorch10-tf27-rocm50"}

func TestPublishWritesArtifactsAndCopiesToNGC(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	rep, err := h.run(ctx, h.client(), Options{Images: someImages, Dockerhub: true, NGC: true})
	if err != nil {
		t.Fatalf("publish: %v\nstderr:\n%s", err, h.err.String())
	}
	if !rep.OK {
		t.Fatal("report not OK")
	}
	dir := h.artifactsDir()
	want := []string{"publish-pytorch10-tf27-rocm50-0", "publish-tf1-cpu-0", "publish-tf2-cpu-0"}
	if got := readDir(t, dir); !slices.Equal(got, want) {
		t.Fatalf("ARTIFACTS_DIR holds %v, want %v (no base image artifacts, no temp files)", got, want)
	}
	for _, image := range someImages {
		hub, _ := tagsOf(t, h, image)
		b, err := os.ReadFile(filepath.Join(dir, "publish-"+image+"-0"))
		if err != nil {
			t.Fatal(err)
		}
		key := strings.ReplaceAll(image, "-", "_") + "_0"
		wantContent := key + "_hashed: " + hub.Hashed + "\n" + key + "_versioned: " + hub.Versioned + "\n"
		if string(b) != wantContent {
			t.Errorf("artifact of %s:\n%q\nwant\n%q", image, b, wantContent)
		}
		kv := parseArtifact(t, string(b))
		if kv[key+"_hashed"] != hub.Hashed || kv[key+"_versioned"] != hub.Versioned || len(kv) != 2 {
			t.Errorf("artifact of %s parses to %v", image, kv)
		}
		if !strings.HasSuffix(hub.Hashed, "-abc1234") || !strings.HasSuffix(hub.Versioned, "-0.26.4") {
			t.Errorf("tags %v", hub)
		}
	}
	// The contract's example key and tag.
	b, _ := os.ReadFile(filepath.Join(dir, "publish-tf2-cpu-0"))
	if !strings.HasPrefix(string(b), "tf2_cpu_0_hashed: "+h.hub+"/determinedai/environments:py-3.8-pytorch-1.12-tf-2.11-cpu-abc1234\n") {
		t.Errorf("tf2-cpu artifact: %q", b)
	}

	// Docker Hub: both tags of every image (bases included) at the digest.
	for _, image := range []string{"cpu-py-37-base", "cpu-py-38-base", "tf2-cpu", "tf1-cpu", "pytorch10-tf27-rocm50"} {
		hub, ngc := tagsOf(t, h, image)
		ir := imageReport(t, *rep, image)
		if ir.Result != Built || !ir.Verified || ir.Digest == "" {
			t.Errorf("%s: %+v", image, ir)
		}
		for _, tag := range hub.List() {
			if d, ok := digestOf(t, tag); !ok || d != ir.Digest {
				t.Errorf("%s: %s is %q, report says %s", image, tag, d, ir.Digest)
			}
		}
		// NGC: exactly the NGC images, by the same digest.
		for _, tag := range ngc.List() {
			if d, ok := digestOf(t, tag); !ok || d != ir.Digest {
				t.Errorf("%s: NGC %s is %q, want %s", image, tag, d, ir.Digest)
			}
		}
		if image == "tf2-cpu" {
			if !ir.NGCCopied || ir.NGCBytesUploaded == 0 || len(ir.Tags.NGC) != 2 {
				t.Errorf("tf2-cpu NGC copy: %+v", ir)
			}
			if !slices.Equal(ir.Platforms, []string{"linux/amd64", "linux/arm64"}) {
				t.Errorf("tf2-cpu platforms %v", ir.Platforms)
			}
		} else {
			if ir.NGCCopied || len(ir.Tags.NGC) != 0 || len(ngc.List()) != 0 {
				t.Errorf("%s went to NGC: %+v", image, ir)
			}
			n := strings.Replace(hub.Hashed, h.hub+"/determinedai", h.ngc+"/ngc", 1)
			if _, ok := digestOf(t, n); ok {
				t.Errorf("%s is on NGC as %s", image, n)
			}
		}
		if (image == "tf2-cpu" || image == "tf1-cpu" || image == "pytorch10-tf27-rocm50") != (ir.Artifact != "") {
			t.Errorf("%s artifact %q", image, ir.Artifact)
		}
	}

	// The written report is the returned one.
	written := readReport(t, h.reportPath())
	if !written.OK || len(written.Images) != 5 || written.Settings.Hash != "abc1234" || written.Settings.Version != "0.26.4" ||
		written.Settings.Flavour != "" || written.Settings.NGCRepo != h.ngc+"/ngc/environments" {
		t.Errorf("written report: %+v", written)
	}
	if imageReport(t, written, "tf2-cpu").Artifact != "publish-tf2-cpu-0" {
		t.Errorf("report artifact name: %+v", imageReport(t, written, "tf2-cpu"))
	}
	if !strings.Contains(h.err.String(), "IMAGE") || !strings.Contains(h.err.String(), imageReport(t, written, "tf2-cpu").Digest) {
		t.Errorf("no summary table with digests on stderr:\n%s", h.err.String())
	}

	// Second publish: nothing is built, nothing is uploaded to NGC, the
	// artifacts are the same.
	before := h.buildCount()
	first := map[string]string{}
	for _, image := range someImages {
		b, _ := os.ReadFile(filepath.Join(dir, "publish-"+image+"-0"))
		first[image] = string(b)
	}
	rep2, err := h.run(ctx, h.client(), Options{Images: someImages, Dockerhub: true, NGC: true})
	if err != nil {
		t.Fatalf("second publish: %v", err)
	}
	if n := h.buildCount() - before; n != 0 {
		t.Errorf("second publish built %d images, want 0", n)
	}
	for _, ir := range rep2.Images {
		if ir.Result != UpToDate || !ir.Verified || ir.Digest != imageReport(t, *rep, ir.Name).Digest {
			t.Errorf("second publish %s: %+v", ir.Name, ir)
		}
		if ir.NGCBytesUploaded != 0 {
			t.Errorf("second publish uploaded %d bytes to NGC for %s", ir.NGCBytesUploaded, ir.Name)
		}
	}
	if !imageReport(t, *rep2, "tf2-cpu").NGCCopied {
		t.Error("second publish did not re-check the NGC copy")
	}
	for _, image := range someImages {
		b, _ := os.ReadFile(filepath.Join(dir, "publish-"+image+"-0"))
		if string(b) != first[image] {
			t.Errorf("second publish changed the artifact of %s", image)
		}
	}
}

func TestForceRebuilds(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	o := Options{Images: []string{"tf2-cpu"}, Dockerhub: true, NGC: true}
	rep, err := h.run(ctx, h.client(), o)
	if err != nil {
		t.Fatal(err)
	}
	h.env["FORCE"] = "1"
	rep2, err := h.run(ctx, h.client(), o)
	if err != nil {
		t.Fatal(err)
	}
	if n := h.buildCount(); n != 4 {
		t.Errorf("built %d times, want 4 (two images twice)", n)
	}
	for _, ir := range rep2.Images {
		if ir.Result != Built || ir.Digest == imageReport(t, *rep, ir.Name).Digest || !ir.Verified {
			t.Errorf("FORCE=1 %s: %+v", ir.Name, ir)
		}
	}
	_, ngc := tagsOf(t, h, "tf2-cpu")
	if d, _ := digestOf(t, ngc.Versioned); d != imageReport(t, *rep2, "tf2-cpu").Digest {
		t.Errorf("NGC not updated by FORCE=1: %s", d)
	}
}

func TestFailureStopsOnlyDependents(t *testing.T) {
	h := newHarness(t)
	h.fail["cpu-py-38-base"] = true
	h.fail["pt-gpu"] = true
	images := []string{"tf2-cpu", "pt-cpu", "tf1-cpu", "pt-gpu", "tf2-gpu"}
	rep, err := h.run(context.Background(), h.client(), Options{Images: images, Dockerhub: true, NGC: true})
	if err == nil {
		t.Fatal("publish with failed images returned no error")
	}
	for _, n := range []string{"cpu-py-38-base", "tf2-cpu", "pt-cpu", "pt-gpu"} {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error does not name %s: %v", n, err)
		}
	}
	want := map[string]Result{
		"cpu-py-37-base": Built, "cpu-py-38-base": Failed, "gpu-cuda-113-base": Built,
		"tf1-cpu": Built, "tf2-cpu": Skipped, "pt-cpu": Skipped, "pt-gpu": Failed, "tf2-gpu": Built,
	}
	if len(rep.Images) != len(want) {
		t.Fatalf("report has %d images", len(rep.Images))
	}
	for _, ir := range rep.Images {
		if ir.Result != want[ir.Name] {
			t.Errorf("%s: %s, want %s (%s)", ir.Name, ir.Result, want[ir.Name], ir.Error)
		}
		if (ir.Result == Built) != ir.Verified {
			t.Errorf("%s: verified=%v", ir.Name, ir.Verified)
		}
		if ir.Result != Built && (ir.Error == "" || ir.Artifact != "") {
			t.Errorf("%s: %+v", ir.Name, ir)
		}
	}
	if h.builds["tf2-cpu"] != 0 || h.builds["pt-cpu"] != 0 {
		t.Errorf("dependents of a failed base were built: %v", h.builds)
	}
	got := readDir(t, h.artifactsDir())
	if wantFiles := []string{"publish-tf1-cpu-0", "publish-tf2-gpu-0"}; !slices.Equal(got, wantFiles) {
		t.Errorf("artifacts %v, want %v", got, wantFiles)
	}
	if r := readReport(t, h.reportPath()); r.OK || imageReport(t, r, "pt-gpu").Result != Failed {
		t.Errorf("written report: %+v", r)
	}
	if !strings.Contains(h.err.String(), "skipped") {
		t.Errorf("summary does not show the skipped images:\n%s", h.err.String())
	}
}

func TestVerificationFailure(t *testing.T) {
	h := newHarness(t)
	h.moved["tf1-cpu"] = true
	h.wrongPlatforms["tf2-cpu"] = true
	rep, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf1-cpu", "tf2-cpu", "pt-cpu"}, Dockerhub: true, NGC: true})
	if err == nil || !strings.Contains(err.Error(), "tf1-cpu") || !strings.Contains(err.Error(), "tf2-cpu") {
		t.Fatalf("error %v", err)
	}
	for name, want := range map[string]Result{"tf1-cpu": Failed, "tf2-cpu": Failed, "pt-cpu": Built} {
		ir := imageReport(t, *rep, name)
		if ir.Result != want || ir.Verified != (want == Built) {
			t.Errorf("%s: %+v", name, ir)
		}
	}
	if ir := imageReport(t, *rep, "tf2-cpu"); ir.NGCCopied {
		t.Error("an unverified image was copied to NGC")
	}
	_, ngc := tagsOf(t, h, "tf2-cpu")
	if _, ok := digestOf(t, ngc.Hashed); ok {
		t.Error("unverified tf2-cpu is on NGC")
	}
	if got := readDir(t, h.artifactsDir()); !slices.Equal(got, []string{"publish-pt-cpu-0"}) {
		t.Errorf("artifacts %v", got)
	}

	// The next run does not take the broken images for up to date: tf2-cpu
	// (wrong platforms) is rebuilt; tf1-cpu's hashed tag holds an image of
	// the right inputs, so its versioned tag is pointed at it (no build).
	h.moved, h.wrongPlatforms = map[string]bool{}, map[string]bool{}
	before := map[string]int{"tf1-cpu": h.builds["tf1-cpu"], "tf2-cpu": h.builds["tf2-cpu"], "pt-cpu": h.builds["pt-cpu"]}
	rep, err = h.run(context.Background(), h.client(), Options{Images: []string{"tf1-cpu", "tf2-cpu", "pt-cpu"}, Dockerhub: true, NGC: true})
	if err != nil {
		t.Fatal(err)
	}
	for image, want := range map[string]int{"tf1-cpu": 0, "tf2-cpu": 1, "pt-cpu": 0} {
		if n := h.builds[image] - before[image]; n != want {
			t.Errorf("%s built %d times, want %d", image, n, want)
		}
	}
	for image, want := range map[string]Result{"tf1-cpu": Reused, "tf2-cpu": Built, "pt-cpu": UpToDate} {
		if ir := imageReport(t, *rep, image); ir.Result != want || !ir.Verified {
			t.Errorf("%s: %+v, want %s and verified", image, ir, want)
		}
	}
	hub, _ := tagsOf(t, h, "tf1-cpu")
	hd, _ := digestOf(t, hub.Hashed)
	if vd, _ := digestOf(t, hub.Versioned); vd != hd || hd != imageReport(t, *rep, "tf1-cpu").Digest {
		t.Errorf("tf1-cpu: %s is %s, %s is %s, report says %s", hub.Hashed, hd, hub.Versioned, vd, imageReport(t, *rep, "tf1-cpu").Digest)
	}
}

func TestDirtyWorktree(t *testing.T) {
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(h.root, "Dockerfile.cpu"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf1-cpu"}, Dockerhub: true})
	if err == nil {
		t.Fatal("publish from a dirty worktree succeeded")
	}
	for _, s := range []string{"Dockerfile.cpu", "abc1234", "commit, or ALLOW_DIRTY=1"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not say %q: %v", s, err)
		}
	}
	if h.buildCount() != 0 {
		t.Error("built from a dirty worktree")
	}
	// Dry runs show the same refusal.
	h.env["DRY_RUN"] = "1"
	if _, err := h.run(context.Background(), noRegistry{t}, Options{Images: []string{"tf1-cpu"}, Dockerhub: true}); err == nil || !strings.Contains(err.Error(), "ALLOW_DIRTY") {
		t.Errorf("dry run from a dirty worktree: %v", err)
	}
	delete(h.env, "DRY_RUN")

	h.env["ALLOW_DIRTY"] = "1"
	if _, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf1-cpu"}, Dockerhub: true}); err != nil {
		t.Fatalf("ALLOW_DIRTY=1: %v", err)
	}
	if r := readReport(t, h.reportPath()); !r.Settings.AllowDirty || !r.OK {
		t.Errorf("report %+v", r.Settings)
	}
}

func TestUnwritableArtifactsDir(t *testing.T) {
	h := newHarness(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.env["ARTIFACTS_DIR"] = filepath.Join(file, "artifacts")
	_, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf1-cpu"}, Dockerhub: true})
	if err == nil || !strings.Contains(err.Error(), "ARTIFACTS_DIR=") || !strings.Contains(err.Error(), h.env["ARTIFACTS_DIR"]) {
		t.Fatalf("error %v", err)
	}
	if h.buildCount() != 0 {
		t.Error("built although the artifacts could not be written")
	}
	hub, _ := tagsOf(t, h, "cpu-py-37-base")
	if _, ok := digestOf(t, hub.Hashed); ok {
		t.Error("pushed although the artifacts could not be written")
	}
}

func TestDryRun(t *testing.T) {
	h := newHarness(t)
	h.env["DRY_RUN"] = "1"
	rep, err := h.run(context.Background(), noRegistry{t}, Options{Dockerhub: true, NGC: true})
	if err != nil {
		t.Fatal(err)
	}
	out := h.out.String()
	if h.buildCount() != 0 {
		t.Error("dry run built")
	}
	if _, err := os.Stat(h.artifactsDir()); !os.IsNotExist(err) {
		t.Errorf("dry run created ARTIFACTS_DIR (%v)", err)
	}
	ngcTags := 0
	for _, img := range catalog.All() {
		hub, ngc := tagsOf(t, h, img.Name)
		// The build pushes the hashed tag; the versioned one is pointed at
		// the pushed digest afterwards (plan.Spec.BuildTags).
		if !strings.Contains(out, "--tag "+hub.Hashed+" ") || strings.Contains(out, "--tag "+hub.Versioned+" ") {
			t.Errorf("dry run does not build %s with the hashed tag only", img.Name)
		}
		if !strings.Contains(out, "# tag "+hub.Versioned+" -> "+hub.Hashed[:strings.LastIndex(hub.Hashed, ":")]+"@") {
			t.Errorf("dry run does not point %s at the pushed digest", hub.Versioned)
		}
		if !strings.Contains(out, "# verify "+hub.Hashed+" "+hub.Versioned+" platforms ") {
			t.Errorf("dry run does not verify %s", img.Name)
		}
		if !strings.Contains(out, "# check up to date or reuse: "+hub.Hashed+" "+hub.Versioned+" (inputs sha256:") {
			t.Errorf("dry run does not check %s", img.Name)
		}
		// Framework images are built FROM their base by digest; the dry run
		// shows where it goes. External images are pinned the same way.
		if img.Base != "" {
			base, _ := tagsOf(t, h, img.Base)
			if !strings.Contains(out, run.Quote([]string{"--build-arg", "BASE_IMAGE=" + base.Hashed + "@<digest>"})+" ") {
				t.Errorf("dry run does not build %s FROM %s@<digest>", img.Name, base.Hashed)
			}
		} else if !strings.Contains(out, run.Quote([]string{"--build-arg", "BASE_IMAGE=" + img.From + "@<digest>"})+" ") {
			t.Errorf("dry run does not build %s FROM %s@<digest>", img.Name, img.From)
		}
		if img.NGC {
			if len(ngc.List()) != 2 {
				t.Fatalf("%s has NGC tags %v", img.Name, ngc)
			}
			want := "# copy " + hub.Hashed + "@<digest> -> " + ngc.Hashed + " " + ngc.Versioned + "\n"
			if !strings.Contains(out, want) {
				t.Errorf("dry run does not copy %s: want %q", img.Name, want)
			}
			if !strings.Contains(out, "# verify "+ngc.Hashed+" "+ngc.Versioned+" platforms ") {
				t.Errorf("dry run does not verify the NGC tags of %s", img.Name)
			}
			ngcTags += 2
		}
		path := filepath.Join(h.artifactsDir(), ArtifactName(img.Name, "0"))
		if img.IsBase() == strings.Contains(out, "# write artifact "+path+"\n") {
			t.Errorf("dry run artifact line for %s wrong (base=%v)", img.Name, img.IsBase())
		}
		if !img.IsBase() && !strings.Contains(out, "#   "+ArtifactKey(img.Name, "0")+"_hashed: "+hub.Hashed+"\n") {
			t.Errorf("dry run does not show the artifact content of %s", img.Name)
		}
	}
	// Exactly the NGC images go to NGC: 8 images, 2 tags, each tag named
	// once in its copy line and once in its verify line.
	if ngcTags != 16 {
		t.Errorf("%d NGC tags, want 16", ngcTags)
	}
	if n := strings.Count(out, h.ngc+"/ngc/environments:"); n != 2*ngcTags {
		t.Errorf("NGC repository named %d times, want %d:\n%s", n, 2*ngcTags, out)
	}
	if !strings.Contains(out, "# write report "+h.reportPath()+"\n") {
		t.Error("dry run does not name the report")
	}
	if n := strings.Count(out, "docker buildx build"); n != len(catalog.All()) {
		t.Errorf("%d builds printed, want %d", n, len(catalog.All()))
	}
	for _, ir := range rep.Images {
		if ir.Result != DryRun || ir.Verified {
			t.Errorf("dry run report %s: %+v", ir.Name, ir)
		}
	}

	// NGC_PUBLISH= prints no NGC tag.
	h.out = &syncBuffer{}
	h.env["NGC_PUBLISH"] = ""
	if _, err := h.run(context.Background(), noRegistry{t}, Options{Dockerhub: true, NGC: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.out.String(), h.ngc) || strings.Contains(h.out.String(), "# copy") {
		t.Errorf("NGC_PUBLISH= dry run names NGC:\n%s", h.out.String())
	}
}

func TestMPIVariantArtifacts(t *testing.T) {
	h := newHarness(t)
	h.env["WITH_MPI"] = "1"
	rep, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf2-cpu", "gpt-neox-deepspeed-gpu"}, Dockerhub: true, NGC: true})
	if err != nil {
		t.Fatal(err)
	}
	if p := imageReport(t, *rep, "tf2-cpu").Platforms; !slices.Equal(p, []string{"linux/amd64"}) {
		t.Errorf("WITH_MPI=1 tf2-cpu platforms %v", p)
	}
	b, err := os.ReadFile(filepath.Join(h.artifactsDir(), "publish-gpt-neox-deepspeed-gpu-1"))
	if err != nil {
		t.Fatal(err)
	}
	kv := parseArtifact(t, string(b))
	if !strings.HasSuffix(kv["gpt_neox_deepspeed_gpu_1_hashed"], ":cuda-11.3-pytorch-1.10-gpt-neox-deepspeed-gpu-mpi-abc1234") ||
		!strings.HasSuffix(kv["gpt_neox_deepspeed_gpu_1_versioned"], ":cuda-11.3-pytorch-1.10-gpt-neox-deepspeed-gpu-mpi-0.26.4") {
		t.Errorf("artifact %v", kv)
	}
	if _, err := os.Stat(filepath.Join(h.artifactsDir(), "publish-tf2-cpu-1")); err != nil {
		t.Error(err)
	}
}

func TestCancelClaimsNothing(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.onBuild = func(ctx context.Context, sp plan.Spec) error {
		if sp.Image.Name == "cpu-py-38-base" {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	h.env["JOBS"] = "1"
	rep, err := h.run(ctx, h.client(), Options{Images: []string{"tf2-cpu", "tf1-cpu"}, Dockerhub: true, NGC: true})
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want one wrapping context.Canceled", err)
	}
	for _, ir := range rep.Images {
		if ir.Artifact != "" || (ir.Result != Built && ir.Result != UpToDate && ir.Verified) {
			t.Errorf("%s claims success: %+v", ir.Name, ir)
		}
	}
	if ir := imageReport(t, *rep, "tf2-cpu"); ir.Result != Cancelled {
		t.Errorf("tf2-cpu: %+v", ir)
	}
	if ir := imageReport(t, *rep, "cpu-py-38-base"); ir.Result != Cancelled {
		t.Errorf("cpu-py-38-base: %+v", ir)
	}
	if _, err := os.Stat(filepath.Join(h.artifactsDir(), "publish-tf2-cpu-0")); err == nil {
		t.Error("artifact written for a cancelled image")
	}
	if r := readReport(t, h.reportPath()); r.OK {
		t.Error("report of a cancelled run says OK")
	}
}

func TestStaleArtifactRemoved(t *testing.T) {
	h := newHarness(t)
	if err := os.MkdirAll(h.artifactsDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(h.artifactsDir(), "publish-tf2-cpu-0")
	if err := os.WriteFile(stale, []byte("tf2_cpu_0_hashed: old\ntf2_cpu_0_versioned: old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.fail["cpu-py-38-base"] = true
	if _, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf2-cpu"}, Dockerhub: true}); err == nil {
		t.Fatal("no error")
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale artifact of an image that was not published survives (%v)", err)
	}
}

func TestOptionsNeedDockerhub(t *testing.T) {
	h := newHarness(t)
	if _, err := h.run(context.Background(), h.client(), Options{NGC: true}); err == nil {
		t.Error("Dockerhub=false accepted")
	}
	if _, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf3-cpu"}, Dockerhub: true}); err == nil || !strings.Contains(err.Error(), "tf3-cpu") {
		t.Errorf("unknown image: %v", err)
	}
	if h.buildCount() != 0 {
		t.Error("built")
	}
}

// publishedTF2CPU is a harness in which tf2-cpu (and its base) are published.
func publishedTF2CPU(t *testing.T) (*harness, Options) {
	t.Helper()
	h := newHarness(t)
	o := Options{Images: []string{"tf2-cpu"}, Dockerhub: true, NGC: true}
	if _, err := h.run(context.Background(), h.client(), o); err != nil {
		t.Fatal(err)
	}
	return h, o
}

func TestAMovedBaseRebuildsTheImagesOnIt(t *testing.T) {
	h, o := publishedTF2CPU(t)
	ctx := context.Background()
	// The base is replaced under both its tags by other content with the
	// same inputs label (what a FORCE=1 base-only run leaves behind). The base
	// is then up to date at its new digest, and tf2-cpu, built FROM the old
	// digest, must be rebuilt FROM the new one.
	base, _ := tagsOf(t, h, "cpu-py-38-base")
	specs, err := h.buildEnv().Plan(plan.Request{Images: []string{"cpu-py-38-base"}, Mode: plan.Publish})
	if err != nil {
		t.Fatal(err)
	}
	p := &publisher{e: h.buildEnv(), reg: h.client()}
	if err := p.resolveExternal(ctx, specs); err != nil {
		t.Fatal(err)
	}
	pinned, err := p.pin(specs[0])
	if err != nil {
		t.Fatal(err)
	}
	idx, err := standInIndex(pinned, pinned.Platforms, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range base.List() {
		ref, err := name.NewTag(tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx)); err != nil {
			t.Fatal(err)
		}
	}
	moved, _ := digestOf(t, base.Hashed)
	var fromArg string
	h.onBuild = func(_ context.Context, sp plan.Spec) error {
		if sp.Image.Name == "tf2-cpu" {
			fromArg = argValue(sp, "BASE_IMAGE")
		}
		return nil
	}
	before := map[string]int{"cpu-py-38-base": h.builds["cpu-py-38-base"], "tf2-cpu": h.builds["tf2-cpu"]}
	rep, err := h.run(ctx, h.client(), o)
	if err != nil {
		t.Fatal(err)
	}
	for image, want := range map[string]int{"cpu-py-38-base": 0, "tf2-cpu": 1} {
		if n := h.builds[image] - before[image]; n != want {
			t.Errorf("%s built %d times in the second run, want %d", image, n, want)
		}
	}
	if ir := imageReport(t, *rep, "cpu-py-38-base"); ir.Result != UpToDate || ir.Digest != moved {
		t.Errorf("base: %+v, want up-to-date at %s", ir, moved)
	}
	if want := base.Hashed + "@" + moved; fromArg != want {
		t.Errorf("tf2-cpu was built with BASE_IMAGE=%s, want %s", fromArg, want)
	}
	ir := imageReport(t, *rep, "tf2-cpu")
	if ir.Result != Built || !ir.Verified || ir.Inputs == nil || ir.Inputs.Images[base.Hashed] != moved {
		t.Errorf("tf2-cpu: %+v inputs %+v, want built and verified on %s", ir, ir.Inputs, moved)
	}
}

func TestAMovedVersionTagIsPointedBackWithoutBuilds(t *testing.T) {
	h, o := publishedTF2CPU(t)
	ctx := context.Background()
	base, _ := tagsOf(t, h, "cpu-py-38-base")
	want, _ := digestOf(t, base.Hashed)
	idx, err := randomIndex([]string{"linux/amd64"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(base.Versioned, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	before := h.buildCount()
	rep, err := h.run(ctx, h.client(), o)
	if err != nil {
		t.Fatal(err)
	}
	if n := h.buildCount() - before; n != 0 {
		t.Errorf("%d builds, want none", n)
	}
	if ir := imageReport(t, *rep, "cpu-py-38-base"); ir.Result != Reused || ir.Digest != want {
		t.Errorf("base: %+v, want reused at %s", ir, want)
	}
	if got, _ := digestOf(t, base.Versioned); got != want {
		t.Errorf("%s is %s, want %s", base.Versioned, got, want)
	}
	if ir := imageReport(t, *rep, "tf2-cpu"); ir.Result != UpToDate {
		t.Errorf("tf2-cpu: %+v", ir)
	}
}

func argValue(sp plan.Spec, name string) string {
	for _, a := range sp.BuildArgs {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

// countingRegistry counts the copies a publish makes.
type countingRegistry struct {
	Registry
	mu     sync.Mutex
	copies int
}

func (c *countingRegistry) Copy(ctx context.Context, src string, dst []string) (registry.CopyStats, error) {
	c.mu.Lock()
	c.copies++
	c.mu.Unlock()
	return c.Registry.Copy(ctx, src, dst)
}

func TestANewCommitWithTheSameInputsReusesEverything(t *testing.T) {
	h, o := publishedTF2CPU(t)
	ctx := context.Background()
	first := map[string]string{}
	for _, n := range []string{"cpu-py-38-base", "tf2-cpu"} {
		hub, _ := tagsOf(t, h, n)
		first[n], _ = digestOf(t, hub.Hashed)
	}
	h.hash = "def5678" // a commit that changed no input
	before := h.buildCount()
	reg := &countingRegistry{Registry: h.client()}
	rep, err := h.run(ctx, reg, o)
	if err != nil {
		t.Fatal(err)
	}
	if n := h.buildCount() - before; n != 0 {
		t.Errorf("%d builds, want none", n)
	}
	if reg.copies != 0 {
		t.Errorf("%d copies to NGC, want none: NGC already holds the image", reg.copies)
	}
	for n, d := range first {
		ir := imageReport(t, *rep, n)
		if ir.Result != Reused || !ir.Verified || ir.Digest != d || ir.NGCBytesUploaded != 0 {
			t.Errorf("%s: %+v, want reused at %s", n, ir, d)
		}
		hub, ngc := tagsOf(t, h, n)
		if !strings.HasSuffix(hub.Hashed, "-def5678") {
			t.Fatalf("tag %s is not of the new commit", hub.Hashed)
		}
		for _, tag := range append(hub.List(), ngc.List()...) {
			if got, _ := digestOf(t, tag); got != d {
				t.Errorf("%s is %q, want %s", tag, got, d)
			}
		}
	}
}

// failingLookup is a registry whose look-ups fail with an error other than
// "not found" (an outage, a broken blob store).
type failingLookup struct{ Registry }

func (failingLookup) Lookup(context.Context, []string) (registry.Found, error) {
	return registry.Found{}, errors.New("registry 127.0.0.1: status 500 Internal Server Error")
}

func TestALookupErrorMeansABuildWithAWarning(t *testing.T) {
	h, o := publishedTF2CPU(t)
	before := h.buildCount()
	rep, err := h.run(context.Background(), failingLookup{h.client()}, o)
	if err != nil {
		t.Fatalf("a failed up-to-date check failed the publish: %v", err)
	}
	if n := h.buildCount() - before; n != 2 {
		t.Errorf("%d builds, want 2: an image that cannot be checked is built", n)
	}
	for _, n := range []string{"cpu-py-38-base", "tf2-cpu"} {
		if ir := imageReport(t, *rep, n); ir.Result != Built || !ir.Verified {
			t.Errorf("%s: %+v", n, ir)
		}
	}
	if !strings.Contains(h.err.String(), "WRN cpu-py-38-base: cannot tell whether it is up to date, building it: registry 127.0.0.1: status 500") {
		t.Errorf("no warning:\n%s", h.err.String())
	}
}
