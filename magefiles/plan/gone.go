package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/variant"
)

// GoneBaseError is the error of an image whose external base image does not
// exist: neither its registry nor the configured mirror has the tag (NVIDIA
// deletes end-of-life CUDA tags, for one). The run says so before anything
// is built; the images on other bases are published, and the images built on
// this one are skipped.
type GoneBaseError struct {
	Image string // catalog name
	Ref   string // the external image, as the catalog names it
	// Why is the catalog's note on the image (catalog.Image.FromGone), if any.
	Why string
	// Dependents are the planned images built on Image.
	Dependents []string
	// Mirror is the mirror asked first ("" without REGISTRY_MIRRORS).
	Mirror string
	Err    error
}

func (e *GoneBaseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s cannot be built: its base image %s does not exist", e.Image, e.Ref)
	if e.Why != "" {
		fmt.Fprintf(&b, " (%s)", e.Why)
	}
	if len(e.Dependents) > 0 {
		fmt.Fprintf(&b, "; %s, built on it, cannot be built either", strings.Join(e.Dependents, ", "))
	}
	host := RegistryOf(e.Ref)
	if e.Mirror != "" {
		fmt.Fprintf(&b, ". The mirror %s (REGISTRY_MIRRORS) does not have it either: push a copy of %s to %s/%s",
			e.Mirror, e.Ref, e.Mirror, mirrorPath(e.Ref))
	} else {
		fmt.Fprintf(&b, ". To build it, push a copy of %s to a registry you control and set REGISTRY_MIRRORS=%s=HOST[:PORT]", e.Ref, host)
	}
	fmt.Fprintf(&b, "; `mage builder` then creates the builder %s with that mirror (one created before keeps its config: `docker buildx rm %s` first)",
		variant.DefaultBuilder, variant.DefaultBuilder)
	fmt.Fprintf(&b, " (docs/images.md, \"Base images that are gone\"), or leave it out; the other images are not affected: %v", e.Err)
	return b.String()
}

func (e *GoneBaseError) Unwrap() error { return e.Err }

// ErrNoMirror is the cause of a GoneBaseError when no mirror is configured
// for a base the catalog knows is gone (catalog.Image.FromGone).
var ErrNoMirror = errors.New("no registry mirror is configured for it (REGISTRY_MIRRORS)")

// GoneBase returns the GoneBaseError of sp, one of specs, if the catalog
// says the external image its chain starts from is gone
// (catalog.Image.FromGone) and mirrors names no mirror for its registry; the
// tool then says so before anything is built. An image whose catalog base is
// planned too gets none: its base's error covers it.
func GoneBase(sp Spec, specs []Spec, mirrors map[string]string) error {
	root := sp.Image
	for root.Base != "" {
		if slices.ContainsFunc(specs, func(o Spec) bool { return o.Image.Name == root.Base }) {
			return nil
		}
		b, err := catalog.Lookup(root.Base)
		if err != nil {
			return fmt.Errorf("image %s: %w", root.Name, err)
		}
		root = b
	}
	if root.FromGone == "" || mirrors[RegistryOf(root.From)] != "" {
		return nil
	}
	return &GoneBaseError{Image: sp.Image.Name, Ref: root.From, Why: root.FromGone,
		Dependents: Dependents(sp.Image.Name, specs), Err: ErrNoMirror}
}

// Dependents are the images of specs built on name, directly or not.
func Dependents(name string, specs []Spec) []string {
	var out []string
	on := map[string]bool{name: true}
	for _, sp := range specs { // bases come first
		if sp.Base != "" && on[sp.Base] {
			on[sp.Image.Name] = true
			out = append(out, sp.Image.Name)
		}
	}
	return out
}

// RegistryOf is the registry host of ref as REGISTRY_MIRRORS names it
// ("docker.io" for Docker Hub references).
func RegistryOf(ref string) string {
	first, _, found := strings.Cut(ref, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

// mirrorPath is ref's repository and tag on a mirror: "nvidia/cuda:10.2-..."
// stays, "ubuntu:20.04" becomes "library/ubuntu:20.04".
func mirrorPath(ref string) string {
	if RegistryOf(ref) != "docker.io" {
		_, rest, _ := strings.Cut(ref, "/")
		return rest
	}
	ref = strings.TrimPrefix(ref, "docker.io/")
	if !strings.Contains(ref, "/") {
		return "library/" + ref
	}
	return ref
}
