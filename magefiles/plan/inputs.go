package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/determined-ai/environments/magefiles/catalog"
)

// Sources tells the planner what one stage of a recipe reads. Package build
// implements it by parsing the recipes with BuildKit's parser and hashing the
// build-context files the stage reads.
type Sources interface {
	Stage(recipe, context, target string, args map[string]string) (StageSources, error)
}

// StageSources is what a build of one stage reads besides its build
// arguments.
type StageSources struct {
	// Digest covers the text of the stage and of the stages built with it,
	// and every build-context file they read.
	Digest string
	// Images are the images from outside the recipe the build starts from or
	// reads (expanded FROM lines, --from names), "scratch" excluded.
	Images []string
}

// DigestPlaceholder stands for a digest a dry run does not know (a base
// image's, an external image's).
const DigestPlaceholder = "<digest>"

// labelArgs only feed OCI labels; they are not inputs, so a commit that
// changes no image input changes no inputs digest.
var labelArgNames = map[string]bool{"BUILD_REVISION": true, "BUILD_VERSION": true, "BUILD_SOURCE": true}

// IsLabelArg reports whether a build argument only feeds an OCI label.
func IsLabelArg(name string) bool { return labelArgNames[name] }

// argvOptions are the settings argv needs, kept so Pin can redo it.
type argvOptions struct {
	builder, cache, driver string
	mode                   Mode
	sbom                   string // SBOM generator of a publish build
}

// addSources asks src what sp's stage reads and records it in sp: the
// sources digest and the external images (every image outside the recipe
// but the catalog base the image is built on).
func addSources(sp *Spec, src Sources) error {
	if src == nil {
		return nil
	}
	args := make(map[string]string, len(sp.BuildArgs))
	for _, a := range sp.BuildArgs {
		args[a.Name] = a.Value
	}
	ss, err := src.Stage(sp.Recipe, sp.Context, sp.Target, args)
	if err != nil {
		return fmt.Errorf("image %s: %w", sp.Image.Name, err)
	}
	sp.Sources = ss.Digest
	for _, ref := range ss.Images {
		if ref != sp.BaseTag && !isPinned(ref) {
			sp.External = append(sp.External, ref)
		}
	}
	return nil
}

func isPinned(ref string) bool { return strings.Contains(ref, "@sha256:") }

// Pin returns sp built from images by digest: for each ref -> digest of
// digests (the base image's hashed tag, external images), a build argument
// whose value is ref becomes ref@digest; an external image named in the
// recipe itself gets a --build-context to ref@digest instead. The inputs
// digest and the argv are redone, so the digests are inputs.
func Pin(sp Spec, digests map[string]string) Spec {
	out := sp
	out.BuildArgs = slices.Clone(sp.BuildArgs)
	out.Contexts = slices.Clone(sp.Contexts)
	out.Pinned = maps.Clone(sp.Pinned)
	if out.Pinned == nil {
		out.Pinned = map[string]string{}
	}
	for _, ref := range slices.Sorted(maps.Keys(digests)) {
		d := digests[ref]
		if ref != sp.BaseTag && !slices.Contains(sp.External, ref) {
			continue
		}
		found := false
		for i, a := range out.BuildArgs {
			if a.Value == ref {
				out.BuildArgs[i].Value = ref + "@" + d
				found = true
			}
		}
		if !found {
			out.Contexts = append(out.Contexts, ref+"=docker-image://"+ref+"@"+d)
		}
		out.Pinned[ref] = d
	}
	out.InputsDigest = inputsDigest(out)
	out.Argv = argv(out)
	return out
}

// Unpinned lists the images sp starts from that Pin has not pinned yet: its
// base's hashed tag (if any) and the external images.
func Unpinned(sp Spec) []string {
	var out []string
	for _, ref := range append([]string{sp.BaseTag}, sp.External...) {
		if _, ok := sp.Pinned[ref]; ref != "" && !ok {
			out = append(out, ref)
		}
	}
	return out
}

// inputsDigest hashes what determines the image's content: recipe file name,
// stage, platforms, what the stage reads (sources digest), the build
// arguments except the label ones (an image pinned by digest by its digest
// only), build contexts and secret ids. Neither the commit nor the version
// is an input.
func inputsDigest(sp Spec) string {
	h := sha256.New()
	fmt.Fprintf(h, "recipe=%s\ntarget=%s\nplatforms=%s\nsources=%s\n",
		filepath.Base(sp.Recipe), sp.Target, strings.Join(sp.Platforms, ","), sp.Sources)
	// An image pinned by digest counts by its digest alone: the base's
	// hashed tag names the commit, and its registry may be a mirror.
	byDigest := map[string]string{}
	for ref, d := range sp.Pinned {
		byDigest[ref+"@"+d] = "@" + d
	}
	for _, a := range sp.BuildArgs {
		if !IsLabelArg(a.Name) {
			v := a.Value
			if d, ok := byDigest[v]; ok {
				v = d
			}
			io.WriteString(h, "arg "+a.Name+"="+v+"\n")
		}
	}
	for _, c := range sp.Contexts {
		name, _, _ := strings.Cut(c, "=")
		fmt.Fprintf(h, "context %s=%s\n", name, byDigest[name+"@"+sp.Pinned[name]])
	}
	ids := append([]string(nil), sp.Secrets...)
	sort.Strings(ids)
	fmt.Fprintf(h, "secrets=%s\n", strings.Join(ids, ","))
	if sp.Push {
		// A pushed image carries the attestations (Attestations), so an
		// image published before they existed is not up to date. The
		// generator's digest is not an input: a new generator does not
		// rebuild the images.
		io.WriteString(h, "attestations=provenance:max,sbom\n")
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// baseTag is the value BASE_IMAGE takes for an image built on a catalog base.
func baseTag(img catalog.Image, args []catalog.Arg) string {
	if img.Base == "" {
		return ""
	}
	for _, a := range args {
		if a.Name == "BASE_IMAGE" {
			return a.Value
		}
	}
	return ""
}
