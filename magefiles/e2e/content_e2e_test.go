//go:build e2e

package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/supplytest"
)

// Content-addressed publishing (docs/publishing.md, "Reuse"): images are
// built FROM their base and external images by digest, and an image whose
// inputs are already published is reused, not rebuilt.

// pinned pins specs (in plan order) the way publish does, to the digests the
// registries hold now: external images as the Mirror serves them, each base
// as its hashed tag on Docker Hub.
func pinned(t *testing.T, specs []plan.Spec) []plan.Spec {
	t.Helper()
	hub := map[string]string{}
	out := make([]plan.Spec, len(specs))
	for i, sp := range specs {
		d := map[string]string{}
		for _, ext := range sp.External {
			mr, err := stk.MirrorRef(ext)
			if err != nil {
				t.Fatal(err)
			}
			if d[ext] = headDigest(t, mr.String()); d[ext] == "" {
				t.Fatalf("external image %s is not on the mirror (%s)", ext, mr)
			}
		}
		if bd := hub[sp.Base]; sp.BaseTag != "" && bd != "" {
			d[sp.BaseTag] = bd
		}
		out[i] = plan.Pin(sp, d)
		hub[sp.Image.Name] = headDigest(t, sp.Tags.Hashed)
	}
	return out
}

// only keeps the specs of the named images.
func only(specs []plan.Spec, names ...string) []plan.Spec {
	var out []plan.Spec
	for _, sp := range specs {
		for _, n := range names {
			if sp.Image.Name == n {
				out = append(out, sp)
			}
		}
	}
	return out
}

// replaceUnderTags pushes, under every tag of tags, other content with the
// same config labels as what the tags hold now (a FORCE=1 base-only run
// leaves this behind): each platform image gets one more environment
// variable, and an attestation as a build makes it (provenance naming
// materials, an SBOM). It returns the new digest.
func replaceUnderTags(t *testing.T, tags []string, materials map[string]string) string {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for platform, img := range platformImages(t, tags[0]) {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.Config.Env = append(cf.Config.Env, "E2E_MOVED=1")
		moved, err := mutate.ConfigFile(img, cf)
		if err != nil {
			t.Fatal(err)
		}
		os, arch, _ := strings.Cut(platform, "/")
		att, desc, err := supplytest.Attestation(moved, platform, supplytest.Options{Materials: materials})
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: moved,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: os, Architecture: arch}}},
			mutate.IndexAddendum{Add: att, Descriptor: desc})
	}
	for _, tag := range tags {
		if err := remote.WriteIndex(ref(t, tag), idx); err != nil {
			t.Fatal(err)
		}
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestContentMovedBase: the base of pt-gpu is replaced under its tags by
// other content with the same inputs label. The next publish finds the base
// up to date at its new digest and rebuilds pt-gpu FROM that digest.
func TestContentMovedBase(t *testing.T) {
	requireTarget(t, "publishImage")
	sc := newScenario(t, map[string]string{"REGISTRY_REPO": "environments-moved"}, nil)
	if r := sc.run(nil, "publishImage", "pt-gpu"); r.code != 0 {
		t.Fatalf("envs publishImage pt-gpu failed (exit %d):\n%s", r.code, r.tail(80))
	}
	_, specs := sc.plan(nil)
	specs = only(specs, "gpu-cuda-113-base", "pt-gpu")
	before := published(t, sc.dir, specs, nil)
	base := specs[0]
	moved := replaceUnderTags(t, base.Tags.List(), base.Pinned)
	if moved == before[base.Image.Name] {
		t.Fatal("the replacement has the same digest")
	}

	r := sc.run(nil, "publishImage", "pt-gpu")
	if r.code != 0 {
		t.Fatalf("the publish after the base moved failed (exit %d):\n%s", r.code, r.tail(80))
	}
	_, specs = sc.plan(nil)
	specs = only(specs, "gpu-cuda-113-base", "pt-gpu")
	if got := argOf(specs[1], "BASE_IMAGE"); got != base.Tags.Hashed+"@"+moved {
		t.Fatalf("the plan pins pt-gpu to %s, want the moved base %s", got, moved)
	}
	// The layers of pt-gpu start with the moved base's, and its label holds
	// the inputs with the moved digest.
	after := published(t, sc.dir, specs, nil)
	if after["pt-gpu"] == before["pt-gpu"] {
		t.Errorf("pt-gpu was not rebuilt: still %s", after["pt-gpu"])
	}
	rep, ok := readReport(t, sc.artifacts)
	if !ok {
		t.Fatalf("no %s", reportName)
	}
	checkReport(t, rep, specs[:1], after, nil, "up-to-date")
	checkReport(t, rep, specs[1:], after, nil, "built")
	if got := rep.byName()["pt-gpu"].Inputs.Images[base.Tags.Hashed]; got != moved {
		t.Errorf("report: pt-gpu was built FROM %s, want %s", got, moved)
	}
}

// TestContentReadmeOnlyCommit: a commit that changes no image input
// publishes with zero builds, every new hash tag on the previous digest, and
// no blob uploaded; then one more such commit is published while Docker Hub
// answers 503 to everything for 20 s, and still succeeds.
func TestContentReadmeOnlyCommit(t *testing.T) {
	requireTarget(t, "publishImage")
	images := []string{"cpu-py-38-base", "tf2-cpu"}
	sc := newScenario(t, map[string]string{"REGISTRY_REPO": "environments-readme"}, nil)
	if r := sc.run(nil, "publishImage", "tf2-cpu"); r.code != 0 {
		t.Fatalf("envs publishImage tf2-cpu failed (exit %d):\n%s", r.code, r.tail(80))
	}
	_, first := sc.plan(nil)
	first = only(first, images...)
	previous := published(t, sc.dir, first, nil)

	readmeCommit := func(n int) {
		writeFile(t, filepath.Join(sc.dir, "README.md"), strings.Repeat("Only the README changes.\n", n))
		sc.git("add", "-A")
		sc.git("commit", "-q", "-m", "README only")
		sc.hash = strings.TrimSpace(sc.git("rev-parse", "--short", "HEAD"))
	}
	readmeCommit(1)
	bl := blobs(t, "hub", "ngc")
	r := sc.run(nil, "publishImage", "tf2-cpu")
	if r.code != 0 {
		t.Fatalf("the README-only publish failed (exit %d):\n%s", r.code, r.tail(80))
	}
	checkNoBuild(t, sc, r, images, previous)
	// The new hashed tags get their signatures (docs/supply-chain.md): the
	// signature manifests are the only new blobs.
	sigs := signatureBlobs(t, sc, first, previous)
	var other []string
	for _, b := range added(bl, blobs(t, "hub", "ngc")) {
		if !slices.Contains(sigs, b) {
			other = append(other, b)
		}
	}
	if len(other) > 0 {
		t.Errorf("the README-only publish uploaded %d blobs besides the new signatures: %v", len(other), other)
	}

	// Docker Hub down for 20 s, then back.
	readmeCommit(2)
	proxy, faults := unavailableFor(t, stk.Hub, 20*time.Second)
	over := map[string]string{"DOCKERHUB_REGISTRY": proxy + "/determinedai"}
	start := time.Now()
	r = sc.run(over, "publishImage", "tf2-cpu")
	if r.code != 0 {
		t.Fatalf("the publish through a registry down for 20 s failed (exit %d):\n%s", r.code, r.tail(80))
	}
	if faults.Load() == 0 {
		t.Fatal("the proxy answered no request with 503")
	}
	t.Logf("published through a registry down for 20 s in %s (%d answers were 503)", time.Since(start).Round(100*time.Millisecond), faults.Load())
	_, specs := sc.plan(over)
	specs = only(specs, images...)
	for _, sp := range specs {
		if !strings.HasPrefix(sp.Tags.Hashed, proxy+"/") {
			t.Fatalf("%s: tag %s is not behind the proxy", sp.Image.Name, sp.Tags.Hashed)
		}
	}
	checkNoBuild(t, sc, r, images, previous)
}

// checkNoBuild checks a publish of images in sc that should have built
// nothing: no build ran, every image is reused, and both tags of each point
// at its previous digest.
func checkNoBuild(t *testing.T, sc *scenario, r result, images []string, previous map[string]string) {
	t.Helper()
	if strings.Contains(r.out, "==> building") || strings.Contains(r.out, "e2e-record") {
		t.Errorf("a build ran:\n%s", r.tail(40))
	}
	rep, ok := readReport(t, sc.artifacts)
	if !ok {
		t.Fatalf("no %s", reportName)
	}
	for _, n := range images {
		ir := rep.byName()[n]
		if ir.Result != "reused" || !ir.Verified || ir.Digest != previous[n] {
			t.Errorf("report: %s is %q verified=%v at %s, want reused and verified at %s", n, ir.Result, ir.Verified, ir.Digest, previous[n])
		}
		for _, tag := range ir.Tags.Dockerhub {
			if d := headDigest(t, tag); d != previous[n] {
				t.Errorf("%s: %s is %q, want the previous digest %s", n, tag, d, previous[n])
			}
		}
	}
}

// unavailableFor starts a proxy in front of registry that answers every
// request with 503 for d from now, then forwards. It returns its host:port
// and the number of 503 answers.
func unavailableFor(t *testing.T, registry string, d time.Duration) (string, *atomic.Int64) {
	t.Helper()
	target, err := url.Parse("http://" + registry)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	until := time.Now().Add(d)
	var faults atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if time.Now().Before(until) {
			faults.Add(1)
			http.Error(w, "e2e: unavailable", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), &faults
}

func argOf(sp plan.Spec, name string) string {
	for _, a := range sp.BuildArgs {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

// signatureBlobs are the blobs (as blobs lists them) of the signature
// manifests of specs' images at Docker Hub and NGC: the manifest, its
// config and its payloads.
func signatureBlobs(t *testing.T, sc *scenario, specs []plan.Spec, digests map[string]string) []string {
	t.Helper()
	var out []string
	entry := func(reg, d string) string {
		hex := strings.TrimPrefix(d, "sha256:")
		return reg + " sha256/" + hex[:2] + "/" + hex
	}
	for _, sp := range specs {
		for reg, tags := range map[string]plan.Tags{"hub": sp.Tags, "ngc": sp.NGCTags} {
			if tags.Hashed == "" {
				continue
			}
			sigRef := repoOf(tags.Hashed) + ":" + registry.SignatureTag(digests[sp.Image.Name])
			img, err := remote.Image(ref(t, sigRef))
			if err != nil {
				t.Fatalf("%s: %v", sigRef, err)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			d, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, entry(reg, d.String()), entry(reg, m.Config.Digest.String()))
			for _, l := range m.Layers {
				out = append(out, entry(reg, l.Digest.String()))
			}
		}
	}
	return out
}
