package publish

import (
	"fmt"
	"slices"
	"strings"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
)

// decision is what publish does with one image before building anything.
type decision struct {
	// digest is the published image to keep; "" means build.
	digest string
	result Result // UpToDate or Reused
	// retag are the tags to point at digest first (Reused).
	retag []string
	// why a build is needed (for the log).
	why string
}

// decide looks at what the image's tags (hashed, versioned) point at, as
// registry.Lookup found and read them back, and picks:
//
//   - up to date: the hashed tag's image carries the spec's inputs digest in
//     the plan.InputsLabel label and has exactly the spec's platforms, and the
//     versioned tag points at it too;
//   - reuse: one of the two tags holds such an image (a new commit that
//     changed no input finds it at the <name>-<version> tag): the other tag is
//     pointed at it;
//   - build, saying why.
//
// Lookup read every manifest and config and checked every layer of what it
// found, so a kept image needs no second verification.
func decide(f registry.Found, sp plan.Spec) decision {
	tags := sp.Tags.List()
	var whys []string
	fits := func(i int) bool {
		d := f.Digests[i]
		if d == "" {
			whys = append(whys, tags[i]+" is not in the registry")
			return false
		}
		if err := f.Problems[d]; err != nil {
			whys = append(whys, fmt.Sprintf("%s (%s) cannot be read back: %v", tags[i], d, err))
			return false
		}
		img := f.Images[d]
		if got := img.Labels[plan.InputsLabel]; got != sp.InputsDigest {
			if got == "" {
				got = "none"
			}
			whys = append(whys, fmt.Sprintf("%s has inputs label %s, the plan wants %s", tags[i], got, sp.InputsDigest))
			return false
		}
		if !samePlatforms(img.Platforms, sp.Platforms) {
			whys = append(whys, fmt.Sprintf("%s is for %s, the plan wants %s", tags[i],
				strings.Join(img.Platforms, ","), strings.Join(sp.Platforms, ",")))
			return false
		}
		return true
	}
	hashed, versioned := f.Digests[0], f.Digests[1]
	hashedOK := fits(0)
	switch {
	case hashedOK && versioned == hashed:
		return decision{digest: hashed, result: UpToDate}
	case hashedOK:
		// The versioned tag is missing or holds something else.
		return decision{digest: hashed, result: Reused, retag: tags[1:]}
	case versioned != hashed && fits(1):
		return decision{digest: versioned, result: Reused, retag: tags[:1]}
	}
	return decision{why: strings.Join(whys, "; ")}
}

// samePlatforms compares two platform lists as sets.
func samePlatforms(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}
