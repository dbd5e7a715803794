//go:build e2e

package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/sign"
)

// TestSupplyChainPublish: `publishImage tf2-cpu` with real buildx
// attestations (max provenance, SBOM by the generator stand-in): each of
// the two images has, at Docker Hub and at NGC, one attestation per
// platform whose subject is that platform, a provenance naming the pinned
// base digests, an SBOM listing the framework pins, one signature per tag
// that verifies; NGC holds only the contract's tags and the signature tag;
// `mage verify` accepts every tag and prints what it found.
func TestSupplyChainPublish(t *testing.T) {
	requireTarget(t, "verify")
	sc := newScenario(t, nil, nil)
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
					types = append(types, st.PredicateType)
					if strings.HasPrefix(st.PredicateType, "https://slsa.dev/provenance/") {
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
	r, err := name.NewRepository(repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tags)
	return tags
}
