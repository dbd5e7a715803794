//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/determined-ai/environments/magefiles/stack"
)

// The install-plan stand-in bases: the stack's busybox stand-in plus a
// static bash (the recipes' scripts are bash), the recording stand-in tools
// of testdata/installplan/standin.sh in /usr/local/bin, and what the real base
// image has that the scripts look at (CUDA and ROCm directories, the CUDA
// images' NVIDIA apt list, /etc/os-release, conda's Python in the ROCm image).

// standinTools are linked to the stand-in in /usr/local/bin, ahead of
// busybox's applets in PATH.
var standinTools = []string{
	"apt-get", "dpkg", "unattended-upgrade", "curl", "wget", "git", "gpg", "sha256sum", "md5sum",
	"make", "cc", "gcc", "g++", "ldconfig", "groupadd", "useradd", "getent", "install", "conda-installer",
}

// archBinaries are the static programs a stand-in base gets for one
// architecture: Debian's bash-static (downloaded and extracted into the
// stack's cache once) and the flock stand-in of testdata/flock (busybox has
// no flock; build_slot.sh needs one), built with CGO_ENABLED=0.
type archBinaries struct {
	bash, flock string // file contents
}

// standinBinaries returns the archBinaries for amd64 and arm64.
func standinBinaries(ctx context.Context) (map[string]archBinaries, error) {
	out := map[string]archBinaries{}
	dir, err := os.MkdirTemp("", "standin-flock-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for _, arch := range []string{"amd64", "arm64"} {
		p, err := stack.StaticBinary(ctx, io.Discard, "bash-static", arch, "bin/bash-static")
		if err != nil {
			return nil, err
		}
		bash, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		bin := filepath.Join(dir, "flock-"+arch)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./magefiles/e2e/testdata/flock")
		cmd.Dir = rootDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building the flock stand-in for %s: %w\n%s", arch, err, out)
		}
		flock, err := os.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		out[arch] = archBinaries{bash: string(bash), flock: string(flock)}
	}
	return out, nil
}

// baseKind is what a stand-in base imitates.
type baseKind struct {
	ubuntu string // VERSION_ID
	cuda   bool
	rocm   bool
}

func kindOf(ref string) baseKind {
	k := baseKind{ubuntu: "20.04"}
	if strings.Contains(ref, "ubuntu18.04") {
		k.ubuntu = "18.04"
	}
	k.cuda = strings.Contains(ref, "nvidia/cuda")
	k.rocm = strings.Contains(ref, "rocm")
	return k
}

// tarEntry is one file of a stand-in layer.
type tarEntry struct {
	name, content, link string
	mode                int64
	dir                 bool
}

func layerOf(entries []tarEntry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Format: tar.FormatPAX}
		switch {
		case e.dir:
			h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		case e.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.content))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.content)); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// standinData are the recorded indexes the stand-in answers from
// (testdata/installplan/{apt,pypi,conda}), by their path under
// /usr/local/share/installplan.
func standinData() (map[string]string, error) {
	dir := filepath.Join(rootDir, "magefiles", "e2e", "testdata", "installplan")
	out := map[string]string{}
	for _, sub := range []string{"apt", "pypi", "conda"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				return nil, err
			}
			out[sub+"/"+e.Name()] = string(b)
		}
	}
	return out, nil
}

// installPlanTools is what every install-plan stand-in base gets besides
// its kind's files: the static programs per architecture, the stand-in
// script and its recorded indexes.
type installPlanTools struct {
	bins    map[string]archBinaries
	standin string
	data    map[string]string
}

// loadInstallPlanTools reads the stand-in script and its indexes and builds
// the static programs.
func loadInstallPlanTools(ctx context.Context) (installPlanTools, error) {
	standin, err := os.ReadFile(filepath.Join(rootDir, "magefiles", "e2e", "testdata", "installplan", "standin.sh"))
	if err != nil {
		return installPlanTools{}, err
	}
	bins, err := standinBinaries(ctx)
	if err != nil {
		return installPlanTools{}, err
	}
	data, err := standinData()
	if err != nil {
		return installPlanTools{}, err
	}
	return installPlanTools{bins: bins, standin: string(standin), data: data}, nil
}

// standinLayer is the layer added to the stack's stand-in for ref on arch.
func standinLayer(k baseKind, arch string, tools installPlanTools) []tarEntry {
	bins, standin := tools.bins[arch], tools.standin
	dirs := func(names ...string) []tarEntry {
		var out []tarEntry
		for _, n := range names {
			out = append(out, tarEntry{name: n, dir: true, mode: 0o755})
		}
		return out
	}
	es := dirs("usr", "usr/local", "usr/local/bin", "etc", "etc/apt", "etc/apt/sources.list.d", "var", "var/log", "usr/share", "usr/share/keyrings",
		"var/lib", "var/lib/installplan", "var/lib/installplan/dpkg", "lib", "lib/"+map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[arch]+"-linux-gnu")
	es = append(es,
		tarEntry{name: "bin/bash", content: bins.bash, mode: 0o755},
		tarEntry{name: "usr/local/bin/flock", content: bins.flock, mode: 0o755},
		tarEntry{name: "usr/local/bin/standin", content: standin, mode: 0o755},
		tarEntry{name: "etc/os-release", mode: 0o644, content: fmt.Sprintf(
			"NAME=\"Ubuntu\"\nVERSION_ID=\"%s\"\nID=ubuntu\nPRETTY_NAME=\"install-plan stand-in (busybox)\"\n", k.ubuntu)},
		tarEntry{name: "etc/apt/sources.list", mode: 0o644, content: "deb http://archive.ubuntu.com/ubuntu focal main\n"},
		tarEntry{name: "etc/nsswitch.conf", mode: 0o644, content: "passwd:         files\ngroup:          files\nshadow:         files\nhosts:          files dns\n"},
	)
	for _, t := range standinTools {
		es = append(es, tarEntry{name: "usr/local/bin/" + t, link: "/usr/local/bin/standin", mode: 0o777})
	}
	es = append(es, dirs("usr/local/share/installplan", "usr/local/share/installplan/apt",
		"usr/local/share/installplan/pypi", "usr/local/share/installplan/conda")...)
	for p, content := range tools.data {
		es = append(es, tarEntry{name: "usr/local/share/installplan/" + p, content: content, mode: 0o644})
	}
	if k.cuda {
		es = append(es, dirs("usr/local/cuda", "usr/local/cuda/bin", "usr/local/cuda/lib64", "usr/local/cuda/targets",
			"usr/local/cuda/targets/x86_64-linux", "usr/local/cuda/targets/x86_64-linux/lib",
			"usr/local/cuda/targets/x86_64-linux/lib/stubs")...)
		// The CUDA images' own lists, signed with NVIDIA's rotated key.
		es = append(es,
			tarEntry{name: "etc/apt/sources.list.d/cuda.list", mode: 0o644,
				content: "deb https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2004/x86_64 /\n"},
			tarEntry{name: "etc/apt/sources.list.d/nvidia-ml.list", mode: 0o644,
				content: "deb https://developer.download.nvidia.com/compute/machine-learning/repos/ubuntu2004/x86_64 /\n"})
	}
	if k.rocm {
		es = append(es, dirs("opt", "opt/rocm", "opt/rocm/lib", "opt/rocm/hip", "opt/rocm/hip/lib", "opt/rocm/rccl",
			"opt/conda", "opt/conda/bin")...)
		es = append(es, tarEntry{name: "etc/apt/sources.list.d/rocm.list", mode: 0o644,
			content: "deb [arch=amd64] https://repo.radeon.com/rocm/apt/5.0 ubuntu main\n"})
		for _, t := range []string{"python", "python3", "pip", "pip3"} {
			es = append(es, tarEntry{name: "opt/conda/bin/" + t, link: "/usr/local/bin/standin", mode: 0o777})
		}
		es = append(es, tarEntry{name: "var/lib/installplan/python-version", mode: 0o644, content: "3.7.11\n"})
	}
	return es
}

// standinEnv is the base image's environment as the real one has it.
func standinEnv(k baseKind) []string {
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	switch {
	case k.cuda:
		return []string{"PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:" + path,
			"LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64", "NVIDIA_VISIBLE_DEVICES=all"}
	case k.rocm:
		return []string{"PATH=/opt/conda/bin:/opt/rocm/bin:" + path}
	}
	return []string{"PATH=" + path}
}

// pushInstallPlanBase pushes the install-plan stand-in for ref (a FROM
// value of the recipes) to the Mirror and returns its reference there.
func pushInstallPlanBase(ctx context.Context, ref string, tools installPlanTools) (string, error) {
	idx, err := stack.StandInIndex(ctx, stk.Tools())
	if err != nil {
		return "", err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return "", err
	}
	k := kindOf(ref)
	out := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			return "", err
		}
		layer, err := layerOf(standinLayer(k, m.Platform.Architecture, tools))
		if err != nil {
			return "", err
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
			History: v1.History{CreatedBy: "install-plan stand-in tools", Created: v1.Time{Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}}})
		if err != nil {
			return "", err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return "", err
		}
		cf = cf.DeepCopy()
		cf.Config.Env = standinEnv(k)
		cf.Config.Cmd = []string{"/bin/bash"}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return "", err
		}
		out = mutate.AppendManifests(out, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1, Platform: m.Platform}})
	}
	repo := strings.NewReplacer(":", "-", "/", "-", "@", "-").Replace(ref)
	dst := stk.Mirror + "/installplan/" + repo + ":stand-in"
	r, err := name.ParseReference(dst, name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.WriteIndex(r, out, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing the install-plan stand-in for %s to %s: %w", ref, dst, err)
	}
	return dst, nil
}
