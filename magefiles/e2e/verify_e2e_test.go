//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/recipe"
	"github.com/determined-ai/environments/magefiles/variant"
)

// machine is what `uname -m` prints on each platform.
var machine = map[string]string{"linux/amd64": "x86_64", "linux/arm64": "aarch64"}

// notForRun are build arguments a RUN step does not receive: global ARGs
// (FROM lines only) and the label inputs declared after the RUN steps.
var notForRun = map[string]bool{"BASE_IMAGE": true, "FRAMEWORK_BASE": true, "BUILD_REVISION": true, "BUILD_VERSION": true, "BUILD_SOURCE": true}

// runArgs are the build arguments of sp that its stage's RUN steps receive.
func runArgs(sp plan.Spec) map[string]string {
	m := map[string]string{}
	for _, a := range sp.BuildArgs {
		if !notForRun[a.Name] {
			m[a.Name] = a.Value
		}
	}
	return m
}

// stageArgs returns the ARG names each stage of the scenario's recipe
// declares (without the globals and the label inputs).
func stageArgs(t *testing.T, dir, file, stage string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	r, err := recipe.Parse(file, b)
	if err != nil {
		t.Fatal(err)
	}
	vis, err := r.Visible(stage, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range vis {
		if !notForRun[k] && !strings.HasPrefix(k, "TARGET") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func parseEnv(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// checkRecords compares what the stage's RUN step recorded in img with the
// plan: every build argument it should receive with the plan's value, no
// other declared ARG set, and `uname -m` of the platform.
func checkRecords(t *testing.T, dir string, sp plan.Spec, platform string, img v1.Image) {
	t.Helper()
	envPath := "/etc/determined-build/" + sp.Target + "/env"
	archPath := "/etc/determined-build/" + sp.Target + "/arch"
	files := imageFiles(t, img, envPath, archPath)
	what := sp.Image.Name + " " + platform
	if got, want := strings.TrimSpace(files[archPath]), machine[platform]; got != want {
		t.Errorf("%s: the %s stage's RUN ran on %q (%s), want %q", what, sp.Target, got, archPath, want)
	}
	env, ok := files[envPath]
	if !ok {
		t.Errorf("%s: no %s in the image", what, envPath)
		return
	}
	got := parseEnv(env)
	want := runArgs(sp)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: the %s stage's RUN got %s=%q (set: %v), the plan passes %q", what, sp.Target, k, g, ok, v)
		}
	}
	for _, k := range stageArgs(t, dir, filepath.Base(sp.Recipe), sp.Target) {
		if _, planned := want[k]; !planned && got[k] != "" {
			t.Errorf("%s: the %s stage's RUN got %s=%q, which the plan does not pass", what, sp.Target, k, got[k])
		}
	}
}

// published checks that every spec accepted by want is in the registries as
// planned: both Docker Hub tags (and the NGC ones) at one digest, exactly the
// planned platforms, the inputs label, the recorded build arguments and
// machine of each platform, and its base image's layers under it. It returns
// the digests by image name.
func published(t *testing.T, dir string, specs []plan.Spec, want func(string) bool) map[string]string {
	t.Helper()
	digests := map[string]string{}
	images := map[string]map[string]v1.Image{}
	for _, sp := range specs {
		if want != nil && !want(sp.Image.Name) {
			continue
		}
		name := sp.Image.Name
		d := headDigest(t, sp.Tags.Hashed)
		if d == "" {
			t.Errorf("%s: %s is not in the registry", name, sp.Tags.Hashed)
			continue
		}
		digests[name] = d
		if v := headDigest(t, sp.Tags.Versioned); v != d {
			t.Errorf("%s: %s is %q, %s is %s", name, sp.Tags.Versioned, v, sp.Tags.Hashed, d)
		}
		for _, tag := range sp.NGCTags.List() {
			if v := headDigest(t, tag); v != d {
				t.Errorf("%s: NGC tag %s is %q, Docker Hub has %s", name, tag, v, d)
			}
		}
		imgs := platformImages(t, sp.Tags.Hashed)
		images[name] = imgs
		if got, wantP := keys(imgs), slices.Sorted(slices.Values(sp.Platforms)); !slices.Equal(got, wantP) {
			t.Errorf("%s: %s holds %v, the plan wants %v", name, sp.Tags.Hashed, got, wantP)
		}
		for platform, img := range imgs {
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if got := cf.Config.Labels[plan.InputsLabel]; got != sp.InputsDigest {
				t.Errorf("%s %s: label %s=%q, the plan's inputs are %s", name, platform, plan.InputsLabel, got, sp.InputsDigest)
			}
			checkRecords(t, dir, sp, platform, img)
			if sp.Base == "" {
				continue
			}
			// BASE_IMAGE: the image is built on its base's published image.
			var base *plan.Spec
			for i := range specs {
				if specs[i].Image.Name == sp.Base {
					base = &specs[i]
				}
			}
			baseImgs, ok := images[sp.Base]
			if base == nil || !ok {
				t.Errorf("%s: base %s was not checked first", name, sp.Base)
				continue
			}
			bl, fl := layerDigests(t, baseImgs[platform]), layerDigests(t, img)
			if len(fl) < len(bl) || !slices.Equal(fl[:len(bl)], bl) {
				t.Errorf("%s %s: its layers %v do not start with those of its base %s %v (BASE_IMAGE %s)", name, platform, fl, sp.Base, bl, base.Tags.Hashed)
			}
			checkRecords(t, dir, *base, platform, img)
		}
	}
	return digests
}

// checkArtifacts checks the artifact files: exactly one per framework image
// accepted by want, named publish-<image>-<M>, holding exactly the two
// contract lines, which parse as a YAML mapping of the contract keys to the
// image's Docker Hub tags.
func checkArtifacts(t *testing.T, dir string, s variant.Settings, specs []plan.Spec, want func(string) bool) {
	t.Helper()
	files := readArtifacts(t, dir)
	expected := map[string]bool{}
	m := s.MPIDigit()
	for _, sp := range specs {
		if sp.Image.IsBase() || (want != nil && !want(sp.Image.Name)) {
			continue
		}
		fname := "publish-" + sp.Image.Name + "-" + m
		expected[fname] = true
		content, ok := files[fname]
		if !ok {
			t.Errorf("no artifact file %s in %s", fname, dir)
			continue
		}
		key := strings.ReplaceAll(sp.Image.Name, "-", "_") + "_" + m
		wantContent := key + "_hashed: " + sp.Tags.Hashed + "\n" + key + "_versioned: " + sp.Tags.Versioned + "\n"
		if content != wantContent {
			t.Errorf("%s is\n%q\nwant exactly\n%q", fname, content, wantContent)
		}
		mapping, err := parseYAMLMapping(content)
		if err != nil {
			t.Errorf("%s is not a YAML mapping of strings: %v", fname, err)
			continue
		}
		wantMap := map[string]string{key + "_hashed": sp.Tags.Hashed, key + "_versioned": sp.Tags.Versioned}
		if !mapsEqual(mapping, wantMap) {
			t.Errorf("%s maps %v, want %v", fname, mapping, wantMap)
		}
	}
	for f := range files {
		if !expected[f] {
			t.Errorf("unexpected artifact file %s in %s:\n%s", f, dir, files[f])
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// checkReport checks the report's entry of every spec accepted by want: the
// result is one of results, it is verified at the registry's digest with the
// planned platforms and tags.
func checkReport(t *testing.T, r report, specs []plan.Spec, digests map[string]string, want func(string) bool, results ...string) {
	t.Helper()
	by := r.byName()
	for _, sp := range specs {
		if want != nil && !want(sp.Image.Name) {
			continue
		}
		ir, ok := by[sp.Image.Name]
		if !ok {
			t.Errorf("report: no entry for %s", sp.Image.Name)
			continue
		}
		if !slices.Contains(results, ir.Result) {
			t.Errorf("report: %s result %q (%s), want one of %v", ir.Name, ir.Result, ir.Error, results)
		}
		if !ir.Verified {
			t.Errorf("report: %s is not verified", ir.Name)
		}
		if ir.Digest != digests[ir.Name] {
			t.Errorf("report: %s digest %s, the registry has %s", ir.Name, ir.Digest, digests[ir.Name])
		}
		if got, w := slices.Sorted(slices.Values(ir.Platforms)), slices.Sorted(slices.Values(sp.Platforms)); !slices.Equal(got, w) {
			t.Errorf("report: %s platforms %v, want %v", ir.Name, got, w)
		}
		if !slices.Equal(ir.Tags.Dockerhub, sp.Tags.List()) {
			t.Errorf("report: %s Docker Hub tags %v, want %v", ir.Name, ir.Tags.Dockerhub, sp.Tags.List())
		}
		if !slices.Equal(ir.Tags.NGC, sp.NGCTags.List()) {
			t.Errorf("report: %s NGC tags %v, want %v", ir.Name, ir.Tags.NGC, sp.NGCTags.List())
		}
	}
}
