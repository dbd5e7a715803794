package plan

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/determined-ai/environments/magefiles/catalog"
)

// Attestations are the buildx flags of the attestations a pushed build
// (publish, PUSH=1) pushes with the image (docs/supply-chain.md): SLSA
// provenance in max mode (the materials, among them the base images by
// digest; the recipe; the build arguments, which therefore must hold no
// secret: checkNoSecrets) and an SBOM made by the pinned generator
// (SBOM_GENERATOR). Local builds get none: the Docker Engine's image store
// cannot hold them. A PUSH=1 build has the inputs of the publish of the
// same image, so a publish may keep it (and signs it then).
func (sp Spec) Attestations() []string {
	if !sp.Push {
		return nil
	}
	out := []string{"--attest", "type=provenance,mode=max"}
	if sp.opts.sbom != "" {
		out = append(out, "--attest", "type=sbom,generator="+sp.opts.sbom)
	}
	return out
}

// secretName matches build argument names that look like they carry a
// credential.
var secretName = regexp.MustCompile(`(?i)(secret|token|passw|credential|api_?key|private_?key|access_?key|auth)`)

// checkNoSecrets refuses build arguments that look like credentials: max
// mode provenance records every build argument, and the images are public.
// Credentials go through BuildKit secrets (Spec.Secrets, --secret), whose
// values are never recorded.
func checkNoSecrets(image string, args []catalog.Arg) error {
	for _, a := range args {
		if secretName.MatchString(a.Name) {
			return fmt.Errorf("image %s: build argument %s looks like a credential; provenance records build arguments in the public image, pass it as a BuildKit secret (--secret) instead", image, a.Name)
		}
		for _, word := range strings.Fields(a.Value) {
			if u, err := url.Parse(word); err == nil && u.User != nil && u.Host != "" {
				return fmt.Errorf("image %s: build argument %s holds a URL with credentials (%s@...); provenance records build arguments in the public image, pass them as a BuildKit secret (--secret) instead", image, a.Name, u.Scheme+"://"+u.User.Username())
			}
		}
	}
	return nil
}
