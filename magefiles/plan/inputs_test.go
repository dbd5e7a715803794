package plan

import (
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/variant"
)

// fakeSources stands in for the recipes: every stage reads the same thing,
// and starts from its BASE_IMAGE.
type fakeSources struct{ digest string }

func (f fakeSources) Stage(_, _, _ string, args map[string]string) (StageSources, error) {
	return StageSources{Digest: f.digest, Images: []string{args["BASE_IMAGE"]}}, nil
}

func planWith(t *testing.T, version, hash string, images ...string) []Spec {
	t.Helper()
	s, err := variant.Parse(variant.MapLookup(nil), version, hash)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := Plan(s, Request{Images: images, Mode: Publish, Sources: fakeSources{"sha256:src"}})
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

func TestNeitherCommitNorVersionIsAnInput(t *testing.T) {
	a := planWith(t, "0.26.4", "abc1234", "pt-gpu")
	b := planWith(t, "0.26.5", "def5678", "pt-gpu")
	// Unpinned, the base's hashed tag is in BASE_IMAGE; pinned, only its
	// digest counts.
	base := map[string]string{"nvidia/cuda:11.3.1-cudnn8-devel-ubuntu20.04": "sha256:1111"}
	pa, pb := Pin(a[0], base), Pin(b[0], base)
	if pa.InputsDigest != pb.InputsDigest {
		t.Errorf("base inputs differ across commits: %s vs %s", pa.InputsDigest, pb.InputsDigest)
	}
	fa := Pin(a[1], map[string]string{a[1].BaseTag: "sha256:2222"})
	fb := Pin(b[1], map[string]string{b[1].BaseTag: "sha256:2222"})
	if fa.InputsDigest != fb.InputsDigest {
		t.Errorf("framework inputs differ across commits: %s vs %s", fa.InputsDigest, fb.InputsDigest)
	}
	if !containsPair(fa.Argv, "--build-arg", "BUILD_REVISION=abc1234") || !containsPair(fb.Argv, "--build-arg", "BUILD_REVISION=def5678") {
		t.Error("the revision label no longer names the commit")
	}
}

func TestPinPutsDigestsIntoArgsAndInputs(t *testing.T) {
	specs := planWith(t, "0.26.4", "abc1234", "pt-gpu")
	base, fw := specs[0], specs[1]
	if fw.BaseTag == "" || argMap(fw)["BASE_IMAGE"] != fw.BaseTag || len(fw.External) != 0 {
		t.Fatalf("framework spec: BaseTag %q External %v args %v", fw.BaseTag, fw.External, argMap(fw))
	}
	if base.BaseTag != "" || len(base.External) != 1 || base.External[0] != "nvidia/cuda:11.3.1-cudnn8-devel-ubuntu20.04" {
		t.Fatalf("base spec: BaseTag %q External %v", base.BaseTag, base.External)
	}
	if un := Unpinned(fw); len(un) != 1 || un[0] != fw.BaseTag {
		t.Errorf("Unpinned = %v", un)
	}
	one := Pin(fw, map[string]string{fw.BaseTag: "sha256:aaaa"})
	two := Pin(fw, map[string]string{fw.BaseTag: "sha256:bbbb"})
	if got := argMap(one)["BASE_IMAGE"]; got != fw.BaseTag+"@sha256:aaaa" {
		t.Errorf("BASE_IMAGE=%s", got)
	}
	if !containsPair(one.Argv, "--build-arg", "BASE_IMAGE="+fw.BaseTag+"@sha256:aaaa") {
		t.Errorf("argv does not build FROM the digest: %v", one.Argv)
	}
	if !containsPair(one.Argv, "--label", InputsLabel+"="+one.InputsDigest) {
		t.Errorf("argv labels the old inputs: %v", one.Argv)
	}
	if one.InputsDigest == two.InputsDigest || one.InputsDigest == fw.InputsDigest {
		t.Error("the base digest is not an input")
	}
	if len(Unpinned(one)) != 0 || one.Pinned[fw.BaseTag] != "sha256:aaaa" {
		t.Errorf("pinned %v, unpinned %v", one.Pinned, Unpinned(one))
	}
	// Unrelated references are ignored; the spec passed in is not changed.
	if Pin(fw, map[string]string{"other:tag": "sha256:cccc"}).InputsDigest != fw.InputsDigest || argMap(fw)["BASE_IMAGE"] != fw.BaseTag {
		t.Error("Pin changed more than it was asked to")
	}
}

func TestAnExternalImageNamedInTheRecipeGetsABuildContext(t *testing.T) {
	specs := planWith(t, "0.26.4", "abc1234", "cpu-py-38-base")
	sp := specs[0]
	sp.External = append(sp.External, "busybox:1.36")
	p := Pin(sp, map[string]string{"busybox:1.36": "sha256:dddd", "ubuntu:20.04": "sha256:eeee"})
	if !containsPair(p.Argv, "--build-context", "busybox:1.36=docker-image://busybox:1.36@sha256:dddd") {
		t.Errorf("argv %v", p.Argv)
	}
	if argMap(p)["BASE_IMAGE"] != "ubuntu:20.04@sha256:eeee" {
		t.Errorf("BASE_IMAGE=%s", argMap(p)["BASE_IMAGE"])
	}
	q := Pin(sp, map[string]string{"busybox:1.36": "sha256:ffff", "ubuntu:20.04": "sha256:eeee"})
	if p.InputsDigest == q.InputsDigest {
		t.Error("the build context's digest is not an input")
	}
}

func TestOnePinChangesOneImage(t *testing.T) {
	s := settings(t, nil)
	before, err := Plan(s, Request{Images: catalog.Names(), Mode: Publish, Sources: fakeSources{"sha256:src"}})
	if err != nil {
		t.Fatal(err)
	}
	// Bases pinned to fixed digests, as publish does.
	pin := func(specs []Spec) map[string]string {
		out := map[string]string{}
		for _, sp := range specs {
			d := map[string]string{sp.BaseTag: "sha256:base-" + sp.Base}
			for _, e := range sp.External {
				d[e] = "sha256:ext"
			}
			out[sp.Image.Name] = Pin(sp, d).InputsDigest
		}
		return out
	}
	a := pin(before)
	for _, sp := range before {
		if sp.Image.Name != "pt-cpu" {
			continue
		}
		for i, p := range sp.Image.Pins {
			if p.Name == "TORCH_PIP" {
				img := sp.Image
				img.Pins = append([]catalog.Arg(nil), img.Pins...)
				img.Pins[i].Value += " extra"
				changed, err := spec(img, s, Request{Mode: Publish, Sources: fakeSources{"sha256:src"}})
				if err != nil {
					t.Fatal(err)
				}
				// Plan every image again, pt-cpu with the changed pin: its
				// inputs change, and every other image's stay the same.
				again := []Spec{changed}
				for _, o := range before {
					if o.Image.Name != "pt-cpu" {
						re, err := spec(o.Image, s, Request{Mode: Publish, Sources: fakeSources{"sha256:src"}})
						if err != nil {
							t.Fatal(err)
						}
						again = append(again, re)
					}
				}
				b := pin(again)
				if len(b) != len(a) {
					t.Fatalf("%d images after the change, %d before", len(b), len(a))
				}
				for name, d := range a {
					if changedToo := b[name] != d; changedToo != (name == "pt-cpu") {
						t.Errorf("%s: inputs changed = %v after changing pt-cpu's TORCH_PIP", name, changedToo)
					}
				}
				return
			}
		}
	}
	t.Fatal("pt-cpu has no TORCH_PIP pin")
}

func TestLabelArgsAreNotInputs(t *testing.T) {
	for _, n := range []string{"BUILD_REVISION", "BUILD_VERSION", "BUILD_SOURCE"} {
		if !IsLabelArg(n) {
			t.Errorf("%s is an input", n)
		}
	}
	if IsLabelArg("BASE_IMAGE") || IsLabelArg("TORCH_PIP") {
		t.Error("a content argument is not an input")
	}
	if !strings.HasPrefix(planWith(t, "0.26.4", "abc1234", "tf2-cpu")[1].InputsDigest, "sha256:") {
		t.Error("no inputs digest")
	}
}
