package publish

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/sign"
)

// Verifier is what VerifyTag needs from a registry client; *registry.Client
// satisfies it.
type Verifier interface {
	Inspect(ctx context.Context, ref string) (registry.Image, error)
	ReadSupply(ctx context.Context, ref string) (registry.Supply, error)
	Signatures(ctx context.Context, repo, digest string) ([]registry.Signature, error)
}

var _ Verifier = (*registry.Client)(nil)

// TagReport is what VerifyTag found at a tag.
type TagReport struct {
	Ref, Digest string
	// From the signature made for this tag.
	Image, Inputs string
	Bases         map[string]string
	// Platforms maps each platform to its manifest digest and the digest of
	// its attestation.
	Platforms map[string][2]string
	// Packages are the framework pins the SBOM lists.
	Packages []string
	// Signatures counts the signatures of the digest (all tags).
	Signatures int
}

// Lines renders r for people.
func (r TagReport) Lines() []string {
	out := []string{
		fmt.Sprintf("%s", r.Ref),
		fmt.Sprintf("  digest      %s", r.Digest),
		fmt.Sprintf("  signed for  image %s, this tag, inputs %s (%d signatures on the digest)", r.Image, r.Inputs, r.Signatures),
	}
	for _, p := range slices.Sorted(maps.Keys(r.Platforms)) {
		out = append(out, fmt.Sprintf("  %-11s %s, attestation %s", p, r.Platforms[p][0], r.Platforms[p][1]))
	}
	for _, ref := range slices.Sorted(maps.Keys(r.Bases)) {
		out = append(out, fmt.Sprintf("  base        %s@%s (in the provenance)", ref, r.Bases[ref]))
	}
	if len(r.Packages) > 0 {
		out = append(out, "  SBOM lists  "+strings.Join(r.Packages, ", "))
	}
	return out
}

// VerifyTag checks a published tag (docs/supply-chain.md, `mage verify`):
// a signature by v's key names the tag and the digest it points at (so a
// tag moved to another of this project's signed images is refused), the
// image's inputs label is the signed inputs digest, every platform has one
// attestation whose subject is that platform, the provenance names the
// bases the signature names, and the SBOM lists the image's pinned
// framework versions.
func VerifyTag(ctx context.Context, reg Verifier, v sign.Verifier, ref string) (TagReport, error) {
	rep := TagReport{Ref: ref}
	i := strings.LastIndex(ref, ":")
	if i <= 0 || i < strings.LastIndex(ref, "/") || strings.Contains(ref, "@") {
		return rep, fmt.Errorf("verify: %q is not a tag reference (registry/repository:tag)", ref)
	}
	repo, tag := ref[:i], ref[i+1:]
	img, err := reg.Inspect(ctx, ref)
	if err != nil {
		return rep, fmt.Errorf("verify %s: %w", ref, err)
	}
	rep.Digest = img.Digest
	sigs, err := reg.Signatures(ctx, repo, img.Digest)
	if err != nil {
		return rep, fmt.Errorf("verify %s: %w", ref, err)
	}
	rep.Signatures = len(sigs)
	claim, others := claimFor(sigs, v, img.Digest, tag)
	if claim == nil {
		if len(others) > 0 {
			return rep, fmt.Errorf("verify %s: %w: the tag points at %s, which is not the image signed for this tag: it is signed for %s",
				ref, errSupply, img.Digest, strings.Join(others, ", "))
		}
		return rep, fmt.Errorf("verify %s: %w: no signature of %s verifies with the key", ref, errSupply, img.Digest)
	}
	rep.Image, rep.Inputs, rep.Bases = claim.Image, claim.Inputs, splitBases(claim.Bases)
	if got := img.Labels[plan.InputsLabel]; got != claim.Inputs {
		return rep, fmt.Errorf("verify %s: %w: the image's inputs label is %q, its signature says %s", ref, errSupply, got, claim.Inputs)
	}
	cat, err := catalog.Lookup(claim.Image)
	if err != nil {
		return rep, fmt.Errorf("verify %s: signed for image %s: %w", ref, claim.Image, err)
	}
	supply, err := reg.ReadSupply(ctx, repo+"@"+img.Digest)
	if err != nil {
		return rep, fmt.Errorf("verify %s: %w", ref, err)
	}
	want := supplyWant{Image: claim.Image, Inputs: claim.Inputs, Platforms: img.Platforms, Bases: rep.Bases,
		Packages: frameworkPins(cat), Tags: []string{tag}}
	rep.Platforms = map[string][2]string{}
	for p, d := range supply.Platforms {
		att := "none"
		for _, a := range supply.Attestations {
			if a.RefDigest == d || a.Subject == d {
				att = a.Digest
			}
		}
		rep.Platforms[p] = [2]string{d, att}
	}
	for _, p := range want.Packages {
		rep.Packages = append(rep.Packages, p.Name+"=="+p.Version)
	}
	if err := checkSupply(supply, sigs, v, img.Digest, want); err != nil {
		return rep, fmt.Errorf("verify %s: %w", ref, err)
	}
	return rep, nil
}

// claimFor returns the claim of the signature by v that names digest and
// tag, or nil and what the valid signatures of digest are for.
func claimFor(sigs []registry.Signature, v sign.Verifier, digest, tag string) (*sign.Claim, []string) {
	var others []string
	for _, s := range sigs {
		if v.Verify(s.Payload, s.Signature) != nil {
			continue
		}
		c, err := sign.ParsePayload(s.Payload)
		if err != nil || c.Digest != digest {
			continue
		}
		if c.Tag == tag {
			return &c, nil
		}
		others = append(others, fmt.Sprintf("image %s tag %s", c.Image, c.Tag))
	}
	return nil, others
}

// VerifyRefs verifies each ref (VerifyTag) and returns every report and
// every failure.
func VerifyRefs(ctx context.Context, reg Verifier, v sign.Verifier, refs []string) ([]TagReport, error) {
	var reps []TagReport
	var errs []error
	for _, ref := range refs {
		rep, err := VerifyTag(ctx, reg, v, ref)
		reps = append(reps, rep)
		errs = append(errs, err)
	}
	return reps, errors.Join(errs...)
}
