package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
	"github.com/determined-ai/environments/magefiles/sign"
)

// Supply chain (docs/supply-chain.md): every published image is signed (one
// cosign signature per tag) after its push, and before its artifact file is
// written its attestations and signatures are checked at Docker Hub and
// again at NGC. A failed check fails the image as a failed push does.

// errSupply marks a failed supply-chain check.
var errSupply = errors.New("supply-chain check failed")

// Predicate types the checks read.
const (
	provenancePrefix = "https://slsa.dev/provenance/"
	spdxPredicate    = "https://spdx.dev/Document"
)

// supplyWant is what an image's attestations and signatures must show.
type supplyWant struct {
	Image     string   // catalog name
	Inputs    string   // inputs digest
	Platforms []string // planned platforms
	// Bases are the images the build started from, pinned by digest:
	// reference -> digest. The provenance must name each digest.
	Bases map[string]string
	// Packages are the pinned framework versions the SBOM must list.
	Packages []pkgVersion
	// Tags are the tag names (after the colon) each needing a signature.
	Tags []string
}

type pkgVersion struct{ Name, Version string }

func wantOf(sp plan.Spec) supplyWant {
	return supplyWant{
		Image: sp.Image.Name, Inputs: sp.InputsDigest, Platforms: sp.Platforms,
		Bases: maps.Clone(sp.Pinned), Packages: frameworkPins(sp.Image), Tags: tagNames(sp.Tags.List()),
	}
}

// pipPin matches a pip requirement pinned to one version: torch==1.12.1+cpu.
var pipPin = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$`)

// frameworkPins are the framework versions an image pins: the *_PIP build
// arguments of the form name==version (wheels by URL and git sources name
// no version to check).
func frameworkPins(img catalog.Image) []pkgVersion {
	var out []pkgVersion
	for _, a := range img.Pins {
		if !strings.HasSuffix(a.Name, "_PIP") {
			continue
		}
		fields := strings.Fields(a.Value)
		if len(fields) == 0 {
			continue
		}
		if m := pipPin.FindStringSubmatch(fields[0]); m != nil {
			out = append(out, pkgVersion{Name: m[1], Version: m[2]})
		}
	}
	return out
}

// normPkg is a Python package name as pip compares them (PEP 503).
func normPkg(n string) string {
	return strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(n))
}

// joinBases renders pinned bases as a signature claims them: "ref@digest"
// sorted, separated by spaces; splitBases reads them back.
func joinBases(bases map[string]string) string {
	out := make([]string, 0, len(bases))
	for _, ref := range slices.Sorted(maps.Keys(bases)) {
		out = append(out, ref+"@"+bases[ref])
	}
	return strings.Join(out, " ")
}

func splitBases(s string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Fields(s) {
		if i := strings.LastIndex(f, "@"); i > 0 {
			out[f[:i]] = f[i+1:]
		}
	}
	return out
}

func tagNames(refs []string) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, r[strings.LastIndex(r, ":")+1:])
	}
	return out
}

// checkSupply checks what ReadSupply and Signatures found for digest against
// w; every problem is reported.
func checkSupply(s registry.Supply, sigs []registry.Signature, v sign.Verifier, digest string, w supplyWant) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if s.Digest != digest {
		bad("the index read is %s, want %s", s.Digest, digest)
	}
	platformOf := map[string]string{} // manifest digest -> platform
	for p, d := range s.Platforms {
		platformOf[d] = p
	}
	byPlatform := map[string][]registry.Attestation{}
	for _, a := range s.Attestations {
		subj := a.RefDigest
		if a.Subject != "" && a.RefDigest != "" && a.Subject != a.RefDigest {
			bad("attestation %s has subject %s but the index says it attests %s", a.Digest, a.Subject, a.RefDigest)
			continue
		}
		if subj == "" {
			subj = a.Subject
		}
		p, ok := platformOf[subj]
		if !ok {
			bad("attestation %s has subject %s, which is no platform image of the index", a.Digest, subj)
			continue
		}
		byPlatform[p] = append(byPlatform[p], a)
	}
	for _, p := range w.Platforms {
		md, ok := s.Platforms[p]
		if !ok {
			bad("platform %s is not in the index", p)
			continue
		}
		atts := byPlatform[p]
		switch len(atts) {
		case 0:
			bad("platform %s (%s) has no attestation", p, md)
			continue
		case 1:
		default:
			bad("platform %s (%s) has %d attestations, want one", p, md, len(atts))
			continue
		}
		checkAttestation(atts[0], p, md, w, bad)
	}
	checkSignatures(sigs, v, digest, w, bad)
	if len(errs) > 0 {
		return fmt.Errorf("%w for %s: %w", errSupply, digest, errors.Join(errs...))
	}
	return nil
}

func checkAttestation(a registry.Attestation, platform, md string, w supplyWant, bad func(string, ...any)) {
	var prov, sbom []registry.Statement
	for _, st := range a.Statements {
		if !slices.Contains(st.Subjects, md) {
			bad("platform %s: the %s statement of attestation %s names subjects %v, not the platform's %s",
				platform, st.PredicateType, a.Digest, st.Subjects, md)
		}
		switch {
		case strings.HasPrefix(st.PredicateType, provenancePrefix):
			prov = append(prov, st)
		case st.PredicateType == spdxPredicate:
			sbom = append(sbom, st)
		}
	}
	if len(prov) == 0 {
		bad("platform %s: attestation %s has no provenance", platform, a.Digest)
	} else {
		named := map[string]bool{}
		for _, st := range prov {
			for _, d := range provenanceDigests(st.Predicate) {
				named[d] = true
			}
		}
		for _, ref := range slices.Sorted(maps.Keys(w.Bases)) {
			if d := w.Bases[ref]; !named[d] {
				bad("platform %s: the provenance does not name the base %s@%s the build was pinned to (it names %s)",
					platform, ref, d, strings.Join(slices.Sorted(maps.Keys(named)), ", "))
			}
		}
	}
	if len(sbom) == 0 {
		bad("platform %s: attestation %s has no SBOM", platform, a.Digest)
		return
	}
	listed := map[string]bool{}
	for _, st := range sbom {
		for _, p := range spdxPackages(st.Predicate) {
			listed[normPkg(p.Name)+"=="+p.Version] = true
		}
	}
	for _, p := range w.Packages {
		if !listed[normPkg(p.Name)+"=="+p.Version] {
			bad("platform %s: the SBOM does not list %s %s", platform, p.Name, p.Version)
		}
	}
}

// provenanceDigests are the sha256 digests of the materials of a SLSA v0.2
// provenance and of the resolved dependencies of a v1 one.
func provenanceDigests(pred json.RawMessage) []string {
	type dep struct {
		Digest map[string]string `json:"digest"`
	}
	var p struct {
		Materials       []dep `json:"materials"`
		BuildDefinition struct {
			ResolvedDependencies []dep `json:"resolvedDependencies"`
		} `json:"buildDefinition"`
	}
	if json.Unmarshal(pred, &p) != nil {
		return nil
	}
	var out []string
	for _, d := range append(p.Materials, p.BuildDefinition.ResolvedDependencies...) {
		if h := d.Digest["sha256"]; h != "" {
			out = append(out, "sha256:"+h)
		}
	}
	return out
}

func spdxPackages(pred json.RawMessage) []pkgVersion {
	var doc struct {
		Packages []struct {
			Name        string `json:"name"`
			VersionInfo string `json:"versionInfo"`
		} `json:"packages"`
	}
	if json.Unmarshal(pred, &doc) != nil {
		return nil
	}
	out := make([]pkgVersion, 0, len(doc.Packages))
	for _, p := range doc.Packages {
		out = append(out, pkgVersion{Name: p.Name, Version: p.VersionInfo})
	}
	return out
}

// checkSignatures wants, for every tag of w, a signature that verifies with
// v and names digest, the tag, the image and its inputs.
func checkSignatures(sigs []registry.Signature, v sign.Verifier, digest string, w supplyWant, bad func(string, ...any)) {
	signed := map[string]bool{}
	var seen []string
	for _, s := range sigs {
		if v.Verify(s.Payload, s.Signature) != nil {
			seen = append(seen, "one that does not verify with the key")
			continue
		}
		c, err := sign.ParsePayload(s.Payload)
		if err != nil {
			seen = append(seen, err.Error())
			continue
		}
		switch {
		case c.Digest != digest:
			seen = append(seen, fmt.Sprintf("one for %s", c.Digest))
		case c.Image != w.Image || (w.Inputs != "" && c.Inputs != w.Inputs):
			seen = append(seen, fmt.Sprintf("one for image %s inputs %s", c.Image, c.Inputs))
		default:
			signed[c.Tag] = true
		}
	}
	for _, t := range w.Tags {
		if !signed[t] {
			found := "none found"
			if len(seen) > 0 {
				found = "found " + strings.Join(seen, "; ")
			}
			bad("tag %s: no signature of %s for this tag and image %s verifies with the key (%s)", t, digest, w.Image, found)
		}
	}
}

// signImage adds the missing signatures of digest at the Docker Hub
// repository: one per tag, so images published before signing get theirs
// when they are kept (up to date, reused).
func (p *publisher) signImage(ctx context.Context, sp plan.Spec, digest string) error {
	repo := repoOf(sp.Tags.Hashed)
	w := wantOf(sp)
	p.e.Runner.Note("sign %s@%s for %s", repo, digest, strings.Join(w.Tags, " "))
	if p.dry {
		return nil
	}
	old, err := p.reg.Signatures(ctx, repo, digest)
	if err != nil {
		return fmt.Errorf("signing %s: %w", sp.Image.Name, err)
	}
	have := map[string]bool{}
	for _, s := range old {
		if p.signer.Verifier().Verify(s.Payload, s.Signature) != nil {
			continue
		}
		if c, err := sign.ParsePayload(s.Payload); err == nil && c.Digest == digest && c.Image == w.Image && c.Inputs == w.Inputs {
			have[c.Tag] = true
		}
	}
	var add []registry.Signature
	for _, t := range w.Tags {
		if have[t] {
			continue
		}
		payload, err := sign.NewPayload(sign.Claim{Repository: repo, Digest: digest, Tag: t, Image: w.Image, Inputs: w.Inputs, Bases: joinBases(w.Bases)})
		if err != nil {
			return err
		}
		sig, err := p.signer.Sign(payload)
		if err != nil {
			return err
		}
		add = append(add, registry.Signature{Payload: payload, Signature: sig})
	}
	if len(add) == 0 {
		return nil
	}
	if err := p.reg.AddSignatures(ctx, repo, digest, add); err != nil {
		return fmt.Errorf("signing %s: %w", sp.Image.Name, err)
	}
	return nil
}

// checkSupplyAt reads the attestations and signatures of repo@digest and
// checks them (checkSupply).
func (p *publisher) checkSupplyAt(ctx context.Context, where, repo string, sp plan.Spec, digest string) error {
	p.e.Runner.Note("verify attestations and signatures of %s@%s", repo, digest)
	if p.dry {
		return nil
	}
	s, err := p.reg.ReadSupply(ctx, repo+"@"+digest)
	if err != nil {
		return fmt.Errorf("checking the attestations of %s at %s: %w", sp.Image.Name, where, err)
	}
	sigs, err := p.reg.Signatures(ctx, repo, digest)
	if err != nil {
		return fmt.Errorf("checking the signatures of %s at %s: %w", sp.Image.Name, where, err)
	}
	if err := checkSupply(s, sigs, p.signer.Verifier(), digest, wantOf(sp)); err != nil {
		return fmt.Errorf("%s at %s: %w", sp.Image.Name, where, err)
	}
	return nil
}

// copySignatures copies the signatures of digest from Docker Hub to NGC
// (the whole signature manifest: it holds the signatures of every tag).
func (p *publisher) copySignatures(ctx context.Context, sp plan.Spec, digest string) error {
	src, dst := repoOf(sp.Tags.Hashed), repoOf(sp.NGCTags.Hashed)
	tag := registry.SignatureTag(digest)
	if p.dry {
		tag = "sha256-<hex>.sig"
	}
	p.e.Runner.Note("copy signatures %s:%s -> %s", src, tag, dst)
	if p.dry {
		return nil
	}
	if err := p.reg.CopySignatures(ctx, src, dst, digest); err != nil {
		return fmt.Errorf("%s to NGC: %w", sp.Image.Name, err)
	}
	return nil
}

// loadSigner reads SIGNING_KEY: a publish signs every image, so a real run
// without a key is refused before anything is built.
func (p *publisher) loadSigner() error {
	s := p.e.Settings
	if p.dry {
		return nil
	}
	if s.SigningKey == "" {
		return errors.New("publish: SIGNING_KEY is not set: every published image is signed; set it to an ECDSA P-256 private key file (PEM, unencrypted; docs/supply-chain.md)")
	}
	signer, err := sign.LoadSigner(s.SigningKey)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	p.signer = &signer
	return nil
}
