package publish

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/sign"
)

// signedBy signs a claim with the key at path.
func signedBy(t *testing.T, path string, c sign.Claim) registry.Signature {
	t.Helper()
	s, err := sign.LoadSigner(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sign.NewPayload(c)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	return registry.Signature{Payload: p, Signature: sig}
}

// A tag without a valid signature is reported with what was found
// instead: nothing, a signature of another key, or one of ours for another
// digest, image or inputs. Without wanted inputs, any inputs will do.
func TestCheckSignaturesSaysWhatItFound(t *testing.T) {
	d, other := "sha256:"+strings.Repeat("ab", 32), "sha256:"+strings.Repeat("cd", 32)
	ours, theirs := writeKey(t), writeKey(t)
	v, err := sign.LoadVerifier(ours)
	if err != nil {
		t.Fatal(err)
	}
	claim := sign.Claim{Repository: "r", Digest: d, Tag: "t1", Image: "tf2-cpu", Inputs: "sha256:in"}
	with := func(f func(*sign.Claim)) sign.Claim { c := claim; f(&c); return c }
	bogus := signedBy(t, ours, claim)
	bogus.Payload = []byte("not a payload")
	s, err := sign.LoadSigner(ours)
	if err != nil {
		t.Fatal(err)
	}
	if bogus.Signature, err = s.Sign(bogus.Payload); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		inputs string
		sigs   []registry.Signature
		want   string // "" = accepted
	}{
		{"ours", "sha256:in", []registry.Signature{signedBy(t, ours, claim)}, ""},
		{"none", "sha256:in", nil, "(none found)"},
		{"another key", "sha256:in", []registry.Signature{signedBy(t, theirs, claim)}, "(found one that does not verify with the key)"},
		{"another digest", "sha256:in", []registry.Signature{signedBy(t, ours, with(func(c *sign.Claim) { c.Digest = other }))}, "(found one for " + other + ")"},
		{"another image", "sha256:in", []registry.Signature{signedBy(t, ours, with(func(c *sign.Claim) { c.Image = "pt-cpu" }))}, "(found one for image pt-cpu inputs sha256:in)"},
		{"other inputs", "sha256:in", []registry.Signature{signedBy(t, ours, with(func(c *sign.Claim) { c.Inputs = "sha256:x" }))}, "(found one for image tf2-cpu inputs sha256:x)"},
		{"any inputs when none are wanted", "", []registry.Signature{signedBy(t, ours, with(func(c *sign.Claim) { c.Inputs = "sha256:x" }))}, ""},
		{"not a payload", "sha256:in", []registry.Signature{bogus}, "(found "},
	} {
		var errs []string
		w := supplyWant{Image: "tf2-cpu", Inputs: tc.inputs, Tags: []string{"t1"}}
		checkSignatures(tc.sigs, v, d, w, func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) })
		switch {
		case tc.want == "" && len(errs) != 0:
			t.Errorf("%s: refused: %v", tc.name, errs)
		case tc.want != "" && (len(errs) != 1 || !strings.Contains(errs[0], tc.want) || (tc.want == "(found " && strings.Contains(errs[0], "none found"))):
			t.Errorf("%s: %v, want one error saying %q", tc.name, errs, tc.want)
		}
	}
}

// addRecorder records the signatures added.
type addRecorder struct {
	*registry.Client
	mu    sync.Mutex
	calls int
	tags  []string
}

func (a *addRecorder) AddSignatures(ctx context.Context, repo, digest string, sigs []registry.Signature) error {
	a.mu.Lock()
	a.calls++
	for _, s := range sigs {
		if c, err := sign.ParsePayload(s.Payload); err == nil {
			a.tags = append(a.tags, c.Tag)
		}
	}
	a.mu.Unlock()
	return a.Client.AddSignatures(ctx, repo, digest, sigs)
}

// Signing adds a signature for each tag that has no valid one of this
// key, digest, image and inputs, and none when all are there.
func TestSigningAddsOnlyTheMissingSignatures(t *testing.T) {
	h := newHarness(t)
	e, sp := baseSpec(t, h)
	ctx := context.Background()
	idx, err := standInIndex(sp, sp.Platforms, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	digest := pushTo(t, idx, sp.Tags.Hashed)
	repo := repoOf(sp.Tags.Hashed)
	w := wantOf(sp)
	if len(w.Tags) < 2 {
		t.Fatalf("tags %v: want two or more", w.Tags)
	}
	key := h.env["SIGNING_KEY"]
	claim := func(tag string) sign.Claim {
		return sign.Claim{Repository: repo, Digest: digest, Tag: tag, Image: w.Image, Inputs: w.Inputs, Bases: joinBases(w.Bases)}
	}
	second := w.Tags[1]
	old := []registry.Signature{
		signedBy(t, key, claim(w.Tags[0])),      // valid: kept
		signedBy(t, writeKey(t), claim(second)), // another key
		signedBy(t, key, func() sign.Claim { c := claim(second); c.Digest = "sha256:" + strings.Repeat("0", 64); return c }()),
		signedBy(t, key, func() sign.Claim { c := claim(second); c.Image = "pt-cpu"; return c }()),
		signedBy(t, key, func() sign.Claim { c := claim(second); c.Inputs = "sha256:other"; return c }()),
	}
	if err := h.client().AddSignatures(ctx, repo, digest, old); err != nil {
		t.Fatal(err)
	}
	signer, err := sign.LoadSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	rec := &addRecorder{Client: h.client()}
	p := &publisher{e: e, reg: rec, signer: &signer}
	if err := p.signImage(ctx, sp, digest); err != nil {
		t.Fatal(err)
	}
	if want := w.Tags[1:]; rec.calls != 1 || !slices.Equal(rec.tags, want) {
		t.Errorf("%d additions of signatures for %v, want one for %v", rec.calls, rec.tags, want)
	}
	if err := p.signImage(ctx, sp, digest); err != nil || rec.calls != 1 {
		t.Errorf("signing again: %v, %d additions; want none", err, rec.calls-1)
	}
}
