package publish

import (
	"context"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/sign"
)

// VerifyTag accepts a published tag and says what it found; a tag moved to
// another of the project's signed images, or checked with another key, is
// refused.
func TestVerifyTag(t *testing.T) {
	h := newHarness(t)
	if _, err := h.run(context.Background(), h.client(), Options{Images: []string{"tf2-cpu", "pt-cpu"}, Dockerhub: true, NGC: true}); err != nil {
		t.Fatal(err)
	}
	v, err := sign.LoadVerifier(h.env["SIGNING_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	tf2, tf2NGC := tagsOf(t, h, "tf2-cpu")
	refs := append(tf2.List(), tf2NGC.List()...)
	reps, err := VerifyRefs(context.Background(), h.client(), v, refs)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(reps[0].Lines(), "\n")
	for _, want := range []string{"signed for  image tf2-cpu", "linux/arm64", "attestation sha256:", "base        " + h.hub, "SBOM lists  horovod==0.27.0, tensorflow-cpu==2.11.1"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}

	// Each platform is shown with the attestation of that platform.
	supply, err := h.client().ReadSupply(context.Background(), repoOf(tf2.Hashed)+"@"+reps[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	for p, pa := range reps[0].Platforms {
		ok := pa[0] == supply.Platforms[p]
		for _, a := range supply.Attestations {
			if a.Digest == pa[1] && a.RefDigest != pa[0] && a.Subject != pa[0] {
				ok = false
			}
		}
		if !ok || pa[1] == "none" {
			t.Errorf("platform %s shown as %v: not its own image and attestation (%+v)", p, pa, supply)
		}
	}

	// tf2-cpu's hashed tag moved to pt-cpu's signed image.
	pt, _ := tagsOf(t, h, "pt-cpu")
	ptDigest, _ := digestOf(t, pt.Hashed)
	if err := h.client().Tag(context.Background(), repoOf(pt.Hashed)+"@"+ptDigest, []string{tf2.Hashed}); err != nil {
		t.Fatal(err)
	}
	_, err = VerifyTag(context.Background(), h.client(), v, tf2.Hashed)
	if err == nil || !strings.Contains(err.Error(), "which is not the image signed for this tag: it is signed for image pt-cpu") {
		t.Errorf("moved tag: %v", err)
	}

	other, err := sign.LoadVerifier(writeKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyTag(context.Background(), h.client(), other, tf2.Versioned); err == nil || !strings.Contains(err.Error(), "no signature of sha256:") {
		t.Errorf("another key: %v", err)
	}
}
