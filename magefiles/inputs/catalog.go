package inputs

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/determined-ai/environments/magefiles/catalog"
)

// pipArgs are the catalog build arguments whose value is a pip argument
// list; archMapped are those install_frameworks.sh adapts on arm64.
var (
	pipArgs    = []string{"TENSORFLOW_PIP", "TORCH_PIP", "TORCHVISION_PIP", "TORCH_TB_PROFILER_PIP", "HOROVOD_PIP", "DEEPSPEED_PIP"}
	archMapped = []string{"TENSORFLOW_PIP", "TORCH_PIP", "TORCHVISION_PIP", "TORCH_TB_PROFILER_PIP"}
)

// catalogInputs derives an image's inputs from the catalog: the external
// image a base starts from, and the *_PIP and APEX_GIT build arguments.
func catalogInputs(img catalog.Image, st stage) ([]Input, error) {
	var out []Input
	if img.From != "" {
		in, err := imageInput(img.From, "catalog "+img.Name+" From")
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		in.Gone = img.FromGone
		out = append(out, in)
	}
	for _, arg := range pipArgs {
		v, ok := st.args[arg]
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		where := "catalog " + img.Name + " " + arg
		amd, err := parsePipArgs(v, where)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		if !slices.Contains(st.arches, "arm64") || !slices.Contains(archMapped, arg) {
			out = append(out, amd...)
			continue
		}
		arm, err := parsePipArgs(forArm64(v), where)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		for i := range amd {
			if amd[i].Key() == arm[i].Key() {
				out = append(out, amd[i])
				continue
			}
			a, b := amd[i], arm[i]
			a.Arch, b.Arch = "amd64", "arm64"
			out = append(out, a, b)
		}
	}
	if v := strings.TrimSpace(st.args["APEX_GIT"]); v != "" {
		in, err := gitInput(v, "catalog "+img.Name+" APEX_GIT")
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		out = append(out, in)
	}
	return out, nil
}

// imageInput is an external image reference with the registry it is pulled
// from.
func imageInput(ref, where string) (Input, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return Input{}, fmt.Errorf("external image %q: %w", ref, err)
	}
	reg := r.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return Input{Kind: Image, Name: ref, Source: reg, Where: where}, nil
}

// forArm64 is install_frameworks.sh's for_arch on arm64: a "+cpu" local
// version is dropped and tensorflow-cpu==V becomes tensorflow-aarch64==V.
func forArm64(spec string) string {
	words := strings.Fields(spec)
	for i, w := range words {
		switch {
		case strings.HasPrefix(w, "tensorflow-cpu=="):
			words[i] = "tensorflow-aarch64==" + strings.TrimPrefix(w, "tensorflow-cpu==")
		case strings.Contains(w, "==") && strings.HasSuffix(w, "+cpu"):
			words[i] = strings.TrimSuffix(w, "+cpu")
		}
	}
	return strings.Join(words, " ")
}

// requirement is a pip requirement: project, extras, specifier.
var requirement = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*((?:[=~<>!]=?|===)\s*\S.*)?$`)

// parsePipArgs reads a pip argument list ("torch==1.12.0+cpu -f URL"): the
// requirements, wheel URLs and git URLs in it, with its find-links pages.
func parsePipArgs(v, where string) ([]Input, error) {
	words := strings.Fields(v)
	var reqs, links []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-f" || w == "--find-links":
			if i+1 == len(words) {
				return nil, fmt.Errorf("%s=%q: %s without a URL", where, v, w)
			}
			links = append(links, words[i+1])
			i++
		case strings.HasPrefix(w, "--find-links="):
			links = append(links, strings.TrimPrefix(w, "--find-links="))
		case w == "--no-binary" || w == "--only-binary" || w == "-c" || w == "-r":
			i++
		case strings.HasPrefix(w, "-"):
		default:
			reqs = append(reqs, w)
		}
	}
	var out []Input
	for _, r := range reqs {
		in, err := pipRequirement(r, where)
		if err != nil {
			return nil, err
		}
		if in.Kind == Pip {
			in.FindLinks = links
		}
		out = append(out, in)
	}
	return out, nil
}

// pipRequirement reads one requirement: "name==1.0", "git+URL@ref", a URL.
func pipRequirement(r, where string) (Input, error) {
	switch {
	case strings.HasPrefix(r, "git+"):
		return gitInput(strings.TrimPrefix(r, "git+"), where)
	case strings.HasPrefix(r, "https://") || strings.HasPrefix(r, "http://"):
		return fileInput(r, "", where), nil
	}
	m := requirement.FindStringSubmatch(r)
	if m == nil {
		return Input{}, fmt.Errorf("%s: %q is not a pip requirement (NAME, NAME==VERSION, NAME~=VERSION, a URL or git+URL@REF)", where, r)
	}
	return Input{Kind: Pip, Name: m[1] + m[2], Version: strings.ReplaceAll(m[3], " ", ""), Source: PyPI, Where: where}, nil
}

// gitInput reads "https://host/repo.git@REF".
func gitInput(v, where string) (Input, error) {
	i := strings.LastIndex(v, "@")
	if i < 0 || !strings.HasPrefix(v, "https://") || i == len(v)-1 {
		return Input{}, fmt.Errorf("%s=%q: want https://HOST/REPO.git@REF (a branch, tag or commit)", where, v)
	}
	return Input{Kind: Git, Name: v[:i], Version: v[i+1:], Source: hostOf(v[:i]), Where: where}, nil
}

func fileInput(url, sum, where string) Input {
	return Input{Kind: File, Name: url, Checksum: sum, Source: hostOf(url), Where: where}
}

// hostOf is the scheme and host of a URL.
func hostOf(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	host, _, _ := strings.Cut(rest, "/")
	return scheme + "://" + host
}
