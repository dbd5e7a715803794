// Package builder checks the docker CLI and the buildx plugin, and creates or
// reuses the buildx builder that runs the builds.
package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/determined-ai/environments/magefiles/run"
)

// Minimum versions: buildx 0.15 has --call=check, --metadata-file and named
// contexts; docker 20.10 runs CLI plugins.
var (
	MinDocker = [3]int{20, 10, 0}
	MinBuildx = [3]int{0, 15, 0}
)

var versionRE = regexp.MustCompile(`v?(\d+)\.(\d+)(?:\.(\d+))?`)

// ParseVersion finds the first x.y[.z] in s.
func ParseVersion(s string) ([3]int, bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return [3]int{}, false
	}
	var v [3]int
	for i := 0; i < 3; i++ {
		if m[i+1] != "" {
			v[i], _ = strconv.Atoi(m[i+1])
		}
	}
	return v, true
}

func older(v, min [3]int) bool {
	for i := 0; i < 3; i++ {
		if v[i] != min[i] {
			return v[i] < min[i]
		}
	}
	return false
}

func vstr(v [3]int) string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

// CheckTools fails when docker or buildx is missing or older than the minimum.
func CheckTools(ctx context.Context, r *run.Runner) error {
	// Both versions are asked for at once; docker's is reported first.
	var bout string
	var berr error
	asked := make(chan struct{})
	go func() {
		defer close(asked)
		bout, berr = r.Output(ctx, "docker", "buildx", "version")
	}()
	out, err := r.Output(ctx, "docker", "--version")
	<-asked
	if err != nil {
		return fmt.Errorf("the docker CLI is missing or broken (%v): install Docker's CLI %s or later", err, vstr(MinDocker))
	}
	if v, ok := ParseVersion(out); !ok || older(v, MinDocker) {
		return fmt.Errorf("docker CLI %q is older than %s: upgrade it", out, vstr(MinDocker))
	}
	out, err = bout, berr
	if err != nil {
		return fmt.Errorf("the docker buildx plugin is missing (%v): install buildx %s or later as ~/.docker/cli-plugins/docker-buildx", err, vstr(MinBuildx))
	}
	fields := strings.Fields(out)
	if len(fields) < 2 {
		return fmt.Errorf("cannot read the buildx version from %q", out)
	}
	if v, ok := ParseVersion(fields[1]); !ok || older(v, MinBuildx) {
		return fmt.Errorf("buildx %s is older than %s: upgrade the docker-buildx plugin", fields[1], vstr(MinBuildx))
	}
	return nil
}

// Platforms parses the platforms of `docker buildx inspect` output: every
// "Platforms:" line (one per node), without variants and '*' markers.
func Platforms(inspect string) []string {
	seen := map[string]bool{}
	var out []string
	for _, line := range strings.Split(inspect, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Platforms:")
		if !ok {
			continue
		}
		for _, p := range strings.Split(rest, ",") {
			p = strings.TrimSuffix(strings.TrimSpace(p), "*")
			if parts := strings.Split(p, "/"); len(parts) >= 2 {
				p = parts[0] + "/" + parts[1]
			}
			if p != "" && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// ErrNoBuilder is returned when the named builder does not exist.
var ErrNoBuilder = errors.New("no such buildx builder")

// Info is what `docker buildx inspect` says about a builder.
type Info struct {
	Driver    string   // docker, docker-container, remote, kubernetes
	Platforms []string // of every node
	// Mirrors are the registry mirrors of the BuildKit config it was
	// created with (ConfiguredMirrors): registry host -> mirrors.
	Mirrors map[string][]string
}

// Inspect bootstraps the builder and returns its driver and platforms.
func Inspect(ctx context.Context, r *run.Runner, name string) (Info, error) {
	out, err := r.Output(ctx, "docker", "buildx", "inspect", "--bootstrap", name)
	if err != nil {
		if strings.Contains(err.Error(), "no builder") || strings.Contains(err.Error(), "not found") {
			return Info{}, fmt.Errorf("builder %q: %w", name, ErrNoBuilder)
		}
		return Info{}, fmt.Errorf("inspecting builder %q: %w", name, err)
	}
	return Info{Driver: Driver(out), Platforms: Platforms(out), Mirrors: ConfiguredMirrors(out)}, nil
}

// Ensure makes sure a usable builder exists and returns its driver and platforms. An
// explicitly named builder (BUILDX_BUILDER, explicit=true) must exist: it may
// be remote, kubernetes or multi-node, and is never created here. The default
// builder is created with the docker-container driver if it is missing, its
// BuildKit configured with mirrors (REGISTRY_MIRRORS, registry host -> mirror)
// when there are any.
func Ensure(ctx context.Context, r *run.Runner, name string, explicit bool, mirrors map[string]string) (Info, error) {
	info, err := Inspect(ctx, r, name)
	return EnsureInspected(ctx, r, name, explicit, mirrors, info, err)
}

// EnsureInspected is Ensure after Inspect(ctx, r, name) returned info, err.
func EnsureInspected(ctx context.Context, r *run.Runner, name string, explicit bool, mirrors map[string]string, info Info, err error) (Info, error) {
	if err == nil {
		return info, nil
	}
	if explicit || !errors.Is(err, ErrNoBuilder) {
		return Info{}, fmt.Errorf("%w (BUILDX_BUILDER=%s; `docker buildx ls` lists the builders)", err, name)
	}
	if err := create(ctx, r, name, mirrors); err != nil {
		return Info{}, fmt.Errorf("creating builder %q: %w", name, err)
	}
	return Inspect(ctx, r, name)
}

// create creates the builder name, with a buildkitd.toml of mirrors when
// there are any; buildx keeps a copy, so the file lives only until then.
func create(ctx context.Context, r *run.Runner, name string, mirrors map[string]string) error {
	if len(mirrors) == 0 {
		return r.Run(ctx, CreateArgs(name, ""))
	}
	dir, err := os.MkdirTemp("", "buildkitd-config-")
	if err != nil {
		return fmt.Errorf("writing its BuildKit config: %w", err)
	}
	defer os.RemoveAll(dir) // buildx has its copy once create returns
	conf := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(conf, []byte(BuildkitdConfig(mirrors)), 0o644); err != nil {
		return fmt.Errorf("writing its BuildKit config: %w", err)
	}
	return r.Run(ctx, CreateArgs(name, conf))
}

// DefaultDriver is the driver of the builder Ensure creates.
const DefaultDriver = "docker-container"

// Missing returns the wanted platforms the builder cannot build, each once
// (want may name a platform once per image).
func Missing(have, want []string) []string {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	var out []string
	for _, w := range want {
		if !set[w] {
			out = append(out, w)
			set[w] = true
		}
	}
	return out
}

// EmulationHint says how to add arm64 emulation to a builder.
const EmulationHint = "add arm64 emulation: on Linux `apt-get install qemu-user-static` (binfmt handlers with the F flag) or `docker run --privileged --rm tonistiigi/binfmt --install arm64`, then recreate the builder (`docker buildx rm NAME && mage builder`)"
