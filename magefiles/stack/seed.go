package stack

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
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
)

// DefaultBaseImages are the base images the project's Dockerfiles start FROM.
var DefaultBaseImages = []string{
	"docker.io/library/ubuntu:20.04",
	"nvidia/cuda:10.2-cudnn7-devel-ubuntu18.04",
	"nvidia/cuda:11.1.1-cudnn8-devel-ubuntu20.04",
	"nvidia/cuda:11.2.2-cudnn8-devel-ubuntu20.04",
	"nvidia/cuda:11.3.1-cudnn8-devel-ubuntu20.04",
	"amdih/pytorch:rocm5.0_ubuntu18.04_py3.7_pytorch_1.10.0",
}

// StandInLabel is set on every stand-in base image config.
const StandInLabel = "ai.determined.e2e.stand-in"

// MirrorRef returns where ref (a Docker Hub reference such as
// "ubuntu:20.04" or "nvidia/cuda:11.3.1-cudnn8-devel-ubuntu20.04") lives on
// the Mirror registry, e.g. "127.0.0.1:PORT/library/ubuntu:20.04".
func (s *Stack) MirrorRef(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("stack: parse %q: %w", ref, err)
	}
	if reg := r.Context().RegistryStr(); reg != name.DefaultRegistry {
		return nil, fmt.Errorf("stack: %q is not a Docker Hub image (registry %s); only docker.io is mirrored", ref, reg)
	}
	return name.ParseReference(s.Mirror+"/"+r.Context().RepositoryStr()+":"+r.Identifier(), name.Insecure)
}

// SeedBaseImages pushes a stand-in base image to the Mirror under each of
// refs (DefaultBaseImages if refs is empty), so FROM lines naming them
// resolve through buildkitd's docker.io mirror. Each is an OCI index for
// linux/amd64 and linux/arm64: FROM scratch with a static busybox, its
// applets linked in /bin, /sbin, /usr/bin and /usr/sbin, /bin/sh and
// /bin/bash, and a minimal /etc.
func (s *Stack) SeedBaseImages(ctx context.Context, refs []string) error {
	if len(refs) == 0 {
		refs = DefaultBaseImages
	}
	start := time.Now()
	idx, err := StandInIndex(ctx, s.tools)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		dst, err := s.MirrorRef(ref)
		if err != nil {
			return err
		}
		if err := remote.WriteIndex(dst, idx, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("stack: push stand-in %s to %s: %w", ref, dst, err)
		}
	}
	logf(s.log, "seeded %d base images on %s in %s", len(refs), s.Mirror, time.Since(start).Round(time.Millisecond))
	return nil
}

// StandInIndex builds the multi-platform stand-in base image.
func StandInIndex(ctx context.Context, t Tools) (v1.ImageIndex, error) {
	// Both busybox binaries come from the same Debian version, so the applet
	// list of the native one is valid for both.
	out, err := exec.CommandContext(ctx, t.BusyboxAmd64, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("stack: %s --list-full: %w", t.BusyboxAmd64, err)
	}
	applets := strings.Fields(string(out))
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range []struct {
		arch, variant, busybox string
	}{{"amd64", "", t.BusyboxAmd64}, {"arm64", "v8", t.BusyboxArm64}} {
		img, err := standInImage(p.arch, p.variant, p.busybox, applets)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				MediaType: types.OCIManifestSchema1,
				Platform:  &v1.Platform{OS: "linux", Architecture: p.arch, Variant: p.variant},
			},
		})
	}
	return idx, nil
}

func standInImage(arch, variant, busybox string, applets []string) (v1.Image, error) {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	layerTar, err := rootfsTar(bin, applets)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("stack: stand-in layer: %w", err)
	}
	created := v1.Time{Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg := &v1.ConfigFile{
		Architecture: arch,
		Variant:      variant,
		OS:           "linux",
		Created:      created,
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Env:    []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd:    []string{"/bin/sh"},
			Labels: map[string]string{StandInLabel: "busybox-static"},
		},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("stack: stand-in config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		History:   v1.History{Created: created, CreatedBy: "e2e stack: busybox-static stand-in", Comment: "stand-in base image"},
		MediaType: types.OCILayer,
	})
	if err != nil {
		return nil, fmt.Errorf("stack: stand-in image: %w", err)
	}
	return img, nil
}

// rootfsTar returns a tar of a minimal busybox root filesystem.
func rootfsTar(busybox []byte, applets []string) ([]byte, error) {
	mtime := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	dirs := map[string]int64{
		"bin": 0o755, "sbin": 0o755, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
		"usr/local": 0o755, "usr/local/bin": 0o755, "etc": 0o755, "root": 0o700,
		"tmp": 0o1777, "var": 0o755, "var/tmp": 0o1777, "home": 0o755, "proc": 0o755,
		"sys": 0o755, "dev": 0o755, "opt": 0o755, "run": 0o755,
	}
	files := map[string]string{
		"etc/passwd":     "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":      "root:x:0:\nnogroup:x:65534:\n",
		"etc/os-release": "NAME=\"busybox stand-in\"\nID=busybox\nPRETTY_NAME=\"e2e stand-in base image (busybox-static)\"\n",
	}
	links := map[string]bool{"bin/sh": true}
	bash := false
	for _, a := range applets {
		a = strings.TrimPrefix(path.Clean(a), "/")
		if a == "bin/busybox" || a == "." {
			continue
		}
		if _, ok := dirs[path.Dir(a)]; !ok {
			continue // applets only go in the dirs above
		}
		links[a] = true
		bash = bash || path.Base(a) == "bash"
	}
	if !bash { // Dockerfiles may use SHELL ["/bin/bash", ...]: run busybox sh
		files["bin/bash"] = "#!/bin/sh\nexec /bin/sh \"$@\"\n"
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := func(h *tar.Header) error {
		h.ModTime, h.Uid, h.Gid, h.Format = mtime, 0, 0, tar.FormatPAX
		return tw.WriteHeader(h)
	}
	for _, d := range sortedKeys(dirs) {
		if err := hdr(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: dirs[d]}); err != nil {
			return nil, err
		}
	}
	if err := hdr(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(busybox))}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(busybox); err != nil {
		return nil, err
	}
	for _, f := range sortedKeys(files) {
		mode := int64(0o644)
		if strings.HasPrefix(f, "bin/") {
			mode = 0o755
		}
		if err := hdr(&tar.Header{Name: f, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(files[f]))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(files[f])); err != nil {
			return nil, err
		}
	}
	for _, l := range sortedKeys(links) {
		if err := hdr(&tar.Header{Name: l, Typeflag: tar.TypeSymlink, Linkname: "/bin/busybox", Mode: 0o777}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("stack: stand-in rootfs tar: %w", err)
	}
	return buf.Bytes(), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
