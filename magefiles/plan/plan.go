// Package plan turns the catalog and the variant settings into build specs:
// the exact `docker buildx build` argv, tags and platforms of every image, in
// dependency order. It is pure: it runs nothing and reads no file.
package plan

import (
	"cmp"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/variant"
)

// Mode says what a build does with its result.
type Mode int

const (
	// Build is `mage build`: without PUSH=1 every image is built for one
	// platform (PLATFORM, default the host's) and loaded into the local Docker
	// Engine, a derived image with its base stage in the same build; with
	// PUSH=1 every platform is built and pushed.
	Build Mode = iota
	// Publish pushes every image with --push and a metadata file.
	Publish
	// LocalArm64 builds one image for linux/arm64 only and loads it into the
	// local Docker Engine; a derived image builds its base stage in the same
	// build, so nothing is pulled from or pushed to a registry.
	LocalArm64
)

// InputsLabel is the image label holding the digest of the build inputs; the
// publisher compares it to decide whether an image is up to date.
const InputsLabel = "ai.determined.environments.inputs"

// SourceURL is the value of org.opencontainers.image.source.
const SourceURL = "https://github.com/determined-ai/environments"

// Request is what a target asks for.
type Request struct {
	// Images are catalog names; their bases are added in front.
	Images []string
	Mode   Mode
	// Sources says what each stage reads (see inputs.go); nil leaves the
	// sources out of the inputs digest (tests).
	Sources Sources
	// MetadataDir receives one <image>.json metadata file per build in Publish mode.
	MetadataDir string
	// Driver is the buildx driver of the builder (DriverDocker, ...); it
	// decides how a local build reaches the Docker Engine (LoadArgs).
	Driver string
	// Builder is the --builder of the builds; "" means the settings'
	// (BUILDX_BUILDER, or the builder `mage builder` creates). A local build
	// names the engine's own builder here when it runs on it.
	Builder string
}

// Spec is one `docker buildx build`.
type Spec struct {
	Image     catalog.Image
	Base      string // catalog name of the image it is built on, "" if none
	Recipe    string // path of the Dockerfile
	Context   string // build context directory
	Target    string
	Platforms []string
	BuildArgs []catalog.Arg
	Secrets   []string // BuildKit secret ids, their values come from the environment of buildx
	Tags      Tags     // Docker Hub tags
	NGCTags   Tags     // NGC tags, zero when the image does not go to NGC
	// Push is true when the build pushes its tags (--push).
	Push bool
	// Load is true when the build puts its one-platform result into the
	// local Docker Engine (LoadArgs).
	Load bool
	// MetadataFile is the --metadata-file path ("" for none).
	MetadataFile string
	// InputsDigest identifies the build inputs (see inputsDigest).
	InputsDigest string
	Argv         []string

	// BaseTag is the base image's hashed tag BASE_IMAGE names ("" without a
	// catalog base); External are the other images from outside the recipe
	// the build starts from or reads. Pin pins them by digest.
	BaseTag  string
	External []string
	// Pinned maps each pinned image reference to its digest.
	Pinned map[string]string
	// Contexts are --build-context values (external images the recipe names
	// itself, pinned by digest).
	Contexts []string
	// Sources is the digest of what the stage reads (StageSources.Digest).
	Sources string
	opts    argvOptions
}

// Plan returns the specs for req in dependency order (every base before the
// images built on it), without duplicates.
func Plan(s variant.Settings, req Request) ([]Spec, error) {
	if err := checkPlatformSetting(s, req.Mode); err != nil {
		return nil, err
	}
	order, err := closure(req.Images, req.Mode != LocalArm64)
	if err != nil {
		return nil, err
	}
	specs := make([]Spec, 0, len(order))
	for _, img := range order {
		sp, err := spec(img, s, req)
		if err != nil {
			return nil, err
		}
		specs = append(specs, sp)
	}
	return specs, nil
}

// closure adds the bases of the requested images and orders the result as in
// the catalog (which lists bases first). In LocalArm64 mode the caller asks
// for one image and its base is folded into the same build instead.
func closure(names []string, withBases bool) ([]catalog.Image, error) {
	want := map[string]bool{}
	for _, n := range names {
		img, err := catalog.Lookup(n)
		if err != nil {
			return nil, err
		}
		want[img.Name] = true
		if img.Base != "" && withBases {
			want[img.Base] = true
		}
	}
	out := make([]catalog.Image, 0, len(want))
	for _, img := range catalog.All() {
		if want[img.Name] {
			out = append(out, img)
		}
	}
	return out, nil
}

func on(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// horovodArgs are the Horovod settings every framework image gets; a CUDA
// framework image also gets its NCCL and AWS plugin switches (f).
func horovodArgs(img catalog.Image, s variant.Settings, f Fabric) []catalog.Arg {
	args := []catalog.Arg{arg("HOROVOD_WITH_MPI", "0"), arg("HOROVOD_WITHOUT_MPI", "1"), arg("HOROVOD_CPU_OPERATIONS", "GLOO")}
	// The ROCm image ignores the MPI variants (its tag does not carry them).
	if s.MPI && img.Accel != catalog.ROCm {
		args = []catalog.Arg{arg("HOROVOD_WITH_MPI", "1"), arg("HOROVOD_WITHOUT_MPI", "0"), arg("HOROVOD_CPU_OPERATIONS", "MPI")}
	}
	if img.Accel != catalog.CPU {
		gpuOps := "NCCL"
		if s.MPI && !s.NCCL && img.Accel == catalog.CUDA {
			gpuOps = "MPI"
		}
		args = append(args, catalog.Arg{Name: "HOROVOD_GPU_OPERATIONS", Value: gpuOps})
	}
	if img.Accel != catalog.ROCm {
		args = append(args, catalog.Arg{Name: "WITH_MPI", Value: on(s.MPI)})
	}
	if img.Accel == catalog.CUDA {
		// NCCL_ON and AWS_PLUGIN are ENV switches: "1" or "".
		args = append(args, arg("NCCL_ON", onOrEmpty(f.NCCL)), arg("AWS_PLUGIN", onOrEmpty(f.AWSPlugin)),
			arg("WITH_AWS_TRACE", on(s.AWSTrace && f.AWSPlugin)))
	}
	return args
}

// baseArgs are the variant settings a base image gets: WITH_OFI and
// WITH_NCCL only where the catalog says the base takes them (f).
func baseArgs(img catalog.Image, s variant.Settings, f Fabric) []catalog.Arg {
	args := []catalog.Arg{arg("WITH_MPI", on(s.MPI)), arg("WITH_OFI", on(f.OFI))}
	if img.Accel == catalog.CUDA {
		args = append(args, catalog.Arg{Name: "WITH_NCCL", Value: on(f.NCCL)})
	}
	// The switches of the base stage's ENV: a Dockerfile can only test a
	// value for being empty (${X:+...}), and the recipes use no newer
	// substitution (${X#0}), which the Dockerfile frontend built into Docker
	// Engines before 26 refuses. "1" or "" each; UCX_ON is "ucx" unless OFI.
	args = append(args, arg("MPI_ON", onOrEmpty(s.MPI)), arg("OFI_ON", onOrEmpty(f.OFI)))
	if img.Accel == catalog.CUDA {
		args = append(args, arg("NCCL_ON", onOrEmpty(f.NCCL)))
	}
	ucx := "ucx"
	if f.OFI {
		ucx = ""
	}
	return append(args, arg("UCX_ON", ucx))
}

// onOrEmpty is "1" for true and "" for false.
func onOrEmpty(b bool) string {
	if b {
		return "1"
	}
	return ""
}

// BuildArgs are every build argument of img under s, BASE_IMAGE first, then
// the pins, then the variant settings, then the OCI label inputs.
func BuildArgs(img catalog.Image, s variant.Settings) ([]catalog.Arg, error) {
	args := make([]catalog.Arg, 0, 16+len(img.Pins))
	switch {
	case img.Base != "":
		base, err := catalog.Lookup(img.Base)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		t, err := DockerhubTags(base, s)
		if err != nil {
			return nil, err
		}
		args = append(args, catalog.Arg{Name: "BASE_IMAGE", Value: t.Hashed})
	default:
		args = append(args, catalog.Arg{Name: "BASE_IMAGE", Value: img.From})
	}
	args = append(args, img.Pins...)
	f, err := FabricOf(img, s)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	if img.IsBase() {
		args = append(args, baseArgs(img, s, f)...)
	} else {
		args = append(args, horovodArgs(img, s, f)...)
	}
	return append(args, labelArgs(s)...), nil
}

func labelArgs(s variant.Settings) []catalog.Arg {
	return []catalog.Arg{arg("BUILD_REVISION", s.Hash), arg("BUILD_VERSION", s.Version), arg("BUILD_SOURCE", SourceURL)}
}

// secrets are the BuildKit secrets a build needs: where the internal source
// of the AWS OFI-NCCL plugin is, for the image that builds the plugin
// (install_aws_ofi_nccl.sh uses it whenever INTERNAL_AWS_DS is given).
func secrets(img catalog.Image, s variant.Settings) []string {
	if f, err := FabricOf(img, s); err == nil && f.AWSPlugin {
		return []string{"INTERNAL_AWS_DS", "INTERNAL_AWS_PATH"}
	}
	return nil
}

func spec(img catalog.Image, s variant.Settings, req Request) (Spec, error) {
	args, err := BuildArgs(img, s)
	if err != nil {
		return Spec{}, err
	}
	if err := checkNoSecrets(img.Name, args); err != nil {
		return Spec{}, err
	}
	tags, err := DockerhubTags(img, s)
	if err != nil {
		return Spec{}, err
	}
	ngc, err := NGCTags(img, s)
	if err != nil {
		return Spec{}, err
	}
	sp := Spec{
		Image: img, Base: img.Base,
		Recipe:    filepath.Join(s.RecipesDir, img.Recipe),
		Context:   s.RecipesDir,
		Target:    img.Stage,
		Platforms: Platforms(img, s),
		BuildArgs: args,
		Secrets:   secrets(img, s),
		Tags:      tags,
		NGCTags:   ngc,
		BaseTag:   baseTag(img, args),
		opts:      argvOptions{builder: cmp.Or(req.Builder, s.Builder), cache: s.Cache, mode: req.Mode, driver: req.Driver, sbom: s.SBOMGenerator},
	}
	switch req.Mode {
	case Publish:
		sp.Push = true
		if req.MetadataDir != "" {
			sp.MetadataFile = filepath.Join(req.MetadataDir, img.Name+".json")
		}
	case Build:
		if s.Push {
			sp.Push = true
			break
		}
		p, err := localPlatform(img, sp.Platforms, s)
		if err != nil {
			return Spec{}, err
		}
		if err := localize(&sp, s, p, true); err != nil {
			return Spec{}, err
		}
	case LocalArm64:
		p, err := arm64Platform(img, sp.Platforms, s)
		if err != nil {
			return Spec{}, err
		}
		if err := localize(&sp, s, p, false); err != nil {
			return Spec{}, err
		}
	}
	if sp.Base == "" {
		sp.BaseTag = "" // the base stage is folded into the build
	}
	if err := addSources(&sp, req.Sources); err != nil {
		return Spec{}, err
	}
	sp.InputsDigest = inputsDigest(sp)
	sp.Argv = argv(sp)
	return sp, nil
}

// Arm64Images are the catalog images that localArm64 can build under s.
func Arm64Images(s variant.Settings) []string { return imagesFor(s, Arm64) }

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// CacheRef is the registry cache reference of an image (CACHE=registry).
func CacheRef(sp Spec) string {
	repo := sp.Tags.Hashed[:strings.LastIndex(sp.Tags.Hashed, ":")]
	return repo + ":buildcache-" + sp.Image.Name
}

func argv(sp Spec) []string {
	mode := sp.opts.mode
	// Room for every word below, so the slice grows once.
	a := make([]string, 0, 20+2*(len(sp.BuildArgs)+len(sp.Contexts)+len(sp.Secrets)))
	a = append(a, "docker", "buildx", "build")
	if sp.opts.builder != "" {
		a = append(a, "--builder", sp.opts.builder)
	}
	a = append(a, "--progress", "plain")
	a = append(a, "--file", sp.Recipe, "--target", sp.Target, "--platform", strings.Join(sp.Platforms, ","))
	for _, arg := range sp.BuildArgs {
		a = append(a, "--build-arg", arg.Name+"="+arg.Value)
	}
	for _, c := range sp.Contexts {
		a = append(a, "--build-context", c)
	}
	for _, id := range sp.Secrets {
		a = append(a, "--secret", "id="+id+",env="+id)
	}
	a = append(a, "--label", InputsLabel+"="+sp.InputsDigest)
	for _, t := range sp.BuildTags() {
		a = append(a, "--tag", t)
	}
	if sp.opts.cache == "registry" && mode != LocalArm64 {
		ref := CacheRef(sp)
		a = append(a, "--cache-from", "type=registry,ref="+ref)
		if sp.Push {
			a = append(a, "--cache-to", "type=registry,ref="+ref+",mode=max")
		}
	}
	a = append(a, sp.Attestations()...)
	if sp.Push {
		a = append(a, "--push")
	} else {
		a = append(a, LoadArgs(sp.opts.driver)...)
	}
	if sp.MetadataFile != "" {
		a = append(a, "--metadata-file", sp.MetadataFile)
	}
	return append(a, sp.Context)
}

// BuildTags are the tags the build itself gives the image: every tag, but
// in Publish mode only the hashed one, which is all the images built on this
// one need (they start FROM it by digest as soon as it is pushed); the
// publisher points the others at the pushed digest by registry API
// (TagsAfterPush), off the dependents' critical path.
func (sp Spec) BuildTags() []string {
	if sp.opts.mode == Publish && sp.Tags.Hashed != "" {
		return []string{sp.Tags.Hashed}
	}
	return sp.Tags.List()
}

// TagsAfterPush are the tags the publisher points at the pushed digest
// after the build (see BuildTags).
func (sp Spec) TagsAfterPush() []string {
	if sp.opts.mode != Publish || sp.Tags.Hashed == "" {
		return nil
	}
	var out []string
	for _, t := range sp.Tags.List() {
		if t != sp.Tags.Hashed {
			out = append(out, t)
		}
	}
	return out
}

func arg(name, value string) catalog.Arg { return catalog.Arg{Name: name, Value: value} }
