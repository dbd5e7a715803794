package plan

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/variant"
)

// TagName is <name> of the contract: prefix + body + suffix, for example
// py-3.8-pytorch-1.12-tf-2.11-cpu or cuda-11.3-pytorch-1.12-gpu-mpi-ofi.
func TagName(img catalog.Image, s variant.Settings) string {
	n := img.Prefix + "-" + img.Body
	if img.Accel == catalog.ROCm {
		// The ROCm image has no suffix and ignores the MPI variants.
		return n
	}
	suffix := "-cpu"
	if img.Accel == catalog.CUDA {
		suffix = "-gpu"
	}
	if f := s.Flavour(); f != "" {
		suffix += "-" + f
	}
	return n + suffix
}

// DockerhubRepo is $DOCKERHUB_REGISTRY/$REGISTRY_REPO.
func DockerhubRepo(s variant.Settings) string { return s.DockerhubRegistry + "/" + s.RegistryRepo }

// NGCRepo is $NGC_REGISTRY/$REGISTRY_REPO.
func NGCRepo(s variant.Settings) string { return s.NGCRegistry + "/" + s.RegistryRepo }

// Tags are the two tags of an image in one repository.
type Tags struct {
	Hashed, Versioned string
}

// List returns the tags hashed first.
func (t Tags) List() []string {
	if t.Hashed == "" {
		return nil
	}
	return []string{t.Hashed, t.Versioned}
}

func tagsIn(repo string, img catalog.Image, s variant.Settings) (Tags, error) {
	n := TagName(img, s)
	t := Tags{Hashed: repo + ":" + n + "-" + s.Hash, Versioned: repo + ":" + n + "-" + s.Version}
	for _, ref := range t.List() {
		if _, err := name.NewTag(ref); err != nil {
			return Tags{}, fmt.Errorf("image %s: tag %q is not a valid reference: %w", img.Name, ref, err)
		}
	}
	return t, nil
}

// DockerhubTags are the image's tags in $DOCKERHUB_REGISTRY/$REGISTRY_REPO.
func DockerhubTags(img catalog.Image, s variant.Settings) (Tags, error) {
	return tagsIn(DockerhubRepo(s), img, s)
}

// GoesToNGC reports whether the image is published to NGC under s.
func GoesToNGC(img catalog.Image, s variant.Settings) bool { return img.NGC && s.NGCPublish }

// NGCTags are the image's NGC tags, or zero Tags when it does not go to NGC.
func NGCTags(img catalog.Image, s variant.Settings) (Tags, error) {
	if !GoesToNGC(img, s) {
		return Tags{}, nil
	}
	return tagsIn(NGCRepo(s), img, s)
}

// Platforms are the image's platforms: CPU images marked multi-arch are
// linux/amd64 and linux/arm64 unless WITH_MPI=1; everything else is linux/amd64.
func Platforms(img catalog.Image, s variant.Settings) []string {
	if img.MultiArch && !s.MPI {
		return []string{"linux/amd64", "linux/arm64"}
	}
	return []string{"linux/amd64"}
}
