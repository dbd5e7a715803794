package plan

import (
	"fmt"
	"slices"
	"sync"

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
	hashed, versioned := n+"-"+s.Hash, n+"-"+s.Version
	if err := checkRepo(repo); err != nil {
		return Tags{}, fmt.Errorf("image %s: tag %q is not a valid reference: %w", img.Name, repo+":"+hashed, err)
	}
	for _, tag := range []string{hashed, versioned} {
		if !validTag(tag) {
			return Tags{}, fmt.Errorf("image %s: tag %q is not a valid reference: %q must be 1 to 128 letters, digits, _ . and -, not starting with . or -", img.Name, repo+":"+tag, tag)
		}
	}
	return Tags{Hashed: repo + ":" + hashed, Versioned: repo + ":" + versioned}, nil
}

// checkedRepos remembers each repository checkRepo has parsed: a matrix
// names a few repositories hundreds of times.
var checkedRepos sync.Map // repository -> error (nil when valid)

// checkRepo parses a repository as go-containerregistry does, once per
// repository.
func checkRepo(repo string) error {
	if err, ok := checkedRepos.Load(repo); ok {
		if err == nil {
			return nil
		}
		return err.(error)
	}
	_, err := name.NewRepository(repo)
	checkedRepos.Store(repo, err)
	return err
}

// validTag reports whether tag is a valid tag: [A-Za-z0-9_][A-Za-z0-9_.-]*,
// at most 128 characters (the rule go-containerregistry and the registry
// API apply).
func validTag(tag string) bool {
	if tag == "" || len(tag) > 128 || tag[0] == '.' || tag[0] == '-' {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
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

// ImagesNeeding are the catalog images that are built for platform under s.
func ImagesNeeding(platform string, s variant.Settings) []string {
	var out []string
	for _, img := range catalog.All() {
		if slices.Contains(Platforms(img, s), platform) {
			out = append(out, img.Name)
		}
	}
	return out
}
