package publish

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/determined-ai/environments/magefiles/plan"
	"github.com/determined-ai/environments/magefiles/registry"
)

// upToDate reports whether the published image already matches the spec: its
// hashed tag exists, carries the spec's inputs digest in the plan.InputsLabel
// label, has exactly the spec's platforms, and the versioned tag points at the
// same digest. It returns that digest when it does, and otherwise why not
// (for the log). Errors other than "not found" are returned: a registry that
// cannot answer would fail the push as well.
func upToDate(ctx context.Context, reg Registry, sp plan.Spec) (digest, why string, err error) {
	img, err := reg.Inspect(ctx, sp.Tags.Hashed)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return "", sp.Tags.Hashed + " is not in the registry", nil
	case err != nil:
		return "", "", fmt.Errorf("checking whether %s is up to date: %w", sp.Tags.Hashed, err)
	}
	if got := img.Labels[plan.InputsLabel]; got != sp.InputsDigest {
		if got == "" {
			got = "none"
		}
		return "", fmt.Sprintf("%s has inputs label %s, the plan wants %s", sp.Tags.Hashed, got, sp.InputsDigest), nil
	}
	if !samePlatforms(img.Platforms, sp.Platforms) {
		return "", fmt.Sprintf("%s is for %s, the plan wants %s", sp.Tags.Hashed,
			strings.Join(img.Platforms, ","), strings.Join(sp.Platforms, ",")), nil
	}
	ver, err := reg.Inspect(ctx, sp.Tags.Versioned)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return "", sp.Tags.Versioned + " is not in the registry", nil
	case err != nil:
		return "", "", fmt.Errorf("checking whether %s is up to date: %w", sp.Tags.Versioned, err)
	}
	if ver.Digest != img.Digest {
		return "", fmt.Sprintf("%s is %s but %s is %s", sp.Tags.Hashed, img.Digest, sp.Tags.Versioned, ver.Digest), nil
	}
	return img.Digest, "", nil
}

// samePlatforms compares two platform lists as sets.
func samePlatforms(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}
