package publish

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/sign"
	"github.com/determined-ai/environments/magefiles/supplytest"
)

// Each spoilt supply chain fails its image (and only it, and the images on
// it), with a message naming what is wrong; no artifact claims it.
func TestSupplyChainFailuresFailTheImage(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(h *harness)
		reg   func(Registry) Registry
		want  string
	}{
		{"platform without attestation", func(h *harness) {
			h.attestFaults["tf2-cpu"] = map[string]string{"linux/arm64": "none"}
		}, nil, "platform linux/arm64 (sha256:"},
		{"wrong subject", func(h *harness) {
			h.attestFaults["tf2-cpu"] = map[string]string{"linux/amd64": "subject"}
		}, nil, "which is no platform image of the index"},
		{"provenance names another base", func(h *harness) { h.otherBase["tf2-cpu"] = true },
			nil, "the provenance does not name the base"},
		{"no SBOM", func(h *harness) {
			h.attestFaults["tf2-cpu"] = map[string]string{"linux/amd64": "nosbom"}
		}, nil, "has no SBOM"},
		{"unsigned digest", nil, func(r Registry) Registry { return noSigning{r} },
			"no signature of sha256:"},
		{"copy drops the signature", nil, func(r Registry) Registry { return noSignatureCopy{r} },
			"tf2-cpu at NGC: supply-chain check failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			if c.spoil != nil {
				c.spoil(h)
			}
			var reg Registry = h.client()
			if c.reg != nil {
				reg = c.reg(reg)
			}
			rep, err := h.run(context.Background(), reg, Options{Images: []string{"tf2-cpu", "pt-cpu"}, Dockerhub: true, NGC: true})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			ir := imageReport(t, *rep, "tf2-cpu")
			if ir.Verified || (c.reg == nil && (ir.Result != Failed || !strings.Contains(ir.Error, c.want))) {
				t.Errorf("tf2-cpu: %+v", ir)
			}
			if c.reg == nil {
				if ir := imageReport(t, *rep, "pt-cpu"); ir.Result != Built || !ir.Verified {
					t.Errorf("pt-cpu (not spoilt): %+v", ir)
				}
			}
			if slices.Contains(readDir(t, h.artifactsDir()), "publish-tf2-cpu-0") {
				t.Error("an artifact file claims tf2-cpu")
			}
		})
	}
}

type noSigning struct{ Registry }

func (noSigning) AddSignatures(context.Context, string, string, []registry.Signature) error {
	return nil
}

type noSignatureCopy struct{ Registry }

func (noSignatureCopy) CopySignatures(context.Context, string, string, string) error { return nil }

// A publish leaves on NGC the contract's tags and the signatures' only (no
// referrers fallback tags), every image is signed per tag at both
// registries, and an image whose signatures were lost (as one published
// before signing) is signed when it is kept as up to date.
func TestPublishSignsAndLeavesNoStrayTags(t *testing.T) {
	h := newHarness(t)
	o := Options{Images: []string{"tf2-cpu"}, Dockerhub: true, NGC: true}
	if _, err := h.run(context.Background(), h.client(), o); err != nil {
		t.Fatal(err)
	}
	hub, ngc := tagsOf(t, h, "tf2-cpu")
	d, _ := digestOf(t, hub.Hashed)
	want := []string{tagNames(ngc.List())[0], tagNames(ngc.List())[1], registry.SignatureTag(d)}
	slices.Sort(want)
	if got := listTags(t, repoOf(ngc.Hashed)); !slices.Equal(got, want) {
		t.Errorf("NGC tags of tf2-cpu's repository %v, want %v", got, want)
	}
	v, err := sign.LoadVerifier(h.env["SIGNING_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{repoOf(hub.Hashed), repoOf(ngc.Hashed)} {
		sigs, err := h.client().Signatures(context.Background(), repo, d)
		if err != nil || len(sigs) != 2 {
			t.Fatalf("%s: %d signatures (%v), want one per tag", repo, len(sigs), err)
		}
		for i, s := range sigs {
			c, err := sign.ParsePayload(s.Payload)
			if err != nil || v.Verify(s.Payload, s.Signature) != nil || c.Digest != d || c.Tag != tagNames(hub.List())[i] {
				t.Errorf("%s signature %d: %+v %v", repo, i, c, err)
			}
		}
	}

	// Lose the Docker Hub signatures; the next run keeps the image (up to
	// date) and signs it again before it counts.
	sigRef, err := name.ParseReference(repoOf(hub.Hashed)+":"+registry.SignatureTag(d), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(sigRef); err != nil {
		t.Fatal(err)
	}
	builds := h.buildCount()
	rep, err := h.run(context.Background(), h.client(), o)
	if err != nil {
		t.Fatal(err)
	}
	if ir := imageReport(t, *rep, "tf2-cpu"); ir.Result != UpToDate || h.buildCount() != builds {
		t.Errorf("second run: %+v, %d builds", ir, h.buildCount()-builds)
	}
	if sigs, err := h.client().Signatures(context.Background(), repoOf(hub.Hashed), d); err != nil || len(sigs) != 2 {
		t.Errorf("after the second run: %d signatures (%v), want 2", len(sigs), err)
	}
}

func listTags(t *testing.T, repo string) []string {
	t.Helper()
	tags, err := supplytest.Tags(repo)
	if err != nil {
		t.Fatal(err)
	}
	return tags
}

// checkSupply refuses a signature by another key, and one made for another
// tag (a tag moved to another of the project's signed images).
func TestCheckSignaturesKeyAndTag(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	mk := func(key []byte, tag string) registry.Signature {
		path := t.TempDir() + "/k.pem"
		writeFile(t, path, key)
		return signedBy(t, path, sign.Claim{Repository: "r", Digest: d, Tag: tag, Image: "tf2-cpu", Inputs: "sha256:in"})
	}
	ours, theirs := genKey(t), genKey(t)
	path := t.TempDir() + "/ours.pem"
	writeFile(t, path, ours)
	v, err := sign.LoadVerifier(path)
	if err != nil {
		t.Fatal(err)
	}
	w := supplyWant{Image: "tf2-cpu", Inputs: "sha256:in", Tags: []string{"t1"}}
	check := func(sigs ...registry.Signature) []string {
		var errs []string
		checkSignatures(sigs, v, d, w, func(f string, a ...any) { errs = append(errs, f) })
		return errs
	}
	if errs := check(mk(ours, "t1")); len(errs) != 0 {
		t.Errorf("good signature refused: %v", errs)
	}
	for name, s := range map[string]registry.Signature{"other key": mk(theirs, "t1"), "other tag": mk(ours, "t2")} {
		if errs := check(s); len(errs) != 1 {
			t.Errorf("%s: accepted (%v)", name, errs)
		}
	}
}

func genKey(t *testing.T) []byte {
	t.Helper()
	k, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
