// Package inputs declares every external input of every image — the images
// a stage starts from, the files the recipes download (with the checksums
// they verify), git repositories at a ref, pip requirements and apt packages
// with the indexes they come from — and asks each source whether the input
// still exists.
//
// What the catalog pins (base images, the *_PIP and *_GIT build arguments)
// is derived from magefiles/catalog; what the recipes in dockerfile_scripts/
// fetch themselves is declared in recipes.go. A unit test reads the recipes
// and fails when they name a URL, checksum, git ref, pip pin or apt package
// that is not declared there, or when a declaration names something the
// recipes no longer fetch.
package inputs

import (
	"fmt"
	"slices"
	"strings"

	"github.com/determined-ai/environments/magefiles/catalog"
)

// Kind is the kind of source an input comes from.
type Kind string

// The kinds of input, each checked against its own kind of source.
const (
	// Image: a container image in a registry (Name is the reference).
	Image Kind = "image"
	// File: a file downloaded over HTTP(S) (Name is the URL; Checksum the
	// checksum the recipe verifies, if it does).
	File Kind = "file"
	// Git: a git repository (Name, the clone URL) at a branch, tag or
	// commit (Version).
	Git Kind = "git"
	// Pip: a Python requirement (Name, the project; Version, the specifier,
	// empty for any version) from a PEP 503 index (Source) or the
	// find-links pages beside it.
	Pip Kind = "pip"
	// Apt: a Debian package (Name; Version empty for any) from an apt
	// repository (Source, Suite, Components, Arch).
	Apt Kind = "apt"
	// Conda: a conda package (Name, Version) from a channel (Source, the
	// channel's subdirectory URL such as .../pkgs/main/linux-64).
	Conda Kind = "conda"
)

// Kinds lists every kind in the order they are printed.
var Kinds = []Kind{Image, File, Git, Pip, Apt, Conda}

// Default sources, each replaceable for a mirror (see Mirrors).
const (
	PyPI          = "https://pypi.org/simple"
	UbuntuArchive = "http://archive.ubuntu.com/ubuntu"
	UbuntuPorts   = "http://ports.ubuntu.com/ubuntu-ports"
	GoogleCloud   = "https://packages.cloud.google.com/apt"
)

// Input is one external input of an image.
type Input struct {
	Kind Kind `json:"kind"`
	// Name: image reference, URL, git repository URL, pip project, apt or
	// conda package.
	Name string `json:"name"`
	// Version: pip specifier ("==1.2.3", "~=3.5.0", "" any), git ref, conda
	// version, apt version ("" any).
	Version string `json:"version,omitempty"`
	// Checksum is what the recipe verifies a file against, "ALGORITHM:HEX"
	// ("sha256:1ea2...", "md5:85d7..."), "" when it verifies none.
	Checksum string `json:"checksum,omitempty"`
	// Source is where the input comes from: the registry, the file's host,
	// the pip index, the apt repository or conda channel URL.
	Source string `json:"source"`
	// FindLinks are the pages pip searches besides the index (pip -f).
	FindLinks []string `json:"find_links,omitempty"`
	// Suite and Components locate an apt package in its repository.
	Suite      string   `json:"suite,omitempty"`
	Components []string `json:"components,omitempty"`
	// Arch is the architecture the input is for ("amd64", "arm64"), empty
	// when it is the same for every platform.
	Arch string `json:"arch,omitempty"`
	// Constraint marks a pip constraint (pip -c): it limits versions, it
	// installs nothing.
	Constraint bool `json:"constraint,omitempty"`
	// Where says where the input is declared: the recipe script or file, or
	// the catalog build argument.
	Where string `json:"where"`
	// When is the build setting under which the stage reads the input
	// ("WITH_MPI=1 WITH_OFI=1"), empty when it always does.
	When string `json:"when,omitempty"`
	// Gone is the catalog's note that an image no longer exists where it
	// was published: the check then expects it missing (a warning), unless
	// a mirror (REGISTRY_MIRRORS) has it.
	Gone string `json:"gone,omitempty"`
}

// Key identifies an input across images: two images reading the same thing
// from the same place share one check.
func (in Input) Key() string {
	return strings.Join([]string{string(in.Kind), in.Source, in.Suite, in.Arch, in.Name, in.Version, in.Checksum,
		strings.Join(in.FindLinks, " ")}, "|")
}

// String is the input as one line names it: kind, name, version, source.
func (in Input) String() string {
	var b strings.Builder
	b.WriteString(string(in.Kind) + " " + in.Name)
	switch in.Kind {
	case Git:
		b.WriteString("@" + in.Version)
	case Pip:
		b.WriteString(in.Version)
	case Apt, Conda:
		if in.Version != "" {
			b.WriteString("=" + in.Version)
		}
	}
	var where []string
	if in.Suite != "" {
		where = append(where, in.Suite)
	}
	if in.Arch != "" {
		where = append(where, in.Arch)
	}
	if len(where) > 0 {
		b.WriteString(" (" + strings.Join(where, ", ") + ")")
	}
	return b.String()
}

// Describe is where the input comes from, for a listing: the index, the
// repository, the checksum.
func (in Input) Describe() string {
	var parts []string
	switch in.Kind {
	case Image:
		parts = append(parts, "registry "+in.Source)
		if in.Gone != "" {
			parts = append(parts, "gone upstream: "+in.Gone)
		}
	case File:
		if in.Checksum != "" {
			parts = append(parts, "checksum "+in.Checksum)
		} else {
			parts = append(parts, "no checksum (the recipe verifies none)")
		}
	case Git:
		parts = append(parts, "git "+in.Source)
	case Pip:
		parts = append(parts, "index "+in.Source)
		for _, f := range in.FindLinks {
			parts = append(parts, "find-links "+f)
		}
		if in.Constraint {
			parts = append(parts, "constraint")
		}
	case Apt:
		parts = append(parts, fmt.Sprintf("apt %s %s %s", in.Source, in.Suite, strings.Join(in.Components, ",")))
	case Conda:
		parts = append(parts, "channel "+in.Source)
	}
	if in.When != "" {
		parts = append(parts, "when "+in.When)
	}
	parts = append(parts, "from "+in.Where)
	return strings.Join(parts, "; ")
}

// ImageInputs is what one catalog image reads from outside the project: the
// inputs of its own stage (a framework image also reads everything its base
// read, listed under the base).
type ImageInputs struct {
	Image  string  `json:"image"`
	Base   string  `json:"base,omitempty"`
	Inputs []Input `json:"inputs"`
}

// All returns the inputs of every catalog image, in catalog order.
func All() ([]ImageInputs, error) {
	var out []ImageInputs
	for _, img := range catalog.All() {
		ins, err := For(img)
		if err != nil {
			return nil, err
		}
		out = append(out, ImageInputs{Image: img.Name, Base: img.Base, Inputs: ins})
	}
	return out, nil
}

// For returns the inputs of one image's own stage: the catalog's pins and
// what the recipe scripts of that stage fetch, in a stable order.
func For(img catalog.Image) ([]Input, error) {
	st, err := stageOf(img)
	if err != nil {
		return nil, err
	}
	ins, err := catalogInputs(img, st)
	if err != nil {
		return nil, err
	}
	rec, err := recipeInputs(st)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", img.Name, err)
	}
	return dedupe(append(ins, rec...)), nil
}

func dedupe(ins []Input) []Input {
	seen := map[string]bool{}
	var out []Input
	for _, in := range ins {
		if k := in.Key() + "|" + in.When; !seen[k] {
			seen[k] = true
			out = append(out, in)
		}
	}
	slices.SortStableFunc(out, func(a, b Input) int {
		return slices.Index(Kinds, a.Kind) - slices.Index(Kinds, b.Kind)
	})
	return out
}

// stage is what decides which recipe inputs an image's build reads.
type stage struct {
	img   catalog.Image
	name  string // "base", "framework", "rocm"
	accel catalog.Accelerator
	// suite is the Ubuntu release's code name ("focal").
	suite string
	// arches are the Debian architectures the image is built for.
	arches []string
	// args are the image's own pinned build arguments.
	args map[string]string
}

func (s stage) has(arg string) bool { return strings.TrimSpace(s.args[arg]) != "" }

// ubuntuSuites maps the Ubuntu versions of the catalog to their code names.
var ubuntuSuites = map[string]string{"18.04": "bionic", "20.04": "focal", "22.04": "jammy"}

func stageOf(img catalog.Image) (stage, error) {
	st := stage{img: img, name: img.Stage, accel: img.Accel, arches: []string{"amd64"}, args: map[string]string{}}
	for _, a := range img.Pins {
		st.args[a.Name] = a.Value
	}
	from := img
	if img.Base != "" {
		b, err := catalog.Lookup(img.Base)
		if err != nil {
			return st, fmt.Errorf("image %s: base: %w", img.Name, err)
		}
		from = b
	}
	if from.MultiArch {
		st.arches = append(st.arches, "arm64")
	}
	ubuntu := ""
	for _, a := range from.Pins {
		if a.Name == "UBUNTU_VERSION" {
			ubuntu = strings.TrimPrefix(a.Value, "ubuntu")
		}
	}
	if ubuntu == "" {
		// The ROCm image starts from a vendor image that names its Ubuntu.
		if i := strings.Index(from.From, "ubuntu"); i >= 0 {
			ubuntu = strings.TrimLeft(from.From[i+len("ubuntu"):], "_-")
			if len(ubuntu) >= 5 {
				ubuntu = ubuntu[:5]
			}
		}
	}
	suite, ok := ubuntuSuites[ubuntu]
	if !ok {
		return st, fmt.Errorf("image %s: cannot tell its Ubuntu release from UBUNTU_VERSION or %q (known: 18.04, 20.04, 22.04)", img.Name, from.From)
	}
	st.suite = suite
	return st, nil
}
