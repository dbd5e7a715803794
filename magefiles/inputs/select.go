package inputs

import (
	"fmt"
	"strings"

	"github.com/determined-ai/environments/magefiles/catalog"
)

// Variant is what decides which of an image's inputs one build reads: the
// WITH_* flags ("WITH_MPI" -> true) and the platforms built.
type Variant struct {
	Flags     map[string]bool
	Platforms []string // "linux/amd64", "linux/arm64"
}

// Applies reports whether a build of variant v reads in: every condition
// of in.When holds and in.Arch (if any) is among the platforms.
func (v Variant) Applies(in Input) bool {
	for _, cond := range strings.Fields(in.When) {
		k, want, _ := strings.Cut(cond, "=")
		if v.Flags[k] != (want == "1") {
			return false
		}
	}
	if in.Arch == "" {
		return true
	}
	for _, p := range v.Platforms {
		if strings.TrimPrefix(p, "linux/") == in.Arch {
			return true
		}
	}
	return false
}

// ForBuild returns the inputs a build of image name with variant v reads.
func ForBuild(name string, v Variant) (ImageInputs, error) {
	img, err := catalog.Lookup(name)
	if err != nil {
		return ImageInputs{}, err
	}
	all, err := For(img)
	if err != nil {
		return ImageInputs{}, fmt.Errorf("inputs of %s: %w", name, err)
	}
	out := ImageInputs{Image: img.Name, Base: img.Base}
	for _, in := range all {
		if v.Applies(in) {
			out.Inputs = append(out.Inputs, in)
		}
	}
	return out, nil
}

// Only keeps the inputs of the named image and of its base (which the
// image also reads); an unknown name is refused with the catalog's
// suggestions.
func Only(imgs []ImageInputs, image string) ([]ImageInputs, error) {
	img, err := catalog.Lookup(image)
	if err != nil {
		return nil, err
	}
	var out []ImageInputs
	for _, ii := range imgs {
		if ii.Image == img.Name || ii.Image == img.Base {
			out = append(out, ii)
		}
	}
	return out, nil
}
