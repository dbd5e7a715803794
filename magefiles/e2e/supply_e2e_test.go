//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/determined-ai/environments/magefiles/plan"

	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/sign"
	"github.com/determined-ai/environments/magefiles/stack"
	"github.com/determined-ai/environments/magefiles/supplytest"
)

// testLog writes lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestSupplyChainPublish: `publishImage tf2-cpu` with real buildx
// attestations (max provenance, SBOM by the generator stand-in): each of
// the two images has, at Docker Hub and at NGC, one attestation per
// platform whose subject is that platform, a provenance naming the pinned
// base digests, an SBOM listing the framework pins, one signature per tag
// that verifies; NGC holds only the contract's tags and the signature tag;
// `mage verify` accepts every tag and prints what it found.
func TestSupplyChainPublish(t *testing.T) {
	requireTarget(t, "verify")
	// A repository of its own: the NGC tag list below must not see the
	// other scenarios' images.
	sc := newScenario(t, map[string]string{"REGISTRY_REPO": "environments-supply"}, nil)
	r := sc.run(nil, "publishImage", "tf2-cpu")
	if r.code != 0 {
		t.Fatalf("publishImage tf2-cpu: exit %d\n%s", r.code, r.tail(60))
	}
	_, specs := sc.plan(nil)
	c := registry.New()
	v, err := sign.LoadVerifier(signingKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		if sp.Image.Name != "tf2-cpu" && sp.Image.Name != "cpu-py-38-base" {
			continue
		}
		d := headDigest(t, sp.Tags.Hashed)
		repos := []string{repoOf(sp.Tags.Hashed)}
		if sp.NGCTags.Hashed != "" {
			repos = append(repos, repoOf(sp.NGCTags.Hashed))
		}
		for _, repo := range repos {
			s, err := c.ReadSupply(context.Background(), repo+"@"+d)
			if err != nil {
				t.Fatalf("%s: %v", repo, err)
			}
			if len(s.Attestations) != len(sp.Platforms) {
				t.Errorf("%s %s: %d attestations for %v", sp.Image.Name, repo, len(s.Attestations), sp.Platforms)
			}
			for _, a := range s.Attestations {
				t.Logf("%s at %s: attestation %s subject %s (%d bytes): %d statements", sp.Image.Name, repo, a.Digest, a.Subject, a.Bytes, len(a.Statements))
				var types []string
				for _, st := range a.Statements {
					t.Logf("  %s: %d bytes", st.PredicateType, st.Bytes)
					types = append(types, st.PredicateType)
					if strings.HasPrefix(st.PredicateType, "https://slsa.dev/provenance/") {
						// Max mode records the recipe and the build
						// arguments, the commit among them.
						for _, want := range []string{"build-arg:BUILD_REVISION", sc.hash, "Dockerfile.cpu"} {
							if !strings.Contains(string(st.Predicate), want) {
								t.Errorf("%s: the provenance does not record %q", sp.Image.Name, want)
							}
						}
						for ref, bd := range sp.Pinned {
							if !strings.Contains(string(st.Predicate), strings.TrimPrefix(bd, "sha256:")) {
								t.Errorf("%s: provenance does not name %s@%s", sp.Image.Name, ref, bd)
							}
						}
					}
				}
				if !slices.Contains(types, "https://spdx.dev/Document") {
					t.Errorf("%s: attestation %s has no SBOM: %v", sp.Image.Name, a.Digest, types)
				}
			}
			sigs, err := c.Signatures(context.Background(), repo, d)
			if err != nil || len(sigs) != 2 {
				t.Fatalf("%s %s: %d signatures (%v), want one per tag", sp.Image.Name, repo, len(sigs), err)
			}
			for _, s := range sigs {
				if err := v.Verify(s.Payload, s.Signature); err != nil {
					t.Errorf("%s %s: %v", sp.Image.Name, repo, err)
				}
			}
		}
		if sp.Image.Name == "tf2-cpu" {
			want := []string{tagOf(sp.NGCTags.Hashed), tagOf(sp.NGCTags.Versioned), registry.SignatureTag(d)}
			slices.Sort(want)
			if got := listTags(t, repoOf(sp.NGCTags.Hashed)); !slices.Equal(got, want) {
				t.Errorf("NGC tags %v, want %v (contract tags and the signature's only)", got, want)
			}
		}
	}

	// cosign (pinned in tools/cosign) verifies the in-process signatures at
	// both registries, bound to each tag, and refuses one for another tag.
	cosign, err := stack.BuildCosign(context.Background(), testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		if sp.Image.Name != "tf2-cpu" {
			continue
		}
		for _, ref := range append(sp.Tags.List(), sp.NGCTags.List()...) {
			if out, err := cosignVerify(t, cosign, ref, tagOf(ref)); err != nil {
				t.Errorf("cosign verify %s: %v\n%s", ref, err, out)
			}
		}
		// As if the tag of another image (pt-cpu's) had been moved here.
		other := strings.Replace(tagOf(sp.Tags.Hashed), "pytorch-1.12-tf-2.11", "pytorch-1.12", 1)
		out, err := cosignVerify(t, cosign, sp.Tags.Hashed, other)
		if err == nil || !strings.Contains(out, "no matching signatures") {
			t.Errorf("cosign verify of %s as tag %s: %v\n%s", sp.Tags.Hashed, other, err, out)
		}
	}

	r = sc.run(nil, "verify", "tf2-cpu")
	if r.code != 0 {
		t.Fatalf("verify tf2-cpu: exit %d\n%s", r.code, r.tail(60))
	}
	for _, want := range []string{"signed for  image tf2-cpu", "SBOM lists  horovod==0.27.0, tensorflow-cpu==2.11.1", "base        " + stk.Hub, "verified 4 tags"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("verify output lacks %q", want)
		}
	}
}

func repoOf(ref string) string { return ref[:strings.LastIndex(ref, ":")] }
func tagOf(ref string) string  { return ref[strings.LastIndex(ref, ":")+1:] }

func listTags(t *testing.T, repo string) []string {
	t.Helper()
	tags, err := supplytest.Tags(repo)
	if err != nil {
		t.Fatal(err)
	}
	return tags
}

// TestSupplyChainRefusals: the checks on what the real stack holds, each
// made to fail by one change to a published tf2-cpu (written under a new
// tag, re-signed for it with the publisher's key so that only the change
// is wrong): `mage verify` refuses each, naming the problem; and a publish
// that finds its image up to date but without an attestation for a
// platform fails the image and writes no artifact file.
func TestSupplyChainRefusals(t *testing.T) {
	requireTarget(t, "verify")
	sc := newScenario(t, map[string]string{"REGISTRY_REPO": "environments-refusals"}, nil)
	if r := sc.run(nil, "publishImage", "tf2-cpu"); r.code != 0 {
		t.Fatalf("publishImage tf2-cpu: exit %d\n%s", r.code, r.tail(60))
	}
	_, specs := sc.plan(nil)
	var tf2, base plan.Spec
	for _, sp := range specs {
		switch sp.Image.Name {
		case "tf2-cpu":
			tf2 = sp
		case "cpu-py-38-base":
			base = sp
		}
	}
	ctx := context.Background()
	c := registry.New()
	signer, err := sign.LoadSigner(signingKey)
	if err != nil {
		t.Fatal(err)
	}
	other, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	otherKey := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(otherKey, other, 0o600); err != nil {
		t.Fatal(err)
	}
	otherSigner, err := sign.LoadSigner(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	hub := repoOf(tf2.Tags.Hashed)
	orig := headDigest(t, tf2.Tags.Hashed)
	baseDigest := headDigest(t, base.Tags.Hashed)
	scratch := stk.Hub + "/tampered/" + sc.id
	idxRaw := rawManifestOf(t, hub+"@"+orig)
	// Every child by digest in the scratch repository; each case puts its
	// (changed) index there under its own tag.
	if _, err := c.Copy(ctx, hub+"@"+orig, []string{scratch + ":orig"}); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name    string
		tamper  func(t *testing.T, idx map[string]any) // changes the index (nil: none)
		signer  sign.Signer
		copySig bool // the copy keeps the publisher's signatures instead of re-signing
		want    string
	}{
		{"wrong subject", func(t *testing.T, idx map[string]any) {
			atts, plats := splitIndex(idx)
			// The arm64 attestation is listed as the amd64 one's.
			atts[1]["annotations"].(map[string]any)["vnd.docker.reference.digest"] = plats["linux/amd64"]
		}, signer, false, "but the index says it attests"},
		{"platform without attestation", func(t *testing.T, idx map[string]any) {
			var keep []any
			_, plats := splitIndex(idx)
			for _, m := range idx["manifests"].([]any) {
				d := m.(map[string]any)
				if d["annotations"] != nil && d["annotations"].(map[string]any)["vnd.docker.reference.digest"] == plats["linux/arm64"] {
					continue
				}
				keep = append(keep, m)
			}
			idx["manifests"] = keep
		}, signer, false, "platform linux/arm64 (sha256:"},
		{"provenance naming another base", func(t *testing.T, idx map[string]any) {
			atts, _ := splitIndex(idx)
			for _, a := range atts {
				rewriteProvenance(t, ctx, scratch, a, strings.TrimPrefix(baseDigest, "sha256:"), strings.Repeat("0", 64))
			}
		}, signer, false, "the provenance does not name the base " + base.Tags.Hashed + "@" + baseDigest},
		{"unsigned digest (another key)", nil, otherSigner, false, "no signature of sha256:"},
		{"a copy that drops the signature", nil, signer, true, "no signature of sha256:"},
	}
	for i, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			ref := fmt.Sprintf("%s:case-%d", scratch, i)
			raw := idxRaw
			if cs.tamper != nil {
				var idx map[string]any
				if err := json.Unmarshal(idxRaw, &idx); err != nil {
					t.Fatal(err)
				}
				cs.tamper(t, idx)
				if raw, err = json.Marshal(idx); err != nil {
					t.Fatal(err)
				}
			}
			putRaw(t, ref, raw, "application/vnd.oci.image.index.v1+json")
			d := headDigest(t, ref)
			if !cs.copySig {
				payload, err := sign.NewPayload(sign.Claim{Repository: scratch, Digest: d, Tag: tagOf(ref), Image: "tf2-cpu",
					Inputs: tf2.InputsDigest, Bases: base.Tags.Hashed + "@" + baseDigest})
				if err != nil {
					t.Fatal(err)
				}
				sig, err := cs.signer.Sign(payload)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.AddSignatures(ctx, scratch, d, []registry.Signature{{Payload: payload, Signature: sig}}); err != nil {
					t.Fatal(err)
				}
			}
			r := sc.run(nil, "verify", ref)
			if r.code == 0 || !strings.Contains(r.out, cs.want) {
				t.Errorf("verify %s (%s): exit %d, want a refusal saying %q\n%s", ref, cs.name, r.code, cs.want, r.tail(20))
			}
		})
	}
	// The untouched copy with its own signature re-made for its tag passes:
	// the refusals above come from the changes.
	t.Run("control", func(t *testing.T) {
		ref := scratch + ":control"
		putRaw(t, ref, idxRaw, "application/vnd.oci.image.index.v1+json")
		payload, err := sign.NewPayload(sign.Claim{Repository: scratch, Digest: orig, Tag: "control", Image: "tf2-cpu",
			Inputs: tf2.InputsDigest, Bases: base.Tags.Hashed + "@" + baseDigest})
		if err != nil {
			t.Fatal(err)
		}
		sig, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddSignatures(ctx, scratch, orig, []registry.Signature{{Payload: payload, Signature: sig}}); err != nil {
			t.Fatal(err)
		}
		if r := sc.run(nil, "verify", ref); r.code != 0 {
			t.Errorf("verify of the untouched copy: exit %d\n%s", r.code, r.tail(20))
		}
	})

	// A publish that keeps tf2-cpu (same inputs) finds an arm64 platform
	// without attestation under its tags: the image fails, no artifact.
	var idx map[string]any
	if err := json.Unmarshal(idxRaw, &idx); err != nil {
		t.Fatal(err)
	}
	cases[1].tamper(t, idx)
	raw, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tf2.Tags.List() {
		putRaw(t, tag, raw, "application/vnd.oci.image.index.v1+json")
	}
	r := sc.run(nil, "publishImage", "tf2-cpu")
	if r.code == 0 || !strings.Contains(r.out, "tf2-cpu at Docker Hub: supply-chain check failed") || !strings.Contains(r.out, "platform linux/arm64") {
		t.Errorf("publish of an image without an arm64 attestation: exit %d\n%s", r.code, r.tail(30))
	}
	if arts := readArtifacts(t, sc.artifacts); len(arts) != 0 {
		t.Errorf("artifacts written: %v", arts)
	}
}

// splitIndex returns the attestation descriptors of a raw index and the
// platform digests.
func splitIndex(idx map[string]any) ([]map[string]any, map[string]string) {
	var atts []map[string]any
	plats := map[string]string{}
	for _, m := range idx["manifests"].([]any) {
		d := m.(map[string]any)
		p, _ := d["platform"].(map[string]any)
		if p == nil {
			continue
		}
		if p["os"] == "unknown" {
			atts = append(atts, d)
			continue
		}
		plats[p["os"].(string)+"/"+p["architecture"].(string)] = d["digest"].(string)
	}
	return atts, plats
}

// rewriteProvenance replaces from by to in the provenance statement of the
// attestation desc lists, uploads the new statement and attestation
// manifest to repo, and points desc at the new manifest.
func rewriteProvenance(t *testing.T, ctx context.Context, repo string, desc map[string]any, from, to string) {
	t.Helper()
	raw := rawManifestOf(t, repo+"@"+desc["digest"].(string))
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	r, err := name.NewRepository(repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	changed := false
	for _, l := range m["layers"].([]any) {
		ld := l.(map[string]any)
		if !strings.HasPrefix(fmt.Sprint(ld["annotations"]), "map[in-toto.io/predicate-type:https://slsa.dev/provenance/") {
			continue
		}
		h, err := v1.NewHash(ld["digest"].(string))
		if err != nil {
			t.Fatal(err)
		}
		layer, err := remote.Layer(r.Digest(h.String()))
		if err != nil {
			t.Fatal(err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), from) {
			t.Fatalf("the provenance does not name %s to begin with", from)
		}
		nl := static.NewLayer([]byte(strings.ReplaceAll(string(body), from, to)), types.MediaType(ld["mediaType"].(string)))
		if err := remote.WriteLayer(r, nl, remote.WithContext(ctx)); err != nil {
			t.Fatal(err)
		}
		nd, _ := nl.Digest()
		ns, _ := nl.Size()
		ld["digest"], ld["size"] = nd.String(), ns
		changed = true
	}
	if !changed {
		t.Fatal("no provenance layer")
	}
	nraw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	h, n, err := v1.SHA256(strings.NewReader(string(nraw)))
	if err != nil {
		t.Fatal(err)
	}
	putRaw(t, repo+"@"+h.String(), nraw, m["mediaType"].(string))
	desc["digest"], desc["size"] = h.String(), n
}

// rawManifest is a manifest as bytes, for remote.Put.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

func putRaw(t *testing.T, ref string, raw []byte, mediaType string) {
	t.Helper()
	rr, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(rr, rawManifest{raw: raw, mt: types.MediaType(mediaType)}); err != nil {
		t.Fatalf("putting %s: %v", ref, err)
	}
}

func rawManifestOf(t *testing.T, ref string) []byte {
	t.Helper()
	rr, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Get(rr)
	if err != nil {
		t.Fatal(err)
	}
	return d.Manifest
}

// cosignVerify checks ref with the pinned cosign (tools/cosign) and the
// suite's public key, the signature bound to tag by its annotation.
func cosignVerify(t *testing.T, cosign, ref, tag string) (string, error) {
	t.Helper()
	v, err := sign.LoadVerifier(signingKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := v.PublicPEM()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cosign.pub"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cosign, "verify", "--key", filepath.Join(dir, "cosign.pub"), "--insecure-ignore-tlog",
		"--allow-http-registry", "--output", "text", "-a", sign.OptTag+"="+tag, ref)
	// No sigstore TUF repository here: cosign warns and goes on (key mode).
	cmd.Env = append(os.Environ(), "HOME="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}
