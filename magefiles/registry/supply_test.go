package registry

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/determined-ai/environments/magefiles/supplytest"
)

func attestedIndex(t *testing.T, faults map[string]string) (string, string) {
	t.Helper()
	src := newMemRegistry(t)
	idx, err := supplytest.Index(supplytest.Options{
		Platforms: twoPlatforms,
		Materials: map[string]string{"docker.io/library/ubuntu:20.04": "sha256:" + strings.Repeat("ab", 32)},
		Packages:  []supplytest.Package{{Name: "torch", Version: "1.12.1+cpu"}},
		Faults:    faults,
	})
	if err != nil {
		t.Fatal(err)
	}
	return src, pushIndex(t, idx, src+"/determined/env:tag-abc")
}

func tagsOf(t *testing.T, repo string) []string {
	t.Helper()
	tags, err := supplytest.Tags(repo)
	if err != nil {
		t.Fatal(err)
	}
	return tags
}

// The copy to NGC carries the attestations (manifests with a subject) and
// writes no referrers fallback tag sha256-<digest> into the destination,
// whose registry has no referrers API (ggcr's in-memory one by default, as
// Debian's docker-registry).
func TestCopyWritesNoReferrersFallbackTag(t *testing.T) {
	src, digest := attestedIndex(t, nil)
	dst := newMemRegistry(t)
	c := testClient()
	if _, err := c.Copy(context.Background(), src+"/determined/env@"+digest, []string{dst + "/ngc/env:a", dst + "/ngc/env:b"}); err != nil {
		t.Fatal(err)
	}
	if got := tagsOf(t, dst+"/ngc/env"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("destination tags %v, want only [a b] (no sha256-... fallback tags)", got)
	}
	s, err := c.ReadSupply(context.Background(), dst+"/ngc/env@"+digest)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Attestations) != 2 || len(s.Platforms) != 2 {
		t.Fatalf("copy has %d attestations for %v, want 2 for 2 platforms", len(s.Attestations), s.Platforms)
	}
	for _, a := range s.Attestations {
		if a.Subject == "" || a.Subject != a.RefDigest || len(a.Statements) != 2 {
			t.Errorf("attestation %+v: want a subject equal to the reference digest and 2 statements", a)
		}
		if !slices.Contains(a.Statements[0].Subjects, a.Subject) {
			t.Errorf("statement subjects %v lack %s", a.Statements[0].Subjects, a.Subject)
		}
	}
}

func TestSignaturesRoundTripAndCopy(t *testing.T) {
	src, digest := attestedIndex(t, nil)
	c := testClient()
	repo := src + "/determined/env"
	if got, err := c.Signatures(context.Background(), repo, digest); err != nil || len(got) != 0 {
		t.Fatalf("unsigned: %v %v, want none", got, err)
	}
	one := Signature{Payload: []byte(`{"a":1}`), Signature: "c2ln"}
	two := Signature{Payload: []byte(`{"a":2}`), Signature: "c2lnMg=="}
	for _, add := range [][]Signature{{one}, {one, two}, {two}} {
		if err := c.AddSignatures(context.Background(), repo, digest, add); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.Signatures(context.Background(), repo, digest)
	if err != nil || len(got) != 2 || string(got[1].Payload) != `{"a":2}` || got[1].Signature != "c2lnMg==" {
		t.Fatalf("signatures %+v %v, want the two added once each", got, err)
	}
	if want := "sha256-" + strings.TrimPrefix(digest, "sha256:") + ".sig"; !slices.Contains(tagsOf(t, repo), want) {
		t.Errorf("tags %v lack %s", tagsOf(t, repo), want)
	}
	dst := newMemRegistry(t)
	if err := c.CopySignatures(context.Background(), repo, dst+"/ngc/env", digest); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Signatures(context.Background(), dst+"/ngc/env", digest); err != nil || len(got) != 2 {
		t.Errorf("copied signatures %+v %v, want 2", got, err)
	}
}
