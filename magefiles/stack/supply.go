package stack

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/determined-ai/environments/magefiles/sign"
)

// SBOMStandInRef is where SeedSupplyChain puts the SBOM generator stand-in:
// on the Mirror, as docker.io/<this>, so buildkitd pulls it through its
// mirror like the real one.
const SBOMStandInRef = "determined-e2e/sbom-generator:1"

// SeedSupplyChain prepares what a publish on the stack needs for its
// supply chain (docs/supply-chain.md): a new signing key, written to
// dir/signing.pem, and the SBOM generator stand-in (root's
// magefiles/e2e/testdata/sbomgen, built static for amd64 and arm64, since
// BuildKit runs the generator on the build platform) seeded to the Mirror.
// It returns the values of SIGNING_KEY and SBOM_GENERATOR (by digest).
func (s *Stack) SeedSupplyChain(ctx context.Context, root, dir string) (signingKey, sbomGenerator string, err error) {
	pem, err := sign.GenerateKey()
	if err != nil {
		return "", "", err
	}
	signingKey = filepath.Join(dir, "signing.pem")
	if err := os.WriteFile(signingKey, pem, 0o600); err != nil {
		return "", "", fmt.Errorf("stack: writing the signing key: %w", err)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := sbomStandIn(ctx, root, dir, arch)
		if err != nil {
			return "", "", err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	dst, err := s.MirrorRef(SBOMStandInRef)
	if err != nil {
		return "", "", err
	}
	if err := remote.WriteIndex(dst, idx, remote.WithContext(ctx)); err != nil {
		return "", "", fmt.Errorf("stack: seeding the SBOM generator stand-in to %s: %w", dst, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", "", err
	}
	return signingKey, "docker.io/" + SBOMStandInRef[:len(SBOMStandInRef)-len(":1")] + "@" + d.String(), nil
}

// sbomStandIn builds the stand-in for arch: one static binary, /sbomgen,
// as the entrypoint.
func sbomStandIn(ctx context.Context, root, dir, arch string) (v1.Image, error) {
	bin := filepath.Join(dir, "sbomgen-"+arch)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./magefiles/e2e/testdata/sbomgen")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("stack: building the SBOM generator stand-in for %s: %w\n%s", arch, err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "sbomgen", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(b)),
		ModTime: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(b); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Entrypoint = []string{"/sbomgen"}
	return mutate.ConfigFile(img, cf)
}
