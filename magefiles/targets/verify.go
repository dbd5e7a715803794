package targets

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/publish"
	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/sign"
)

// Verify checks a published image as a user would (docs/supply-chain.md):
// the signature made for the tag (so a tag moved to another signed image is
// refused), the inputs label, one attestation per platform, the provenance
// naming the signed bases, the SBOM listing the pinned framework versions;
// and prints what it found. The argument is a tag reference
// (registry/repository:tag) or a catalog image name, which means its Docker
// Hub tags for this checkout (and its NGC tags when it goes to NGC). Reads
// VERIFY_KEY (the public key, PEM; default the public half of SIGNING_KEY),
// SIGNING_KEY, DOCKERHUB_REGISTRY, REGISTRY_REPO, NGC_REGISTRY,
// NGC_PUBLISH, WITH_MPI, WITH_OFI, WITH_NCCL, WITH_AWS_TRACE.
func Verify(ctx context.Context, imageOrReference string) error {
	e, err := load(ctx)
	if err != nil {
		return err
	}
	s := e.Settings
	keyFile := s.VerifyKey
	if keyFile == "" {
		keyFile = s.SigningKey
	}
	if keyFile == "" {
		return errors.New("verify: no key: set VERIFY_KEY to the publisher's public key file (PEM), or SIGNING_KEY to the private key")
	}
	v, err := sign.LoadVerifier(keyFile)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	refs := []string{imageOrReference}
	img, err := catalog.Lookup(imageOrReference)
	if err != nil && !strings.ContainsAny(imageOrReference, ":/") {
		return err // neither an image name nor a tag reference
	}
	if err == nil {
		hub, err := plan.DockerhubTags(img, s)
		if err != nil {
			return err
		}
		refs = hub.List()
		if plan.GoesToNGC(img, s) {
			ngc, err := plan.NGCTags(img, s)
			if err != nil {
				return err
			}
			refs = append(refs, ngc.List()...)
		}
	}
	reps, err := publish.VerifyRefs(ctx, registry.New(), v, refs)
	for _, r := range reps {
		if r.Digest == "" {
			continue
		}
		for _, l := range r.Lines() {
			fmt.Fprintln(e.Runner.Out, l)
		}
	}
	if err != nil {
		return err
	}
	e.Status.OK("verified %d tags", len(refs))
	return nil
}
